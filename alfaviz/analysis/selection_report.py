"""A self-contained, offline HTML report of one round's selection.

:func:`export_report` writes one HTML file that shows, for a round of a run:

- a header (run directory, data, strategy, round, budget, ALFA-Mix's stopping level ε, the
  candidate set, test accuracy, the date written);
- the round's batch as a grid of cards, one per pick (CSS class ``alfaviz-report-pick``,
  attribute ``data-sample-id``): its thumbnail (image data, as a PNG ``data:`` URI) or a
  feature sparkline and table (tabular data), and the reason it was picked, from
  :func:`~alfaviz.analysis.explain.explain_frames` (the anchors whose mixing flips it with
  their critical ε and the label before → after, the k-means cluster and its size or the
  random fill, its history in the pool, who labelled it, its rank under other strategies)
  and :func:`~alfaviz.analysis.hypothesis.explain_round` (what its label says);
- the inconsistency heatmap of the batch, the learning curve, and the label outcomes
  (:func:`~alfaviz.analysis.hypothesis.hypothesis_rates`) as a chart and a table.

The file needs no network: plotly.js is inlined once, the figures are drawn from inline JSON,
thumbnails are ``data:`` URIs and no font, stylesheet or script is fetched. Every piece of
text that comes from the run (paths, class names, strategy names) is HTML-escaped.

Importing this module loads no GUI library: plotly and the figure builders of
:mod:`alfaviz.widgets` are imported when :func:`export_report` runs (they need the
``alfaviz[widgets]`` extra).
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.analysis.hypothesis import DATASET_SOURCE
from alfaviz.errors import AlfavizInputError

__all__ = ["PICK_CLASS", "default_report_path", "export_report", "png_data_uri"]

log = logging.getLogger(__name__)

PICK_CLASS = "alfaviz-report-pick"
"""CSS class of each pick's card (with ``data-sample-id``)."""

_THUMB_MAX = 128
"""Thumbnails larger than this (pixels, either side) are downsampled before encoding."""

_SPARK_MAX = 64
"""Most features drawn in a tabular pick's sparkline."""

_OUTCOME_TEXT = {
    "pseudo_label": "pseudo-label",
    "flip_target": "flip target",
    "neither": "neither",
    "unlabelled": "no label yet",
}
_OUTCOME_COLOURS = {"pseudo_label": "#7f7f7f", "flip_target": "#2ca02c", "neither": "#d62728"}
_PRINT_JS = (
    "(function(){function fit(){document.querySelectorAll('.js-plotly-plot').forEach("
    "function(g){try{Plotly.Plots.resize(g);}catch(e){}});}"
    "window.addEventListener('beforeprint',fit);window.addEventListener('afterprint',fit);})();"
)
"""Redraws the figures at the printed page's width (plotly sizes them for the window)."""
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


# ---- small pieces -----------------------------------------------------------------------
def _e(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _png(pixels: np.ndarray) -> bytes:
    """A PNG file of ``pixels`` (uint8, (H, W) grey or (H, W, 3) RGB), written with zlib."""
    if pixels.ndim == 2:
        colour, rows = 0, pixels
    else:
        colour, rows = 2, pixels.reshape(pixels.shape[0], -1)
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + bytes(r) for r in np.ascontiguousarray(rows, dtype=np.uint8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def png_data_uri(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of one image.

    Parameters
    ----------
    pixels : numpy.ndarray of uint8, shape (H, W) or (H, W, 3)
        Larger images are downsampled (by striding) to at most 128 pixels a side.

    Returns
    -------
    str
    """
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise AlfavizInputError(
            f"pixels must have shape (H, W) or (H, W, 3); got {tuple(a.shape)}."
        )
    step = max(1, math.ceil(max(a.shape[:2]) / _THUMB_MAX))
    a = np.ascontiguousarray(a[::step, ::step]).astype(np.uint8, copy=False)
    return "data:image/png;base64," + base64.b64encode(_png(a)).decode("ascii")


def _fmt(v: Any, spec: str = ".3g") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(f):
        return "–" if math.isnan(f) else ("∞" if f > 0 else "−∞")
    return format(f, spec)


def _int_or(v: Any, default: int = -1) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


# ---- input checks ------------------------------------------------------------------------
def _check_path(path: Any) -> Path | None:
    if path is None:
        return None
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise AlfavizInputError(
            f"path must be a file name (str or Path) such as 'report.html'; got "
            f"{type(path).__name__}."
        )
    p = Path(path).expanduser()
    if str(path) == "" or p.is_dir():
        raise AlfavizInputError(
            f"path={str(path)!r} is a directory; give a file name such as "
            f"{str(p / 'report.html')!r}."
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AlfavizInputError(
            f"path={str(path)!r}: the folder {str(parent)!r} does not exist; create it first "
            "or write the report elsewhere."
        )
    return p


def _open(run: Any) -> Any:
    from alfaviz.session import Experiment, open_run

    if isinstance(run, (str, os.PathLike)) and not isinstance(run, bool):
        return open_run(Path(run))
    if not isinstance(run, Experiment):
        raise AlfavizInputError(
            f"run must be an Experiment or a run directory (str or Path); got {type(run).__name__}."
        )
    return run


def _check_round(rounds: pd.DataFrame, round: Any, run: Any) -> int:
    if rounds.empty:
        raise AlfavizInputError(
            f"run {run.path}: no round has been written yet, so there is no selection to "
            "report; run exp.step() (or `alfaviz run`) first."
        )
    written = sorted(set(rounds[schema.ROUND].astype(int).tolist()))
    if round is None:
        return written[-1]
    if isinstance(round, bool) or not isinstance(round, (int, np.integer)):
        raise AlfavizInputError(f"round must be an integer or None (latest); got {round!r}.")
    if int(round) not in written:
        raise AlfavizInputError(
            f"round={int(round)}: not written in run {run.path}; written rounds: {written}."
        )
    return int(round)


def _span(rounds: pd.DataFrame) -> str:
    r = sorted(set(rounds[schema.ROUND].astype(int).tolist()))
    return f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0])


def default_report_path(run_dir: str | os.PathLike[str], round: int) -> Path:
    """Where ``alfaviz report`` writes by default: ``<run_dir>/report_round_<round>.html``."""
    return Path(run_dir) / f"report_round_{int(round)}.html"


# ---- the facts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pick:
    sample_id: int
    order: int
    explanation: Any  # Explanation
    row: dict[str, Any]  # its explain_round row (may be empty)
    thumb: str  # HTML of the thumbnail or the feature summary


def _thumbs_html(data: Any, ids: np.ndarray) -> list[str]:
    """Per id, an ``<img>`` (image data) or a sparkline and feature table (tabular data)."""
    if ids.size == 0:
        return []
    pixels = data.images(ids) if getattr(data, "is_image", False) else None
    if pixels is not None:
        small = max(pixels.shape[1:3]) < 48  # digits: draw the pixels as blocks
        style = ' style="image-rendering: pixelated"' if small else ""
        return [
            f'<img class="thumb" alt="sample {int(i)}" src="{png_data_uri(p)}"{style}>'
            for i, p in zip(ids.tolist(), pixels, strict=True)
        ]
    x = np.asarray(data.inputs(ids), dtype=np.float64).reshape(len(ids), -1)
    names = list(data.meta.get("feature_names") or [])
    if len(names) != x.shape[1]:
        names = [f"x{j}" for j in range(x.shape[1])]
    return [_features_html(row, names) for row in x]


def _features_html(x: np.ndarray, names: Sequence[str]) -> str:
    """A bar sparkline of the (standardised) features and the six furthest from zero."""
    v = np.nan_to_num(x[:_SPARK_MAX], nan=0.0)
    top = max(float(np.abs(v).max()) if v.size else 0.0, 1e-12)
    w, h = 160, 40
    bw = w / max(v.size, 1)
    bars = []
    for j, val in enumerate(v.tolist()):
        bh = abs(val) / top * (h / 2 - 1)
        y = h / 2 - bh if val >= 0 else h / 2
        fill = "#1f77b4" if val >= 0 else "#ff7f0e"
        bars.append(
            f'<rect x="{j * bw:.2f}" y="{y:.2f}" width="{max(bw - 0.5, 0.5):.2f}" '
            f'height="{max(bh, 0.5):.2f}" fill="{fill}"/>'
        )
    svg = (
        f'<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="feature values"><line x1="0" x2="{w}" y1="{h / 2}" y2="{h / 2}" '
        f'stroke="#bbb" stroke-width="0.5"/>{"".join(bars)}</svg>'
    )
    order = np.argsort(-np.abs(np.nan_to_num(x, nan=0.0)), kind="stable")[:6]
    rows = "".join(
        f"<tr><td>{_e(names[j])}</td><td class='num'>{_fmt(x[j])}</td></tr>" for j in order
    )
    return f'<div class="features">{svg}<table class="feat">{rows}</table></div>'


# ---- HTML sections -----------------------------------------------------------------------
def _name(names: Sequence[str], c: int) -> str:
    return _e(names[c]) if 0 <= c < len(names) else _e(c)


def _reason_html(e: Any, strategy: str, own_rank: str) -> str:
    """The reason a pick was made, as a few readable lines."""
    names = e.class_names
    parts: list[str] = []
    if e.picked_by == "fill":
        parts.append(
            '<p class="why"><span class="tag fill">random fill</span> drawn at random: k-means '
            "gave fewer clusters than the budget.</p>"
        )
    elif e.picked_by == "k-means":
        parts.append(
            f'<p class="why"><span class="tag kmeans">k-means</span> representative of '
            f"cluster <b>{_e(e.cluster)}</b> ({_e(e.cluster_size)} candidates).</p>"
        )
    else:
        parts.append(
            f'<p class="why"><span class="tag score">{_e(strategy)}</span> picked for its '
            f"score{own_rank}.</p>"
        )
    if e.flips:
        groups: dict[tuple[int, int], list[Any]] = {}
        for f in e.flips:  # smallest critical ε first
            groups.setdefault((f.label_before, f.label_after), []).append(f)
        lines = []
        for (before, after), fs in groups.items():
            chips = "".join(
                f'<span class="anc" title="anchor class {_name(names, f.anchor_class)}, '
                f'critical ε {_fmt(f.critical_eps)}"><b>{_name(names, f.anchor_class)}</b> '
                f"ε {_fmt(f.critical_eps, '.2g')}</span>"
                for f in fs
            )
            lines.append(
                f'<div class="flipgroup"><span class="arrow">{_name(names, before)} → '
                f"<b>{_name(names, after)}</b></span> {chips}</div>"
            )
        n = len(e.flips)
        parts.append(
            f'<div class="flips"><p class="small">Mixing toward {n} anchor class'
            f"{'es' if n != 1 else ''} flips it:</p>{''.join(lines)}"
            f'<p class="small">Step toward the first: ‖α ⊙ Δ‖ = {_fmt(e.step_norm)}.</p></div>'
        )
    else:
        parts.append('<p class="small">No anchor flips it at any ε the round tried.</p>')
    if e.history:
        steps: list[str] = []
        for h in e.history:
            if h.selected:
                cls, what = "picked", "fill" if h.fill else "picked"
            elif h.candidate:
                cls, what = "cand", "candidate"
            else:
                cls, what = "pool", "pool"
            title = (
                f"round {h.round}: {what}, inconsistency {h.inconsistency}, "
                f"ε {_fmt(h.critical_eps)}"
            )
            steps.append(f'<span class="chip {cls}" title="{_e(title)}">r{h.round} {what}</span>')
        first = (
            f" First a candidate in round {_e(e.first_candidate_round)}."
            if e.first_candidate_round is not None
            else ""
        )
        parts.append(f'<p class="history">{"".join(steps)}</p>')
        if first:
            parts.append(f'<p class="small">{first.strip()}</p>')
    labels = [ev for ev in e.labels if ev.action in ("label", "skip")]
    if labels:
        txt = "; ".join(
            (f"labelled <b>{_name(names, ev.label)}</b>" if ev.action == "label" else "skipped")
            + f" by {_e(ev.source)} (round {ev.round})"
            for ev in labels
        )
        parts.append(f'<p class="small">{txt[:1].upper()}{txt[1:]}.</p>')
    others = [r for r in e.other_strategies if r.strategy != strategy]
    if others:
        items = ", ".join(
            f"<b>{_e(r.strategy)}</b> "
            + ("gives no score" if r.rank is None else f"#{r.rank:,} of {r.of:,}")
            + (" (picked it too)" if r.picked else "")
            for r in others
        )
        parts.append(f'<p class="others">Other strategies\' ranks: {items}.</p>')
    return "".join(parts)


def _outcome_html(e: Any, row: dict[str, Any]) -> str:
    names = e.class_names
    model = f"model says <b>{_name(names, e.pseudo_label)}</b>"
    if not row:
        return f'<p class="verdict">{model}</p>'
    label = _int_or(row.get(schema.LABEL))
    source = str(row.get(schema.SOURCE, ""))
    outcome = str(row.get(schema.OUTCOME, "unlabelled"))
    if label < 0:
        lab = "no label yet"
    else:
        src = "dataset label" if source == DATASET_SOURCE else f"by {_e(source)}"
        lab = f"label <b>{_name(names, label)}</b> <span class='small'>({src})</span>"
    chip = f'<span class="outcome {_e(outcome)}">{_e(_OUTCOME_TEXT.get(outcome, outcome))}</span>'
    return f'<p class="verdict">{model} · {lab} {chip}</p>'


def _card_html(p: _Pick, strategy: str, own_rank: str) -> str:
    e = p.explanation
    return (
        f'<article class="{PICK_CLASS}" data-sample-id="{int(p.sample_id)}">'
        f'<header><span class="order">#{p.order + 1}</span> sample '
        f"<b>{int(p.sample_id)}</b></header>"
        f'<div class="card-body"><div class="thumbbox">{p.thumb}</div>'
        f'<div class="reason">{_outcome_html(e, p.row)}'
        f"{_reason_html(e, strategy, own_rank)}</div></div></article>"
    )


def _fig_html(fig: Any, div_id: str, height: int | None = None) -> str:
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            config=_PLOT_CONFIG,
            div_id=div_id,
            default_height=f"{height}px" if height else "100%",
            validate=False,
        )
    )


def _hypothesis_figure(rates: pd.DataFrame) -> Any:
    """Stacked shares of pseudo-label / flip target / neither per (round, strategy)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    x = [
        [f"round {int(r)}" for r in rates[schema.ROUND]],
        [str(s) for s in rates[schema.STRATEGY]],
    ]
    for o in schema.OUTCOMES:
        fig.add_trace(
            go.Bar(
                x=x,
                y=rates[schema.RATE_PREFIX + o].to_numpy(np.float64),
                customdata=rates[schema.N_OUTCOME_PREFIX + o].to_numpy(np.int64),
                name=_OUTCOME_TEXT[o],
                marker_color=_OUTCOME_COLOURS[o],
                hovertemplate="%{x}<br>" + _OUTCOME_TEXT[o] + ": %{y:.0%} (%{customdata})"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        title={"text": "What the picks' labels say", "font": {"size": 14}},
        yaxis={"title": {"text": "share of labelled picks"}, "tickformat": ".0%",
               "range": [0, 1]},
        height=340,
        margin={"l": 60, "r": 10, "t": 40, "b": 70},
        legend={"orientation": "h", "y": 1.0, "x": 1.0, "xanchor": "right", "yanchor": "bottom",
                "traceorder": "normal"},
        template="plotly_white",
        font={"size": 13},
    )  # fmt: skip
    return fig


def _hypothesis_table(rates: pd.DataFrame, r: int) -> str:
    head = "".join(f"<th>{_e(_OUTCOME_TEXT[o])}</th>" for o in schema.OUTCOMES)
    rows = []
    for _, row in rates.iterrows():
        cls = ' class="this"' if int(row[schema.ROUND]) == r else ""
        cells = "".join(
            f"<td class='num'>{int(row[schema.N_OUTCOME_PREFIX + o])} "
            f"<span class='small'>({_fmt(row[schema.RATE_PREFIX + o], '.0%')})</span></td>"
            for o in schema.OUTCOMES
        )
        rows.append(
            f"<tr{cls}><td>{int(row[schema.ROUND])}</td><td>{_e(row[schema.STRATEGY])}</td>"
            f"<td class='num'>{int(row[schema.N_PICKED])}</td>"
            f"<td class='num'>{int(row[schema.N_LABELLED])}</td>{cells}</tr>"
        )
    return (
        '<table class="rates"><thead><tr><th>round</th><th>strategy</th><th>picked</th>'
        f"<th>labelled</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_CSS = """
:root { --ink:#222; --muted:#666; --line:#ddd; --bg:#fafafa; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid
  var(--line); }
p { margin: 6px 0; }
.lead { color: var(--muted); margin: 4px 0 10px; max-width: 900px; }
.meta { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr));
  gap: 6px 18px; margin: 14px 0 0; padding: 12px 14px; background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; }
.meta div { min-width: 0; }
.meta dt { font-size: 13px; color: var(--muted); }
.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
  gap: 14px; }
.alfaviz-report-pick { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  background: #fff; break-inside: avoid; page-break-inside: avoid; }
.alfaviz-report-pick > header { font-size: 15px; margin-bottom: 6px; }
.order { display: inline-block; min-width: 2.2em; color: var(--muted); }
.card-body { display: flex; gap: 12px; align-items: flex-start; }
.thumbbox { flex: 0 0 auto; }
.thumb { width: 96px; height: 96px; object-fit: contain; border: 1px solid var(--line);
  background: #000; display: block; }
.reason { flex: 1 1 auto; min-width: 0; font-size: 14px; }
.verdict { margin-top: 0; }
.why { margin: 4px 0; }
.small { font-size: 13px; color: var(--muted); }
.tag { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--accent); }
.tag.fill { background: #8c564b; }
.tag.score { background: #555; }
.outcome { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px;
  font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.outcome.flip_target { color: #1d7a1d; } .outcome.pseudo_label { color: #555; }
.outcome.neither { color: #b22222; } .outcome.unlabelled { color: #999; }
table { border-collapse: collapse; }
.flips { margin: 6px 0; }
.flipgroup { margin: 3px 0; line-height: 1.8; }
.arrow { display: inline-block; min-width: 3.2em; margin-right: 4px; }
.anc { display: inline-block; font-size: 12px; padding: 0 5px; margin: 0 3px 0 0;
  border-radius: 4px; background: #eef3f9; border: 1px solid #cddbec; white-space: nowrap;
  line-height: 1.5; font-variant-numeric: tabular-nums; }
.feat { font-size: 13px; margin: 4px 0; }
.feat td { padding: 1px 8px 1px 0; text-align: left; border-bottom: 1px solid #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.history { margin: 6px 0 2px; line-height: 1.9; }
.chip { display: inline-block; font-size: 12px; padding: 0 6px; margin-right: 4px;
  border-radius: 10px; border: 1px solid var(--line); background: var(--bg); }
.chip.cand { background: #fff3d6; border-color: #e6c36a; }
.chip.picked { background: #d9ecff; border-color: #7fb0e6; font-weight: 600; }
.others { font-size: 13px; color: var(--muted); }
.features { width: 160px; }
.spark { display: block; border: 1px solid var(--line); background: var(--bg); }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 6px; margin: 8px 0; }
.rates { font-size: 14px; margin: 10px 0; }
.rates th, .rates td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; }
.rates tr.this td { background: #f1f6fc; font-weight: 600; }
.note { background: var(--bg); border-left: 4px solid var(--accent); padding: 8px 12px;
  max-width: 900px; }
footer { margin-top: 36px; font-size: 12px; color: var(--muted); }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  .figure { break-inside: avoid; overflow: hidden; }
  .grid { grid-template-columns: repeat(2, 1fr); }
}
"""


def _header_html(run: Any, r: int, rounds: pd.DataFrame, n_picks: int, when: str) -> str:
    this = rounds[rounds[schema.ROUND].astype(int) == r].iloc[0]
    nxt = rounds[rounds[schema.ROUND].astype(int) == r + 1]
    data = run.data
    level = float(this[schema.LEVEL])
    acc = _fmt(this[schema.ACCURACY], ".3f")
    if len(nxt):
        acc += f" (with this batch, round {r + 1}: {_fmt(nxt.iloc[0][schema.ACCURACY], '.3f')})"
    strategy = str(this[schema.STRATEGY]) or str(run.strategy.name)
    items = [
        ("run", str(run.path)),
        ("data", f"{data.name} ({data.n_train:,} pool / {data.n_test:,} test, "
                 f"{data.n_classes} classes)"),
        ("strategy", strategy),
        ("round", f"{r} (written: {_span(rounds)})"),
        ("budget", f"{int(this[schema.BUDGET])} ({n_picks} picked)"),
        ("labelled before the round", f"{int(this[schema.N_LABELLED]):,}"),
        ("stopping level ε", _fmt(level) if math.isfinite(level) else "– (not ALFA-Mix)"),
        ("candidates", f"{int(this[schema.N_CANDIDATES]):,} (k-means {int(this[schema.N_KMEANS])}"
                       f", fill {int(this[schema.N_FILL])})" if math.isfinite(level)
                       else "– (not ALFA-Mix)"),
        ("test accuracy", acc),
        ("seed", str(run.seed)),
        ("written", when),
    ]  # fmt: skip
    meta = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return (
        f'<header class="alfaviz-report-header"><h1>Selection report · round {r}</h1>'
        f'<p class="lead">Which samples {_e(strategy)} asked to label in round {r} of this run, '
        "and why. Written by alfaviz; the file is self-contained and works offline.</p>"
        f'<dl class="meta">{meta}</dl></header>'
    )


def _own_ranks(samples_r: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """Rank (1 = best) of every unlabelled sample under the run's own score, and the pool size."""
    lr = samples_r[schema.LABELLED_ROUND].to_numpy()
    rr = samples_r[schema.ROUND].to_numpy()
    pool = samples_r[~((lr >= 0) & (lr <= rr))]
    s = pool[schema.SCORE].to_numpy(np.float64)
    if not np.isfinite(s).any():
        return {}
    ids = pool[schema.SAMPLE_ID].to_numpy(np.int64)
    ranks = (-np.nan_to_num(s, nan=-np.inf)).argsort(kind="stable").argsort() + 1
    return {int(i): (int(k), len(ids)) for i, k in zip(ids, ranks, strict=True)}


def _batch_section(cards: str, n: int, n_fill: int, strategy: str, alfamix: bool) -> str:
    if alfamix:
        lead = (
            "One card per pick, in pick order. <b>k-means</b>: the candidate closest to the "
            "centre of its cluster of candidates (samples whose prediction flips when their "
            "features are mixed toward another class's anchor); <b>random fill</b>: drawn at "
            "random when there were fewer clusters than the budget. Under <i>mixing flips "
            "it</i>, <b>5 → 9</b> reads: the model says 5, and once mixed it says 9; each box "
            "names an anchor class whose mix does it and its critical ε, the smallest mixing "
            f"step that flips it. {n_fill} of {n} picks came from the fill."
        )
    else:
        lead = (
            f"One card per pick, in pick order: the samples {_e(strategy)} scored highest "
            "(their rank in the unlabelled pool is given). Where the run recorded ALFA-Mix's "
            "flips for them, the anchors that flip them are listed too."
        )
    return (
        f'<section id="batch"><h2>The batch: {n} picks</h2><p class="lead">{lead}</p>'
        f'<div class="grid">{cards}</div></section>'
    )


def _heatmap_section(fig: Any, level: float, has_eps: bool) -> str:
    head = '<section id="heatmap"><h2>Inconsistency of the batch</h2>'
    if not has_eps:
        return (
            f'{head}<p class="lead">No pick flips toward any anchor at any ε (or the strategy '
            "records no flips), so there is no inconsistency heatmap to draw.</p></section>"
        )
    above = (
        f" Cells above the stopping level ε = {_fmt(level)} did not flip in this round."
        if math.isfinite(level)
        else ""
    )
    return (
        f'{head}<p class="lead">Rows: the picks; columns: the anchor class mixed toward; '
        "colour: the critical ε of the pair (yellow flips at the smallest step, dark purple "
        f"needs a large one, blank never flips).{above}</p>"
        f'<div class="figure">{_fig_html(fig, "alfaviz-report-heatmap")}</div></section>'
    )


def _curve_section(fig: Any) -> str:
    return (
        '<section id="curve"><h2>Learning curve</h2><p class="lead">Test accuracy after each '
        "round's training, against the labelled samples it was trained on; the dotted line "
        "marks this round.</p>"
        f'<div class="figure">{_fig_html(fig, "alfaviz-report-curve")}</div></section>'
    )


def _outcomes_section(rates: pd.DataFrame, r: int, baseline: str | None) -> str:
    compared = (
        f"The picks <b>{_e(baseline)}</b> makes on the same model and pool are shown for "
        "comparison (with their dataset labels where nobody labelled them). "
        if baseline
        else ""
    )
    body = (
        f'<div class="figure">{_fig_html(_hypothesis_figure(rates), "alfaviz-report-outcomes")}'
        f"</div>{_hypothesis_table(rates, r)}"
        if len(rates)
        else '<p class="small">No pick has a known label yet.</p>'
    )
    return (
        '<section id="outcomes"><h2>Label outcomes</h2><p class="note">ALFA-Mix\'s '
        "hypothesis: a sample whose prediction flips when its features are mixed toward class c "
        "has features the model does not recognise yet. Once it is labelled, <b>flip target</b> "
        "means the label is a class the mixing flipped it to (the flip pointed at the truth), "
        "<b>pseudo-label</b> means the model was right already (the pick taught it little new), "
        f"and <b>neither</b> means the label is another class. {compared}</p>{body}</section>"
    )


# ---- the report --------------------------------------------------------------------------
def export_report(
    run: Any,
    round: int | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    baseline: str | None = "entropy",
) -> Path:
    """Write a self-contained HTML report of one round's selection.

    Parameters
    ----------
    run : Experiment, or str or Path
        A live :class:`~alfaviz.session.Experiment`, or a run directory (opened with
        :func:`~alfaviz.session.open_run`; nothing in it is changed except, where it is
        writable, the baseline's recorded scores, as :func:`explain_round` records them).
    round : int, optional
        A written round; the latest by default.
    path : str or Path, optional
        The HTML file to write (replaced if it exists); by default
        ``<run directory>/report_round_<round>.html``.
    baseline : str or None
        A strategy whose picks on the same model and pool are explained beside the run's own
        in the label-outcome chart (:func:`~alfaviz.analysis.hypothesis.hypothesis_rates`);
        ``None`` for the run's own picks only. Ignored when it is the run's own strategy.

    Returns
    -------
    pathlib.Path
        The file written: one HTML page holding plotly.js once, the figures as inline JSON
        and the thumbnails as ``data:`` URIs; it loads nothing from the network.

    Raises
    ------
    AlfavizInputError
        For a run that is neither an Experiment nor a directory, a run with no round
        written, a round not written, a path that is a directory or whose folder is missing,
        or a file that cannot be written.
    RunStoreError
        If the run directory is missing or damaged.
    """
    out = _check_path(path)
    if baseline is not None and not isinstance(baseline, str):
        raise AlfavizInputError(f"baseline must be a strategy name or None; got {baseline!r}.")
    run = _open(run)
    rounds = run.rounds
    r = _check_round(rounds, round, run)
    if out is None:
        out = default_report_path(run.path, r)
    try:
        import plotly.offline as po
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise AlfavizInputError(
            "export_report needs plotly, from the widgets extra: pip install 'alfaviz[widgets]'"
        ) from exc
    from alfaviz.analysis.explain import explain_frames
    from alfaviz.analysis.hypothesis import explain_round, hypothesis_rates
    from alfaviz.widgets._curve import curve_figure
    from alfaviz.widgets._heatmap import MAX_ROWS, heatmap_figure

    own = str(run.strategy.name)
    base = None if baseline is None or _norm(baseline) == _norm(own) else baseline
    # explain_round first: it records the baseline's scores, which explain's ranks then show
    why = explain_round(run, r, baseline=base)
    mine = why[why[schema.STRATEGY].astype(str) == own].sort_values(schema.ORDER, kind="stable")
    samples = run.samples
    in_round = samples[schema.ROUND].to_numpy() == r
    samples_r = samples[in_round]
    if len(mine):
        ids = mine[schema.SAMPLE_ID].to_numpy(np.int64)
    else:
        ids = samples_r[samples_r[schema.SELECTED].to_numpy(bool)][schema.SAMPLE_ID].to_numpy(
            np.int64
        )
    # only what explain_frames reads for these ids: the round's pool, and the picks elsewhere
    sub = samples[in_round | np.isin(samples[schema.SAMPLE_ID].to_numpy(np.int64), ids)]
    flips = run.flips
    flips_r = flips[flips[schema.ROUND].to_numpy() == r]
    flips_ids = flips_r[np.isin(flips_r[schema.SAMPLE_ID].to_numpy(np.int64), ids)]
    log_ = run.label_log
    if len(log_):
        log_ = log_[np.isin(log_[schema.SAMPLE_ID].to_numpy(np.int64), ids)]
    scores = run.round_scores(r)
    names = tuple(str(c) for c in run.data.class_names)
    rows = {int(x[schema.SAMPLE_ID]): dict(x) for _, x in mine.iterrows()}
    thumbs = _thumbs_html(run.data, ids)
    picks = [
        _Pick(
            sample_id=int(sid),
            order=k,
            explanation=explain_frames(sub, flips_ids, log_, scores, int(sid), r,
                                       class_names=names),
            row=rows.get(int(sid), {}),
            thumb=thumbs[k],
        )
        for k, sid in enumerate(ids.tolist())
    ]  # fmt: skip
    ranks = _own_ranks(samples_r)

    def own_rank(sid: int) -> str:
        if sid not in ranks:
            return ""
        k, n = ranks[sid]
        return f" (#{k:,} of {n:,})"

    cards = "".join(_card_html(p, own, own_rank(p.sample_id)) for p in picks)
    n_fill = sum(p.explanation.picked_by == "fill" for p in picks)
    heat = heatmap_figure(
        flips_r, samples_r, ids, class_names=names,
        title=f"Round {r} · the batch ({len(ids)} picks)",
    )  # fmt: skip
    n_rows = min(len(ids), MAX_ROWS)
    heat.update_layout(
        margin={"l": 70, "r": 20, "t": 50, "b": 50}, font={"size": 13},
        height=int(min(900, max(300, 110 + 26 * n_rows))),
    )  # fmt: skip
    curve = curve_figure(rounds, title="Learning curve of the run")
    curve.add_vline(x=float(rounds[rounds[schema.ROUND] == r][schema.N_LABELLED].iloc[0]),
                    line_dash="dot", line_color="#888",
                    annotation_text=f"round {r}", annotation_position="top left")  # fmt: skip
    curve.update_layout(
        margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"y": -0.3}, font={"size": 13},
        yaxis={"range": [0, 1.05], "rangemode": "normal"},
    )  # fmt: skip
    rates = hypothesis_rates(run, baseline=base)
    has_eps = bool(np.isfinite(flips_ids[schema.CRITICAL_EPS].to_numpy(np.float64)).any())
    level = float(rounds[rounds[schema.ROUND] == r][schema.LEVEL].iloc[0])
    alfamix = math.isfinite(level)  # ALFA-Mix records its stopping level; others give NaN
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        _header_html(run, r, rounds, len(ids), when),
        _batch_section(cards, len(ids), n_fill, own, alfamix),
        _heatmap_section(heat, level, has_eps),
        _curve_section(curve),
        _outcomes_section(rates, r, base),
        f"<footer>Written by alfaviz {_e(_version())} on {_e(when)}; plotly.js is embedded, so "
        "this file opens without a network connection.</footer>",
    ]  # fmt: skip
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>alfaviz · selection report · round {r}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{po.get_plotlyjs()}</script></head>'
        f'<body><main class="alfaviz-report">{"".join(sections)}</main>'
        f"<script>{_PRINT_JS}</script></body></html>\n"
    )
    _write(out, page)
    log.info("selection report of round %d written to %s", r, out)
    return out


def _norm(name: str) -> str:
    """A strategy name as the registry compares it (case, ``-`` and ``_`` do not matter)."""
    return name.lower().replace("-", "").replace("_", "")


def _version() -> str:
    from alfaviz import __version__

    return __version__


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so that a failure leaves no half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlfavizInputError(f"path={str(path)!r}: cannot write the report ({exc}).") from exc
