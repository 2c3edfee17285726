"""The event stream of an :class:`~alfaviz.session.Experiment`: one event for every change.

Views observe this stream (through ``Experiment.subscribe``) instead of polling the run. An
observer that raises is logged and skipped, so a broken view can never stop the single writer
from recording a label.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EVENT_KINDS", "Event", "EventKind", "EventStream"]

log = logging.getLogger(__name__)

EventKind = Literal[
    "label", "skip", "undo", "round_started", "round_written", "paths", "scores", "synced"
]

EVENT_KINDS: tuple[str, ...] = (
    "label", "skip", "undo", "round_started", "round_written", "paths", "scores", "synced",
)  # fmt: skip
"""Every kind of event: those of a round in the order it produces them, then ``paths``
(interpolation paths projected on demand for a written round), ``scores`` (other
strategies' scores and picks recorded for a written round) and ``synced`` (labels, skips
or undos another tab or process committed, absorbed by ``Experiment.sync``)."""


@dataclass(frozen=True)
class Event:
    """One change to a run.

    Attributes
    ----------
    kind : str
        One of :data:`EVENT_KINDS`.
    round : int
        The round the change belongs to (for labels: the round whose training first uses it;
        for ``paths``: the round whose paths were projected; for ``scores``: the round the
        strategies were compared on).
    sample_id : int or None
        The sample a label, skip or undo is about.
    label : int or None
        The class id of a label.
    source : str or None
        Who made the change (``"initial"``, ``"oracle"``, ``"human"``).
    action_id : int or None
        The row of the label log that records the change.
    payload : Mapping
        Anything else (for ``round_written``: the round's row of the ``rounds`` frame; for
        ``paths``: ``sample_ids``, the samples whose paths were added, and ``persisted``,
        whether they were stored with the run or only kept in memory; for ``scores``:
        ``strategies``, the names whose scores were added, and ``persisted``; for
        ``synced``: ``actions``, the number of other sessions' actions absorbed,
        ``sample_ids``, the samples they were about, and ``action_id``, the last one). Events
        that ``Experiment.sync`` fires for another writer's work carry ``synced: True``.
    """

    kind: EventKind
    round: int
    sample_id: int | None = None
    label: int | None = None
    source: str | None = None
    action_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


Observer = Callable[[Event], None]


class EventStream:
    """A thread-safe list of observers that receive every :class:`Event` in order."""

    def __init__(self) -> None:
        self._observers: list[tuple[Observer, frozenset[str] | None]] = []
        self._lock = threading.Lock()

    def subscribe(
        self, observer: Observer, kinds: Collection[str] | None = None
    ) -> Callable[[], None]:
        """Call ``observer(event)`` for every event (or only those of ``kinds``).

        Parameters
        ----------
        observer : callable
            Receives one :class:`Event`.
        kinds : collection of str, optional
            Restrict to these kinds (see :data:`EVENT_KINDS`).

        Returns
        -------
        callable
            Call it with no arguments to unsubscribe.

        Raises
        ------
        ValueError
            For an unknown kind, or an observer that is not callable.
        """
        if not callable(observer):
            raise ValueError(f"observer must be callable; got {observer!r}.")
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= set(EVENT_KINDS):
            bad = sorted(wanted - set(EVENT_KINDS))
            raise ValueError(f"unknown event kinds {bad}; choose from {list(EVENT_KINDS)}.")
        entry = (observer, wanted)
        with self._lock:
            self._observers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._observers:
                    self._observers.remove(entry)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every observer subscribed to its kind."""
        with self._lock:
            observers = list(self._observers)
        for fn, kinds in observers:
            if kinds is not None and event.kind not in kinds:
                continue
            try:
                fn(event)
            except Exception:  # an observer must never break the writer
                log.exception("event observer %r failed on %s", fn, event.kind)

    def __len__(self) -> int:
        with self._lock:
            return len(self._observers)
