"""The inconsistency heatmap: samples × anchor classes, each cell a critical ε or a flip target.

:func:`heatmap_figure` is the pure twin (the flips and samples frames in, a ``go.Figure``
out) and :class:`Heatmap` the view. The heatmap is sent in plotly's 1-D form: ``x`` (int32
anchor class), ``y`` (int32 row) and ``z`` (float32 value) of length ``n_rows * n_classes``,
with NaN in the cells that never flip, so that only numeric 1-D arrays reach plotly. The
class names and the row ids are axis tick labels (one per column and one per row, at most
:data:`MAX_ROWS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go

from alfaviz import schema
from alfaviz.widgets._base import FigureSlot, View, patch

__all__ = [
    "MAX_ROWS",
    "ROW_SOURCES",
    "SORTS",
    "VALUES",
    "Heatmap",
    "heatmap_cells",
    "heatmap_figure",
    "heatmap_rows",
    "sort_rows",
]

MAX_ROWS = 200
"""Most rows drawn; the title says when more were asked for."""

VALUES: tuple[str, ...] = (schema.CRITICAL_EPS, schema.FLIP_TO)
"""What a cell shows: the critical ε of the pair, or the class the sample flips to."""

SORTS: tuple[str, ...] = (schema.INCONSISTENCY, schema.CLUSTER, schema.CRITICAL_EPS)
"""Row orders: most anchors flipping first, by k-means cluster, or smallest critical ε first."""

_SELECTION = "selection"
_BATCH = "batch"
_CANDIDATES = "candidates"
ROW_SOURCES: tuple[str, ...] = (_SELECTION, _BATCH, _CANDIDATES)
"""Rows: the selection (the batch while nothing is selected), the batch, or the candidates."""

_VALUE_LABELS = {schema.CRITICAL_EPS: "critical ε", schema.FLIP_TO: "flip target"}
_SORT_LABELS = {
    schema.INCONSISTENCY: "inconsistency",
    schema.CLUSTER: "cluster",
    schema.CRITICAL_EPS: "critical ε",
}


def heatmap_rows(
    samples: pd.DataFrame,
    queried: pd.DataFrame,
    *,
    source: str = _SELECTION,
    selected: Iterable[int] = (),
) -> np.ndarray:
    """The sample ids a heatmap shows, before sorting.

    Parameters
    ----------
    samples : pandas.DataFrame
        The round's samples frame.
    queried : pandas.DataFrame
        The round's batch (:data:`~alfaviz.schema.QUERIED`), in pick order.
    source : {"selection", "batch", "candidates"}
        ``"selection"`` gives the selected ids, or the batch when nothing is selected.
    selected : iterable of int

    Returns
    -------
    numpy.ndarray of int64, shape (n_rows,)
    """
    if source not in ROW_SOURCES:
        raise ValueError(f"source must be one of {list(ROW_SOURCES)}; got {source!r}.")
    sel = np.asarray(list(selected), dtype=np.int64)
    if source == _SELECTION and sel.size:
        return sel
    if source == _CANDIDATES:
        cand = samples[schema.CANDIDATE].to_numpy(bool)
        return samples[schema.SAMPLE_ID].to_numpy(np.int64)[cand]
    return queried[schema.SAMPLE_ID].to_numpy(np.int64)


def sort_rows(samples: pd.DataFrame, ids: Iterable[int], sort_by: str) -> np.ndarray:
    """``ids`` ordered for the heatmap.

    ``inconsistency``: most flipping anchors first; ``cluster``: by k-means cluster (none
    last); ``critical_eps``: smallest first (never flipping last). Ties go to the smaller
    critical ε, then the smaller id. Ids missing from ``samples`` go last.

    Returns
    -------
    numpy.ndarray of int64
    """
    if sort_by not in SORTS:
        raise ValueError(f"sort_by must be one of {list(SORTS)}; got {sort_by!r}.")
    ids = np.asarray(list(ids), dtype=np.int64)
    if ids.size == 0:
        return ids
    all_ids = samples[schema.SAMPLE_ID].to_numpy(np.int64)
    order = np.argsort(all_ids, kind="stable")
    at = np.clip(np.searchsorted(all_ids[order], ids), 0, max(all_ids.size - 1, 0))
    found = all_ids[order][at] == ids if all_ids.size else np.zeros(ids.size, dtype=bool)
    rows = order[at]

    def col(name: str, fill: float) -> np.ndarray:
        v = samples[name].to_numpy(np.float64)[rows]
        return np.where(found, v, fill)

    eps = col(schema.CRITICAL_EPS, np.inf)
    eps = np.where(np.isfinite(eps), eps, np.inf)
    missing = (~found).astype(np.int8)
    if sort_by == schema.INCONSISTENCY:
        keys = (ids, eps, -col(schema.INCONSISTENCY, 0), missing)
    elif sort_by == schema.CLUSTER:
        cl = col(schema.CLUSTER, -1)
        keys = (ids, eps, np.where(cl < 0, np.inf, cl), missing)
    else:
        keys = (ids, eps, missing)
    return ids[np.lexsort(keys)]


def heatmap_cells(flips: pd.DataFrame, ids: np.ndarray, n_classes: int, value: str) -> np.ndarray:
    """The cell values, shape (n_rows, n_classes), float32; NaN where the pair never flips.

    ``critical_eps`` gives the pair's critical ε (infinite ones become NaN: blank cells);
    ``flip_to`` gives the class the sample flips to at the stopping level (NaN: no flip).
    """
    if value not in VALUES:
        raise ValueError(f"value must be one of {list(VALUES)}; got {value!r}.")
    z = np.full((len(ids), n_classes), np.nan, dtype=np.float32)
    if len(ids) == 0 or flips.empty:
        return z
    fid = flips[schema.SAMPLE_ID].to_numpy(np.int64)
    keep = np.isin(fid, ids)
    if not keep.any():
        return z
    fid = fid[keep]
    cls = flips[schema.ANCHOR_CLASS].to_numpy(np.int64)[keep]
    order = np.argsort(ids, kind="stable")
    row = order[np.searchsorted(ids[order], fid)]
    if value == schema.CRITICAL_EPS:
        v = flips[schema.CRITICAL_EPS].to_numpy(np.float64)[keep]
        v = np.where(np.isfinite(v), v, np.nan)
    else:
        flipped = flips[schema.FLIPPED].to_numpy(bool)[keep]
        to = flips[schema.FLIP_TO].to_numpy(np.int64)[keep]
        v = np.where(flipped & (to >= 0), to, np.nan).astype(np.float64)
    ok = (cls >= 0) & (cls < n_classes)
    z[row[ok], cls[ok]] = v[ok]
    return z


def _discrete(n: int) -> list[list[Any]]:
    base = list(pcolors.qualitative.Plotly) if n <= 10 else list(pcolors.qualitative.Alphabet)
    out: list[list[Any]] = []
    for i in range(n):
        c = base[i % len(base)]
        out += [[i / n, c], [(i + 1) / n, c]]
    return out


def _row_frame(row: int, n_classes: int) -> dict[str, Any]:
    """A rectangle around heatmap row ``row`` (the selected sample)."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y",
        "x0": -0.5,
        "x1": n_classes - 0.5,
        "y0": row - 0.5,
        "y1": row + 0.5,
        "line": {"color": "black", "width": 2},
    }


def heatmap_figure(
    flips: pd.DataFrame,
    samples: pd.DataFrame,
    rows: Iterable[int],
    *,
    value: str = schema.CRITICAL_EPS,
    sort_by: str = schema.INCONSISTENCY,
    class_names: Sequence[str],
    max_rows: int = MAX_ROWS,
    title: str = "",
    highlight: int | None = None,
) -> go.Figure:
    """The inconsistency heatmap of ``rows`` (sample ids) × anchor classes.

    Parameters
    ----------
    flips : pandas.DataFrame
        The round's :data:`~alfaviz.schema.FLIPS` frame (not modified).
    samples : pandas.DataFrame
        The round's samples frame, for the sort keys.
    rows : iterable of int
        Sample ids (see :func:`heatmap_rows`).
    value : {"critical_eps", "flip_to"}
    sort_by : {"inconsistency", "cluster", "critical_eps"}
    class_names : sequence of str
        Column labels, shape (n_classes,).
    max_rows : int
        Rows beyond it (after sorting) are left out and the title says so.
    title : str
        Leading part of the title (the round and the row source).
    highlight : int, optional
        A sample id whose row gets a frame.

    Returns
    -------
    plotly.graph_objects.Figure
        One heatmap trace in 1-D form: ``x`` (int32, anchor class), ``y`` (int32, row),
        ``z`` (float32), ``customdata`` (int32 sample id of the cell's row), each of shape
        (n_rows * n_classes,). Row ``i`` is drawn from the top.
    """
    ids = sort_rows(samples, rows, sort_by)
    n_total = ids.size
    ids = ids[: int(max_rows)]
    n, c = ids.size, len(class_names)
    z = heatmap_cells(flips, ids, c, value)
    yy, xx = np.meshgrid(np.arange(n, dtype=np.int32), np.arange(c, dtype=np.int32), indexing="ij")
    cd = np.repeat(ids, c)
    if cd.size and cd.max() <= np.iinfo(np.int32).max:
        cd = cd.astype(np.int32)
    if value == schema.CRITICAL_EPS:
        finite = z[np.isfinite(z)]
        colour: dict[str, Any] = {
            "colorscale": "Viridis",
            "reversescale": True,
            "zmin": 0.0,
            "zmax": float(finite.max()) if finite.size else 1.0,
            "colorbar": {"title": {"text": "critical ε"}},
        }
        hover = "id %{customdata} · anchor %{x} · ε %{z:.3g}<extra></extra>"
    else:
        colour = {
            "colorscale": _discrete(max(c, 1)),
            "zmin": -0.5,
            "zmax": c - 0.5,
            "colorbar": {
                "title": {"text": "flips to"},
                "tickvals": list(range(c)),
                "ticktext": [str(s) for s in class_names],
            },
        }
        hover = "id %{customdata} · anchor %{x} · flips to %{z}<extra></extra>"
    trace = go.Heatmap(
        x=xx.ravel(),
        y=yy.ravel(),
        z=z.ravel(),
        customdata=cd,
        hovertemplate=hover,
        xgap=1,
        ygap=1,
        hoverongaps=False,
        name="heatmap",
        **colour,
    )
    fig = go.Figure([trace])
    head = title or "Inconsistency"
    text = f"{head} · {_VALUE_LABELS[value]} per anchor (blank: never flips)"
    text += f" · sorted by {_SORT_LABELS[sort_by]}"
    if n < n_total:
        text += f" · showing {n} of {n_total} rows"
    if n == 0:
        text += " · no rows"
    shapes = []
    if highlight is not None and n:
        hit = np.flatnonzero(ids == int(highlight))
        if hit.size:
            shapes.append(_row_frame(int(hit[0]), c))
    height = max(220, min(720, 60 + 14 * n))
    # label every row while they are 12 px apart or more, else every k-th, so ids stay legible
    step = max(1, math.ceil(12 * n / max(height - 60, 1)))
    fig.update_layout(
        title={"text": text, "font": {"size": 12}},
        xaxis={
            "tickmode": "array",
            "tickvals": list(range(c)),
            "ticktext": [str(s) for s in class_names],
            "range": [-0.5, c - 0.5],
            "title": {"text": "anchor class"},
        },
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(0, n, step)),
            "ticktext": [str(i) for i in ids[::step].tolist()],
            "range": [n - 0.5, -0.5],
            "title": {"text": "sample id"},
        },
        shapes=shapes,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=height,
    )
    return fig


class Heatmap(View):
    """Samples × anchor classes of ``state.round``; clicking a cell selects its sample.

    Observes ``round``, ``selected_ids`` and ``data_version``; writes ``selected_ids`` and
    ``focus_id`` (a click on a row selects its sample and explains it).

    Rows come from the row toggle: the selection (the batch while nothing is selected), the
    batch or the candidates. Selecting a single sample that is already a row frames that
    row instead of replacing the rows, so a click does not collapse the heatmap.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional
    max_rows : int, optional
        Cap on the rows drawn (default :data:`MAX_ROWS`).

    Attributes
    ----------
    figure : plotly.graph_objects.FigureWidget
        Made on first use from Python, or by :attr:`slot`.
    slot : FigureSlot
        Where the figure goes; under ``alfaviz serve`` it is made once the page is up.
    source, value, sort : ipywidgets.ToggleButtons / Dropdown
    row_ids : numpy.ndarray of int64
        The sample id of each drawn row, top first.
    """

    name = "heatmap"
    css_class = "alfaviz-heatmap"

    def __init__(self, state: Any, data: Any, *, errors: Any = None, max_rows: int = MAX_ROWS):
        self.max_rows = int(max_rows)
        self.row_ids = np.zeros(0, dtype=np.int64)
        self._rows_from: tuple[int, ...] = ()
        self._title_parts = ("", "")  # the title around what the rows are (see _what)
        super().__init__(state, data, errors=errors)

    def _build(self) -> widgets.Widget:
        self.source = widgets.ToggleButtons(
            options=[("selection", _SELECTION), ("batch", _BATCH), ("candidates", _CANDIDATES)],
            value=_SELECTION,
            description="rows",
        )
        self.value = widgets.Dropdown(
            options=[(_VALUE_LABELS[v], v) for v in VALUES],
            value=schema.CRITICAL_EPS,
            description="cell",
            layout=widgets.Layout(width="200px"),
        )
        self.sort = widgets.Dropdown(
            options=[(_SORT_LABELS[s], s) for s in SORTS],
            value=schema.INCONSISTENCY,
            description="sort",
            layout=widgets.Layout(width="200px"),
        )
        # under alfaviz serve the FigureWidget is made once the page is up (see FigureSlot);
        # until then redraws have nothing to patch, and the figure is made from the state of
        # that moment
        self.slot = FigureSlot(
            self._make_figure,
            lambda fig: fig.data[0].on_click(self._guard(self._on_click)),
            text="drawing the heatmap …",
        )
        self.slot.request()
        for w in (self.source, self.value, self.sort):
            w.observe(self._guard(self._on_control), names=["value"])
        self._observe(self._on_state, ["round", "data_version"])
        self._observe(self._on_selected, ["selected_ids"])
        return widgets.VBox([widgets.HBox([self.source, self.value, self.sort]), self.slot.widget])

    @property
    def figure(self) -> go.FigureWidget:
        """The heatmap's FigureWidget (made now if the page has not shown it yet)."""
        return self.slot.make_now()

    def _round(self) -> int:
        return min(int(self.state.round), max(self.data.n_rounds - 1, 0))

    def _make_figure(self) -> go.Figure:
        if self.data.n_rounds == 0:
            self.row_ids = np.zeros(0, dtype=np.int64)
            fig = go.Figure([go.Heatmap()])
            fig.update_layout(title={"text": "No round written yet", "font": {"size": 12}})
            return fig
        r = self._round()
        samples = self.data.samples(r)
        sel = tuple(self.state.selected_ids)
        basis = self._rows_from if self._keeps_rows(sel) else sel
        self._rows_from = basis
        rows = heatmap_rows(samples, self.data.queried(r), source=self.source.value, selected=basis)
        self.row_ids = sort_rows(samples, rows, self.sort.value)[: self.max_rows]
        what = self._what(basis, sel)
        fig = heatmap_figure(
            self.data.flips_for(r, self.row_ids),
            samples,
            rows,
            value=self.value.value,
            sort_by=self.sort.value,
            class_names=self.data.class_names,
            max_rows=self.max_rows,
            title=f"Round {r} · {what}",
            highlight=sel[0] if len(sel) == 1 else None,
        )
        head = f"Round {r} · "
        text = str(fig.layout.title.text or "")
        start = head + what
        self._title_parts = (head, text[len(start) :]) if text.startswith(start) else ("", "")
        return fig

    def _what(self, basis: tuple[int, ...], sel: tuple[int, ...]) -> str:
        """What the rows are, for the title, and which of them is outlined."""
        what = self.source.value
        if what == _SELECTION:
            what = "selection" if basis else ("batch" if sel else "batch (nothing selected)")
        if len(sel) == 1 and int(sel[0]) in set(self.row_ids.tolist()):
            what += f" · #{int(sel[0])} outlined"
        return what

    def _keeps_rows(self, sel: tuple[int, ...]) -> bool:
        """Whether the rows stay as they are when ``sel`` is the selection.

        They do unless they follow the selection and ``sel`` is anything but one sample
        already shown (a click on a row frames it rather than collapsing the heatmap).
        """
        if self.source.value != _SELECTION:
            return True
        return len(sel) == 1 and int(sel[0]) in set(self.row_ids.tolist())

    def _redraw(self) -> None:
        if self.slot.figure is None:
            return  # made later, from the state of then
        fig = self._make_figure()
        new = fig.data[0]
        with patch(self.figure):
            t = self.figure.data[0]
            t.update(
                x=new.x,
                y=new.y,
                z=new.z,
                customdata=new.customdata,
                colorscale=new.colorscale,
                reversescale=new.reversescale,
                zmin=new.zmin,
                zmax=new.zmax,
                colorbar=new.colorbar,
                hovertemplate=new.hovertemplate,
            )
            self.figure.layout.update(
                title=fig.layout.title,
                xaxis=fig.layout.xaxis,
                yaxis=fig.layout.yaxis,
                height=fig.layout.height,
            )
            self.figure.layout.shapes = fig.layout.shapes

    def _on_state(self, change: dict[str, Any]) -> None:
        self._redraw()

    def _on_control(self, change: dict[str, Any]) -> None:
        self._redraw()

    def _on_selected(self, change: dict[str, Any]) -> None:
        if self.slot.figure is None:
            return  # made later, from the state of then
        new = tuple(change["new"])
        if not self._keeps_rows(new):
            self._redraw()
            return
        shapes = []
        if len(new) == 1:
            hit = np.flatnonzero(self.row_ids == int(new[0]))
            if hit.size:
                shapes = [_row_frame(int(hit[0]), len(self.data.class_names))]
        head, rest = self._title_parts
        with patch(self.figure):
            self.figure.layout.shapes = shapes
            if head:  # only what the rows are, and the outlined one, follow the selection
                self.figure.layout.title.text = f"{head}{self._what(self._rows_from, new)}{rest}"

    def _on_click(self, trace: Any, points: Any, state: Any = None) -> None:
        """A click on a cell selects the sample of its row and explains it (``focus_id``)."""
        if not points.point_inds and not points.ys:
            return
        if points.ys:
            row = round(float(points.ys[0]))
        else:
            ind = points.point_inds[0]
            row = int(
                ind[0]
                if isinstance(ind, (list, tuple))
                else int(ind) // max(len(self.data.class_names), 1)
            )
        if 0 <= row < self.row_ids.size:
            sid = int(self.row_ids[row])
            self.state.select([sid])
            self.state.focus_id = sid
