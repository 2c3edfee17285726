"""The whole ALFA-Mix query: candidates, a diverse pick by k-means, and the random fill.

See docs/algorithm.md, "Selection".
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz.alfamix.candidates import (
    AlphaMode,
    CandidateResult,
    _check_int,
    _check_real,
    find_candidates,
)
from alfaviz.alfamix.kmeans import kmeans, nearest_to_centroids
from alfaviz.alfamix.mixing import mixing_path
from alfaviz.engine import Engine
from alfaviz.errors import AlfavizInputError

__all__ = ["QueryOutcome", "alfamix_query", "kmeans_pick", "paths_frame"]


@dataclass(frozen=True)
class QueryOutcome:
    """The result of :func:`alfamix_query`.

    Attributes
    ----------
    selected : numpy.ndarray of int64, shape (budget,)
        Unique positions into ``z_unlabelled``: k-means picks first, then the fill.
    candidates : CandidateResult
    from_fill : numpy.ndarray of bool, shape (budget,)
        Which entries of ``selected`` came from the uniform random fill.
    clusters : numpy.ndarray of int64, shape (n_unlabelled,)
        k-means cluster of each candidate, ``-1`` for non-candidates.
    n_kmeans : int
    n_fill : int
    timings : dict
    kmeans_inertia : float
        Inertia of the k-means clustering of the candidates (``nan`` when there were none).
    """

    selected: np.ndarray
    candidates: CandidateResult
    from_fill: np.ndarray
    clusters: np.ndarray
    n_kmeans: int
    n_fill: int
    timings: dict[str, float] = field(default_factory=dict)
    kmeans_inertia: float = math.nan


def alfamix_query(
    z_unlabelled: torch.Tensor,
    z_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    head: nn.Module,
    budget: int,
    *,
    alpha_cap: float = 0.2,
    random_state: int = 0,
    n_classes: int | None = None,
    alpha: AlphaMode = "closed_form",
    kmeans_n_init: int = 1,
    kmeans_max_iter: int = 50,
    kmeans_tol: float = 1e-4,
    learn_steps: int = 5,
    learn_lr: float = 0.1,
    max_chunk_bytes: int | None = None,
    progress: bool = False,
    engine: Engine | None = None,
    shard_size: int | None = None,
) -> QueryOutcome:
    """The whole ALFA-Mix query: candidates, diverse pick by k-means, random fill.

    Parameters
    ----------
    z_unlabelled, z_labelled, y_labelled, head, budget, alpha_cap, n_classes, alpha
        As for :func:`find_candidates`.
    random_state : int
        Seeds k-means and the fill.
    kmeans_n_init, kmeans_max_iter, kmeans_tol
        Explicit k-means settings (greedy k-means++ seeding, ``2 + ln k`` local trials).
    learn_steps, learn_lr, max_chunk_bytes, progress, engine, shard_size
        As for :func:`find_candidates`.

    Returns
    -------
    QueryOutcome
        ``selected`` holds exactly ``budget`` unique positions into ``z_unlabelled``.
    """
    kmeans_n_init = _check_int("kmeans_n_init", kmeans_n_init, 1, "Use 1 or more seedings.")
    kmeans_max_iter = _check_int("kmeans_max_iter", kmeans_max_iter, 1)
    kmeans_tol = _check_real("kmeans_tol", kmeans_tol, positive=False)
    random_state = _check_seed(random_state)
    t0 = time.perf_counter()
    cand = find_candidates(
        z_unlabelled,
        z_labelled,
        y_labelled,
        head,
        budget,
        alpha_cap=alpha_cap,
        n_classes=n_classes,
        alpha=alpha,
        learn_steps=learn_steps,
        learn_lr=learn_lr,
        max_chunk_bytes=max_chunk_bytes,
        progress=progress,
        engine=engine,
        shard_size=shard_size,
    )
    t1 = time.perf_counter()
    zu = (
        z_unlabelled
        if isinstance(z_unlabelled, torch.Tensor)
        else torch.as_tensor(np.asarray(z_unlabelled))
    )
    n = zu.shape[0]
    picked, clusters, inertia = _kmeans_pick(
        zu, cand.mask, budget, random_state, kmeans_n_init, kmeans_max_iter, kmeans_tol
    )
    t2 = time.perf_counter()
    n_kmeans = int(picked.size)
    fill = _random_fill(n, picked, budget - n_kmeans, random_state)
    selected = np.concatenate([picked, fill]).astype(np.int64)
    from_fill = np.zeros(budget, dtype=bool)
    from_fill[n_kmeans:] = True
    t3 = time.perf_counter()
    timings = dict(cand.timings)
    timings.update({"candidates": t1 - t0, "kmeans": t2 - t1, "fill": t3 - t2, "total": t3 - t0})
    return QueryOutcome(
        selected, cand, from_fill, clusters, n_kmeans, int(fill.size), timings, inertia
    )


def _check_seed(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not (0 <= value < 2**63)
    ):
        raise AlfavizInputError(
            f"random_state must be an integer in 0..2**63-1; got {value!r}. Pass a seed such as 0."
        )
    return int(value)


def _kmeans_pick(
    z: torch.Tensor,
    mask: np.ndarray,
    budget: int,
    seed: int,
    n_init: int,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means on the L2-normalised candidates; the member nearest each centroid.

    Returns the picked positions, the cluster of every sample (``-1`` for non-candidates)
    and the inertia.
    """
    clusters = np.full(z.shape[0], -1, dtype=np.int64)
    cand_idx = np.nonzero(mask)[0]
    x = z[torch.as_tensor(cand_idx, device=z.device)]
    nearest, labels, inertia = kmeans_pick(x, budget, seed, n_init, max_iter, tol)
    clusters[cand_idx] = labels
    return cand_idx[nearest], clusters, inertia


def kmeans_pick(
    z_candidates: torch.Tensor,
    budget: int,
    seed: int,
    n_init: int = 1,
    max_iter: int = 50,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The diverse pick of docs/algorithm.md: k-means on the L2-normalised candidates.

    Parameters
    ----------
    z_candidates : torch.Tensor, shape (n_candidates, dim)
        The candidates' embeddings, in pool order.
    budget : int
        ``k = min(budget, n_candidates)`` clusters.
    seed, n_init, max_iter, tol
        As for :func:`alfamix_query`.

    Returns
    -------
    picked : numpy.ndarray of int64, shape (k,)
        Positions into ``z_candidates``: the member nearest each centroid.
    clusters : numpy.ndarray of int64, shape (n_candidates,)
        The cluster of every candidate.
    inertia : float
        ``nan`` when there are no candidates.
    """
    n = int(z_candidates.shape[0])
    if n == 0:  # (fix) zero candidates: everything comes from the fill
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), math.nan
    x = z_candidates.float()
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    km = kmeans(x, min(budget, n), n_init=n_init, max_iter=max_iter, tol=tol, random_state=seed)
    nearest = nearest_to_centroids(x, km.labels, km.centers).cpu().numpy().astype(np.int64)
    return nearest, km.labels.cpu().numpy().astype(np.int64), km.inertia


def _random_fill(n: int, picked: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` positions drawn uniformly without replacement (fix) from those not yet picked."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(n), picked, assume_unique=True)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA1FA]))
    return rng.choice(rest, size=k, replace=False).astype(np.int64)


@torch.no_grad()
def paths_frame(
    head: nn.Module,
    z: torch.Tensor,
    anchors: torch.Tensor,
    rows: np.ndarray,
    steps: int,
    *,
    sample_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """Predictions along z_u → z*_c for ``rows``: one row per (sample, anchor, t).

    The one implementation of the interpolation paths: the ALFA-Mix strategy calls it for the
    selected batch, and :func:`alfaviz.session.round.interpolation_paths` for any sample on
    demand.

    Parameters
    ----------
    head : nn.Module
        The classifier head (C logits from a D-dimensional embedding).
    z : torch.Tensor, shape (n, D)
    anchors : torch.Tensor, shape (C, D)
    rows : numpy.ndarray of int, shape (m,)
        Positions into ``z`` of the samples whose paths are wanted.
    steps : int
        Points per path, ``t = linspace(0, 1, steps)``.
    sample_ids : numpy.ndarray of int, shape (m,), optional
        The ids written in the ``sample_id`` column for ``rows``; the positions themselves by
        default.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample_id, anchor_class, path_t, path_pred, path_prob``, ``m * C * steps``
        rows ordered by sample (as in ``rows``), anchor and ``t``; empty (with the columns)
        when ``rows`` is empty.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    ids = rows if sample_ids is None else np.asarray(sample_ids, dtype=np.int64).reshape(-1)
    if ids.shape != rows.shape:
        raise AlfavizInputError(
            f"sample_ids must give one id per row; got {ids.size} ids for {rows.size} rows."
        )
    parts = []
    for s in range(0, rows.size, 256):
        r = rows[s : s + 256]
        _, probs = mixing_path(
            head, z[torch.as_tensor(r, device=z.device)], anchors.to(z.dtype), steps
        )
        pred = probs.argmax(dim=3)
        pmax = probs.max(dim=3).values
        m, n_cls, n_t = pred.shape
        t = np.linspace(0, 1, n_t)
        parts.append(
            pd.DataFrame(
                {
                    schema.SAMPLE_ID: np.repeat(ids[s : s + 256], n_cls * n_t),
                    schema.ANCHOR_CLASS: np.tile(np.repeat(np.arange(n_cls), n_t), m),
                    schema.PATH_T: np.tile(t, m * n_cls).astype(np.float32),
                    schema.PATH_PRED: pred.reshape(-1).cpu().numpy().astype(np.int32),
                    schema.PATH_PROB: pmax.reshape(-1).float().cpu().numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                schema.SAMPLE_ID: np.zeros(0, np.int64),
                schema.ANCHOR_CLASS: np.zeros(0, np.int64),
                schema.PATH_T: np.zeros(0, np.float32),
                schema.PATH_PRED: np.zeros(0, np.int32),
                schema.PATH_PROB: np.zeros(0, np.float32),
            }
        )
    return pd.concat(parts, ignore_index=True)
