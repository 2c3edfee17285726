"""The hypothesis chart: does a label land on a flip target more often for ALFA-Mix's picks?

ALFA-Mix's hypothesis is that a sample whose prediction flips when it is mixed toward class
c's anchor holds features the model does not recognise yet. Once such a sample is labelled,
its label says which way the model was wrong: a label equal to a flip target supports the
hypothesis, a label equal to the pseudo-label says the pick taught the model little new.

:func:`hypothesis_figure` is the pure twin (a :data:`~alfaviz.schema.HYPOTHESIS` frame in, a
``go.Figure`` out): per round, one stacked bar of the three outcome rates for the run's own
picks and one for the baseline's (Entropy's top picks on the same model and pool, hatched).
:class:`HypothesisChart` is the view. The rates come from
:meth:`RunData.hypothesis <alfaviz.widgets.RunData.hypothesis>`
(:func:`alfaviz.analysis.hypothesis.hypothesis_rates`), which queries the baseline once per
round and reads every round's frames: about 0.25 s on the 3-round digits run of the tests even
when Entropy is recorded already, more the first time. That is over the 0.2 s a callback may
block the page, so the chart computes in a worker thread and redraws when done.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, ClassVar

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from alfaviz import schema
from alfaviz.widgets._ab import display_name
from alfaviz.widgets._base import WorkerView

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = ["OUTCOME_COLOURS", "OUTCOME_LABELS", "HypothesisChart", "hypothesis_figure"]

OUTCOME_LABELS: dict[str, str] = {
    "pseudo_label": "label = pseudo-label (little new)",
    "flip_target": "label = a flip target (supports it)",
    "neither": "neither",
}
"""Legend text of each outcome (:data:`~alfaviz.schema.OUTCOMES`)."""

OUTCOME_COLOURS: dict[str, str] = {
    "pseudo_label": "#9aa5b1",
    "flip_target": "#2ca02c",
    "neither": "#ff7f0e",
}
"""Colour of each outcome, shared with the labelling panel's tally."""

HYPOTHESIS_TEXT = (
    "ALFA-Mix's hypothesis: a sample whose prediction flips when it is mixed toward class c's "
    "anchor holds features the model does not recognise yet. A label equal to a flip target "
    "supports it; a label equal to the model's pseudo-label means the pick taught it little new "
    "(a pick that never flips can only be that or neither)."
)


def hypothesis_figure(rates: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Stacked bars of the outcome rates per round and strategy.

    Parameters
    ----------
    rates : pandas.DataFrame
        :data:`~alfaviz.schema.HYPOTHESIS` rows (the run's own strategy first in each round,
        as :func:`~alfaviz.analysis.hypothesis.hypothesis_rates` gives them).
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` per outcome, in :data:`~alfaviz.schema.OUTCOMES` order, on a
        multi-category x axis (``[round labels, strategy labels]``); ``y`` is the rate in
        percent (0 where no pick is labelled) and ``customdata`` holds, per bar, the outcome's
        count, the labelled picks and the picks.
    """
    df = rates.sort_values(schema.ROUND, kind="stable")
    names = list(dict.fromkeys(df[schema.STRATEGY].astype(str).tolist()))
    own = names[0] if names else ""
    rounds = [f"round {int(r)}" for r in df[schema.ROUND].tolist()]
    who = [display_name(str(s)) for s in df[schema.STRATEGY].tolist()]
    hatch = ["" if str(s) == own else "/" for s in df[schema.STRATEGY].tolist()]
    fig = go.Figure()
    for o in schema.OUTCOMES:
        rate = df[schema.RATE_PREFIX + o].to_numpy(np.float64)
        n = df[schema.N_OUTCOME_PREFIX + o].to_numpy(np.int64)
        known = df[schema.N_LABELLED].to_numpy(np.int64)
        picked = df[schema.N_PICKED].to_numpy(np.int64)
        label = OUTCOME_LABELS[o]
        fig.add_trace(
            go.Bar(
                x=[rounds, who],
                y=np.nan_to_num(rate * 100.0, nan=0.0),
                name=label,
                customdata=np.stack([n, known, picked], axis=1) if len(df) else None,
                text=[str(v) if v else "" for v in n.tolist()],
                textposition="inside",
                insidetextanchor="middle",
                textfont={"color": "white", "size": 12},
                hovertemplate=f"%{{x}}<br>{html.escape(label)}: %{{customdata[0]}} of "
                "%{customdata[1]} labelled picks (%{y:.0f}%)<br>%{customdata[2]} picked"
                "<extra></extra>",
                marker={
                    "color": OUTCOME_COLOURS[o],
                    "pattern": {"shape": hatch, "fgcolor": "white", "size": 6},
                    "line": {"color": "white", "width": 0.5},
                },
            )
        )
    base = [display_name(n) for n in names[1:]]
    text = title or "Where the labels of the picks land"
    if names:
        text += f" · {display_name(own)} (solid)"
        if base:
            text += f" beside {', '.join(base)}'s top picks (hatched)"
    else:
        text += " · no round yet"
    fig.update_layout(
        # the title at the top of the figure, the legend (two lines in a narrow column) between
        # it and the plot: a top margin that holds both, so that they never overlap
        title={
            "text": text,
            "font": {"size": 13},
            "x": 0.01,
            "xanchor": "left",
            "y": 0.99,
            "yanchor": "top",
        },
        barmode="stack",
        bargap=0.25,
        yaxis={"title": {"text": "share of labelled picks"}, "range": [0, 100], "ticksuffix": "%"},
        xaxis={"type": "multicategory", "tickfont": {"size": 11}},
        legend={
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 0,
            "font": {"size": 11},
            "traceorder": "normal",
        },
        height=380,
        margin={"l": 50, "r": 10, "t": 120, "b": 50},
        template="plotly_white",
    )
    return fig


class HypothesisChart(WorkerView):
    """The outcome rates of the run's own picks beside a baseline's, over the rounds.

    Observes ``data_version`` (a label, an undo or a round changes the rates); writes
    nothing. The rates are computed in a worker thread (see the module docstring), so the
    chart shows "computing…" for a moment after each change.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional
    baseline : str or None
        The strategy set beside the run's own (Entropy by default); None for the own picks.

    Attributes
    ----------
    rates : pandas.DataFrame or None
        The :data:`~alfaviz.schema.HYPOTHESIS` frame on screen.
    figure : plotly.graph_objects.FigureWidget
    about, status : ipywidgets.HTML
        The sentence on what is tested (CSS ``alfaviz-hypothesis-about``) and the status line
        (``alfaviz-hypothesis-status``).
    thread : threading.Thread or None
        The worker while it runs.
    """

    name: ClassVar[str] = "hypothesis"
    css_class: ClassVar[str] = "alfaviz-hypothesis"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        baseline: str | None = "entropy",
    ) -> None:
        self.baseline = baseline
        self.rates: pd.DataFrame | None = None
        self.thread: threading.Thread | None = None
        self.message = ""
        self.seconds = float("nan")
        self._thread_lock = threading.Lock()
        self._dirty = False
        super().__init__(state, data, errors=errors)

    def _build(self) -> widgets.Widget:
        empty = pd.DataFrame({c: [] for c in schema.HYPOTHESIS.names})
        # a plain figure in an Output, not a FigureWidget: the chart takes no clicks, and each
        # FigureWidget ships plotly's whole front-end module (5 MB) to the page again
        self.figure = hypothesis_figure(schema.conform(empty, schema.HYPOTHESIS))
        self.output = widgets.Output(layout=widgets.Layout(min_height="340px"))
        self._show_figure()
        base = display_name(self.baseline) if self.baseline else ""
        beside = (
            f" Solid bars: the run's own picks; hatched: {html.escape(base)}'s top picks on "
            "the same model and pool. The run's own picks count once someone has labelled "
            "them; the baseline's, which nobody is asked to label, count with their dataset "
            "label."
            if base
            else ""
        )
        self.about = widgets.HTML(
            '<div style="font-size:12px;line-height:1.45;max-width:860px">'
            f"{html.escape(HYPOTHESIS_TEXT)}{beside}</div>"
        )
        self.about.add_class("alfaviz-hypothesis-about")
        self.status = widgets.HTML()
        self.status.add_class("alfaviz-hypothesis-status")
        self._observe(lambda _c: self._on_data(), ["data_version"])
        self._on_data()
        return widgets.VBox([self.about, self.output, self.status])

    def _show_figure(self) -> None:
        from alfaviz.widgets._curve import PLOTLY_MIME, figure_spec

        self.output.outputs = (
            {"output_type": "display_data", "metadata": {},
             "data": {PLOTLY_MIME: figure_spec(self.figure), "text/plain": self.message}},
        )  # fmt: skip

    def _say(self, text: str) -> None:
        self.message = text
        self.status.value = (
            f'<span class="alfaviz-status" style="font-size:11px;color:#666">'
            f"{html.escape(text)}</span>"
        )

    # computing (off the UI thread) ---------------------------------------------------------
    def _on_data(self) -> None:
        hit = self.data.cached_hypothesis(self.baseline)
        if hit is not None:
            if hit is not self.rates:
                self._draw(hit)
            return
        self.compute()

    def compute(self, *, wait: bool = False) -> None:
        """Compute the rates again in a worker thread and redraw; ``wait=True`` blocks."""
        with self._thread_lock:
            self._dirty = True
            if self.thread is None:
                self._say("computing…")
                self.thread = threading.Thread(
                    target=self._work, name="alfaviz-hypothesis", daemon=True
                )
                self.thread.start()
        if wait:
            self.wait()

    def _work(self) -> None:
        t0 = time.perf_counter()
        while True:
            with self._thread_lock:
                if not self._dirty:
                    self.thread = None
                    return
                self._dirty = False
            try:
                rates = self.data.hypothesis(self.baseline)
                self._draw(rates)
                self.seconds = time.perf_counter() - t0
                n = rates[schema.ROUND].nunique()
                self._say(f"{n} round{'s' if n != 1 else ''} · computed in {self.seconds:.2f} s")
            except Exception as exc:
                self._say(f"failed: {type(exc).__name__}: {exc}")
                self.errors.report(self.name, exc)

    def _draw(self, rates: pd.DataFrame) -> None:
        self.rates = rates
        self.figure = hypothesis_figure(rates)
        self._show_figure()
