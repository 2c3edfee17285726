"""Linked notebook and Voila views of a run: map, heatmap, gallery, labelling, rounds, curve.

An optional extra: ``pip install 'alfaviz[widgets]'``. Every view takes ``(state, data)``: one
shared :class:`AppState` (what the user looks at and has selected) and one :class:`RunData`
(the run's frames, live in an :class:`~alfaviz.session.Experiment` or reopened from a folder).
Views observe only the state traits they need, write only user intent, and never call torch
or change a frame.
"""

from __future__ import annotations

try:
    import ipywidgets as _ipywidgets  # noqa: F401
    import plotly as _plotly  # noqa: F401
    import traitlets as _traitlets  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "alfaviz.widgets needs the optional widgets extra (ipywidgets, plotly, anywidget); "
        "install it with: pip install 'alfaviz[widgets]'"
    ) from exc

from alfaviz.widgets._ab import StrategyAB
from alfaviz.widgets._base import ErrorArea, View
from alfaviz.widgets._curve import LearningCurve, curve_figure
from alfaviz.widgets._dashboard import Dashboard, dashboard
from alfaviz.widgets._data import RunData
from alfaviz.widgets._embedding import EmbeddingMap, embedding_figure
from alfaviz.widgets._explain import ExplainCard
from alfaviz.widgets._gallery import Gallery
from alfaviz.widgets._heatmap import Heatmap, heatmap_figure
from alfaviz.widgets._hypothesis import HypothesisChart
from alfaviz.widgets._labels import LabelPanel, teaching_outcome
from alfaviz.widgets._rounds import RoundControls
from alfaviz.widgets._state import COLOUR_BY, AppState
from alfaviz.widgets._sweep import EpsilonSweep

__all__ = [
    "COLOUR_BY",
    "AppState",
    "Dashboard",
    "EmbeddingMap",
    "EpsilonSweep",
    "ErrorArea",
    "ExplainCard",
    "Gallery",
    "Heatmap",
    "HypothesisChart",
    "LabelPanel",
    "LearningCurve",
    "RoundControls",
    "RunData",
    "StrategyAB",
    "View",
    "curve_figure",
    "dashboard",
    "embedding_figure",
    "heatmap_figure",
    "teaching_outcome",
]
