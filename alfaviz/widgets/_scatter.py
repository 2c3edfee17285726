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

N_COLOURS = 256
"""Colours sampled from a continuous colour scale."""

_ANCHOR_WIDTH = 3
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
    f = v[np.isfinite(v)]
    lo, hi = (float(f.min()), float(f.max())) if f.size else (-1.0, 1.0)
    pad = 0.03 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


class ScatterCanvas:
    """A jupyter-scatter canvas that the embedding map drives.

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
        The jupyter-scatter plot; ``scatter.widget`` is its anywidget.
    title : ipywidgets.HTML
    legend : ipywidgets.HTML
        Categories or colour scale, and the anchors.
    widget : ipywidgets.VBox
        Title, canvas and legend.
    """

    def __init__(
        self,
        on_select: Callable[[np.ndarray], None],
        on_hover: Callable[[int | None], None],
        *,
        height: int = 520,
    ) -> None:
        import jscatter
        import pandas as pd

        self._jscatter = jscatter
        self._on_select = on_select
        self._on_hover = on_hover
        self._n = 0
        self._xy: tuple[np.ndarray, np.ndarray] | None = None
        self._shown: np.ndarray = np.zeros(0, dtype=np.int64)
        # jupyter-scatter needs one point to start from; it is replaced by the first round
        zero = np.zeros(1, np.float32)
        start = pd.DataFrame({schema.X: zero, schema.Y: zero})
        self.scatter = jscatter.Scatter(
            data=start,
            x=schema.X,
            y=schema.Y,
            height=height,
            axes=False,
            legend=False,
            lasso_on_long_press=True,  # (a lasso initiator would swallow clicks on points)
            color_selected="#000000",
            opacity_unselected=0.35,
            size=1,
        )
        self.title = widgets.HTML("")
        self.legend = widgets.HTML("")
        self._box: widgets.VBox | None = None
        self._legend_spec: Any = None
        self._overlay: list[Any] = []
        self._scales: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0))
        self._anchor_marks: list[tuple[str, str]] = []

    @property
    def widget(self) -> widgets.VBox:
        """Title, canvas and legend.

        The canvas widget is made on first use, so that it starts from the first drawing
        (points, colours, selection) instead of receiving it as updates: jupyter-scatter's
        front-end drops a points update that arrives while it is still drawing.
        """
        if self._box is None:
            w = self.scatter.widget
            w.add_class("alfaviz-scatter-canvas")
            if self._overlay:
                w.annotations = self._overlay
            w.observe(self._selection_changed, names=["selection"])
            w.observe(self._hover_changed, names=["hovering"])
            self._box = widgets.VBox([self.title, w, self.legend])
        return self._box

    def hold_sync(self) -> Any:
        """A context that sends the canvas's changes as one message (or does nothing yet)."""
        import contextlib

        return self.scatter.widget.hold_sync() if self._box else contextlib.nullcontext()

    @property
    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The drawn points' coordinates, in drawing order (float32, shape (n_drawn,))."""
        if self._xy is None:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return self._xy

    # drawing ---------------------------------------------------------------------------
    def points(self, x: np.ndarray, y: np.ndarray) -> None:
        """Draw ``len(x)`` points at ``(x, y)`` (float32); same count keeps the colours."""
        import pandas as pd

        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.float32)
        if (
            self._xy is not None
            and np.array_equal(self._xy[0], x)
            and np.array_equal(self._xy[1], y)
        ):
            return
        self._scales = (_domain(x), _domain(y))
        scales = {"x_scale": self._scales[0], "y_scale": self._scales[1]}
        if x.size == self._n and self._n:
            self.scatter.xy(x=x, y=y, **scales)
        else:
            self.scatter.data(pd.DataFrame({schema.X: x, schema.Y: y}), reset_scales=True)
            self.scatter.xy(x=schema.X, y=schema.Y, **scales)
            self.scatter.size(default=point_size(x.size))
            self._n = x.size
        self._xy = (x, y)

    def colour(self, spec: Any, title: str) -> None:
        """Colour the points by ``spec`` (a ColourSpec over the drawn points)."""
        values, colours = colour_table(spec)
        if values.size != self._n:
            raise ValueError(f"the colouring covers {values.size} points but {self._n} are drawn")
        self.scatter.color(by=values, map=colours, norm=(0.0, 1.0))
        if self.title.value != title:
            self.title.value = f'<div style="font-size:12px">{html.escape(title)}</div>'
        self._legend_spec = spec
        self._update_legend()

    def select(self, positions: np.ndarray) -> None:
        """Highlight the drawn points at ``positions`` (the others fade)."""
        pos = np.asarray(positions, dtype=np.int32)
        cur = self.scatter.selection()
        if np.array_equal(np.asarray(cur, dtype=np.int32), pos):
            return
        self._shown = pos.astype(np.int64)
        self.scatter.selection(pos if pos.size else [])

    def overlay(
        self,
        anchors: Sequence[tuple[float, float, str, str]],
        seg: dict[str, np.ndarray],
    ) -> None:
        """Draw the anchors (x, y, name, colour) as crosses, and paths with flip points."""
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
                self.scatter.widget.annotations = out
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
        new = change["new"]
        pos = np.zeros(0, dtype=np.int64) if new is None else np.asarray(new, dtype=np.int64)
        if np.array_equal(pos, self._shown):
            return  # our own highlight coming back
        self._shown = pos
        self._on_select(pos)

    def _hover_changed(self, change: dict[str, Any]) -> None:
        new = change["new"]
        self._on_hover(None if new is None or int(new) < 0 else int(new))
