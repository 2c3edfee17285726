"""The ALFA-Mix candidate search (docs/algorithm.md, "Candidates").

:func:`find_candidates` says which unlabelled samples flip toward which anchors, up to the
stopping level. It works per sample once the anchors and the head are fixed:

1. :func:`score_pool` scores any shard of the pool independently, at every level of the
   schedule;
2. :func:`stopping_level` combines the shards' per-sample first flip levels into the global
   stopping level;
3. :func:`finalize_candidates` finishes a shard at that level.

:func:`find_candidates` is exactly these three steps, the first and the last mapped over row
shards by an :class:`~alfaviz.engine.Engine` (one shard, in-process, by default). The work is
done in blocks of rows, and every computation depends only on the rows of its block; shard
boundaries are multiples of the block size, so a sharded search computes exactly the blocks of
the whole-pool search and its results are bit-identical. None of these functions mutates its
inputs: the head's train/eval modes and its parameters' ``requires_grad`` flags are restored.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alfaviz._tensor import eval_mode, frozen_parameters
from alfaviz._validation import check_head, check_query_inputs
from alfaviz.alfamix._linear import AnchorIndex, linear_thresholds
from alfaviz.alfamix.mixing import (
    alpha_per_eps,
    compute_anchors,
    level_schedule,
    loss_gradients,
    mix,
    unit_gradient,
)
from alfaviz.engine import Engine, LocalEngine, check_engine, check_shard_size, row_shards
from alfaviz.errors import AlfavizInputError

__all__ = [
    "CandidateResult",
    "PoolScores",
    "finalize_candidates",
    "find_candidates",
    "score_pool",
    "stopping_level",
]

log = logging.getLogger(__name__)

AlphaMode = Literal["closed_form", "learned"]

LEARNED_ALPHA_MIN = 1e-8
"""Lower clamp of learned α (the release's ``clamp(alpha, min=1e-8, max=ε)``)."""

LEARNED_L2_COEF = 0.01
"""Weight of ``‖α‖₂`` in the learned-α objective ``−CE(h(z̃), ŷ) + 0.01·‖α‖₂``."""


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class CandidateResult:
    """The candidate search of docs/algorithm.md for one pool.

    Attributes
    ----------
    mask : numpy.ndarray of bool, shape (n_unlabelled,)
        The candidate set: flipped toward some anchor at some level up to ``level``.
    flips : numpy.ndarray of bool, shape (n_unlabelled, n_classes)
        Flipped toward each anchor at the stopping level.
    flip_to : numpy.ndarray of int32, shape (n_unlabelled, n_classes)
        Label after the flip at the stopping level, ``-1`` where no flip.
    critical_eps : numpy.ndarray of float64, shape (n_unlabelled, n_classes)
        The smallest ε that flips the pair (closed form, linear head: a float64 threshold
        within about 1e-5 relative of the literal one, see
        :func:`~alfaviz.alfamix._linear.linear_thresholds`); for other heads a bisection
        estimate (14 halvings between levels), and for learned α the first level at which a
        flip was seen.
        ``inf`` when nothing up to the last level (1.0 for the default schedule) flips it.
    step_norm : numpy.ndarray of float32, shape (n_unlabelled, n_classes)
        ``‖α ⊙ Δ‖``, the length of the step taken at the stopping level.
    first_flip_eps : numpy.ndarray of float64, shape (n_unlabelled,)
        Smallest level of the schedule at which the sample flipped toward any anchor (inf).
    pseudo_labels : numpy.ndarray of int64, shape (n_unlabelled,)
    level : float
        The stopping level ε.
    level_index : int
        Its index in ``levels``.
    levels : tuple of float
        The schedule (:func:`~alfaviz.alfamix.mixing.level_schedule`).
    n_candidates_per_level : tuple of int
        Size of the candidate set after each level that was evaluated.
    anchors : numpy.ndarray, shape (n_classes, dim)
    alpha : str
        ``"closed_form"`` or ``"learned"``.
    timings : dict
        Seconds per phase.
    """

    mask: np.ndarray
    flips: np.ndarray
    flip_to: np.ndarray
    critical_eps: np.ndarray
    step_norm: np.ndarray
    first_flip_eps: np.ndarray
    pseudo_labels: np.ndarray
    level: float
    level_index: int
    levels: tuple[float, ...]
    n_candidates_per_level: tuple[int, ...]
    anchors: np.ndarray
    alpha: str = "closed_form"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_candidates(self) -> int:
        """Size of the candidate set."""
        return int(self.mask.sum())

    @property
    def inconsistency(self) -> np.ndarray:
        """Number of anchors that flip each sample at the stopping level, shape (n_unlabelled,)."""
        return self.flips.sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class PoolScores:
    """Per-sample scores of one shard of the pool at every level (see :func:`score_pool`).

    Attributes
    ----------
    first_level : numpy.ndarray of int8 or int16, shape (n, n_classes)
        First level index at which each pair flips; ``len(levels)`` if never.
    critical_eps : numpy.ndarray of float64, shape (n, n_classes)
        Closed form, linear head: the smallest ε that flips the pair. Other heads: a bisection
        estimate. Learned α: the first level at which a flip was seen. ``inf`` if none.
    step_unit : numpy.ndarray of float32, shape (n, n_classes)
        ``‖α ⊙ Δ‖ / ε``. For the closed form this holds at every ε; for learned α it is the
        step at the first flip divided by that level (0 where the pair never flips).
    pseudo_labels : numpy.ndarray of int64, shape (n,)
    flip_to_levels : numpy.ndarray of int8/int16/int32 or None, shape (n, n_classes, n_levels)
        The level-by-level paths only (any other head, learned α): the label after the flip
        at every level, ``-1`` where the pair does not flip there. The exact path recomputes
        the labels at the stopping level instead (:func:`finalize_candidates`).
    block_rows : int
        Rows per block of the computation (:func:`finalize_candidates` uses the same).
    index : AnchorIndex or None
        The exact path's anchor index, which :func:`finalize_candidates` reuses for the same
        anchors instead of building it again (not part of the scores: never compared).
    """

    first_level: np.ndarray
    critical_eps: np.ndarray
    step_unit: np.ndarray
    pseudo_labels: np.ndarray
    flip_to_levels: np.ndarray | None = None
    block_rows: int = 0
    index: AnchorIndex | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # the index is a cache for this process: it does not travel to another (an engine's
        # worker), where the finish builds its own
        state = dict(self.__dict__)
        state["index"] = None
        return state


# --------------------------------------------------------------------------------------------
# helpers


def _chunk_rows(
    n: int,
    dim: int,
    n_classes: int,
    n_levels: int,
    itemsize: int,
    per_pair_dim: bool,
    max_bytes: int | None,
) -> int:
    """Rows per block so that the working set stays within ``max_bytes``.

    By default the budget is a quarter of the unlabelled matrix (at least 4 MiB, at most
    256 MiB) on the level-by-level paths, and half of it (at least 4 MiB, at most
    512 MiB) on the exact path. Its per-row estimate (:func:`_exact_row_bytes`) is a bound on
    what was measured: few large blocks keep the per-operation overhead low (at C = 100,
    2,048-row blocks took 22 µs a row against 31 µs for 400-row blocks), and the peak
    memory added by a query stays under twice that matrix. Exact-path blocks also stop at
    :data:`EXACT_BLOCK_F64_BYTES` of float64 (row, D) data, where larger ones got slower.
    """
    if max_bytes is None:
        if per_pair_dim:
            max_bytes = int(min(256 << 20, max(4 << 20, n * dim * itemsize // 4)))
        else:
            max_bytes = int(min(512 << 20, max(4 << 20, n * dim * itemsize // 2)))
    if per_pair_dim:  # level-by-level paths hold (rows, C, D) tensors, several of them
        per_row = 8 * itemsize * n_classes * dim
        cap = n
    else:  # float64 (row, D) temporaries, (row, C) arrays and a C² allowance
        per_row = _exact_row_bytes(dim, n_classes, n_levels)
        cap = max(8, EXACT_BLOCK_F64_BYTES // (8 * max(1, dim)))
    return int(max(8, min(n, cap, max_bytes // max(1, per_row))))


EXACT_BLOCK_F64_BYTES = 16 << 20
"""The exact path's blocks hold at most this much of one float64 (row, D) temporary: 4,096
rows at D = 512. Its elementwise passes run several times over such temporaries, which then
stay in the caches; at 200k × 512 × 10, blocks of 8,619 rows took 1.5-2.0 s against 1.1-1.4 s
for 4,096 (measured, dense and ReLU)."""


def _exact_row_bytes(dim: int, n_classes: int, n_levels: int) -> int:
    """Working memory per row of the exact path's first pass: 23 KB at D = 512, C = 10 and
    85 KB at C = 100, a bound on what was measured (7 KB, and about 50 KB at C = 100).

    Its C² term used to be twice as large (125 KB a row at C = 100). Halving it makes the
    C = 100 blocks about 1.5× larger, which measured faster (ReLU 512 × 100, interleaved
    runs in one process: 10k 0.85 → 0.74 s, 50k 1.77 → 1.63 s). Dropping it (3× larger
    blocks) was faster still (0.65 s, 1.50 s) but took the query's peak at 10k × 100 to 2.1×
    the pool. The second pass keeps its pieces (:func:`_flip_piece_rows`)."""
    return 8 * (5 * dim + (8 + 3 * n_levels) * n_classes + 8 * n_classes) + 4 * n_classes**2


def _flip_piece_rows(rows: int, dim: int, n_classes: int, n_levels: int) -> int:
    """Rows per piece of the exact path's second pass (flip labels of candidate rows), from
    the first pass's block of ``rows``: a candidate row's flipping pairs each compete with its
    reachable classes, (row, C, C) terms of float64 (measured 95 KB a row at C = 100), so the
    pieces take ``12 C²`` bytes a row more than a first-pass row (the size they had when the
    first pass's own estimate carried an ``8 C²`` allowance)."""
    per_row = _exact_row_bytes(dim, n_classes, n_levels)
    return int(max(8, rows * per_row // (per_row + 12 * n_classes * n_classes)))


def _index_bytes(z: torch.Tensor) -> int:
    """Memory bound of the anchor index's prefilter table for a pool ``z``: a quarter of the
    matrix, at least 4 MiB (the table is the cheap part; at C = 100 its lists alone would be
    1.5× a 10k × 512 matrix)."""
    return int(max(4 << 20, z.numel() * z.element_size() // 4))


def _is_affine(head: nn.Module) -> bool:
    return isinstance(head, nn.Linear)


FLIP_GROUP_BLOCKS = 32
"""The exact path's second pass (flip labels of the candidate rows) gathers the candidates of
this many consecutive blocks and works on them in block-sized pieces; shards are aligned to
the group, so the pieces, and hence the results, do not depend on the sharding."""


def _block_rows(
    z: torch.Tensor,
    n_classes: int,
    n_levels: int,
    head: nn.Module,
    alpha: str,
    max_bytes: int | None,
) -> int:
    """The block size of the computation for a pool ``z`` (its whole row count decides)."""
    n, d = z.shape
    return block_rows_for(n, d, z.element_size(), n_classes, n_levels, head, alpha, max_bytes)


def block_rows_for(
    n: int,
    dim: int,
    itemsize: int,
    n_classes: int,
    n_levels: int,
    head: nn.Module,
    alpha: str,
    max_bytes: int | None,
) -> int:
    """The block size of the computation for a pool of ``n`` rows of ``dim`` values of
    ``itemsize`` bytes, without the pool itself (a driver that never holds it)."""
    exact = alpha == "closed_form" and _is_affine(head)
    return _chunk_rows(int(n), int(dim), n_classes, n_levels, int(itemsize), not exact, max_bytes)


def shard_align(block_rows: int, head: nn.Module, alpha: str) -> int:
    """Shard boundaries are multiples of this many rows, so that a sharded search computes
    exactly the blocks of the whole pool's (:data:`FLIP_GROUP_BLOCKS` blocks on the exact
    path, one block otherwise)."""
    exact = alpha == "closed_form" and _is_affine(head)
    return block_rows * FLIP_GROUP_BLOCKS if exact else block_rows


def _level_dtype(n_levels: int) -> type[np.integer]:
    """Smallest integer type that holds level indices ``0..n_levels``."""
    return np.int8 if n_levels < 127 else np.int16


def _label_dtype(n_classes: int) -> torch.dtype:
    """Smallest signed integer type that holds labels ``-1..n_classes-1``."""
    if n_classes <= 127:
        return torch.int8
    return torch.int16 if n_classes <= 32767 else torch.int32


def _label_np_dtype(n_classes: int) -> type[np.integer]:
    """:func:`_label_dtype` as a numpy type."""
    return {torch.int8: np.int8, torch.int16: np.int16}.get(_label_dtype(n_classes), np.int32)


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _check_alpha(alpha: object) -> None:
    if not isinstance(alpha, str) or alpha not in ("closed_form", "learned"):
        raise AlfavizInputError(f"alpha must be 'closed_form' or 'learned'; got {alpha!r}.")


def _check_int(name: str, value: object, minimum: int, hint: str = "") -> int:
    """``value`` as an int ``>= minimum`` (bools refused), or one clear error line."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise AlfavizInputError(
            f"{name} must be an integer >= {minimum}; got {value!r}.{' ' + hint if hint else ''}"
        )
    return int(value)


def _check_real(name: str, value: object, *, positive: bool) -> float:
    """``value`` as a finite float, ``> 0`` or ``>= 0`` (bools refused)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(v) and (v > 0 if positive else v >= 0)):
        bound = "> 0" if positive else ">= 0"
        raise AlfavizInputError(f"{name} must be a finite number {bound}; got {value!r}.")
    return v


# --------------------------------------------------------------------------------------------
# the level loop of the level-by-level paths (written once)


@dataclass(frozen=True)
class _LevelFlips:
    """What one block of rows does at every level.

    ``first`` (m, C) int64: first flipping level (``n_levels`` if none); ``labels``
    (m, C, n_levels): the label after the flip at each level, ``-1`` where none; ``at_first``
    (m, C) float: the value reported with the first flip (0 where none), or ``None``.
    """

    first: torch.Tensor
    labels: torch.Tensor
    at_first: torch.Tensor | None


FlipsAt = Callable[[int, float], tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]]


def _level_loop(levels: Sequence[float], flips_at: FlipsAt, shape: tuple[int, int]) -> _LevelFlips:
    """Evaluate one block at every level; ``flips_at(j, eps)`` gives (flipped, labels, value).

    ``flipped`` is a bool (m, C) tensor, ``labels`` the head's argmax at the mixed points
    (m, C), ``value`` an optional (m, C) float tensor recorded at each pair's first flip.
    """
    n_lv = len(levels)
    first: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    at_first: torch.Tensor | None = None
    for j, eps in enumerate(levels):
        flipped, lab, value = flips_at(j, float(eps))
        if first is None:
            first = torch.full(shape, n_lv, dtype=torch.long, device=flipped.device)
            labels = torch.full(
                (*shape, n_lv), -1, dtype=_label_dtype(shape[1]), device=flipped.device
            )
        assert labels is not None
        new = flipped & (first == n_lv)
        first = torch.where(new, j, first)
        labels[:, :, j] = torch.where(flipped, lab, -1).to(labels.dtype)
        if value is not None:
            at_first = torch.zeros_like(value) if at_first is None else at_first
            at_first = torch.where(new, value, at_first)
    assert first is not None
    assert labels is not None
    return _LevelFlips(first, labels, at_first)


# --------------------------------------------------------------------------------------------
# scoring (per sample)


def score_pool(
    z_unlabelled: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    *,
    alpha: AlphaMode = "closed_form",
    learn_steps: int = 5,
    learn_lr: float = 0.1,
    max_chunk_bytes: int | None = None,
    block_rows: int | None = None,
    progress: bool = False,
) -> PoolScores:
    """Per-sample flip scores of a pool (or a shard of it) at every level of the schedule.

    Every level is evaluated: the stopping rule needs the whole pool's counts, so a shard
    cannot stop early on its own (:func:`stopping_level` decides after all shards).

    Parameters
    ----------
    z_unlabelled : torch.Tensor, shape (n, dim)
    anchors : torch.Tensor, shape (n_classes, dim)
        From :func:`~alfaviz.alfamix.mixing.compute_anchors` on the labelled set.
    head : nn.Module
        An ``nn.Linear`` takes the exact threshold path; any other differentiable head the
        batched level-by-level path. Evaluated in eval mode; its modes are restored.
    levels : list of float
    alpha : {"closed_form", "learned"}
    learn_steps, learn_lr : int, float
        Optimiser settings for learned α (docs/algorithm.md).
    max_chunk_bytes : int, optional
        Working-memory bound for a block of samples.
    block_rows : int, optional
        Rows per block; by default derived from ``max_chunk_bytes`` and this shard's size.
    progress : bool
        Show a ``tqdm.auto`` bar.

    Returns
    -------
    PoolScores
    """
    _check_alpha(alpha)
    n_cls = anchors.shape[0]
    if block_rows is None:
        block_rows = _block_rows(z_unlabelled, n_cls, len(levels), head, alpha, max_chunk_bytes)
    rows = max(1, int(block_rows))
    with eval_mode(head):
        if alpha == "closed_form" and _is_affine(head):
            return _score_linear(z_unlabelled, anchors, head, levels, rows, progress)
        if alpha == "closed_form":
            return _score_generic(z_unlabelled, anchors, head, levels, rows, progress)
        return _score_learned(
            z_unlabelled, anchors, head, levels, learn_steps, learn_lr, rows, progress
        )


def _score_linear(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Linear,
    levels: list[float],
    rows: int,
    progress: bool,
) -> PoolScores:
    """The exact threshold path (:func:`~alfaviz.alfamix._linear.linear_thresholds`)."""
    n = z.shape[0]
    n_cls = anchors.shape[0]
    index = AnchorIndex(anchors, max_bytes=_index_bytes(z))
    first = np.empty((n, n_cls), dtype=_level_dtype(len(levels)))
    crit = np.empty((n, n_cls), dtype=np.float64)
    unit = np.empty((n, n_cls), dtype=np.float32)
    yh = np.empty(n, dtype=np.int64)
    starts = range(0, n, rows)
    for s in _progress(starts, len(starts), "ALFA-Mix thresholds", progress):
        ch = linear_thresholds(head, z[s : s + rows], anchors, levels, index=index)
        first[s : s + rows] = ch.first_level.cpu().numpy()
        crit[s : s + rows] = ch.critical_eps.cpu().numpy()
        unit[s : s + rows] = ch.step_unit.cpu().numpy()
        yh[s : s + rows] = ch.y_hat.cpu().numpy()
    return PoolScores(first, crit, unit, yh, None, rows, index)


@torch.no_grad()
def _score_generic(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    rows: int,
    progress: bool,
) -> PoolScores:
    """Closed-form α for any differentiable head: all anchors and levels at once per block."""
    n, d = z.shape
    n_cls = anchors.shape[0]
    n_lv = len(levels)
    anchors = anchors.to(z.dtype)
    first = np.empty((n, n_cls), dtype=_level_dtype(n_lv))
    crit = np.empty((n, n_cls), dtype=np.float64)
    unit_np = np.empty((n, n_cls), dtype=np.float32)
    labels = np.empty((n, n_cls, n_lv), dtype=_label_np_dtype(n_cls))
    yh = np.empty(n, dtype=np.int64)
    starts = range(0, n, rows)
    for s in _progress(starts, len(starts), "ALFA-Mix levels", progress):
        zc = z[s : s + rows]
        y_hat = head(zc).argmax(dim=1)
        g_hat, ok = unit_gradient(loss_gradients(head, zc, y_hat))
        delta = anchors[None, :, :] - zc[:, None, :]  # (m, C, D)
        unit = alpha_per_eps(delta, g_hat[:, None, :])  # α per unit of ε, (m, C, D)

        def flips_at(j: int, eps: float, zc=zc, unit=unit, y_hat=y_hat, ok=ok) -> tuple:
            zt = mix(zc[:, None, :], anchors[None, :, :], eps * unit)
            lab = head(zt.reshape(-1, d)).argmax(dim=1).reshape(-1, n_cls)
            fin = torch.isfinite(zt).all(dim=2)
            return (lab != y_hat[:, None]) & ok[:, None] & fin, lab, None

        lf = _level_loop(levels, flips_at, (zc.shape[0], n_cls))
        first[s : s + rows] = lf.first.cpu().numpy()
        labels[s : s + rows] = lf.labels.cpu().numpy()
        crit[s : s + rows] = _bisect_critical(zc, anchors, head, levels, lf.first, y_hat, unit)
        unit_np[s : s + rows] = (unit * delta).norm(dim=2).cpu().numpy()
        yh[s : s + rows] = y_hat.cpu().numpy()
    return PoolScores(first, crit, unit_np, yh, labels, rows)


@torch.no_grad()
def _bisect_critical(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    first: torch.Tensor,
    y_hat: torch.Tensor,
    unit: torch.Tensor,
    iters: int = 14,
) -> np.ndarray:
    """Bisection estimate of the critical ε between the level before the first flip and it.

    Parameters
    ----------
    z : torch.Tensor, shape (m, dim)
        One block of rows.
    first : torch.Tensor of int64, shape (m, C)
    y_hat : torch.Tensor of int64, shape (m,)
    unit : torch.Tensor, shape (m, C, dim)
        α per unit of ε (:func:`~alfaviz.alfamix.mixing.alpha_per_eps`).

    Returns
    -------
    numpy.ndarray of float64, shape (m, C)
        ``inf`` where the pair never flips.
    """
    n_lv = len(levels)
    crit = torch.full(first.shape, math.inf, dtype=torch.float64, device=z.device)
    fu, fc = torch.nonzero(first < n_lv, as_tuple=True)
    if fu.numel():
        lv = torch.tensor(levels, dtype=z.dtype, device=z.device)
        f = first[fu, fc]
        hi = lv[f]
        lo = torch.where(f > 0, lv[(f - 1).clamp_min(0)], torch.zeros_like(hi))
        zu, a, u, yu = z[fu], anchors[fc], unit[fu, fc], y_hat[fu]
        for _ in range(iters):
            mid = (lo + hi) / 2
            fl = head(mix(zu, a, mid[:, None] * u)).argmax(dim=1) != yu
            hi = torch.where(fl, mid, hi)
            lo = torch.where(fl, lo, mid)
        crit[fu, fc] = hi.double()
    return crit.cpu().numpy()


def _score_learned(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    steps: int,
    lr: float,
    rows: int,
    progress: bool,
) -> PoolScores:
    """Learned α (docs/algorithm.md): Adam on −CE + 0.01‖α‖₂, α clamped to [1e-8, ε].

    As in the authors' release, each of the ``steps`` iterations first evaluates the head at
    the current α (a flip seen at any of them counts) and then takes one optimiser step, at
    learning rate ``lr`` for the first two thirds of the iterations and ``lr / 10`` after; α
    starts at ε/2 in every coordinate and is clamped to ``[1e-8, ε]`` (the √D scaling belongs
    to the closed form only). **(fix)** One Adam optimiser is kept for all iterations; the
    release re-creates it at every step.
    """
    n = z.shape[0]
    n_cls = anchors.shape[0]
    n_lv = len(levels)
    anchors = anchors.to(z.dtype).detach()
    first = np.empty((n, n_cls), dtype=_level_dtype(n_lv))
    unit_np = np.empty((n, n_cls), dtype=np.float32)
    labels = np.empty((n, n_cls, n_lv), dtype=_label_np_dtype(n_cls))
    yh = np.empty(n, dtype=np.int64)
    lv = np.asarray(levels, dtype=np.float64)
    starts = range(0, n, rows)
    with frozen_parameters(head), torch.enable_grad():
        for s in _progress(starts, len(starts), "learned α", progress):
            zc = z[s : s + rows].detach()
            with torch.no_grad():
                y = head(zc).argmax(dim=1)
            flips_at = partial(_learned_level, head=head, zc=zc, anchors=anchors, y=y,
                               steps=int(steps), lr=float(lr))  # fmt: skip
            lf = _level_loop(levels, flips_at, (zc.shape[0], n_cls))
            f = lf.first.cpu().numpy()
            first[s : s + rows] = f
            labels[s : s + rows] = lf.labels.cpu().numpy()
            norm = (
                lf.at_first.detach().double().cpu().numpy()
                if lf.at_first is not None
                else np.zeros(f.shape)
            )
            unit_np[s : s + rows] = np.where(f < n_lv, norm / lv[np.minimum(f, n_lv - 1)], 0.0)
            yh[s : s + rows] = y.cpu().numpy()
    crit = np.where(first < n_lv, lv[np.minimum(first, n_lv - 1)], np.inf)
    return PoolScores(first, crit, unit_np, yh, labels, rows)


def _learned_level(
    j: int,
    eps: float,
    *,
    head: nn.Module,
    zc: torch.Tensor,
    anchors: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of learned α for a block: (flipped, label at the first flip, ‖α ⊙ Δ‖ there)."""
    m, d = zc.shape
    n_cls = anchors.shape[0]
    delta = anchors[None] - zc[:, None]
    a = torch.full((m, n_cls, d), eps / 2, dtype=zc.dtype, device=zc.device, requires_grad=True)
    opt = torch.optim.Adam([a], lr=lr)  # (fix) one optimiser for all iterations
    seen = torch.zeros(m, n_cls, dtype=torch.bool, device=zc.device)
    lab_seen = torch.full((m, n_cls), -1, dtype=torch.long, device=zc.device)
    norm_seen = torch.zeros(m, n_cls, dtype=zc.dtype, device=zc.device)
    yy = y[:, None].expand(m, n_cls).reshape(-1)
    for i in range(steps):
        out = head(mix(zc[:, None], anchors[None], a).reshape(-1, d))
        with torch.no_grad():
            lab = out.argmax(dim=1).reshape(m, n_cls)
            new = (lab != y[:, None]) & ~seen
            lab_seen = torch.where(new, lab, lab_seen)
            norm_seen = torch.where(new, (a * delta).norm(dim=2), norm_seen)
            seen |= new
        if i == steps - 1:  # the release never evaluates the result of its last step
            break
        loss = -F.cross_entropy(out, yy, reduction="none") + LEARNED_L2_COEF * a.reshape(
            -1, d
        ).norm(dim=1)
        opt.zero_grad()
        loss.sum().backward()
        for group in opt.param_groups:  # the release's schedule: lr/10 in the last third
            group["lr"] = lr if i < steps * 2 / 3 else lr / 10
        opt.step()
        with torch.no_grad():
            a.clamp_(LEARNED_ALPHA_MIN, eps)
    return seen, lab_seen, norm_seen.detach()


# --------------------------------------------------------------------------------------------
# the stopping rule and the finish


def stopping_level(
    first_level_per_sample: np.ndarray, budget: int, n_levels: int
) -> tuple[int, list[int]]:
    """The stopping rule of docs/algorithm.md, from every shard's per-sample first flip level.

    Parameters
    ----------
    first_level_per_sample : numpy.ndarray of int, shape (n_unlabelled,)
        ``min`` over anchors of the first flipping level index (``n_levels`` if none).
    budget : int
    n_levels : int

    Returns
    -------
    level_index : int
        First level at which the candidate count strictly exceeds ``budget``, else the last.
    counts : list of int
        Candidate count after each level up to ``level_index``.
    """
    return stopping_level_from_counts(
        first_level_counts(first_level_per_sample, n_levels), budget, n_levels
    )


def first_level_counts(first_level_per_sample: np.ndarray, n_levels: int) -> np.ndarray:
    """How many samples first flip at each level: int64 counts of shape (n_levels + 1,), the
    last for "never". The counts of a pool are the sum of its shards' counts."""
    lvl = np.minimum(np.asarray(first_level_per_sample).astype(np.int64), n_levels)
    return np.bincount(lvl, minlength=n_levels + 1)


def stopping_level_from_counts(
    hist: np.ndarray, budget: int, n_levels: int
) -> tuple[int, list[int]]:
    """:func:`stopping_level` from the pool's :func:`first_level_counts` (summed over shards)."""
    counts = np.cumsum(np.asarray(hist, dtype=np.int64)[:n_levels]).tolist()
    for j, c in enumerate(counts):
        if c > budget:
            return j, counts[: j + 1]
    return n_levels - 1, counts


def finalize_candidates(
    z_unlabelled: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    scores: PoolScores,
    level_index: int,
    *,
    alpha: AlphaMode = "closed_form",
    max_chunk_bytes: int | None = None,
) -> CandidateResult:
    """Turn one shard's :class:`PoolScores` into a :class:`CandidateResult` at a level.

    The level-by-level paths read the flips at the stopping level from
    ``scores.flip_to_levels``. The exact path computes the flip labels at the stopping level
    in a second pass over the candidate rows only, block by block (the blocks of
    :func:`score_pool`). Nothing passed in is modified.

    Parameters
    ----------
    z_unlabelled : torch.Tensor, shape (n, dim)
        The shard that ``scores`` scored.
    anchors, head, levels
        As for :func:`score_pool`.
    scores : PoolScores
    level_index : int
        The stopping level (:func:`stopping_level`).
    alpha : {"closed_form", "learned"}
    max_chunk_bytes : int, optional
        Only used when ``scores.block_rows`` is unset.

    Returns
    -------
    CandidateResult
        ``n_candidates_per_level`` and ``timings`` are left empty (see :func:`find_candidates`).
    """
    _check_alpha(alpha)
    n_lv = len(levels)
    j = int(level_index)
    first = scores.first_level
    mask = (first <= j).any(axis=1)
    lv = np.asarray(levels, dtype=np.float64)
    fmin = first.min(axis=1) if first.size else np.full(first.shape[0], n_lv)
    first_eps = np.where(fmin < n_lv, lv[np.minimum(fmin, n_lv - 1)], np.inf)
    eps = float(levels[j])
    if scores.flip_to_levels is not None:  # level-by-level paths: flips *at* the level
        flip_to = scores.flip_to_levels[:, :, j].astype(np.int32)
        flips = flip_to >= 0
    else:  # exact path: thresholds are monotone in ε; labels by a second, cheap pass
        flips = first <= j
        flip_to = _exact_flip_labels(z_unlabelled, anchors, head, levels, scores, mask, j,
                                     max_chunk_bytes)  # fmt: skip
        flip_to[~flips] = -1  # int32, in place: no (n, C) int64 temporaries
    if alpha == "learned":  # the step taken at the first flip
        step_norm = np.where(
            flips, scores.step_unit.astype(np.float64) * lv[np.minimum(first, n_lv - 1)], 0.0
        ).astype(np.float32)
    else:  # the step taken at the stopping level
        step_norm = scores.step_unit * np.float32(eps)
    return CandidateResult(
        mask=mask,
        flips=flips,
        flip_to=flip_to,
        critical_eps=_read_only(scores.critical_eps),
        step_norm=step_norm,
        first_flip_eps=first_eps,
        pseudo_labels=_read_only(scores.pseudo_labels),
        level=eps,
        level_index=j,
        levels=tuple(levels),
        n_candidates_per_level=(),
        anchors=anchors.detach().cpu().numpy().copy(),
        alpha=alpha,
    )


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: shared with the scores without a copy, and safe from callers."""
    v = a.view()
    v.setflags(write=False)
    return v


def _exact_flip_labels(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    scores: PoolScores,
    mask: np.ndarray,
    j: int,
    max_chunk_bytes: int | None,
) -> np.ndarray:
    """Flip labels at level ``j`` for the candidate rows, int32 (n, C), ``-1`` where none.

    The candidates of :data:`FLIP_GROUP_BLOCKS` consecutive blocks are gathered and labelled
    in pieces of :func:`_flip_piece_rows` rows: few calls, and memory bounded as in the first
    pass.
    """
    n = z.shape[0]
    n_cls = anchors.shape[0]
    out = np.full((n, n_cls), -1, dtype=np.int32)
    if not mask.any():
        return out
    rows = scores.block_rows or _block_rows(z, n_cls, len(levels), head, "closed_form",
                                            max_chunk_bytes)  # fmt: skip
    group = rows * FLIP_GROUP_BLOCKS
    piece = _flip_piece_rows(rows, z.shape[1], n_cls, len(levels))
    index = scores.index
    if index is None or not index.indexes(anchors):
        index = AnchorIndex(anchors, max_bytes=_index_bytes(z))
    with eval_mode(head):
        for s in range(0, n, group):
            cand = s + np.nonzero(mask[s : s + group])[0]
            for c in range(0, cand.size, piece):
                blk = cand[c : c + piece]
                idx = torch.as_tensor(blk, device=z.device)
                ch = linear_thresholds(head, z[idx], anchors, levels, flip_level=j, index=index)
                assert ch.flip_to is not None
                out[blk] = ch.flip_to.cpu().numpy()
    return out


def _concat_results(parts: Sequence[CandidateResult]) -> CandidateResult:
    """Concatenate per-shard results (same level, levels and anchors) along the rows."""
    if len(parts) == 1:
        return parts[0]
    p0 = parts[0]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts], axis=0)

    return replace(
        p0,
        mask=cat("mask"),
        flips=cat("flips"),
        flip_to=cat("flip_to"),
        critical_eps=cat("critical_eps"),
        step_norm=cat("step_norm"),
        first_flip_eps=cat("first_flip_eps"),
        pseudo_labels=cat("pseudo_labels"),
    )


# --------------------------------------------------------------------------------------------
# public pure functions


def _score_shard(z: torch.Tensor, **kwargs: Any) -> PoolScores:
    return score_pool(z, **kwargs)


def _finalize_shard(shard: tuple[torch.Tensor, PoolScores], **kwargs: Any) -> CandidateResult:
    z, scores = shard
    return finalize_candidates(z, scores=scores, **kwargs)


def _parallelism(engine: Engine) -> int:
    p = getattr(engine, "parallelism", 1)
    return p if isinstance(p, int) and not isinstance(p, bool) and p > 0 else 1


def find_candidates(
    z_unlabelled: torch.Tensor,
    z_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    head: nn.Module,
    budget: int,
    *,
    alpha_cap: float = 0.2,
    n_classes: int | None = None,
    alpha: AlphaMode = "closed_form",
    learn_steps: int = 5,
    learn_lr: float = 0.1,
    max_chunk_bytes: int | None = None,
    progress: bool = False,
    engine: Engine | None = None,
    shard_size: int | None = None,
) -> CandidateResult:
    """The ALFA-Mix candidate set (docs/algorithm.md).

    Parameters
    ----------
    z_unlabelled : torch.Tensor, shape (n_unlabelled, dim)
        Embeddings of the pool, on any device (the work happens there).
    z_labelled : torch.Tensor, shape (n_labelled, dim)
    y_labelled : torch.Tensor of int, shape (n_labelled,)
    head : nn.Module
        Maps embeddings to logits; an ``nn.Linear`` takes the exact threshold path.
    budget : int
        The batch size B; the search stops after the first level with more than B candidates.
    alpha_cap : float
        Step of the ε schedule (default 0.2: levels 0.2, 0.4, ..., 1.0).
    n_classes : int, optional
        Inferred from the head.
    alpha : {"closed_form", "learned"}
        How α is found (closed form or learned).
    learn_steps, learn_lr : int, float
        Adam iterations and learning rate for learned α.
    max_chunk_bytes : int, optional
        Bound on working memory per block of samples.
    progress : bool
        Show progress with ``tqdm.auto``.
    engine : Engine, optional
        Maps the scoring and the finish over row shards (:class:`~alfaviz.engine.LocalEngine`
        by default).
    shard_size : int, optional
        Rows per shard (by default one shard per worker of the engine, see
        ``Engine.parallelism``, and one shard in-process). Rounded up to a multiple of the
        block size (of :data:`FLIP_GROUP_BLOCKS` blocks on the exact path), so that sharded
        results are bit-identical to the whole pool's.

    Returns
    -------
    CandidateResult

    Raises
    ------
    AlfavizInputError
        On shape mismatches, non-finite embeddings, a bad budget, labels out of range, an empty
        labelled set or pool, a bad ``alpha``, ``shard_size`` or ``engine``.
    """
    _check_alpha(alpha)
    if head is None or not isinstance(head, nn.Module):
        check_head(head, 0, torch.empty(0))  # raises its one clear line
    with eval_mode(head):  # the checks run the head: batch-norm statistics stay untouched
        zu, zl, yl, n_cls, budget = check_query_inputs(
            z_unlabelled, z_labelled, y_labelled, head, budget, n_classes, differentiable=True
        )
    learn_steps = _check_int("learn_steps", learn_steps, 0, "Use 5 (the release's default).")
    learn_lr = _check_real("learn_lr", learn_lr, positive=True)
    engine = check_engine(engine) or LocalEngine()
    shard_size = check_shard_size(shard_size)
    levels = level_schedule(alpha_cap)
    t0 = time.perf_counter()
    with eval_mode(head):
        anchors = compute_anchors(zl, yl, n_cls)
        rows = _block_rows(zu, n_cls, len(levels), head, alpha, max_chunk_bytes)
        align = shard_align(rows, head, alpha)
        if shard_size is None:  # at least one shard per worker of a parallel engine
            shard_size = -(-zu.shape[0] // max(1, _parallelism(engine))) or None
        shards = [zu[s:e] for s, e in row_shards(zu.shape[0], shard_size, align=align)]
        common: dict[str, Any] = {"anchors": anchors, "head": head, "levels": levels}
        score = partial(_score_shard, **common, alpha=alpha, learn_steps=learn_steps,
                        learn_lr=learn_lr, block_rows=rows, progress=progress)  # fmt: skip
        scores = list(engine.map(score, shards))
        t1 = time.perf_counter()
        fmin = np.concatenate([sc.first_level.min(axis=1) for sc in scores])
        j, counts = stopping_level(fmin, budget, len(levels))
        finish = partial(_finalize_shard, **common, level_index=j, alpha=alpha)
        parts = list(engine.map(finish, list(zip(shards, scores, strict=True))))
    res = _concat_results(parts)
    t2 = time.perf_counter()
    log.debug("ALFA-Mix stopped at level %.3g with %d candidates", res.level, res.n_candidates)
    return replace(
        res,
        n_candidates_per_level=tuple(counts),
        timings={"alpha_search": t1 - t0, "finalize": t2 - t1},
    )
