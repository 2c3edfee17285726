"""The method's hypothesis, tested on the run's own labels.

ALFA-Mix assumes that a sample whose prediction flips when mixed toward class c holds features
the model does not recognise yet. Once such a sample is labelled, its label says which way the
model was wrong, if at all:

- ``pseudo_label``: the label equals the model's prediction (the pick taught it little new);
- ``flip_target``: the label is one of the classes that mixing flipped the prediction to (the
  flip pointed at the truth);
- ``neither``: the label is some other class.

:func:`explain_round` gives one row per pick of a round, for the run's own strategy and a
baseline (Entropy's top picks by default) on the same model and pool, with the reason for each
pick and its outcome (:data:`~alfaviz.schema.EXPLAIN_ROUND`). :func:`hypothesis_rates` turns
those rows into counts and rates per round and strategy (:data:`~alfaviz.schema.HYPOTHESIS`),
the numbers behind the hypothesis chart. The pure twins :func:`explain_round_frames` and
:func:`rates_from_picks` need only frames.

A label is a person's or the oracle's when the sample was labelled. The run's own picks count
only once someone has labelled them (until then they are ``unlabelled``, so a batch waiting
for a person shows no outcomes yet); a baseline's picks are mostly never labelled, so their
dataset label is used where the data has one (``source`` is ``dataset``). Outcomes are
measured against the round's pseudo-label and flip targets, never against later rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.analysis.explain import picked_by_of
from alfaviz.errors import AlfavizInputError

__all__ = [
    "DATASET_SOURCE",
    "explain_round",
    "explain_round_frames",
    "hypothesis_rates",
    "outcome_of",
    "rates_from_picks",
]

DATASET_SOURCE = "dataset"
"""``source`` of a label read from the dataset rather than given in the run."""

UNLABELLED = "unlabelled"


def outcome_of(label: int, pseudo_label: int, flip_targets: Sequence[int]) -> str:
    """How ``label`` relates to the prediction (:data:`~alfaviz.schema.OUTCOMES`).

    Returns ``"unlabelled"`` for a negative ``label`` (none known).
    """
    if label < 0:
        return UNLABELLED
    if label == pseudo_label:
        return "pseudo_label"
    if label in flip_targets:
        return "flip_target"
    return "neither"


def _round_pool(samples: pd.DataFrame, r: int) -> pd.DataFrame:
    rounds = samples[schema.ROUND].to_numpy()
    if r not in set(rounds.tolist()):
        raise AlfavizInputError(
            f"round={r}: not written; written rounds: {sorted(set(rounds.tolist()))}."
        )
    return samples[rounds == r].set_index(schema.SAMPLE_ID, drop=False)


def explain_round_frames(
    samples: pd.DataFrame,
    flips: pd.DataFrame,
    labels: pd.DataFrame,
    picks: dict[str, Sequence[int]],
    round: int,
) -> pd.DataFrame:
    """:data:`~alfaviz.schema.EXPLAIN_ROUND` of ``round``, from frames.

    Parameters
    ----------
    samples : pandas.DataFrame
        :data:`~alfaviz.schema.SAMPLES` (all rounds, or at least ``round``).
    flips : pandas.DataFrame
        :data:`~alfaviz.schema.FLIPS` (may be empty for a strategy that records none).
    labels : pandas.DataFrame
        The live labels (:data:`~alfaviz.schema.LABELS`: ``sample_id``, ``label``,
        ``source``).
    picks : dict of str to sequence of int
        Each strategy's batch in pick order; the first entry is the run's own, whose
        ``picked_by`` and ``cluster`` come from the samples frame. The run's own picks take
        their label from ``labels`` only (unlabelled until someone labels them); another
        strategy's picks, which nobody is asked to label, fall back on the dataset's label.
    round : int

    Returns
    -------
    pandas.DataFrame
    """
    r = int(round)
    this = _round_pool(samples, r)
    f = flips[(flips[schema.ROUND].to_numpy() == r) & flips[schema.FLIPPED].to_numpy(bool)]
    targets: dict[int, list[int]] = {}
    for sid, to in zip(f[schema.SAMPLE_ID].to_numpy(np.int64), f[schema.FLIP_TO].to_numpy(),
                       strict=True):  # fmt: skip
        targets.setdefault(int(sid), []).append(int(to))
    live = (
        dict(zip(labels[schema.SAMPLE_ID].to_numpy(np.int64).tolist(),
                 zip(labels[schema.LABEL].to_numpy().tolist(),
                     labels[schema.SOURCE].astype(str).tolist(), strict=True), strict=True))
        if len(labels) else {}
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    for k, (name, ids) in enumerate(picks.items()):
        ids = np.asarray(ids, dtype=np.int64)
        missing = ids[~np.isin(ids, this.index.to_numpy())]
        if missing.size:
            raise AlfavizInputError(
                f"{name}'s picks hold ids not in round {r}'s samples, e.g. {int(missing[0])}."
            )
        for order, sid in enumerate(ids.tolist()):
            row = this.loc[sid]
            to = sorted(set(targets.get(sid, ())))
            pseudo = int(row[schema.PSEUDO_LABEL])
            own = k == 0
            if sid in live:
                label, source = int(live[sid][0]), str(live[sid][1])
            elif own:  # the run's own pick counts once someone has labelled it
                label, source = -1, ""
            elif int(row[schema.TRUE_LABEL]) >= 0:
                label, source = int(row[schema.TRUE_LABEL]), DATASET_SOURCE
            else:
                label, source = -1, ""
            selected = bool(row[schema.SELECTED])
            picked_by = ""
            if own and selected:
                picked_by = picked_by_of(True, bool(row[schema.FILL]), int(row[schema.CLUSTER]))
            rows.append(
                {
                    schema.ROUND: r,
                    schema.STRATEGY: str(name),
                    schema.SAMPLE_ID: sid,
                    schema.ORDER: order,
                    schema.PSEUDO_LABEL: pseudo,
                    schema.INCONSISTENCY: int(row[schema.INCONSISTENCY]),
                    schema.FLIP_TARGETS: ",".join(str(t) for t in to),
                    schema.CRITICAL_EPS: float(row[schema.CRITICAL_EPS]),
                    schema.PICKED_BY: picked_by,
                    schema.CLUSTER: int(row[schema.CLUSTER]) if picked_by == "k-means" else -1,
                    schema.LABEL: label,
                    schema.SOURCE: source,
                    schema.OUTCOME: outcome_of(label, pseudo, to),
                }
            )
    frame = pd.DataFrame(rows, columns=list(schema.EXPLAIN_ROUND.names))
    return schema.conform(frame, schema.EXPLAIN_ROUND)


def rates_from_picks(picks: pd.DataFrame) -> pd.DataFrame:
    """:data:`~alfaviz.schema.HYPOTHESIS` from :func:`explain_round` rows (any rounds).

    Rates are shares of the picks whose label is known (NaN when none is).
    """
    rows: list[dict[str, Any]] = []
    if len(picks):
        grouped = picks.groupby([schema.ROUND, schema.STRATEGY], sort=False)
        for (r, name), g in grouped:
            out = g[schema.OUTCOME].astype(str).to_numpy()
            known = int((out != UNLABELLED).sum())
            row: dict[str, Any] = {
                schema.ROUND: int(r),
                schema.STRATEGY: str(name),
                schema.N_PICKED: len(g),
                schema.N_LABELLED: known,
            }
            for o in schema.OUTCOMES:
                n = int((out == o).sum())
                row[schema.N_OUTCOME_PREFIX + o] = n
                row[schema.RATE_PREFIX + o] = n / known if known else float("nan")
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(schema.HYPOTHESIS.names))
    return schema.conform(frame, schema.HYPOTHESIS)


def _check_round(run: Any, round: Any) -> int:
    rounds = run.rounds
    if rounds.empty:
        raise AlfavizInputError("run: no round has been written yet; run exp.step() first.")
    written = sorted(set(rounds[schema.ROUND].astype(int).tolist()))
    if round is None:
        return written[-1]
    if isinstance(round, bool) or not isinstance(round, (int, np.integer)):
        raise AlfavizInputError(f"round must be an integer; got {round!r}.")
    if int(round) not in written:
        raise AlfavizInputError(f"round={round}: not written; written rounds: {written}.")
    return int(round)


def _open(run: Any) -> Any:
    from pathlib import Path

    if isinstance(run, (str, Path)):
        from alfaviz.session import open_run

        return open_run(run)
    return run


def _picks(run: Any, r: int, baseline: str | None) -> dict[str, list[int]]:
    own = str(run.strategy.name)
    names = [own] + ([baseline] if baseline else [])
    scores = run.compare_strategies(names, round=r)
    out: dict[str, list[int]] = {}
    for name in dict.fromkeys(scores[schema.STRATEGY].astype(str).tolist()):
        g = scores[(scores[schema.STRATEGY] == name) & scores[schema.PICKED]]
        out[name] = g.sort_values(schema.ORDER, kind="stable")[schema.SAMPLE_ID].tolist()
    return out


def explain_round(run: Any, round: int | None = None, *, baseline: str | None = "entropy"
                  ) -> pd.DataFrame:  # fmt: skip
    """Each pick of ``round``, why it was made, and what its label says (module docstring).

    Parameters
    ----------
    run : Experiment, or str or Path
        A live run, or a run directory (opened read-only).
    round : int, optional
        A written round; the latest by default.
    baseline : str or None
        A strategy whose batch on the same model and pool is explained alongside (queried
        once through :meth:`~alfaviz.session.Experiment.compare_strategies` and recorded with
        the run); ``None`` for the run's own picks only.

    Returns
    -------
    pandas.DataFrame
        :data:`~alfaviz.schema.EXPLAIN_ROUND`: the run's own picks first, in pick order, then
        the baseline's.
    """
    run = _open(run)
    r = _check_round(run, round)
    picks = _picks(run, r, baseline)
    return explain_round_frames(run.samples, run.flips, run.store.labels(), picks, r)


def hypothesis_rates(
    run: Any, rounds: Sequence[int] | None = None, *, baseline: str | None = "entropy"
) -> pd.DataFrame:
    """How often the picks' labels equal the pseudo-label, a flip target, or neither.

    Parameters
    ----------
    run : Experiment, or str or Path
    rounds : sequence of int, optional
        Written rounds (all by default).
    baseline : str or None
        As for :func:`explain_round`.

    Returns
    -------
    pandas.DataFrame
        :data:`~alfaviz.schema.HYPOTHESIS`, one row per (round, strategy).
    """
    run = _open(run)
    if rounds is None:
        if run.rounds.empty:
            raise AlfavizInputError("run: no round has been written yet; run exp.step() first.")
        rounds = sorted(set(run.rounds[schema.ROUND].astype(int).tolist()))
    samples, flips, labels = run.samples, run.flips, run.store.labels()
    parts = []
    for r in rounds:
        r = _check_round(run, r)
        parts.append(explain_round_frames(samples, flips, labels, _picks(run, r, baseline), r))
    picks = (
        pd.concat(parts, ignore_index=True)
        if parts
        else explain_round_frames(samples, flips, labels, {}, int(samples[schema.ROUND].min()))
    )
    return rates_from_picks(picks)
