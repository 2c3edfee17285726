"""Uncertainty sampling: Entropy, Margin and LeastConfidence, and their score functions.

Each strategy picks the top ``budget`` samples by a score of the head's class probabilities
(higher is more uncertain; ties go to the lower position) and is deterministic.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from alfaviz import schema
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._common import entropy_scores, to_numpy, top_k_positions

__all__ = [
    "Entropy",
    "LeastConfidence",
    "Margin",
    "entropy_scores",
    "least_confidence_scores",
    "margin_scores",
]


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


class _UncertaintyStrategy(Strategy):
    """Top-``budget`` samples by a score of the head's class probabilities."""

    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state
        self._validate_params()

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _select(self, inputs: QueryInputs) -> Selection:
        head = inputs.head
        assert head is not None  # Strategy.query checks needs_head
        p = head_probabilities(head, inputs.z_unlabelled)
        scores = to_numpy(self._scores(p))
        columns = {schema.SCORE: scores, **self._prob_columns(p)}
        return Selection(selected_idx=top_k_positions(scores, inputs.budget), columns=columns)


class Entropy(_UncertaintyStrategy):
    """Highest predictive entropy of the head's softmax (:func:`entropy_scores`).

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface and recorded.
    """

    name: ClassVar[str] = "entropy"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return entropy_scores(p)


class Margin(_UncertaintyStrategy):
    """Smallest gap between the two most probable classes (:func:`margin_scores`).

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface and recorded.
    """

    name: ClassVar[str] = "margin"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return margin_scores(p)


class LeastConfidence(_UncertaintyStrategy):
    """Lowest maximum class probability (:func:`least_confidence_scores`).

    Parameters
    ----------
    random_state : int or None
        Unused (the strategy is deterministic); kept for a uniform interface and recorded.
    """

    name: ClassVar[str] = "leastconfidence"

    @staticmethod
    def _scores(p: torch.Tensor) -> torch.Tensor:
        return least_confidence_scores(p)
