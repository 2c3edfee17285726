"""Small tensor helpers shared across alfaviz, each written once.

- :func:`eval_mode` and :func:`frozen_parameters`: context managers that change a module's
  train/eval mode or its parameters' ``requires_grad`` for a block and restore them exactly;
- :func:`entropy`: predictive entropy of probability rows;
- :func:`sq_dists` and :func:`nearest_sq_dists`: squared Euclidean distances to centres, and
  the nearest centre of every row in bounded memory;
- :func:`d2_draw`: the D² draw of k-means++ (inverse-CDF sampling in proportion to weights).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = [
    "d2_draw",
    "entropy",
    "eval_mode",
    "frozen_parameters",
    "nearest_sq_dists",
    "sq_dists",
]


@contextlib.contextmanager
def eval_mode(module: nn.Module | None) -> Iterator[nn.Module | None]:
    """Put ``module`` in eval mode for the block, then restore every submodule's own mode.

    The flag of every submodule is recorded and restored one by one, so a model whose parts
    were in different modes (say, a frozen batch-norm in eval inside a model in train mode)
    comes back exactly as it was, also when the block raises. ``None`` does nothing.

    Parameters
    ----------
    module : nn.Module or None

    Yields
    ------
    nn.Module or None
        ``module`` itself.
    """
    if module is None:
        yield None
        return
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, was_training in modes:
            m.training = was_training


@contextlib.contextmanager
def frozen_parameters(module: nn.Module | None) -> Iterator[nn.Module | None]:
    """Set ``requires_grad=False`` on every parameter for the block, then restore each flag.

    Parameters
    ----------
    module : nn.Module or None

    Yields
    ------
    nn.Module or None
        ``module`` itself.
    """
    if module is None:
        yield None
        return
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Predictive entropy ``-Σ_c p_c log p_c`` in nats; ``0 log 0`` counts as 0.

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)
        Class probabilities (rows summing to one along ``dim``).
    dim : int
        The class dimension.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
    """
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=dim)


def sq_dists(
    x: torch.Tensor,
    centres: torch.Tensor,
    x_sq: torch.Tensor | None = None,
    c_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared Euclidean distances by the matrix-product expansion, clipped at zero.

    Parameters
    ----------
    x : torch.Tensor, shape (n, dim)
    centres : torch.Tensor, shape (m, dim)
        Same dtype and device as ``x``.
    x_sq, c_sq : torch.Tensor, shapes (n,) and (m,), optional
        Precomputed squared row norms.

    Returns
    -------
    torch.Tensor, shape (n, m)
    """
    if x_sq is None:
        x_sq = (x * x).sum(dim=1)
    if c_sq is None:
        c_sq = (centres * centres).sum(dim=1)
    d = torch.addmm(c_sq[None, :], x, centres.T, alpha=-2).add_(x_sq[:, None])
    return d.clamp_min_(0)


def nearest_sq_dists(
    x: torch.Tensor,
    centres: torch.Tensor,
    *,
    x_sq: torch.Tensor | None = None,
    chunk_elems: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance of every row to its nearest centre, and that centre's index.

    Works in row blocks of about ``chunk_elems`` distances, so no (n, m) matrix is formed.
    Ties go to the lowest centre index.

    Parameters
    ----------
    x : torch.Tensor, shape (n, dim)
    centres : torch.Tensor, shape (m, dim)
        At least one centre, same dtype and device as ``x``.
    x_sq : torch.Tensor, shape (n,), optional
        Precomputed squared row norms of ``x``.
    chunk_elems : int
        Distances computed at once.

    Returns
    -------
    d2 : torch.Tensor, shape (n,)
        Clipped at zero (the expansion can round slightly below it).
    nearest : torch.Tensor of int64, shape (n,)
    """
    if x_sq is None:
        x_sq = (x * x).sum(dim=1)
    c_sq = (centres * centres).sum(dim=1)
    rows = max(1, chunk_elems // max(1, centres.shape[0]))
    d2 = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    nearest = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], rows):
        m = sq_dists(x[s : s + rows], centres, x_sq[s : s + rows], c_sq).min(dim=1)
        d2[s : s + rows] = m.values
        nearest[s : s + rows] = m.indices
    return d2, nearest


def d2_draw(
    weights: torch.Tensor,
    n_draws: int,
    generator: torch.Generator,
    *,
    fallback: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices drawn with probability ``weights_i / Σ weights``: the D² draw of k-means++.

    One ``torch.rand`` call gives all ``n_draws`` uniforms (i.i.d., with replacement); each is
    mapped through the float64 cumulative sum (inverse CDF; ``torch.multinomial`` is far
    slower on long vectors). A zero weight is never drawn. When every weight is zero (every
    point coincides with a centre) or the total is not finite, the draw is uniform over
    ``fallback`` (a boolean mask) or over all positions. No host synchronisation.

    Parameters
    ----------
    weights : torch.Tensor, shape (n,)
        Non-negative, typically squared distances to the nearest chosen centre.
    n_draws : int
    generator : torch.Generator
        On the device of ``weights``.
    fallback : torch.Tensor of bool, shape (n,), optional
        Where to draw uniformly when the weights are all zero.

    Returns
    -------
    torch.Tensor of int64, shape (n_draws,)
    """
    w = weights.double()
    total = w.sum()
    degenerate = ~(torch.isfinite(total) & (total > 0))
    alt = fallback.double() if fallback is not None else torch.ones_like(w)
    w = torch.where(degenerate, alt, w)
    cdf = torch.cumsum(w, dim=0)
    u = torch.rand(n_draws, generator=generator, dtype=torch.float64, device=w.device)
    idx = torch.searchsorted(cdf, u * cdf[-1], right=True)  # first index with cdf > u·total
    # u·total can round up to the total: take the last position with a positive weight
    last = torch.searchsorted(cdf, cdf[-1:], right=False)
    return torch.minimum(idx, last)
