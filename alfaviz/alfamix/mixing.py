"""The mathematics of ALFA-Mix as pure tensor functions (docs/algorithm.md).

Everything here is a pure function of tensors (no state, no I/O) so that tests can call it
directly and a pool can be scored in shards: once the anchors and the head are fixed, every
result is per sample.

Notation (as in the paper): ``z_u`` an unlabelled embedding, ``z*_c`` the anchor of class ``c``,
``Δ = z*_c − z_u``, ``g_u`` the gradient of the cross-entropy against the pseudo-label, ``ĝ_u``
its direction, ``ε`` a level of the schedule and ``ε' = ε / sqrt(D)``.

The closed-form α is written once, in :func:`alpha_per_eps`::

    α = ε · (‖Δ‖ / sqrt(D)) · ĝ ⊘ (Δ + 1e-8)

and every code path uses it: :func:`closed_form_alpha` and :func:`plain_flip_labels` (the
literal definition, for any head), the batched path for other heads, the bisection and the
step lengths in :mod:`alfaviz.alfamix.candidates`, and the exact fast path for an
``nn.Linear`` head in :mod:`alfaviz.alfamix._linear`, which uses its two factors
:func:`eps_scale` and :func:`step_mask_complement` (``α ⊙ Δ = ε · eps_scale(‖Δ‖) · ĝ ⊙ r``
with ``r = Δ ⊘ (Δ + 1e-8) = 1 − step_mask_complement(Δ)``). Whether a sample can flip at all
(``‖g‖ > 0``) is decided by :func:`unit_gradient`, the same test on every path and in every
dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DELTA_EPS",
    "MAX_LEVELS",
    "alpha_per_eps",
    "closed_form_alpha",
    "compute_anchors",
    "eps_scale",
    "level_schedule",
    "loss_gradients",
    "mix",
    "mixing_path",
    "plain_flip_labels",
    "pseudo_labels",
    "step_mask_complement",
    "unit_gradient",
]

MAX_LEVELS = 1000
"""Most levels a schedule may have (``alpha_cap >= 1e-3``)."""

DELTA_EPS = 1e-8
"""The ``1e-8`` in ``α = ε'·(‖Δ‖/‖g‖)·g ⊘ (Δ + 1e-8)`` (docs/algorithm.md, closed-form α)."""


def level_schedule(alpha_cap: float) -> list[float]:
    """The ε levels of docs/algorithm.md: ``k · alpha_cap`` while the previous level is < 1.0.

    Parameters
    ----------
    alpha_cap : float
        Step of the schedule, in ``(0, 1]`` (0.2 for the closed form, 1/32 for learned α).

    Returns
    -------
    list of float
        ``[0.2, 0.4, 0.6, 0.8, 1.0]`` for the default ``alpha_cap=0.2``.
    """
    from alfaviz.errors import AlfavizInputError

    ok = isinstance(alpha_cap, (int, float)) and not isinstance(alpha_cap, bool)
    if not (ok and 0 < float(alpha_cap) <= 1.0):
        raise AlfavizInputError(f"alpha_cap must be a number in (0, 1]; got {alpha_cap!r}.")
    if math.ceil(1.0 / float(alpha_cap) - 1e-9) > MAX_LEVELS:
        raise AlfavizInputError(
            f"alpha_cap={alpha_cap!r} gives more than {MAX_LEVELS} levels; use alpha_cap >= "
            f"{1 / MAX_LEVELS:g} (0.2 for the closed form, 1/32 for learned α)."
        )
    levels: list[float] = []
    k = 1
    while not levels or levels[-1] < 1.0 - 1e-12:
        levels.append(k * float(alpha_cap))
        k += 1
    return levels


def compute_anchors(
    z_labelled: torch.Tensor, y_labelled: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Per-class mean embeddings z*_c (docs/algorithm.md).

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


def loss_gradients(
    head: nn.Module,
    z: torch.Tensor,
    y_hat: torch.Tensor,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of CE(h(z), ŷ) with respect to z, one row per sample (docs/algorithm.md).

    The sum reduction is used; only the direction of each row matters.

    Parameters
    ----------
    head : nn.Module
    z : torch.Tensor, shape (n_samples, dim)
    y_hat : torch.Tensor of int, shape (n_samples,)

    logits : torch.Tensor, shape (n_samples, n_classes), optional
        ``head(z)``, if already at hand (used for an ``nn.Linear`` head only).

    Returns
    -------
    torch.Tensor, shape (n_samples, dim), dtype of ``z``

    Notes
    -----
    For an ``nn.Linear`` head the gradient is written out, ``(softmax(h(z)) − onehot(ŷ)) W``:
    what autograd computes, to rounding (measured 1.4e-7 relative in float32), without a copy
    of ``z``, a graph or a second evaluation of the head. Every code path calls this
    function, so all of them see the same gradients.
    """
    if isinstance(head, nn.Linear) and head.weight.dtype == z.dtype:
        with torch.no_grad():
            out = head(z) if logits is None else logits
            p = torch.softmax(out.detach(), dim=1)
            p[torch.arange(p.shape[0], device=p.device), y_hat] -= 1
            return p @ head.weight.detach()
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        loss = F.cross_entropy(head(zz), y_hat, reduction="sum")
        (grad,) = torch.autograd.grad(loss, zz)
    return grad.detach()


def _shifted(delta: torch.Tensor) -> torch.Tensor:
    """``Δ + 1e-8``: the only place the constant of the closed form enters."""
    return delta + DELTA_EPS


def eps_scale(delta_norm: torch.Tensor, dim: int) -> torch.Tensor:
    """``‖Δ‖ / sqrt(D)``: the length of the closed-form step per unit of ε, before the mask.

    Parameters
    ----------
    delta_norm : torch.Tensor, any shape
        ``‖Δ_{u,c}‖``.
    dim : int
        The embedding dimension D.

    Returns
    -------
    torch.Tensor, shape of ``delta_norm``
    """
    return delta_norm / math.sqrt(dim)


def unit_gradient(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Directions ``ĝ = g / ‖g‖`` and the one ``‖g‖ > 0`` test used on every code path.

    ``‖g‖ > 0`` exactly when some entry of ``g`` is nonzero. The norm is accumulated in
    float64 (``vector_norm(..., dtype=float64)``): the square of a float32 entry can neither
    overflow nor underflow there, so the test gives the same answer in float32 and float64
    and a norm that underflows in the input dtype cannot fool it (docs/algorithm.md, fix).
    float64 gradients are first scaled by ``max |g|`` for the same reason. The direction is
    ``g / ‖g‖``, computed in place on one float64 copy of ``g``.

    Parameters
    ----------
    grad : torch.Tensor, shape (..., dim)

    Returns
    -------
    g_hat : torch.Tensor of float64, shape (..., dim)
        Unit rows; zero rows where ``‖g‖ = 0``.
    flippable : torch.Tensor of bool, shape (...)
        ``‖g‖ > 0``: a sample with a saturated softmax (``g = 0``) is never flippable.
    """
    scaled = grad.dtype == torch.float64
    g = grad.detach().to(torch.float64, copy=True)  # one copy; everything below is in place
    if scaled:  # float64 gradients: scale first, their squares could underflow
        top = torch.linalg.vector_norm(g, ord=math.inf, dim=-1, keepdim=True)
        g.div_(torch.where(top > 0, top, torch.ones_like(top)))
    norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
    flippable = norm.squeeze(-1) > 0
    return g.div_(torch.where(norm > 0, norm, torch.ones_like(norm))), flippable


def alpha_per_eps(delta: torch.Tensor, g_hat: torch.Tensor) -> torch.Tensor:
    """The closed-form mixing ratio per unit of ε: ``α / ε = (‖Δ‖/sqrt(D)) · ĝ ⊘ (Δ + 1e-8)``.

    This is docs/algorithm.md's ``α = ε' · (‖Δ‖ / ‖g‖) · g ⊘ (Δ + 1e-8)`` with ``ε' = ε/sqrt(D)``
    and ``ĝ = g / ‖g‖``; it is linear in ε and has no clipping. Computed in the dtype of
    ``delta``.

    Parameters
    ----------
    delta : torch.Tensor, shape (..., dim)
        ``Δ = z*_c − z_u``.
    g_hat : torch.Tensor, shape broadcastable to ``delta``
        Gradient directions (:func:`unit_gradient`).

    Returns
    -------
    torch.Tensor, shape of ``delta``
    """
    g_hat = g_hat.to(delta.dtype)
    scale = eps_scale(delta.norm(dim=-1, keepdim=True), delta.shape[-1])
    return scale * g_hat / _shifted(delta)


def step_mask_complement(delta: torch.Tensor) -> torch.Tensor:
    """``1 − r = 1e-8 ⊘ (Δ + 1e-8)``: the fraction of a coordinate's step that α removes.

    ``α ⊙ Δ = ε · eps_scale(‖Δ‖) · ĝ ⊙ r`` with ``r = Δ ⊘ (Δ + 1e-8)``; ``1 − r`` is computed
    directly (not as ``1 − r``) so that it keeps full precision where ``r`` is close to 1.

    Parameters
    ----------
    delta : torch.Tensor, any shape

    Returns
    -------
    torch.Tensor, shape of ``delta``
    """
    return DELTA_EPS / _shifted(delta)


def closed_form_alpha(
    eps: float, z_u: torch.Tensor, anchor: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """The closed-form mixing ratio at level ``eps`` (docs/algorithm.md), via
    :func:`alpha_per_eps`.

    ``α = ε' · (‖Δ‖ / ‖g‖) · g ⊘ (Δ + 1e-8)`` with ``ε' = ε / sqrt(D)`` and ``Δ = anchor − z_u``.
    No clipping. Rows with ``‖g‖ = 0`` get ``α = 0`` (the mixed point is ``z_u``): such
    samples are not flippable (:func:`unit_gradient`).

    Parameters
    ----------
    eps : float
        The level ε.
    z_u : torch.Tensor, shape (..., dim)
    anchor : torch.Tensor, shape broadcastable to ``z_u``
    grad : torch.Tensor, shape broadcastable to ``z_u``

    Returns
    -------
    torch.Tensor, shape of ``z_u``, dtype of ``z_u``
    """
    delta = anchor - z_u
    return eps * alpha_per_eps(delta, unit_gradient(grad)[0])


def mix(z_u: torch.Tensor, anchor: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``z̃ = α ⊙ z*_c + (1 − α) ⊙ z_u`` (docs/algorithm.md), in the release's operation order."""
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
        argmax of the head at each mixed point, in the dtype of ``z``; ``-1`` where
        ``‖g‖ = 0`` or the mixed point is not finite (such samples are not flippable).
    """
    out = torch.empty(rows.shape[0], dtype=torch.long, device=z.device)
    for s in range(0, rows.shape[0], chunk):
        r = rows[s : s + chunk]
        zu = z[r]
        a = anchors[classes[s : s + chunk]].to(z.dtype)
        g_hat, ok = unit_gradient(grad[r])
        alpha = eps[s : s + chunk].to(z.dtype)[:, None] * alpha_per_eps(a - zu, g_hat)
        zt = mix(zu, a, alpha)
        lab = head(zt).argmax(dim=1)
        ok &= torch.isfinite(zt).all(dim=1)
        out[s : s + chunk] = torch.where(ok, lab, torch.full_like(lab, -1))
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
