"""Strategy A/B on one round (``alfaviz.analysis.ab``): overlap, UpSet intersections, diversity.

The pure twin ``batch_comparison`` is checked with hypothesis on random batches (the overlap
is symmetric with the batch sizes on its diagonal, the exclusive intersections partition the
union, ``only`` is a batch minus the others); ``compare_batches`` on a small digits run is
checked against the strategies' own queries on the round's stored inputs.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alfaviz import schema
from alfaviz.analysis.ab import (
    AB_STRATEGIES,
    COUNT,
    IDS,
    batch_comparison,
    compare_batches,
    mean_pairwise_distance,
)
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment, comparison_seed
from alfaviz.strategies import get_strategy

N_POOL = 40
NAMES = ("own", "a", "b", "c")


def _frames(batches: dict[str, list[int]], r: int = 0):
    """A scores frame holding ``batches`` (each in pick order) and a samples frame."""
    parts = []
    for name, ids in batches.items():
        order = np.full(N_POOL, -1, dtype=np.int32)
        order[np.asarray(ids, dtype=np.int64)] = np.arange(len(ids), dtype=np.int32)
        parts.append(
            pd.DataFrame(
                {
                    schema.ROUND: np.full(N_POOL, r, dtype=np.int32),
                    schema.STRATEGY: [name] * N_POOL,
                    schema.SAMPLE_ID: np.arange(N_POOL, dtype=np.int64),
                    schema.SCORE: np.zeros(N_POOL, dtype=np.float32),
                    schema.PICKED: order >= 0,
                    schema.ORDER: order,
                    schema.RANDOM_STATE: np.zeros(N_POOL, dtype=np.int64),
                }
            )
        )
    scores = schema.conform(pd.concat(parts, ignore_index=True), schema.STRATEGY_SCORES)
    ids = np.arange(N_POOL)
    samples = pd.DataFrame(
        {
            schema.ROUND: np.full(N_POOL, r),
            schema.SAMPLE_ID: ids,
            schema.TRUE_LABEL: ids % 3,
            schema.PSEUDO_LABEL: ids % 5,
        }
    )
    return scores, samples


_batch = st.lists(st.integers(0, N_POOL - 1), min_size=1, max_size=12, unique=True)


@settings(max_examples=40, deadline=None)
@given(st.tuples(*(_batch for _ in NAMES)))
def test_overlap_intersections_and_only_on_random_batches(drawn):
    batches = dict(zip(NAMES, drawn, strict=True))
    scores, samples = _frames(batches)
    c = batch_comparison(scores, samples, 0)
    assert c.own == "own"
    assert c.strategies == NAMES
    for n in NAMES:
        np.testing.assert_array_equal(c.batches[n], batches[n])  # pick order kept
    m = c.overlap.loc[list(NAMES), list(NAMES)].to_numpy()
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), [len(batches[n]) for n in NAMES])
    for i, j in combinations(range(len(NAMES)), 2):
        assert m[i, j] == len(set(batches[NAMES[i]]) & set(batches[NAMES[j]]))
    # the exclusive intersections partition the union, each with its exact membership
    union = set().union(*map(set, batches.values()))
    parts = [set(ids) for ids in c.intersections[IDS]]
    assert sum(map(len, parts)) == len(union)
    assert set().union(*parts) == union
    assert c.intersections[COUNT].tolist() == [len(p) for p in parts]
    assert c.intersections[COUNT].is_monotonic_decreasing
    for key, ids in zip(c.intersections[list(NAMES)].to_numpy(bool), parts, strict=True):
        assert key.any()
        for sid in ids:
            assert tuple(sid in batches[n] for n in NAMES) == tuple(key)
    keys = [tuple(k) for k in c.intersections[list(NAMES)].to_numpy(bool)]
    assert len(keys) == len(set(keys))
    # only(name): the batch minus every other, in pick order
    for n in NAMES:
        rest = set().union(*(set(batches[o]) for o in NAMES if o != n))
        assert c.only(n).tolist() == [s for s in batches[n] if s not in rest]
    np.testing.assert_array_equal(c.only_own, c.only("own"))
    with pytest.raises(AlfavizInputError, match="not compared"):
        c.only("nobody")


def test_diversity_without_embeddings_counts_classes():
    batches = {"own": [0, 1, 2, 3], "a": [3, 6, 9]}
    scores, samples = _frames(batches)
    d = batch_comparison(scores, samples, 0).diversity.set_index(schema.STRATEGY)
    assert d.loc["own", schema.CLASSES_COVERED] == 3  # 0 1 2 0
    assert d.loc["a", schema.CLASSES_COVERED] == 1  # all 0 mod 3
    assert d.loc["a", schema.PSEUDO_CLASSES_COVERED] == 3  # 3 1 4 mod 5
    assert d.loc["own", schema.N_SAMPLES] == 4
    assert np.isnan(d.loc["own", schema.MEAN_DISTANCE])
    z = np.random.default_rng(0).normal(size=(N_POOL, 3))
    d = batch_comparison(scores, samples, 0, embeddings=(np.arange(N_POOL), z)).diversity
    d = d.set_index(schema.STRATEGY)
    pair = [np.linalg.norm(z[i] - z[j]) for i, j in combinations([3, 6, 9], 2)]
    assert d.loc["a", schema.MEAN_DISTANCE] == pytest.approx(np.mean(pair))


def test_no_scores_for_the_round_is_a_clear_error():
    scores, samples = _frames({"own": [1]})
    with pytest.raises(AlfavizInputError, match="no strategy"):
        batch_comparison(scores, samples, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(1, 5), st.integers(1, 700))
def test_mean_pairwise_distance_is_the_mean_over_distinct_pairs(n, d, block):
    z = np.random.default_rng(n * 7 + d).normal(size=(n, d))
    got = mean_pairwise_distance(z, block=block)
    if n < 2:
        assert np.isnan(got)
        return
    want = np.mean([np.linalg.norm(z[i] - z[j]) for i, j in combinations(range(n), 2)])
    # the Gram-matrix form loses ~1e-8 relative (sqrt of a cancelled square, the diagonal too)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


# compare_batches on a run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Experiment:
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=Path(tmp_path_factory.mktemp("ab")),
    )  # fmt: skip
    exp.run(2)
    return exp


def _direct(run: Experiment, r: int, name: str) -> np.ndarray:
    inputs = run._scores.query_inputs(r)
    strategy = get_strategy(name)
    if schema.RANDOM_STATE in strategy.get_params():
        strategy.set_params(**{schema.RANDOM_STATE: comparison_seed(run.seed, r, name)})
    result = strategy.query(
        inputs.z_unlabelled, inputs.z_labelled, inputs.y_labelled, inputs.head, inputs.budget,
        unlabelled_ids=inputs.unlabelled_ids, labelled_ids=inputs.labelled_ids,
        n_classes=inputs.n_classes,
    )  # fmt: skip
    return np.asarray(result.selected_ids, dtype=np.int64)


@pytest.mark.parametrize("r", [0, 1])
def test_compare_batches_equals_the_strategies_own_queries(run, r):
    c = compare_batches(run, r)
    assert c.round == r
    assert c.own == "alfamix"
    assert c.strategies == ("alfamix", *AB_STRATEGIES)
    q = run.store.read_extra(r, "queried").sort_values(schema.ORDER)
    np.testing.assert_array_equal(c.batches["alfamix"], q[schema.SAMPLE_ID].to_numpy(np.int64))
    for name in AB_STRATEGIES:
        np.testing.assert_array_equal(c.batches[name], _direct(run, r, name))
    names = list(c.strategies)
    m = c.overlap.loc[names, names].to_numpy()
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), [run.budget] * len(names))
    for i, j in combinations(range(len(names)), 2):
        shared = np.intersect1d(c.batches[names[i]], c.batches[names[j]]).size
        assert m[i, j] == shared
    union = set().union(*(set(v.tolist()) for v in c.batches.values()))
    parts = [set(ids) for ids in c.intersections[IDS]]
    assert sum(map(len, parts)) == len(union)
    assert set().union(*parts) == union
    others = np.concatenate([c.batches[n] for n in AB_STRATEGIES])
    own = c.batches["alfamix"]
    np.testing.assert_array_equal(c.only_own, own[~np.isin(own, others)])
    # diversity: the embeddings of the round, its dataset and pseudo labels
    ids, z = run.store.read_embeddings(r)
    at = pd.Index(ids)
    s = run.store.read_samples(r).set_index(schema.SAMPLE_ID)
    d = c.diversity.set_index(schema.STRATEGY)
    for name, batch in c.batches.items():
        zb = np.asarray(z, dtype=np.float64)[at.get_indexer(batch)]
        want = np.mean([np.linalg.norm(zb[i] - zb[j]) for i, j in combinations(range(8), 2)])
        assert d.loc[name, schema.MEAN_DISTANCE] == pytest.approx(want, rel=1e-6)
        assert d.loc[name, schema.CLASSES_COVERED] == s.loc[batch, schema.TRUE_LABEL].nunique()
        pseudo = s.loc[batch, schema.PSEUDO_LABEL]
        assert d.loc[name, schema.PSEUDO_CLASSES_COVERED] == pseudo.nunique()


def test_compare_batches_defaults_and_errors(run):
    latest = compare_batches(run, strategies="random")
    assert latest.round == 1
    assert latest.strategies == ("alfamix", "random")
    with pytest.raises(AlfavizInputError, match="not written"):
        compare_batches(run, 5)
    with pytest.raises(AlfavizInputError, match="unknown strategy"):
        compare_batches(run, 0, ["nope"])
