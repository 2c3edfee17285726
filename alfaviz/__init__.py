"""alfaviz: explore active learning with ALFA-Mix.

The public API is small and imported lazily (PEP 562): ``import alfaviz`` loads neither torch
nor any GUI library; each name below is imported the first time it is used.

- :class:`Experiment` and :func:`open_run`: run active-learning rounds, or reopen a run;
- :func:`dashboard`: every view of a run, linked (needs ``alfaviz[widgets]``);
- :func:`explain`: why a sample was (or was not) picked in a round, as an ``Explanation``;
- :func:`explain_round`: every pick of a round, its reason and what its label says about the
  method's hypothesis, as a frame;
- :func:`compare_batches`: the run's batch beside other strategies' on the same round;
- :func:`export_report`: one round's selection as a self-contained, offline HTML file;
- :func:`load_dataset`: a data source by name, folder or file;
- :func:`from_embeddings`: pre-computed features (memory maps are not copied) for the model
  ``"linear"``;
- :func:`find_candidates` and :func:`alfamix_query`: the ALFA-Mix method as functions;
- :func:`get_strategy` and :data:`STRATEGIES`: the query strategies;
- :class:`TrainConfig`: the training protocol;
- :mod:`schema`: every column name, dtype and default of every frame;
- :class:`AlfavizInputError` and :class:`RunStoreError`: the two error types.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str | None]] = {
    "Experiment": ("alfaviz.session", "Experiment"),
    "open_run": ("alfaviz.session", "open_run"),
    "dashboard": ("alfaviz.widgets", "dashboard"),
    "explain": ("alfaviz.analysis.explain", "explain"),
    "explain_round": ("alfaviz.analysis.hypothesis", "explain_round"),
    "compare_batches": ("alfaviz.analysis.ab", "compare_batches"),
    "export_report": ("alfaviz.analysis.selection_report", "export_report"),
    "load_dataset": ("alfaviz.data", "load_dataset"),
    "from_embeddings": ("alfaviz.data", "from_embeddings"),
    "find_candidates": ("alfaviz.alfamix", "find_candidates"),
    "alfamix_query": ("alfaviz.alfamix", "alfamix_query"),
    "get_strategy": ("alfaviz.strategies", "get_strategy"),
    "STRATEGIES": ("alfaviz.strategies", "STRATEGIES"),
    "TrainConfig": ("alfaviz.learner", "TrainConfig"),
    "schema": ("alfaviz.schema", None),
    "AlfavizInputError": ("alfaviz.errors", "AlfavizInputError"),
    "RunStoreError": ("alfaviz.errors", "RunStoreError"),
}

__all__ = ["__version__", *sorted(_LAZY)]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alfaviz import schema as schema
    from alfaviz.alfamix import alfamix_query as alfamix_query
    from alfaviz.alfamix import find_candidates as find_candidates
    from alfaviz.analysis.ab import compare_batches as compare_batches
    from alfaviz.analysis.explain import explain as explain
    from alfaviz.analysis.hypothesis import explain_round as explain_round
    from alfaviz.analysis.selection_report import export_report as export_report
    from alfaviz.data import from_embeddings as from_embeddings
    from alfaviz.data import load_dataset as load_dataset
    from alfaviz.errors import AlfavizInputError as AlfavizInputError
    from alfaviz.errors import RunStoreError as RunStoreError
    from alfaviz.learner import TrainConfig as TrainConfig
    from alfaviz.session import Experiment as Experiment
    from alfaviz.session import open_run as open_run
    from alfaviz.strategies import STRATEGIES as STRATEGIES
    from alfaviz.strategies import get_strategy as get_strategy
    from alfaviz.widgets import dashboard as dashboard


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alfaviz' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
