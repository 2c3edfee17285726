"""BALD: Bayesian active learning by disagreement, with MC dropout on the embedding."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from alfaviz import schema
from alfaviz.strategies import _common
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._common import (
    check_int,
    check_real,
    entropy_scores,
    eval_mode,
    seeded_generator,
    to_numpy,
    top_k_positions,
)

__all__ = ["BALD", "bald_scores"]


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
    rows = chunk_rows or _common.chunk_rows(max(z.shape[1], 1))
    out: list[torch.Tensor] = []
    with eval_mode(head):
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
    if not out:
        return torch.empty(0, device=z.device)
    return torch.cat(out)


class BALD(Strategy):
    """Bayesian active learning by disagreement with MC dropout on the embedding.

    The release's networks place dropout between the embedding and the last linear layer, so the
    masks are applied to ``z`` before the head (see :func:`bald_scores`). The head itself stays in
    eval mode. The score is the mutual information between the prediction and the dropout mask;
    the top ``budget`` are picked (ties: lower position first).

    Parameters
    ----------
    n_draws : int
        Number of MC dropout draws, a positive integer.
    dropout : float
        Drop probability in ``[0, 1)``; 0 gives zero scores (no disagreement).
    random_state : int or None
        Seed of the mask generator, in ``0..2**63-1``; ``None`` draws a fresh seed at every
        query. The seed used is recorded in ``QueryResult.info["random_state"]``.
    """

    name: ClassVar[str] = "bald"
    needs_head: ClassVar[bool] = True

    def __init__(
        self, n_draws: int = 20, dropout: float = 0.5, random_state: int | None = 0
    ) -> None:
        self.n_draws = n_draws
        self.dropout = dropout
        self.random_state = random_state
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int("BALD", "n_draws", self.n_draws, minimum=1, hint=" (e.g. 20)")
        check_real(
            "BALD",
            "dropout",
            self.dropout,
            low=0.0,
            high=1.0,
            low_open=False,
            high_open=True,
            what="a probability",
        )

    def _select(self, inputs: QueryInputs) -> Selection:
        head = inputs.head
        assert head is not None  # Strategy.query checks needs_head
        z = inputs.z_unlabelled
        scores = bald_scores(
            head,
            z,
            n_draws=int(self.n_draws),
            dropout=float(self.dropout),
            generator=seeded_generator(inputs.random_state, z.device),
        )
        scores_np = to_numpy(scores)
        columns = {schema.SCORE: scores_np, **self._prob_columns(head_probabilities(head, z))}
        return Selection(selected_idx=top_k_positions(scores_np, inputs.budget), columns=columns)
