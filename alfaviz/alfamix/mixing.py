"""The mathematics of ALFA-Mix as pure tensor functions.

This module implements ``../shared/alfamix.md`` §2-§4 exactly. Everything here is a pure function
of tensors (no state, no I/O) so that tests can call it directly and a pool can be scored in
shards: once the anchors and the head are fixed, every result is per sample.

Notation (as in the paper): ``z_u`` an unlabelled embedding, ``z*_c`` the anchor of class ``c``,
``Δ = z*_c − z_u``, ``g_u`` the gradient of the cross-entropy against the pseudo-label, ``ε`` a
level of the schedule and ``ε' = ε / sqrt(D)``.

Two ways to evaluate the closed-form flips are provided:

* :func:`plain_flip_labels` follows the definition literally (build α, mix, apply the head) for
  any list of (sample, anchor, level) triples, in the dtype of the inputs. It works for any head.
* :func:`linear_thresholds` is the fast path for an ``nn.Linear`` head. The mixed point is
  ``z_u + s · (ĝ_u ⊙ r_{u,c})`` with ``s = ε'‖Δ_{u,c}‖`` and ``r = Δ ⊘ (Δ + 1e-8)``; logits are
  affine in ``s``, so the smallest ``s`` at which some class overtakes the pseudo-label is a
  closed-form threshold. ``r`` differs from 1 only where ``|Δ|`` is tiny; those coordinates are
  found with a per-dimension binary search over the sorted anchors and corrected exactly
  (sparse), so ReLU features, whose anchors and samples share exact zeros, are honoured. Pairs
  whose threshold lies within a relative ``1e-3`` of a level are re-decided by
  :func:`plain_flip_labels`, so the candidate set equals the literal definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DELTA_EPS",
    "ChunkThresholds",
    "closed_form_alpha",
    "compute_anchors",
    "level_schedule",
    "linear_thresholds",
    "loss_gradients",
    "mix",
    "mixing_path",
    "plain_flip_labels",
    "pseudo_labels",
]

DELTA_EPS = 1e-8
"""The ``1e-8`` in ``α = ε'·(‖Δ‖/‖g‖)·g ⊘ (Δ + 1e-8)`` (alfamix.md §3a)."""

_NEAR = 1e-4
"""|Δ| below which the mask ``r = Δ ⊘ (Δ + 1e-8)`` is corrected exactly (``1 − r ≤ 1e-4`` above)."""

_BAND = 1e-3
"""Relative distance of a threshold to a level below which the literal definition decides."""


def level_schedule(alpha_cap: float) -> list[float]:
    """The ε levels of alfamix.md §4: ``k · alpha_cap`` while the previous level is < 1.0.

    Parameters
    ----------
    alpha_cap : float
        Step of the schedule, in ``(0, 1]`` (0.2 for the closed form, 1/32 for learned α).

    Returns
    -------
    list of float
        ``[0.2, 0.4, 0.6, 0.8, 1.0]`` for the default ``alpha_cap=0.2``.
    """
    if not (isinstance(alpha_cap, (int, float)) and 0 < float(alpha_cap) <= 1.0):
        from alfaviz.errors import AlfavizInputError

        raise AlfavizInputError(f"alpha_cap must be a number in (0, 1]; got {alpha_cap!r}.")
    levels: list[float] = []
    k = 1
    while not levels or levels[-1] < 1.0 - 1e-12:
        levels.append(k * float(alpha_cap))
        k += 1
    return levels


def compute_anchors(
    z_labelled: torch.Tensor, y_labelled: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Per-class mean embeddings z*_c (alfamix.md §2).

    A class with no labelled sample uses the mean of all labelled embeddings. Anchors are neither
    normalised nor excluded.

    Parameters
    ----------
    z_labelled : torch.Tensor, shape (n_labelled, dim)
    y_labelled : torch.Tensor of int, shape (n_labelled,)
    n_classes : int

    Returns
    -------
    torch.Tensor, shape (n_classes, dim)
        In the dtype and on the device of ``z_labelled``; the sums are accumulated in float64.
    """
    z64 = z_labelled.double()
    sums = torch.zeros(n_classes, z64.shape[1], dtype=torch.float64, device=z64.device)
    sums.index_add_(0, y_labelled, z64)
    counts = torch.bincount(y_labelled, minlength=n_classes).to(torch.float64)
    overall = z64.mean(dim=0, keepdim=True)
    anchors = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], overall)
    return anchors.to(z_labelled.dtype)


@torch.no_grad()
def pseudo_labels(head: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """ŷ = argmax h(z), shape (n_samples,)."""
    return head(z).argmax(dim=1)


def loss_gradients(head: nn.Module, z: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """Gradient of CE(h(z), ŷ) with respect to z, one row per sample (alfamix.md §3a).

    The sum reduction is used; only the direction of each row matters.

    Parameters
    ----------
    head : nn.Module
    z : torch.Tensor, shape (n_samples, dim)
    y_hat : torch.Tensor of int, shape (n_samples,)

    Returns
    -------
    torch.Tensor, shape (n_samples, dim), dtype of ``z``
    """
    with torch.enable_grad():
        zz = z.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(head(zz), y_hat, reduction="sum")
        (grad,) = torch.autograd.grad(loss, zz)
    return grad.detach()


def closed_form_alpha(
    eps: float, z_u: torch.Tensor, anchor: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """The closed-form mixing ratio of alfamix.md §3a, literally.

    ``α = ε' · (‖Δ‖ / ‖g‖) · g ⊘ (Δ + 1e-8)`` with ``ε' = ε / sqrt(D)`` and ``Δ = anchor − z_u``.
    No clipping. Rows with ``‖g‖ = 0`` give non-finite values, exactly as the definition does;
    callers treat such samples as not flippable.

    Parameters
    ----------
    eps : float
        The level ε.
    z_u : torch.Tensor, shape (..., dim)
    anchor : torch.Tensor, shape broadcastable to ``z_u``
    grad : torch.Tensor, shape broadcastable to ``z_u``

    Returns
    -------
    torch.Tensor, shape of ``z_u``
    """
    d = z_u.shape[-1]
    delta = anchor - z_u
    scale = (
        (eps / math.sqrt(d)) * delta.norm(dim=-1, keepdim=True) / grad.norm(dim=-1, keepdim=True)
    )
    return scale * grad / (delta + DELTA_EPS)


def mix(z_u: torch.Tensor, anchor: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``z̃ = α ⊙ z*_c + (1 − α) ⊙ z_u`` (alfamix.md §3), in the release's operation order."""
    return (1 - alpha) * z_u + alpha * anchor


@torch.no_grad()
def plain_flip_labels(
    head: nn.Module,
    z: torch.Tensor,
    grad: torch.Tensor,
    anchors: torch.Tensor,
    rows: torch.Tensor,
    classes: torch.Tensor,
    eps: torch.Tensor,
    *,
    chunk: int = 4096,
) -> torch.Tensor:
    """Labels the head predicts at the closed-form mixed points, by the literal definition.

    Parameters
    ----------
    head : nn.Module
    z : torch.Tensor, shape (n_samples, dim)
        Unlabelled embeddings.
    grad : torch.Tensor, shape (n_samples, dim)
        Their loss gradients (:func:`loss_gradients`).
    anchors : torch.Tensor, shape (n_classes, dim)
    rows, classes : torch.Tensor of int, shape (n_triples,)
        Which sample and which anchor each triple mixes.
    eps : torch.Tensor of float, shape (n_triples,)
        The level ε of each triple.
    chunk : int
        Triples evaluated at once (bounds memory to ``chunk × dim`` elements).

    Returns
    -------
    torch.Tensor of int64, shape (n_triples,)
        argmax of the head at each mixed point; ``-1`` where ``‖g‖ = 0`` or the mixed point is
        not finite (such samples are not flippable, alfamix.md §3a fix).
    """
    out = torch.empty(rows.shape[0], dtype=torch.long, device=z.device)
    d = z.shape[1]
    for s in range(0, rows.shape[0], chunk):
        r = rows[s : s + chunk]
        c = classes[s : s + chunk]
        zu = z[r]
        a = anchors[c]
        g = grad[r]
        e = eps[s : s + chunk].to(z.dtype)[:, None]
        delta = a - zu
        alpha = (e / math.sqrt(d)) * delta.norm(dim=1, keepdim=True) / g.norm(dim=1, keepdim=True)
        alpha = alpha * g / (delta + DELTA_EPS)
        zt = (1 - alpha) * zu + alpha * a
        lab = head(zt).argmax(dim=1)
        ok = torch.isfinite(zt).all(dim=1) & (g.norm(dim=1) > 0)
        out[s : s + chunk] = torch.where(ok, lab, torch.full_like(lab, -1))
    return out


@dataclass
class ChunkThresholds:
    """Per-(sample, anchor) results of :func:`linear_thresholds` for one block of samples.

    Attributes
    ----------
    y_hat : torch.Tensor of int64, shape (n,)
        Pseudo-labels.
    critical_eps : torch.Tensor of float64, shape (n, n_classes)
        Exact smallest ε that flips each pair; ``inf`` when no ε does (or ``‖g‖ = 0``).
    first_level : torch.Tensor of int64, shape (n, n_classes)
        Index of the first level of the schedule at which the pair flips, ``n_levels`` if none.
        Decided by the literal definition wherever the threshold is within 1e-3 of a level.
    step_unit : torch.Tensor of float64, shape (n, n_classes)
        ``‖α ⊙ Δ‖ / ε``: multiply by a level to get the length of the step taken there.
    grad : torch.Tensor, shape (n, dim)
        Loss gradients in the dtype of the embeddings.
    flip_to : torch.Tensor of int64 or None, shape (n, n_classes)
        Label after the flip at ``flip_level`` (``-1`` where the pair does not flip there).
    """

    y_hat: torch.Tensor
    critical_eps: torch.Tensor
    first_level: torch.Tensor
    step_unit: torch.Tensor
    grad: torch.Tensor
    flip_to: torch.Tensor | None = None


class _SortedAnchors:
    """Per-dimension sorted anchor values, for finding |Δ| < _NEAR by binary search."""

    def __init__(self, anchors64: torch.Tensor) -> None:
        # (dim, n_classes): row d holds the anchors' values in dimension d, sorted.
        self.values, self.order = torch.sort(anchors64.T.contiguous(), dim=1)
        # dimensions where every anchor has the same value: the mask is then per sample.
        self.common = self.values[:, 0] == self.values[:, -1]
        self.common_value = self.values[:, 0]
        # exact zeros (ReLU): anchors that are exactly 0 in a dimension that is not common
        zero = (anchors64 == 0) & ~self.common[None, :]
        self.zero_dims = torch.nonzero(zero.any(dim=0)).flatten()
        self.zero_mask = zero[:, self.zero_dims].to(anchors64.dtype)  # (C, n_zero_dims)
        # dimensions holding an anchor that is near zero but not zero: a zero sample there
        # needs the sparse search; elsewhere its only near anchors are the exact zeros
        tiny = (anchors64 != 0) & (anchors64.abs() < 2.1 * _NEAR)
        self.near_zero = tiny.any(dim=0)
        # a float32 copy with a +inf sentinel column, for one cheap binary search per value
        d = self.values.shape[0]
        inf = torch.full((d, 1), math.inf, dtype=torch.float32, device=self.values.device)
        self.search = torch.cat([self.values.float(), inf], dim=1).contiguous()
        # most anchors any window of width 2·_NEAR can hold in one dimension
        vals = self.values
        self.max_mult = 1
        while self.max_mult < vals.shape[1] and bool(
            ((vals[:, self.max_mult :] - vals[:, : -self.max_mult]) < 2.1 * _NEAR).any()
        ):
            self.max_mult += 1


def _ratio_mask(delta: torch.Tensor) -> torch.Tensor:
    """``1 − r = 1e-8 / (Δ + 1e-8)`` in float64, the fraction of a coordinate's step removed."""
    return DELTA_EPS / (delta + DELTA_EPS)


def _thresholds(gap: torch.Tensor, rate: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """Smallest s ≥ 0 with ``gap_k − s·rate_k < 0`` for some k ≠ ŷ (inf if none).

    Parameters
    ----------
    gap : torch.Tensor, shape (..., n_classes)
        ``logit_ŷ − logit_k`` at s = 0 (≥ 0 up to rounding).
    rate : torch.Tensor, shape (..., n_classes)
        ``d(logit_k − logit_ŷ)/ds``.
    y_hat : torch.Tensor, shape broadcastable to gap[..., 0]
    """
    # float32 is ample here: thresholds within 1e-3 of a level are re-decided literally
    t = gap.float().clamp_min_(0).div_(rate.float())
    t.masked_fill_(rate <= 0, math.inf)
    t.scatter_(-1, y_hat.unsqueeze(-1).expand_as(t[..., :1]), math.inf)
    return t.amin(dim=-1).double()


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment index and offset within the segment for ``counts[i]`` items per segment.

    ``_expand(tensor([2, 0, 3]))`` gives ``([0, 0, 2, 2, 2], [0, 1, 0, 1, 2])``.
    """
    seg = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    offs = torch.arange(seg.numel(), device=counts.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    return seg, offs


class _PairCorr:
    """Sparse corrections ``δ_{p,k} = Σ_d coef_{p,d} W_{k,d}`` of the (sample, anchor) pairs.

    ``coef_{p,d}`` is the part of the step removed in coordinate d (where |Δ| is tiny); pairs
    have one to a few such coordinates, so δ is evaluated only for the (pair, class) entries
    that are needed, never as a dense (pairs × classes) matrix.
    """

    def __init__(
        self,
        inv: torch.Tensor,
        dims: torch.Tensor,
        coef: torch.Tensor,
        n_pairs: int,
        w64: torch.Tensor,
    ) -> None:
        order = torch.argsort(inv, stable=True)
        self.dims = dims[order]
        self.coef = coef[order]
        self.cnt = torch.bincount(inv, minlength=n_pairs)
        self.start = torch.cumsum(self.cnt, 0) - self.cnt
        self.w64 = w64

    @classmethod
    def empty(cls, w64: torch.Tensor) -> _PairCorr:
        e = torch.empty(0, dtype=torch.long, device=w64.device)
        return cls(e, e, torch.empty(0, dtype=torch.float64, device=w64.device), 0, w64)

    def at(self, p: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """δ for entries (pair ``p[i]``, class ``k[i]``), shape (n_entries,), float64."""
        m = self.cnt[p]
        e, offs = _expand(m)
        t = self.start[p][e] + offs
        vals = self.coef[t] * self.w64[k[e], self.dims[t]]
        out = torch.zeros(p.numel(), dtype=torch.float64, device=p.device)
        return out.index_add_(0, e, vals)


def _reachable(
    w64: torch.Tensor,
    gap: torch.Tensor,
    y_hat: torch.Tensor,
    vsq: torch.Tensor,
    dnorm: torch.Tensor,
    s_per_dnorm: float,
) -> torch.Tensor:
    """Classes that can overtake the pseudo-label before the last level, shape (n, K).

    Along a direction ``v`` the gap to class k closes at most at ``‖W_k − W_ŷ‖·‖v‖`` per unit
    of ``s``; a class with ``gap_k > ‖W_k − W_ŷ‖·‖v‖·s_max`` can neither flip a pair nor be
    the label after a flip (an exact bound, taken over all anchors of the sample).
    """
    wdiff = torch.cdist(w64, w64)  # (K, K) ‖W_k − W_j‖
    bound = (vsq.clamp_min(0).sqrt() * dnorm * s_per_dnorm).amax(dim=1)
    reach = gap <= wdiff[y_hat] * bound[:, None] * (1 + 1e-9)
    reach.scatter_(1, y_hat[:, None], False)
    return reach


def _pair_thresholds(
    gap: torch.Tensor,
    base: torch.Tensor,
    y_hat: torch.Tensor,
    pu: torch.Tensor,
    pc: torch.Tensor,
    reach: torch.Tensor,
    corr: _Corrections,
) -> torch.Tensor:
    """Thresholds of the (sample, anchor) pairs whose step has masked coordinates.

    Only reachable classes (:func:`_reachable`) are examined, which is exact and keeps the
    work proportional to the few classes that can flip a pair instead of all of them.

    Returns
    -------
    torch.Tensor of float64, shape (n_pairs,)
    """
    n = reach.shape[0]
    rk_u, rk_k = torch.nonzero(reach, as_tuple=True)  # sorted by sample
    out = torch.full((pu.numel(),), math.inf, dtype=torch.float64, device=gap.device)
    if not rk_u.numel():
        return out
    cnt = torch.bincount(rk_u, minlength=n)
    start = torch.cumsum(cnt, 0) - cnt
    m = cnt[pu]
    e_p, offs = _expand(m)
    e_k = rk_k[start[pu][e_p] + offs]
    e_u = pu[e_p]
    e_c = pc[e_p]
    own = base[pu, y_hat[pu]] - corr.at(pu, pc, y_hat[pu])  # slope of the pseudo-label
    rate = (base[e_u, e_k] - corr.at(e_u, e_c, e_k)) - own[e_p]
    t = torch.where(rate > 0, gap[e_u, e_k].clamp_min(0) / rate, math.inf)
    return out.scatter_reduce_(0, e_p, t, reduce="amin", include_self=True)


class _Corrections:
    """``δ_{u,c,k} = (W (ĝ_u ⊙ (1 − r_{u,c})))_k``: how masked coordinates change the slopes.

    Two exact parts: coordinates where the sample and the anchor are both exactly zero (ReLU),
    computed densely for the (sample, class) entries that can matter, and the rare remaining
    near-equal coordinates, kept sparse (:class:`_PairCorr`).
    """

    def __init__(
        self,
        reach: torch.Tensor,
        y_hat: torch.Tensor,
        g_zero: torch.Tensor,
        sa: _SortedAnchors,
        w64: torch.Tensor,
        sparse: _PairCorr,
        sparse_slot: torch.Tensor,
        n_cls: int,
    ) -> None:
        n, k_cls = reach.shape
        need = reach.clone()
        need.scatter_(1, y_hat[:, None], True)
        uk_u, uk_k = torch.nonzero(need, as_tuple=True)
        self.pos = torch.full((n, k_cls), -1, dtype=torch.long, device=reach.device)
        self.pos[uk_u, uk_k] = torch.arange(uk_u.numel(), device=reach.device)
        wz = w64[:, sa.zero_dims]  # (K, n_zero_dims)
        ha = torch.empty(uk_u.numel(), n_cls, dtype=torch.float64, device=reach.device)
        step = 4096
        for s in range(0, uk_u.numel(), step):
            h = g_zero[uk_u[s : s + step]] * wz[uk_k[s : s + step]]
            ha[s : s + step] = h @ sa.zero_mask.T
        self.ha = ha
        self.sparse = sparse
        self.sparse_slot = sparse_slot
        self.n_cls = n_cls

    def at(self, u: torch.Tensor, c: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """δ for entries (sample ``u[i]``, anchor ``c[i]``, class ``k[i]``); float64.

        Every ``k[i]`` must be reachable for ``u[i]`` or its pseudo-label.
        """
        val = self.ha[self.pos[u, k], c]
        slot = self.sparse_slot[u * self.n_cls + c]
        has = slot >= 0
        if bool(has.any()):
            val = val.clone()
            val[has] += self.sparse.at(slot[has], k[has])
        return val


@torch.no_grad()
def linear_thresholds(
    head: nn.Linear,
    z: torch.Tensor,
    anchors: torch.Tensor,
    levels: Sequence[float],
    *,
    flip_level: int | None = None,
    sorted_anchors: _SortedAnchors | None = None,
) -> ChunkThresholds:
    """Exact closed-form flip thresholds for an ``nn.Linear`` head (alfamix.md §3a, §4).

    For each pair (u, c) the mixed point at level ε is ``z_u + ε'‖Δ_{u,c}‖ · v_{u,c}`` with
    ``v = ĝ_u ⊙ r_{u,c}``. Logits are affine along it, so the critical ε is
    ``t* · sqrt(D) / ‖Δ_{u,c}‖`` where ``t* = min_k (l_ŷ − l_k) / (W v)_k − (W v)_ŷ`` over
    classes whose logit rises faster than the pseudo-label's. Work is O(n·D·C) plus a sparse
    correction for the few coordinates where ``|Δ| < 1e-4`` (exact zeros from ReLU included).

    Parameters
    ----------
    head : nn.Linear
        ``n_classes`` outputs.
    z : torch.Tensor, shape (n, dim)
        A block of unlabelled embeddings.
    anchors : torch.Tensor, shape (n_classes, dim)
    levels : sequence of float
        The ε schedule (:func:`level_schedule`).
    flip_level : int, optional
        Also compute the label each pair flips to at ``levels[flip_level]``.
    sorted_anchors : optional
        Precomputed per-dimension sort of the anchors (reused across blocks).

    Returns
    -------
    ChunkThresholds
    """
    n, d = z.shape
    n_cls = anchors.shape[0]
    dev = z.device
    w = head.weight.detach()
    w64 = w.double()
    b64 = (
        head.bias.detach().double()
        if head.bias is not None
        else torch.zeros(w.shape[0], dtype=torch.float64, device=dev)
    )
    a64 = anchors.double()
    sa = sorted_anchors if sorted_anchors is not None else _SortedAnchors(a64)
    lv = torch.tensor(list(levels), dtype=torch.float64, device=dev)
    n_lv = lv.shape[0]
    sqrt_d = math.sqrt(d)

    # pseudo-labels and gradients in the input dtype, as the definition computes them
    y_hat = head(z).argmax(dim=1)
    grad = loss_gradients(head, z, y_hat)
    z64 = z.double()
    g64 = grad.double()
    gnorm = g64.norm(dim=1)
    flippable = gnorm > 0  # (fix) a saturated softmax has no direction: never flippable
    g_hat = g64 / gnorm.clamp_min(1e-300)[:, None]

    logits = z64 @ w64.T + b64
    gap = logits.gather(1, y_hat[:, None]) - logits  # (n, K)
    # near-ties of the logits are decided by the literal definition at every level
    scale = logits.abs().amax(dim=1).clamp_min(1.0)
    gap_off = gap.scatter(1, y_hat[:, None], math.inf)
    tie_rows = gap_off.amin(dim=1) <= 1e-6 * scale

    # coordinates where every anchor agrees: the mask r depends on the sample only
    v0 = g_hat
    dc = torch.nonzero(sa.common).flatten()
    if dc.numel():
        v0 = g_hat.clone()
        delta_c = sa.common_value[dc][None, :] - z64[:, dc]
        near_c = delta_c.abs() < _NEAR
        m_c = torch.where(near_c, _ratio_mask(delta_c), torch.zeros_like(delta_c))
        v0[:, dc] = g_hat[:, dc] * (1 - m_c)
    base = v0 @ w64.T  # (n, K): d logits / ds without per-anchor corrections
    v0_sq = (v0 * v0).sum(dim=1)

    # sparse triples (u, c, d) with |Δ| < _NEAR in the other coordinates
    # (found loosely in float32: extra triples are harmless, their correction is exact)
    zt = z.T.float().contiguous()  # (d, n)
    win = 1.01 * _NEAR + 2.0**-20 * float(zt.abs().max()) if zt.numel() else _NEAR
    lo = torch.searchsorted(sa.search, zt - win, side="right")
    near = sa.search.gather(1, lo) < zt + win
    near[sa.common] = False
    near &= (zt != 0) | sa.near_zero[:, None]  # exact zero-zero pairs are handled densely
    dd, uu = torch.nonzero(near, as_tuple=True)
    reps = torch.ones(dd.numel(), dtype=torch.long, device=dev)
    if sa.max_mult > 1 and dd.numel():
        lo_e = lo[dd, uu]
        lim = zt[dd, uu] + win
        n_col = sa.search.shape[1]
        for j in range(1, sa.max_mult):
            more = sa.search[dd, (lo_e + j).clamp_max(n_col - 1)] < lim
            if not bool(more.any()):
                break
            reps += more.long()
    bad_rows = torch.zeros(n, dtype=torch.bool, device=dev)
    pair_key = torch.empty(0, dtype=torch.long, device=dev)
    pair_corr = _PairCorr.empty(w64)
    pair_sq = torch.empty(0, dtype=torch.float64, device=dev)
    if dd.numel():
        seg, offs = _expand(reps)
        t_d, t_u = dd[seg], uu[seg]
        t_c = sa.order[t_d, lo[dd, uu][seg] + offs]
        keep = (z64[t_u, t_d] != 0) | (a64[t_c, t_d] != 0)  # zero-zero: the dense part
        t_d, t_u, t_c = t_d[keep], t_u[keep], t_c[keep]
        delta_t = a64[t_c, t_d] - z64[t_u, t_d]
        m_t = _ratio_mask(delta_t)
        finite = torch.isfinite(m_t)
        if not bool(finite.all()):  # Δ = -1e-8 exactly: the definition itself is singular
            bad_rows[t_u[~finite]] = True
            m_t = torch.where(finite, m_t, torch.zeros_like(m_t))
        # number the affected (sample, anchor) pairs without sorting
        key = t_u * n_cls + t_c
        flag = torch.zeros(n * n_cls, dtype=torch.bool, device=dev)
        flag[key] = True
        pair_key = torch.nonzero(flag).flatten()
        slot = torch.full((n * n_cls,), -1, dtype=torch.long, device=dev)
        slot[pair_key] = torch.arange(pair_key.numel(), device=dev)
        inv = slot[key]
        gh = g_hat[t_u, t_d]
        coef = gh * m_t  # the part of the step removed in coordinate d
        # corrections to d logits / ds, kept sparse: evaluated only where a class can matter
        pair_corr = _PairCorr(inv, t_d, coef, pair_key.numel(), w64)
        pair_sq = torch.bincount(
            inv, weights=gh * gh * ((1 - m_t) ** 2 - 1), minlength=pair_key.numel()
        )

    # exact zeros shared by the sample and an anchor (ReLU features): dense and exact
    zdims = sa.zero_dims
    z_is0 = z[:, zdims] == 0
    g_zero = g_hat[:, zdims] * z_is0  # (n, n_zero_dims)
    zero_pairs = (z_is0.float() @ sa.zero_mask.T.float()) > 0  # (n, C); exact counts
    vsq = v0_sq[:, None] - (g_zero * g_zero) @ sa.zero_mask.T  # ‖ĝ ⊙ r‖² per pair
    corrected = zero_pairs.clone()
    sparse_slot = torch.full((n * n_cls,), -1, dtype=torch.long, device=dev)
    if pair_key.numel():
        pu_s, pc_s = pair_key // n_cls, pair_key % n_cls
        vsq[pu_s, pc_s] = vsq[pu_s, pc_s] + pair_sq
        corrected[pu_s, pc_s] = True
        sparse_slot[pair_key] = torch.arange(pair_key.numel(), device=dev)

    # ‖Δ_{u,c}‖ for every pair
    dn2 = (z64 * z64).sum(1)[:, None] + (a64 * a64).sum(1)[None, :] - 2 * z64 @ a64.T
    dnorm = dn2.clamp_min(0).sqrt()

    # classes that can matter at all, and the corrections for exactly those
    reach = _reachable(w64, gap, y_hat, vsq, dnorm, float(lv[-1]) / sqrt_d)
    corr = _Corrections(reach, y_hat, g_zero, sa, w64, pair_corr, sparse_slot, n_cls)

    # per-sample thresholds (valid for every anchor without a correction)
    rate = base - base.gather(1, y_hat[:, None])
    t_row = _thresholds(gap, rate, y_hat)  # (n,)
    t_pair = t_row[:, None].expand(n, n_cls).clone()
    pu, pc = torch.nonzero(corrected, as_tuple=True)
    if pu.numel():
        t_pair[pu, pc] = _pair_thresholds(gap, base, y_hat, pu, pc, reach, corr)

    crit = torch.where(dnorm > 0, t_pair * sqrt_d / dnorm, torch.full_like(dnorm, math.inf))
    crit = torch.where(flippable[:, None], crit, torch.full_like(crit, math.inf))
    step_unit = dnorm * vsq.clamp_min(0).sqrt() / sqrt_d
    step_unit = torch.where(flippable[:, None], step_unit, torch.zeros_like(step_unit))

    first = torch.searchsorted(lv, crit.contiguous(), side="left")  # crit ≤ lv[first]

    # re-decide borderline pairs with the literal definition
    rel = torch.zeros(n, n_cls, n_lv, dtype=torch.bool, device=dev)
    near = (crit[..., None] - lv).abs() <= _BAND * lv
    rel |= near
    full = (tie_rows | bad_rows) & flippable
    rel[full] = True
    rel &= flippable[:, None, None]
    ru, rc, rl = torch.nonzero(rel, as_tuple=True)
    if ru.numel():
        labs = plain_flip_labels(head, z, grad, anchors, ru, rc, lv[rl])
        flipped = (labs != y_hat[ru]) & (labs >= 0)
        # a pair flips at level j iff the definition says so there; thresholds decide the rest
        flip_grid = lv[None, None, :] >= crit[..., None]
        flip_grid[ru, rc, rl] = flipped
        decided = flip_grid.any(dim=2)
        first = torch.where(
            decided, flip_grid.to(torch.uint8).argmax(dim=2), torch.full_like(first, n_lv)
        )
        # keep the critical ε consistent with the decided first level
        lo_lv = torch.where(first > 0, lv[(first - 1).clamp_min(0)], torch.zeros_like(crit))
        hi_lv = lv[first.clamp_max(n_lv - 1)]
        inside = first < n_lv
        crit = torch.where(
            inside, torch.minimum(torch.maximum(crit, torch.nextafter(lo_lv, hi_lv)), hi_lv), crit
        )
        crit = torch.where(
            ~inside & (crit <= lv[-1]),
            torch.nextafter(
                lv[-1], torch.tensor(math.inf, dtype=torch.float64, device=dev)
            ).expand_as(crit),
            crit,
        )

    crit = torch.where(crit <= lv[-1], crit, torch.full_like(crit, math.inf))

    flip_to = None
    if flip_level is not None:
        j = int(flip_level)
        flip_to = _flip_labels_levels(
            logits, base, y_hat, reach, corrected, corr, dnorm, first, lv, sqrt_d, only=j
        )
        if ru.numel():  # the literal definition decided these: take its labels
            at_j = rl == j
            flip_to[ru[at_j], rc[at_j]] = torch.where(
                flipped[at_j], labs[at_j], torch.full_like(labs[at_j], -1)
            )
        # rounding can leave the affine argmax on the pseudo-label for a decided flip
        bad = (flip_to == y_hat[:, None]) | ((flip_to < 0) & (first <= j))
        if bool(bad.any()):
            bu, bc = torch.nonzero(bad, as_tuple=True)
            eps_b = torch.full((bu.numel(),), float(lv[j]), dtype=torch.float64, device=dev)
            lab_b = plain_flip_labels(head, z, grad, anchors, bu, bc, eps_b)
            flip_to[bu, bc] = torch.where(lab_b != y_hat[bu], lab_b, -1)
    return ChunkThresholds(y_hat, crit, first, step_unit, grad, flip_to)


def _flip_labels_levels(
    logits: torch.Tensor,
    base: torch.Tensor,
    y_hat: torch.Tensor,
    reach: torch.Tensor,
    corrected: torch.Tensor,
    corr: _Corrections,
    dnorm: torch.Tensor,
    first: torch.Tensor,
    lv: torch.Tensor,
    sqrt_d: float,
    *,
    only: int,
) -> torch.Tensor:
    """Label after the flip at level ``lv[only]``, ``-1`` where the pair does not flip there.

    Only the reachable classes (see :func:`_reachable`) and the pseudo-label compete, which
    is exact. Returns int64, shape (n, C).
    """
    n, n_cls = first.shape
    dev = logits.device
    out = torch.full((n, n_cls), -1, dtype=torch.long, device=dev)
    fu, fc = torch.nonzero(first <= only, as_tuple=True)
    if not fu.numel():
        return out
    need = reach.clone()
    need.scatter_(1, y_hat[:, None], True)
    rk_u, rk_k = torch.nonzero(need, as_tuple=True)
    cnt = torch.bincount(rk_u, minlength=n)
    start = torch.cumsum(cnt, 0) - cnt
    m = cnt[fu]
    e_p, offs = _expand(m)
    e_u = fu[e_p]
    e_c = fc[e_p]
    e_k = rk_k[start[e_u] + offs]
    slope = base[e_u, e_k]
    has = corrected[e_u, e_c]
    if bool(has.any()):
        slope = slope.clone()
        slope[has] -= corr.at(e_u[has], e_c[has], e_k[has])
    s = float(lv[only]) / sqrt_d * dnorm[fu, fc]
    val = logits[e_u, e_k] + s[e_p] * slope
    best = torch.full((fu.numel(),), -math.inf, dtype=val.dtype, device=dev)
    best.scatter_reduce_(0, e_p, val, reduce="amax", include_self=True)
    win = val == best[e_p]
    k_win = torch.full((fu.numel(),), logits.shape[1], dtype=torch.long, device=dev)
    k_win.scatter_reduce_(0, e_p[win], e_k[win], reduce="amin", include_self=True)
    out[fu, fc] = k_win
    return out


@torch.no_grad()
def mixing_path(
    head: nn.Module,
    z_u: torch.Tensor,
    anchors: torch.Tensor,
    n_steps: int = 11,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed embeddings and predictions along the straight path z_u → z*_c, for every anchor.

    Parameters
    ----------
    head : nn.Module
    z_u : torch.Tensor, shape (n, dim)
    anchors : torch.Tensor, shape (n_classes, dim)
    n_steps : int
        Points on the path, mixing ratios ``linspace(0, 1, n_steps)``.

    Returns
    -------
    embeddings : torch.Tensor, shape (n, n_classes, n_steps, dim)
    probabilities : torch.Tensor, shape (n, n_classes, n_steps, n_classes)
    """
    t = torch.linspace(0, 1, n_steps, dtype=z_u.dtype, device=z_u.device)
    emb = z_u[:, None, None, :] + t[None, None, :, None] * (
        anchors[None, :, None, :] - z_u[:, None, None, :]
    )
    probs = torch.softmax(head(emb.reshape(-1, z_u.shape[1])).float(), dim=1)
    return emb, probs.reshape(z_u.shape[0], anchors.shape[0], n_steps, -1)
