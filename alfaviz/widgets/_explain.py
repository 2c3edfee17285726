"""The "Why was this selected?" card: the explanation of the focused sample, as a small card.

:class:`ExplainCard` shows :func:`alfaviz.analysis.explain.explain_frames` of
``state.focus_id`` in ``state.round``: the anchors whose mixing flips it (critical ε, label
before → after, the step taken), who picked it (k-means and its cluster, or the fill), its
history across rounds, who labelled it with what, and its rank under every other strategy
recorded for the round. :func:`card_html` is the pure twin (an
:class:`~alfaviz.analysis.explain.Explanation` in, HTML out).

Explaining is cheap: the frames come from :class:`~alfaviz.widgets.RunData`'s per-round
caches (never the run's whole frames from disk), cut down to what
:func:`~alfaviz.analysis.explain.explain_frames` reads of them (the round's candidates and
the sample's own rows of every round), and each explanation is kept per (round, sample,
data version).
"""

from __future__ import annotations

import html
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.analysis.explain import Explanation, explain_frames
from alfaviz.errors import AlfavizInputError
from alfaviz.widgets._base import View

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = ["EMPTY_HINT", "CardContext", "ExplainCard", "card_html", "empty_html"]

EMPTY_HINT = "Click a sample in the map, gallery or heatmap to see why it was picked."
"""What the card says while no sample is focused."""

_MAX_CACHED = 256
_COLUMNS = (
    schema.ROUND,
    schema.SAMPLE_ID,
    schema.LABELLED_ROUND,
    schema.PSEUDO_LABEL,
    schema.SELECTED,
    schema.FILL,
    schema.CLUSTER,
    schema.CANDIDATE,
    schema.CRITICAL_EPS,
    schema.INCONSISTENCY,
    schema.TRUE_LABEL,
)
"""The samples columns the explanation and the card read."""

_STYLE = (
    "<style>"
    ".alfaviz-why-card{font-size:12px;line-height:1.45;max-width:620px;padding:6px 8px;"
    "border:1px solid #ddd;border-radius:4px}"
    ".alfaviz-why-card table{border-collapse:collapse;margin:3px 0 5px 0}"
    ".alfaviz-why-card th,.alfaviz-why-card td{padding:1px 8px 1px 0;text-align:left;"
    "font-size:12px}"
    ".alfaviz-why-card th{color:#555;font-weight:normal;border-bottom:1px solid #ddd}"
    ".alfaviz-why-sec{color:#555;margin-top:4px}"
    "</style>"
)


@dataclass(frozen=True)
class CardContext:
    """What the card says beside the explanation (facts of the round, not of the sample).

    Attributes
    ----------
    true_label : int
        The sample's true class (-1 unknown).
    critical_eps : float
        Its smallest critical ε in the round (inf: nothing flips it).
    cluster : int
        Its k-means cluster in the round (-1: none).
    cluster_size : int
        Candidates in that cluster.
    representative : int or None
        The member of that cluster k-means picked, when it is not the sample.
    n_candidates : int
        Candidates of the round.
    level : float
        The round's stopping level (NaN: unknown).
    budget : int
    """

    true_label: int = -1
    critical_eps: float = math.inf
    cluster: int = -1
    cluster_size: int = 0
    representative: int | None = None
    n_candidates: int = 0
    level: float = math.nan
    budget: int = 0


def empty_html() -> str:
    """The card while nothing is focused."""
    return (
        _STYLE + '<div class="alfaviz-why-card alfaviz-why-empty"><b>Why was this selected?</b>'
        f'<div style="color:#666">{html.escape(EMPTY_HINT)}</div></div>'
    )


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _eps(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "∞"


def card_html(e: Explanation, ctx: CardContext | None = None) -> str:
    """The card of one explanation, as HTML.

    Parameters
    ----------
    e : Explanation
    ctx : CardContext, optional
        Round facts: the true label, the cluster of a candidate not picked, the stopping
        level.

    Returns
    -------
    str
        A ``div.alfaviz-why-card`` with, inside: ``.alfaviz-why-title``,
        ``.alfaviz-why-verdict``, a ``table.alfaviz-why-flips`` of ``tr.alfaviz-why-flip``
        rows (``data-anchor``), ``.alfaviz-why-step``, ``.alfaviz-why-history`` (a table of
        ``tr.alfaviz-why-round`` rows, ``data-round``), ``.alfaviz-why-labels`` and
        ``.alfaviz-why-strategies`` (``span.alfaviz-why-strategy``, ``data-strategy``).
    """
    c = ctx or CardContext()

    def name(k: int) -> str:
        return html.escape(e._name(int(k))) if k >= 0 else "—"

    sid, r = e.sample_id, e.round
    out = [_STYLE, f'<div class="alfaviz-why-card" data-sample="{sid}" data-round="{r}">']
    if e.labelled_before:
        title = f"#{sid} was labelled before round {r}"
    elif e.selected:
        title = f"Why was #{sid} selected?"
    else:
        title = f"Why wasn't #{sid} selected?"
    out.append(
        f'<div class="alfaviz-why-title"><b>{title}</b> <span style="color:#666">round {r}'
        f"{' · true label ' + name(c.true_label) if c.true_label >= 0 else ''}</span></div>"
    )
    if e.labelled_before:
        out.append(
            '<div class="alfaviz-why-verdict">It was in the labelled set of this round, '
            "not in the pool, so nothing was asked of it.</div>"
        )
    else:
        out.append(f'<div class="alfaviz-why-verdict">{_verdict(e, c)}</div>')
        out.append(_flips_html(e, name))
    out.append(_history_html(e, name))
    out.append(_labels_html(e, name))
    out.append(_strategies_html(e))
    out.append("</div>")
    return "".join(out)


def _verdict(e: Explanation, c: CardContext) -> str:
    head = f"The model says <b>{html.escape(e._name(e.pseudo_label))}</b>. "
    if e.picked_by == "k-means":
        size = "" if e.cluster_size is None else f" ({_n(e.cluster_size, 'candidate')})"
        return (
            head + f"Picked by <b>k-means</b> as the representative of cluster "
            f"<b>{e.cluster}</b>{size}: the candidate nearest its centre."
        )
    if e.picked_by == "score":
        return head + (
            "Picked by the run's strategy for its <b>score</b> (its own ranking of the pool; "
            "not a cluster representative)."
        )
    if e.picked_by == "fill":
        return (
            head + "Picked by the <b>random fill</b>: the round had "
            f"{_n(c.n_candidates, 'candidate')} for a budget of {c.budget:,}, so the rest of the "
            "batch was drawn at random from the pool."
        )
    if e.candidate:
        where = f" in cluster <b>{c.cluster}</b> ({_n(c.cluster_size, 'candidate')})"
        rep = "" if c.representative is None else f"; k-means took #{c.representative} there"
        return head + f"A <b>candidate</b>{where if c.cluster >= 0 else ''}, not picked{rep}."
    level = f" ε {c.level:.3g}" if math.isfinite(c.level) else ""
    if math.isfinite(c.critical_eps):
        return (
            head + f"<b>Not a candidate</b>: it first flips at ε {_eps(c.critical_eps)}, "
            f"above the round's stopping level{level}."
        )
    return head + f"<b>Not a candidate</b>: no anchor flips it up to the stopping level{level}."


def _flips_html(e: Explanation, name: Any) -> str:
    if not e.flips:
        return (
            '<div class="alfaviz-why-flips alfaviz-why-noflip" style="color:#666">'
            "No anchor's mixing flips it at the round's stopping level.</div>"
        )
    rows = "".join(
        f'<tr class="alfaviz-why-flip" data-anchor="{f.anchor_class}"><td>{name(f.anchor_class)}'
        f"</td><td>{_eps(f.critical_eps)}</td><td>{name(f.label_before)} → "
        f"<b>{name(f.label_after)}</b></td><td>{f.step_norm:.3g}</td></tr>"
        for f in e.flips
    )
    first = e.flips[0]
    return (
        f'<div class="alfaviz-why-sec">Mixing toward {len(e.flips)} anchor'
        f"{'s' if len(e.flips) != 1 else ''} flips it:</div>"
        '<table class="alfaviz-why-flips"><tr><th>anchor</th><th>critical ε</th>'
        f"<th>label before → after</th><th>‖α ⊙ Δ‖</th></tr>{rows}</table>"
        f'<div class="alfaviz-why-step">Step taken toward the first ({name(first.anchor_class)}'
        f"): ‖α ⊙ Δ‖ = {e.step_norm:.3g}</div>"
    )


def _history_html(e: Explanation, name: Any) -> str:
    bits = []
    if e.first_candidate_round is not None:
        bits.append(f"first a candidate in round {e.first_candidate_round}")
    if e.selected_round is not None:
        bits.append(f"selected in round {e.selected_round}")
    summary = "; ".join(bits) if bits else "never a candidate so far"
    rows = []
    for h in e.history:
        picked = h.picked_by or ""
        rows.append(
            f'<tr class="alfaviz-why-round" data-round="{h.round}"><td>{h.round}</td>'
            f"<td>{'yes' if h.candidate else 'no'}</td><td>{_eps(h.critical_eps)}</td>"
            f"<td>{h.inconsistency}</td><td>{picked}</td></tr>"
        )
    table = (
        "<table><tr><th>round</th><th>candidate</th><th>critical ε</th><th>anchors</th>"
        f"<th>picked</th></tr>{''.join(rows)}</table>"
        if rows
        else ""
    )
    return (
        f'<div class="alfaviz-why-history"><div class="alfaviz-why-sec">History: '
        f"{html.escape(summary)}</div>{table}</div>"
    )


def _labels_html(e: Explanation, name: Any) -> str:
    if not e.labels:
        return '<div class="alfaviz-why-labels" style="color:#666">Not labelled yet.</div>'
    parts = []
    for ev in e.labels:
        src = html.escape(ev.source)
        if ev.action == "label":
            parts.append(f"round {ev.round}: labelled <b>{name(ev.label)}</b> by {src}")
        else:
            parts.append(f"round {ev.round}: {html.escape(ev.action)} by {src}")
    return '<div class="alfaviz-why-labels">' + " · ".join(parts) + "</div>"


def _strategies_html(e: Explanation) -> str:
    if not e.other_strategies:
        return (
            '<div class="alfaviz-why-strategies" style="color:#666">No other strategy was '
            "scored on this round (the map's “score others” records them).</div>"
        )
    parts = []
    for s in e.other_strategies:
        where = "no score" if s.rank is None else f"rank {s.rank:,} of {s.of:,}"
        picked = " (in its batch)" if s.picked else ""
        parts.append(
            f'<span class="alfaviz-why-strategy" data-strategy="{html.escape(s.strategy)}">'
            f"<b>{html.escape(s.strategy)}</b> {where}{picked}</span>"
        )
    return (
        '<div class="alfaviz-why-strategies">Other strategies on this round: '
        + " · ".join(parts)
        + "</div>"
    )


# ------------------------------------------------------------------------------------------
# the view


@dataclass
class _RoundCut:
    """What one round contributes to an explanation, cut from RunData's cached frame."""

    frame: pd.DataFrame  # the cached samples frame it was cut from (identity checked)
    ids: np.ndarray  # int64 sample ids, sorted
    rows: np.ndarray  # row of each sorted id
    candidates: pd.DataFrame  # the round's candidate rows, _COLUMNS only


class ExplainCard(View):
    """Why the focused sample (``state.focus_id``) was or was not picked in ``state.round``.

    Observes ``focus_id``, ``round`` and ``data_version``; writes nothing.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional

    Attributes
    ----------
    html : ipywidgets.HTML
        The card (:func:`card_html`), or the hint while nothing is focused.
    explanation : Explanation or None
        What the card shows.
    """

    name: ClassVar[str] = "why"
    css_class: ClassVar[str] = "alfaviz-why"

    def __init__(self, state: AppState, data: RunData, *, errors: ErrorArea | None = None) -> None:
        self.explanation: Explanation | None = None
        self._explained: OrderedDict[tuple[int, int, int, int], tuple[Explanation, Any]] = (
            OrderedDict()
        )
        self._cuts: dict[int, _RoundCut] = {}
        self._flips: dict[int, tuple[pd.DataFrame, np.ndarray, pd.DataFrame]] = {}
        self._per_version: dict[tuple[str, tuple[int, int]], Any] = {}
        super().__init__(state, data, errors=errors)

    def _build(self) -> widgets.Widget:
        self.html = widgets.HTML(empty_html())
        self.html.add_class("alfaviz-why-body")
        self._observe(self._on_change, ["focus_id", "round", "data_version"])
        self.render()
        return widgets.VBox([self.html])

    def _round(self) -> int | None:
        n = self.data.n_rounds
        return None if n == 0 else min(int(self.state.round), n - 1)

    def _version(self) -> tuple[int, int]:
        return int(self.state.data_version), int(getattr(self.data, "version", 0))

    # rendering -----------------------------------------------------------------------------
    def render(self) -> None:
        """Show the explanation of ``state.focus_id`` in the shown round (or the hint)."""
        sid, r = self.state.focus_id, self._round()
        if sid is None or r is None:
            self.explanation = None
            self.html.value = empty_html()
            return
        try:
            e, ctx = self.explain(int(sid), r)
        except AlfavizInputError as exc:
            self.explanation = None
            self.html.value = (
                _STYLE + '<div class="alfaviz-why-card alfaviz-why-missing">'
                f"<b>#{int(sid)}</b>: {html.escape(str(exc))}</div>"
            )
            return
        self.explanation = e
        self.html.value = card_html(e, ctx)

    def _on_change(self, _change: dict[str, Any]) -> None:
        self.render()

    # explaining ----------------------------------------------------------------------------
    def explain(self, sample_id: int, round: int) -> tuple[Explanation, CardContext]:
        """The explanation of ``sample_id`` in ``round`` and the card's round facts, cached
        per (round, sample, data version)."""
        key = (int(round), int(sample_id), *self._version())
        hit = self._explained.get(key)
        if hit is not None:
            self._explained.move_to_end(key)
            return hit
        out = self._explain(int(sample_id), int(round))
        self._explained[key] = out
        while len(self._explained) > _MAX_CACHED:
            self._explained.popitem(last=False)
        return out

    def _cut(self, r: int) -> _RoundCut:
        frame = self.data.samples(r)
        hit = self._cuts.get(r)
        if hit is not None and hit.frame is frame:
            return hit
        ids = frame[schema.SAMPLE_ID].to_numpy(np.int64)
        order = (
            np.arange(ids.size, dtype=np.int64)
            if np.all(ids[1:] >= ids[:-1])
            else np.argsort(ids, kind="stable")
        )
        cand = frame.loc[frame[schema.CANDIDATE].to_numpy(bool), list(_COLUMNS)]
        cut = self._cuts[r] = _RoundCut(frame, ids[order], order, cand)
        return cut

    def _row(self, cut: _RoundCut, sid: int) -> pd.DataFrame:
        at = int(np.searchsorted(cut.ids, sid))
        if at >= cut.ids.size or cut.ids[at] != sid:
            return cut.candidates.iloc[:0]
        return cut.frame.iloc[[int(cut.rows[at])]][list(_COLUMNS)]

    def _flips_of(self, r: int, sid: int) -> pd.DataFrame:
        frame = self.data.flips(r)
        hit = self._flips.get(r)
        if hit is None or hit[0] is not frame:
            ids = frame[schema.SAMPLE_ID].to_numpy(np.int64)
            order = np.argsort(ids, kind="stable")
            hit = self._flips[r] = (frame, ids[order], frame.iloc[order])
        _, ids, f = hit
        lo, hi = np.searchsorted(ids, sid, "left"), np.searchsorted(ids, sid, "right")
        return f.iloc[lo:hi]

    def _once(self, what: str, read: Any) -> Any:
        """``read()``, kept until the data version changes."""
        key = (what, self._version())
        if key not in self._per_version:
            self._per_version = {k: v for k, v in self._per_version.items() if k[1] == key[1]}
            self._per_version[key] = read()
        return self._per_version[key]

    def _labels(self) -> pd.DataFrame:
        exp = getattr(self.data, "experiment", None)
        log = getattr(exp, "label_log", None) if exp is not None else None
        if log is None:
            return pd.DataFrame({c: [] for c in schema.ACTIONS.names})
        return log

    def _scores(self, r: int) -> pd.DataFrame | None:
        exp = getattr(self.data, "experiment", None)
        if exp is None or not hasattr(exp, "round_scores"):
            return None
        return exp.round_scores(r)

    def _explain(self, sid: int, r: int) -> tuple[Explanation, CardContext]:
        this = self._cut(r)
        own = self._row(this, sid)
        if own.empty:
            raise AlfavizInputError(f"not in round {r} of this run.")
        parts = [this.candidates]
        if not bool(own[schema.CANDIDATE].iloc[0]):
            parts.append(own)  # (a candidate is among the round's candidates already)
        for k in range(self.data.n_rounds):
            if k != r:
                parts.append(self._row(self._cut(k), sid))
        samples = pd.concat(parts, ignore_index=True)
        labels = self._once("labels", self._labels)
        scores = self._once(f"scores:{r}", lambda: self._scores(r))
        e = explain_frames(
            samples,
            self._flips_of(r, sid),
            labels,
            scores,
            sid,
            r,
            class_names=self.data.class_names,
        )
        return e, self._context(this, own.iloc[0], r)

    def _context(self, cut: _RoundCut, row: pd.Series, r: int) -> CardContext:
        cluster = int(row[schema.CLUSTER]) if bool(row[schema.CANDIDATE]) else -1
        cand = cut.candidates
        size, rep = 0, None
        if cluster >= 0:
            same = cand[cand[schema.CLUSTER].to_numpy() == cluster]
            size = len(same)
            picked = same[same[schema.SELECTED].to_numpy(bool)]
            if len(picked) and int(picked[schema.SAMPLE_ID].iloc[0]) != int(row[schema.SAMPLE_ID]):
                rep = int(picked[schema.SAMPLE_ID].iloc[0])
        level = math.nan
        rounds = self._once("rounds", self._rounds)
        if rounds is not None and len(rounds):
            hit = rounds[rounds[schema.ROUND].to_numpy() == r]
            if len(hit):
                level = float(hit[schema.LEVEL].iloc[0])
        return CardContext(
            true_label=int(row[schema.TRUE_LABEL]),
            critical_eps=float(row[schema.CRITICAL_EPS]),
            cluster=cluster,
            cluster_size=size,
            representative=rep,
            n_candidates=len(cand),
            level=level,
            budget=int(self.data.budget),
        )

    def _rounds(self) -> pd.DataFrame | None:
        rounds = getattr(self.data, "rounds", None)
        return rounds() if callable(rounds) else None
