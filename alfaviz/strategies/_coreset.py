"""CoreSet: greedy k-center over the embeddings (Sener & Savarese, 2018)."""

from __future__ import annotations

import logging
import math
from typing import ClassVar

import numpy as np
import torch

from alfaviz import schema
from alfaviz._tensor import nearest_sq_dists, sq_dists
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._common import CHUNK_ELEMENTS, chunk_rows, to_numpy, work_dtype

__all__ = ["CoreSet", "kcenter_greedy"]

logger = logging.getLogger(__name__)


def _exact_sq_dist(z: torch.Tensor, centres: torch.Tensor, nearest: torch.Tensor) -> torch.Tensor:
    """``||z_i - centres[nearest_i]||^2`` from the difference, chunked; shape (n_samples,)."""
    rows = chunk_rows(z.shape[1])
    return torch.cat(
        [
            ((z[i : i + rows] - centres[nearest[i : i + rows]]) ** 2).sum(dim=1)
            for i in range(0, z.shape[0], rows)
        ]
    )


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
    dtype = work_dtype(z)
    zw = z.to(dtype)  # the same tensor for float32/float64 input; never written
    cw = centres.to(device=z.device, dtype=dtype)
    n, m = zw.shape[0], cw.shape[0]
    z_sq = (zw * zw).sum(dim=1)
    if m:
        # the nearest centre from the expansion, the distance to it exactly from the difference
        _, nearest = nearest_sq_dists(zw, cw, x_sq=z_sq, chunk_elems=CHUNK_ELEMENTS)
        min_d2 = _exact_sq_dist(zw, cw, nearest)
    else:
        min_d2 = torch.full((n,), math.inf, dtype=dtype, device=z.device)
        nearest = torch.full((n,), -1, dtype=torch.int64, device=z.device)
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
        d2 = sq_dists(zw, zw[i : i + 1], z_sq, z_sq[i : i + 1])[:, 0]
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


class CoreSet(Strategy):
    """k-center greedy over the unlabelled embeddings, with the labelled ones as initial centres.

    See :func:`kcenter_greedy`. The score of a picked sample is its distance to the nearest centre
    when it was picked; the score of any other sample is its distance to the nearest centre after
    the last pick (what the next pick would compare). Scores of picks are therefore never below
    those of the rest. The head is optional; when given, the pseudo-label columns are recorded.

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface and recorded.
    """

    name: ClassVar[str] = "coreset"
    needs_head: ClassVar[bool] = False

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state
        self._validate_params()

    def _select(self, inputs: QueryInputs) -> Selection:
        z = inputs.z_unlabelled
        picked, picked_dist, final_dist = kcenter_greedy(z, inputs.z_labelled, inputs.budget)
        score = final_dist.clone()
        score[picked] = picked_dist
        columns: dict[str, np.ndarray] = {schema.SCORE: to_numpy(score)}
        if inputs.head is not None:
            columns.update(self._prob_columns(head_probabilities(inputs.head, z)))
        radius = float(final_dist.max()) if final_dist.numel() else 0.0
        logger.debug("CoreSet: picked %d, covering radius now %.4g", len(picked), radius)
        return Selection(selected_idx=picked.cpu().numpy(), columns=columns)
