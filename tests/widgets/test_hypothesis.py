"""The hypothesis chart and the labelling panel's outcome tally: the run's numbers, live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.analysis.hypothesis import hypothesis_rates, outcome_of
from alfaviz.session import open_run
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._ab import display_name
from alfaviz.widgets._gallery import flip_targets
from alfaviz.widgets._hypothesis import HypothesisChart, hypothesis_figure
from alfaviz.widgets._labels import TALLY, LabelPanel, batch_tally
from tests.widgets.conftest import make_run


@pytest.fixture(scope="module")
def hyp_run(tmp_path_factory):
    """Two ALFA-Mix rounds by the oracle, only for these tests (they record Entropy)."""
    return make_run(tmp_path_factory.mktemp("hyp") / "run", labelling="oracle", rounds=2)


def _chart(run, **kw):
    data = RunData(run, **kw)
    state = AppState()
    data.attach(state)
    chart = HypothesisChart(state, data)
    chart.wait(60)
    return state, data, chart


def _assert_chart_is(chart, want):
    assert chart.errors.messages == []
    got = chart.rates
    assert got is not None
    cols = list(schema.HYPOTHESIS.names)
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True)
    )  # NaN rates (nothing labelled yet) compare equal here
    want = want.sort_values(schema.ROUND, kind="stable")
    assert [t.name for t in chart.figure.data] == [
        "label = pseudo-label (little new)", "label = a flip target (supports it)", "neither",
    ]  # fmt: skip
    for trace, o in zip(chart.figure.data, schema.OUTCOMES, strict=True):
        rounds, who = trace.x
        assert list(rounds) == [f"round {r}" for r in want[schema.ROUND]]
        assert list(who) == [display_name(s) for s in want[schema.STRATEGY]]
        rate = np.nan_to_num(want[schema.RATE_PREFIX + o].to_numpy(np.float64) * 100)
        np.testing.assert_allclose(np.asarray(trace.y, dtype=np.float64), rate)
        cd = np.asarray(trace.customdata, dtype=np.int64)
        np.testing.assert_array_equal(cd[:, 0], want[schema.N_OUTCOME_PREFIX + o])
        np.testing.assert_array_equal(cd[:, 1], want[schema.N_LABELLED])
        np.testing.assert_array_equal(cd[:, 2], want[schema.N_PICKED])


def test_the_chart_shows_hypothesis_rates(hyp_run):
    _, data, chart = _chart(hyp_run)
    assert "alfaviz-hypothesis" in chart.widget._dom_classes
    assert "flip target" in chart.about.value
    assert "hypothesis" in chart.about.value
    want = hypothesis_rates(hyp_run)
    assert set(want[schema.STRATEGY]) == {"alfamix", "entropy"}
    _assert_chart_is(chart, want)
    assert chart.figure.layout.yaxis.ticksuffix == "%"
    assert "computed in" in chart.message
    assert data.cached_hypothesis() is chart.rates


def test_the_pure_figure_draws_a_bar_per_round_and_strategy(hyp_run):
    rates = hypothesis_rates(hyp_run)
    fig = hypothesis_figure(rates)
    assert fig.layout.barmode == "stack"
    assert all(len(t.y) == len(rates) for t in fig.data)
    shapes = list(fig.data[0].marker.pattern.shape)
    assert shapes == ["" if s == "alfamix" else "/" for s in rates[schema.STRATEGY]]


def test_the_chart_updates_after_a_new_label(tmp_path):
    run = make_run(tmp_path / "human", labelling="human", rounds=1)
    state, data, chart = _chart(run, read_only=False)
    before = chart.rates.copy()
    _assert_chart_is(chart, hypothesis_rates(run))
    own = before[schema.STRATEGY] == "alfamix"
    assert int(before.loc[own, schema.N_LABELLED].iloc[0]) == 0  # nobody has labelled yet
    # give a pending pick its pseudo-label where that is not its dataset label: it counts
    # as a pseudo-label outcome (the dataset's label would have said otherwise)
    s = data.samples(0).set_index(schema.SAMPLE_ID)
    pending = [int(i) for i in data.pending]
    sid = next(i for i in pending if s.loc[i, schema.PSEUDO_LABEL] != s.loc[i, schema.TRUE_LABEL])
    version = state.data_version
    data.submit_label(sid, int(s.loc[sid, schema.PSEUDO_LABEL]))
    assert state.data_version > version
    chart.wait(60)
    after = chart.rates
    want = hypothesis_rates(run)
    _assert_chart_is(chart, want)
    col = schema.N_OUTCOME_PREFIX + "pseudo_label"
    own = after[schema.STRATEGY] == "alfamix"
    assert int(after.loc[own, col].iloc[0]) == int(before.loc[own, col].iloc[0]) + 1
    assert int(after.loc[own, schema.N_LABELLED].iloc[0]) == 1


def _direct_tally(data):
    r = data.n_rounds - 1
    s = data.samples(r).set_index(schema.SAMPLE_ID)
    batch = data.queried(r)[schema.SAMPLE_ID].tolist()
    targets = flip_targets(data.flips(r), batch)
    labels = data.labels()
    out = dict.fromkeys(TALLY, 0)
    for sid in batch:
        out[outcome_of(int(labels[sid]), int(s.loc[sid, schema.PSEUDO_LABEL]), targets[sid])] += 1
    return out


def test_the_label_panel_tallies_the_batch_from_the_run(tmp_path):
    run = make_run(tmp_path / "human", labelling="human", rounds=1)
    data = RunData(run, read_only=False)
    state = AppState()
    data.attach(state)
    panel = LabelPanel(state, data)
    assert "alfaviz-labels-tally" in panel.tally_text._dom_classes
    assert panel.tally == {**dict.fromkeys(TALLY, 0), "unlabelled": 8}
    s = data.samples(0).set_index(schema.SAMPLE_ID)
    targets = flip_targets(data.flips(0), list(panel.queue))
    # label three: one with its pseudo-label, one with a flip target if any, one with neither
    sid = panel.current
    panel.on_class(int(s.loc[sid, schema.PSEUDO_LABEL]))
    sid = panel.current
    pseudo = int(s.loc[sid, schema.PSEUDO_LABEL])
    flip = [c for c in targets[sid] if c != pseudo]
    panel.on_class(flip[0] if flip else (pseudo + 1) % data.n_classes)
    sid = panel.current
    pseudo = int(s.loc[sid, schema.PSEUDO_LABEL])
    other = next(c for c in range(data.n_classes) if c != pseudo and c not in targets[sid])
    panel.on_class(other)
    panel.on_skip()
    want = _direct_tally(data)
    assert panel.tally == want
    assert want["pseudo_label"] >= 1
    assert want["neither"] >= 1
    assert want["unlabelled"] == 5
    assert sum(want.values()) == 8
    for o in schema.OUTCOMES:
        assert f'data-outcome="{o}" data-count="{want[o]}"' in panel.tally_text.value
    assert "3 of 8 labelled" in panel.tally_text.value
    # nothing lives only in the panel: a new panel, and a reopened run, show the same tally
    again = LabelPanel(AppState(), RunData(run, read_only=False))
    assert again.tally == want
    reopened = RunData(open_run(run.store.path))
    assert LabelPanel(AppState(), reopened).tally == want
    # an undo takes its label out of the tally
    panel.on_undo()  # the skip
    panel.on_undo()  # the "neither" label
    want2 = _direct_tally(data)
    assert panel.tally == want2
    assert want2["unlabelled"] == 6


def test_batch_tally_is_pure(hyp_run):
    data = RunData(hyp_run)
    r = data.n_rounds - 1
    q = data.queried(r)
    tally = batch_tally(data.samples(r), data.flips(r), q, data.labels())
    assert tally == _direct_tally(data)
    assert tally["unlabelled"] == 0  # the oracle labelled the batch
    empty = batch_tally(data.samples(r), data.flips(r), q.iloc[:0], data.labels())
    assert empty == dict.fromkeys(TALLY, 0)
