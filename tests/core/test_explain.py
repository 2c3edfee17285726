"""explain(): why a sample was picked, from the run's frames (no widgets, no torch calls)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.analysis.explain import Explanation, explain, explain_frames
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment

FAST = TrainConfig(max_epochs=2, min_steps=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="pca",
        train=FAST, out=tmp_path_factory.mktemp("explain") / "run", labelling="oracle",
    )  # fmt: skip
    exp.step()
    exp.step()
    exp.compare_strategies(["entropy", "margin", "random"], round=1)
    return exp


def _batch(run, r):
    s = run.samples
    s = s[(s[schema.ROUND] == r) & s[schema.SELECTED]]
    return s


def test_a_picked_sample_gets_its_reasons(run):
    s = _batch(run, 1)
    row = s.iloc[0]
    sid = int(row[schema.SAMPLE_ID])
    e = explain(run, sid, 1)
    assert isinstance(e, Explanation)
    assert e.selected
    assert e.selected_round == 1
    assert e.picked_by == ("fill" if bool(row[schema.FILL]) else "k-means")
    assert e.pseudo_label == int(row[schema.PSEUDO_LABEL])
    f = run.flips
    f = f[(f[schema.ROUND] == 1) & (f[schema.SAMPLE_ID] == sid) & f[schema.FLIPPED]]
    f = f.sort_values(schema.CRITICAL_EPS, kind="stable")
    assert [r.anchor_class for r in e.flips] == f[schema.ANCHOR_CLASS].tolist()
    np.testing.assert_allclose([r.critical_eps for r in e.flips], f[schema.CRITICAL_EPS])
    assert [r.label_after for r in e.flips] == f[schema.FLIP_TO].tolist()
    assert all(r.label_before == e.pseudo_label for r in e.flips)
    if e.flips:
        assert e.step_norm == pytest.approx(float(f[schema.STEP_NORM].iloc[0]))
    if e.picked_by == "k-means":
        cand = run.samples
        cand = cand[(cand[schema.ROUND] == 1) & cand[schema.CANDIDATE]]
        assert e.cluster == int(row[schema.CLUSTER])
        assert e.cluster_size == int((cand[schema.CLUSTER] == e.cluster).sum())
    assert [h.round for h in e.history] == [0, 1]  # in the pool in both rounds
    assert e.history[-1].selected
    # the oracle labelled it once the round ended
    assert [(ev.action, ev.source) for ev in e.labels] == [("label", "oracle")]
    assert e.labels[0].label == int(run.data.labels([sid])[0])
    text = e.summary()
    assert f"Sample {sid}, round 1" in text
    assert "Picked by" in text


def test_other_strategies_ranks_equal_a_direct_ranking(run):
    sid = int(_batch(run, 1)[schema.SAMPLE_ID].iloc[0])
    e = explain(run, sid, 1)
    scores = run.round_scores(1)
    assert {r.strategy for r in e.other_strategies} == {"entropy", "margin", "random"}
    for r in e.other_strategies:
        g = scores[scores[schema.STRATEGY] == r.strategy].reset_index(drop=True)
        rank = g[schema.SCORE].rank(method="min", ascending=False)
        k = int(np.flatnonzero(g[schema.SAMPLE_ID].to_numpy() == sid)[0])
        assert r.rank == int(rank[k])
        assert r.of == len(g)
        assert r.picked == bool(g[schema.PICKED][k])
        assert f"{r.strategy}: rank {r.rank:,} of {r.of:,}" in e.summary()


def test_a_sample_labelled_before_the_round_is_said_so(run):
    sid = int(_batch(run, 0)[schema.SAMPLE_ID].iloc[0])  # picked in round 0, labelled then
    e = explain(run, sid, 1)
    assert e.labelled_before
    assert e.flips == ()
    assert math.isnan(e.step_norm)
    assert e.selected_round == 0
    assert "labelled before this round" in e.summary()
    assert [h.round for h in e.history] == [0]  # in the pool in round 0 only
    early = explain(run, sid, 0)
    assert not early.labelled_before
    assert early.selected


def test_an_unpicked_sample_and_the_latest_round_by_default(run):
    s = run.samples
    s = s[(s[schema.ROUND] == 1) & ~s[schema.SELECTED] & (s[schema.LABELLED_ROUND] < 0)]
    sid = int(s[schema.SAMPLE_ID].iloc[0])
    e = explain(run, sid)
    assert e.round == 1
    assert e.picked_by is None
    assert not e.selected
    assert e.selected_round is None
    assert e.labels == ()
    assert ("A candidate, not picked." in e.summary()) == bool(s[schema.CANDIDATE].iloc[0])


def test_explain_reads_a_run_directory_and_leaves_frames_alone(run):
    sid = int(_batch(run, 1)[schema.SAMPLE_ID].iloc[0])
    again = explain(str(run.path), sid, 1)
    assert again == explain(run, sid, 1)
    samples, flips, log = run.samples, run.flips, run.label_log
    copies = samples.copy(), flips.copy(), log.copy()
    explain_frames(samples, flips, log, None, sid, 1)
    for a, b in zip((samples, flips, log), copies, strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("sample_id", "round", "match"),
    [
        (10**9, 1, "not in round 1's pool"),
        (3, 7, "not written"),
        ("3", 1, "sample_id must be an integer"),
        (3, 1.5, "round must be an integer"),
    ],
)
def test_bad_inputs_say_what_to_fix(run, sample_id, round, match):
    with pytest.raises(AlfavizInputError, match=match):
        explain(run, sample_id, round)


def test_a_pick_of_a_strategy_without_clusters_is_picked_by_score(tmp_path):
    exp = Experiment(
        "digits", "auto", "margin", initial_size=20, budget=4, seed=0, projection="none",
        train=TrainConfig(max_epochs=5), out=tmp_path / "margin", labelling="oracle",
    )  # fmt: skip
    exp.step()
    s = exp.samples
    sid = int(s[(s[schema.ROUND] == 0) & s[schema.SELECTED]][schema.SAMPLE_ID].iloc[0])
    e = explain(exp, sid, 0)
    assert e.picked_by == "score"
    assert e.cluster is None
    assert e.cluster_size is None
    assert "for its score" in e.summary()
    assert "k-means" not in e.summary()
    assert e.history[-1].picked_by == "score"
