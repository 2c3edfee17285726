"""Query strategies as plain estimators, and the registry that lists them.

Each strategy lives in a private module with the tensor functions it calls; this package
re-exports them. :data:`STRATEGIES` lists every built-in strategy explicitly.
"""

from __future__ import annotations

from alfaviz.strategies._alfamix import ALFAMix
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._baselines import (
    BADGE,
    BALD,
    CoreSet,
    Entropy,
    LeastConfidence,
    Margin,
    Random,
)
from alfaviz.strategies._registry import STRATEGIES, get_strategy, register
from alfaviz.strategies._result import QueryResult

__all__ = [
    "BADGE",
    "BALD",
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
    "get_strategy",
    "head_probabilities",
    "register",
]
