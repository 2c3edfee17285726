"""The learning curve: test accuracy against the number of labels, per strategy.

Rendering
---------
The curve is a static ``go.Figure``, never a FigureWidget (each FigureWidget ships about
5 MB of JavaScript, and the curve needs no Python round trip). It is shown in an
``ipywidgets.Output`` whose only output is the figure's mimebundle,
``application/vnd.plotly.v1+json`` (what plotly's ``plotly_mimetype`` renderer emits), with a
``text/plain`` summary as fallback. JupyterLab, Notebook 7 and Voila (0.5, which loads
JupyterLab's extensions) render that MIME type with the ``jupyterlab-plotly`` extension that
the plotly wheel installs, and that extension bundles plotly.js: nothing is fetched from a
CDN, so the curve works offline. The alternatives were refused: ``fig.to_html`` with
``include_plotlyjs="cdn"`` (needs the network), ``include_plotlyjs=True`` (3.5 MB per
redraw inside an ``HTML`` widget, whose scripts do not run), and ``notebook_connected``
(CDN again). A frontend without the extension (classic Notebook 6 without it, nbviewer)
shows the text summary.

The figure is built by the pure function :func:`curve_figure` (a frame in, a figure out), so
it is tested without widgets; the view redraws it when ``state.data_version`` moves and the
rounds frame actually changed (labels alone do not redraw it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from alfaviz import schema
from alfaviz.widgets._base import View

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = ["PLOTLY_MIME", "LearningCurve", "curve_figure", "curve_mimebundle"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
"""The MIME type JupyterLab's and Voila's bundled plotly extension renders offline."""

_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _strategy_curves(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per strategy: rows of (n_labelled, accuracy mean, accuracy std, seeds) by round."""
    df = frame.copy()
    if schema.STRATEGY not in df.columns:
        df[schema.STRATEGY] = ""
    df[schema.STRATEGY] = df[schema.STRATEGY].astype(str)
    if schema.SEED not in df.columns:
        df[schema.SEED] = 0
    out = []
    for strategy, g in df.groupby(schema.STRATEGY, sort=True):
        agg = (
            g.groupby(schema.ROUND, sort=True)
            .agg(
                n=(schema.N_LABELLED, "mean"),
                acc=(schema.ACCURACY, "mean"),
                sd=(schema.ACCURACY, "std"),
                seeds=(schema.SEED, "nunique"),
            )
            .reset_index()
        )
        out.append((str(strategy), agg))
    return out


def curve_figure(
    rounds_or_curves: pd.DataFrame,
    comparison: pd.DataFrame | None = None,
    *,
    title: str = "Learning curve",
) -> go.Figure:
    """Test accuracy against labelled samples: one line per strategy.

    Parameters
    ----------
    rounds_or_curves : pandas.DataFrame
        A run's :data:`~alfaviz.schema.ROUNDS` frame (one row per round), or a comparison's
        :data:`~alfaviz.schema.CURVES` frame (one row per strategy, seed and round; seeds are
        averaged, with their standard deviation as error bars).
    comparison : pandas.DataFrame, optional
        A :data:`~alfaviz.schema.CURVES` frame drawn behind ``rounds_or_curves``, whose
        lines are then named "this run (<strategy>)".
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` per strategy (comparison strategies first); ``x`` holds the number of
        labelled samples and ``y`` the accuracy, both float64 1-D arrays.
    """
    fig = go.Figure()
    layers: list[tuple[pd.DataFrame, bool]] = []
    if comparison is not None:
        layers.append((comparison, False))
    layers.append((rounds_or_curves, comparison is not None))
    i = 0
    for frame, is_run in layers:
        for strategy, agg in _strategy_curves(frame):
            x = agg["n"].to_numpy(np.float64)
            y = agg["acc"].to_numpy(np.float64)
            sd = np.nan_to_num(agg["sd"].to_numpy(np.float64), nan=0.0)
            name = f"this run ({strategy})" if is_run else (strategy or "run")
            many = bool((agg["seeds"] > 1).any())
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=name,
                    line={"color": _COLOURS[i % len(_COLOURS)], "width": 3 if is_run else 2},
                    error_y={"type": "data", "array": sd, "visible": True} if many else None,
                    hovertemplate="%{x:.0f} labels<br>accuracy %{y:.3f}<extra>%{fullData.name}"
                    "</extra>",
                )
            )
            i += 1
    # whole numbers of labels on the x axis: plotly would put ticks at 19.5 and 20.5 around
    # the single point of a first round
    xaxis: dict[str, Any] = {"title": "labelled samples", "tickformat": "d"}
    xs = np.concatenate([np.asarray(t.x, np.float64) for t in fig.data]) if fig.data else None
    if xs is not None and xs.size and float(xs.max() - xs.min()) < 5:
        xaxis.update(dtick=1, range=[float(xs.min()) - 1, float(xs.max()) + 1])
    fig.update_layout(
        title=title,
        xaxis=xaxis,
        yaxis_title="test accuracy",
        yaxis_rangemode="tozero",
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return fig


def figure_spec(fig: go.Figure) -> dict[str, Any]:
    """``fig`` as plotly's JSON MIME payload (data, layout, config), for an ``Output``."""
    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = {"displaylogo": False, "responsive": True}
    return spec


def curve_mimebundle(fig: go.Figure) -> dict[str, Any]:
    """The figure as a mimebundle: plotly's own JSON MIME type, and a text summary."""
    spec = figure_spec(fig)
    lines = []
    for t in fig.data:
        pts = ", ".join(f"{a:.0f}: {b:.3f}" for a, b in zip(t.x, t.y, strict=True))
        lines.append(f"{t.name}: {pts}")
    return {PLOTLY_MIME: spec, "text/plain": "\n".join(lines) or "no rounds yet"}


class LearningCurve(View):
    """Test accuracy against labelled samples, redrawn when a round is written.

    Parameters
    ----------
    state : AppState
        Observed: ``data_version``. Nothing is written.
    data : RunData
    errors : ErrorArea, optional
    comparison : pandas.DataFrame, optional
        A :data:`~alfaviz.schema.CURVES` frame of other strategies to compare with.

    Attributes
    ----------
    figure : plotly.graph_objects.Figure
        The figure on screen.
    output : ipywidgets.Output
        Holds the figure's mimebundle.
    """

    name: ClassVar[str] = "curve"
    css_class: ClassVar[str] = "alfaviz-curve"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        comparison: pd.DataFrame | None = None,
    ) -> None:
        self.comparison = None if comparison is None else schema.conform(comparison, schema.CURVES)
        self._key: Any = None
        self.n_draws = 0
        super().__init__(state, data, errors=errors)

    def _build(self) -> widgets.Widget:
        self.output = widgets.Output(layout=widgets.Layout(min_height="320px"))
        self._observe(lambda _c: self.redraw(), names=["data_version"])
        self.redraw(force=True)
        return self.output

    def redraw(self, *, force: bool = False) -> None:
        """Rebuild the figure from ``data.rounds()`` if the rounds changed (or ``force``)."""
        rounds = self.data.rounds()
        key = (
            len(rounds),
            tuple(rounds[schema.ACCURACY].round(12).tolist()),
            tuple(rounds[schema.N_LABELLED].tolist()),
        )
        if key == self._key and not force:
            return
        self._key = key
        self.figure = curve_figure(rounds, self.comparison)
        self.output.outputs = (
            {"output_type": "display_data", "data": curve_mimebundle(self.figure), "metadata": {}},
        )
        self.n_draws += 1
