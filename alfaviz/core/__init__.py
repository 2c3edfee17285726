"""The GUI-free core of alfaviz: tensors and arrays in, tidy frames out.

Nothing in this package imports ipywidgets, plotly or IPython (a test checks this in a
subprocess), so it runs headless on a GPU box.
"""

from __future__ import annotations

from alfaviz.core import schema
from alfaviz.core.alfamix import (
    ALFAMix,
    CandidateResult,
    QueryOutcome,
    alfamix_query,
    find_candidates,
)
from alfaviz.core.result import QueryResult
from alfaviz.core.strategies.base import STRATEGIES, Strategy, get_strategy, register
from alfaviz.core.validation import AlfavizInputError

__all__ = [
    "STRATEGIES",
    "ALFAMix",
    "AlfavizInputError",
    "CandidateResult",
    "QueryOutcome",
    "QueryResult",
    "Strategy",
    "alfamix_query",
    "find_candidates",
    "get_strategy",
    "register",
    "schema",
]
