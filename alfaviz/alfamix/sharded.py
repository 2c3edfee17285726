"""The sharded ALFA-Mix query: workers embed, score and write their shards; the driver keeps
the candidates.

:func:`sharded_query` is :func:`~alfaviz.alfamix.query.alfamix_query` for a pool that the
driver never holds. It builds a :class:`ShardManifest` of the pool and maps three passes over
its shards with an :class:`~alfaviz.engine.Engine` (in-process by default, a Ray cluster with
:class:`~alfaviz.engine.RayEngine`):

1. **embed** (skipped when the model's encoder is the identity, as for frozen features): each
   shard of input rows is embedded with the model, in the batches of
   :func:`alfaviz.learner.training.embed`, into one shared ``embeddings-r0003.npy`` in the
   query's folder (the round in every name when the query is one: ``round=3``);
2. **score**: each shard of the unlabelled pool is scored at every level of the schedule
   (:func:`~alfaviz.alfamix.candidates.score_pool`); its scores go to a scratch file named
   by its shard, and only its per-level counts of first flips come back;
3. **finish**: at the stopping level that the driver found from the summed counts, each shard
   is finished (:func:`~alfaviz.alfamix.candidates.finalize_candidates`), its records are
   written as Parquet (``samples-r0003-s00007.parquet``, ``flips-...``,
   ``critical_eps-...``), and only its candidates come back: their positions and
   embeddings.

The driver computes the anchors from the labelled rows, puts them and the head in every pass
once (the function of an engine's map), runs k-means on the candidates alone, and draws the
random fill. What it holds is O(candidates x dim) plus the pool's ids (8 bytes a sample),
never an (N, dim) or (N, n_classes) array.

Every file a shard writes is named by its shard and replaced atomically, and holds the same
bytes whichever worker writes it and however often: a shard that runs again (its worker
lost, the engine retrying) overwrites its own files with the same content, and no shard is
counted twice. Shard boundaries follow the blocks of the computation (and the embedding
batches), so the selection, the candidate mask and every record are bit-identical to
:func:`~alfaviz.alfamix.query.alfamix_query` and :class:`~alfaviz.strategies.ALFAMix` on the
whole pool in one process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz._tensor import eval_mode
from alfaviz._validation import check_disjoint
from alfaviz.alfamix.candidates import (
    AlphaMode,
    PoolScores,
    _check_alpha,
    _parallelism,
    block_rows_for,
    finalize_candidates,
    first_level_counts,
    score_pool,
    shard_align,
    stopping_level_from_counts,
)
from alfaviz.alfamix.mixing import compute_anchors, level_schedule
from alfaviz.alfamix.query import _check_seed, _random_fill, kmeans_pick
from alfaviz.engine import Engine, LocalEngine, check_engine, check_shard_size, row_shards
from alfaviz.errors import AlfavizInputError

__all__ = ["EMBED_BATCH", "Shard", "ShardManifest", "ShardedQuery", "sharded_query"]

EMBED_BATCH = 1024
"""Rows per embedding batch, as :func:`alfaviz.learner.training.embed`: embedding shards are
multiples of it, so every row is embedded in the very batch it would be in one process."""

MANIFEST, EMBEDDINGS, SCORES = "manifest", "embeddings", "scores"
SAMPLES, FLIPS, MATRIX = "samples", "flips", schema.CRITICAL_EPS
RECORD_KINDS = (SAMPLES, FLIPS, MATRIX)
"""The Parquet records each shard writes: one row per sample, one row per (candidate,
anchor) pair, and the float32 critical-ε row of every sample."""


@dataclass(frozen=True)
class Shard:
    """One unit of work: rows ``start:stop`` of what its pass covers.

    Attributes
    ----------
    index : int
        Its number within the pass; its files are named by it.
    start, stop : int
        Input rows (sample ids) for the embedding pass; positions in
        :attr:`ShardManifest.unlabelled_ids` for scoring and finishing.
    """

    index: int
    start: int
    stop: int


@dataclass(frozen=True)
class ShardManifest:
    """The pool of a sharded query: what each shard covers and where its files go.

    Attributes
    ----------
    folder : str
        Where the shards write (every worker must see it: a shared file system on a cluster).
    n_rows : int
        Input rows; sample ``i`` is row ``i``.
    dim : int
        Embedding dimension.
    unlabelled_ids : numpy.ndarray of int64, shape (n_unlabelled,)
        The pool, in the order of the query's positions.
    embed_shards : tuple of Shard
        Input row ranges, multiples of :data:`EMBED_BATCH`; empty when the encoder is the
        identity (the rows are the embeddings).
    score_shards : tuple of Shard
        Ranges of pool positions, multiples of the computation's block group.
    block_rows : int
        Rows per block of the computation (the whole pool's: see
        :func:`~alfaviz.alfamix.candidates.score_pool`).
    round : int or None
        The active-learning round, when the query is one: every file name then carries it
        (``samples-r0003-s00007.parquet``), so that the rounds of a run share one folder.
    """

    folder: str
    n_rows: int
    dim: int
    unlabelled_ids: np.ndarray = field(repr=False)
    embed_shards: tuple[Shard, ...]
    score_shards: tuple[Shard, ...]
    block_rows: int
    round: int | None = None

    def _name(self, kind: str, ext: str, shard: int | None = None) -> Path:
        parts = [kind]
        if self.round is not None:
            parts.append(f"r{self.round:04d}")
        if shard is not None:
            parts.append(f"s{int(shard):05d}")
        return Path(self.folder, "-".join(parts) + ext)

    @property
    def embeddings_file(self) -> Path | None:
        """The shared (n_rows, dim) float32 ``.npy`` the embedding pass fills (None without
        that pass)."""
        return self._name(EMBEDDINGS, ".npy") if self.embed_shards else None

    @property
    def manifest_file(self) -> Path:
        """The JSON account of the query: its shards, their files and counts, the batch."""
        return self._name(MANIFEST, ".json")

    def file(self, kind: str, shard: int) -> Path:
        """The file of ``kind`` (``"scores"`` or one of :data:`RECORD_KINDS`) of a shard."""
        return self._name(kind, ".npz" if kind == SCORES else ".parquet", shard)

    def record_files(self, kind: str) -> list[Path]:
        """Every scoring shard's file of ``kind``, in shard order."""
        return [self.file(kind, s.index) for s in self.score_shards]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the shards and their files (names relative to :attr:`folder`)."""
        return {
            "n_rows": self.n_rows,
            "dim": self.dim,
            "n_unlabelled": int(self.unlabelled_ids.size),
            "block_rows": self.block_rows,
            "round": self.round,
            "embeddings": None if self.embeddings_file is None else self.embeddings_file.name,
            "embed_shards": [[s.start, s.stop] for s in self.embed_shards],
            "score_shards": [
                {
                    "index": s.index,
                    "positions": [s.start, s.stop],
                    "files": {k: self.file(k, s.index).name for k in RECORD_KINDS},
                }
                for s in self.score_shards
            ],
        }


class _Rows:
    """The query's inputs, read by row (a tensor, or a memory-mapped
    :class:`~alfaviz.data.FeatureRows`). Not a container an engine looks into: a GPU worker
    moves the rows it reads, never the whole pool."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def read(self, rows: np.ndarray | slice) -> torch.Tensor:
        if isinstance(rows, slice) or isinstance(self.x, torch.Tensor):
            key = rows if isinstance(rows, slice) else torch.as_tensor(rows)
            return self.x[key]
        return self.x[rows]


@dataclass(frozen=True)
class _Work:
    """What every shard of a pass needs (an engine sends it once per pass)."""

    rows: _Rows
    model: nn.Module | None
    head: nn.Module
    anchors: torch.Tensor | None
    levels: tuple[float, ...]
    alpha: AlphaMode
    learn_steps: int
    learn_lr: float
    manifest: ShardManifest
    full_flips: bool = False


@dataclass(frozen=True)
class _ShardCandidates:
    """What a finished shard sends back: its candidates only."""

    index: int
    positions: np.ndarray
    embeddings: np.ndarray
    counts: dict[str, int]


@dataclass(frozen=True)
class ShardedQuery:
    """The result of :func:`sharded_query`; the records stay in the shards' files.

    Attributes
    ----------
    selected_ids : numpy.ndarray of int64, shape (budget,)
        The batch in pick order: the k-means picks, then the random fill.
    from_fill : numpy.ndarray of bool, shape (budget,)
    candidate_ids : numpy.ndarray of int64, shape (n_candidates,)
        In pool order.
    clusters : numpy.ndarray of int64, shape (n_candidates,)
        The k-means cluster of each candidate.
    level : float
    level_index : int
    levels : tuple of float
    n_candidates_per_level : tuple of int
    n_kmeans, n_fill : int
    kmeans_inertia : float
    anchors : numpy.ndarray, shape (n_classes, dim)
    manifest : ShardManifest
    timings : dict
        Seconds per pass (``embedding``, ``scoring``, ``finishing``), ``kmeans`` and ``total``.
    """

    selected_ids: np.ndarray
    from_fill: np.ndarray
    candidate_ids: np.ndarray
    clusters: np.ndarray
    level: float
    level_index: int
    levels: tuple[float, ...]
    n_candidates_per_level: tuple[int, ...]
    n_kmeans: int
    n_fill: int
    kmeans_inertia: float
    anchors: np.ndarray
    manifest: ShardManifest
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Where the records are."""
        return Path(self.manifest.folder)

    @property
    def n_candidates(self) -> int:
        """Size of the candidate set."""
        return int(self.candidate_ids.size)

    def samples(self) -> pd.DataFrame:
        """Every shard's sample records, with the batch's columns, as one frame.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.QUERY_SAMPLES`, one row per pool sample in
            pool order: what :meth:`ALFAMix.query <alfaviz.strategies.Strategy.query>` gives
            for the same pool. It reads every shard (O(N) memory, by the caller's choice).
        """
        frame = pd.concat(
            [pd.read_parquet(f) for f in self.manifest.record_files(SAMPLES)], ignore_index=True
        )
        ids = frame[schema.SAMPLE_ID].to_numpy(np.int64)
        at = pd.Index(ids)
        fill = np.zeros(ids.size, dtype=bool)
        fill[at.get_indexer(self.selected_ids[self.from_fill])] = True
        cluster = np.full(ids.size, -1, dtype=np.int64)
        cluster[at.get_indexer(self.candidate_ids)] = self.clusters
        selected = np.zeros(ids.size, dtype=bool)
        selected[at.get_indexer(self.selected_ids)] = True
        frame[schema.FILL] = fill
        frame[schema.CLUSTER] = cluster
        frame[schema.SELECTED] = selected
        return schema.conform(frame, schema.QUERY_SAMPLES, extra="drop")

    def flips(self) -> pd.DataFrame:
        """Every shard's (candidate, anchor) rows as one frame (the only pairs that flip).

        Returns
        -------
        pandas.DataFrame
            ``sample_id, anchor_class, flipped, flip_to, critical_eps, step_norm``.
        """
        return pd.concat(
            [pd.read_parquet(f) for f in self.manifest.record_files(FLIPS)], ignore_index=True
        )

    def critical_eps(self) -> tuple[np.ndarray, np.ndarray]:
        """The critical ε of every (sample, anchor) pair, from every shard.

        Returns
        -------
        ids : numpy.ndarray of int64, shape (n_unlabelled,)
        matrix : numpy.ndarray of float32, shape (n_unlabelled, n_classes)
        """
        parts = [_read_matrix(f) for f in self.manifest.record_files(MATRIX)]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts], axis=0),
        )


# --------------------------------------------------------------------------------------------
# files


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file of this process, then rename it into place:
    a reader sees the old file or the whole new one, and two runs of the same shard never
    write into each other's file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_frame(path: Path, frame: pd.DataFrame) -> None:
    from alfaviz.store._parquet import frame_table, write_table_file

    table = frame_table(frame, path.name)
    _replace_atomically(path, lambda p: write_table_file(table, p))


def _write_matrix(path: Path, matrix: np.ndarray, ids: np.ndarray) -> None:
    from alfaviz.store._parquet import embeddings_table, write_table_file

    table, _ = embeddings_table(np.ascontiguousarray(matrix), ids, what="critical_eps")
    _replace_atomically(path, lambda p: write_table_file(table, p))


def _read_matrix(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from alfaviz.store._parquet import parquet_to_table, table_to_embeddings

    return table_to_embeddings(parquet_to_table(path.read_bytes(), path), path, "critical-eps")


_SCORE_ARRAYS = tuple(
    f.name for f in dataclasses.fields(PoolScores) if f.name not in ("block_rows", "index")
)
"""The arrays of a shard's :class:`PoolScores` that its scratch file holds."""
_BLOCK_ROWS = "block_rows"


def _save_scores(path: Path, scores: PoolScores) -> None:
    arrays = {k: getattr(scores, k) for k in _SCORE_ARRAYS if getattr(scores, k) is not None}
    arrays[_BLOCK_ROWS] = np.asarray(scores.block_rows, dtype=np.int64)

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())

    _replace_atomically(path, write)


def _load_scores(path: Path) -> PoolScores:
    if not path.exists():
        raise AlfavizInputError(
            f"the scores of a shard are missing ({path}); the query's folder must be shared by "
            "every worker (a shared file system on a cluster) and must not change during it."
        )
    with np.load(path) as f:
        return PoolScores(
            **{k: f.get(k) for k in _SCORE_ARRAYS},
            block_rows=int(f[_BLOCK_ROWS]),
        )


# --------------------------------------------------------------------------------------------
# the passes (module-level functions: an engine pickles them)


def _device(work: _Work) -> torch.device:
    assert work.anchors is not None
    return work.anchors.device


def _embeddings(work: _Work, shard: Shard) -> torch.Tensor:
    """The embeddings of the pool positions of ``shard``, float32, on the work's device."""
    pos = work.manifest.unlabelled_ids[shard.start : shard.stop]
    return _rows_embeddings(work, pos).to(_device(work))


def _rows_embeddings(work: _Work, ids: np.ndarray) -> torch.Tensor:
    file = work.manifest.embeddings_file
    if file is None:  # the encoder is the identity: the rows are the embeddings
        z = work.rows.read(ids)
        return (z.flatten(1) if z.dim() > 2 else z).float()
    mm = np.load(file, mmap_mode="r")
    return torch.from_numpy(np.array(mm[ids], dtype=np.float32))


def _embed_shard(shard: Shard, *, work: _Work) -> int:
    """Embedding pass: rows ``start:stop`` into the shared embeddings file; returns the rows."""
    from alfaviz.learner.training import embed

    assert work.model is not None
    file = work.manifest.embeddings_file
    assert file is not None
    z = embed(work.model, work.rows.read(slice(shard.start, shard.stop)), EMBED_BATCH).float()
    mm = np.load(file, mmap_mode="r+")
    mm[shard.start : shard.stop] = z.cpu().numpy()
    mm.flush()
    del mm
    return shard.stop - shard.start


def _score_shard(shard: Shard, *, work: _Work) -> np.ndarray:
    """Scoring pass: the shard's scores to its scratch file; returns its first-level counts."""
    assert work.anchors is not None
    z = _embeddings(work, shard)
    scores = score_pool(
        z, work.anchors, work.head, list(work.levels), alpha=work.alpha,
        learn_steps=work.learn_steps, learn_lr=work.learn_lr,
        block_rows=work.manifest.block_rows,
    )  # fmt: skip
    _save_scores(work.manifest.file(SCORES, shard.index), scores)
    n_lv = len(work.levels)
    fmin = scores.first_level.min(axis=1) if scores.first_level.size else np.zeros(0, np.int64)
    return first_level_counts(fmin, n_lv)


def _finalized(shard: Shard, work: _Work, level_index: int) -> tuple[torch.Tensor, Any]:
    """A shard's embeddings and its candidate search at the stopping level, from its scores."""
    assert work.anchors is not None
    z = _embeddings(work, shard)
    scores = _load_scores(work.manifest.file(SCORES, shard.index))
    with eval_mode(work.head):
        c = finalize_candidates(
            z, work.anchors, work.head, list(work.levels), scores, level_index, alpha=work.alpha
        )
    return z, c


def _finish_shard(shard: Shard, *, work: _Work, level_index: int) -> _ShardCandidates:
    """Finishing pass: the shard's records as Parquet; returns its candidates only."""
    from alfaviz.strategies._alfamix import candidate_columns
    from alfaviz.strategies._base import head_probabilities

    m = work.manifest
    z, c = _finalized(shard, work, level_index)
    with eval_mode(work.head):
        probs = head_probabilities(work.head, z)
    ids = m.unlabelled_ids[shard.start : shard.stop]
    cols = {schema.SAMPLE_ID: ids, **candidate_columns(c, probs)}
    _write_frame(m.file(SAMPLES, shard.index), pd.DataFrame(cols))
    local = np.flatnonzero(c.mask)
    _write_flips(m.file(FLIPS, shard.index), c, None if work.full_flips else local, ids)
    _write_matrix(m.file(MATRIX, shard.index), c.critical_eps.astype(np.float32), ids)
    zc = z[torch.as_tensor(local, device=z.device)].cpu().numpy()
    return _ShardCandidates(
        shard.index, shard.start + local.astype(np.int64), zc,
        {"rows": int(ids.size), "candidates": int(local.size)},
    )  # fmt: skip


def _write_flips(path: Path, c: Any, rows: np.ndarray | None, ids: np.ndarray) -> None:
    """The (sample, anchor) rows of positions ``rows`` of a shard (all when None)."""
    from alfaviz.strategies._alfamix import flip_rows

    flips = flip_rows(c, rows)
    flips[schema.SAMPLE_ID] = ids[flips[schema.SAMPLE_ID].to_numpy()]
    _write_frame(path, flips)


def _fill_shard(
    shard: Shard, *, work: _Work, level_index: int, selected: dict[int, np.ndarray]
) -> int:
    """After the fill: rewrite a shard's flips with the rows of its candidates and of the
    random fill's samples in it (``selected[shard.index]``: pool positions), as the strategy
    keeps them."""
    mine = selected[shard.index]
    m = work.manifest
    _, c = _finalized(shard, work, level_index)
    keep = c.mask.copy()
    keep[mine - shard.start] = True
    ids = m.unlabelled_ids[shard.start : shard.stop]
    _write_flips(m.file(FLIPS, shard.index), c, np.flatnonzero(keep), ids)
    return int(mine.size)


# --------------------------------------------------------------------------------------------
# the driver


def _check_ids(value: Any, n_rows: int, what: str) -> np.ndarray:
    arr = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise AlfavizInputError(
            f"{what} must be a 1-D array of integer sample ids (rows of x); got shape "
            f"{arr.shape}, dtype {arr.dtype}."
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_rows):
        raise AlfavizInputError(
            f"{what} must be rows of x, in 0..{n_rows - 1}; got ids from {arr.min()} to "
            f"{arr.max()}."
        )
    if np.unique(arr).size != arr.size:
        raise AlfavizInputError(f"{what} holds repeated sample ids; give each sample once.")
    return arr


def _check_inputs(x: Any) -> Any:
    """``x`` as something workers read by row: a whole 2-D memory map becomes a
    :class:`~alfaviz.data.FeatureRows` (it travels as its file name), another array a
    tensor."""
    from alfaviz.data._features import FeatureRows, _whole_map

    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise AlfavizInputError(
                f"x must hold numbers; got an array of dtype {x.dtype}. Convert it with "
                ".astype(np.float32)."
            )
        if x.ndim == 2 and _whole_map(x) is not None:
            return FeatureRows(x, np.arange(x.shape[0], dtype=np.int64))
        return torch.as_tensor(x)
    if not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
        raise AlfavizInputError(
            f"x must be the inputs, indexable by row (a tensor, an array or FeatureRows); got "
            f"{type(x).__name__}."
        )
    return x


def _check_model(model: Any) -> tuple[nn.Module | None, nn.Module, int]:
    """``(encoder model or None for the identity, head, embedding dim)``."""
    head = getattr(model, "head", None)
    if (
        not isinstance(model, nn.Module)
        or not isinstance(head, nn.Module)
        or not callable(getattr(model, "embed", None))
    ):
        raise AlfavizInputError(
            "model must be a split model with embed(x) and a head, such as "
            "alfaviz.learner.models.LinearProbe or a SplitModel; got "
            f"{type(model).__name__}. Wrap other networks with "
            "alfaviz.learner.models.split_model(model, head_name=...)."
        )
    dim = getattr(head, "in_features", None)
    if not isinstance(dim, int):
        raise AlfavizInputError(
            f"the model's head must be an nn.Linear (ALFA-Mix mixes its input); got "
            f"{type(head).__name__}."
        )
    identity = isinstance(getattr(model, "encoder", None), nn.Identity)
    return (None if identity else model), head, dim


def _check_folder(folder: Any) -> Path:
    if not isinstance(folder, (str, os.PathLike)):
        raise AlfavizInputError(
            f"folder must be a path (where the shards write their records); got "
            f"{type(folder).__name__}."
        )
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise AlfavizInputError(f"folder {path} exists and is not a folder; give a folder path.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _shards(n: int, size: int, align: int) -> tuple[Shard, ...]:
    return tuple(Shard(i, s, e) for i, (s, e) in enumerate(row_shards(n, size, align=align)))


def _map(engine: Engine, fn: Callable[[Shard], Any], shards: Sequence[Shard]) -> list[Any]:
    return list(engine.map(fn, list(shards))) if shards else []


def sharded_query(
    x: Any,
    unlabelled_ids: Any,
    labelled_ids: Any,
    y_labelled: Any,
    model: nn.Module,
    budget: int,
    *,
    folder: str | os.PathLike[str],
    alpha_cap: float = 0.2,
    random_state: int = 0,
    alpha: AlphaMode = "closed_form",
    kmeans_n_init: int = 1,
    kmeans_max_iter: int = 50,
    kmeans_tol: float = 1e-4,
    learn_steps: int = 5,
    learn_lr: float = 0.1,
    max_chunk_bytes: int | None = None,
    engine: Engine | None = None,
    shard_size: int | None = None,
    keep_scores: bool = False,
    round: int | None = None,
    full_flips_max_pairs: int | None = None,
) -> ShardedQuery:
    """The ALFA-Mix query of a pool that the driver never holds (see the module docstring).

    Parameters
    ----------
    x : torch.Tensor, numpy.ndarray or FeatureRows, shape (n_rows, ...)
        The inputs, row ``i`` for sample ``i``: a tensor or array, or the memory-mapped rows
        of a feature file (``DataSource.x_train`` of :func:`~alfaviz.data.load_features`, or
        ``np.load(path, mmap_mode="r")``), which workers map from the same file instead of
        receiving a copy.
    unlabelled_ids : array-like of int, shape (n_unlabelled,)
        The pool (rows of ``x``); positions in the query follow this order.
    labelled_ids : array-like of int, shape (n_labelled,)
        The labelled rows (the anchors are their class means).
    y_labelled : array-like of int, shape (n_labelled,)
        Their labels.
    model : nn.Module
        A split model (``embed(x)`` and a linear ``head``), as trained by a
        :class:`~alfaviz.learner.Learner`. With an identity encoder
        (:class:`~alfaviz.learner.models.LinearProbe`) the rows are the embeddings and the
        embedding pass is skipped.
    budget : int
        Samples to pick, ``1 <= budget <= n_unlabelled``.
    folder : path
        Where the shards write (created if missing; shared by every worker).
    alpha_cap, random_state, alpha, kmeans_n_init, kmeans_max_iter, kmeans_tol, learn_steps, \
learn_lr, max_chunk_bytes
        As for :func:`~alfaviz.alfamix.query.alfamix_query`.
    engine : Engine, optional
        Maps the passes over the shards (in-process by default).
    shard_size : int, optional
        Pool rows per scoring shard (by default one shard per worker of the engine), rounded
        up to the computation's block group; also input rows per embedding shard, rounded up
        to :data:`EMBED_BATCH`.
    keep_scores : bool
        Keep the scoring pass's scratch files (``scores-...-s00007.npz``); removed by default.
    round : int, optional
        The active-learning round this query is: its number goes in every file name.
    full_flips_max_pairs : int, optional
        As :attr:`ALFAMix.full_flips_max_pairs <alfaviz.strategies.ALFAMix>`: while the pool
        has at most this many (sample, anchor) pairs, the shards' flips hold every pair;
        above it, or when None, the rows of the candidates and of the selected samples (the
        random fill's rows are written after the fill, by a pass over the shards that hold
        them).

    Returns
    -------
    ShardedQuery
        The batch and the candidates; the records are in ``folder``, listed by the query's
        manifest (``manifest-r0003.json``, or ``manifest.json`` without a round).

    Raises
    ------
    AlfavizInputError
        For ids out of range, repeated or shared between the pool and the labelled set,
        labels out of range, a bad budget, model, folder, engine or shard size.
    """
    t0 = time.perf_counter()
    _check_alpha(alpha)
    enc, head, dim = _check_model(model)
    n_cls = int(getattr(head, "out_features", 0))
    x = _check_inputs(x)
    n_rows = len(x)
    unl = _check_ids(unlabelled_ids, n_rows, "unlabelled_ids")
    lab = _check_ids(labelled_ids, n_rows, "labelled_ids")
    if unl.size == 0 or lab.size == 0:
        raise AlfavizInputError(
            "the pool and the labelled set must both be non-empty; got "
            f"{unl.size} unlabelled and {lab.size} labelled ids."
        )
    check_disjoint(unl, lab)
    yl = torch.as_tensor(np.asarray(y_labelled), dtype=torch.long).reshape(-1)
    if yl.numel() != lab.size:
        raise AlfavizInputError(
            f"y_labelled has {yl.numel()} labels for {lab.size} labelled ids; give one each."
        )
    if yl.numel() and (int(yl.min()) < 0 or int(yl.max()) >= n_cls):
        raise AlfavizInputError(
            f"y_labelled must hold class ids in 0..{n_cls - 1} (the head's outputs); got "
            f"{int(yl.min())}..{int(yl.max())}."
        )
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, np.integer))
        or not (1 <= int(budget) <= unl.size)
    ):
        raise AlfavizInputError(
            f"budget must be an integer in 1..{unl.size} (the pool's size); got {budget!r}."
        )
    budget = int(budget)
    random_state = _check_seed(random_state)
    engine = check_engine(engine) or LocalEngine()
    shard_size = check_shard_size(shard_size)
    out = _check_folder(folder)
    levels = level_schedule(alpha_cap)
    rows = block_rows_for(unl.size, dim, 4, n_cls, len(levels), head, alpha, max_chunk_bytes)
    workers = _parallelism(engine)
    align = shard_align(rows, head, alpha)
    score_shards = _shards(unl.size, shard_size or -(-unl.size // workers), align)
    embed_shards: tuple[Shard, ...] = ()
    if enc is not None:
        embed_shards = _shards(n_rows, shard_size or -(-n_rows // workers), EMBED_BATCH)
    if round is not None and (
        isinstance(round, bool) or not isinstance(round, (int, np.integer)) or round < 0
    ):
        raise AlfavizInputError(f"round must be a round number (an int >= 0); got {round!r}.")
    manifest = ShardManifest(str(out), n_rows, dim, unl, embed_shards, score_shards, rows,
                             None if round is None else int(round))  # fmt: skip
    if full_flips_max_pairs is not None and (
        isinstance(full_flips_max_pairs, bool)
        or not isinstance(full_flips_max_pairs, (int, np.integer))
        or full_flips_max_pairs < 0
    ):
        raise AlfavizInputError(
            f"full_flips_max_pairs must be an int >= 0 or None; got {full_flips_max_pairs!r}."
        )
    full = full_flips_max_pairs is not None and unl.size * n_cls <= int(full_flips_max_pairs)
    work = _Work(_Rows(x), enc, head, None, tuple(levels), alpha, int(learn_steps),
                 float(learn_lr), manifest, full)  # fmt: skip
    times: dict[str, float] = {}

    t = time.perf_counter()
    if enc is not None:
        assert manifest.embeddings_file is not None
        np.lib.format.open_memmap(
            manifest.embeddings_file, mode="w+", dtype=np.float32, shape=(n_rows, dim)
        ).flush()
        _map(engine, partial(_embed_shard, work=work), embed_shards)
    times["embedding"] = time.perf_counter() - t

    with eval_mode(head):
        dev = next(iter(head.parameters()), torch.empty(0)).device
        zl = _rows_embeddings(work, lab).to(dev)
        anchors = compute_anchors(zl, yl.to(dev), n_cls)
        work = _Work(work.rows, None, head, anchors, work.levels, alpha, work.learn_steps,
                     work.learn_lr, manifest, full)  # fmt: skip
        t = time.perf_counter()
        counts = _map(engine, partial(_score_shard, work=work), score_shards)
        hist = np.sum(counts, axis=0)
        j, per_level = stopping_level_from_counts(hist, budget, len(levels))
        times["scoring"] = time.perf_counter() - t
        t = time.perf_counter()
        parts = _map(engine, partial(_finish_shard, work=work, level_index=j), score_shards)
        times["finishing"] = time.perf_counter() - t

    t = time.perf_counter()
    pos = np.concatenate([p.positions for p in parts]).astype(np.int64)
    zc = torch.from_numpy(np.concatenate([p.embeddings for p in parts], axis=0).reshape(-1, dim))
    nearest, clusters, inertia = kmeans_pick(
        zc, budget, random_state, kmeans_n_init, kmeans_max_iter, kmeans_tol
    )
    picked = pos[nearest]
    fill = _random_fill(unl.size, picked, budget - picked.size, random_state)
    selected = np.concatenate([picked, fill]).astype(np.int64)
    from_fill = np.zeros(budget, dtype=bool)
    from_fill[picked.size :] = True
    times["kmeans"] = time.perf_counter() - t
    if fill.size and not full:  # the fill's rows join the shards' flips, as in the strategy
        t = time.perf_counter()
        fill_pos = np.sort(fill.astype(np.int64))
        inside = {
            s.index: fill_pos[(fill_pos >= s.start) & (fill_pos < s.stop)] for s in score_shards
        }
        todo = [s for s in score_shards if inside[s.index].size]
        with eval_mode(head):
            _map(engine, partial(_fill_shard, work=work, level_index=j, selected=inside), todo)
        times["fill_flips"] = time.perf_counter() - t
    if not keep_scores:
        for s in score_shards:
            manifest.file(SCORES, s.index).unlink(missing_ok=True)
    result = ShardedQuery(
        selected_ids=unl[selected],
        from_fill=from_fill,
        candidate_ids=unl[pos],
        clusters=clusters,
        level=float(levels[j]),
        level_index=int(j),
        levels=tuple(levels),
        n_candidates_per_level=tuple(int(c) for c in per_level),
        n_kmeans=int(picked.size),
        n_fill=int(fill.size),
        kmeans_inertia=float(inertia),
        anchors=anchors.detach().cpu().numpy(),
        manifest=manifest,
        timings=times,
    )
    times["total"] = time.perf_counter() - t0
    _write_manifest(result, [p.counts for p in parts])
    return result


def _write_manifest(result: ShardedQuery, counts: list[dict[str, int]]) -> None:
    doc = result.manifest.to_dict()
    for entry, c in zip(doc["score_shards"], counts, strict=True):
        entry.update(c)
    doc["query"] = {
        "level": result.level,
        "level_index": result.level_index,
        "n_candidates_per_level": list(result.n_candidates_per_level),
        "n_candidates": result.n_candidates,
        "n_kmeans": result.n_kmeans,
        "n_fill": result.n_fill,
        "selected_ids": result.selected_ids.tolist(),
        "timings": result.timings,
    }
    text = json.dumps(doc, indent=1) + "\n"

    def write(p: Path) -> None:
        p.write_text(text)

    _replace_atomically(result.manifest.manifest_file, write)
