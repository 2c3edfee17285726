"""Interpolation paths on demand: any sample's paths in any written round, computed once.

When a round is written, the paths of its batch are stored with it (the ``paths`` extra
frame). :class:`PathProjector` computes the paths of any other sample of a written round from
what the round stored (its embeddings, its 2-D layout, the labels of its training set and its
classifier head, ``head.npz``) with the same functions as the batch
(:func:`~alfaviz.session.round.interpolation_paths`), and keeps them as the round's derived
``paths`` frame in the run store (:meth:`~alfaviz.store.RunStore.write_derived`), so that a
second request, a reopened run and the dashboard read them instead of computing them again.

A run open read-only keeps what it projects in memory for the life of the object.
The :class:`~alfaviz.session.Experiment` owns one projector and fires a ``paths`` event
whenever it adds paths to a round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.session._derived import DerivedRecorder
from alfaviz.session.round import interpolation_paths, round_anchors
from alfaviz.store import RunStore

__all__ = ["DEFAULT_PATH_STEPS", "MAX_PATH_SAMPLES", "PathProjection", "PathProjector"]

log = logging.getLogger(__name__)

MAX_PATH_SAMPLES = 256
"""The most distinct samples one :meth:`PathProjector.project` call takes."""

DEFAULT_PATH_STEPS = 11
"""Points per path when the strategy records none of its own (``ALFAMix(path_steps=...)``)."""

BATCH_PATHS = "paths"
"""The extra frame of a round that holds its batch's paths."""

ON_DEMAND_PATHS = "paths"
"""The derived frame of a round that holds the paths projected on demand."""


@dataclass(frozen=True)
class PathProjection:
    """What one :meth:`PathProjector.project` call did.

    Attributes
    ----------
    round : int
    paths : pandas.DataFrame
        Conformed to :data:`~alfaviz.schema.PATHS`, the requested samples in request order.
    new_ids : numpy.ndarray of int64
        The samples computed by this call (the others were read back).
    persisted : bool
        Whether the round's on-demand paths are on disk (``False`` for a read-only run, whose
        new paths are kept in memory).
    """

    round: int
    paths: pd.DataFrame
    new_ids: np.ndarray
    persisted: bool


@dataclass(frozen=True)
class _RoundInputs:
    """What a round stored that its paths are computed from."""

    checksum: str
    z: np.ndarray
    coords: np.ndarray | None
    anchors: np.ndarray
    head: nn.Module


def _empty_paths() -> pd.DataFrame:
    return schema.conform(pd.DataFrame({c: [] for c in schema.PATHS.names}), schema.PATHS)


def _head_from_state(
    state: dict[str, np.ndarray], n_classes: int, dim: int, what: str
) -> nn.Linear:
    """The ``nn.Linear`` head a round stored (weight (C, D), optional bias (C,))."""
    weight, bias = state.get("weight"), state.get("bias")
    shape_ok = (
        set(state) <= {"weight", "bias"}
        and weight is not None
        and weight.shape == (n_classes, dim)
        and (bias is None or bias.shape == (n_classes,))
    )
    if not shape_ok:
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        raise RunStoreError(
            f"{what} does not fit this run: expected a linear head with weight "
            f"({n_classes}, {dim}) and bias ({n_classes},); got {shapes}."
        )
    head = nn.Linear(dim, n_classes, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        if bias is not None:
            head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return head.eval()


def _by_sample(values: pd.DataFrame, column: str, n: int, fill: float, dtype: Any) -> np.ndarray:
    """``values[column]`` as an array indexed by sample id (``fill`` where absent)."""
    out = np.full(n, fill, dtype=dtype)
    sid = values[schema.SAMPLE_ID].to_numpy(np.int64)
    keep = (sid >= 0) & (sid < n)
    out[sid[keep]] = values[column].to_numpy()[keep]
    return out


class PathProjector(DerivedRecorder):
    """Computes, keeps and reads back the interpolation paths of any sample of a round.

    Parameters
    ----------
    store : RunStore
        The run; its rounds must have been written with their classifier head.
    n_train : int
        Size of the train pool (ids ``0..n_train-1``).
    n_classes : int
    steps : callable
        Returns the number of points per path (read at each call: the strategy's), or None
        (or anything but an int >= 2) for the default.

    Notes
    -----
    Thread-safe: one lock covers reading, computing and writing a round's on-demand paths.
    The inputs of the last round used are kept in memory (its embeddings among them).
    """

    derived = ON_DEMAND_PATHS
    what = "projected paths"
    nothing_yet = "there are no paths to project"

    def __init__(
        self, store: RunStore, n_train: int, n_classes: int, steps: Callable[[], int | None]
    ) -> None:
        super().__init__(store)
        self._n_train = int(n_train)
        self._n_classes = int(n_classes)
        self._steps = steps
        self._lock = threading.RLock()
        self._inputs: _RoundInputs | None = None
        self._inputs_round: int | None = None

    # checks ---------------------------------------------------------------------------------

    def check_ids(self, sample_ids: Any) -> np.ndarray:
        """``sample_ids`` as distinct int64 ids in request order, at most MAX_PATH_SAMPLES."""
        if isinstance(sample_ids, (str, bytes, bool, np.bool_, float, np.floating, dict, set)):
            raise AlfavizInputError(
                "sample_ids must be a global sample id or a list of them (integers); got "
                f"{type(sample_ids).__name__} {sample_ids!r:.40}."
            )
        if isinstance(sample_ids, (int, np.integer)):
            sample_ids = [sample_ids]
        try:
            arr = np.asarray(sample_ids)
        except (TypeError, ValueError) as exc:
            raise AlfavizInputError(
                f"sample_ids must be a list of integer sample ids; {exc}."
            ) from None
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise AlfavizInputError(
                "sample_ids must be a flat list of integer sample ids; got "
                f"{'shape ' + str(arr.shape) if arr.ndim != 1 else 'dtype ' + str(arr.dtype)}."
            )
        ids = arr.astype(np.int64)
        bad = ids[(ids < 0) | (ids >= self._n_train)]
        if bad.size:
            shown = ", ".join(map(str, np.unique(bad)[:3].tolist()))
            raise AlfavizInputError(
                f"sample_ids {shown} {'is' if np.unique(bad).size == 1 else 'are'} not in the "
                f"train pool (ids 0..{self._n_train - 1})."
            )
        _, first = np.unique(ids, return_index=True)
        ids = ids[np.sort(first)]
        if ids.size > MAX_PATH_SAMPLES:
            raise AlfavizInputError(
                f"sample_ids holds {ids.size} distinct samples; paths are projected for at "
                f"most {MAX_PATH_SAMPLES} per call (each costs n_classes x steps points); pass "
                f"them in batches of {MAX_PATH_SAMPLES}."
            )
        return ids

    # reading ----------------------------------------------------------------------------------
    def batch_paths(self, round: int) -> pd.DataFrame:
        """The paths of the batch stored with ``round`` (empty if it stored none)."""
        r = self.check_round(round)
        if f"extra/{BATCH_PATHS}.parquet" not in self._store.artefacts(r):
            return _empty_paths()
        try:
            return schema.conform(self._store.read_extra(r, BATCH_PATHS), schema.PATHS)
        except ValueError as exc:
            raise RunStoreError(f"round {r}'s paths frame does not fit the schema: {exc}") from None

    def on_demand(self, round: int) -> pd.DataFrame:
        """Every path projected on demand for ``round`` so far (on disk or in memory)."""
        r = self.check_round(round)
        with self._lock:
            return self._known(r, self._store.round_checksum(r))

    def round_paths(self, round: int) -> pd.DataFrame:
        """The batch's paths, then those projected on demand for other samples."""
        r = self.check_round(round)
        batch = self.batch_paths(r)
        extra = self.on_demand(r)
        extra = extra[~extra[schema.SAMPLE_ID].isin(batch[schema.SAMPLE_ID].unique())]
        if not len(extra):
            return batch
        if not len(batch):
            return extra
        return schema.conform(pd.concat([batch, extra], ignore_index=True), schema.PATHS)

    def _known(self, r: int, checksum: str) -> pd.DataFrame:
        stored = self._store.read_derived(r, ON_DEMAND_PATHS)
        stored = _empty_paths() if stored is None else schema.conform(stored, schema.PATHS)
        memory = self._memory.get((r, checksum))
        if memory is None:
            return stored
        memory = memory[~memory[schema.SAMPLE_ID].isin(stored[schema.SAMPLE_ID].unique())]
        return schema.conform(pd.concat([stored, memory], ignore_index=True), schema.PATHS)

    # projecting -------------------------------------------------------------------------------
    def project(self, sample_ids: Any, round: int | None = None) -> PathProjection:
        """The paths of ``sample_ids`` in ``round``, computing only those not known yet.

        See :meth:`alfaviz.session.Experiment.project_paths`.
        """
        r = self.check_round(round)
        ids = self.check_ids(sample_ids)
        persisted = not self._store.read_only
        if ids.size == 0:
            return PathProjection(r, _empty_paths(), ids, persisted)
        with self._lock:
            checksum = self._store.round_checksum(r)
            known = self._known(r, checksum)
            new = ids[~np.isin(ids, known[schema.SAMPLE_ID].to_numpy(np.int64))]
            if new.size:
                inputs = self._round_inputs(r, checksum)
                fresh = interpolation_paths(
                    inputs.head, inputs.z, new, inputs.anchors, steps=self._path_steps(),
                    coords=inputs.coords,
                )  # fmt: skip
                known = schema.conform(pd.concat([known, fresh], ignore_index=True), schema.PATHS)
                persisted = self._keep(r, checksum, known)
        return PathProjection(r, _in_request_order(known, ids), new, persisted)

    def _path_steps(self) -> int:
        steps = self._steps()
        if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 2:
            return int(steps)
        return DEFAULT_PATH_STEPS

    def _round_inputs(self, r: int, checksum: str) -> _RoundInputs:
        cached = self._inputs
        if cached is not None and self._inputs_round == r and cached.checksum == checksum:
            return cached
        store = self._store
        if not store.has_head(r):
            raise RunStoreError(
                f"round {r} of the run {store.path} was written by an earlier alfaviz that did "
                "not store the round's classifier head, so the paths of other samples cannot "
                f"be computed for it; the batch's paths stored with it are still available "
                f"(Experiment.round_paths({r}))."
            )
        ids, z = store.read_embeddings(r)
        if ids.shape != (self._n_train,) or not np.array_equal(ids, np.arange(self._n_train)):
            raise RunStoreError(
                f"round {r} of the run {store.path} stored embeddings of {ids.size} samples, not "
                f"of the whole train pool of {self._n_train} in id order; its paths cannot be "
                "projected."
            )
        z = np.ascontiguousarray(z, dtype=np.float32)
        samples = store.read_samples(r)
        n = self._n_train
        lab_round = _by_sample(samples, schema.LABELLED_ROUND, n, -1, np.int64)
        labels = _by_sample(samples, schema.LABEL, n, -1, np.int64)
        lab = np.flatnonzero(lab_round >= 0)  # the round's training set, as in run_round
        anchors = round_anchors(z, lab, labels[lab], self._n_classes)
        coords = None
        if "coords.parquet" in store.artefacts(r):
            c = store.read_coords(r)
            coords = np.stack(
                [
                    _by_sample(c, schema.X, n, np.nan, np.float64),
                    _by_sample(c, schema.Y, n, np.nan, np.float64),
                ],
                axis=1,
            )
        head = _head_from_state(
            store.read_head(r), self._n_classes, z.shape[1], f"the head stored with round {r}"
        )
        inputs = _RoundInputs(checksum, z, coords, anchors, head)
        self._inputs, self._inputs_round = inputs, r
        return inputs


def _in_request_order(frame: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The rows of ``ids`` in ``frame``, by request order, then anchor class, then ``t``."""
    sub = frame[frame[schema.SAMPLE_ID].isin(ids)]
    rank = pd.Series(np.arange(ids.size), index=ids)
    key = rank.loc[sub[schema.SAMPLE_ID].to_numpy(np.int64)].to_numpy()
    order = np.lexsort(
        (
            sub[schema.PATH_T].to_numpy(),
            sub[schema.ANCHOR_CLASS].to_numpy(),
            key,
        )
    )
    return schema.conform(sub.iloc[order], schema.PATHS)
