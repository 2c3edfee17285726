"""Baseline query strategies compared in the ALFA-Mix paper (``alfamix.md`` §7).

Random, Entropy, Margin, LeastConfidence, BALD (MC dropout on the embedding), CoreSet (k-center
greedy) and BADGE (k-means++ on gradient embeddings).

Every strategy follows the :class:`~alfaviz.strategies._base.Strategy` contract: ``__init__``
only stores parameters, :meth:`_select` works on positions, the result is deterministic given
``random_state``, exactly ``budget`` unique positions come back, the inputs are never modified in
place, and the work runs on the device of the input tensors.

The maths sits in pure tensor functions (:func:`entropy_scores`, :func:`margin_scores`,
:func:`least_confidence_scores`, :func:`bald_scores`, :func:`kcenter_greedy`,
:func:`gradient_embedding_factors`, :func:`gradient_embedding_sq_dist`,
:func:`kmeanspp_gradient`) that tests can call directly.

Every strategy records :data:`~alfaviz.schema.SCORE` (higher means more informative) and,
when a head is available, the pseudo-label, the maximum probability and the entropy.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from alfaviz import schema
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._base import (
    QueryInputs,
    Selection,
    Strategy,
    head_probabilities,
)

__all__ = [
    "BADGE",
    "BALD",
    "CoreSet",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "Random",
    "bald_scores",
    "entropy_scores",
    "gradient_embedding_factors",
    "gradient_embedding_sq_dist",
    "kcenter_greedy",
    "kmeanspp_gradient",
    "least_confidence_scores",
    "margin_scores",
    "top_k_positions",
]

logger = logging.getLogger(__name__)

_CHUNK_ELEMENTS = 1 << 22
"""Upper bound on the number of elements of one chunk's temporaries (16 MiB in float32)."""


# ----------------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------------
def _work_dtype(z: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else (float32, half, bfloat16) is computed in float32."""
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def _chunk_rows(width: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(int(width), 1))


def top_k_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, highest first; ties go to the lower position.

    Parameters
    ----------
    scores : numpy.ndarray, shape (n_samples,)
        NaN sorts last.
    k : int
        ``0 <= k <= n_samples``.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:k].astype(np.int64)


def entropy_scores(p: torch.Tensor) -> torch.Tensor:
    """Predictive entropy ``-sum_c p_c log p_c`` (nats).

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)
        Class probabilities.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
    """
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)


def margin_scores(p: torch.Tensor) -> torch.Tensor:
    """``1 - (p_top1 - p_top2)``: one for a tie between the two best classes.

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)
        Class probabilities, ``n_classes >= 2``.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
    """
    top2 = p.topk(2, dim=1).values
    return 1.0 - (top2[:, 0] - top2[:, 1])


def least_confidence_scores(p: torch.Tensor) -> torch.Tensor:
    """``1 - max_c p_c``.

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)

    Returns
    -------
    torch.Tensor, shape (n_samples,)
    """
    return 1.0 - p.max(dim=1).values


@torch.no_grad()
def bald_scores(
    head: nn.Module,
    z: torch.Tensor,
    *,
    n_draws: int,
    dropout: float,
    generator: torch.Generator,
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """BALD mutual information with MC dropout applied to the embedding before the head.

    For each draw ``t`` a Bernoulli mask ``m_t`` with keep probability ``1 - dropout`` is drawn
    per element of ``z`` and the head sees ``z ⊙ m_t / (1 - dropout)`` (inverted dropout, as
    ``nn.Dropout`` does). The score is ``H[mean_t p_t] - mean_t H[p_t]``, clipped at zero.

    The head is evaluated in eval mode (its own dropout or batch-norm layers are *not* switched to
    training mode); the only randomness is the masks, drawn from ``generator``, so the result is
    deterministic given the generator's seed. Masks are drawn chunk by chunk (rows outer, draws
    inner), so memory stays at ``O(chunk_rows * (dim + n_classes))``.

    Parameters
    ----------
    head : nn.Module
        Maps ``(n, dim)`` embeddings to ``(n, n_classes)`` logits.
    z : torch.Tensor, shape (n_samples, dim)
        Embeddings; never modified.
    n_draws : int
        Number of dropout masks, at least 1.
    dropout : float
        Drop probability in ``[0, 1)``.
    generator : torch.Generator
        On the device of ``z``.
    chunk_rows : int, optional
        Rows per chunk; by default about 4M elements per chunk.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
        Mutual information in nats (float32, or float64 for float64 logits).
    """
    keep = 1.0 - float(dropout)
    rows = chunk_rows or _chunk_rows(max(z.shape[1], 1))
    was_training = head.training
    head.eval()
    out: list[torch.Tensor] = []
    try:
        for start in range(0, z.shape[0], rows):
            zc = z[start : start + rows]
            sum_p: torch.Tensor | None = None
            sum_h: torch.Tensor | None = None
            for _ in range(n_draws):
                if dropout > 0:
                    mask = torch.rand(zc.shape, generator=generator, device=zc.device) < keep
                    zd = zc * mask / keep  # a new tensor; z is never written
                else:
                    zd = zc
                logits = head(zd)
                p = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), 1)
                h = entropy_scores(p)
                sum_p = p if sum_p is None else sum_p + p
                sum_h = h if sum_h is None else sum_h + h
            assert sum_p is not None
            assert sum_h is not None
            mi = entropy_scores(sum_p / n_draws) - sum_h / n_draws
            out.append(mi.clamp_min(0.0))
    finally:
        head.train(was_training)
    if not out:
        return torch.empty(0, device=z.device)
    return torch.cat(out)


def _exact_sq_dist(z: torch.Tensor, centres: torch.Tensor, nearest: torch.Tensor) -> torch.Tensor:
    """``||z_i - centres[nearest_i]||^2`` from the difference, chunked; shape (n_samples,)."""
    rows = _chunk_rows(z.shape[1])
    return torch.cat(
        [
            ((z[i : i + rows] - centres[nearest[i : i + rows]]) ** 2).sum(dim=1)
            for i in range(0, z.shape[0], rows)
        ]
    )


def _nearest_centre(z: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of every row and the squared distance to it, without an (N, M) matrix.

    The nearest centre is found chunk by chunk with the matrix-product form of the distance;
    the distance to it is then recomputed exactly from the difference.

    Returns
    -------
    min_d2 : torch.Tensor, shape (n_samples,)
    nearest : torch.Tensor of int64, shape (n_samples,)
    """
    c_sq = (centres * centres).sum(dim=1)
    rows = _chunk_rows(max(centres.shape[0], z.shape[1]))
    nearest = torch.cat(
        [
            (
                (z[i : i + rows] * z[i : i + rows]).sum(dim=1, keepdim=True)
                + c_sq[None, :]
                - 2.0 * (z[i : i + rows] @ centres.T)
            ).argmin(dim=1)
            for i in range(0, z.shape[0], rows)
        ]
    )
    return _exact_sq_dist(z, centres, nearest), nearest


@torch.no_grad()
def kcenter_greedy(
    z: torch.Tensor, centres: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy k-center (the CoreSet baseline of Sener & Savarese).

    Starting from ``centres`` (the labelled embeddings), repeatedly pick the pool point farthest
    from its nearest centre and make it a centre. A vector of minimum squared distances and the
    index of the nearest centre, both shape (n_samples,), are kept and updated with one
    matrix-vector product per pick (``||z||^2 + ||c||^2 - 2 z·c``), so the cost is
    ``O(n_samples * n_centres * dim)`` once plus ``O(n_samples * dim)`` per pick, and no
    ``(n_samples, n_samples)`` matrix is formed. The distances returned are recomputed exactly
    from differences to the tracked nearest centre (no cancellation error). Ties go to the lower
    position. A point is never picked twice, even when duplicates leave every remaining distance
    at zero.

    Parameters
    ----------
    z : torch.Tensor, shape (n_samples, dim)
        Pool embeddings; never modified. Half precision is computed in float32.
    centres : torch.Tensor, shape (n_centres, dim)
        Initial centres (may be empty, then the first pick is position 0).
    budget : int
        Number of picks, ``0 <= budget <= n_samples``.

    Returns
    -------
    picked : torch.Tensor of int64, shape (budget,)
        Positions in pick order.
    picked_dist : torch.Tensor, shape (budget,)
        Distance of each pick to its nearest centre at the time it was picked (non-increasing
        up to rounding).
    final_dist : torch.Tensor, shape (n_samples,)
        Distance of every point to its nearest centre after all picks (0 for the picks).
    """
    dtype = _work_dtype(z)
    zw = z.to(dtype)  # the same tensor for float32/float64 input; never written
    cw = centres.to(device=z.device, dtype=dtype)
    n, m = zw.shape[0], cw.shape[0]
    if m:
        min_d2, nearest = _nearest_centre(zw, cw)
    else:
        min_d2 = torch.full((n,), math.inf, dtype=dtype, device=z.device)
        nearest = torch.full((n,), -1, dtype=torch.int64, device=z.device)
    z_sq = (zw * zw).sum(dim=1)
    chosen = torch.zeros(n, dtype=torch.bool, device=z.device)
    picked: list[int] = []
    picked_d2: list[torch.Tensor] = []
    for k in range(budget):
        i = int(torch.argmax(min_d2.masked_fill(chosen, -math.inf)))
        j = int(nearest[i])
        if j < 0:
            picked_d2.append(torch.tensor(math.inf, dtype=dtype, device=z.device))
        else:
            centre = cw[j] if j < m else zw[picked[j - m]]
            picked_d2.append(((zw[i] - centre) ** 2).sum())
        picked.append(i)
        chosen[i] = True
        d2 = (z_sq + z_sq[i] - 2.0 * (zw @ zw[i])).clamp_min(0.0)
        d2[i] = 0.0
        closer = d2 < min_d2
        min_d2 = torch.where(closer, d2, min_d2)
        nearest = torch.where(closer, m + k, nearest)
    picked_t = torch.tensor(picked, dtype=torch.int64, device=z.device)
    all_centres = torch.cat([cw, zw[picked_t]])
    final_d2 = _exact_sq_dist(zw, all_centres, nearest) if len(all_centres) else min_d2
    picked_dist = (
        torch.stack(picked_d2).sqrt() if picked_d2 else torch.empty(0, dtype=dtype, device=z.device)
    )
    return picked_t, picked_dist, final_d2.sqrt()


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


def _sample_index(w: torch.Tensor, cdf: torch.Tensor, generator: torch.Generator) -> int:
    """One draw with probability ``w_i / sum(w)`` by inverting the CDF (``torch.multinomial``
    is about 100x slower on a long float64 vector). Zero weights are never drawn."""
    r = torch.rand((), generator=generator, dtype=cdf.dtype, device=cdf.device) * cdf[-1]
    i = int(torch.searchsorted(cdf, r[None], right=True))  # first index with cdf > r
    if i >= w.shape[0] or not bool(w[i] > 0):  # r rounded up to the total
        i = int(torch.nonzero(w > 0)[-1])
    return i


@torch.no_grad()
def kmeanspp_gradient(
    a: torch.Tensor, z: torch.Tensor, budget: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding on the gradient embeddings ``g_u = a_u ⊗ z_u`` (BADGE).

    The first centre is the sample with the largest gradient norm (ties: lowest position); each
    later one is sampled with probability proportional to its squared distance to the nearest
    chosen centre, by inverting the cumulative distribution with one ``torch.rand`` draw from
    ``generator``. Chosen samples get weight zero, so none is picked twice;
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
        w = min_d2.masked_fill(chosen, 0.0).to(torch.float64)
        cdf = torch.cumsum(w, dim=0)
        total = float(cdf[-1])
        if not (total > 0.0 and math.isfinite(total)):
            logger.debug("BADGE: all remaining D^2 are zero; picking uniformly among the rest")
            w = (~chosen).to(torch.float64)
            cdf = torch.cumsum(w, dim=0)
        i = _sample_index(w, cdf, generator)
        picked.append(i)
        chosen[i] = True
        min_d2 = torch.minimum(min_d2, gradient_embedding_sq_dist(a, z, a[i], z[i], sq_norms))
    return torch.tensor(picked, dtype=torch.int64, device=z.device), norms


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------
def _require_head(strategy: Strategy, inputs: QueryInputs) -> nn.Module:
    if inputs.head is None:
        raise AlfavizInputError(f"{type(strategy).__name__} needs the model head; got None.")
    return inputs.head


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).cpu().numpy()


class Random(Strategy):
    """Uniform sampling without replacement.

    Each unlabelled sample gets a random key in ``[0, 1)`` from a CPU ``torch.Generator`` seeded
    with ``random_state`` (so the pick does not depend on the device); the ``budget`` largest keys
    are picked and the key is recorded as the score. The head is optional; when given, the
    pseudo-label columns are recorded too.

    Parameters
    ----------
    random_state : int or None
        Seed (``None`` means 0).
    """

    name: ClassVar[str] = "random"
    needs_head: ClassVar[bool] = False

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(random_state=random_state)

    def _select(self, inputs: QueryInputs) -> Selection:
        n = inputs.z_unlabelled.shape[0]
        keys = torch.rand(n, generator=self._generator("cpu"), dtype=torch.float64).numpy()
        columns: dict[str, np.ndarray] = {schema.SCORE: keys}
        if inputs.head is not None:
            columns.update(self._prob_columns(head_probabilities(inputs.head, inputs.z_unlabelled)))
        return Selection(selected_idx=top_k_positions(keys, inputs.budget), columns=columns)


class _UncertaintyStrategy(Strategy):
    """Top-``budget`` samples by a score of the head's class probabilities."""

    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(random_state=random_state)

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select(self, inputs: QueryInputs) -> Selection:
        p = head_probabilities(_require_head(self, inputs), inputs.z_unlabelled)
        scores = _to_numpy(self._scores(p))
        columns = {schema.SCORE: scores, **self._prob_columns(p)}
        return Selection(selected_idx=top_k_positions(scores, inputs.budget), columns=columns)


class Entropy(_UncertaintyStrategy):
    """Highest predictive entropy of the head's softmax (ties: lower position first).

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface.
    """

    name: ClassVar[str] = "entropy"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return entropy_scores(p)


class Margin(_UncertaintyStrategy):
    """Smallest gap between the two most probable classes; score ``1 - (p_1 - p_2)``.

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface.
    """

    name: ClassVar[str] = "margin"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return margin_scores(p)


class LeastConfidence(_UncertaintyStrategy):
    """Lowest maximum class probability; score ``1 - max_c p_c``.

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface.
    """

    name: ClassVar[str] = "leastconfidence"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return least_confidence_scores(p)


class BALD(Strategy):
    """Bayesian active learning by disagreement with MC dropout on the embedding.

    The release's networks place dropout between the embedding and the last linear layer, so the
    masks are applied to ``z`` before the head (see :func:`bald_scores`). The head itself stays in
    eval mode. The score is the mutual information between the prediction and the dropout mask;
    the top ``budget`` are picked (ties: lower position first).

    Parameters
    ----------
    n_draws : int
        Number of MC dropout draws (at least 1).
    dropout : float
        Drop probability in ``[0, 1)``; 0 gives zero scores (no disagreement).
    random_state : int or None
        Seed of the mask generator (``None`` means 0).
    """

    name: ClassVar[str] = "bald"
    needs_head: ClassVar[bool] = True

    def __init__(self, n_draws: int = 20, dropout: float = 0.5, random_state: int | None = 0):
        super().__init__(random_state=random_state)
        self.n_draws = n_draws
        self.dropout = dropout

    def _check_params(self) -> None:
        if (
            isinstance(self.n_draws, bool)
            or not isinstance(self.n_draws, numbers.Integral)
            or self.n_draws < 1
        ):
            raise AlfavizInputError(
                f"BALD n_draws must be a positive integer; got {self.n_draws!r}."
            )
        if not isinstance(self.dropout, numbers.Real) or not 0.0 <= float(self.dropout) < 1.0:
            raise AlfavizInputError(
                f"BALD dropout must be a probability in [0, 1); got {self.dropout!r}."
            )

    def _select(self, inputs: QueryInputs) -> Selection:
        self._check_params()
        head = _require_head(self, inputs)
        z = inputs.z_unlabelled
        scores = bald_scores(
            head,
            z,
            n_draws=int(self.n_draws),
            dropout=float(self.dropout),
            generator=self._generator(z.device),
        )
        scores_np = _to_numpy(scores)
        columns = {schema.SCORE: scores_np, **self._prob_columns(head_probabilities(head, z))}
        return Selection(selected_idx=top_k_positions(scores_np, inputs.budget), columns=columns)


class CoreSet(Strategy):
    """k-center greedy over the unlabelled embeddings, with the labelled ones as initial centres.

    See :func:`kcenter_greedy`. The score of a picked sample is its distance to the nearest centre
    when it was picked; the score of any other sample is its distance to the nearest centre after
    the last pick (what the next pick would compare). Scores of picks are therefore never below
    those of the rest. The head is optional; when given, the pseudo-label columns are recorded.

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface.
    """

    name: ClassVar[str] = "coreset"
    needs_head: ClassVar[bool] = False

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(random_state=random_state)

    def _select(self, inputs: QueryInputs) -> Selection:
        z = inputs.z_unlabelled
        picked, picked_dist, final_dist = kcenter_greedy(z, inputs.z_labelled, inputs.budget)
        score = final_dist.clone()
        score[picked] = picked_dist
        columns: dict[str, np.ndarray] = {schema.SCORE: _to_numpy(score)}
        if inputs.head is not None:
            columns.update(self._prob_columns(head_probabilities(inputs.head, z)))
        radius = float(final_dist.max()) if final_dist.numel() else 0.0
        logger.debug("CoreSet: picked %d, covering radius now %.4g", len(picked), radius)
        return Selection(selected_idx=picked.cpu().numpy(), columns=columns)


class BADGE(Strategy):
    """Batch active learning by diverse gradient embeddings (Ash et al., 2020).

    The gradient embedding of ``u`` is ``g_u = (p_u - onehot(ŷ_u)) ⊗ z_u``, the gradient of the
    cross-entropy against the pseudo-label with respect to the weight of an ``nn.Linear`` head.
    ``budget`` samples are picked by k-means++ seeding on ``g`` (:func:`kmeanspp_gradient`)
    without forming the ``(n_samples, n_classes * dim)`` matrix. The score is ``||g_u||``.

    Parameters
    ----------
    random_state : int or None
        Seed of the D² sampling (``None`` means 0).
    """

    name: ClassVar[str] = "badge"
    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(random_state=random_state)

    def _select(self, inputs: QueryInputs) -> Selection:
        head = _require_head(self, inputs)
        if not isinstance(head, nn.Linear):
            raise AlfavizInputError(
                f"BADGE needs the head to be a single nn.Linear layer (its gradient embedding is "
                f"the gradient of that layer's weight); got {type(head).__name__}. Split the "
                "model so that the head is its last nn.Linear and pass that layer's input as z."
            )
        z = inputs.z_unlabelled
        dtype = _work_dtype(z)
        p = head_probabilities(head, z)
        a = gradient_embedding_factors(p).to(dtype)
        picked, norms = kmeanspp_gradient(a, z.to(dtype), inputs.budget, self._generator(z.device))
        columns = {schema.SCORE: _to_numpy(norms), **self._prob_columns(p)}
        return Selection(selected_idx=picked.cpu().numpy(), columns=columns)
