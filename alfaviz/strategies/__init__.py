"""Query strategies as plain estimators, and the registry that lists them.

Each strategy lives in a private module with the tensor functions it calls (the functions are
the code path its ``query`` runs); this package re-exports them:

- :mod:`~alfaviz.strategies._random`: :class:`Random`;
- :mod:`~alfaviz.strategies._uncertainty`: :class:`Entropy`, :class:`Margin`,
  :class:`LeastConfidence` and their score functions;
- :mod:`~alfaviz.strategies._bald`: :class:`BALD`, :func:`bald_scores`;
- :mod:`~alfaviz.strategies._coreset`: :class:`CoreSet`, :func:`kcenter_greedy`;
- :mod:`~alfaviz.strategies._badge`: :class:`BADGE`, the gradient embeddings and
  :func:`kmeanspp_gradient`;
- :mod:`~alfaviz.strategies._alfamix`: :class:`ALFAMix` over :func:`alfaviz.alfamix_query`;
- :mod:`~alfaviz.strategies._base`: :class:`Strategy` (``get_params``, ``set_params``) and
  :func:`clone`; :mod:`~alfaviz.strategies._common`: shared helpers.

:data:`STRATEGIES` lists every built-in strategy explicitly.
"""

from __future__ import annotations

from alfaviz.strategies._alfamix import ALFAMix
from alfaviz.strategies._badge import (
    BADGE,
    gradient_embedding_factors,
    gradient_embedding_sq_dist,
    kmeanspp_gradient,
)
from alfaviz.strategies._bald import BALD, bald_scores
from alfaviz.strategies._base import (
    RANDOM_STATE_KEY,
    QueryInputs,
    Selection,
    Strategy,
    clone,
    head_probabilities,
)
from alfaviz.strategies._common import top_k_positions
from alfaviz.strategies._coreset import CoreSet, kcenter_greedy
from alfaviz.strategies._random import Random, random_keys
from alfaviz.strategies._registry import STRATEGIES, get_strategy, register
from alfaviz.strategies._result import QueryResult
from alfaviz.strategies._uncertainty import (
    Entropy,
    LeastConfidence,
    Margin,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
)

__all__ = [
    "BADGE",
    "BALD",
    "RANDOM_STATE_KEY",
    "STRATEGIES",
    "ALFAMix",
    "CoreSet",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "QueryInputs",
    "QueryResult",
    "Random",
    "Selection",
    "Strategy",
    "bald_scores",
    "clone",
    "entropy_scores",
    "get_strategy",
    "gradient_embedding_factors",
    "gradient_embedding_sq_dist",
    "head_probabilities",
    "kcenter_greedy",
    "kmeanspp_gradient",
    "least_confidence_scores",
    "margin_scores",
    "random_keys",
    "register",
    "top_k_positions",
]
