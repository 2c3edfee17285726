"""Strategy A/B: what other strategies would pick on the shown round, beside the run's own.

The comparison is :func:`alfaviz.analysis.ab.compare_batches` (through
:meth:`RunData.compare_batches <alfaviz.widgets.RunData.compare_batches>`): each strategy is
queried once on the round's stored inputs and recorded with the run, so a round compared once
shows again at once, in this session or after the run is reopened. Querying BADGE and CoreSet
can take seconds, so :class:`StrategyAB` computes in a worker thread and says so in its status
line; the page stays live.

:func:`ab_figure` is the pure twin (a :class:`~alfaviz.analysis.ab.BatchComparison` in, a
``go.Figure`` out): the overlap matrix as a heatmap with the shared picks written in the cells
(the diagonal is each batch size), and UpSet-style bars of the exclusive intersections (each
bar: the samples picked by exactly the strategies marked by the dots below it).
:func:`diversity_html` is the diversity table.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from alfaviz import schema
from alfaviz.widgets._base import FigureSlot, WorkerView, patch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.analysis.ab import BatchComparison
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = ["MAX_INTERSECTIONS", "StrategyAB", "ab_figure", "display_name", "diversity_html"]

MAX_INTERSECTIONS = 20
"""Most UpSet bars drawn (the largest intersections); the title says when more exist."""

_NAMES = {
    "alfamix": "ALFA-Mix",
    "entropy": "Entropy",
    "margin": "Margin",
    "badge": "BADGE",
    "coreset": "CoreSet",
    "random": "Random",
    "bald": "BALD",
}
_OWN_COLOUR = "#d62728"
_BAR_COLOUR = "#4c78a8"
_DOT_OFF = "#e0e0e0"
_DOT_ON = "#333333"
# traces of the figure, in order
_HEAT, _BARS, _LINKS, _DOTS = 0, 1, 2, 3


def display_name(name: str) -> str:
    """How a registered strategy name is written on screen (``badge`` → ``BADGE``)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    return _NAMES.get(key, str(name))


def _empty_figure(text: str) -> go.Figure:
    fig = _layout(make_subplots(**_GRID), title=text, n=0, height=260)
    fig.add_trace(go.Heatmap(z=[], x=[], y=[], showscale=False), row=1, col=1)
    fig.add_trace(go.Bar(x=[], y=[]), row=1, col=2)
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines"), row=2, col=2)
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers"), row=2, col=2)
    return fig


_GRID: dict[str, Any] = {
    "rows": 2,
    "cols": 2,
    "specs": [[{"rowspan": 2}, {}], [None, {}]],
    "column_widths": [0.4, 0.6],
    "row_heights": [0.56, 0.44],
    "horizontal_spacing": 0.16,
    "vertical_spacing": 0.03,
    "subplot_titles": ("shared picks (diagonal: batch size)", "exclusive intersections", ""),
}


def _layout(fig: go.Figure, *, title: str, n: int, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 30},
        showlegend=False,
        template="plotly_white",
        bargap=0.35,
    )
    for a in fig.layout.annotations:  # the subplot titles
        a.font = {"size": 12}
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=2)
    fig.update_yaxes(title={"text": "samples"}, rangemode="tozero", row=1, col=2)
    fig.update_xaxes(
        matches="x2", showticklabels=False, showgrid=False, zeroline=False, row=2, col=2
    )
    fig.update_xaxes(side="bottom", tickangle=-30, row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False, row=2, col=2)
    return fig


def ab_figure(
    comparison: BatchComparison | None,
    *,
    title: str = "",
    max_intersections: int = MAX_INTERSECTIONS,
) -> go.Figure:
    """The overlap matrix and the UpSet bars of one round's strategy comparison.

    Parameters
    ----------
    comparison : BatchComparison or None
        None gives an empty figure whose title is ``title`` (the same four traces).
    title : str
        Leading part of the title.
    max_intersections : int
        The largest intersections drawn; the title says when some were left out.

    Returns
    -------
    plotly.graph_objects.Figure
        Four traces: a ``Heatmap`` of the overlap, shape (n_strategies, n_strategies), its
        counts written in the cells; a ``Bar`` per exclusive intersection (``x`` its position,
        ``y`` its count, ``customdata`` its position in the intersections frame); the lines
        and the dots of the UpSet membership matrix (``x`` the bar, ``y`` the strategy row).
    """
    if comparison is None:
        return _empty_figure(title or "Strategy A/B")
    names = list(comparison.strategies)
    labels = [display_name(n) for n in names]
    n = len(names)
    m = comparison.overlap.loc[names, names].to_numpy(np.int64)
    hover = [
        [
            f"{labels[i]}'s batch: {m[i, j]} samples"
            if i == j
            else f"{labels[i]} and {labels[j]} share {m[i, j]} picks"
            for j in range(n)
        ]
        for i in range(n)
    ]
    inter = comparison.intersections
    shown = inter.iloc[: int(max_intersections)]
    k = len(shown)
    member = shown[names].to_numpy(bool) if k else np.zeros((0, n), dtype=bool)
    from alfaviz.analysis.ab import COUNT

    counts = shown[COUNT].to_numpy(np.int64)
    own_only = member[:, 0] & (member.sum(axis=1) == 1) if k else np.zeros(0, dtype=bool)
    words = []
    for row in member:
        who = [labels[j] for j in range(n) if row[j]]
        words.append(f"only {who[0]}" if len(who) == 1 else (" + ".join(who) + ", no other"))
    fig = _layout(
        make_subplots(**_GRID),
        title="",
        n=n,
        height=max(320, 170 + 36 * n),
    )
    fig.add_trace(
        go.Heatmap(
            z=m.astype(np.float64),
            x=labels,
            y=labels,
            text=m.astype(str),
            texttemplate="%{text}",
            textfont={"size": 13},
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            colorscale="Blues",
            zmin=0,
            zmax=float(max(m.max(initial=0), 1)),
            showscale=False,
            xgap=2,
            ygap=2,
            name="overlap",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=np.arange(k, dtype=np.int32),
            y=counts,
            text=counts.astype(str),
            textposition="outside",
            cliponaxis=False,
            customdata=np.arange(k, dtype=np.int32),
            hovertext=[
                f"{w}: {c} samples (click to select)"
                for w, c in zip(words, counts.tolist(), strict=True)
            ],
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": [_OWN_COLOUR if o else _BAR_COLOUR for o in own_only]},
            name="intersections",
        ),
        row=1,
        col=2,
    )
    lx: list[float | None] = []
    ly: list[float | None] = []
    for i, row in enumerate(member):
        on = np.flatnonzero(row)
        if on.size > 1:
            lx += [float(i), float(i), None]
            ly += [float(on.min()), float(on.max()), None]
    fig.add_trace(
        go.Scatter(
            x=lx,
            y=ly,
            mode="lines",
            line={"color": _DOT_ON, "width": 2},
            hoverinfo="skip",
            name="links",
        ),
        row=2,
        col=2,
    )
    xx, yy = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    fig.add_trace(
        go.Scatter(
            x=xx.ravel().astype(np.int32),
            y=yy.ravel().astype(np.int32),
            mode="markers",
            marker={
                "size": 11,
                "color": [_DOT_ON if v else _DOT_OFF for v in member.ravel().tolist()],
            },
            hoverinfo="skip",
            name="members",
        ),
        row=2,
        col=2,
    )
    fig.update_yaxes(
        tickmode="array", tickvals=list(range(n)), ticktext=labels,
        range=[n - 0.5, -0.5], autorange=False, row=2, col=2,
    )  # fmt: skip
    fig.update_xaxes(range=[-0.6, max(k, 1) - 0.4], row=2, col=2)
    fig.update_yaxes(range=[0, float(max(counts.max(initial=0), 1)) * 1.2], row=1, col=2)
    head = title or f"Round {comparison.round}"
    text = f"{head} · {n} strategies on the same model and pool"
    if len(inter) > k:
        text += f" · {k} largest of {len(inter)} intersections"
    fig.update_layout(title={"text": text})
    if own_only.any():
        fig.layout.annotations[1].text = f"exclusive intersections (red: only {labels[0]})"
    return fig


def diversity_html(comparison: BatchComparison, n_classes: int) -> str:
    """The diversity table: per strategy, its batch size, mean pairwise distance in the
    round's embedding space, classes and pseudo-classes covered, and its exclusive picks."""
    d = comparison.diversity
    own = comparison.own
    rows = []
    for rec in d.to_dict("records"):
        name = str(rec[schema.STRATEGY])
        dist = float(rec[schema.MEAN_DISTANCE])
        style = ' style="font-weight:bold"' if name == own else ""
        rows.append(
            f'<tr{style} data-strategy="{html.escape(name)}">'
            f"<td>{html.escape(display_name(name))}</td>"
            f"<td>{int(rec[schema.N_SAMPLES])}</td>"
            f"<td>{'–' if not np.isfinite(dist) else f'{dist:.3g}'}</td>"
            f"<td>{int(rec[schema.CLASSES_COVERED])} of {n_classes}</td>"
            f"<td>{int(rec[schema.PSEUDO_CLASSES_COVERED])} of {n_classes}</td>"
            f"<td>{len(comparison.only(name))}</td></tr>"
        )
    head = "".join(
        f'<th style="text-align:left;padding-right:14px">{h}</th>'
        for h in (
            "strategy", "batch", "mean pairwise distance", "classes covered",
            "pseudo-classes covered", "only it picks",
        )
    )  # fmt: skip
    return (
        '<table class="alfaviz-ab-table" style="font-size:12px;border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<div style="font-size:11px;color:#666">distance: Euclidean, in the round\'s embedding '
        "space; classes: dataset labels; pseudo-classes: the model's predictions.</div>"
    )


class StrategyAB(WorkerView):
    """The run's own batch on ``state.round`` beside Entropy, Margin, BADGE, CoreSet and Random.

    Observes ``round`` and ``data_version``; writes ``selected_ids`` (the buttons select a
    batch, the samples only the run's own strategy picks, or a clicked intersection or
    overlap cell, so the map, the gallery and the heatmap follow).

    Nothing is queried until the "Compare strategies on this round" button is pressed (or
    :meth:`compute` is called); the work runs in a worker thread with a status line. A round
    already compared (in this session, or recorded with the run in an earlier one) is shown
    as soon as it is visited.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional
    strategies : sequence of str, optional
        Set beside the run's own (:data:`alfaviz.analysis.ab.AB_STRATEGIES` by default).

    Attributes
    ----------
    comparison : BatchComparison or None
        The comparison on screen.
    figure : plotly.graph_objects.FigureWidget
        :func:`ab_figure` of it.
    run_button, only_button : ipywidgets.Button
        CSS classes ``alfaviz-ab-run`` and ``alfaviz-ab-only``.
    show_buttons : dict of str to ipywidgets.Button
        One per strategy, in the box with CSS class ``alfaviz-ab-show``.
    status, only_text, table : ipywidgets.HTML
        CSS classes ``alfaviz-ab-status``, ``alfaviz-ab-only-text`` and
        ``alfaviz-ab-diversity``.
    thread : threading.Thread or None
        The worker while it runs.
    """

    name: ClassVar[str] = "ab"
    css_class: ClassVar[str] = "alfaviz-ab"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        strategies: Sequence[str] | None = None,
    ) -> None:
        self.strategies = None if strategies is None else tuple(str(s) for s in strategies)
        self.comparison: BatchComparison | None = None
        self.thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._wanted: int | None = None
        self._bar_ids: list[tuple[int, ...]] = []
        self.show_buttons: dict[str, widgets.Button] = {}
        self.message = ""
        self._cleared: str | None = None
        super().__init__(state, data, errors=errors)

    # building ------------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        self.run_button = widgets.Button(
            description="Compare strategies on this round",
            icon="balance-scale",
            layout=widgets.Layout(width="auto", flex="0 0 auto"),  # never cut short
            tooltip="Query Entropy, Margin, BADGE, CoreSet and Random on this round's model "
            "and pool (once; recorded with the run). BADGE and CoreSet take a few seconds.",
        )
        self.run_button.add_class("alfaviz-ab-run")
        self.run_button.on_click(self._guard(lambda _b: self.compute()))
        self.status = widgets.HTML()
        self.status.add_class("alfaviz-ab-status")
        # the FigureWidget is made at the first comparison shown (by its FigureSlot, which
        # under alfaviz serve waits until the page is up): a page that never compares (or has
        # not yet) should not wait for plotly's front-end module
        self._latest: go.Figure | None = None
        self.slot = FigureSlot(lambda: self._latest, self._hook, text="drawing the comparison …")
        self.placeholder = widgets.HTML()
        self.placeholder.add_class("alfaviz-ab-placeholder")
        self.figure_box = widgets.Box([self.placeholder])
        self.only_text = widgets.HTML()
        self.only_text.add_class("alfaviz-ab-only-text")
        self.only_button = widgets.Button(
            description="select them", icon="crosshairs", disabled=True,
            tooltip="Select the samples only the run's own strategy picks",
        )  # fmt: skip
        self.only_button.add_class("alfaviz-ab-only")
        self.only_button.on_click(self._guard(lambda _b: self.select_only()))
        self.show_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.show_box.add_class("alfaviz-ab-show")
        self.table = widgets.HTML()
        self.table.add_class("alfaviz-ab-diversity")
        self._observe(lambda _c: self._on_round(), ["round"])
        self._observe(lambda _c: self._on_data(), ["data_version"])
        self._on_round()
        return widgets.VBox(
            [
                widgets.HBox([self.run_button, self.status]),
                self.figure_box,
                widgets.HBox([self.only_text, self.only_button]),
                self.show_box,
                self.table,
            ]
        )

    def _round(self) -> int:
        return min(int(self.state.round), max(self.data.n_rounds - 1, 0))

    def _say(self, text: str) -> None:
        self.message = text
        self.status.value = (
            f'<span class="alfaviz-status" style="font-size:12px">{html.escape(text)}</span>'
        )

    # computing (off the UI thread) ---------------------------------------------------------
    def compute(self, round: int | None = None, *, wait: bool = False) -> None:
        """Compare the strategies on ``round`` (the shown one by default) in a worker thread.

        The result is shown when it is ready if that round is still shown. ``wait=True``
        returns only when the worker is done (for tests and notebooks).
        """
        if self.data.n_rounds == 0:
            self._say("No round written yet: run one first.")
            return
        r = self._round() if round is None else self.data._check_round(round)
        with self._thread_lock:
            self._wanted = r
            if self.thread is None:
                self._say(f"Comparing the strategies on round {r}…")
                self.run_button.disabled = True
                self.run_button.description = "comparing…"
                self.thread = threading.Thread(target=self._work, name="alfaviz-ab", daemon=True)
                self.thread.start()
        if wait:
            self.wait()

    def _work(self) -> None:
        done: set[int] = set()
        while True:
            with self._thread_lock:
                r = self._wanted
                if r is None or r in done:
                    self._wanted = None
                    self.thread = None
                    self.run_button.disabled = self.data.n_rounds == 0
                    self.run_button.description = "Compare strategies on this round"
                    return
            done.add(r)
            try:
                quick = self.data.comparison_recorded(r, self.strategies)
                self._say(
                    f"Reading the comparison recorded for round {r}…"
                    if quick
                    else f"Querying the strategies on round {r} (BADGE and CoreSet take a few "
                    "seconds)…"
                )
                t0 = time.perf_counter()
                result = self.data.compare_batches(r, self.strategies)
                took = time.perf_counter() - t0
                if self._round() == r:
                    self._show(result)
                    how = "read from the run" if quick else "queried and recorded with the run"
                    self._say(f"Round {r}: {len(result.strategies)} strategies, {how} "
                              f"({took:.1f} s).")  # fmt: skip
            except Exception as exc:
                self._say(f"Comparing round {r} failed: {type(exc).__name__}: {exc}")
                self.errors.report(self.name, exc)

    # state ---------------------------------------------------------------------------------
    def _on_round(self) -> None:
        if self.data.n_rounds == 0:
            self._clear("No round written yet")
            self.run_button.disabled = True
            self._say("No round written yet: run one first.")
            return
        r = self._round()
        if self.thread is None:
            self.run_button.disabled = False
        hit = self.data.cached_comparison(r, self.strategies)
        if hit is not None:
            self._show(hit)
            self._say(f"Round {r}: {len(hit.strategies)} strategies (compared before).")
            return
        self._clear(f"Round {r} · not compared yet")
        if self.data.comparison_recorded(r, self.strategies):
            self.compute(r)  # recorded with the run: quick, shown when read
        else:
            self._say(
                f"Round {r} has not been compared yet: press the button to query the "
                "strategies on its model and pool."
            )

    def _on_data(self) -> None:
        if self.data.n_rounds == 0:
            return
        r = self._round()
        if self.comparison is not None and self.comparison.round == r:
            return  # a round's batches do not change with labels
        if self.run_button.disabled and self.thread is not None:
            return  # being computed
        self._on_round()

    # drawing -------------------------------------------------------------------------------
    @property
    def figure(self) -> go.FigureWidget | None:
        """The comparison's FigureWidget; ``None`` until a comparison is shown (and, under
        ``alfaviz serve``, until the page is up)."""
        return self.slot.figure

    def _hook(self, figure: go.FigureWidget) -> None:
        figure.data[_BARS].on_click(self._guard(self._on_bar_click))
        figure.data[_HEAT].on_click(self._guard(self._on_cell_click))

    def _redraw(self, fig: go.Figure) -> None:
        self._latest = fig
        if self.figure is None:  # made from the latest figure, now or once the page is up
            if not self.slot.requested:
                self.figure_box.children = (self.slot.widget,)
                self.slot.request()
            return
        with patch(self.figure):
            for old, new in zip(self.figure.data, fig.data, strict=True):
                spec = new.to_plotly_json()
                spec.pop("type", None)
                spec.pop("uid", None)
                old.update(spec, overwrite=True)
            lay = fig.layout.to_plotly_json()
            lay.pop("template", None)
            self.figure.layout.update(lay, overwrite=True)

    def _clear(self, title: str) -> None:
        if self.comparison is None and self._cleared == title:
            return  # already showing it (a label does not redraw an empty view)
        self._cleared = title
        self.comparison = None
        self._bar_ids = []
        if not self.slot.requested:  # nothing compared yet: a line of text, no figure
            self.placeholder.value = (
                '<div style="color:#666;font-size:13px;padding:6px 0">'
                f"{html.escape(str(title))}</div>"
            )
        else:
            self._redraw(ab_figure(None, title=title))
        self.only_text.value = ""
        self.only_button.disabled = True
        for b in self.show_buttons.values():
            b.disabled = True
        self.table.value = ""

    def _show(self, comparison: BatchComparison) -> None:
        from alfaviz.analysis.ab import IDS

        self.comparison = comparison
        self._cleared = None
        shown = comparison.intersections.iloc[:MAX_INTERSECTIONS]
        self._bar_ids = [tuple(int(i) for i in ids) for ids in shown[IDS]]
        self._redraw(ab_figure(comparison))
        own = display_name(comparison.own)
        only = comparison.only_own
        self.only_text.value = (
            f'<span style="font-size:13px">Only <b>{html.escape(own)}</b> picks '
            f'<b class="alfaviz-ab-only-count">{only.size}</b> of its '
            f"{comparison.batches[comparison.own].size} samples on round "
            f"{comparison.round}&nbsp;</span>"
        )
        self.only_button.disabled = only.size == 0
        self._show_buttons(comparison.strategies)
        self.table.value = diversity_html(comparison, self.data.n_classes)

    def _show_buttons(self, names: Sequence[str]) -> None:
        if tuple(self.show_buttons) != tuple(names):
            self.show_buttons = {}
            for n in names:
                b = widgets.Button(
                    description=display_name(n),
                    tooltip=f"Select {display_name(n)}'s batch on this round",
                    layout=widgets.Layout(width="auto"),
                )
                b.add_class("alfaviz-ab-show-button")
                b.add_class(f"alfaviz-ab-show-{n}")
                b.on_click(self._guard(lambda _b, n=n: self.show_batch(n)))
                self.show_buttons[n] = b
            label = widgets.HTML('<span style="font-size:13px">select a batch:&nbsp;</span>')
            self.show_box.children = (label, *self.show_buttons.values())
        for b in self.show_buttons.values():
            b.disabled = False

    # actions -------------------------------------------------------------------------------
    def select_only(self, name: str | None = None) -> np.ndarray:
        """Select the samples only ``name`` (the run's own by default) picks; returns them."""
        if self.comparison is None:
            return np.zeros(0, dtype=np.int64)
        ids = self.comparison.only(self.comparison.own if name is None else name)
        self.state.select(ids.tolist())
        return ids

    def show_batch(self, name: str) -> np.ndarray:
        """Select ``name``'s batch (so every view overlays it); returns its ids."""
        if self.comparison is None:
            return np.zeros(0, dtype=np.int64)
        ids = self.comparison.batches[name]
        self.state.select(ids.tolist())
        return ids

    def _on_bar_click(self, trace: Any, points: Any, state: Any = None) -> None:
        """A click on an UpSet bar selects the samples of that intersection."""
        if not points.point_inds:
            return
        i = int(points.point_inds[0])
        if 0 <= i < len(self._bar_ids):
            self.state.select(self._bar_ids[i])

    def _on_cell_click(self, trace: Any, points: Any, state: Any = None) -> None:
        """A click on an overlap cell selects the picks the two strategies share."""
        c = self.comparison
        if c is None:
            return
        labels = [display_name(n) for n in c.strategies]
        ind = points.point_inds[0] if points.point_inds else None
        if isinstance(ind, (list, tuple)) and len(ind) == 2:  # (row, column)
            i, j = int(ind[0]), int(ind[1])
        elif points.xs and points.ys and str(points.ys[0]) in labels:
            i, j = labels.index(str(points.ys[0])), labels.index(str(points.xs[0]))
        else:
            return
        a, b = c.strategies[i], c.strategies[j]
        shared = c.batches[a][np.isin(c.batches[a], c.batches[b])]
        self.state.select(shared.tolist())
