"""explain_round and hypothesis_rates: each pick's reason and what its label says."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.analysis.hypothesis import (
    DATASET_SOURCE,
    explain_round,
    explain_round_frames,
    hypothesis_rates,
    outcome_of,
    rates_from_picks,
)
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment, open_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=30, budget=12, seed=1, projection="pca",
        train=TrainConfig(max_epochs=30), out=tmp_path_factory.mktemp("hyp") / "run",
        labelling="oracle",
    )  # fmt: skip
    exp.run(3)
    return exp


def test_outcome_of():
    assert outcome_of(3, 3, (1, 3)) == "pseudo_label"
    assert outcome_of(1, 3, (1, 5)) == "flip_target"
    assert outcome_of(2, 3, (1, 5)) == "neither"
    assert outcome_of(-1, 3, (1,)) == "unlabelled"


def test_explain_round_gives_every_pick_with_its_reason_and_outcome(run):
    r = 1
    f = explain_round(run, r)
    assert list(f.columns) == list(schema.EXPLAIN_ROUND.names)
    own = f[f[schema.STRATEGY] == "alfamix"]
    s = run.samples
    s = s[s[schema.ROUND] == r].set_index(schema.SAMPLE_ID)
    batch = s[s[schema.SELECTED]].index
    assert sorted(own[schema.SAMPLE_ID]) == sorted(batch)
    assert own[schema.ORDER].tolist() == list(range(len(own)))
    flips = run.flips
    flips = flips[(flips[schema.ROUND] == r) & flips[schema.FLIPPED]]
    labels = run.labels
    for _, row in own.iterrows():
        sid = int(row[schema.SAMPLE_ID])
        want = sorted(set(flips[flips[schema.SAMPLE_ID] == sid][schema.FLIP_TO].tolist()))
        assert row[schema.FLIP_TARGETS] == ",".join(map(str, want))
        assert row[schema.PSEUDO_LABEL] == s.loc[sid, schema.PSEUDO_LABEL]
        assert row[schema.PICKED_BY] == ("fill" if s.loc[sid, schema.FILL] else "k-means")
        assert row[schema.LABEL] == labels[sid]  # the oracle labelled the batch
        assert row[schema.SOURCE] == "oracle"
        assert row[schema.OUTCOME] == outcome_of(int(labels[sid]), row[schema.PSEUDO_LABEL], want)
    base = f[f[schema.STRATEGY] == "entropy"]
    picked = run.round_scores(r)
    picked = picked[(picked[schema.STRATEGY] == "entropy") & picked[schema.PICKED]]
    assert (
        base[schema.SAMPLE_ID].tolist()
        == picked.sort_values(schema.ORDER)[schema.SAMPLE_ID].tolist()
    )
    # a baseline pick nobody labelled carries the dataset's label
    unl = base[base[schema.SOURCE] == DATASET_SOURCE]
    assert len(unl)
    for _, row in unl.iterrows():
        assert row[schema.LABEL] == s.loc[int(row[schema.SAMPLE_ID]), schema.TRUE_LABEL]
    assert (base[schema.PICKED_BY] == "").all()


def test_every_outcome_occurs_somewhere_and_rates_add_up(run):
    h = hypothesis_rates(run)
    assert list(h.columns) == list(schema.HYPOTHESIS.names)
    assert sorted(set(h[schema.ROUND])) == [0, 1, 2]
    assert set(h[schema.STRATEGY]) == {"alfamix", "entropy"}
    n = sum(h[schema.N_OUTCOME_PREFIX + o] for o in schema.OUTCOMES)
    assert (n == h[schema.N_LABELLED]).all()
    total = sum(h[schema.RATE_PREFIX + o] for o in schema.OUTCOMES)
    np.testing.assert_allclose(total, 1.0)
    # counted directly: ALFA-Mix picks whose oracle label is one of the classes they flip to
    flips, labels, s = run.flips, run.labels, run.samples
    for r in range(3):
        sel = s[(s[schema.ROUND] == r) & s[schema.SELECTED]]
        hits = 0
        for sid, pseudo in zip(sel[schema.SAMPLE_ID], sel[schema.PSEUDO_LABEL], strict=True):
            f = flips[(flips[schema.ROUND] == r) & (flips[schema.SAMPLE_ID] == sid)]
            to = set(f[f[schema.FLIPPED]][schema.FLIP_TO].tolist())
            hits += int(labels[sid] != pseudo and labels[sid] in to)
        row = h[(h[schema.ROUND] == r) & (h[schema.STRATEGY] == "alfamix")].iloc[0]
        assert row[schema.N_OUTCOME_PREFIX + "flip_target"] == hits
    # the rates equal the per-pick rows
    picks = pd.concat([explain_round(run, r) for r in range(3)], ignore_index=True)
    pd.testing.assert_frame_equal(rates_from_picks(picks), h)


def test_a_reopened_run_gives_the_same_numbers(run):
    again = open_run(run.path)
    pd.testing.assert_frame_equal(explain_round(again, 2), explain_round(run, 2))
    pd.testing.assert_frame_equal(explain_round(str(run.path), 2), explain_round(run, 2))


def test_a_person_s_pending_batch_is_unlabelled_until_labelled(tmp_path):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=4, seed=0, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=tmp_path / "h", labelling="human",
    )  # fmt: skip
    exp.step()
    f = explain_round(exp, 0, baseline=None)
    assert set(f[schema.STRATEGY]) == {"alfamix"}
    assert (f[schema.OUTCOME] == "unlabelled").all() or (f[schema.SOURCE] == DATASET_SOURCE).all()
    sid = int(exp.pending[0])
    exp.submit_label(sid, 7)
    g = explain_round(exp, 0, baseline=None).set_index(schema.SAMPLE_ID)
    assert g.loc[sid, schema.LABEL] == 7
    assert g.loc[sid, schema.SOURCE] == "human"
    h = hypothesis_rates(exp, baseline=None)
    assert int(h[schema.N_PICKED].iloc[0]) == 4


def test_the_frame_twin_and_bad_input(run):
    s, fl, lab = run.samples, run.flips, run.store.labels()
    assert explain_round_frames(s, fl, lab, {}, 0).empty
    with pytest.raises(AlfavizInputError, match="not written"):
        explain_round_frames(s, fl, lab, {"alfamix": [1]}, 9)
    with pytest.raises(AlfavizInputError, match="not in round"):
        explain_round_frames(s, fl, lab, {"alfamix": [10**9]}, 0)
    with pytest.raises(AlfavizInputError, match="not written"):
        explain_round(run, 5)
    with pytest.raises(AlfavizInputError, match="integer"):
        explain_round(run, 1.5)
    with pytest.raises(AlfavizInputError, match="unknown strategy"):
        explain_round(run, 0, baseline="nope")
    empty = rates_from_picks(explain_round_frames(s, fl, lab, {}, 0))
    assert empty.empty
    assert list(empty.columns) == list(schema.HYPOTHESIS.names)
    assert math.isnan(rates_from_picks(pd.DataFrame(
        {schema.ROUND: [0], schema.STRATEGY: ["x"], schema.OUTCOME: ["unlabelled"]}
    ))[schema.RATE_PREFIX + "neither"].iloc[0])  # fmt: skip


def test_a_persons_pending_batch_has_no_outcomes_until_it_is_labelled(tmp_path):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=6, seed=0, projection="none",
        train=TrainConfig(max_epochs=5), out=tmp_path / "human", labelling="human",
    )  # fmt: skip
    exp.step()
    f = explain_round(exp, 0, baseline="entropy")
    own = f[f[schema.STRATEGY] == "alfamix"]
    assert len(own) == 6
    # nobody has labelled the batch: the dataset's label must not leak into the outcomes
    assert (own[schema.OUTCOME] == "unlabelled").all()
    assert (own[schema.LABEL] == -1).all()
    base = f[f[schema.STRATEGY] == "entropy"]
    assert (base[schema.SOURCE] == DATASET_SOURCE).any()  # a baseline still reads the data
    sid = int(own[schema.SAMPLE_ID].iloc[0])
    exp.submit_label(sid, 4)
    row = explain_round(exp, 0, baseline=None).set_index(schema.SAMPLE_ID).loc[sid]
    assert row[schema.LABEL] == 4
    assert row[schema.SOURCE] == "human"
    assert row[schema.OUTCOME] != "unlabelled"
    h = hypothesis_rates(exp, baseline=None)
    assert int(h[schema.N_LABELLED].iloc[0]) == 1


def test_a_run_that_is_not_alfamix_says_its_picks_were_made_by_score(tmp_path):
    exp = Experiment(
        "digits", "auto", "entropy", initial_size=20, budget=5, seed=0, projection="none",
        train=TrainConfig(max_epochs=5), out=tmp_path / "ent", labelling="oracle",
    )  # fmt: skip
    exp.step()
    f = explain_round(exp, 0, baseline=None)
    assert len(f) == 5
    assert (f[schema.PICKED_BY] == "score").all()
    assert (f[schema.CLUSTER] == -1).all()
