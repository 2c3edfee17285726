"""The ALFA-Mix candidate search (docs/algorithm.md, "Candidates").

:func:`find_candidates` says which unlabelled samples flip toward which anchors, up to the
stopping level. It works per sample once the anchors and the head are fixed:
:func:`score_pool` scores any shard of the pool independently, :func:`stopping_level` combines
the shards' per-sample first flip levels into the global stopping level, and
:func:`finalize_candidates` finishes a shard at that level. :func:`find_candidates` is exactly
these three steps, mapped over shards by an engine (one shard in-process by default).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alfaviz._validation import check_query_inputs
from alfaviz.alfamix._linear import AnchorIndex, linear_thresholds
from alfaviz.alfamix.mixing import compute_anchors, level_schedule, loss_gradients
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
        The exact smallest ε that flips the pair (closed form, linear head); for other heads
        a bisection estimate, and for learned α the first level at which a flip was seen.
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


@dataclass
class PoolScores:
    """Per-sample scores of one shard of the pool (see :func:`score_pool`).

    Attributes
    ----------
    first_level : numpy.ndarray of int8/int16, shape (n, n_classes)
        First level index at which each pair flips; ``len(levels)`` if never.
    critical_eps : numpy.ndarray of float64, shape (n, n_classes)
    step_unit : numpy.ndarray of float32, shape (n, n_classes)
        Step length per unit of ε (closed form); for learned α the step at the first flip.
    pseudo_labels : numpy.ndarray of int64, shape (n,)
    flip_to : numpy.ndarray of int64 or None, shape (n, n_classes)
        Only for the level-by-level paths, at the last level evaluated.
    flip_to_levels : numpy.ndarray of int16 or None, shape (n, n_classes, n_levels)
        Only for the exact threshold path: the label after the flip at every level.
    levels_done : int
        Levels evaluated (the level-by-level paths stop early).
    """

    first_level: np.ndarray
    critical_eps: np.ndarray
    step_unit: np.ndarray
    pseudo_labels: np.ndarray
    flip_to: np.ndarray | None = None
    levels_done: int = 0
    flip_to_levels: np.ndarray | None = None


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
    256 MiB), which keeps the peak memory added by a query well under twice that matrix.
    """
    if max_bytes is None:
        max_bytes = int(min(256 << 20, max(4 << 20, n * dim * itemsize // 4)))
    if per_pair_dim:  # level-by-level paths hold (rows, C, D) tensors, several of them
        per_row = 8 * itemsize * n_classes * dim
    else:
        per_row = 8 * (10 * dim + (8 + 3 * n_levels) * n_classes + 8 * n_classes)
    return int(max(8, min(n, max_bytes // max(1, per_row))))


def _level_dtype(n_levels: int) -> type[np.integer]:
    """Smallest integer type that holds level indices ``0..n_levels``."""
    return np.int8 if n_levels < 127 else np.int16


def _is_affine(head: nn.Module) -> bool:
    return isinstance(head, nn.Linear)


class _EvalMode:
    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.was = module.training

    def __enter__(self) -> nn.Module:
        self.module.eval()
        return self.module

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was)


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


# --------------------------------------------------------------------------------------------
# scoring (per sample)


def score_pool(
    z_unlabelled: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    *,
    alpha: AlphaMode = "closed_form",
    budget: int | None = None,
    learn_steps: int = 5,
    learn_lr: float = 0.1,
    max_chunk_bytes: int | None = None,
    progress: bool = False,
) -> PoolScores:
    """Per-sample flip scores of a pool (or a shard of it) at every level of the schedule.

    Parameters
    ----------
    z_unlabelled : torch.Tensor, shape (n, dim)
    anchors : torch.Tensor, shape (n_classes, dim)
        From :func:`~alfaviz.alfamix.mixing.compute_anchors` on the labelled set.
    head : nn.Module
        An ``nn.Linear`` takes the exact threshold path; any other differentiable head the
        batched level-by-level path.
    levels : list of float
    alpha : {"closed_form", "learned"}
    budget : int, optional
        Lets the level-by-level paths stop at the first level whose candidate count exceeds
        it (only valid when the whole pool is scored at once).
    learn_steps, learn_lr : int, float
        Optimiser settings for learned α (docs/algorithm.md).
    max_chunk_bytes : int, optional
        Working-memory bound for a block of samples.
    progress : bool
        Show a ``tqdm.auto`` bar.

    Returns
    -------
    PoolScores
    """
    n, d = z_unlabelled.shape
    n_cls = anchors.shape[0]
    if alpha == "closed_form" and _is_affine(head):
        rows = _chunk_rows(
            n, d, n_cls, len(levels), z_unlabelled.element_size(), False, max_chunk_bytes
        )
        sa = AnchorIndex(anchors)
        first = np.empty((n, n_cls), dtype=_level_dtype(len(levels)))
        crit = np.empty((n, n_cls), dtype=np.float64)
        unit = np.empty((n, n_cls), dtype=np.float32)
        yh = np.empty(n, dtype=np.int64)
        starts = range(0, n, rows)
        for s in _progress(starts, len(starts), "ALFA-Mix thresholds", progress):
            ch = linear_thresholds(head, z_unlabelled[s : s + rows], anchors, levels, index=sa)
            first[s : s + rows] = ch.first_level.cpu().numpy()
            crit[s : s + rows] = ch.critical_eps.cpu().numpy()
            unit[s : s + rows] = ch.step_unit.cpu().numpy()
            yh[s : s + rows] = ch.y_hat.cpu().numpy()
        return PoolScores(first, crit, unit, yh, None, len(levels))
    if alpha == "closed_form":
        return _score_generic(
            z_unlabelled, anchors, head, levels, budget, max_chunk_bytes, progress
        )
    if alpha == "learned":
        return _score_learned(
            z_unlabelled,
            anchors,
            head,
            levels,
            budget,
            learn_steps,
            learn_lr,
            max_chunk_bytes,
            progress,
        )
    raise AlfavizInputError(f"alpha must be 'closed_form' or 'learned'; got {alpha!r}.")


def _closed_form_mixed(
    z: torch.Tensor, g: torch.Tensor, anchors: torch.Tensor, eps: float
) -> torch.Tensor:
    """Mixed points for every (row, anchor) at level ``eps``: shape (n, C, D)."""
    d = z.shape[1]
    delta = anchors[None, :, :] - z[:, None, :]
    scale = (eps / math.sqrt(d)) * delta.norm(dim=2, keepdim=True) / g.norm(dim=1)[:, None, None]
    alpha = scale * g[:, None, :] / (delta + 1e-8)
    return (1 - alpha) * z[:, None, :] + alpha * anchors[None, :, :]


@torch.no_grad()
def _score_generic(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    budget: int | None,
    max_chunk_bytes: int | None,
    progress: bool,
) -> PoolScores:
    """Closed-form α for any differentiable head: all anchors at once, in bounded blocks."""
    n, d = z.shape
    n_cls = anchors.shape[0]
    n_lv = len(levels)
    rows = _chunk_rows(n, d, n_cls, n_lv, z.element_size(), True, max_chunk_bytes)
    first = np.full((n, n_cls), n_lv, dtype=_level_dtype(n_lv))
    flip_to = np.full((n, n_cls), -1, dtype=np.int64)
    yh = np.empty(n, dtype=np.int64)
    gnorm_zero = np.zeros(n, dtype=bool)
    done = 0
    for j, eps in enumerate(levels):
        for s in _progress(
            range(0, n, rows), math.ceil(n / rows), f"ALFA-Mix ε={eps:.3g}", progress
        ):
            zc = z[s : s + rows]
            y_hat = head(zc).argmax(dim=1)
            g = loss_gradients(head, zc, y_hat)
            ok = g.norm(dim=1) > 0
            zt = _closed_form_mixed(zc, g, anchors, eps)
            lab = head(zt.reshape(-1, d)).argmax(dim=1).reshape(-1, n_cls)
            fin = torch.isfinite(zt).all(dim=2)
            flipped = (lab != y_hat[:, None]) & ok[:, None] & fin
            lab = torch.where(flipped, lab, torch.full_like(lab, -1))
            fl = flipped.cpu().numpy()
            blk = first[s : s + rows]
            blk[fl & (blk == n_lv)] = j
            flip_to[s : s + rows] = lab.cpu().numpy()
            if j == 0:
                yh[s : s + rows] = y_hat.cpu().numpy()
                gnorm_zero[s : s + rows] = ~ok.cpu().numpy()
        done = j + 1
        if budget is not None and int((first.min(axis=1) <= j).sum()) > budget:
            break
    crit = _bisect_critical(z, anchors, head, levels, first, yh, rows)
    return PoolScores(first, crit, _step_units(z, anchors, head, yh, rows), yh, flip_to, done)


@torch.no_grad()
def _bisect_critical(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    first: np.ndarray,
    y_hat: np.ndarray,
    rows: int,
    iters: int = 14,
) -> np.ndarray:
    """Bisection estimate of the critical ε between the level before the first flip and it."""
    n_lv = len(levels)
    crit = np.full(first.shape, np.inf)
    fu, fc = np.nonzero(first < n_lv)
    if not fu.size:
        return crit
    lv = np.asarray(levels)
    hi = lv[first[fu, fc]]
    lo = np.where(first[fu, fc] > 0, lv[np.maximum(first[fu, fc] - 1, 0)], 0.0)
    d = z.shape[1]
    dev = z.device
    step = max(1, rows)
    for s in range(0, fu.size, step):
        u = torch.as_tensor(fu[s : s + step], device=dev)
        c = torch.as_tensor(fc[s : s + step], device=dev)
        zu = z[u]
        yu = torch.as_tensor(y_hat[fu[s : s + step]], device=dev)
        g = loss_gradients(head, zu, yu)
        a = anchors[c]
        delta = a - zu
        base = delta.norm(dim=1, keepdim=True) / g.norm(dim=1, keepdim=True) * g / (delta + 1e-8)
        lo_t = torch.as_tensor(lo[s : s + step], dtype=z.dtype, device=dev)
        hi_t = torch.as_tensor(hi[s : s + step], dtype=z.dtype, device=dev)
        for _ in range(iters):
            mid = (lo_t + hi_t) / 2
            alpha = (mid / math.sqrt(d))[:, None] * base
            zt = (1 - alpha) * zu + alpha * a
            fl = head(zt).argmax(dim=1) != yu
            hi_t = torch.where(fl, mid, hi_t)
            lo_t = torch.where(fl, lo_t, mid)
        crit[fu[s : s + step], fc[s : s + step]] = hi_t.double().cpu().numpy()
    return crit


@torch.no_grad()
def _step_units(
    z: torch.Tensor, anchors: torch.Tensor, head: nn.Module, y_hat: np.ndarray, rows: int
) -> np.ndarray:
    """``‖α ⊙ Δ‖ / ε`` for the closed form, for every pair, shape (n, C)."""
    n, d = z.shape
    out = np.empty((n, anchors.shape[0]), dtype=np.float32)
    for s in range(0, n, rows):
        zc = z[s : s + rows]
        g = loss_gradients(head, zc, torch.as_tensor(y_hat[s : s + rows], device=z.device))
        delta = anchors[None] - zc[:, None]
        r = delta / (delta + 1e-8)
        gh = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
        v = (gh[:, None, :] * r).norm(dim=2)
        out[s : s + rows] = (delta.norm(dim=2) * v / math.sqrt(d)).cpu().numpy()
    return out


def _score_learned(
    z: torch.Tensor,
    anchors: torch.Tensor,
    head: nn.Module,
    levels: list[float],
    budget: int | None,
    steps: int,
    lr: float,
    max_chunk_bytes: int | None,
    progress: bool,
) -> PoolScores:
    """Learned α (docs/algorithm.md): Adam on −CE + 0.01‖α‖₂, α clamped to [1e-8, ε']."""
    n, d = z.shape
    n_cls = anchors.shape[0]
    n_lv = len(levels)
    rows = _chunk_rows(n, d, n_cls, n_lv, z.element_size(), True, max_chunk_bytes)
    first = np.full((n, n_cls), n_lv, dtype=_level_dtype(n_lv))
    flip_to = np.full((n, n_cls), -1, dtype=np.int64)
    unit = np.zeros((n, n_cls), dtype=np.float32)
    yh = np.empty(n, dtype=np.int64)
    with torch.no_grad():
        for s in range(0, n, rows):
            yh[s : s + rows] = head(z[s : s + rows]).argmax(dim=1).cpu().numpy()
    for p in head.parameters():
        p.requires_grad_(False)
    try:
        done = 0
        for j, eps in enumerate(levels):
            cap = eps / math.sqrt(d)
            for s in _progress(
                range(0, n, rows), math.ceil(n / rows), f"learned α ε={eps:.3g}", progress
            ):
                zc = z[s : s + rows].detach()
                y = torch.as_tensor(yh[s : s + rows], device=z.device)
                m = zc.shape[0]
                delta = anchors[None] - zc[:, None]
                a = torch.full(
                    (m, n_cls, d), cap / 2, dtype=zc.dtype, device=zc.device, requires_grad=True
                )
                opt = torch.optim.Adam([a], lr=lr)  # (fix) one optimiser for all steps
                seen = torch.zeros(m, n_cls, dtype=torch.bool, device=zc.device)
                lab_seen = torch.full((m, n_cls), -1, dtype=torch.long, device=zc.device)
                norm_seen = torch.zeros(m, n_cls, dtype=zc.dtype, device=zc.device)
                yy = y[:, None].expand(m, n_cls).reshape(-1)
                for step in range(steps + 1):
                    with torch.enable_grad():
                        zt = (1 - a) * zc[:, None] + a * anchors[None]
                        out = head(zt.reshape(-1, d))
                    lab = out.argmax(dim=1).reshape(m, n_cls)
                    new = (lab != y[:, None]) & ~seen
                    with torch.no_grad():
                        lab_seen = torch.where(new, lab, lab_seen)
                        norm_seen = torch.where(new, (a * delta).norm(dim=2), norm_seen)
                    seen |= new
                    if step == steps:
                        break
                    with torch.enable_grad():
                        loss = -F.cross_entropy(out, yy, reduction="none") + 0.01 * a.reshape(
                            -1, d
                        ).norm(dim=1)
                        opt.zero_grad()
                        loss.sum().backward()
                    opt.step()
                    with torch.no_grad():
                        a.clamp_(1e-8, cap)
                fl = seen.cpu().numpy()
                blk = first[s : s + rows]
                newly = fl & (blk == n_lv)
                blk[newly] = j
                unit_blk = unit[s : s + rows]
                unit_blk[newly] = (norm_seen.detach().cpu().numpy() / eps)[newly]
                flip_to[s : s + rows] = lab_seen.cpu().numpy()
            done = j + 1
            if budget is not None and int((first.min(axis=1) <= j).sum()) > budget:
                break
    finally:
        for p in head.parameters():
            p.requires_grad_(True)
    lv = np.asarray(levels)
    crit = np.where(first < n_lv, lv[np.minimum(first, n_lv - 1)], np.inf)
    return PoolScores(first, crit, unit, yh, flip_to, done)


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
        Candidate count after each evaluated level.
    """
    hist = np.bincount(np.minimum(first_level_per_sample, n_levels), minlength=n_levels + 1)
    counts = np.cumsum(hist[:n_levels]).tolist()
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

    For the exact path this computes the flip labels at the stopping level for the candidates
    (a second pass over candidate rows only). ``scores`` is consumed: its ``step_unit`` array
    becomes the result's ``step_norm`` in place, which saves an (n, C) copy.
    """
    n_lv = len(levels)
    first = scores.first_level
    mask = (first <= level_index).any(axis=1)
    # level-by-level paths record flips *at* the stopping level; thresholds are monotone in ε
    flips = scores.flip_to >= 0 if scores.flip_to is not None else first <= level_index
    lv = np.asarray(levels)
    fmin = first.min(axis=1) if first.size else np.zeros(0, dtype=np.int16)
    first_eps = np.where(fmin < n_lv, lv[np.minimum(fmin, n_lv - 1)], np.inf)
    eps = float(levels[level_index])
    if scores.flip_to is not None:
        flip_to = np.where(flips, scores.flip_to, -1)
    else:  # exact path: a second, cheap pass over the candidate rows only
        flip_to = np.full(first.shape, -1, dtype=np.int32)
        rows_idx = np.nonzero(mask)[0]
        if rows_idx.size:
            d = z_unlabelled.shape[1]
            n_cls = anchors.shape[0]
            rows = _chunk_rows(
                z_unlabelled.shape[0], d, n_cls, n_lv, z_unlabelled.element_size(), False,
                max_chunk_bytes,
            )  # fmt: skip
            sa = AnchorIndex(anchors)
            idx_t = torch.as_tensor(rows_idx, device=z_unlabelled.device)
            for s in range(0, rows_idx.size, rows):
                ch = linear_thresholds(
                    head, z_unlabelled[idx_t[s : s + rows]], anchors, levels,
                    flip_level=level_index, index=sa,
                )  # fmt: skip
                assert ch.flip_to is not None
                blk = rows_idx[s : s + rows]
                flip_to[blk] = np.where(flips[blk], ch.flip_to.cpu().numpy(), -1)
    if alpha == "learned":
        step_norm = np.where(
            flips, scores.step_unit.astype(np.float64) * lv[np.minimum(first, n_lv - 1)], 0.0
        )
    else:
        step_norm = scores.step_unit  # reused in place: the step taken at the stopping level
        step_norm *= np.float32(eps)
    return CandidateResult(
        mask=mask,
        flips=flips,
        flip_to=flip_to.astype(np.int32, copy=False),
        critical_eps=scores.critical_eps,
        step_norm=step_norm,
        first_flip_eps=first_eps,
        pseudo_labels=scores.pseudo_labels,
        level=eps,
        level_index=int(level_index),
        levels=tuple(levels),
        n_candidates_per_level=(),
        anchors=anchors.detach().cpu().numpy(),
        alpha=alpha,
    )


# --------------------------------------------------------------------------------------------
# public pure functions


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
        How α is found (§3a or §3b).
    learn_steps, learn_lr : int, float
        Adam steps and learning rate for learned α.
    max_chunk_bytes : int, optional
        Bound on working memory per block of samples.
    progress : bool
        Show progress with ``tqdm.auto``.

    Returns
    -------
    CandidateResult

    Raises
    ------
    AlfavizInputError
        On shape mismatches, non-finite embeddings, a bad budget, labels out of range, an empty
        labelled set or pool.
    """
    if alpha not in ("closed_form", "learned"):
        raise AlfavizInputError(f"alpha must be 'closed_form' or 'learned'; got {alpha!r}.")
    zu, zl, yl, n_cls, budget = check_query_inputs(
        z_unlabelled, z_labelled, y_labelled, head, budget, n_classes
    )
    levels = level_schedule(alpha_cap)
    t0 = time.perf_counter()
    with _EvalMode(head):
        anchors = compute_anchors(zl, yl, n_cls)
        scores = score_pool(
            zu,
            anchors,
            head,
            levels,
            alpha=alpha,
            budget=budget,
            learn_steps=learn_steps,
            learn_lr=learn_lr,
            max_chunk_bytes=max_chunk_bytes,
            progress=progress,
        )
        t1 = time.perf_counter()
        fmin = scores.first_level.min(axis=1)
        j, counts = stopping_level(fmin, budget, scores.levels_done or len(levels))
        res = finalize_candidates(
            zu, anchors, head, levels, scores, j, alpha=alpha, max_chunk_bytes=max_chunk_bytes
        )
    t2 = time.perf_counter()
    log.debug("ALFA-Mix stopped at level %.3g with %d candidates", res.level, res.n_candidates)
    return replace(
        res,
        n_candidates_per_level=tuple(counts),
        timings={"alpha_search": t1 - t0, "finalize": t2 - t1},
    )
