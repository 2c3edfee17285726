"""The session: the :class:`Experiment` (the single writer of a run), its :class:`Pool`,
its :class:`RunConfig`, its event stream and :func:`run_round`.

Names are imported on first use, so ``alfaviz.session.config`` and ``alfaviz.session.events``
stay torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "RunConfig": "alfaviz.session.config",
    "seed_for": "alfaviz.session.config",
    "comparison_seed": "alfaviz.session.config",
    "EVENT_KINDS": "alfaviz.session.events",
    "Event": "alfaviz.session.events",
    "EventStream": "alfaviz.session.events",
    "Callback": "alfaviz.session.experiment",
    "Experiment": "alfaviz.session.experiment",
    "LoggingCallback": "alfaviz.session.experiment",
    "open_run": "alfaviz.session.experiment",
    "MAX_PATH_SAMPLES": "alfaviz.session.paths",
    "Pool": "alfaviz.session.pool",
    "RoundOutcome": "alfaviz.session.round",
    "run_round": "alfaviz.session.round",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alfaviz.session.config import RunConfig as RunConfig
    from alfaviz.session.config import comparison_seed as comparison_seed
    from alfaviz.session.config import seed_for as seed_for
    from alfaviz.session.events import EVENT_KINDS as EVENT_KINDS
    from alfaviz.session.events import Event as Event
    from alfaviz.session.events import EventStream as EventStream
    from alfaviz.session.experiment import Callback as Callback
    from alfaviz.session.experiment import Experiment as Experiment
    from alfaviz.session.experiment import LoggingCallback as LoggingCallback
    from alfaviz.session.experiment import open_run as open_run
    from alfaviz.session.paths import MAX_PATH_SAMPLES as MAX_PATH_SAMPLES
    from alfaviz.session.pool import Pool as Pool
    from alfaviz.session.round import RoundOutcome as RoundOutcome
    from alfaviz.session.round import run_round as run_round


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alfaviz.session' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
