"""BADGE: batch active learning by diverse gradient embeddings (Ash et al., 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from alfaviz import schema
from alfaviz._tensor import d2_draw
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._common import seeded_generator, to_numpy, work_dtype

__all__ = [
    "BADGE",
    "gradient_embedding_factors",
    "gradient_embedding_sq_dist",
    "kmeanspp_gradient",
]


def gradient_embedding_factors(p: torch.Tensor) -> torch.Tensor:
    """The class factor ``a = p - onehot(argmax p)`` of BADGE's gradient embedding.

    For a linear head ``h(z) = W z + b`` and the cross-entropy against the pseudo-label, the
    gradient with respect to ``W`` is ``g = a ⊗ z`` (an outer product, shape ``(C, D)``).

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)

    Returns
    -------
    torch.Tensor, shape (n_samples, n_classes)
    """
    return p - F.one_hot(p.argmax(dim=1), p.shape[1]).to(p.dtype)


def gradient_embedding_sq_dist(
    a: torch.Tensor,
    z: torch.Tensor,
    a_v: torch.Tensor,
    z_v: torch.Tensor,
    sq_norms: torch.Tensor | None = None,
) -> torch.Tensor:
    """``||a_u ⊗ z_u - a_v ⊗ z_v||_F^2`` for every ``u`` without forming the outer products.

    Uses ``<a_u ⊗ z_u, a_v ⊗ z_v> = <a_u, a_v> <z_u, z_v>``, so the cost is
    ``O(n_samples * (n_classes + dim))`` instead of ``O(n_samples * n_classes * dim)``.

    Parameters
    ----------
    a : torch.Tensor, shape (n_samples, n_classes)
    z : torch.Tensor, shape (n_samples, dim)
    a_v : torch.Tensor, shape (n_classes,)
    z_v : torch.Tensor, shape (dim,)
    sq_norms : torch.Tensor, shape (n_samples,), optional
        Precomputed ``||a_u||^2 ||z_u||^2``.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
        Clipped at zero (the expansion can round slightly below it).
    """
    if sq_norms is None:
        sq_norms = (a * a).sum(dim=1) * (z * z).sum(dim=1)
    sq_v = (a_v * a_v).sum() * (z_v * z_v).sum()
    cross = (a @ a_v) * (z @ z_v)
    return (sq_norms + sq_v - 2.0 * cross).clamp_min(0.0)


@torch.no_grad()
def kmeanspp_gradient(
    a: torch.Tensor, z: torch.Tensor, budget: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding on the gradient embeddings ``g_u = a_u ⊗ z_u`` (BADGE).

    The first centre is the sample with the largest gradient norm (ties: lowest position); each
    later one is sampled with probability proportional to its squared distance to the nearest
    chosen centre (:func:`alfaviz._tensor.d2_draw`, one ``torch.rand`` draw from
    ``generator``). Chosen samples get weight zero, so none is picked twice;
    when every remaining weight is zero (duplicates) the pick is uniform over the samples not yet
    chosen. Never forms the ``(n_samples, n_classes * dim)`` matrix.

    Parameters
    ----------
    a : torch.Tensor, shape (n_samples, n_classes)
        Class factors from :func:`gradient_embedding_factors`.
    z : torch.Tensor, shape (n_samples, dim)
        Embeddings.
    budget : int
        ``0 <= budget <= n_samples``.
    generator : torch.Generator
        On the device of ``a`` and ``z``.

    Returns
    -------
    picked : torch.Tensor of int64, shape (budget,)
        Positions in pick order.
    norms : torch.Tensor, shape (n_samples,)
        Gradient-embedding norms ``||a_u|| ||z_u||``.
    """
    n = z.shape[0]
    sq_norms = (a * a).sum(dim=1) * (z * z).sum(dim=1)
    norms = sq_norms.sqrt()
    if budget == 0:
        return torch.empty(0, dtype=torch.int64, device=z.device), norms
    chosen = torch.zeros(n, dtype=torch.bool, device=z.device)
    first = int(torch.argmax(sq_norms))
    picked = [first]
    chosen[first] = True
    min_d2 = gradient_embedding_sq_dist(a, z, a[first], z[first], sq_norms)
    for _ in range(1, budget):
        w = min_d2.masked_fill(chosen, 0.0)
        # uniform over the samples not yet chosen when every remaining D² is zero (duplicates)
        i = int(d2_draw(w, 1, generator, fallback=~chosen)[0])
        picked.append(i)
        chosen[i] = True
        min_d2 = torch.minimum(min_d2, gradient_embedding_sq_dist(a, z, a[i], z[i], sq_norms))
    return torch.tensor(picked, dtype=torch.int64, device=z.device), norms


class BADGE(Strategy):
    """Batch active learning by diverse gradient embeddings (Ash et al., 2020).

    The gradient embedding of ``u`` is ``g_u = (p_u - onehot(ŷ_u)) ⊗ z_u``, the gradient of the
    cross-entropy against the pseudo-label with respect to the weight of an ``nn.Linear`` head.
    ``budget`` samples are picked by k-means++ seeding on ``g`` (:func:`kmeanspp_gradient`)
    without forming the ``(n_samples, n_classes * dim)`` matrix. The score is ``||g_u||``.

    Parameters
    ----------
    random_state : int or None
        Seed of the D² sampling, in ``0..2**63-1``; ``None`` draws a fresh seed at every
        query. The seed used is recorded in ``QueryResult.info["random_state"]``.
    """

    name: ClassVar[str] = "badge"
    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state
        self._validate_params()

    def _select(self, inputs: QueryInputs) -> Selection:
        head = inputs.head
        assert head is not None  # Strategy.query checks needs_head
        if not isinstance(head, nn.Linear):
            raise AlfavizInputError(
                f"BADGE needs the head to be a single nn.Linear layer (its gradient embedding is "
                f"the gradient of that layer's weight); got {type(head).__name__}. Split the "
                "model so that the head is its last nn.Linear and pass that layer's input as z."
            )
        z = inputs.z_unlabelled
        dtype = work_dtype(z)
        p = head_probabilities(head, z)
        a = gradient_embedding_factors(p).to(dtype)
        generator = seeded_generator(inputs.random_state, z.device)
        picked, norms = kmeanspp_gradient(a, z.to(dtype), inputs.budget, generator)
        columns = {schema.SCORE: to_numpy(norms), **self._prob_columns(p)}
        return Selection(selected_idx=picked.cpu().numpy(), columns=columns)
