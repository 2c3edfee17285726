"""Query strategies: the base class, the registry and the built-in strategies.

Importing this package registers every built-in strategy in
:data:`~alfaviz.core.strategies.base.STRATEGIES`.
"""

from __future__ import annotations

from alfaviz.core.strategies import base, baselines
from alfaviz.core.strategies.base import (
    STRATEGIES,
    QueryInputs,
    Selection,
    Strategy,
    get_strategy,
    head_probabilities,
    register,
)
from alfaviz.core.strategies.baselines import (
    BADGE,
    BALD,
    CoreSet,
    Entropy,
    LeastConfidence,
    Margin,
    Random,
)

# ALFA-Mix registers itself when imported; add it here (it lives in alfaviz.core.alfamix):
# from alfaviz.core.alfamix import ALFAMix

__all__ = [
    "BADGE",
    "BALD",
    "STRATEGIES",
    "CoreSet",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "QueryInputs",
    "Random",
    "Selection",
    "Strategy",
    "base",
    "baselines",
    "get_strategy",
    "head_probabilities",
    "register",
]
