"""Cost of the embedding map's updates: Python side, and click-to-visible in a browser.

Run it with ``python benchmarks/widget_updates.py`` (``--sizes 5000 50000`` to choose the
sizes, ``--repeat 7``, ``--renderer plotly|scatter|both``, default ``both``). A synthetic run
(:class:`SyntheticRun`: two rounds of random samples with the schema's columns, their batches,
anchors and 16-D embeddings for the PCA view; no training, no store) stands in for
:class:`alfaviz.widgets.RunData`, behind the same methods the view reads. For each renderer of
:class:`~alfaviz.widgets._embedding.EmbeddingMap` (``"plotly"``: a ``go.FigureWidget``;
``"scatter"``: jupyter-scatter's anywidget) and every size it prints:

- the build time of the map (plotly's and jupyter-scatter's one-off imports are paid before
  timing);
- the median Python-side time of each update, from the state change (or the front-end
  message) to the last message the plot's widget hands to its comm: a selection of 100
  points, a click on the map's "select batch" button (``view.batch_button``, from nothing
  selected), a lasso of 1,000 points (plotly: the points trace's selection callback;
  jupyter-scatter: the ``selection`` message its front-end sends), a colour change, and a
  round change (new coordinates, same point order), both when the round was seen before
  (replaying with the slider: the view keeps each round's arrays) and on its first visit, and
  a move of the ε slider (``sweep``: :class:`~alfaviz.widgets._sweep.EpsilonSweep` on the same
  state; its slider writes ``sweep_cap``, the slider replays the round's candidate set from
  the recorded critical ε and the map recolours those candidates; each move goes to a step
  whose sweep is not kept yet);
- the bytes each update hands to the plot widget's comm (binary buffers and JSON), measured
  by wrapping that comm's ``send`` (``view.figure.comm``, or for the canvas both
  ``view.scatter.widget.comm`` and the highlight canvas's ``view.canvas.rings.widget.comm``):
  only the arrays that change should travel. The FigureWidget is measured as displayed (one
  front-end view counted), since until a view is counted every patch re-syncs the figure;
- whether each update meets the Python-side target (at most 10 ms) and the build target
  (under 2 s at 200k points).

The plotly renderer draws a capped sample above
:data:`~alfaviz.widgets._embedding.MAX_POINTS` (50k); its 200k row is measured both capped
(what a user gets) and uncapped (``max_points=n``, for information). The scatter renderer
draws every point. The build time excludes reading the run's frames (the synthetic frames are
made beforehand); a real run reads its Parquet files once per round through ``RunData``.

With ``--browser`` (``--browser-sizes 5000 50000 200000``, the default; ``--browser-repeat``,
default ``--repeat`` when given, else 5; ``--kinds`` to choose a subset) it also measures the
browser side, in the same run, for four kinds of notebook:

- ``bare``: a bare plotly ``go.FigureWidget`` Scattergl with 1-D float32 data (the plotly
  baseline);
- ``map-plotly``: the :class:`EmbeddingMap` with ``renderer="plotly"`` on a synthetic run;
- ``bare-scatter``: a bare ``jscatter.Scatter`` of the same data as ``bare`` (the canvas
  baseline; jupyter-scatter's defaults, at the map canvas's height);
- ``map-scatter``: the :class:`EmbeddingMap` with ``renderer="scatter"``.

It generates one notebook per kind and size into a temporary folder, serves the folder with
Voila on 127.0.0.1 (stopped by its process id at the end; kernels of closed pages are culled)
and opens each notebook in headless Debian Chromium (``/usr/bin/chromium``, driven by
Playwright; no browser is downloaded). Each notebook shows its plot and buttons whose Python
handlers change the colouring, select 100 random shown points, select the batch (the bare
kinds: a fixed set of 100 points; the maps: the map's own ``view.batch_button``, CSS class
``alfaviz-embedding-batch``, clicked from nothing selected) and clear the selection. It
prints, per size and operation, the time of each kind and the ratio of each map to its
baseline:

- ``first plot``: from the page request until the plot is drawn (kernel start and the
  notebook's execution included): for plotly, until the graph div holds the drawn points;
  for the canvas kinds, until the plot's canvas has drawn pixels;
- ``colour``, ``selection (100)`` and ``batch highlight``: the median time from a click on
  the button (dispatched in the page, timed with ``performance.now()``) to the first
  animation frame at which the change is visible. For the plotly kinds the graph div's data
  holds the new array (its synchronous redraw has run); for the canvas kinds (no graph div)
  a hash of the plot's pixels differs from the one taken just before the click: its canvases
  are drawn into a 2-D canvas of at most 512 px a side and read back on every frame (the
  fraction of pixels that changed in that first frame is printed, to show that the hash sees
  a selection of 100 points);
- whether each map meets the targets: a selection or colour change visible within 0.3 s at
  50k points (and fewer) and within 0.5 s at 200k; highlighting the batch under 0.1 s at any
  size.

Errors shown in a map's ``.alfaviz-errors`` area, the notebook's stderr, the page's console
errors and tracebacks in Voila's log are printed as notes, as is a page that failed (the run
goes on without it). ``--screenshots DIR`` saves a screenshot of every page after its clicks.
The exit status is 1 when a Python-side target is missed (the browser targets are printed
only).

Chromium draws WebGL with SwiftShader (software) here, so the browser figures depend on the
machine far more than the Python-side ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema

__all__ = ["SyntheticRun", "main", "measure", "measure_browser"]

TARGET_UPDATE_S = 0.010
TARGET_BUILD_S = 2.0
N_CLASSES = 10
BUDGET = 100


class SyntheticRun:
    """A stand-in for :class:`~alfaviz.widgets.RunData`: two rounds of ``n`` random samples.

    Parameters
    ----------
    n : int
        Samples per round.
    seed : int
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.class_names = tuple(f"class {i}" for i in range(N_CLASSES))
        self.n_classes = N_CLASSES
        self.n_rounds = 2
        self.budget = BUDGET
        ids = np.arange(n, dtype=np.int64)
        true = rng.integers(0, N_CLASSES, n)
        centres = rng.normal(scale=6.0, size=(N_CLASSES, 2))
        self._samples: list[pd.DataFrame] = []
        self._queried: list[pd.DataFrame] = []
        for r in range(self.n_rounds):
            labelled = np.full(n, -1)
            labelled[: 20 + r * BUDGET] = 0
            cand = rng.random(n) < max(0.02, 3 * BUDGET / n)
            eps = np.where(cand, rng.random(n), np.inf)
            picked = rng.choice(np.flatnonzero(cand & (labelled < 0)), BUDGET, replace=False)
            xy = centres[true] + rng.normal(size=(n, 2))
            frame = pd.DataFrame(
                {
                    schema.ROUND: r,
                    schema.SAMPLE_ID: ids,
                    schema.PSEUDO_LABEL: np.where(labelled >= 0, -1, true),
                    schema.SCORE: np.where(cand, 1 - eps, -np.inf),
                    schema.CANDIDATE: cand,
                    schema.SELECTED: np.isin(ids, picked),
                    schema.CLUSTER: np.where(cand, rng.integers(0, BUDGET, n), -1),
                    schema.CRITICAL_EPS: eps,
                    schema.INCONSISTENCY: np.where(cand, rng.integers(1, N_CLASSES, n), 0),
                    schema.TRUE_LABEL: true,
                    schema.LABEL: np.where(labelled >= 0, true, -1),
                    schema.LABELLED_ROUND: labelled,
                    schema.X: xy[:, 0],
                    schema.Y: xy[:, 1],
                }
            )
            self._samples.append(schema.conform(frame, schema.SAMPLES))
            q = pd.DataFrame({schema.SAMPLE_ID: picked, schema.ORDER: np.arange(BUDGET)})
            self._queried.append(schema.conform(q, schema.QUERIED))
        self._paths = schema.conform(
            pd.DataFrame({c: [] for c in schema.PATHS.names}), schema.PATHS
        )
        self._true = true
        # an ALFA-Mix run with the closed-form α, for the ε slider
        strategy = SimpleNamespace(name="alfamix", alpha="closed_form", alpha_cap=0.2)
        self.experiment = SimpleNamespace(store=_SyntheticStore(self), strategy=strategy)

    def samples(self, round: int) -> pd.DataFrame:
        """The round's samples frame."""
        return self._samples[round]

    def queried(self, round: int) -> pd.DataFrame:
        """The round's batch."""
        return self._queried[round]

    def paths(self, round: int) -> pd.DataFrame:
        """No stored paths."""
        return self._paths

    def flips(self, round: int) -> pd.DataFrame:
        """No flips frame (hover details are not measured)."""
        return schema.conform(pd.DataFrame({c: [] for c in schema.FLIPS.names}), schema.FLIPS)

    def anchor_points(self, round: int) -> pd.DataFrame:
        """Mean position of each class's labelled samples, computed once per round (RunData
        caches it per round too, so a view's first visit of a round does not pay for it)."""
        cache = self.__dict__.setdefault("_anchor_cache", {})
        if round not in cache:
            cache[round] = self._anchor_points(round)
        return cache[round]

    def _anchor_points(self, round: int) -> pd.DataFrame:
        s = self._samples[round]
        lab = s[s[schema.LABELLED_ROUND] >= 0]
        g = lab.groupby(schema.LABEL)[[schema.X, schema.Y]].mean().reset_index()
        return pd.DataFrame(
            {
                schema.ANCHOR_CLASS: g[schema.LABEL].to_numpy(np.int32),
                schema.X: g[schema.X].to_numpy(np.float32),
                schema.Y: g[schema.Y].to_numpy(np.float32),
            }
        )


class _SyntheticStore:
    """``experiment.store`` of a :class:`SyntheticRun`: only the embeddings (for the PCA view)."""

    DIM = 16

    def __init__(self, run: SyntheticRun) -> None:
        self._run = run

    def read_embeddings(self, round: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, matrix)``: class centres in 16-D plus noise, float32."""
        run = self._run
        ids = run.samples(round)[schema.SAMPLE_ID].to_numpy(np.int64)
        rng = np.random.default_rng(100 + round)
        centres = rng.normal(scale=4.0, size=(run.n_classes, self.DIM))
        noise = rng.standard_normal((ids.size, self.DIM), dtype=np.float32)
        return ids, (centres[run._true].astype(np.float32) + noise)


class _Wire:
    """Counts what widgets (the FigureWidget, or the map canvas's two jupyter-scatter
    anywidgets) hand to their comms (buffers and JSON text)."""

    def __init__(self, *widgets: Any) -> None:
        self.buffer_bytes = 0
        self.json_bytes = 0
        for widget in widgets:
            self._wrap(widget.comm)

    def _wrap(self, comm: Any) -> None:
        original = comm.send

        def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> Any:
            self.json_bytes += len(json.dumps(data, default=str))
            self.buffer_bytes += sum(memoryview(b).nbytes for b in buffers or ())
            return original(data=data, metadata=metadata, buffers=buffers)

        comm.send = send

    def reset(self) -> None:
        self.buffer_bytes = self.json_bytes = 0


def _median(
    fn: Callable[[int], None],
    repeat: int,
    before: Callable[[], None] | None = None,
    wire: _Wire | None = None,
) -> tuple[float, int, int]:
    """Median time of ``fn(k)`` over ``repeat`` calls, and the mean buffer and JSON bytes that
    ``wire`` saw during them; ``before()`` runs before each call, neither timed nor counted."""
    times = []
    buf = js = 0
    for k in range(repeat):
        if before is not None:
            before()
        b0, j0 = (wire.buffer_bytes, wire.json_bytes) if wire else (0, 0)
        t = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t)
        if wire:
            buf += wire.buffer_bytes - b0
            js += wire.json_bytes - j0
    return statistics.median(times), buf // repeat, js // repeat


RENDERERS = ("plotly", "scatter")


def has_renderers() -> bool:
    """Whether :class:`~alfaviz.widgets._embedding.EmbeddingMap` takes ``renderer=``."""
    import inspect

    from alfaviz.widgets._embedding import EmbeddingMap

    return "renderer" in inspect.signature(EmbeddingMap.__init__).parameters


def build_map(state: Any, data: Any, renderer: str = "plotly", **kwargs: Any) -> Any:
    """``EmbeddingMap(state, data, renderer=renderer, **kwargs)``; before the map had renderers,
    the plotly one without the argument."""
    from alfaviz.widgets._embedding import EmbeddingMap

    if has_renderers():
        kwargs["renderer"] = renderer
    elif renderer != "plotly":
        raise RuntimeError(f"EmbeddingMap has no renderer option: cannot build {renderer!r}")
    view = EmbeddingMap(state, data, **kwargs)
    got = getattr(view, "renderer", "plotly")
    if got != renderer:
        raise RuntimeError(f"asked for the {renderer!r} renderer, the map chose {got!r}")
    return view


def _from_front_end(widget: Any, name: str, values: np.ndarray) -> None:
    """Hand ``widget`` the comm message its front-end sends when the user sets the array trait
    ``name`` (jupyter-scatter's lasso sets ``selection``)."""
    state = {name: {"dtype": str(values.dtype), "shape": list(values.shape)}}
    data = {"method": "update", "state": state, "buffer_paths": [[name, "view"]]}
    widget._handle_msg({"content": {"data": data}, "buffers": [memoryview(values.tobytes())]})


def measure(
    n: int, *, repeat: int = 7, max_points: int | None = None, renderer: str = "plotly"
) -> dict[str, Any]:
    """Build the map on ``n`` synthetic points with ``renderer`` and time its updates.

    With ``renderer="plotly"`` the bytes are those the ``FigureWidget`` hands to its comm and
    the lasso calls the points trace's selection callback, as plotly does on a lasso message;
    with ``"scatter"`` they are those of jupyter-scatter's widget (``view.scatter.widget``) and
    the lasso is the ``selection`` message its front-end sends.

    Returns
    -------
    dict
        ``build`` (s), ``updates`` ({name: (median s, buffer bytes, JSON bytes)}),
        ``shown`` (points drawn).
    """
    from alfaviz.widgets import AppState
    from alfaviz.widgets._embedding import MAX_POINTS, TRACES

    data = SyntheticRun(n)
    state = AppState(round=1)
    t = time.perf_counter()
    view = build_map(state, data, renderer, max_points=max_points or MAX_POINTS)
    build = time.perf_counter() - t
    rng = np.random.default_rng(1)
    if renderer == "plotly":
        from plotly.callbacks import LassoSelector, Points

        # as displayed: the front-end reports its view, so patches travel as messages (with
        # no view counted, :func:`~alfaviz.widgets._base.patch` re-syncs the whole figure)
        view.figure.set_state({"_view_count": 1})
        wire = _Wire(view.figure)
        pts = view.figure.data[TRACES["points"]]
        shown = np.asarray(pts.customdata, dtype=np.int64)
        drawn = len(pts.x)
        (lasso,) = pts._select_callbacks

        def lasso_1000(k: int) -> None:
            idx = rng.choice(len(shown), 1000, replace=False).tolist()
            lasso(pts, Points(point_inds=idx, trace_index=0), LassoSelector())

    else:
        widget = view.scatter.widget
        wire = _Wire(widget, view.canvas.rings.widget)  # the points and the highlight canvases
        shown = data.samples(1)[schema.SAMPLE_ID].to_numpy(np.int64)  # every point is drawn
        drawn = len(widget.points)

        def lasso_1000(k: int) -> None:
            idx = np.sort(rng.choice(drawn, 1000, replace=False)).astype(np.uint32)
            _from_front_end(widget, "selection", idx)

    batch = data.queried(1)[schema.SAMPLE_ID].to_numpy()
    colours = ["status", schema.CRITICAL_EPS, schema.PSEUDO_LABEL, schema.SCORE]

    def select(k: int) -> None:
        state.select(batch if k % 2 == 0 else rng.choice(shown, 100, replace=False))

    def colour(k: int) -> None:
        state.colour_by = colours[(k + 1) % len(colours)]

    def round_change(k: int) -> None:
        state.round = k % 2

    def round_cold(k: int) -> None:
        if hasattr(view, "_rounds"):
            view._rounds.clear()  # first visit of the round: nothing cached by the view
        state.round = k % 2

    ops: list[tuple[str, Callable[[int], None], Callable[[], None] | None]] = [
        ("selection (100)", select, None),
        ("lasso (1,000)", lasso_1000, None),
        ("colour", colour, None),
        ("round (replay)", round_change, None),
        ("round (first)", round_cold, None),
    ]
    if has_sweep():
        from alfaviz.widgets._sweep import EpsilonSweep, sweep_inputs

        eps = EpsilonSweep(state, data)
        steps = [0.05, 0.1, 0.25, 0.5, 1.0, 0.2]

        def sweep(k: int) -> None:
            eps.slider.value = steps[k % len(steps)]

        def forget() -> None:  # each move to a step not seen before (none is kept)
            sweep_inputs(data, state.round)._memo.clear()

        ops.append(("sweep (slider)", sweep, forget))
    button = getattr(view, "batch_button", None)
    if button is not None:  # the batch button, from a map with nothing selected

        def clear() -> None:
            state.select([])

        ops.insert(1, ("batch (button)", lambda k: button.click(), clear))
    updates = {}
    for name, fn, before in ops:
        if before:
            before()
        fn(repeat)  # warm
        updates[name] = _median(fn, repeat, before, wire)
    state.round = 1
    state.sweep_cap = None
    assert not view.errors.messages, view.errors.messages
    return {"build": build, "updates": updates, "shown": drawn}


def has_sweep() -> bool:
    """Whether the widgets have the ε slider (``alfaviz.widgets._sweep``)."""
    import importlib.util

    return importlib.util.find_spec("alfaviz.widgets._sweep") is not None


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KINDS = ("bare", "map-plotly", "bare-scatter", "map-scatter")
"""What the browser side measures: the two baselines and the map with each renderer."""
BASELINE = {"map-plotly": "bare", "map-scatter": "bare-scatter"}
CANVAS_KINDS = ("bare-scatter", "map-scatter")
TITLES = {
    "bare": "bare plotly",
    "map-plotly": "map plotly",
    "bare-scatter": "bare jscatter",
    "map-scatter": "map scatter",
}
BROWSER_OPS = ("colour", "selection (100)", "batch highlight")
TARGET_VISIBLE = ((50_000, 0.3), (200_000, 0.5))
"""A colour or selection change visible within 0.3 s up to 50k points, 0.5 s up to 200k."""
TARGET_BATCH_S = 0.1
"""Highlighting the batch under 0.1 s at any size."""
SCATTER_HEIGHT = 520  # px, the bare jscatter's height: that of the map's canvas
CLICK_TIMEOUT_MS = 120_000

# Cells of the generated notebooks. Each shows one plot and four buttons, "bench-colour",
# "bench-select", "bench-batch" and "bench-clear"; the kind's cell defines their handlers
# and ``plot``.
_COMMON = """\
import sys
import numpy as np
import ipywidgets as widgets
from IPython.display import display
sys.path.insert(0, {bench!r})
N = {n}
rng = np.random.default_rng(2)
buttons = {{}}
for name in ("colour", "select", "batch", "clear"):
    buttons[name] = widgets.Button(description=name)
    buttons[name].add_class("bench-" + name)
clicks = [0]
"""
_BARE_DATA = """\
x, y = rng.normal(size=(2, N)).astype(np.float32)
colours = [rng.random(N).astype(np.float32) for _ in range(2)]
batch = np.sort(rng.choice(N, 100, replace=False))
"""
_BARE = (
    _BARE_DATA
    + """\
import plotly.graph_objects as go
fig = go.FigureWidget(
    go.Scattergl(x=x, y=y, mode="markers", marker={"color": colours[0], "size": 3})
)

def on_colour(_):
    clicks[0] += 1
    fig.data[0].marker.color = colours[clicks[0] % 2]

def on_select(_):
    fig.data[0].selectedpoints = rng.choice(N, 100, replace=False).astype(np.int32)

def on_batch(_):
    fig.data[0].selectedpoints = batch.astype(np.int32)

def on_clear(_):
    fig.data[0].selectedpoints = None

plot = fig
"""
)
_BARE_SCATTER = (
    _BARE_DATA
    + """\
import pandas as pd
import jscatter
frame = pd.DataFrame({"x": x, "y": y, "c0": colours[0], "c1": colours[1]})
sc = jscatter.Scatter(data=frame, x="x", y="y", color_by="c0", height=HEIGHT)

def on_colour(_):
    clicks[0] += 1
    sc.color(by=f"c{clicks[0] % 2}")

def on_select(_):
    sc.selection(rng.choice(N, 100, replace=False))

def on_batch(_):
    sc.selection(batch)

def on_clear(_):
    sc.selection([])

plot = sc.show()
"""
)
_MAP = """\
from widget_updates import SyntheticRun, build_map
from alfaviz import schema
from alfaviz.widgets import AppState
data = SyntheticRun(N)
state = AppState(round=1)
view = build_map(state, data, RENDERER)
colours = ["status", schema.CRITICAL_EPS, schema.PSEUDO_LABEL, schema.SCORE]
if RENDERER == "plotly":
    shown = np.asarray(view.figure.data[0].customdata, dtype=np.int64)
else:
    shown = data.samples(1)[schema.SAMPLE_ID].to_numpy(np.int64)  # every point is drawn
queried = data.queried(1)[schema.SAMPLE_ID].to_numpy(np.int64)

def on_colour(_):
    clicks[0] += 1
    state.colour_by = colours[clicks[0] % len(colours)]

def on_select(_):
    state.select(rng.choice(shown, 100, replace=False))

def on_batch(_):  # clicked only when the view has no batch button of its own
    state.select(queried)

def on_clear(_):
    state.select([])

plot = view
"""
_TAIL = """\
handlers = {"colour": on_colour, "select": on_select, "batch": on_batch, "clear": on_clear}
for name, fn in handlers.items():
    buttons[name].on_click(fn)
display(widgets.HBox(list(buttons.values())), plot)
"""
_CELLS = {
    "bare": _BARE,
    "map-plotly": _MAP.replace("RENDERER", "'plotly'"),
    "bare-scatter": _BARE_SCATTER.replace("HEIGHT", str(SCATTER_HEIGHT)),
    "map-scatter": _MAP.replace("RENDERER", "'scatter'"),
}
_BUTTONS = {
    "colour": ".bench-colour",
    "selection (100)": ".bench-select",
    "batch highlight": ".bench-batch",
    "clear": ".bench-clear",
}
MAP_BATCH_BUTTON = ".alfaviz-embedding-batch"
MAP_CANVAS_SCOPE = ".alfaviz-embedding"

# What each click changes. Plotly kinds: the graph div's array (trace index, attribute path),
# compared by identity (plotly stores the new array). Canvas kinds: a hash of the plot's canvas
# pixels (the canvases inside the scope; ``None`` for the whole page).
_WATCH: dict[tuple[str, str], dict[str, Any]] = {
    ("bare", "colour"): {"trace": [0, "marker.color"]},
    ("bare", "selection (100)"): {"trace": [0, "selectedpoints"]},
    ("bare", "batch highlight"): {"trace": [0, "selectedpoints"]},
    ("map-plotly", "colour"): {"trace": [0, "marker.color"]},
    ("map-plotly", "selection (100)"): {"trace": [1, "x"]},  # the selection ring is redrawn
    ("map-plotly", "batch highlight"): {"trace": [1, "x"]},
}
for _op in BROWSER_OPS:
    _WATCH["bare-scatter", _op] = {"canvas": None}
    _WATCH["map-scatter", _op] = {"canvas": MAP_CANVAS_SCOPE}

# Installed in every page before its scripts run. ``pixels`` draws the plot's canvases (those
# of at least a quarter of the largest one's area: the points' layers, not a legend's
# histograms) into one 2-D canvas of at most 512 px a side and reads it back; ``click`` clicks
# a button and, on every animation frame, compares what the watch sees with what it saw just
# before the click, resolving with the time of the first frame where it differs: for a
# canvas, where at least 0.1 % of the pixels (and 20) differ, since a pixel or two may flicker
# on a redraw; it then waits for the canvas to settle (10 frames alike, 3 s at most) and
# reports how many pixels that first frame and the settled canvas differ by.
_PAGE_JS = """
window.__bench = (() => {
  const MAX_SIDE = 512;
  const MIN_PX = 20;
  const MIN_SHARE = 0.001;
  let scratch = null;
  let ctx = null;
  const canvases = (scope) => {
    const root = scope ? document.querySelector(scope) : document;
    if (!root) return [];
    const all = Array.from(root.querySelectorAll('canvas')).filter((c) => c.width && c.height);
    const top = Math.max(0, ...all.map((c) => c.width * c.height));
    return all.filter((c) => 4 * c.width * c.height >= top);
  };
  const pixels = (scope) => {
    const cs = canvases(scope);
    if (!cs.length) return null;
    const big = cs.reduce((a, c) => (c.width * c.height > a.width * a.height ? c : a));
    const s = Math.min(1, MAX_SIDE / Math.max(big.width, big.height));
    const w = Math.max(1, Math.round(big.width * s));
    const h = Math.max(1, Math.round(big.height * s));
    if (!scratch) {
      scratch = document.createElement('canvas');
      ctx = scratch.getContext('2d', { willReadFrequently: true });
    }
    if (scratch.width !== w || scratch.height !== h) {
      scratch.width = w;
      scratch.height = h;
    }
    ctx.clearRect(0, 0, w, h);
    for (const c of cs) ctx.drawImage(c, 0, 0, w, h);
    return new Uint32Array(ctx.getImageData(0, 0, w, h).data.buffer);
  };
  const hash = (p) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i], 16777619);
    return h >>> 0;
  };
  const trace = ([t, path]) => {
    const gd = document.querySelector('.js-plotly-plot');
    let v = gd && gd.data && gd.data[t];
    for (const k of path.split('.')) v = v == null ? v : v[k];
    return v;
  };
  const snap = (w) => {
    if (w.trace) return { key: trace(w.trace), px: null };
    const px = pixels(w.canvas);
    return { key: px ? hash(px) : null, px };
  };
  const diff = (a, b) => {
    if (!a || !b || a.length !== b.length) return -1;
    let d = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
    return d;
  };
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const button = (sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    return el.matches('button') ? el : el.querySelector('button') || el;
  };
  return {
    has: (sel) => !!button(sel),
    drawn: (scope) => {
      const p = pixels(scope);
      if (!p) return 0;
      let d = 0;
      for (let i = 0; i < p.length; i++) if (p[i] !== p[0]) d++;
      return d;
    },
    failed: () => Array.from(
      document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')
    ).map((e) => e.innerText).filter((t) => /Traceback|Error/.test(t)).join('\\n'),
    stderr: () => Array.from(
      document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')
    ).map((e) => e.innerText).join('\\n').trim(),
    errors: () => Array.from(document.querySelectorAll('.alfaviz-errors'))
      .map((e) => e.innerText).join('\\n').trim(),
    click: async ([sel, w, timeout, optional]) => {
      const el = button(sel);
      if (!el) throw new Error('nothing to click at ' + sel);
      const before = snap(w);
      const t0 = performance.now();
      el.click();
      for (;;) {
        await frame();
        const t = performance.now();
        const now = snap(w);
        if (now.key !== before.key) {
          if (!now.px) return { s: (t - t0) / 1000 };
          // a canvas: at least 0.1 % of its pixels (a stray pixel or two is no change)
          const changed = diff(before.px, now.px);
          if (changed >= Math.max(MIN_PX, MIN_SHARE * now.px.length)) {
            let last = now.key;
            let same = 0;
            const t1 = performance.now();
            while (same < 10 && performance.now() - t1 < 3000) {
              await frame();
              const key = snap(w).key;
              same = key === last ? same + 1 : 0;
              last = key;
            }
            const final = diff(before.px, pixels(w.canvas));
            return { s: (t - t0) / 1000, changed, final, of: now.px.length };
          }
        }
        if (t - t0 > timeout) {
          if (optional) return null;
          throw new Error(`nothing changed within ${timeout} ms of a click on ${sel}`);
        }
      }
    },
    settle: async ([w, frames, timeout]) => {
      const t0 = performance.now();
      let last = snap(w).key;
      let same = 0;
      while (same < frames) {
        await frame();
        const key = snap(w).key;
        same = key === last ? same + 1 : 0;
        last = key;
        if (performance.now() - t0 > timeout) return false;
      }
      return true;
    },
  };
})();
"""


def _notebook(kind: str, n: int, path: str) -> None:
    import nbformat

    bench = os.path.dirname(os.path.abspath(__file__))
    src = _COMMON.format(bench=bench, n=n) + _CELLS[kind] + _TAIL
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"voila did not listen on port {port} within {timeout:.0f} s")


# console errors of every page that say nothing about the plot (fonts and CDNs out of reach)
_CONSOLE_NOISE = ("net::ERR_NAME_NOT_RESOLVED", "net::ERR_INTERNET_DISCONNECTED")


def _page_times(
    browser: Any,
    url: str,
    kind: str,
    n: int,
    shown: int,
    repeat: int,
    notes: list[str],
    shots: str | None = None,
) -> dict[str, Any]:
    """Open the notebook of ``kind`` at ``n`` points (``shown`` drawn); time its first plot and
    each button's click-to-visible.

    Returns ``{"first plot": s, op: median s, ..., "changed": {op: fewest pixels changed in
    the first changed frame, as a fraction}}``; what looks odd is appended to ``notes``. With
    ``shots``, a screenshot of the page after the clicks is saved there.
    """
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(_PAGE_JS)
    console: list[str] = []

    def on_console(m: Any) -> None:
        if m.type == "error" and not any(s in m.text for s in _CONSOLE_NOISE):
            console.append(m.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    canvas = kind in CANVAS_KINDS
    scope = MAP_CANVAS_SCOPE if kind == "map-scatter" else None
    try:
        t = time.perf_counter()
        page.goto(url, timeout=300_000)
        if canvas:  # some of the plot's pixels differ from its background
            ready = "window.__bench.drawn(a.scope) >= a.min"
        else:
            ready = (
                "(() => { const gd = document.querySelector('.js-plotly-plot'); return !!(gd"
                " && gd.data && gd.data[0] && gd.data[0].x && gd.data[0].x.length >= a.n"
                " && gd.querySelector('.main-svg')); })()"
            )
        handle = page.wait_for_function(
            f"(a) => {{ const e = window.__bench.failed(); return e ? 'failed: ' + e : {ready}; }}",
            arg={"scope": scope, "min": 100, "n": shown},
            polling="raf",
            timeout=300_000,
        )
        out: dict[str, Any] = {"first plot": time.perf_counter() - t, "changed": {}}
        state = handle.json_value()
        if isinstance(state, str):
            raise RuntimeError(f"the notebook failed: {state[:2000]}")
        page.wait_for_timeout(500)
        buttons = dict(_BUTTONS)
        if kind.startswith("map"):
            if page.evaluate("(s) => window.__bench.has(s)", MAP_BATCH_BUTTON):
                buttons["batch highlight"] = MAP_BATCH_BUTTON
            else:
                notes.append(
                    f"{kind} at {n:,}: no {MAP_BATCH_BUTTON} button on the page; a bench button "
                    "selects the batch (state.select) instead"
                )
        for op in BROWSER_OPS:
            watch = _WATCH[kind, op]
            times, changed = [], []
            for k in range(repeat + 1):  # the first click warms up
                page.evaluate("(a) => window.__bench.settle(a)", [watch, 10, 5_000])
                if op == "batch highlight":  # start from nothing selected (not timed)
                    page.evaluate(
                        "(a) => window.__bench.click(a)",
                        [buttons["clear"], watch, 5_000, True],
                    )
                    page.wait_for_timeout(100)
                    page.evaluate("(a) => window.__bench.settle(a)", [watch, 10, 5_000])
                r = page.evaluate(
                    "(a) => window.__bench.click(a)",
                    [buttons[op], watch, CLICK_TIMEOUT_MS, False],
                )
                if k:
                    times.append(r["s"])
                    if r.get("of"):
                        changed.append((r["changed"] / r["of"], r["changed"] / max(r["final"], 1)))
                page.wait_for_timeout(200)
            out[op] = med = statistics.median(times)
            if max(times) > 2 * med and max(times) - med > 0.1:
                spread = ", ".join(f"{v:.3f}" for v in times)
                notes.append(f"{kind} at {n:,}: {op} clicks vary: {spread} s")
            if changed:  # fewest pixels changed, and least share of the final change
                out["changed"][op] = (min(c for c, _ in changed), min(f for _, f in changed))
        if shots:
            os.makedirs(shots, exist_ok=True)
            page.screenshot(path=os.path.join(shots, f"{kind}_{n}.png"), full_page=True)
        errors = page.evaluate("() => window.__bench.errors()")
        if errors:
            notes.append(f"{kind} at {n:,}: the page's .alfaviz-errors area shows: {errors}")
        stderr = page.evaluate("() => window.__bench.stderr()")
        if stderr:
            notes.append(f"{kind} at {n:,}: the notebook wrote to stderr: {stderr[:500]}")
        return out
    finally:
        for text in dict.fromkeys(console):
            notes.append(f"{kind} at {n:,}: browser console: {text[:300]}")
        with contextlib.suppress(Exception):  # unload the page: Voila may stop the kernel
            page.goto("about:blank", timeout=10_000)
        page.close()


def measure_browser(
    sizes: list[int],
    *,
    repeat: int = 5,
    kinds: tuple[str, ...] = KINDS,
    notes: list[str] | None = None,
    shots: str | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    """Time the baselines and the maps in headless Chromium, served by Voila, in one run.

    A page that fails is reported in ``notes`` (and left out of the result) and the run goes
    on; so are errors shown on a page, its console errors and tracebacks in Voila's log.

    Returns
    -------
    dict
        ``{(kind, n): {"first plot": s, "colour": s, "selection (100)": s,
        "batch highlight": s, "changed": {...}}}`` for ``kind`` in :data:`KINDS`.
    """
    from playwright.sync_api import sync_playwright

    from alfaviz.widgets._embedding import MAX_POINTS

    notes = [] if notes is None else notes
    if "map-scatter" in kinds and not has_renderers():
        notes.append("map-scatter: EmbeddingMap has no renderer option yet; not measured")
        kinds = tuple(k for k in kinds if k != "map-scatter")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="alfaviz-bench-") as tmp:
        names = {}
        for n in sizes:
            for kind in kinds:
                names[kind, n] = f"{kind}_{n}.ipynb"
                _notebook(kind, n, os.path.join(tmp, names[kind, n]))
        port = _free_port()
        log_path = os.path.join(tmp, "voila.log")
        log = open(log_path, "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", tmp, "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
             # the page's own shutdown beacon is refused here (no _xsrf cookie): let Voila
             # cull the kernel of a closed page instead of keeping every map in memory
             "--MappingKernelManager.cull_idle_timeout=10",
             "--MappingKernelManager.cull_interval=5"],
            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp,
        )  # fmt: skip
        try:
            _wait_port(port, proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for n in sizes:
                        for kind in kinds:
                            shown = min(n, MAX_POINTS) if kind == "map-plotly" else n
                            url = f"http://127.0.0.1:{port}/voila/render/{names[kind, n]}"
                            try:
                                results[kind, n] = _page_times(
                                    browser, url, kind, n, shown, repeat, notes, shots
                                )
                            except Exception as exc:  # reported; the run goes on
                                notes.append(f"{kind} at {n:,}: FAILED: {exc}")
                finally:
                    browser.close()
            log.flush()
            with open(log_path) as f:
                text = f.read()
            started, stopped = text.count("Kernel started"), text.count("Kernel shutdown")
            if started - stopped > 2:  # the last page's kernel, maybe the one before
                notes.append(
                    f"{started - stopped} of {started} kernels were still running when the last "
                    "page closed (culled 10 s after their page closed, or stopped with Voila)"
                )
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
        with open(log_path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                notes.append("Voila's log: " + " | ".join(lines[i : i + 40])[-1500:])
    return results


def _visible_target(n: int) -> float | None:
    for top, limit in TARGET_VISIBLE:
        if n <= top:
            return limit
    return None


def _print_browser(
    results: dict[tuple[str, int], dict[str, Any]],
    sizes: list[int],
    kinds: tuple[str, ...],
    repeat: int,
) -> bool:
    """Print the browser table and the targets; whether every measured map meets them."""
    kinds = tuple(k for k in KINDS if k in kinds)
    print()
    print("Browser side: headless Chromium (SwiftShader) via Playwright, served by Voila;")
    print(f"seconds, median of {repeat} clicks (click to the first frame showing the change)")
    cols: list[tuple[str, str]] = []  # (header, kind or "ratio:<map>")
    for kind in kinds:
        cols.append((TITLES[kind], kind))
        if kind in BASELINE and BASELINE[kind] in kinds:
            cols.append(("ratio", "ratio:" + kind))
    widths = [max(len(h), 6) for h, _ in cols]
    head = " ".join(f"{h:>{w}}" for (h, _), w in zip(cols, widths, strict=True))
    print(f"{'points':>9} {'measure':<16} {head}")

    def cell(n: int, op: str, key: str, w: int) -> str:
        if key.startswith("ratio:"):
            m = results.get((key[6:], n), {}).get(op)
            b = results.get((BASELINE[key[6:]], n), {}).get(op)
            return f"{m / b:>{w}.2f}" if m is not None and b else f"{'—':>{w}}"
        v = results.get((key, n), {}).get(op)
        return f"{v:>{w}.3f}" if v is not None else f"{'n/a':>{w}}"

    for n in sizes:
        for i, op in enumerate(("first plot", *BROWSER_OPS)):
            label = f"{n:,}" if i == 0 else ""
            row = " ".join(cell(n, op, key, w) for (_, key), w in zip(cols, widths, strict=True))
            print(f"{label:>9} {op:<16} {row}")
    canvas = [k for k in kinds if k in CANVAS_KINDS]
    if canvas:
        print()
        print("Canvas kinds, first visible frame: fewest pixels changed (share of the hashed")
        print("canvas, drawn at most 512 px a side) / least share of the settled change")
        for kind in canvas:
            for n in sizes:
                ch = results.get((kind, n), {}).get("changed", {})
                if ch:
                    parts = ", ".join(
                        f"{op} {ch[op][0]:.2%} / {ch[op][1]:.0%}" for op in BROWSER_OPS if op in ch
                    )
                    print(f"  {TITLES[kind]:<14} {n:>9,}: {parts}")
    maps = [k for k in kinds if k.startswith("map")]
    ok = True
    if not maps:
        return ok
    print()
    print(
        "Targets: a selection or colour change is visible within 0.3 s at 50k points and"
        " within 0.5 s at 200k;\nhighlighting the batch takes under 0.1 s at any N"
    )
    print(f"{'':<36}" + "".join(f"{TITLES[k]:>16}" for k in maps))
    held = dict.fromkeys(maps, True)
    for n in sizes:
        for op in BROWSER_OPS:
            limit = TARGET_BATCH_S if op == "batch highlight" else _visible_target(n)
            if limit is None:
                continue
            sign = "<" if op == "batch highlight" else "<="
            row = f"{op + ' at ' + format(n, ',') + f' ({sign} {limit} s)':<36}"
            for kind in maps:
                v = results.get((kind, n), {}).get(op)
                if v is None:
                    row += f"{'n/a':>16}"
                    held[kind] = False
                    continue
                hit = v < limit if op == "batch highlight" else v <= limit
                held[kind] &= hit
                row += f"{('ok ' if hit else 'MISSED ') + f'{v:.3f}':>16}"
            print(row)
    for kind in maps:
        print(f"{TITLES[kind]}: the targets {'hold' if held[kind] else 'do NOT hold'}")
        ok &= held[kind]
    return ok


def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit status 1 when a Python-side target is missed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000, 200_000])
    p.add_argument("--repeat", type=int, default=None, help="updates per median (default 7)")
    p.add_argument(
        "--renderer",
        choices=(*RENDERERS, "both"),
        default="both",
        help="the map's renderer(s) on the Python side (default both)",
    )
    p.add_argument("--browser", action="store_true", help="also time click-to-visible in Chromium")
    p.add_argument(
        "--browser-sizes", type=int, nargs="+", default=[5_000, 50_000, 200_000]
    )  # fmt: skip
    p.add_argument(
        "--browser-repeat",
        type=int,
        default=None,
        help="clicks per median (default: --repeat if given, else 5)",
    )
    p.add_argument(
        "--kinds",
        choices=KINDS,
        nargs="+",
        default=list(KINDS),
        help="what the browser side measures (default all)",
    )
    p.add_argument("--screenshots", metavar="DIR", help="save a screenshot of every page there")
    args = p.parse_args(argv)
    repeat = args.repeat or 7
    browser_repeat = args.browser_repeat or args.repeat or 5

    import plotly.graph_objects as go

    go.FigureWidget()  # pay plotly's one-off widget import before timing
    renderers = list(RENDERERS) if args.renderer == "both" else [args.renderer]
    if "scatter" in renderers:
        if not has_renderers():
            print("EmbeddingMap has no renderer option yet: the scatter renderer is skipped.")
            renderers.remove("scatter")
        else:
            import jscatter

            frame = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})
            _ = jscatter.Scatter(data=frame, x="x", y="y").widget  # one-off import and bundle
    from alfaviz.widgets._embedding import MAX_POINTS

    ok = True
    if not args.browser:
        print("Python-side only; pass --browser for click-to-visible times in Chromium.")
    print(f"{'renderer':<8} {'points':>9} {'drawn':>8} {'update':<16} {'median ms':>9} "
          f"{'buffers':>10} {'json':>8}  target")  # fmt: skip
    for renderer in renderers:
        runs = []
        for n in args.sizes:
            runs.append((n, None))
            if renderer == "plotly" and n > MAX_POINTS:
                runs.append((n, n))  # the scatter renderer draws every point anyway
        for n, cap in runs:
            r = measure(n, repeat=repeat, max_points=cap, renderer=renderer)
            build_ok = n > 200_000 or r["build"] < TARGET_BUILD_S
            ok &= build_ok
            label = f"{n:,}" + ("" if cap is None else " (no cap)")
            print(f"{renderer:<8} {label:>9} {r['shown']:>8,} {'build':<16} "
                  f"{r['build'] * 1e3:>9.1f} {'':>10} {'':>8}  "
                  f"{'ok' if build_ok else 'MISSED'} (< 2 s)")  # fmt: skip
            for name, (s, buf, js) in r["updates"].items():
                hit = s <= TARGET_UPDATE_S
                ok &= hit or cap is not None  # the uncapped row is for information
                print(f"{'':<8} {'':>9} {'':>8} {name:<16} {s * 1e3:>9.2f} {buf:>10,} "
                      f"{js:>8,}  {'ok' if hit else 'MISSED'} (<= 10 ms)")  # fmt: skip
    print("all Python-side targets met" if ok else "some Python-side targets missed")
    if args.browser:
        kinds = tuple(k for k in KINDS if k in args.kinds)
        notes: list[str] = []
        results = measure_browser(
            args.browser_sizes,
            repeat=browser_repeat,
            kinds=kinds,
            notes=notes,
            shots=args.screenshots,
        )
        _print_browser(results, args.browser_sizes, kinds, browser_repeat)
        if notes:
            print()
            print("Notes:")
            for line in notes:
                print(f"- {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
