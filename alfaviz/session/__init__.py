"""The session: the :class:`Experiment` (the single writer of a run) and its round."""

from __future__ import annotations

from alfaviz.session.experiment import Callback, Experiment, LoggingCallback, open_run

__all__ = ["Callback", "Experiment", "LoggingCallback", "open_run"]
