"""The strategy A/B view: its numbers are the strategies' own, computed off the UI thread."""

from __future__ import annotations

import threading
from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pytest

from alfaviz import schema
from alfaviz.analysis.ab import AB_STRATEGIES, COUNT, IDS
from alfaviz.session import comparison_seed, open_run
from alfaviz.strategies import get_strategy
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._ab import StrategyAB, ab_figure, display_name
from tests.widgets.conftest import make_run

ROUND = 1


@pytest.fixture(scope="module")
def ab_run(tmp_path_factory):
    """Two ALFA-Mix rounds labelled by the oracle, only for these tests (they record scores)."""
    return make_run(tmp_path_factory.mktemp("ab") / "run", labelling="oracle", rounds=2)


@pytest.fixture(scope="module")
def computed(ab_run):
    data = RunData(ab_run)
    state = AppState(round=ROUND)
    data.attach(state)
    view = StrategyAB(state, data)
    view.compute(wait=True)
    return state, data, view


def _direct_batches(run, r):
    """Each strategy's batch from its own query on the round's stored inputs."""
    inputs = run._scores.query_inputs(r)
    out = {}
    for name in AB_STRATEGIES:
        strategy = get_strategy(name)
        if schema.RANDOM_STATE in strategy.get_params():
            strategy.set_params(**{schema.RANDOM_STATE: comparison_seed(run.seed, r, name)})
        result = strategy.query(
            inputs.z_unlabelled, inputs.z_labelled, inputs.y_labelled, inputs.head,
            inputs.budget, unlabelled_ids=inputs.unlabelled_ids,
            labelled_ids=inputs.labelled_ids, n_classes=inputs.n_classes,
        )  # fmt: skip
        out[name] = np.asarray(result.selected_ids, dtype=np.int64)
    return out


def _own_batch(data, r):
    q = data.queried(r).sort_values(schema.ORDER)
    return q[schema.SAMPLE_ID].to_numpy(np.int64)


def test_overlap_counts_equal_the_strategies_own_queries(ab_run, computed):
    _state, data, view = computed
    assert "alfaviz-ab" in view.widget._dom_classes
    assert "alfaviz-ab-run" in view.run_button._dom_classes
    assert view.errors.messages == []
    c = view.comparison
    assert c is not None
    assert c.round == ROUND
    batches = {"alfamix": _own_batch(data, ROUND), **_direct_batches(ab_run, ROUND)}
    assert list(c.strategies) == list(batches)
    names = list(batches)
    want = np.array([[np.intersect1d(batches[a], batches[b]).size for b in names] for a in names])
    np.testing.assert_array_equal(c.overlap.loc[names, names].to_numpy(), want)
    heat = view.figure.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z, dtype=np.int64), want)
    assert list(heat.x) == [display_name(n) for n in names]
    assert [list(map(int, row)) for row in heat.text] == want.tolist()  # counts in the cells
    for name, ids in batches.items():
        np.testing.assert_array_equal(c.batches[name], ids)
    # the UpSet bars are the exclusive intersections, largest first, and partition the union
    bars = view.figure.data[1]
    counts = c.intersections[COUNT].to_numpy()
    np.testing.assert_array_equal(np.asarray(bars.y), counts)
    union = set().union(*(set(v.tolist()) for v in batches.values()))
    parts = [set(ids) for ids in c.intersections[IDS]]
    assert sum(len(p) for p in parts) == len(union) == len(set().union(*parts))
    for row, ids in zip(c.intersections[names].to_numpy(bool), parts, strict=True):
        for name, member in zip(names, row, strict=True):
            assert (
                (ids <= set(batches[name].tolist()))
                if member
                else not (ids & set(batches[name].tolist()))
            )


def test_only_button_selects_exactly_the_own_only_picks(computed):
    state, _data, view = computed
    c = view.comparison
    own = c.batches["alfamix"]
    others = np.concatenate([v for k, v in c.batches.items() if k != "alfamix"])
    want = own[~np.isin(own, others)]
    assert f">{want.size}<" in view.only_text.value
    state.select([])
    assert view.only_button.disabled == (want.size == 0)
    view.only_button.click()
    assert state.selected_ids == tuple(want.tolist())
    assert view.errors.messages == []


def test_show_buttons_overlay_each_batch(computed):
    state, _data, view = computed
    assert "alfaviz-ab-show" in view.show_box._dom_classes
    assert list(view.show_buttons) == ["alfamix", *AB_STRATEGIES]
    for name, button in view.show_buttons.items():
        button.click()
        assert state.selected_ids == tuple(view.comparison.batches[name].tolist())
    # a click on an UpSet bar selects that intersection, on a cell the shared picks
    view._on_bar_click(None, SimpleNamespace(point_inds=[0]))
    assert state.selected_ids == tuple(view.comparison.intersections[IDS].iloc[0])
    a, b = display_name("alfamix"), display_name("margin")
    view._on_cell_click(None, SimpleNamespace(point_inds=[], xs=[b], ys=[a]))
    c = view.comparison
    assert set(state.selected_ids) == set(c.batches["alfamix"]) & set(c.batches["margin"])
    view._on_cell_click(None, SimpleNamespace(point_inds=[[3, 3]], xs=[], ys=[]))
    assert state.selected_ids == tuple(c.batches[c.strategies[3]].tolist())


def test_diversity_equals_a_direct_numpy_computation(ab_run, computed):
    _state, data, view = computed
    c = view.comparison
    ids, z = ab_run.store.read_embeddings(ROUND)
    at = {int(s): i for i, s in enumerate(ids.tolist())}
    samples = data.samples(ROUND).set_index(schema.SAMPLE_ID)
    d = c.diversity.set_index(schema.STRATEGY)
    for name, batch in c.batches.items():
        zb = np.asarray(z, dtype=np.float64)[[at[int(s)] for s in batch]]
        pair = [np.linalg.norm(zb[i] - zb[j]) for i, j in combinations(range(len(zb)), 2)]
        assert d.loc[name, schema.MEAN_DISTANCE] == pytest.approx(np.mean(pair), rel=1e-6)
        true = samples.loc[batch, schema.TRUE_LABEL].to_numpy()
        pseudo = samples.loc[batch, schema.PSEUDO_LABEL].to_numpy()
        assert d.loc[name, schema.CLASSES_COVERED] == np.unique(true[true >= 0]).size
        assert d.loc[name, schema.PSEUDO_CLASSES_COVERED] == np.unique(pseudo).size
        assert d.loc[name, schema.N_SAMPLES] == len(batch)
        assert f"{np.mean(pair):.3g}" in view.table.value
    assert "alfaviz-ab-diversity" in view.table._dom_classes


def test_the_work_runs_off_the_ui_thread(ab_run):
    data = RunData(ab_run)
    release = threading.Event()
    seen = []
    real = data.compare_batches

    def slow(r, strategies=None):
        seen.append(threading.current_thread())
        assert release.wait(30)
        return real(r, strategies)

    data.compare_batches = slow
    state = AppState(round=ROUND)
    view = StrategyAB(state, data)
    view.compute()  # the button's handler
    assert view.comparison is None  # it returned while the worker waits
    assert view.run_button.disabled
    assert view.run_button.description == "comparing…"
    assert f"round {ROUND}" in view.message
    release.set()
    view.wait(30)
    assert seen
    assert threading.main_thread() not in seen
    assert view.comparison is not None
    assert not view.run_button.disabled
    assert view.errors.messages == []


def test_a_compared_round_shows_at_once_and_after_reopening(ab_run, computed):
    state, _data, view = computed
    state.round = 0
    view.wait()
    assert view.comparison is None or view.comparison.round == 0  # round 0 was never asked
    state.round = ROUND
    assert view.comparison is not None
    assert view.comparison.round == ROUND
    # a reopened run reads the recorded batches: the view fills without the button
    reopened = RunData(open_run(ab_run.store.path))
    s2 = AppState(round=ROUND)
    v2 = StrategyAB(s2, reopened)
    v2.wait(60)
    assert v2.comparison is not None
    assert "read from the run" in v2.message
    np.testing.assert_array_equal(
        v2.comparison.overlap.to_numpy(), view.comparison.overlap.to_numpy()
    )


def test_two_threads_compute_a_comparison_once(ab_run):
    data = RunData(ab_run)
    out = []
    threads = [threading.Thread(target=lambda: out.append(data.compare_batches(ROUND)))
               for _ in range(2)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == 2
    assert out[0] is out[1]
    assert data.cached_comparison(ROUND) is out[0]
    assert data.comparison_recorded(ROUND)


def test_the_pure_figure_without_a_comparison_has_the_same_traces():
    empty = ab_figure(None, title="nothing yet")
    assert len(empty.data) == 4
    assert "nothing yet" in empty.layout.title.text
