"""The regl canvas behind the embedding map: jupyter-scatter, every point, at any size.

:class:`ScatterCanvas` draws what :class:`~alfaviz.widgets.EmbeddingMap` decides (the points
of a round, their colours from a :class:`~alfaviz.widgets._embedding.ColourSpec`, the
selection, the class anchors and the interpolation paths) with ``jscatter.Scatter``, an
anywidget over regl-scatterplot. The points travel as one binary float32 buffer, a
selection as a small int32 buffer that the canvas highlights without touching the other
points, and the anchors, paths and flip points as a few line annotations.

jupyter-scatter draws no text on the canvas, so the legend (categories or the colour bar,
and the anchor markers) is an HTML strip under it, built from the same ``ColourSpec``.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.colors as pcolors

from alfaviz import schema

__all__ = ["N_COLOURS", "ScatterCanvas", "available", "colour_table", "point_size"]

N_COLOURS = 64
"""Colours sampled from a continuous colour scale (each is validated as a trait on every
change of colouring, so the table is kept short; 64 steps of viridis read as smooth)."""

_ANCHOR_WIDTH = 3
_C, _S = "c", "s"  # the highlight canvas's colour and size columns (its own frame)
_RING_SIZES = (1, 13, 8)
"""Point sizes on the highlight canvas: the parked point, a ring's black disc, its centre."""
_RINGS_CSS = (
    "<style>.alfaviz-scatter-rings{pointer-events:none}"
    ".alfaviz-scatter-rings *{pointer-events:none;visibility:hidden}"
    ".alfaviz-scatter-rings canvas{visibility:visible}</style>"
)
_PATH_COLOUR = (0.24, 0.24, 0.24, 0.7)
_FLIP_COLOUR = (0.84, 0.15, 0.16, 1.0)


def available() -> bool:
    """Whether jupyter-scatter (``jscatter``) can be imported."""
    try:
        import jscatter  # noqa: F401
    except ImportError:
        return False
    return True


def point_size(n: int) -> int:
    """Point diameter in pixels for ``n`` points: large for a few, small for many."""
    if n <= 5_000:
        return 6
    if n <= 50_000:
        return 4
    return 2


def _hex(colour: str) -> str:
    """``'#rrggbb'`` for a plotly colour string (hex or ``rgb(...)``)."""
    if colour.startswith("#"):
        digits = colour[1:]
        return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits).lower()
    r, g, b = pcolors.unlabel_rgb(colour)[:3]
    return "#{:02x}{:02x}{:02x}".format(*(round(float(c)) for c in (r, g, b)))


def colour_table(spec: Any) -> tuple[np.ndarray, list[str]]:
    """Per-point values in [0, 1) and the colour list that jupyter-scatter indexes with them.

    jupyter-scatter picks colour ``floor(v * (len(colours) - 1))`` for a continuous value
    ``v``. A categorical spec (``spec.colours`` set) maps code ``k`` of ``n`` to the middle of
    its bin, ``(k + 0.5) / n``, with its last colour repeated so that every code lands on its
    own colour; a continuous one is scaled to ``[cmin, cmax]`` and indexes
    :data:`N_COLOURS` samples of the spec's colour scale.

    Parameters
    ----------
    spec : ColourSpec

    Returns
    -------
    values : numpy.ndarray of float32, shape (n_shown,)
    colours : list of str
        ``'#rrggbb'`` colours.
    """
    if spec.colours:
        n = len(spec.colours)
        centres = ((np.arange(n, dtype=np.float32) + 0.5) / n).astype(np.float32)
        k = np.asarray(spec.values).astype(np.int64) - round(spec.cmin + 0.5)
        values = centres[np.clip(k, 0, n - 1)]
        colours = [_hex(c) for c in spec.colours]
        return values, [*colours, colours[-1]]
    span = np.float32(float(spec.cmax - spec.cmin) or 1.0)
    v = (np.asarray(spec.values, dtype=np.float32) - np.float32(spec.cmin)) / span
    values = np.clip(np.nan_to_num(v, nan=1.0), 0.0, 1.0)
    return values, list(_sampled(_frozen(spec.colorscale)))


def _frozen(scale: Sequence[Sequence[Any]]) -> tuple[tuple[float, str], ...]:
    return tuple((float(p), str(c)) for p, c in scale)


@functools.lru_cache(maxsize=32)
def _sampled(scale: tuple[tuple[float, str], ...]) -> tuple[str, ...]:
    """:data:`N_COLOURS` evenly spaced colours of a plotly colour scale, as hex."""
    at = np.linspace(0.0, 1.0, N_COLOURS).tolist()
    return tuple(_hex(c) for c in pcolors.sample_colorscale([list(s) for s in scale], at))


def _legend_html(spec: Any, anchors: Sequence[tuple[str, str]]) -> str:
    """The legend strip: the colouring's categories or scale, and the anchor markers."""
    title = html.escape(str(spec.label))
    parts = [f"<b>{title}</b>"]
    ticks = spec.colorbar.get("tickvals") or []
    text = spec.colorbar.get("ticktext") or [f"{t:.3g}" for t in ticks]
    if spec.colours:
        for t, name in zip(ticks, text, strict=False):
            k = round(float(t) - (spec.cmin + 0.5))
            if 0 <= k < len(spec.colours):
                parts.append(
                    f'<span class="alfaviz-swatch" style="background:{_hex(spec.colours[k])}">'
                    f"</span>{html.escape(str(name))}"
                )
    else:
        stops = ", ".join(
            f"{_hex(c)} {100 * p:.1f}%"
            for p, c in ((float(p), c) for p, c in spec.colorscale)  # plotly's stop order
        )
        lo, hi = (text[0], text[-1]) if text else ("", "")
        parts.append(
            f"{html.escape(str(lo))} "
            f'<span class="alfaviz-ramp" style="background:linear-gradient(to right, {stops})">'
            f"</span> {html.escape(str(hi))}"
        )
    if anchors:
        marks = " ".join(
            f'<span style="color:{c};font-weight:bold">✕</span>{html.escape(n)}' for n, c in anchors
        )
        parts.append(f"&nbsp;·&nbsp; anchors {marks}")
    style = (
        "<style>.alfaviz-swatch{display:inline-block;width:10px;height:10px;"
        "margin:0 3px 0 8px;border-radius:2px;vertical-align:middle}"
        ".alfaviz-ramp{display:inline-block;width:140px;height:10px;vertical-align:middle;"
        "border-radius:2px}</style>"
    )
    return style + '<div style="font-size:12px;line-height:20px">' + " ".join(parts) + "</div>"


def _domain(v: np.ndarray) -> tuple[float, float]:
    """The finite range of ``v`` with a 3 % margin (never empty)."""
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # (the map draws finite points only)
        f = v[np.isfinite(v)]
        lo, hi = (float(f.min()), float(f.max())) if f.size else (-1.0, 1.0)
    pad = 0.03 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


class ScatterCanvas:
    """A jupyter-scatter canvas that the embedding map drives.

    Two regl canvases share one place and one camera (jupyter-scatter's view sync):

    - the *points* canvas draws every point of the round and takes the pointer (pan, zoom,
      lasso, box, click, hover);
    - the *highlight* canvas, transparent and laid over it, draws the selection as rings, the
      class anchors and the interpolation paths. A selection made anywhere (the batch button,
      the heatmap, the gallery) redraws only these few points, not the whole pool; a lasso
      on the points canvas is handed on as a selection (and stays drawn there too, until a
      selection made elsewhere replaces it).

    Parameters
    ----------
    on_select : callable
        Called with the drawn positions (int64 array) a lasso or click selected.
    on_hover : callable
        Called with the drawn position under the pointer (or ``None``).
    height : int
        Canvas height in pixels.

    Attributes
    ----------
    scatter : jscatter.Scatter
        The points canvas; ``scatter.widget`` is its anywidget.
    rings : jscatter.Scatter
        The highlight canvas.
    title : ipywidgets.HTML
        A ``div.alfaviz-map-title`` whose ``data-points`` is the number of points drawn.
    legend : ipywidgets.HTML
        Categories or colour scale, and the anchors.
    """

    def __init__(
        self,
        on_select: Callable[[np.ndarray], None],
        on_hover: Callable[[int | None], None],
        *,
        height: int = 520,
    ) -> None:
        import uuid

        import jscatter
        from jscatter.widget import JupyterScatter

        from alfaviz.widgets._modules import share_module_of

        share_module_of(JupyterScatter, "jscatter")  # under alfaviz serve: the page's one copy
        self._jscatter = jscatter
        self._on_select = on_select
        self._on_hover = on_hover
        self._n = 0
        self._xy: tuple[np.ndarray, np.ndarray] | None = None
        self._values = np.zeros(0, dtype=np.float32)
        self._colours: list[str] = ["#000000"]
        self._highlighted = np.zeros(0, dtype=np.int64)
        self._clearing = False
        self._lassoed = np.zeros(0, dtype=np.int64)  # the points canvas's own selection
        self._scales: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0))
        self._sync = f"alfaviz-{uuid.uuid4().hex}"
        self._rings_scales: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._pts: np.ndarray | None = None  # the shown points buffer, (n, 4) float32
        self._overlay_key: tuple[Any, ...] | None = None
        common = {"height": height, "axes": False, "legend": False}
        # jupyter-scatter needs one point to start from; it is replaced by the first round
        self._common = common
        self.scatter = self._points_scatter(np.zeros(1, np.float32), np.zeros(1, np.float32))
        self.rings = jscatter.Scatter(
            data=self._rings_frame(),
            x=schema.X,
            y=schema.Y,
            color_by=_C,
            color_map=self._rings_colours(),
            color_norm=(0.0, 1.0),
            size_by=_S,
            size_map=list(_RING_SIZES),
            size_norm=(0.0, 1.0),
            background_color=(1.0, 1.0, 1.0, 0.0),
            opacity=1.0,
            **common,
        )
        self.title = widgets.HTML("")
        self.legend = widgets.HTML("")
        self._box: widgets.VBox | None = None
        self._legend_spec: Any = None
        self._overlay: list[Any] = []
        self._anchor_marks: list[tuple[str, str]] = []

    def _points_scatter(self, x: np.ndarray, y: np.ndarray) -> Any:
        """A points canvas for ``len(x)`` points (a new one whenever that number changes:
        jupyter-scatter cannot swap in data of another length once coloured by an array)."""
        return self._jscatter.Scatter(
            data=self._frame(x, y),
            x=schema.X,
            y=schema.Y,
            x_scale=self._scales[0],
            y_scale=self._scales[1],
            lasso_on_long_press=True,  # (a lasso initiator would swallow clicks on points)
            color_selected="#000000",
            size=point_size(x.size),
            **self._common,
        )

    def _dress(self, w: Any) -> None:
        """What the points canvas's widget needs to sit under the highlight canvas."""
        w.add_class("alfaviz-scatter-canvas")
        w.view_sync = self._sync
        w.observe(self._selection_changed, names=["selection"])
        w.observe(self._hover_changed, names=["hovering"])
        w.layout.grid_area = "map"
        w.layout.width = "100%"

    # frames ------------------------------------------------------------------------------
    @staticmethod
    def _frame(x: np.ndarray, y: np.ndarray) -> Any:
        import pandas as pd

        return pd.DataFrame({schema.X: x, schema.Y: y})

    def _rings_colours(self) -> list[Any]:
        """The points' colours, then black (the rings) and transparent (the parked point)."""
        return [*self._colours, "#000000", (0.0, 0.0, 0.0, 0.0)]

    def _rings_frame(self) -> Any:
        """The highlight canvas's points: two invisible ones parked at opposite corners (it
        may not be empty, and jupyter-scatter's front-end fails on a data range of zero width),
        a black disc per highlighted point and, on top, a smaller one in the point's colour."""
        import pandas as pd

        pos = self._highlighted
        (x0, x1), (y0, y1) = self._scales
        if self._xy is not None and pos.size:
            hx, hy = self._xy[0][pos], self._xy[1][pos]
        else:
            hx = hy = np.zeros(0, np.float32)
        n_col = len(self._colours)
        k = np.floor(self._values[pos] * (n_col - 1)) if pos.size else np.zeros(0)
        inner = ((k + 0.5) / (n_col + 1)).astype(np.float32)
        black = np.full(pos.size, (n_col + 0.5) / (n_col + 1), np.float32)
        b = pos.size
        return pd.DataFrame(
            {
                schema.X: np.concatenate([[x0, x1], hx, hx]).astype(np.float32),
                schema.Y: np.concatenate([[y0, y1], hy, hy]).astype(np.float32),
                _C: np.concatenate([[1.0, 1.0], black, inner]).astype(np.float32),
                _S: np.concatenate([[0.25, 0.25], np.full(b, 0.75), np.full(b, 1.0)]).astype(
                    np.float32
                ),
            }
        )

    def _redraw_rings(self) -> None:
        if self._box is not None and self._rings_scales is not None:
            # shown: write its small buffer (x, y in normalised coordinates, colour, size)
            f = self._rings_frame()
            (x0, x1), (y0, y1) = self._scales
            buf = np.empty((len(f), 4), dtype=np.float32)
            buf[:, 0] = (f[schema.X].to_numpy(np.float32) - x0) * (2.0 / (x1 - x0)) - 1.0
            buf[:, 1] = (f[schema.Y].to_numpy(np.float32) - y0) * (2.0 / (y1 - y0)) - 1.0
            buf[:, 2] = f[_C].to_numpy(np.float32)
            buf[:, 3] = f[_S].to_numpy(np.float32)
            self.rings.widget.points = buf
            self._rings_scales = self._scales
            return
        self.rings.data(self._rings_frame())  # placed with the scales it has
        if self._rings_scales != self._scales:
            self.rings.xy(x=schema.X, y=schema.Y, x_scale=self._scales[0], y_scale=self._scales[1])
            self._rings_scales = self._scales

    # the widget --------------------------------------------------------------------------
    @property
    def widget(self) -> widgets.VBox:
        """Title, the two canvases in one place, and the legend.

        The canvas widgets are made on first use, so that they start from the first drawing
        (points, colours, selection) instead of receiving it as updates: jupyter-scatter's
        front-end drops a points update that arrives while it is still drawing.
        """
        if self._box is None:
            w, r = self.scatter.widget, self.rings.widget
            self._dress(w)
            r.add_class("alfaviz-scatter-rings")
            r.view_sync = self._sync
            if self._overlay:
                r.annotations = self._overlay
            r.layout.grid_area = "map"
            r.layout.width = "100%"
            # one grid cell holds both canvases (a grid given a width of its own makes them
            # resize each other until Chromium's page crashes)
            self._stack = stack = widgets.GridBox(
                [w, r],
                layout=widgets.Layout(grid_template_areas='"map"', grid_template_columns="1fr"),
            )
            self._box = widgets.VBox([widgets.HTML(_RINGS_CSS), self.title, stack, self.legend])
        return self._box

    def hold_sync(self) -> Any:
        """A context that sends each canvas's changes as one message (or does nothing yet)."""
        import contextlib

        if self._box is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(self.scatter.widget.hold_sync())
        stack.enter_context(self.rings.widget.hold_sync())
        return stack

    @property
    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The drawn points' coordinates, in drawing order (float32, shape (n_drawn,))."""
        if self._xy is None:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return self._xy

    @property
    def highlighted(self) -> np.ndarray:
        """Drawn positions shown as rings (int64), in the order given to :meth:`select`."""
        return self._highlighted

    # drawing ---------------------------------------------------------------------------
    def points(self, x: np.ndarray, y: np.ndarray) -> None:
        """Draw ``len(x)`` points at ``(x, y)`` (float32); same count keeps the colours."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.float32)
        if self._xy is not None and (
            (x is self._xy[0] and y is self._xy[1])  # the same arrays (a kept round)
            or (np.array_equal(self._xy[0], x) and np.array_equal(self._xy[1], y))
        ):
            return
        self._scales = (_domain(x), _domain(y))
        scales = {"x_scale": self._scales[0], "y_scale": self._scales[1]}
        if x.size == self._n and self._n and self._direct():
            self._write_points(x, y)
        elif x.size == self._n and self._n:
            self.scatter.xy(x=x, y=y, **scales)
        else:
            old = self.scatter
            self.scatter = self._points_scatter(x, y)
            if self._box is not None:  # shown already: put the new canvas in the old's place
                self._dress(self.scatter.widget)
                self._stack.children = (self.scatter.widget, self.rings.widget)
                old.widget.close()
            self._n = x.size
            self._pts = None
            self._lassoed = np.zeros(0, dtype=np.int64)
            self._highlighted = self._highlighted[self._highlighted < x.size]
        self._xy = (x, y)
        if self._highlighted.size or self._rings_scales != self._scales:
            self._redraw_rings()

    def colour(self, spec: Any, title: str) -> None:
        """Colour the points by ``spec`` (a ColourSpec over the drawn points)."""
        values, colours = colour_table(spec)
        if values.size != self._n:
            raise ValueError(f"the colouring covers {values.size} points but {self._n} are drawn")
        changed = colours != self._colours
        if self._direct():
            self._write_colours(values, colours if changed else None)
        else:
            self.scatter.color(by=values, map=colours, norm=(0.0, 1.0))
            self._pts = None
        self._values, self._colours = values, colours
        if changed:
            self.rings.color(map=self._rings_colours())
        if self._highlighted.size:  # the rings' centres take the points' colours
            self._redraw_rings()
        text = (
            f'<div class="alfaviz-map-title" data-points="{self._n}" style="font-size:12px">'
            f"{html.escape(title)}</div>"
        )
        if self.title.value != text:
            self.title.value = text
        self._legend_spec = spec
        self._update_legend()

    # the points buffer, written directly once the canvas is shown ---------------------------
    def _direct(self) -> bool:
        """Whether updates go straight into the shown canvas's points buffer.

        jupyter-scatter's own ``xy()`` and ``color()`` re-normalise every coordinate, build
        x, y and colour histograms and copy the point list in float64 on each call (20-40 ms
        at 200k points). Once the canvas is shown and coloured, the map writes the buffer its
        front-end draws instead: ``(x, y)`` in normalised device coordinates by the same
        linear scale (``2 (v - lo) / (hi - lo) - 1``), the colour value, and 0, in float32.
        """
        return self._box is not None and self._n > 0 and self.scatter.widget.color_by is not None

    def _buffer(self) -> np.ndarray:
        if self._pts is None or len(self._pts) != self._n:
            self._pts = np.asarray(self.scatter.widget.points, dtype=np.float32)[:, :4].copy()
        return self._pts

    def _write_points(self, x: np.ndarray, y: np.ndarray) -> None:
        (x0, x1), (y0, y1) = self._scales
        pts = self._buffer().copy()
        pts[:, 0] = (x - np.float32(x0)) * np.float32(2.0 / (x1 - x0)) - np.float32(1.0)
        pts[:, 1] = (y - np.float32(y0)) * np.float32(2.0 / (y1 - y0)) - np.float32(1.0)
        w = self.scatter.widget
        w.non_spatial_points_update = False  # the points moved: rebuild the spatial index
        w.x_domain = w.x_scale_domain = [float(x0), float(x1)]
        w.y_domain = w.y_scale_domain = [float(y0), float(y1)]
        w.points = pts
        self._pts = pts

    def _write_colours(self, values: np.ndarray, colours: list[str] | None) -> None:
        from matplotlib.colors import to_rgba

        pts = self._buffer().copy()
        pts[:, 2] = values
        w = self.scatter.widget
        if colours is not None:
            w.color = [list(to_rgba(c)) for c in colours]
        w.non_spatial_points_update = True  # same places: keep the spatial index
        w.points = pts
        self._pts = pts

    def select(self, positions: np.ndarray) -> None:
        """Ring the drawn points at ``positions``; only the highlight canvas redraws."""
        pos = np.asarray(positions, dtype=np.int64)
        lassoed = self._lassoed
        if lassoed.size and not np.array_equal(np.sort(lassoed), np.unique(pos)):
            # the selection came from elsewhere: drop the points canvas's own (dimmed) one
            self._lassoed = np.zeros(0, dtype=np.int64)
            self._clearing = True
            self.scatter.selection([])
        if np.array_equal(pos, self._highlighted):
            return
        self._highlighted = pos
        self._redraw_rings()

    def overlay(
        self,
        anchors: Sequence[tuple[float, float, str, str]],
        seg: dict[str, np.ndarray],
    ) -> None:
        """Draw the anchors (x, y, name, colour) as crosses, and paths with flip points."""
        key = (
            tuple(anchors),
            self._scales,
            *(np.ascontiguousarray(seg[k]).tobytes() for k in ("line_x", "line_y", "flip_x")),
            np.ascontiguousarray(seg["flip_y"]).tobytes(),
        )
        if key == self._overlay_key:  # the same drawing: nothing to build or send
            return
        self._overlay_key = key
        Line = self._jscatter.Line
        (x0, x1), (y0, y1) = self._scales
        sx, sy = 2.0 / (x1 - x0), 2.0 / (y1 - y0)

        def ndc(xs: np.ndarray, ys: np.ndarray) -> list[tuple[float, float]]:
            nx = (np.asarray(xs, dtype=np.float64) - x0) * sx - 1.0
            ny = (np.asarray(ys, dtype=np.float64) - y0) * sy - 1.0
            return list(zip(nx.tolist(), ny.tolist(), strict=True))

        r = 0.025  # marker half-size, in normalised (NDC) units: the same at any data range
        ax, ay = r / sx, r / sy
        out: list[Any] = []
        lx, ly = seg["line_x"], seg["line_y"]
        start = 0
        for stop in [*np.flatnonzero(~np.isfinite(lx)).tolist(), lx.size]:
            if stop - start >= 2:
                out.append(Line(ndc(lx[start:stop], ly[start:stop]), _PATH_COLOUR, line_width=1))
            start = stop + 1
        for x, y in zip(seg["flip_x"].tolist(), seg["flip_y"].tolist(), strict=True):
            dx, dy = 0.6 * ax, 0.6 * ay
            out.append(
                Line(
                    ndc([x, x + dx, x, x - dx, x], [y - dy, y, y + dy, y, y - dy]),
                    _FLIP_COLOUR,
                    line_width=2,
                )
            )
        for x, y, _, colour in anchors:
            if np.isfinite(x) and np.isfinite(y):
                out.append(Line(ndc([x - ax, x + ax], [y - ay, y + ay]), colour, _ANCHOR_WIDTH))
                out.append(Line(ndc([x - ax, x + ax], [y + ay, y - ay]), colour, _ANCHOR_WIDTH))
        # Normalised here in one numpy pass: jupyter-scatter's ``annotations()`` normalises
        # each vertex through matplotlib (about 0.2 ms a vertex, 40 ms for one sample's
        # paths). Its own list stays empty, so replays do not resend stale lines.
        if out != self._overlay:
            self._overlay = out
            if self._box is not None:
                self.rings.widget.annotations = out
        marks = [(name, colour) for _, _, name, colour in anchors]
        if marks != self._anchor_marks:
            self._anchor_marks = marks
            self._update_legend()

    def _update_legend(self) -> None:
        if self._legend_spec is not None:
            value = _legend_html(self._legend_spec, self._anchor_marks)
            if self.legend.value != value:
                self.legend.value = value

    # front-end events --------------------------------------------------------------------
    def _selection_changed(self, change: dict[str, Any]) -> None:
        """A lasso, box or click on the points canvas: hand it on, then draw it as rings."""
        new = change["new"]
        pos = np.zeros(0, dtype=np.int64) if new is None else np.asarray(new, dtype=np.int64)
        if self._clearing:  # our own clearing (see select), coming back
            self._clearing = False
            return
        self._lassoed = pos
        self._on_select(pos)

    def _hover_changed(self, change: dict[str, Any]) -> None:
        new = change["new"]
        self._on_hover(None if new is None or int(new) < 0 else int(new))
