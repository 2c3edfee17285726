"""One active-learning round as glue: train, evaluate, embed, query, project, frame.

:func:`run_round` computes a round and returns it as a :class:`RoundOutcome`; it writes
nothing. The :class:`~alfaviz.session.Experiment` writes the outcome and labels the batch.

The interpolation paths are framed here too, in one place for the batch and for any sample
asked for later: :func:`round_anchors` (the anchors of a round's labelled set),
:func:`place_paths` (the mixed points on the round's 2-D map) and
:func:`interpolation_paths` (:func:`~alfaviz.alfamix.query.paths_frame`, the function the
ALFA-Mix strategy computes the batch's paths with, followed by :func:`place_paths`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from alfaviz import schema
from alfaviz.data import DataSource
from alfaviz.engine import Engine
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import Learner, TrainStats
from alfaviz.session.pool import Pool
from alfaviz.store import Parts
from alfaviz.strategies import QueryResult, Strategy

__all__ = [
    "QUERIED_EXTRA",
    "RoundOutcome",
    "interpolation_paths",
    "place_paths",
    "round_anchors",
    "run_round",
]

Projector = Callable[[np.ndarray], "np.ndarray | None"]

QUERIED_EXTRA = "queried"
"""The extra frame of a round holding its batch in pick order (:data:`~alfaviz.schema.QUERIED`)."""


@dataclass(frozen=True)
class RoundOutcome:
    """Everything one round produced, ready to be written as one unit.

    Attributes
    ----------
    round : int
    row : dict
        The round's row of the ``rounds`` frame.
    samples, flips, queried : pandas.DataFrame
        Conformed to :data:`~alfaviz.schema.SAMPLES`, :data:`~alfaviz.schema.FLIPS` and
        :data:`~alfaviz.schema.QUERIED`. A sharded round gives ``samples`` as
        :class:`~alfaviz.store.Parts` (read from the shards' files as it is written).
    paths : pandas.DataFrame or None
        Conformed to :data:`~alfaviz.schema.PATHS`, for the selected batch.
    embeddings : numpy.ndarray of float32, shape (n_train, dim), or Parts
        Row ``i`` for sample ``i``; a sharded round's are ``(sample_ids, matrix)`` parts.
    coords : pandas.DataFrame or None
        Conformed to :data:`~alfaviz.schema.COORDS`.
    result : QueryResult
    critical_eps : tuple of numpy.ndarray, Parts, or None
        ``(sample_ids, matrix)``: the float32 critical ε of every queried pair, when ``flips``
        keeps only the candidates' and selected samples' rows (a large pool); else None. A
        sharded round's are ``(sample_ids, matrix)`` parts.
    """

    round: int
    row: dict[str, Any]
    samples: pd.DataFrame | Parts
    flips: pd.DataFrame
    queried: pd.DataFrame
    paths: pd.DataFrame | None
    embeddings: np.ndarray | Parts
    coords: pd.DataFrame | None
    result: QueryResult
    critical_eps: tuple[np.ndarray, np.ndarray] | Parts | None = None

    @property
    def selected_ids(self) -> np.ndarray:
        """The queried batch, shape (budget,)."""
        return np.asarray(self.result.selected_ids, dtype=np.int64)


@contextmanager
def _timed(times: dict[str, float], phase: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    times[schema.time_column(phase)] = time.perf_counter() - t0


def run_round(
    round: int,
    *,
    learner: Learner,
    data: DataSource,
    pool: Pool,
    strategy: Strategy,
    budget: int,
    train_seed: int,
    project: Projector | None = None,
    on_query: Callable[[QueryResult], None] | None = None,
    engine: Engine | None = None,
    shard_size: int | None = None,
) -> RoundOutcome:
    """Compute round ``round``; nothing is written.

    Parameters
    ----------
    round : int
    learner : Learner
    data : DataSource
    pool : Pool
        The pool at the start of the round.
    strategy : Strategy
        Already seeded for this round.
    budget : int
        Samples to query (capped at the unlabelled pool).
    train_seed : int
        Seeds training.
    project : callable, optional
        Maps the embeddings (n_train, dim) to 2-D coordinates (n_train, 2), or None.
    on_query : callable, optional
        Called with the :class:`QueryResult` as soon as the query returns.
    engine : Engine, optional
        Where the query maps its pool scoring over row shards (in-process by default).
    shard_size : int, optional
        Rows per shard of that scoring.

    Returns
    -------
    RoundOutcome
    """
    lab_ids, unl = pool.labelled_ids, pool.unlabelled_ids
    times: dict[str, float] = {}
    y_l, stats, acc = train_and_evaluate(learner, data, pool, train_seed, times)
    with _timed(times, "embed"):
        z = learner.embed(data.x_train)
    on = z.device
    result = strategy.query(
        z[torch.as_tensor(unl, device=on)], z[torch.as_tensor(lab_ids, device=on)], y_l.to(on),
        learner.head, min(budget, int(unl.size)), unlabelled_ids=unl, labelled_ids=lab_ids,
        n_classes=data.n_classes, engine=engine, shard_size=shard_size,
    )  # fmt: skip
    times[schema.time_column("query")] = float(
        result.info.get(schema.time_column("query"), math.nan)
    )
    if on_query is not None:
        on_query(result)
    z_np = z.cpu().numpy()
    with _timed(times, "project"):
        coords = project(z_np) if project is not None else None
    row = round_row(round, strategy, pool, result, acc, stats, times)
    t0 = time.perf_counter()
    out = _outcome(round, row, result, data, pool, z_np, coords)
    row[schema.time_column("frames")] = time.perf_counter() - t0  # frames and placed paths
    return out


def train_and_evaluate(
    learner: Learner, data: DataSource, pool: Pool, train_seed: int, times: dict[str, float]
) -> tuple[torch.Tensor, TrainStats, float]:
    """The first half of every round: train on the labelled set, then evaluate.

    Returns
    -------
    y_labelled : torch.Tensor of int64, shape (n_labelled,)
    stats : TrainStats
    accuracy : float
        On the test split.

    Raises
    ------
    AlfavizInputError
        When the unlabelled pool is exhausted.
    """
    if pool.unlabelled_ids.size == 0:
        raise AlfavizInputError("the unlabelled pool is exhausted: every sample is labelled.")
    lab_ids = pool.labelled_ids
    y_l = torch.as_tensor(pool.labels[lab_ids], dtype=torch.long)
    with _timed(times, "train"):
        stats = learner.fit(data.x_train[torch.as_tensor(lab_ids)], y_l, seed=train_seed)
    with _timed(times, "eval"):
        acc = learner.evaluate(data.x_test, data.y_test)
    return y_l, stats, acc


def round_row(
    r: int,
    strategy: Strategy,
    pool: Pool,
    result: QueryResult,
    accuracy: float,
    stats: TrainStats,
    times: dict[str, float],
) -> dict[str, Any]:
    info = result.info
    row: dict[str, Any] = {
        schema.ROUND: r,
        schema.STRATEGY: strategy.name,
        schema.N_LABELLED: pool.n_labelled,
        schema.LEVEL: float(info.get(schema.LEVEL, math.nan)),
        schema.N_CANDIDATES: int(info.get(schema.N_CANDIDATES, 0)),
        schema.N_KMEANS: int(info.get(schema.N_KMEANS, 0)),
        schema.N_FILL: int(info.get(schema.N_FILL, 0)),
        schema.ACCURACY: accuracy,
        schema.TRAIN_ACCURACY: stats.train_accuracy,
        schema.EPOCHS: stats.epochs,
        schema.BUDGET: result.budget,
        schema.RANDOM_STATE: _used_seed(strategy, info),
        **times,
    }
    for k, v in info.items():
        if k.startswith(schema.TIME_PREFIX) and k not in row and isinstance(v, (int, float)):
            row[k] = float(v)
    return row


def _used_seed(strategy: Strategy, info: Mapping[str, Any]) -> int:
    seed = info.get(schema.RANDOM_STATE, getattr(strategy, "random_state", None))
    return -1 if seed is None else int(seed)


def _outcome(
    r: int,
    row: dict[str, Any],
    result: QueryResult,
    data: DataSource,
    pool: Pool,
    z: np.ndarray,
    coords: np.ndarray | None,
) -> RoundOutcome:
    n = data.n_train
    ids = np.arange(n, dtype=np.int64)
    full = pd.DataFrame({schema.SAMPLE_ID: ids}).merge(
        result.samples, on=schema.SAMPLE_ID, how="left"
    )
    full.insert(0, schema.ROUND, r)
    full[schema.TRUE_LABEL] = data.y_train
    full[schema.LABEL] = pool.labels
    full[schema.LABELLED_ROUND] = pool.labelled_round
    coord_df = None
    if coords is not None:
        full[schema.X], full[schema.Y] = coords[:, 0], coords[:, 1]
        coord_df = schema.conform(
            pd.DataFrame({schema.SAMPLE_ID: ids, schema.X: coords[:, 0], schema.Y: coords[:, 1]}),
            schema.COORDS,
        )
    samples = fill_defaults(full)
    flips = result.flips.copy()
    flips.insert(0, schema.ROUND, r)
    selected = np.asarray(result.selected_ids, dtype=np.int64)
    queried = pd.DataFrame(
        {
            schema.SAMPLE_ID: selected,
            schema.ORDER: np.arange(selected.size),
            schema.FILL: samples[schema.FILL].to_numpy()[selected],
        }
    )
    paths = None
    if result.paths is not None and len(result.paths):
        paths = schema.conform(result.paths, schema.PATHS)
        if coords is not None:
            lab = pool.labelled_ids
            anchors = round_anchors(z, lab, pool.labels[lab], data.n_classes)
            paths = place_paths(paths, z, coords, anchors)
    crit = None
    if result.critical_eps is not None:
        crit = (result.samples[schema.SAMPLE_ID].to_numpy(np.int64), result.critical_eps)
    return RoundOutcome(
        r, row, samples, schema.conform(flips, schema.FLIPS),
        schema.conform(queried, schema.QUERIED), paths, z.astype(np.float32, copy=False),
        coord_df, result, crit,
    )  # fmt: skip


def flips_critical_eps(flips: pd.DataFrame, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A flips frame's critical ε as one matrix: ``(sample_ids, matrix)``.

    Parameters
    ----------
    flips : pandas.DataFrame
        One round's :data:`~alfaviz.schema.FLIPS` (or ``QUERY_FLIPS``) frame.
    n_classes : int

    Returns
    -------
    ids : numpy.ndarray of int64, shape (n,)
        The frame's sample ids, ascending.
    matrix : numpy.ndarray of float32, shape (n, n_classes)
        Row ``i`` for ``ids[i]``; inf where the pair never flips or has no row.
    """
    sid = flips[schema.SAMPLE_ID].to_numpy(np.int64)
    ids, row = np.unique(sid, return_inverse=True)
    matrix = np.full((ids.size, int(n_classes)), np.inf, dtype=np.float32)
    matrix[row, flips[schema.ANCHOR_CLASS].to_numpy(np.int64)] = flips[
        schema.CRITICAL_EPS
    ].to_numpy(np.float32)
    return ids, matrix


def round_anchors(
    z: np.ndarray, labelled_ids: np.ndarray, labels: np.ndarray, n_classes: int
) -> np.ndarray:
    """The class anchors of a round: the mean embedding of each class's labelled samples.

    Parameters
    ----------
    z : numpy.ndarray, shape (n_train, dim)
        The round's embeddings, row ``i`` for sample ``i``.
    labelled_ids : numpy.ndarray of int, shape (n_labelled,)
        The samples labelled at the start of the round (its training set).
    labels : numpy.ndarray of int, shape (n_labelled,)
        Their labels.
    n_classes : int

    Returns
    -------
    numpy.ndarray, shape (n_classes, dim)
        :func:`~alfaviz.alfamix.mixing.compute_anchors`, in the dtype of ``z``.
    """
    from alfaviz.alfamix.mixing import compute_anchors

    lab = np.asarray(labelled_ids, dtype=np.int64)
    return compute_anchors(
        torch.as_tensor(z[lab]), torch.as_tensor(np.asarray(labels, dtype=np.int64)), n_classes
    ).numpy()


PATH_REFERENCE_MAX = 20_000
"""Pool embeddings that path points are placed from, at most (a seeded subset beyond, plus the
paths' own samples, so that ``t = 0`` still lands on its sample)."""

PATH_EXACT_MAX = 5_000
"""Above this many reference embeddings, path points find their neighbours in a
:data:`PATH_DIM`-dimensional PCA space of the reference rather than in the embedding space."""

PATH_DIM = 32


def place_paths(
    paths: pd.DataFrame, z: Any, coords: np.ndarray, anchors: np.ndarray
) -> pd.DataFrame:
    """Put every point of some interpolation paths on the round's 2-D map.

    The mixed embedding at ``t`` is ``(1 - t) z_u + t z*_c``; it is placed from its nearest
    pool embeddings (:func:`~alfaviz.analysis.projection.place_points`), among at most
    :data:`PATH_REFERENCE_MAX` of them (and, above :data:`PATH_EXACT_MAX`, in a PCA space).

    Parameters
    ----------
    paths : pandas.DataFrame
        Conformed to :data:`~alfaviz.schema.PATHS`.
    z : numpy.ndarray or row reader, shape (n_train, dim)
        The round's embeddings, row ``i`` for sample ``i`` (or a reader whose
        ``z[index_array]`` gives those rows, e.g. a sharded round's
        :class:`~alfaviz.session.sharded_round.EmbeddingRows`: only the rows placed from are
        read).
    coords : numpy.ndarray, shape (n_train, 2)
        The round's 2-D layout of ``z``.
    anchors : numpy.ndarray, shape (n_classes, dim)
        From :func:`round_anchors`.

    Returns
    -------
    pandas.DataFrame
        ``paths`` with ``x`` and ``y`` filled in, conformed to :data:`~alfaviz.schema.PATHS`.
    """
    from alfaviz.analysis.projection import place_points

    sid = paths[schema.SAMPLE_ID].to_numpy(np.int64)
    cls = paths[schema.ANCHOR_CLASS].to_numpy(np.int64)
    t = paths[schema.PATH_T].to_numpy(np.float32)[:, None]
    ref = np.arange(z.shape[0])
    if ref.size > PATH_REFERENCE_MAX:  # a seeded subset of the pool, and the paths' own samples
        pick = np.random.default_rng(0).choice(ref.size, PATH_REFERENCE_MAX, replace=False)
        ref = np.union1d(pick, sid)
    pool_z = z[ref]
    ends, at = np.unique(sid, return_inverse=True)
    z_ends, a_ends = z[ends], anchors
    if ref.size > PATH_EXACT_MAX and z.shape[1] > PATH_DIM:
        # a large pool: neighbours found in a PCA space of the reference (a budget of 1,000 with
        # 10 classes draws 110,000 path points; in 512-d that took minutes on 2 cores). The
        # PCA map is affine, so a mixed point's image is the same mix of its two ends' images:
        # only the ends are projected, never the (n_points, dim) mixed embeddings.
        from sklearn.decomposition import PCA

        pca = PCA(n_components=PATH_DIM, svd_solver="randomized", random_state=0)
        pool_z = pca.fit(pool_z).transform(pool_z).astype(np.float32)  # as the points below
        z_ends = pca.transform(z_ends).astype(np.float32)
        a_ends = pca.transform(anchors.astype(z.dtype, copy=False)).astype(np.float32)
    pts = (1.0 - t) * z_ends[at] + t * a_ends[cls]
    xy = place_points(pts, pool_z, coords[ref])
    out = paths.copy()
    out[schema.X], out[schema.Y] = xy[:, 0], xy[:, 1]
    return schema.conform(out, schema.PATHS)


def interpolation_paths(
    head: torch.nn.Module,
    z: np.ndarray,
    sample_ids: np.ndarray,
    anchors: np.ndarray,
    *,
    steps: int,
    coords: np.ndarray | None = None,
) -> pd.DataFrame:
    """The interpolation paths of ``sample_ids``, framed and placed like the batch's.

    Predictions along ``z_u → z*_c`` for every anchor
    (:func:`~alfaviz.alfamix.query.paths_frame`, which the ALFA-Mix strategy uses for the
    batch), with each point placed on the round's map by :func:`place_paths`.

    Parameters
    ----------
    head : torch.nn.Module
        The round's classifier head; evaluated in eval mode without gradients.
    z : numpy.ndarray, shape (n_train, dim)
        The round's embeddings, row ``i`` for sample ``i``.
    sample_ids : numpy.ndarray of int, shape (m,)
        Global ids (rows of ``z``).
    anchors : numpy.ndarray, shape (n_classes, dim)
        From :func:`round_anchors`.
    steps : int
        Points per path, ``t = linspace(0, 1, steps)``.
    coords : numpy.ndarray, shape (n_train, 2), optional
        The round's 2-D layout; without it ``x`` and ``y`` stay NaN.

    Returns
    -------
    pandas.DataFrame
        Conformed to :data:`~alfaviz.schema.PATHS`: ``m * n_classes * steps`` rows.
    """
    from alfaviz._tensor import eval_mode
    from alfaviz.alfamix.query import paths_frame

    ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
    zt = torch.as_tensor(np.ascontiguousarray(z))
    with eval_mode(head):
        frame = paths_frame(head, zt, torch.as_tensor(anchors), ids, int(steps))
    paths = schema.conform(frame, schema.PATHS)
    if coords is not None and len(paths):
        paths = place_paths(paths, z, coords, anchors)
    return paths


def fill_defaults(full: pd.DataFrame) -> pd.DataFrame:
    """Fill the rows of labelled samples (absent from the query) with the schema defaults."""
    for col in schema.SAMPLES.columns:
        nan_default = isinstance(col.default, float) and math.isnan(col.default)
        if col.name in full.columns and not (col.required or nan_default):
            full[col.name] = full[col.name].fillna(col.default)
    return schema.conform(full, schema.SAMPLES)
