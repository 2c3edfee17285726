"""The session: the :class:`Experiment` (the single writer of a run), its :class:`Pool`,
its :class:`RunConfig`, its event stream and :func:`run_round`."""

from __future__ import annotations

from alfaviz.session.config import RunConfig, seed_for
from alfaviz.session.events import EVENT_KINDS, Event, EventStream
from alfaviz.session.experiment import Callback, Experiment, LoggingCallback, open_run
from alfaviz.session.pool import Pool
from alfaviz.session.round import RoundOutcome, run_round

__all__ = [
    "EVENT_KINDS",
    "Callback",
    "Event",
    "EventStream",
    "Experiment",
    "LoggingCallback",
    "Pool",
    "RoundOutcome",
    "RunConfig",
    "open_run",
    "run_round",
    "seed_for",
]
