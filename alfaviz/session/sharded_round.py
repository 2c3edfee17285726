"""The round of a pool that the driver never holds whole: the sharded ALFA-Mix round.

:func:`run_sharded_round` is :func:`~alfaviz.session.round.run_round` for the ALFA-Mix
strategy with the query of :func:`~alfaviz.alfamix.sharded.sharded_query`: the engine's
workers embed the pool, score it and write their shards' records into the run's
:data:`SHARDS_DIR` folder, and the driver keeps the candidates. Training and evaluation run
on the driver, as in every round (on the labelled set and the test split).

The round's artefacts are the same as :func:`~alfaviz.session.round.run_round`'s, value for
value (the tests compare them): the samples frame, the embeddings and the critical-ε matrix
are handed to the store as :class:`~alfaviz.store.Parts` that read the shards' files one
Parquet row group (or one block of embedding rows) at a time while the store writes them, so
the driver holds a block, never the pool. The 2-D projection reads the embeddings by row
(:func:`~alfaviz.analysis.projection.project_2d` with a row reader: above
:data:`~alfaviz.analysis.projection.UMAP_FIT_MAX` samples it fits on a seeded subset and
places the rest by block). What the driver keeps for the whole pool is per-sample
bookkeeping: ids, labels and the 2-D coordinates (a few bytes a sample).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from alfaviz import schema
from alfaviz._checks import fresh_seed
from alfaviz._tensor import eval_mode
from alfaviz.alfamix.query import paths_frame
from alfaviz.alfamix.sharded import (
    FLIPS,
    MANIFEST,
    MATRIX,
    SAMPLES,
    ShardedQuery,
    sharded_query,
)
from alfaviz.data import DataSource
from alfaviz.engine import Engine
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import Learner
from alfaviz.session.pool import Pool
from alfaviz.session.round import (
    RoundOutcome,
    fill_defaults,
    place_paths,
    round_row,
    train_and_evaluate,
)
from alfaviz.store import Parts
from alfaviz.store._parquet import table_to_embeddings
from alfaviz.strategies import ALFAMix, QueryResult
from alfaviz.strategies._alfamix import _default_alpha_cap

__all__ = ["SHARDS_DIR", "EmbeddingRows", "clear_round_files", "run_sharded_round"]

SHARDS_DIR = "shards"
"""The folder of a run directory where a sharded round's workers write (one set of files per
round, named by round and shard; the round's own files are written from them)."""

EMBEDDING_PART_BYTES = 16 << 20
"""About how many bytes of embeddings one part of the stored embeddings holds."""

Projector = Callable[[Any], "np.ndarray | None"]


class EmbeddingRows:
    """A sharded round's embeddings, read by row: ``rows[start:stop]`` or ``rows[ids]``.

    From the query's shared ``embeddings-r0003.npy`` (memory-mapped), or, for an identity
    encoder, from the inputs themselves. Rows come back as float32 arrays.

    Parameters
    ----------
    query : ShardedQuery
    x : torch.Tensor or FeatureRows
        The inputs the query read (``DataSource.x_train``).
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, query: ShardedQuery, x: Any) -> None:
        self._file = query.manifest.embeddings_file
        self._x = x
        self.shape = (int(query.manifest.n_rows), int(query.manifest.dim))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if self._file is not None:
            mm = np.load(self._file, mmap_mode="r")
            return np.array(mm[rows], dtype=np.float32)
        if isinstance(rows, slice):
            z = self._x[rows]
        elif isinstance(self._x, torch.Tensor):
            z = self._x[torch.as_tensor(np.asarray(rows, dtype=np.int64))]
        else:
            z = self._x[np.asarray(rows, dtype=np.int64)]
        z = torch.as_tensor(z)
        return (z.flatten(1) if z.dim() > 2 else z).float().cpu().numpy()


def clear_round_files(folder: Path, round: int, *, keep_manifest: bool = False) -> None:
    """Remove the files a sharded round ``round`` wrote into ``folder``, or left there when
    an attempt at it was interrupted; with ``keep_manifest``, all but the query's manifest
    (``manifest-r0003.json``: its shards, counts and timings)."""
    if folder.is_dir():
        for f in folder.glob(f"*-r{round:04d}[-.]*"):
            if not (keep_manifest and f.name.startswith(f"{MANIFEST}-")):
                f.unlink(missing_ok=True)


def _batches(files: list[Path]) -> Iterator[pd.DataFrame]:
    """Every row group of ``files`` in order, as frames."""
    for f in files:
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            yield pf.read_row_group(g).to_pandas()


def _samples_parts(
    r: int, q: ShardedQuery, data: DataSource, pool: Pool, coords: np.ndarray | None
) -> Iterator[pd.DataFrame]:
    """The round's samples frame, one shard row group at a time, with the labelled samples
    between them: the frames :func:`~alfaviz.session.round.run_round` writes whole."""
    n = data.n_train
    fill = np.zeros(n, dtype=bool)
    fill[q.selected_ids[q.from_fill]] = True
    cluster = np.full(n, -1, dtype=np.int64)
    cluster[q.candidate_ids] = q.clusters
    selected = np.zeros(n, dtype=bool)
    selected[q.selected_ids] = True
    y_train = np.asarray(data.y_train)
    files = q.manifest.record_files(SAMPLES)
    batches = _batches(files)
    nxt = next(batches, None)
    lo = 0
    while nxt is not None:
        part, nxt = nxt, next(batches, None)
        hi = n if nxt is None else int(nxt[schema.SAMPLE_ID].iloc[0])
        ids = part[schema.SAMPLE_ID].to_numpy(np.int64)
        part[schema.FILL] = fill[ids]
        part[schema.CLUSTER] = cluster[ids]
        part[schema.SELECTED] = selected[ids]
        part = schema.conform(part, schema.QUERY_SAMPLES, extra="drop")
        rows = np.arange(lo, hi, dtype=np.int64)
        full = pd.DataFrame({schema.SAMPLE_ID: rows}).merge(part, on=schema.SAMPLE_ID, how="left")
        full.insert(0, schema.ROUND, r)
        full[schema.TRUE_LABEL] = y_train[lo:hi]
        full[schema.LABEL] = pool.labels[lo:hi]
        full[schema.LABELLED_ROUND] = pool.labelled_round[lo:hi]
        if coords is not None:
            full[schema.X], full[schema.Y] = coords[lo:hi, 0], coords[lo:hi, 1]
        yield fill_defaults(full)
        lo = hi


def _embedding_parts(z: EmbeddingRows) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n, dim = z.shape
    step = max(1, EMBEDDING_PART_BYTES // (4 * max(dim, 1)))
    for s in range(0, n, step):
        e = min(s + step, n)
        yield np.arange(s, e, dtype=np.int64), z[s:e]


def _matrix_parts(files: list[Path]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for f in files:
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            yield table_to_embeddings(pf.read_row_group(g), f, "critical-eps")


def _query_result(q: ShardedQuery, paths: pd.DataFrame | None, info: dict[str, Any]) -> QueryResult:
    """The query as a :class:`QueryResult` for the round's callbacks, holding the rows of the
    candidates and the batch (the samples that flip or are picked), not the whole pool."""
    keep = np.union1d(q.candidate_ids, q.selected_ids)
    parts = [b[b[schema.SAMPLE_ID].isin(keep)] for b in _batches(q.manifest.record_files(SAMPLES))]
    frame = pd.concat(parts, ignore_index=True)
    ids = frame[schema.SAMPLE_ID].to_numpy(np.int64)
    at = pd.Index(ids)
    frame[schema.FILL] = np.isin(ids, q.selected_ids[q.from_fill])
    cluster = np.full(ids.size, -1, dtype=np.int64)
    cluster[at.get_indexer(q.candidate_ids)] = q.clusters
    frame[schema.CLUSTER] = cluster
    frame[schema.SELECTED] = np.isin(ids, q.selected_ids)
    flips = pd.concat(
        [pd.read_parquet(f) for f in q.manifest.record_files(FLIPS)], ignore_index=True
    )
    return QueryResult(
        strategy=ALFAMix.name, selected_ids=q.selected_ids, samples=frame,
        flips=flips, info=info, paths=paths,
    )  # fmt: skip


def run_sharded_round(
    round: int,
    *,
    learner: Learner,
    data: DataSource,
    pool: Pool,
    strategy: ALFAMix,
    budget: int,
    train_seed: int,
    folder: str | Path,
    project: Projector | None = None,
    on_query: Callable[[QueryResult], None] | None = None,
    engine: Engine | None = None,
    shard_size: int | None = None,
) -> RoundOutcome:
    """Compute round ``round`` with the sharded ALFA-Mix query; nothing is written but the
    shards' files in ``folder``.

    Parameters
    ----------
    round, learner, data, pool, budget, train_seed, engine, shard_size
        As for :func:`~alfaviz.session.round.run_round`.
    strategy : ALFAMix
        Already seeded for this round; its parameters (and ``full_flips_max_pairs``) are the
        query's.
    folder : path
        Where the workers write (shared by every worker: a shared file system on a cluster).
    project : callable, optional
        Maps the embeddings, as an :class:`EmbeddingRows` reader, to 2-D coordinates
        ``(n_train, 2)``, or None.
    on_query : callable, optional
        Called with the query as a :class:`~alfaviz.strategies.QueryResult` whose ``samples``
        and ``flips`` hold the candidates' and the batch's rows only (the round's records
        hold every sample).

    Returns
    -------
    RoundOutcome
        With ``samples``, ``embeddings`` and (above ``full_flips_max_pairs``) the critical-ε
        matrix as :class:`~alfaviz.store.Parts` to be written by the store.
    """
    if not isinstance(strategy, ALFAMix):
        raise AlfavizInputError(
            f"the sharded round runs the ALFA-Mix query; got the strategy "
            f"{type(strategy).__name__}. Use run_round (sharded=False) for other strategies."
        )
    lab_ids, unl = pool.labelled_ids, pool.unlabelled_ids
    times: dict[str, float] = {}
    y_l, stats, acc = train_and_evaluate(learner, data, pool, train_seed, times)
    p = strategy.get_params()
    seed = fresh_seed() if p[schema.RANDOM_STATE] is None else int(p[schema.RANDOM_STATE])
    cap = _default_alpha_cap(p["alpha"]) if p["alpha_cap"] is None else float(p["alpha_cap"])
    folder = Path(folder)
    clear_round_files(folder, round)
    t0 = time.perf_counter()
    q = sharded_query(
        data.x_train, unl, lab_ids, y_l, learner.model, min(budget, int(unl.size)),
        folder=folder, alpha_cap=cap, random_state=seed, alpha=p["alpha"],
        kmeans_n_init=int(p["kmeans_n_init"]), kmeans_max_iter=int(p["kmeans_max_iter"]),
        kmeans_tol=float(p["kmeans_tol"]), learn_steps=int(p["learn_steps"]),
        learn_lr=float(p["learn_lr"]), engine=engine, shard_size=shard_size, round=round,
        full_flips_max_pairs=int(strategy.full_flips_max_pairs),
    )  # fmt: skip
    times[schema.time_column("embed")] = q.timings.get("embedding", 0.0)
    times[schema.time_column("query")] = (
        time.perf_counter() - t0 - times[schema.time_column("embed")]
    )
    z = EmbeddingRows(q, data.x_train)
    head = learner.head
    paths = None
    steps = int(p["path_steps"])
    if steps and q.selected_ids.size:
        dev = next(iter(head.parameters()), torch.empty(0)).device
        with eval_mode(head):
            paths = paths_frame(
                head, torch.from_numpy(z[q.selected_ids]).to(dev),
                torch.as_tensor(q.anchors, device=dev), np.arange(q.selected_ids.size), steps,
                sample_ids=q.selected_ids,
            )  # fmt: skip
    info: dict[str, Any] = {
        schema.LEVEL: q.level,
        schema.N_CANDIDATES: q.n_candidates,
        schema.N_KMEANS: q.n_kmeans,
        schema.N_FILL: q.n_fill,
        schema.CANDIDATES_PER_LEVEL: list(q.n_candidates_per_level),
        schema.time_column("query"): times[schema.time_column("query")],
        schema.RANDOM_STATE: seed,
    }
    info.update({schema.time_column(f"sharded_{k}"): v for k, v in q.timings.items()})
    result = _query_result(q, paths, info) if on_query is not None else None
    if on_query is not None and result is not None:
        on_query(result)
    if result is None:
        result = QueryResult(
            strategy=ALFAMix.name, selected_ids=q.selected_ids,
            samples=pd.DataFrame({schema.SAMPLE_ID: np.zeros(0, np.int64)}), info=info,
            paths=paths,
        )  # fmt: skip
    t = time.perf_counter()
    coords = project(z) if project is not None else None
    times[schema.time_column("project")] = time.perf_counter() - t
    row = round_row(round, strategy, pool, result, acc, stats, times)
    t = time.perf_counter()
    full = unl.size * q.anchors.shape[0] <= int(strategy.full_flips_max_pairs)
    out = _outcome(round, row, q, result, data, pool, z, coords, paths, full)
    row[schema.time_column("frames")] = time.perf_counter() - t
    return out


def _outcome(
    r: int,
    row: dict[str, Any],
    q: ShardedQuery,
    result: QueryResult,
    data: DataSource,
    pool: Pool,
    z: EmbeddingRows,
    coords: np.ndarray | None,
    paths: pd.DataFrame | None,
    full: bool,
) -> RoundOutcome:
    n = data.n_train
    coord_df = None
    if coords is not None:
        coords = np.asarray(coords)
        coord_df = schema.conform(
            pd.DataFrame({
                schema.SAMPLE_ID: np.arange(n, dtype=np.int64), schema.X: coords[:, 0],
                schema.Y: coords[:, 1],
            }),
            schema.COORDS,
        )  # fmt: skip
    flips = pd.concat(
        [pd.read_parquet(f) for f in q.manifest.record_files(FLIPS)], ignore_index=True
    )
    flips = schema.conform(flips, schema.QUERY_FLIPS)
    flips.insert(0, schema.ROUND, r)
    selected = q.selected_ids
    queried = pd.DataFrame(
        {
            schema.SAMPLE_ID: selected,
            schema.ORDER: np.arange(selected.size),
            schema.FILL: q.from_fill,
        }
    )
    placed = None
    if paths is not None and len(paths):
        placed = schema.conform(paths, schema.PATHS)
        if coords is not None:
            placed = place_paths(placed, z, coords, q.anchors)
    crit = None if full else Parts(_matrix_parts(q.manifest.record_files(MATRIX)))
    return RoundOutcome(
        r, row, Parts(_samples_parts(r, q, data, pool, coords)),
        schema.conform(flips, schema.FLIPS), schema.conform(queried, schema.QUERIED), placed,
        Parts(_embedding_parts(z)), coord_df, result, crit,
    )  # fmt: skip
