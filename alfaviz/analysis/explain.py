"""Why was this sample picked? A pure function of a run's frames.

:func:`explain_frames` takes the frames a run records (samples, flips, the label log and the
strategies' recorded scores) and returns an :class:`Explanation`: the anchors whose mixing
flipped the sample, with the critical ε of each and the label before and after; the step
actually taken; whether k-means picked it (and from which cluster) or the fill did; its
history across rounds; who labelled it with what; and its rank under every other strategy
recorded for the round. :func:`explain` reads those frames from a run (an
:class:`~alfaviz.session.Experiment` or a run directory) first. Nothing here needs torch or
widgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.errors import AlfavizInputError

__all__ = [
    "Explanation",
    "FlipReason",
    "LabelEvent",
    "RoundState",
    "StrategyRank",
    "explain",
    "explain_frames",
]


@dataclass(frozen=True)
class FlipReason:
    """One anchor whose mixing flips the sample's prediction.

    Attributes
    ----------
    anchor_class : int
    critical_eps : float
        The smallest mixing step (ε) at which the prediction flips toward this anchor.
    label_before, label_after : int
        The pseudo-label, and the class predicted once mixed (``flip_to``).
    step_norm : float
        ‖α ⊙ Δ‖ of the step actually taken toward this anchor.
    """

    anchor_class: int
    critical_eps: float
    label_before: int
    label_after: int
    step_norm: float


@dataclass(frozen=True)
class RoundState:
    """The sample in one round (before it was labelled)."""

    round: int
    candidate: bool
    critical_eps: float
    inconsistency: int
    selected: bool
    fill: bool
    picked_by: str | None = None
    """What chose it that round (as :attr:`Explanation.picked_by`)."""


@dataclass(frozen=True)
class LabelEvent:
    """One labelling action on the sample (``action`` is ``label``, ``skip`` or ``undo``)."""

    round: int
    action: str
    label: int
    source: str


@dataclass(frozen=True)
class StrategyRank:
    """Where another strategy puts the sample in the same round.

    Attributes
    ----------
    strategy : str
    rank : int or None
        1 for the strategy's best score; None when it gives the sample no score.
    of : int
        Samples the strategy scored.
    picked : bool
        Whether the strategy's own batch holds the sample.
    score : float
    """

    strategy: str
    rank: int | None
    of: int
    picked: bool
    score: float


@dataclass(frozen=True)
class Explanation:
    """Why ``sample_id`` was (or was not) picked in ``round``.

    Attributes
    ----------
    sample_id, round : int
    pseudo_label : int
        The model's class for the sample in that round (-1 if it was labelled already).
    labelled_before : bool
        The sample was labelled before this round, so it was not in the pool.
    flips : tuple of FlipReason
        Anchors whose mixing flips it, smallest critical ε first.
    step_norm : float
        ‖α ⊙ Δ‖ of the step toward the anchor that flips it first (NaN without a flip).
    candidate, selected : bool
    picked_by : {"k-means", "fill", "score", None}
        What chose it: a k-means cluster's representative, the random fill, the run's
        strategy by its own score (a run that is not ALFA-Mix), or nothing.
    cluster : int or None
        Its k-means cluster (when k-means picked it).
    cluster_size : int or None
        Candidates in that cluster.
    history : tuple of RoundState
        Each round it was in the pool, up to and including ``round``.
    first_candidate_round, selected_round : int or None
    labels : tuple of LabelEvent
        Who labelled it with what, in order.
    other_strategies : tuple of StrategyRank
        Every strategy recorded for the round (:meth:`Experiment.compare_strategies`).
    class_names : tuple of str
    """

    sample_id: int
    round: int
    pseudo_label: int
    labelled_before: bool
    flips: tuple[FlipReason, ...]
    step_norm: float
    candidate: bool
    selected: bool
    picked_by: str | None
    cluster: int | None
    cluster_size: int | None
    history: tuple[RoundState, ...]
    first_candidate_round: int | None
    selected_round: int | None
    labels: tuple[LabelEvent, ...]
    other_strategies: tuple[StrategyRank, ...]
    class_names: tuple[str, ...]

    def _name(self, c: int) -> str:
        return self.class_names[c] if 0 <= c < len(self.class_names) else str(c)

    def summary(self) -> str:
        """The explanation as a few lines of plain text (for a card, a report or a print)."""
        head = f"Sample {self.sample_id}, round {self.round}"
        if self.labelled_before:
            return f"{head}: labelled before this round, so not in the pool."
        lines = [f"{head}: the model says {self._name(self.pseudo_label)}."]
        if self.flips:
            parts = [
                f"{self._name(f.anchor_class)} (ε {f.critical_eps:.3g} → "
                f"{self._name(f.label_after)})"
                for f in self.flips
            ]
            lines.append("Mixing toward these anchors flips it: " + ", ".join(parts) + ".")
            lines.append(f"Step taken toward the first: ‖α ⊙ Δ‖ = {self.step_norm:.3g}.")
        else:
            lines.append("No anchor flips it at any ε the round tried.")
        if self.picked_by == "k-means":
            lines.append(
                f"Picked by k-means as the representative of cluster {self.cluster} "
                f"({self.cluster_size} candidates)."
            )
        elif self.picked_by == "fill":
            lines.append("Picked by the random fill (fewer clusters than the budget).")
        elif self.picked_by == "score":
            lines.append(
                "Picked by the run's strategy for its score (its own ranking of the pool)."
            )
        elif self.candidate:
            lines.append("A candidate, not picked.")
        else:
            lines.append("Not a candidate.")
        if self.first_candidate_round is not None:
            lines.append(f"First a candidate in round {self.first_candidate_round}.")
        for ev in self.labels:
            what = self._name(ev.label) if ev.action == "label" else ev.action
            lines.append(f"Round {ev.round}: {ev.action} by {ev.source} ({what}).")
        for r in self.other_strategies:
            where = "no score" if r.rank is None else f"rank {r.rank:,} of {r.of:,}"
            lines.append(f"{r.strategy}: {where}{' (picked)' if r.picked else ''}.")
        return "\n".join(lines)


def picked_by_of(selected: bool, fill: bool, cluster: int) -> str | None:
    """What chose a sample, from its row of the samples frame.

    Parameters
    ----------
    selected, fill : bool
    cluster : int
        Its k-means cluster (-1: none; every sample of a strategy other than ALFA-Mix).

    Returns
    -------
    {"k-means", "fill", "score", None}
        ``None`` when it was not selected; ``"score"`` when it was selected by a strategy
        that ranks the pool (no k-means cluster and not the fill).
    """
    if not selected:
        return None
    if fill:
        return "fill"
    return "k-means" if int(cluster) >= 0 else "score"


def _rank(scores: np.ndarray, at: int) -> int | None:
    """1-based rank of ``scores[at]`` (highest first; ties share the best rank)."""
    s = scores[at]
    if not math.isfinite(float(s)) and not (np.isinf(s) and s > 0):
        return None
    return int(np.sum(scores > s)) + 1


def explain_frames(
    samples: pd.DataFrame,
    flips: pd.DataFrame,
    labels: pd.DataFrame,
    scores: pd.DataFrame | None,
    sample_id: int,
    round: int,
    *,
    class_names: Sequence[str] = (),
) -> Explanation:
    """The :class:`Explanation` of ``sample_id`` in ``round``, from a run's frames.

    Parameters
    ----------
    samples : pandas.DataFrame
        :data:`~alfaviz.schema.SAMPLES` over all rounds (not modified).
    flips : pandas.DataFrame
        :data:`~alfaviz.schema.FLIPS` over all rounds.
    labels : pandas.DataFrame
        The label log (:data:`~alfaviz.schema.ACTIONS`).
    scores : pandas.DataFrame or None
        :data:`~alfaviz.schema.STRATEGY_SCORES` of ``round`` (other strategies), if any.
    sample_id, round : int
    class_names : sequence of str

    Returns
    -------
    Explanation

    Raises
    ------
    AlfavizInputError
        When the round is not in ``samples`` or the sample is not in that round.
    """
    sid, r = int(sample_id), int(round)
    rounds = samples[schema.ROUND].to_numpy()
    if r not in set(rounds.tolist()):
        raise AlfavizInputError(
            f"round={r}: the run has no such round; written rounds: {sorted(set(rounds.tolist()))}."
        )
    this = samples[rounds == r]
    row = this[this[schema.SAMPLE_ID].to_numpy() == sid]
    if row.empty:
        raise AlfavizInputError(
            f"sample_id={sid}: not in round {r}'s pool (ids run from "
            f"{int(this[schema.SAMPLE_ID].min())} to {int(this[schema.SAMPLE_ID].max())})."
        )
    row = row.iloc[0]
    lr = int(row[schema.LABELLED_ROUND])
    labelled_before = 0 <= lr <= r  # in the labelled set of this round (labelled_round's rule)
    pseudo = int(row[schema.PSEUDO_LABEL])
    f = flips[(flips[schema.ROUND].to_numpy() == r) & (flips[schema.SAMPLE_ID].to_numpy() == sid)]
    f = f[f[schema.FLIPPED].to_numpy(bool)].sort_values(schema.CRITICAL_EPS, kind="stable")
    reasons = tuple(
        FlipReason(
            anchor_class=int(a),
            critical_eps=float(e),
            label_before=pseudo,
            label_after=int(t),
            step_norm=float(n),
        )
        for a, e, t, n in zip(
            f[schema.ANCHOR_CLASS], f[schema.CRITICAL_EPS], f[schema.FLIP_TO],
            f[schema.STEP_NORM], strict=True,
        )
    )  # fmt: skip
    selected = bool(row[schema.SELECTED])
    fill = bool(row[schema.FILL])
    cluster = int(row[schema.CLUSTER])
    picked_by = picked_by_of(selected, fill, cluster)
    size = None
    if picked_by == "k-means" and cluster >= 0:
        cand = this[this[schema.CANDIDATE].to_numpy(bool)]
        size = int((cand[schema.CLUSTER].to_numpy() == cluster).sum())
    mine = samples[(samples[schema.SAMPLE_ID].to_numpy() == sid) & (rounds <= r)]
    mine = mine.sort_values(schema.ROUND, kind="stable")
    lab_r = mine[schema.LABELLED_ROUND].to_numpy()
    in_pool = mine[~((lab_r >= 0) & (lab_r <= mine[schema.ROUND].to_numpy()))]
    history = tuple(
        RoundState(
            round=int(h[schema.ROUND]),
            candidate=bool(h[schema.CANDIDATE]),
            critical_eps=float(h[schema.CRITICAL_EPS]),
            inconsistency=int(h[schema.INCONSISTENCY]),
            selected=bool(h[schema.SELECTED]),
            fill=bool(h[schema.FILL]),
            picked_by=picked_by_of(
                bool(h[schema.SELECTED]), bool(h[schema.FILL]), int(h[schema.CLUSTER])
            ),
        )
        for _, h in in_pool.iterrows()
    )
    first = next((h.round for h in history if h.candidate), None)
    chosen = samples[(samples[schema.SAMPLE_ID].to_numpy() == sid)]
    chosen = chosen[chosen[schema.SELECTED].to_numpy(bool)]
    selected_round = int(chosen[schema.ROUND].min()) if len(chosen) else None
    log = labels[labels[schema.SAMPLE_ID].to_numpy() == sid] if len(labels) else labels
    events = tuple(
        LabelEvent(
            round=int(e[schema.ROUND]),
            action=str(e[schema.ACTION]),
            label=int(e[schema.LABEL]) if pd.notna(e[schema.LABEL]) else -1,
            source=str(e[schema.SOURCE]),
        )
        for _, e in log.iterrows()
    )
    ranks: list[StrategyRank] = []
    if scores is not None and len(scores):
        sc = scores[scores[schema.ROUND].to_numpy() == r]
        for name, g in sc.groupby(schema.STRATEGY, sort=True):
            ids = g[schema.SAMPLE_ID].to_numpy(np.int64)
            hit = np.flatnonzero(ids == sid)
            vals = g[schema.SCORE].to_numpy(np.float64)
            if hit.size == 0:
                ranks.append(StrategyRank(str(name), None, len(g), False, math.nan))
                continue
            k = int(hit[0])
            ranks.append(
                StrategyRank(
                    strategy=str(name),
                    rank=_rank(vals, k),
                    of=len(g),
                    picked=bool(g[schema.PICKED].to_numpy(bool)[k]),
                    score=float(vals[k]),
                )
            )
    return Explanation(
        sample_id=sid,
        round=r,
        pseudo_label=-1 if labelled_before else pseudo,
        labelled_before=labelled_before,
        flips=() if labelled_before else reasons,
        step_norm=reasons[0].step_norm if reasons and not labelled_before else math.nan,
        candidate=bool(row[schema.CANDIDATE]),
        selected=selected,
        picked_by=picked_by,
        cluster=cluster if picked_by == "k-means" and cluster >= 0 else None,
        cluster_size=size,
        history=history,
        first_candidate_round=first,
        selected_round=selected_round,
        labels=events,
        other_strategies=tuple(ranks),
        class_names=tuple(str(c) for c in class_names),
    )


def explain(run: Any, sample_id: int, round: int | None = None) -> Explanation:
    """Why ``sample_id`` was (or was not) picked in ``round`` of ``run``.

    Parameters
    ----------
    run : Experiment, or str or Path
        A live :class:`~alfaviz.session.Experiment`, or a run directory (opened read-only).
    sample_id : int
        A global id of the train pool.
    round : int, optional
        A written round; the latest by default.

    Returns
    -------
    Explanation
        ``print(explanation.summary())`` gives it as text.
    """
    if isinstance(run, (str, Path)):
        from alfaviz.session import open_run

        run = open_run(run)
    rounds = run.rounds
    if rounds.empty:
        raise AlfavizInputError("run: no round has been written yet; run exp.step() first.")
    if isinstance(sample_id, bool) or not isinstance(sample_id, (int, np.integer)):
        raise AlfavizInputError(f"sample_id must be an integer id; got {sample_id!r}.")
    r = int(rounds[schema.ROUND].max()) if round is None else round
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
        raise AlfavizInputError(f"round must be an integer; got {round!r}.")
    written = set(rounds[schema.ROUND].astype(int).tolist())
    if int(r) not in written:
        raise AlfavizInputError(f"round={r}: not written; written rounds: {sorted(written)}.")
    scores = run.round_scores(int(r)) if hasattr(run, "round_scores") else None
    return explain_frames(
        run.samples,
        run.flips,
        run.label_log,
        scores,
        int(sample_id),
        int(r),
        class_names=tuple(str(c) for c in run.data.class_names),
    )
