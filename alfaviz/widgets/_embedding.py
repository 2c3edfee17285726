"""The embedding map: the stored 2-D coordinates of a round, coloured, selectable, replayable.

:func:`embedding_figure` is the pure twin (a samples frame in, a ``go.Figure`` out) and
:class:`EmbeddingMap` the view that wraps it in a ``go.FigureWidget`` and patches it in one
``batch_update()`` per user action. Only numeric 1-D arrays reach plotly: float32 coordinates,
int32 codes and int32 sample ids as ``customdata``; per-point text is never sent, and the
hover details are drawn in Python from the frame (:meth:`EmbeddingMap.details_html`).

Two renderers sit behind the one view class and the one state (:data:`RENDERERS`):

- ``"scatter"`` (the default when jupyter-scatter is installed, as the widgets extra does):
  a regl canvas (:class:`~alfaviz.widgets._scatter.ScatterCanvas`) that draws every point at
  any size; the points travel as one binary float32 buffer and a selection as an int32 one;
- ``"plotly"``: a ``go.FigureWidget`` of :func:`embedding_figure`, whose traces come in a fixed
  order (see :data:`TRACES`): the points, the selection overlay, the interpolation paths of
  the selected batch samples, their flip points, and the class anchors. It draws at most
  :data:`MAX_POINTS` points (a sample that always keeps the labelled points, the candidates
  and the batch).
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go

from alfaviz import schema
from alfaviz.analysis.sweep import Sweep
from alfaviz.errors import AlfavizInputError
from alfaviz.widgets._base import View, figure_widget, patch
from alfaviz.widgets._state import COLOUR_BY
from alfaviz.widgets._sweep import SweepInputs, sweep_inputs

__all__ = [
    "MAX_PATH_SAMPLES",
    "MAX_POINTS",
    "RENDERERS",
    "STATUS",
    "SWEEP_STATUS",
    "TRACES",
    "ColourSpec",
    "EmbeddingMap",
    "colour_options",
    "colour_spec",
    "display_positions",
    "embedding_figure",
    "path_segments",
    "pca_2d",
    "pca_anchors",
    "status_codes",
    "sweep_codes",
    "sweep_spec",
]

MAX_POINTS = 50_000
"""Most points handed to plotly; above it a deterministic sample is shown (see
:func:`display_positions`)."""

RENDERERS: tuple[str, ...] = ("auto", "scatter", "plotly")
"""Values of ``EmbeddingMap(renderer=...)``: ``"auto"`` picks ``"scatter"`` when
jupyter-scatter is installed, else ``"plotly"``."""

MAX_PATH_SAMPLES = 4
"""Most selected samples whose interpolation paths are drawn: a larger selection (the whole
batch, a lasso) is highlighted without paths, which would cover the map."""

STATUS: tuple[str, ...] = ("unlabelled", "labelled", "candidate", "selected", "filled")
"""Status codes 0..4 of :func:`status_codes`, in order."""

STATUS_COLOURS: tuple[str, ...] = ("#c9c9c9", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd")

SWEEP_STATUS: tuple[str, ...] = (
    "not a candidate",
    "labelled",
    "candidate (also recorded)",
    "candidate (new at this step)",
    "recorded candidate, not at this step",
)
"""Codes 0..4 of :func:`sweep_codes`: how the map colours an ε sweep (``AppState.sweep_cap``).
Codes 2 and 3 are the sweep's candidate set; 4 marks the round's own candidates it drops."""

SWEEP_COLOURS: tuple[str, ...] = ("#e3e3e3", "#1f77b4", "#ff7f0e", "#d62728", "#c5b0d5")

TRACES: dict[str, int] = {"points": 0, "selection": 1, "paths": 2, "flips": 3, "anchors": 4}
"""Index of each trace in the figure."""

MISSING_COLOUR = "#bdbdbd"
_STATUS = "status"
_SCORE_PREFIX = f"{schema.SCORE}:"
_LABELS = {
    _STATUS: "status",
    schema.PSEUDO_LABEL: "pseudo-label",
    schema.TRUE_LABEL: "true label",
    schema.INCONSISTENCY: "inconsistency",
    schema.CRITICAL_EPS: "critical ε",
    schema.SCORE: "score",
}


# --------------------------------------------------------------------------------------------
# pure helpers


def _option_label(option: str) -> str:
    """What the colour menu says for a colouring: ``score:entropy`` reads "entropy score"."""
    if option.startswith(_SCORE_PREFIX):
        return f"{option[len(_SCORE_PREFIX) :]} score"
    return _LABELS.get(option, option)


def _labelled(samples: pd.DataFrame, round: int) -> np.ndarray:
    lr = samples[schema.LABELLED_ROUND].to_numpy()
    return (lr >= 0) & (lr <= round)


def _member(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.isin(ids, values)``, by binary search when ``ids`` increase and ``values`` are few."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return np.zeros(ids.size, dtype=bool)
    if values.size * 16 < ids.size and np.all(ids[1:] >= ids[:-1]):
        at = np.clip(np.searchsorted(ids, values), 0, ids.size - 1)
        mask = np.zeros(ids.size, dtype=bool)
        mask[at[ids[at] == values]] = True
        return mask
    return np.isin(ids, values)


def status_codes(
    samples: pd.DataFrame, round: int, queried_ids: Iterable[int] | None = None
) -> np.ndarray:
    """Status of each row: 0 unlabelled, 1 labelled, 2 candidate, 3 selected, 4 filled.

    Parameters
    ----------
    samples : pandas.DataFrame
        A samples frame (:data:`~alfaviz.schema.SAMPLES`), not modified.
    round : int
        The round shown: samples with ``0 <= labelled_round <= round`` are labelled.
    queried_ids : iterable of int, optional
        The round's batch; its members count as selected (or filled) even where the frame's
        flags are not set.

    Returns
    -------
    numpy.ndarray of int32, shape (n_rows,)
        Later statuses win: a candidate that was picked is ``selected``.
    """
    codes = np.zeros(len(samples), dtype=np.int32)
    codes[_labelled(samples, round)] = 1
    codes[samples[schema.CANDIDATE].to_numpy(bool)] = 2
    picked = samples[schema.SELECTED].to_numpy(bool).copy()
    if queried_ids is not None:
        q = np.asarray(list(queried_ids), dtype=np.int64)
        if q.size:
            picked |= _member(samples[schema.SAMPLE_ID].to_numpy(), q)
    fill = samples[schema.FILL].to_numpy(bool)
    codes[picked & ~fill] = 3
    codes[picked & fill] = 4
    return codes


def _stable_hash(ids: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random rank per id (Fibonacci hashing), the same on every run."""
    with np.errstate(over="ignore"):
        return (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(16)


def display_positions(
    samples: pd.DataFrame,
    *,
    round: int,
    max_points: int = MAX_POINTS,
    keep_ids: Iterable[int] = (),
    status: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of ``samples`` to draw, ordered by ``sample_id``.

    Up to ``max_points`` every row is drawn. Above it, the labelled samples, the candidates,
    the batch (selected or filled) and ``keep_ids`` are always drawn, and the rest is filled up
    to ``max_points`` with the rows of smallest fixed hash of their id: the same sample on
    every call, so that points keep their places from round to round.

    ``status`` (:func:`status_codes` of the whole frame, int32) may be passed when it is
    already known.

    Returns
    -------
    numpy.ndarray of int64, shape (n_shown,)
        Positions into ``samples``, in increasing ``sample_id``.
    """
    ids = samples[schema.SAMPLE_ID].to_numpy()
    n = len(ids)
    if n <= max_points:
        pos = np.arange(n, dtype=np.int64)
    else:
        must = (status if status is not None else status_codes(samples, round)) > 0
        keep = np.asarray(list(keep_ids), dtype=np.int64)
        if keep.size:
            must |= _member(ids, keep)
        rest = np.flatnonzero(~must)
        room = max(int(max_points) - int(must.sum()), 0)
        if room < rest.size:
            h = _stable_hash(ids[rest])
            rest = rest[np.argpartition(h, room)[:room]] if room else rest[:0]
        pos = np.concatenate([np.flatnonzero(must), rest]).astype(np.int64)
        pos.sort()  # rows in frame order; reordered by id below if the frame is not
    shown = ids[pos]
    if not np.all(shown[1:] >= shown[:-1]):
        pos = pos[np.argsort(shown, kind="stable")]
    return pos


def _palette(n: int) -> list[str]:
    base = list(pcolors.qualitative.Plotly) if n <= 10 else list(pcolors.qualitative.Alphabet)
    if n > len(base):
        base = base + list(pcolors.qualitative.Dark24) + list(pcolors.qualitative.Light24)
    return [base[i % len(base)] for i in range(n)]


def _discrete_scale(colours: Sequence[str]) -> list[list[Any]]:
    n = len(colours)
    out: list[list[Any]] = []
    for i, c in enumerate(colours):
        out.append([i / n, c])
        out.append([(i + 1) / n, c])
    return out


def _sequential_with_missing() -> list[list[Any]]:
    seq = list(pcolors.sequential.Viridis)
    top = 0.98
    stops: list[list[Any]] = [[top * i / (len(seq) - 1), c] for i, c in enumerate(seq)]
    stops.append([top + 1e-4, MISSING_COLOUR])
    stops.append([1.0, MISSING_COLOUR])
    return stops


@dataclass(frozen=True)
class ColourSpec:
    """How the points are coloured.

    Attributes
    ----------
    values : numpy.ndarray, shape (n_shown,)
        int32 codes (categorical colourings) or float32 values (continuous ones); non-finite
        values are replaced by a sentinel that the colour scale draws grey.
    colorscale : list of [float, str]
    cmin, cmax : float
    colorbar : dict
        Title, and tick values and texts (a handful of strings, never one per point).
    label : str
        Human name of the colouring.
    colours : tuple of str
        For a categorical colouring, the colour of each code ``cmin + 0.5 + k``; empty for a
        continuous one.
    """

    values: np.ndarray
    colorscale: list[list[Any]]
    cmin: float
    cmax: float
    colorbar: dict[str, Any]
    label: str
    colours: tuple[str, ...] = ()

    def marker(self) -> dict[str, Any]:
        """The ``marker`` properties to set on the points trace."""
        return {
            "color": self.values,
            "colorscale": self.colorscale,
            "cmin": self.cmin,
            "cmax": self.cmax,
            "showscale": True,
            "colorbar": self.colorbar,
        }


def colour_options(samples: pd.DataFrame | None) -> list[str]:
    """The colourings available for ``samples``: :data:`COLOUR_BY` and its ``score:*`` columns.

    A samples frame may carry other strategies' scores as extra float columns named
    ``score:<strategy>``; each becomes an option.
    """
    out = list(COLOUR_BY)
    if samples is not None:
        out += [str(c) for c in samples.columns if str(c).startswith(_SCORE_PREFIX)]
    return out


def _categorical(codes: np.ndarray, names: Sequence[str], title: str) -> ColourSpec:
    """Codes -1..C-1 (-1 unknown, drawn grey)."""
    n = len(names)
    colours = [MISSING_COLOUR, *_palette(n)]
    step = max(1, n // 20 + 1) if n > 20 else 1
    ticks = list(range(-1, n, step))
    text = ["unknown" if t < 0 else str(names[t]) for t in ticks]
    return ColourSpec(
        values=np.ascontiguousarray(codes, dtype=np.int32),
        colorscale=_discrete_scale(colours),
        cmin=-1.5,
        cmax=n - 0.5,
        colorbar={"title": {"text": title}, "tickvals": ticks, "ticktext": text},
        label=title,
        colours=tuple(colours),
    )


def _continuous(values: np.ndarray, title: str, missing: str) -> ColourSpec:
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo, hi = (float(v[finite].min()), float(v[finite].max())) if finite.any() else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    sentinel = hi + (hi - lo) / 49.0  # maps to the top 2 % of the scale: grey
    out = np.where(finite, v, sentinel).astype(np.float32)
    # the largest value sits right under the grey "missing" band: label the band, not both
    ticks = [lo, (lo + hi) / 2, sentinel]
    text = [f"{lo:.3g}", f"{(lo + hi) / 2:.3g}", missing]
    return ColourSpec(
        values=out,
        colorscale=_sequential_with_missing(),
        cmin=lo,
        cmax=sentinel,
        colorbar={"title": {"text": title}, "tickvals": ticks, "ticktext": text},
        label=title,
    )


def colour_spec(
    samples: pd.DataFrame,
    colour_by: str,
    *,
    round: int,
    class_names: Sequence[str],
    positions: np.ndarray | None = None,
    queried_ids: Iterable[int] | None = None,
    status: np.ndarray | None = None,
) -> ColourSpec:
    """The colour of each drawn point for one colouring.

    Parameters
    ----------
    samples : pandas.DataFrame
        The round's samples frame (not modified).
    colour_by : str
        One of :func:`colour_options`.
    round : int
    class_names : sequence of str
        Name of each class id, shape (n_classes,).
    positions : numpy.ndarray of int, optional
        The drawn rows (:func:`display_positions`); all rows by default.
    queried_ids : iterable of int, optional
        The round's batch, for the status colouring.
    status : numpy.ndarray of int32, optional
        :func:`status_codes` of the whole frame, when already known.

    Returns
    -------
    ColourSpec

    Raises
    ------
    ValueError
        For an unknown colouring, or a ``score:<strategy>`` the frame does not hold.
    """

    def col(name: str, dtype: Any = None) -> np.ndarray:
        v = samples[name].to_numpy(dtype)
        return v if positions is None else v[positions]

    if colour_by == _STATUS:
        codes = status if status is not None else status_codes(samples, round, queried_ids)
        codes = codes if positions is None else codes[positions]
        ticks = list(range(len(STATUS)))
        return ColourSpec(
            values=codes,
            colorscale=_discrete_scale(STATUS_COLOURS),
            cmin=-0.5,
            cmax=len(STATUS) - 0.5,
            colorbar={"title": {"text": "status"}, "tickvals": ticks, "ticktext": list(STATUS)},
            label="status",
            colours=STATUS_COLOURS,
        )
    if colour_by in (schema.PSEUDO_LABEL, schema.TRUE_LABEL):
        codes = col(colour_by, np.int32)
        return _categorical(codes, class_names, _LABELS[colour_by])
    if colour_by == schema.INCONSISTENCY:
        v = col(colour_by, np.int32)
        hi = max(1, int(v.max())) if v.size else 1
        return ColourSpec(
            values=np.ascontiguousarray(v),
            colorscale=[list(s) for s in pcolors.make_colorscale(pcolors.sequential.Viridis)],
            cmin=0.0,
            cmax=float(hi),
            colorbar={"title": {"text": _LABELS[colour_by]}},
            label=_LABELS[colour_by],
        )
    if colour_by == schema.CRITICAL_EPS:
        return _continuous(col(colour_by), "critical ε", "∞ (no flip)")
    if colour_by == schema.SCORE or colour_by.startswith(_SCORE_PREFIX):
        if colour_by not in samples.columns:
            raise ValueError(
                f"colour_by {colour_by!r}: this round's samples frame holds no such score; "
                f"available: {colour_options(samples)}."
            )
        return _continuous(col(colour_by), _option_label(colour_by), "no score")
    raise ValueError(f"colour_by must be one of {colour_options(samples)}; got {colour_by!r}.")


def sweep_codes(inputs: SweepInputs, sweep: Sweep) -> np.ndarray:
    """The sweep colouring's code (:data:`SWEEP_STATUS`) of every row of the round's frame.

    Parameters
    ----------
    inputs : SweepInputs
        The round's pool (:func:`~alfaviz.widgets._sweep.sweep_inputs`).
    sweep : Sweep
        ``inputs.sweep(alpha_cap)``: its mask is aligned with ``inputs.rows``.

    Returns
    -------
    numpy.ndarray of int32, shape (n_rows,)
        0 pool, 1 labelled, 2 candidate of the sweep and of the recorded round, 3 candidate
        of the sweep only, 4 candidate of the recorded round only.
    """
    codes = inputs.labelled.astype(np.int32)
    cand, rec = sweep.mask, inputs.recorded
    codes[inputs.rows[cand & rec]] = 2
    codes[inputs.rows[cand & ~rec]] = 3
    codes[inputs.rows[~cand & rec]] = 4
    return codes


def sweep_label(sweep: Sweep) -> str:
    """The legend line of a sweep: ``"ε step 0.1: 389 candidates (stops at ε 0.3)"``."""
    n = sweep.n_candidates
    text = f"ε step {sweep.alpha_cap:.4g}: {n:,} candidate{'' if n == 1 else 's'}"
    text += f" (stops at ε {sweep.level:.3g}{'' if sweep.exact else ', not exact'})"
    return text


def sweep_spec(codes: np.ndarray, sweep: Sweep, positions: np.ndarray | None = None) -> ColourSpec:
    """The :class:`ColourSpec` of a sweep: :func:`sweep_codes` of the drawn rows.

    Parameters
    ----------
    codes : numpy.ndarray of int32, shape (n_rows,)
    sweep : Sweep
    positions : numpy.ndarray of int, optional
        The drawn rows; all by default.
    """
    values = codes if positions is None else codes[positions]
    ticks = list(range(len(SWEEP_STATUS)))
    label = sweep_label(sweep)
    return ColourSpec(
        values=np.ascontiguousarray(values, dtype=np.int32),
        colorscale=_discrete_scale(SWEEP_COLOURS),
        cmin=-0.5,
        cmax=len(SWEEP_STATUS) - 0.5,
        colorbar={"title": {"text": label}, "tickvals": ticks, "ticktext": list(SWEEP_STATUS)},
        label=label,
        colours=SWEEP_COLOURS,
    )


def pca_2d(matrix: np.ndarray) -> np.ndarray:
    """The first two principal components of ``matrix`` (numpy only, deterministic signs).

    Parameters
    ----------
    matrix : numpy.ndarray, shape (n_samples, dim)

    Returns
    -------
    numpy.ndarray of float32, shape (n_samples, 2)
        A linear map of the rows, so an interpolation path z_u → z*_c stays straight and the
        mean of projections is the projection of the mean (where the anchors sit).
    """
    z = np.asarray(matrix, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"pca_2d needs a non-empty (n, dim) matrix; got shape {z.shape}.")
    zc = z - z.mean(axis=0)
    cov = zc.T @ zc
    vals, vecs = np.linalg.eigh(cov)
    comp = vecs[:, np.argsort(vals)[::-1][:2]]
    if comp.shape[1] < 2:
        comp = np.pad(comp, ((0, 0), (0, 2 - comp.shape[1])))
    big = np.argmax(np.abs(comp), axis=0)
    comp = comp * np.where(comp[big, np.arange(comp.shape[1])] < 0, -1.0, 1.0)
    return (zc @ comp).astype(np.float32)


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``ids`` in ``sorted_ids`` and a mask of the ones found."""
    if sorted_ids.size == 0:
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(sorted_ids, ids)
    at = np.clip(at, 0, sorted_ids.size - 1)
    return at, sorted_ids[at] == ids


def path_segments(
    xy: pd.DataFrame,
    anchors: pd.DataFrame,
    paths: pd.DataFrame,
    sample_ids: Iterable[int],
    *,
    max_samples: int = MAX_PATH_SAMPLES,
    placed: bool = True,
) -> dict[str, np.ndarray]:
    """Each sample's path toward each anchor on the map, and where the prediction flips.

    With ``placed`` and path points placed on the map by the backend (``x``, ``y`` in the
    paths frame), a path is the curve through those points; otherwise (the PCA view, where the
    path really is straight, or a run without placed points) the straight segment.

    Parameters
    ----------
    xy : pandas.DataFrame
        ``sample_id``, ``x``, ``y`` and ``pseudo_label`` of the samples (sorted by id or not).
    anchors : pandas.DataFrame
        ``anchor_class``, ``x``, ``y`` (:meth:`RunData.anchor_points`).
    paths : pandas.DataFrame
        The round's :data:`~alfaviz.schema.PATHS` frame: predictions along t ∈ [0, 1] per
        (sample, anchor).
    sample_ids : iterable of int
        Samples to draw (those without a path are skipped); at most ``max_samples``.

    Returns
    -------
    dict
        ``line_x``, ``line_y`` (float32, shape (3 * n_segments,), each segment followed by NaN
        to break the line); ``flip_x``, ``flip_y`` (float32, shape (n_flips,)), the first
        point where the prediction differs from the pseudo-label, at its t; ``flip_class``
        (int32) the class predicted there, and ``flip_ids`` (int64) the sample of each flip.
    """
    wanted = np.asarray(list(sample_ids), dtype=np.int64)[: int(max_samples)]
    empty = np.zeros(0, dtype=np.float32)
    out = {
        "line_x": empty,
        "line_y": empty,
        "flip_x": empty,
        "flip_y": empty,
        "flip_class": np.zeros(0, dtype=np.int32),
        "flip_ids": np.zeros(0, dtype=np.int64),
    }
    if wanted.size == 0 or paths.empty or anchors.empty:
        return out
    p = paths[paths[schema.SAMPLE_ID].isin(wanted)]
    if p.empty:
        return out
    ids = xy[schema.SAMPLE_ID].to_numpy()
    order = np.argsort(ids, kind="stable")
    sids = ids[order]
    px = xy[schema.X].to_numpy(np.float32)[order]
    py = xy[schema.Y].to_numpy(np.float32)[order]
    pseudo = xy[schema.PSEUDO_LABEL].to_numpy(np.int32)[order]
    a_cls = anchors[schema.ANCHOR_CLASS].to_numpy(np.int64)
    a_x = anchors[schema.X].to_numpy(np.float32)
    a_y = anchors[schema.Y].to_numpy(np.float32)
    anchor_at = {int(c): i for i, c in enumerate(a_cls)}
    p = p.sort_values([schema.SAMPLE_ID, schema.ANCHOR_CLASS, schema.PATH_T], kind="stable")
    seg_x: list[float] = []
    seg_y: list[float] = []
    fx: list[float] = []
    fy: list[float] = []
    fto: list[int] = []
    fid: list[int] = []
    nan = float("nan")
    for (sid, cls), g in p.groupby([schema.SAMPLE_ID, schema.ANCHOR_CLASS], sort=False):
        j = anchor_at.get(int(cls))
        at, found = _lookup(sids, np.asarray([sid], dtype=np.int64))
        if j is None or not found[0]:
            continue
        i = int(at[0])
        x0, y0, x1, y1 = float(px[i]), float(py[i]), float(a_x[j]), float(a_y[j])
        if not (np.isfinite(x0) and np.isfinite(y0)):
            continue
        pred = g[schema.PATH_PRED].to_numpy()
        t = g[schema.PATH_T].to_numpy(np.float64)
        gx = g[schema.X].to_numpy(np.float64) if schema.X in g else np.full(len(g), np.nan)
        gy = g[schema.Y].to_numpy(np.float64) if schema.Y in g else np.full(len(g), np.nan)
        curve = placed and bool(np.isfinite(gx).all() and np.isfinite(gy).all())
        if curve:  # start at the sample's own point, then follow the placed mixed points
            if t[-1] == 1:  # t = 1 is the anchor itself: end on its marker
                gx, gy = gx.copy(), gy.copy()
                gx[-1], gy[-1] = x1, y1
            cx = np.concatenate([[x0], gx[1:]]) if t[0] == 0 else np.concatenate([[x0], gx])
            cy = np.concatenate([[y0], gy[1:]]) if t[0] == 0 else np.concatenate([[y0], gy])
            seg_x += [*cx.tolist(), nan]
            seg_y += [*cy.tolist(), nan]
        else:
            seg_x += [x0, x1, nan]
            seg_y += [y0, y1, nan]
        ref = int(pseudo[i]) if pseudo[i] >= 0 else int(pred[0])
        changed = np.flatnonzero(pred != ref)
        if changed.size:
            k = int(changed[0])
            if curve:
                fx.append(float(gx[k]) if k or t[0] != 0 else x0)
                fy.append(float(gy[k]) if k or t[0] != 0 else y0)
            else:
                fx.append(x0 + float(t[k]) * (x1 - x0))
                fy.append(y0 + float(t[k]) * (y1 - y0))
            fto.append(int(pred[k]))
            fid.append(int(sid))
    out["line_x"] = np.asarray(seg_x, dtype=np.float32)
    out["line_y"] = np.asarray(seg_y, dtype=np.float32)
    out["flip_x"] = np.asarray(fx, dtype=np.float32)
    out["flip_y"] = np.asarray(fy, dtype=np.float32)
    out["flip_class"] = np.asarray(fto, dtype=np.int32)
    out["flip_ids"] = np.asarray(fid, dtype=np.int64)
    return out


def _ids_for_plotly(ids: np.ndarray) -> np.ndarray:
    """Global ids as int32 (plotly sends int64 as JSON), or float64 beyond int32's range."""
    if ids.size and (ids.max() > np.iinfo(np.int32).max or ids.min() < np.iinfo(np.int32).min):
        return ids.astype(np.float64)
    return ids.astype(np.int32)


def _title(round: int, label: str, n_shown: int, n_total: int, pca: bool) -> str:
    where = "PCA of the stored embeddings" if pca else "stored 2-D map"
    text = f"Round {round} · {where} · coloured by {label}"
    if n_shown < n_total:
        text += (
            f" · showing {n_shown:,} of {n_total:,} points "
            "(all labelled, candidates and batch, and a fixed sample of the rest)"
        )
    return text


def _anchor_names(anchors: pd.DataFrame, class_names: Sequence[str]) -> list[str]:
    cls = anchors[schema.ANCHOR_CLASS].to_numpy(np.int64)
    return [str(class_names[c]) if 0 <= c < len(class_names) else str(c) for c in cls]


def _anchor_trace(anchors: pd.DataFrame, class_names: Sequence[str]) -> go.Scatter:
    names = _anchor_names(anchors, class_names)
    return go.Scatter(
        x=anchors[schema.X].to_numpy(np.float32),
        y=anchors[schema.Y].to_numpy(np.float32),
        mode="markers+text",
        text=names,  # one per class, not per point
        textposition="top center",
        marker={"symbol": "x", "size": 13, "color": "black", "line": {"width": 1}},
        hovertemplate="anchor %{text}<extra></extra>",
        name="anchors",
        showlegend=False,
    )


def embedding_figure(
    samples: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    colour_by: str = _STATUS,
    class_names: Sequence[str],
    round: int,
    selected: Iterable[int] = (),
    paths: pd.DataFrame | None = None,
    queried_ids: Iterable[int] | None = None,
    max_points: int = MAX_POINTS,
    pca: bool = False,
) -> go.Figure:
    """The embedding map of one round as a static figure (the pure twin of the view).

    Parameters
    ----------
    samples : pandas.DataFrame
        The round's :data:`~alfaviz.schema.SAMPLES` frame (its ``x``/``y`` are drawn; pass a
        copy with other coordinates for the PCA view). Not modified.
    anchors : pandas.DataFrame
        ``anchor_class``, ``x``, ``y``: where the class anchors sit.
    colour_by : str
        One of :func:`colour_options`.
    class_names : sequence of str
    round : int
    selected : iterable of int
        Selected global ids: drawn as rings; those with stored paths get their paths when at
        most :data:`MAX_PATH_SAMPLES` are selected.
    paths : pandas.DataFrame, optional
        The round's :data:`~alfaviz.schema.PATHS` frame.
    queried_ids : iterable of int, optional
        The round's batch (kept above the cap, coloured as selected).
    max_points : int
        Cap on the points handed to plotly (:func:`display_positions`).
    pca : bool
        Only changes the title: the coordinates are a PCA of the embeddings.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces in the order of :data:`TRACES`; every per-point array is numeric and 1-D.
    """
    q = np.asarray(list(queried_ids) if queried_ids is not None else [], dtype=np.int64)
    sel = np.asarray(list(selected), dtype=np.int64)
    pos = display_positions(
        samples, round=round, max_points=max_points, keep_ids=np.concatenate([q, sel])
    )
    spec = colour_spec(
        samples,
        colour_by,
        round=round,
        class_names=class_names,
        positions=pos,
        queried_ids=q,
    )
    ids = samples[schema.SAMPLE_ID].to_numpy()
    x = samples[schema.X].to_numpy(np.float32)
    y = samples[schema.Y].to_numpy(np.float32)
    shown = ids[pos]
    points = go.Scattergl(
        x=x[pos],
        y=y[pos],
        mode="markers",
        customdata=_ids_for_plotly(shown),
        hovertemplate="id %{customdata}<extra></extra>",
        marker={"size": 5, "opacity": 0.85, **spec.marker()},
        unselected={"marker": {"opacity": 0.25}},
        name="samples",
        showlegend=False,
    )
    order = np.argsort(ids, kind="stable")
    at, found = _lookup(ids[order], sel)
    rows = order[at[found]]
    ring = go.Scattergl(
        x=x[rows],
        y=y[rows],
        mode="markers",
        customdata=_ids_for_plotly(ids[rows]),
        hovertemplate="id %{customdata}<extra>selected</extra>",
        marker={"size": 12, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
        name="selection",
        showlegend=False,
    )
    drawn = sel if len(sel) <= MAX_PATH_SAMPLES else sel[:0]  # a large one is only ringed
    seg = path_segments(
        samples,
        anchors,
        paths if paths is not None else samples.iloc[:0],
        drawn,
        placed=not pca,
    )
    path_trace = go.Scattergl(
        x=seg["line_x"],
        y=seg["line_y"],
        mode="lines",
        line={"width": 1, "color": "rgba(60,60,60,0.6)"},
        hoverinfo="skip",
        name="paths",
        showlegend=False,
    )
    flip_trace = go.Scattergl(
        x=seg["flip_x"],
        y=seg["flip_y"],
        mode="markers",
        customdata=seg["flip_class"],
        hovertemplate="flips to class %{customdata}<extra></extra>",
        marker={"size": 9, "symbol": "diamond", "color": "#d62728"},
        name="flip points",
        showlegend=False,
    )
    fig = go.Figure([points, ring, path_trace, flip_trace, _anchor_trace(anchors, class_names)])
    fig.update_layout(
        title={
            "text": _title(round, spec.label, len(pos), len(samples), pca),
            "font": {"size": 12},
        },
        dragmode="lasso",
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"showgrid": False, "zeroline": False, "showticklabels": False},
        yaxis={"showgrid": False, "zeroline": False, "showticklabels": False},
        uirevision="alfaviz-embedding",
        height=520,
    )
    return fig


def pca_anchors(
    coords: pd.DataFrame, samples: pd.DataFrame, round: int, n_classes: int
) -> pd.DataFrame:
    """Anchors placed on PCA coordinates: the mean of each class's labelled points.

    PCA is linear, so this is exactly the projection of the anchor (the mean labelled
    embedding); a class without labelled samples gets the mean of all labelled points, as
    the method defines its anchor.
    """
    lab = _labelled(samples, round)
    label = samples[schema.LABEL].to_numpy()
    x = coords[schema.X].to_numpy(np.float64)
    y = coords[schema.Y].to_numpy(np.float64)
    rows_c, rows_x, rows_y = [], [], []
    if lab.any():
        mx, my = x[lab].mean(), y[lab].mean()
        for c in range(n_classes):
            m = lab & (label == c)
            rows_c.append(c)
            rows_x.append(x[m].mean() if m.any() else mx)
            rows_y.append(y[m].mean() if m.any() else my)
    return pd.DataFrame(
        {
            schema.ANCHOR_CLASS: np.asarray(rows_c, dtype=np.int32),
            schema.X: np.asarray(rows_x, dtype=np.float32),
            schema.Y: np.asarray(rows_y, dtype=np.float32),
        }
    )


# --------------------------------------------------------------------------------------------
# the view


@dataclass
class _Round:
    """What the view keeps of the round it shows (arrays only; the frames stay untouched)."""

    round: int
    samples: pd.DataFrame
    anchors: pd.DataFrame
    queried: np.ndarray  # int64 ids
    paths: pd.DataFrame
    pos: np.ndarray  # drawn rows
    shown_ids: np.ndarray  # int64, increasing
    sorted_ids: np.ndarray  # all ids, increasing
    sorted_rows: np.ndarray  # row of each sorted id
    x: np.ndarray  # float32, all rows
    y: np.ndarray
    pca: bool
    status: np.ndarray  # int32 status code of every row
    in_order: bool = False  # pos is every row in row order


def _order(ids: np.ndarray) -> np.ndarray:
    """``argsort(ids)``, skipped when the ids are already increasing (the usual case)."""
    if np.all(ids[1:] >= ids[:-1]):
        return np.arange(ids.size, dtype=np.int64)
    return np.argsort(ids, kind="stable")


class EmbeddingMap(View):
    """The stored 2-D map of ``state.round``: coloured, selectable and replayable.

    Observes ``round``, ``selected_ids``, ``colour_by``, ``hovered_id``, ``sweep_cap`` and
    ``data_version``; writes ``selected_ids`` (lasso, box, click or the batch button),
    ``focus_id`` (a click on one point, or a lasso that holds one), ``hovered_id`` (hover),
    ``round`` (its slider) and ``colour_by`` (its dropdown).

    While ``sweep_cap`` is set (the ε slider, :class:`~alfaviz.widgets._sweep.EpsilonSweep`),
    the points are coloured by that ε step's replayed candidate set (:data:`SWEEP_STATUS`)
    instead of ``colour_by``, and the legend says how many there are; ``None`` brings the
    colouring back. A run that cannot be replayed (another strategy, learned α) keeps its
    colouring. With the plotly renderer above its cap the sweep colours the drawn points.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional
    max_points : int, optional
        Cap on the points handed to plotly (default :data:`MAX_POINTS`); the scatter renderer
        draws every point.
    renderer : {"auto", "scatter", "plotly"}
        What draws the map (:data:`RENDERERS`).

    Attributes
    ----------
    renderer : str
        ``"scatter"`` or ``"plotly"``, as chosen.
    figure : plotly.graph_objects.FigureWidget
        With the plotly renderer: traces in the order of :data:`TRACES`.
    scatter : jscatter.Scatter
        With the scatter renderer: the jupyter-scatter plot (``scatter.widget`` is the
        anywidget); :attr:`canvas` is the :class:`~alfaviz.widgets._scatter.ScatterCanvas`.
    colour : ipywidgets.Dropdown
    slider : ipywidgets.IntSlider
    pca_button : ipywidgets.ToggleButton
    batch_button : ipywidgets.Button
        Selects the round's batch (CSS class ``alfaviz-embedding-batch``).
    details : ipywidgets.HTML
        Id, pseudo-label, flips and critical ε of the hovered sample.
    sweep : Sweep or None
        The ε sweep shown (``state.sweep_cap`` on the shown round), if any.
    """

    name = "embedding"
    css_class = "alfaviz-embedding"

    def __init__(
        self,
        state: Any,
        data: Any,
        *,
        errors: Any = None,
        max_points: int = MAX_POINTS,
        renderer: str = "auto",
    ):
        if renderer not in RENDERERS:
            raise ValueError(f"renderer must be one of {list(RENDERERS)}; got {renderer!r}.")
        if renderer == "auto":
            from alfaviz.widgets._scatter import available

            renderer = "scatter" if available() else "plotly"
        self.renderer = renderer
        self.max_points = int(max_points)
        self._view: _Round | None = None
        self._pca_cache: dict[int, pd.DataFrame] = {}
        self._rounds: dict[tuple[int, bool], _Round] = {}
        self._applied: ColourSpec | None = None
        self._flip_index: tuple[int, np.ndarray, pd.DataFrame] | None = None
        self.sweep: Sweep | None = None
        self._sweep_codes: np.ndarray | None = None
        super().__init__(state, data, errors=errors)

    @property
    def scatter(self) -> Any:
        """The jupyter-scatter plot of the points (scatter renderer only)."""
        return self.canvas.scatter

    # building ----------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        if self.renderer == "scatter":
            from alfaviz.widgets._scatter import ScatterCanvas

            self.canvas = ScatterCanvas(
                self._guard(self._on_canvas_select), self._guard(self._on_canvas_hover)
            )
            if self.data.n_rounds:
                self._view = self._load(self._round(), False)
        else:
            self.figure = figure_widget(self._initial_figure())
            pts = self.figure.data[TRACES["points"]]
            pts.on_selection(self._guard(self._on_selection))
            pts.on_hover(self._guard(self._on_hover))
            pts.on_click(self._guard(self._on_click))
            self.figure.data[TRACES["selection"]].on_hover(self._guard(self._on_hover))
        options = colour_options(self._view.samples if self._view else None)
        value = self.state.colour_by if self.state.colour_by in options else _STATUS
        self.colour = widgets.Dropdown(
            options=[(_option_label(o), o) for o in options],
            value=value,
            description="colour",
            layout=widgets.Layout(width="220px"),
        )
        self._dropdown_changed = self._guard(self._on_dropdown)
        self.colour.observe(self._dropdown_changed, names=["value"])
        n = max(self.data.n_rounds, 1)
        self.slider = widgets.IntSlider(
            value=self._round(),
            min=0,
            max=n - 1,
            description="round",
            disabled=self.data.n_rounds <= 1,
            continuous_update=False,
        )
        self.slider.observe(self._guard(self._on_slider), names=["value"])
        self.pca_button = widgets.ToggleButton(
            value=False,
            description="PCA view",
            tooltip="Project the round's stored embeddings with PCA: paths are straight there",
        )
        self.pca_button.observe(self._guard(self._on_pca), names=["value"])
        self.batch_button = widgets.Button(
            description="select batch",
            tooltip="Select the batch this round picked (the other views follow)",
        )
        self.batch_button.add_class("alfaviz-embedding-batch")
        self.batch_button.on_click(self._guard(self._on_batch))
        self.clear_button = widgets.Button(
            description="clear", tooltip="Clear the selection", layout={"width": "70px"}
        )
        self.clear_button.add_class("alfaviz-embedding-clear")
        self.clear_button.on_click(self._guard(lambda _: self.state.select(())))
        self.paths_button = widgets.Button(
            description="show paths",
            disabled=True,
            tooltip=f"Project the interpolation paths of the selected samples (at most "
            f"{MAX_PATH_SAMPLES}) toward every class anchor; the batch's are stored already",
        )
        self.paths_button.add_class("alfaviz-embedding-paths")
        self.paths_button.on_click(self._guard(self._on_paths))
        self.scores_button = widgets.Button(
            description="score others",
            tooltip="Score this round's pool with Entropy, Margin, BADGE, CoreSet, BALD and "
            "Random on the same model (recorded with the run), to colour the map by them",
        )
        self.scores_button.add_class("alfaviz-embedding-scores")
        self.scores_button.on_click(self._guard(self._on_scores))
        self.scores_thread: threading.Thread | None = None
        self.details = widgets.HTML("")
        self.details.add_class("alfaviz-embedding-details")
        self._observe(self._on_round, ["round"])
        self._observe(self._on_selected, ["selected_ids"])
        self._observe(self._on_colour, ["colour_by"])
        self._observe(self._on_hovered, ["hovered_id"])
        self._observe(self._on_data, ["data_version"])
        self._observe(self._on_sweep, ["sweep_cap"])
        if self.renderer == "scatter":
            if self._view is not None:
                self._draw(self._view, None)
            main: widgets.Widget = self.canvas.widget  # made from the first drawing
        else:
            main = self.figure
            if self.state.sweep_cap is not None and self._view is not None:
                with patch(self.figure):  # the pure figure knows no sweep: colour it now
                    self._patch_colour(self._view, self._colour_key(self._view.samples))
        bar = widgets.HBox(
            [self.colour, self.slider, self.pca_button, self.batch_button, self.clear_button,
             self.paths_button, self.scores_button],
            layout=widgets.Layout(flex_flow="row wrap"),
        )  # fmt: skip
        return widgets.VBox([bar, main, self.details])

    def _round(self) -> int:
        return min(int(self.state.round), max(self.data.n_rounds - 1, 0))

    def _load(self, round: int, pca: bool) -> _Round:
        hit = self._rounds.get((round, pca))
        sel = np.asarray(self.state.selected_ids, dtype=np.int64)
        if hit is not None and (
            len(hit.pos) == len(hit.samples) or np.isin(sel, hit.shown_ids).all()
        ):
            return hit
        s = self.data.samples(round)
        q = self.data.queried(round)[schema.SAMPLE_ID].to_numpy(np.int64)
        paths = self.data.paths(round)
        if pca:
            coords = self._pca(round, s)
            anchors = pca_anchors(coords, s, round, len(self.data.class_names))
            x = coords[schema.X].to_numpy(np.float32)
            y = coords[schema.Y].to_numpy(np.float32)
        else:
            anchors = self.data.anchor_points(round)
            x = s[schema.X].to_numpy(np.float32)
            y = s[schema.Y].to_numpy(np.float32)
        status = status_codes(s, round, q)
        if self.renderer == "scatter":  # every point that has a place on the map
            finite = np.isfinite(x) & np.isfinite(y)
            pos = display_positions(s, round=round, max_points=len(s), status=status)
            pos = pos if finite.all() else pos[finite[pos]]
        else:
            keep = np.concatenate([q, sel])
            pos = display_positions(
                s, round=round, max_points=self.max_points, keep_ids=keep, status=status
            )
        ids = s[schema.SAMPLE_ID].to_numpy(np.int64)
        order = _order(ids)
        self._rounds[(round, pca)] = out = _Round(
            round=round,
            samples=s,
            anchors=anchors,
            queried=q,
            paths=paths,
            pos=pos,
            shown_ids=ids[pos],
            sorted_ids=ids[order],
            sorted_rows=order,
            x=x,
            y=y,
            pca=pca,
            status=status,
            in_order=len(pos) == len(s) and bool(np.array_equal(pos, np.arange(len(s)))),
        )
        return out

    def _pca(self, round: int, samples: pd.DataFrame) -> pd.DataFrame:
        hit = self._pca_cache.get(round)
        if hit is not None:
            return hit
        emb_ids, matrix = self.data.experiment.store.read_embeddings(round)
        proj = pca_2d(matrix)
        emb_ids = np.asarray(emb_ids, dtype=np.int64)
        ids = samples[schema.SAMPLE_ID].to_numpy(np.int64)
        order = np.argsort(emb_ids, kind="stable")
        at, found = _lookup(emb_ids[order], ids)
        x = np.full(len(ids), np.nan, dtype=np.float32)
        y = np.full(len(ids), np.nan, dtype=np.float32)
        x[found] = proj[order[at[found]], 0]
        y[found] = proj[order[at[found]], 1]
        out = pd.DataFrame({schema.SAMPLE_ID: ids, schema.X: x, schema.Y: y})
        self._pca_cache[round] = out
        return out

    def _initial_figure(self) -> go.Figure:
        if self.data.n_rounds == 0:
            fig = go.Figure([go.Scattergl(mode="markers") for _ in range(4)] + [go.Scatter()])
            fig.update_layout(title={"text": "No round written yet", "font": {"size": 12}})
            return fig
        v = self._view = self._load(self._round(), False)
        frame = self._frame(v)
        return embedding_figure(
            frame,
            v.anchors,
            colour_by=self._colour_key(v.samples),
            class_names=self.data.class_names,
            round=v.round,
            selected=self.state.selected_ids,
            paths=v.paths,
            queried_ids=v.queried,
            max_points=self.max_points,
            pca=v.pca,
        )

    def _colour_key(self, samples: pd.DataFrame) -> str:
        c = self.state.colour_by
        return c if c in colour_options(samples) else _STATUS

    @staticmethod
    def _frame(v: _Round) -> pd.DataFrame:
        """The samples frame with the shown coordinates (a shallow copy when they differ)."""
        if not v.pca:
            return v.samples
        out = v.samples.copy(deep=False)
        out[schema.X] = v.x
        out[schema.Y] = v.y
        return out

    # patches -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        """One message per user action: plotly's ``batch_update`` or the canvas's held sync."""
        if self.renderer == "scatter":
            with self.canvas.hold_sync():
                yield
        else:
            with patch(self.figure):
                yield

    def _selected_rows(self, v: _Round) -> tuple[np.ndarray, np.ndarray]:
        sel = np.asarray(self.state.selected_ids, dtype=np.int64)
        at, found = _lookup(v.sorted_ids, sel)
        rows = v.sorted_rows[at[found]]
        shown_at, shown = _lookup(v.shown_ids, sel)
        return rows, shown_at[shown].astype(np.int32)

    def _patch_selection(self, v: _Round) -> None:
        rows, shown_at = self._selected_rows(v)
        ids = v.samples[schema.SAMPLE_ID].to_numpy(np.int64)
        sel = ids[rows]
        known = v.paths[schema.SAMPLE_ID].to_numpy(np.int64)
        missing = sel[~np.isin(sel, known)]
        self.paths_button.disabled = not (0 < len(sel) <= MAX_PATH_SAMPLES and missing.size)
        drawn = sel  # those with known paths get them: the batch's, or projected on demand
        xy = pd.DataFrame(
            {
                schema.SAMPLE_ID: ids[rows],
                schema.X: v.x[rows],
                schema.Y: v.y[rows],
                schema.PSEUDO_LABEL: v.samples[schema.PSEUDO_LABEL].to_numpy(np.int32)[rows],
            }
        )
        if len(sel) > MAX_PATH_SAMPLES:
            drawn = drawn[:0]
        seg = path_segments(xy, v.anchors, v.paths, drawn, placed=not v.pca)
        if self.renderer == "scatter":
            self.canvas.select(shown_at)
            names = _anchor_names(v.anchors, self.data.class_names)
            colours = _palette(len(self.data.class_names))
            cls = v.anchors[schema.ANCHOR_CLASS].to_numpy(np.int64)
            marks = [
                (float(ax), float(ay), name, colours[c] if 0 <= c < len(colours) else "#000000")
                for ax, ay, name, c in zip(
                    v.anchors[schema.X].to_numpy(np.float64),
                    v.anchors[schema.Y].to_numpy(np.float64),
                    names,
                    cls.tolist(),
                    strict=True,
                )
            ]
            self.canvas.overlay(marks, seg)
            return
        d = self.figure.data
        ring = d[TRACES["selection"]]
        ring.x, ring.y, ring.customdata = v.x[rows], v.y[rows], _ids_for_plotly(sel)
        # the rings alone mark the selection: setting ``selectedpoints`` on the big trace makes
        # plotly restyle every point (1.6 s at 50k in Chromium, against 0.3 s for the rings)
        d[TRACES["paths"]].x, d[TRACES["paths"]].y = seg["line_x"], seg["line_y"]
        flips = d[TRACES["flips"]]
        flips.x, flips.y, flips.customdata = seg["flip_x"], seg["flip_y"], seg["flip_class"]

    def _sweep_of(self, v: _Round) -> Sweep | None:
        """The ε sweep of ``state.sweep_cap`` on round ``v`` (None: none asked, or none
        possible for this run)."""
        cap = self.state.sweep_cap
        if cap is None:
            return None
        try:
            inputs = sweep_inputs(self.data, v.round)
        except AlfavizInputError:  # not replayable: the ε slider says why
            return None
        sweep = inputs.sweep(cap)
        self._sweep_codes = sweep_codes(inputs, sweep)
        return sweep

    def _spec(self, v: _Round, colour_by: str) -> ColourSpec:
        """The colouring drawn: the ε sweep while one is asked for, else ``colour_by``."""
        self.sweep = self._sweep_of(v)
        if self.sweep is not None and self._sweep_codes is not None:
            return sweep_spec(self._sweep_codes, self.sweep, v.pos)
        return colour_spec(
            v.samples,
            colour_by,
            round=v.round,
            class_names=self.data.class_names,
            positions=v.pos,
            queried_ids=v.queried,
            status=v.status,
        )

    @property
    def sweep_ids(self) -> np.ndarray:
        """Global ids the map colours as the ε sweep's candidates (empty without a sweep)."""
        v = self._view
        if self.sweep is None or self._sweep_codes is None or v is None:
            return np.zeros(0, dtype=np.int64)
        rows = np.flatnonzero(np.isin(self._sweep_codes, (2, 3)))
        return np.sort(v.samples[schema.SAMPLE_ID].to_numpy(np.int64)[rows])

    def _patch_colour(self, v: _Round, colour_by: str) -> None:
        """Recolour the points; only the colour array (and changed limits) when the colouring
        stays the same, since every plotly property set costs validation."""
        spec = self._spec(v, colour_by)
        title = _title(v.round, spec.label, len(v.pos), len(v.samples), v.pca)
        if self.renderer == "scatter":
            self.canvas.colour(spec, title)
            self._applied = spec
            return
        marker = self.figure.data[TRACES["points"]].marker
        last = self._applied
        if last is not None and last.colours == spec.colours == SWEEP_COLOURS:
            marker.color = spec.values  # another ε step: the codes and the legend's title
            marker.colorbar = spec.colorbar
        elif last is not None and last.label == spec.label:
            marker.color = spec.values
            if (last.cmin, last.cmax) != (spec.cmin, spec.cmax):
                marker.cmin, marker.cmax = spec.cmin, spec.cmax
            if last.colorbar != spec.colorbar:
                marker.colorbar = spec.colorbar
        else:
            marker.update(spec.marker())
        self._applied = spec
        if self.figure.layout.title.text != title:
            self.figure.layout.title.text = title

    def _draw(self, v: _Round, old: _Round | None) -> None:
        """Draw round ``v`` on the canvas or figure (``old`` is what was shown)."""
        colour_by = self._colour_key(v.samples)
        with self._batch():
            if self.renderer == "scatter":
                every = v.in_order  # every row drawn, in row order: no copy
                self.canvas.points(v.x if every else v.x[v.pos], v.y if every else v.y[v.pos])
                self._patch_colour(v, colour_by)
                self._patch_selection(v)
                return
            pts = self.figure.data[TRACES["points"]]
            pts.x, pts.y = v.x[v.pos], v.y[v.pos]
            if old is None or not np.array_equal(old.shown_ids, v.shown_ids):
                pts.customdata = _ids_for_plotly(v.shown_ids)
            self._patch_colour(v, colour_by)
            self._patch_selection(v)
            a = self.figure.data[TRACES["anchors"]]
            ax = v.anchors[schema.X].to_numpy(np.float32)
            ay = v.anchors[schema.Y].to_numpy(np.float32)
            if old is None or not (np.array_equal(a.x, ax) and np.array_equal(a.y, ay)):
                a.x, a.y, a.text = ax, ay, _anchor_names(v.anchors, self.data.class_names)

    def _redraw(self, *, pca: bool | None = None) -> None:
        """Show the round of the state (a new round, new data or the PCA toggle)."""
        if self.data.n_rounds == 0:
            return
        old = self._view
        v = self._load(self._round(), self.pca_button.value if pca is None else pca)
        self._draw(v, old)
        self._view = v
        self._sync_options(v.samples, self._colour_key(v.samples))
        self.slider.max = max(self.data.n_rounds - 1, 0)
        self.slider.disabled = self.data.n_rounds <= 1
        if self.slider.value != v.round:
            self.slider.value = v.round

    def _sync_options(self, samples: pd.DataFrame, value: str) -> None:
        options = colour_options(samples)
        if [o for _, o in self.colour.options] != options:
            self.colour.options = [(_option_label(o), o) for o in options]
        if self.colour.value != value:
            self.colour.value = value

    # state observers ---------------------------------------------------------------------
    def _on_round(self, change: dict[str, Any]) -> None:
        self._redraw()

    def _on_data(self, change: dict[str, Any]) -> None:
        self._pca_cache.clear()
        self._rounds.clear()
        self._flip_index = None
        self._redraw()

    def _on_selected(self, change: dict[str, Any]) -> None:
        v = self._view
        if v is None:
            return
        new = np.asarray(change["new"], dtype=np.int64)
        capped = self.renderer == "plotly" and len(v.pos) < len(v.samples)
        if capped and new.size and not np.isin(new, v.shown_ids).all():
            self._redraw()  # a capped map: bring the newly selected points in
            return
        with self._batch():
            self._patch_selection(v)

    def _on_colour(self, change: dict[str, Any]) -> None:
        v = self._view
        if v is None:
            return
        with self._batch():
            self._patch_colour(v, change["new"])
        self._sync_options(v.samples, change["new"])

    def _on_sweep(self, change: dict[str, Any]) -> None:
        v = self._view
        if v is None:
            return
        with self._batch():
            self._patch_colour(v, self._colour_key(v.samples))

    def _on_hovered(self, change: dict[str, Any]) -> None:
        self.details.value = self.details_html(change["new"])

    # widget events -----------------------------------------------------------------------
    def _on_dropdown(self, change: dict[str, Any]) -> None:
        self.state.colour_by = change["new"]

    def _on_slider(self, change: dict[str, Any]) -> None:
        self.state.round = int(change["new"])

    def _on_pca(self, change: dict[str, Any]) -> None:
        self.pca_button.description = "stored map" if change["new"] else "PCA view"
        self._redraw(pca=bool(change["new"]))

    def _on_paths(self, button: Any = None) -> None:
        """Ask the run for the paths of the selected samples that have none yet.

        The Experiment computes and stores them (a view never runs the model); its event
        bumps ``data_version`` and the map redraws with them.
        """
        v = self._view
        if v is None:
            return
        rows, _ = self._selected_rows(v)
        sel = v.samples[schema.SAMPLE_ID].to_numpy(np.int64)[rows]
        missing = sel[~np.isin(sel, v.paths[schema.SAMPLE_ID].to_numpy(np.int64))]
        if missing.size == 0 or len(sel) > MAX_PATH_SAMPLES:
            return
        before = self.state.data_version
        self.paths_button.disabled = True
        self.data.project_paths(missing.tolist(), v.round)
        if self.state.data_version == before:  # a RunData not attached to this state
            self._on_data({"new": before})

    def _on_scores(self, button: Any = None, *, wait: bool = False) -> None:
        """Ask the run to score the shown round with the other strategies, off the UI thread.

        The Experiment computes and records them; its ``scores`` event bumps
        ``data_version``, and the colour menu then lists ``score:<strategy>``.
        """
        v = self._view
        if v is None or (self.scores_thread is not None and self.scores_thread.is_alive()):
            return
        self.scores_button.disabled = True
        self.scores_button.description = "scoring…"
        r, before = v.round, self.state.data_version

        def work() -> None:
            try:
                self.data.compare_strategies(r)
                if self.state.data_version == before:  # a RunData not attached to this state
                    self._on_data({"new": before})
            except Exception as exc:
                self.errors.report(self.name, exc)
            finally:
                self.scores_button.disabled = False
                self.scores_button.description = "score others"

        self.scores_thread = threading.Thread(target=work, name="alfaviz-scores", daemon=True)
        self.scores_thread.start()
        if wait:
            self.scores_thread.join()

    def _on_batch(self, button: Any = None) -> None:
        """Select the round's batch, in pick order."""
        v = self._view
        if v is not None:
            self.state.select(v.queried)

    def _ids_at(self, point_inds: Sequence[int]) -> list[int]:
        v = self._view
        if v is None:
            return []
        idx = np.asarray(list(point_inds), dtype=np.int64)
        idx = idx[(idx >= 0) & (idx < v.shown_ids.size)]
        return v.shown_ids[idx].tolist()

    def _focus(self, ids: Sequence[int]) -> None:
        """One point picked (a click, or a lasso around one): explain it (``focus_id``)."""
        if len(ids) == 1:
            self.state.focus_id = int(ids[0])

    def _on_selection(self, trace: Any, points: Any, selector: Any = None) -> None:
        """Lasso or box on the points trace: select the global ids of the enclosed points."""
        ids = self._ids_at(points.point_inds)
        self.state.select(ids)
        self._focus(ids)

    def _on_click(self, trace: Any, points: Any, state: Any = None) -> None:
        """A click on a point: select it and explain it."""
        ids = self._ids_at(points.point_inds)
        if ids:
            self.state.select(ids[:1])
            self._focus(ids[:1])

    def _on_hover(self, trace: Any, points: Any, state: Any = None) -> None:
        if not points.point_inds:
            return
        i = int(points.point_inds[0])
        if trace is self.figure.data[TRACES["selection"]]:
            sid = int(np.asarray(trace.customdata)[i])
        else:
            ids = self._ids_at([i])
            if not ids:
                return
            sid = ids[0]
        self.state.hovered_id = sid

    def _on_canvas_select(self, positions: np.ndarray) -> None:
        """A lasso or click on the canvas: select the global ids of those points (one point
        clicked is explained too)."""
        ids = self._ids_at(positions)
        self.state.select(ids)
        self._focus(ids)

    def _on_canvas_hover(self, position: int | None) -> None:
        if position is None:
            return
        ids = self._ids_at([position])
        if ids:
            self.state.hovered_id = ids[0]

    # hover details -----------------------------------------------------------------------
    def _flips_of(self, sid: int) -> pd.DataFrame:
        v = self._view
        assert v is not None
        if self._flip_index is None or self._flip_index[0] != v.round:
            f = self.data.flips(v.round)
            ids = f[schema.SAMPLE_ID].to_numpy(np.int64)
            order = np.argsort(ids, kind="stable")
            self._flip_index = (v.round, ids[order], f.iloc[order])
        _, ids, f = self._flip_index
        lo, hi = np.searchsorted(ids, sid, "left"), np.searchsorted(ids, sid, "right")
        return f.iloc[lo:hi]

    def details_html(self, sample_id: int | None) -> str:
        """Id, pseudo-label, true label, flips and critical ε of ``sample_id`` (HTML)."""
        v = self._view
        if sample_id is None or v is None:
            return ""
        at, found = _lookup(v.sorted_ids, np.asarray([sample_id], dtype=np.int64))
        if not found[0]:
            return f"id {int(sample_id)}: not in round {v.round}"
        row = v.samples.iloc[int(v.sorted_rows[at[0]])]
        names = self.data.class_names

        def cname(c: Any) -> str:
            c = int(c)
            return html.escape(str(names[c])) if 0 <= c < len(names) else "—"

        f = self._flips_of(int(sample_id))
        flipped = f[f[schema.FLIPPED].to_numpy(bool)]
        targets = sorted({int(c) for c in flipped[schema.FLIP_TO].to_numpy()})
        eps = float(row[schema.CRITICAL_EPS])
        eps_text = f"{eps:.3g}" if np.isfinite(eps) else "∞"
        status = STATUS[int(status_codes(v.samples.iloc[[at[0]]], v.round, v.queried)[0])]
        flips_text = f"{int(row[schema.INCONSISTENCY])}"
        if targets:
            flips_text += " → " + ", ".join(cname(c) for c in targets)
        return (
            f"<b>id {int(sample_id)}</b> · {status} · pseudo-label "
            f"{cname(row[schema.PSEUDO_LABEL])} · true {cname(row[schema.TRUE_LABEL])} · "
            f"flips {flips_text} · critical ε {eps_text}"
        )
