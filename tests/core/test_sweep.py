"""The ε sweep replays any schedule from recorded critical ε, as find_candidates would run it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alfaviz import schema
from alfaviz.alfamix import find_candidates
from alfaviz.analysis.sweep import candidate_sweep, round_sweep
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from alfaviz.strategies import ALFAMix

CAPS = (0.05, 0.1, 0.125, 0.25, 1 / 3, 0.5, 1.0)


def _problem(seed: int, relu: bool):
    g = torch.Generator().manual_seed(seed)
    n, d, c = 1500, 24, 10
    head = torch.nn.Linear(d, c)
    with torch.no_grad():
        head.weight.copy_(torch.randn(c, d, generator=g))
        head.bias.copy_(torch.randn(c, generator=g) * 0.1)
    zu = torch.randn(n, d, generator=g)
    zl = torch.randn(120, d, generator=g)
    if relu:
        zu, zl = torch.relu(zu), torch.relu(zl)
    yl = torch.randint(0, c, (120,), generator=g)
    return zu, zl, yl, head


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("budget", [20, 300, 1400])
def test_a_sweep_equals_find_candidates_at_every_alpha_cap(relu, budget):
    zu, zl, yl, head = _problem(3, relu)
    recorded = find_candidates(zu, zl, yl, head, budget)  # the default schedule, 0.2 .. 1.0
    stops = set()
    for cap in CAPS:
        ref = find_candidates(zu, zl, yl, head, budget, alpha_cap=cap)
        sw = candidate_sweep(recorded.critical_eps, budget, cap)
        assert sw.level == ref.level, cap
        assert sw.level_index == ref.level_index, cap
        assert sw.counts == ref.n_candidates_per_level, cap
        np.testing.assert_array_equal(sw.mask, ref.mask)
        assert sw.n_candidates == ref.n_candidates
        assert sw.exact
        stops.add(sw.level_index)
    if budget == 300:
        assert max(stops) > 0  # some schedule ran past its first level


def test_a_schedule_stopping_above_the_recorded_levels_is_marked_inexact():
    zu, zl, yl, head = _problem(1, False)
    recorded = find_candidates(zu, zl, yl, head, 1500)
    sw = candidate_sweep(recorded.critical_eps, 1500, 0.3)  # 0.3, 0.6, 0.9, 1.2
    assert sw.levels[-1] == pytest.approx(1.2)
    assert sw.level == pytest.approx(1.2)
    assert not sw.exact
    assert candidate_sweep(recorded.critical_eps, 1500, 0.3, max_eps=1.2).exact


def test_the_per_sample_minimum_and_the_matrix_give_the_same_sweep():
    crit = np.array([[0.5, np.inf], [0.05, 0.9], [np.inf, np.inf], [0.21, 0.2]])
    a = candidate_sweep(crit, 1, 0.1, sample_ids=[10, 11, 12, 13])
    b = candidate_sweep(crit.min(axis=1), 1, 0.1, sample_ids=[10, 11, 12, 13])
    np.testing.assert_array_equal(a.mask, b.mask)
    # levels 0.1, 0.2, ...: one candidate after 0.1, two after 0.2 > budget 1: stop at 0.2
    assert a.counts == (1, 2)
    assert a.level == pytest.approx(0.2)
    assert a.candidate_ids.tolist() == [11, 13]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"critical_eps": [0.1, np.nan], "budget": 1, "alpha_cap": 0.2}, "NaN"),
        ({"critical_eps": [0.1], "budget": 0, "alpha_cap": 0.2}, "budget"),
        ({"critical_eps": [0.1], "budget": 1, "alpha_cap": 0.0}, "alpha_cap"),
        ({"critical_eps": [0.1], "budget": 1, "alpha_cap": 0.2, "sample_ids": [1, 2]}, "rows"),
        ({"critical_eps": np.zeros((1, 1, 1)), "budget": 1, "alpha_cap": 0.2}, "shape"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(AlfavizInputError, match=match):
        candidate_sweep(**kwargs)


@pytest.fixture
def run(trained_run):
    return trained_run


@pytest.mark.parametrize("r", [0, 1])
def test_round_sweep_replays_the_rounds_own_query(run, r):
    """At the recorded alpha_cap the sweep gives back the round's candidates and level;
    at another it equals find_candidates on the round's stored inputs."""
    own = round_sweep(run, r, 0.2)
    s = run.samples
    s = s[s[schema.ROUND] == r]
    row = run.rounds[run.rounds[schema.ROUND] == r].iloc[0]
    assert own.level == pytest.approx(float(row[schema.LEVEL]))
    assert own.n_candidates == int(row[schema.N_CANDIDATES])
    assert set(own.candidate_ids.tolist()) == set(s[s[schema.CANDIDATE]][schema.SAMPLE_ID])
    inputs = run._scores.query_inputs(r)
    np.testing.assert_array_equal(own.sample_ids, inputs.unlabelled_ids)
    for cap in (0.05, 0.1, 0.5):
        ref = find_candidates(inputs.z_unlabelled, inputs.z_labelled, inputs.y_labelled,
                              inputs.head, inputs.budget, alpha_cap=cap)  # fmt: skip
        sw = round_sweep(run, r, cap)
        np.testing.assert_array_equal(sw.mask, ref.mask)
        assert sw.level == ref.level


def test_round_sweep_refuses_what_it_cannot_replay(run, tmp_path):
    with pytest.raises(AlfavizInputError, match="not written"):
        round_sweep(run, 7, 0.1)
    exp = Experiment(
        "digits", "auto", "entropy", initial_size=20, budget=5, seed=0, projection="pca",
        train=TrainConfig(max_epochs=1, min_steps=1), out=tmp_path / "e", labelling="oracle",
    )  # fmt: skip
    exp.step()
    with pytest.raises(AlfavizInputError, match="ALFA-Mix run"):
        round_sweep(exp, 0, 0.1)
    learned = Experiment(
        "digits", "auto", ALFAMix(alpha="learned", random_state=0), initial_size=20, budget=5,
        seed=0, projection="pca", train=TrainConfig(max_epochs=1, min_steps=1),
        out=tmp_path / "l", labelling="oracle",
    )  # fmt: skip
    learned.step()
    with pytest.raises(AlfavizInputError, match="learns α"):
        round_sweep(learned, 0, 0.1)
