"""The pool state of a run: who is labelled, with what, since when; what is pending.

A :class:`Pool` is immutable. It is rebuilt from the label log as a new object after every
change and swapped in whole, so a reader in another thread (a view) always sees one complete
snapshot, never a half-refilled array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alfaviz import schema

__all__ = ["Pool"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Pool:
    """One snapshot of the pool (the pattern of baal's ``labelled_map``).

    Attributes
    ----------
    labelled_round : numpy.ndarray of int64, shape (n_samples,)
        The round whose training first used each sample's label: ``0`` for the initial set,
        ``r + 1`` for a sample queried in round ``r``, ``-1`` for unlabelled. Read-only.
    labels : numpy.ndarray of int64, shape (n_samples,)
        The live label of each sample, ``-1`` for unlabelled. Read-only.
    pending : numpy.ndarray of int64, shape (n_pending,)
        Ids queried by the last round that are neither labelled nor skipped, in query order.
    skipped : numpy.ndarray of int64, shape (n_skipped,)
        Ids with a live skip, sorted.
    """

    labelled_round: np.ndarray
    labels: np.ndarray
    pending: np.ndarray
    skipped: np.ndarray

    @classmethod
    def empty(cls, n_samples: int) -> Pool:
        """A pool of ``n_samples`` with nothing labelled and nothing pending."""
        none = np.full(n_samples, -1, dtype=np.int64)
        z = np.zeros(0, dtype=np.int64)
        return cls(_frozen(none), _frozen(none.copy()), _frozen(z), _frozen(z.copy()))

    @classmethod
    def from_log(
        cls,
        n_samples: int,
        labels: pd.DataFrame,
        skipped: pd.DataFrame | None = None,
        queried: np.ndarray | None = None,
    ) -> Pool:
        """Build a pool from the label log.

        Parameters
        ----------
        n_samples : int
            Size of the train pool (ids ``0..n_samples-1``).
        labels : pandas.DataFrame
            The live labels (columns ``sample_id``, ``label``, ``round``); ids outside the
            pool are ignored.
        skipped : pandas.DataFrame, optional
            The live skips (column ``sample_id``).
        queried : numpy.ndarray of int64, optional
            Ids the last round queried, in order.

        Returns
        -------
        Pool
        """
        lab = np.full(n_samples, -1, dtype=np.int64)
        rnd = np.full(n_samples, -1, dtype=np.int64)
        if len(labels):
            ids = labels[schema.SAMPLE_ID].to_numpy(dtype=np.int64)
            keep = (ids >= 0) & (ids < n_samples)
            lab[ids[keep]] = labels[schema.LABEL].to_numpy(dtype=np.int64)[keep]
            rnd[ids[keep]] = labels[schema.ROUND].to_numpy(dtype=np.int64)[keep]
        sk = np.zeros(0, dtype=np.int64)
        if skipped is not None and len(skipped):
            sk = np.unique(skipped[schema.SAMPLE_ID].to_numpy(dtype=np.int64))
        q = np.zeros(0, dtype=np.int64) if queried is None else np.asarray(queried, np.int64)
        in_pool = (q >= 0) & (q < n_samples)
        q = q[in_pool]
        pend = q[(rnd[q] < 0) & ~np.isin(q, sk)]
        return cls(_frozen(rnd), _frozen(lab), _frozen(pend), _frozen(sk))

    @property
    def n_samples(self) -> int:
        """Size of the train pool."""
        return int(self.labelled_round.size)

    @property
    def labelled_ids(self) -> np.ndarray:
        """Ids of the labelled samples, sorted, shape (n_labelled,)."""
        return np.flatnonzero(self.labelled_round >= 0).astype(np.int64)

    @property
    def unlabelled_ids(self) -> np.ndarray:
        """Ids of the unlabelled samples, sorted, shape (n_unlabelled,)."""
        return np.flatnonzero(self.labelled_round < 0).astype(np.int64)

    @property
    def n_labelled(self) -> int:
        """Number of labelled samples."""
        return int((self.labelled_round >= 0).sum())

    def is_labelled(self, sample_id: int) -> bool:
        """Whether ``sample_id`` has a live label."""
        return bool(self.labelled_round[int(sample_id)] >= 0)
