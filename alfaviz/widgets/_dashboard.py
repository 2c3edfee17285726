"""The composed dashboard: every view of one run, linked through one :class:`AppState`."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from alfaviz.widgets._base import ErrorArea
from alfaviz.widgets._data import RunData
from alfaviz.widgets._state import AppState

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.session import Experiment

__all__ = ["Dashboard", "dashboard"]


class Dashboard:
    """Every view of a run, sharing one state and one error area.

    Attributes
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea
    views : dict of str to View
        ``round-controls``, ``embedding``, ``eps`` (the ε slider), ``heatmap``, ``gallery``,
        ``label-panel``, ``why`` (the why-card), ``curve``, ``ab`` (strategy A/B) and
        ``hypothesis``.
    widget : ipywidgets.VBox
        Carries the CSS class ``alfaviz-dashboard``.
    """

    def __init__(self, data: RunData, state: AppState | None = None) -> None:
        from alfaviz.widgets._ab import StrategyAB
        from alfaviz.widgets._curve import LearningCurve
        from alfaviz.widgets._embedding import EmbeddingMap
        from alfaviz.widgets._explain import ExplainCard
        from alfaviz.widgets._gallery import Gallery
        from alfaviz.widgets._heatmap import Heatmap
        from alfaviz.widgets._hypothesis import HypothesisChart
        from alfaviz.widgets._labels import LabelPanel
        from alfaviz.widgets._rounds import RoundControls
        from alfaviz.widgets._sweep import EpsilonSweep

        self.data = data
        self._owns_data = False
        self.state = state if state is not None else AppState()
        if data.n_rounds:
            self.state.round = data.n_rounds - 1
        self._detach = data.attach(self.state)
        self.errors = ErrorArea()
        classes = (
            RoundControls, EmbeddingMap, EpsilonSweep, Heatmap, Gallery, LabelPanel, ExplainCard,
            LearningCurve, StrategyAB, HypothesisChart,
        )  # fmt: skip
        self.views = {c.name: c(self.state, data, errors=self.errors) for c in classes}
        v = self.views
        # one round selector: the round controls' (the map's own slider is for a map alone)
        v["embedding"].slider.layout.display = "none"
        title = widgets.HTML(
            f"<b>alfaviz</b> · {html.escape(str(data.experiment.path))} · "
            f"{data.experiment.strategy.name} · {data.n_classes} classes",
            layout=widgets.Layout(margin="0 0 4px 0"),
        )
        title.add_class("alfaviz-title")
        # what a user looks at first (map, ε, heatmap), what they act on (labels, why-card,
        # curve), the batch, then the comparisons with other strategies
        left = widgets.VBox([v["embedding"].widget, v["eps"].widget, v["heatmap"].widget])
        right = widgets.VBox([v["label-panel"].widget, v["why"].widget, v["curve"].widget])
        left.layout = widgets.Layout(width="64%", min_width="0")
        right.layout = widgets.Layout(width="36%", min_width="0", padding="0 0 0 8px")
        compare = widgets.HBox([v["ab"].widget, v["hypothesis"].widget])
        v["ab"].widget.layout.width = "60%"
        v["hypothesis"].widget.layout.width = "40%"
        self.widget = widgets.VBox(
            [
                title,
                v["round-controls"].widget,
                self.errors.widget,
                widgets.HBox([left, right]),
                v["gallery"].widget,
                compare,
            ]
        )
        self.widget.add_class("alfaviz-dashboard")

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the views that compute in a worker (A/B, hypothesis) to finish.

        Parameters
        ----------
        timeout : float, optional
            Seconds per view.
        """
        for name in ("ab", "hypothesis"):
            self.views[name].wait(timeout)

    def close(self) -> None:
        """Stop listening to the run; a :class:`RunData` made by :func:`dashboard` for a run
        (not one passed in) is closed too, which stops its watcher.

        A view still computing in its worker (A/B, hypothesis) is given up to 60 s to finish
        first, so that what it records with the run is written whole.
        """
        self._detach()
        self.wait(60.0)
        if self._owns_data:
            self.data.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def dashboard(
    run: Experiment | RunData | str | Path,
    *,
    state: AppState | None = None,
    read_only: bool | None = None,
    watch: float | bool | None = None,
) -> Dashboard:
    """Every view of ``run``, linked through one state: display the result in a notebook.

    Parameters
    ----------
    run : Experiment, RunData, or a run directory
        A live experiment, or a folder reopened with :func:`alfaviz.open_run`.
    state : AppState, optional
        Share the selection with views made elsewhere.
    read_only : bool, optional
        Refuse labelling (default: read-only unless the run is labelled by a person).
    watch : float or bool, optional
        Watch the run for other tabs' and processes' changes (``RunData(run, watch=...)``);
        off by default. Ignored when ``run`` is a :class:`RunData` (it is the caller's).

    Returns
    -------
    Dashboard
    """
    if isinstance(run, RunData):
        return Dashboard(run, state)
    data = RunData(run, read_only=read_only, watch=watch)
    try:
        board = Dashboard(data, state)  # attach() catches up with other sessions first
    except BaseException:
        data.close()  # no watcher left behind for a page that was never built
        raise
    board._owns_data = True
    return board
