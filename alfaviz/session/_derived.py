"""What the on-demand recorders of a written round share (paths, other strategies' scores).

:class:`DerivedRecorder` checks the round a call names and keeps what was computed for it:
as the round's derived frame in the store (:meth:`~alfaviz.store.RunStore.write_derived`),
or, when the run is open read-only or the write fails, in memory for the life of the object.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store import RunStore

__all__ = ["DerivedRecorder"]

log = logging.getLogger(__name__)


class DerivedRecorder:
    """Base of :class:`~alfaviz.session.paths.PathProjector` and
    :class:`~alfaviz.session.scores.ScoreRecorder`.

    Subclasses name their derived frame (``derived``), what it holds in a log line
    (``what``), and what a run without rounds lacks (``nothing_yet``).
    """

    derived: ClassVar[str]
    what: ClassVar[str]
    nothing_yet: ClassVar[str]

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._memory: dict[tuple[int, str], pd.DataFrame] = {}
        self._warned_read_only = False

    def check_round(self, round: Any) -> int:
        """``round`` as a written round; ``None`` means the latest."""
        written = self._store.rounds_written()
        if not written:
            raise AlfavizInputError(
                f"no round has been written yet, so {self.nothing_yet}; run one with "
                "Experiment.step() first."
            )
        if round is None:
            return int(written[-1])
        if isinstance(round, (bool, np.bool_)) or not isinstance(round, (int, np.integer)):
            raise AlfavizInputError(
                f"round must be the integer of a written round, or None for the latest; got "
                f"{round!r}."
            )
        if int(round) not in written:
            raise AlfavizInputError(
                f"round {int(round)} has not been written yet; rounds {written[0]}.."
                f"{written[-1]} exist (round=None means the latest)."
            )
        return int(round)

    def _keep(self, r: int, checksum: str, frame: pd.DataFrame) -> bool:
        """Store round ``r``'s frame; in memory when the run cannot be written.

        Returns whether it was stored.
        """
        if not self._store.read_only:
            try:
                self._store.write_derived(r, self.derived, frame)
            except (RunStoreError, OSError) as exc:
                log.warning(
                    "could not store the %s of round %d (%s); keeping them in memory",
                    self.what,
                    r,
                    exc,
                )
            else:
                self._memory.pop((r, checksum), None)
                return True
        elif not self._warned_read_only:
            log.info(
                "%s is open read-only: %s are kept in memory, not stored",
                self._store.path,
                self.what,
            )
            self._warned_read_only = True
        self._memory[(r, checksum)] = frame
        return False
