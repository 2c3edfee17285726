"""The "why was this selected?" card: what it says, what it follows, and who sets its focus."""

from __future__ import annotations

import re

import numpy as np
import pytest
from plotly.callbacks import Points

from alfaviz import schema
from alfaviz.analysis.explain import explain
from alfaviz.widgets import AppState, EmbeddingMap, Gallery, Heatmap, RunData
from alfaviz.widgets._explain import EMPTY_HINT, ExplainCard


def _card(run, round=1):
    data = RunData(run)
    state = AppState()
    data.attach(state)
    state.round = round
    return state, data, ExplainCard(state, data)


def _text(html):
    return re.sub(r"<[^>]+>", "", html)


def test_the_empty_card_says_what_to_do(trained_run):
    _state, _data, card = _card(trained_run)
    assert "alfaviz-why" in card.widget._dom_classes
    assert card.explanation is None
    assert EMPTY_HINT in card.html.value
    assert "alfaviz-why-empty" in card.html.value


def test_a_kmeans_pick_shows_its_flips_cluster_and_history(trained_run):
    state, data, card = _card(trained_run, round=1)
    s = data.samples(1)
    picked = s[s[schema.SELECTED] & ~s[schema.FILL]]
    # the pick with the most flipping anchors, so the table has several rows
    sid = int(picked.sort_values(schema.INCONSISTENCY, ascending=False)[schema.SAMPLE_ID].iloc[0])
    state.focus_id = sid
    e = card.explanation
    assert e == explain(trained_run, sid, 1)  # the same as the core's, from the cached frames
    html = card.html.value
    text = _text(html)
    names = data.class_names
    assert f"Why was #{sid} selected?" in text
    # one row per anchor that flips it, in order, with critical ε and before → after
    rows = re.findall(r'<tr class="alfaviz-why-flip" data-anchor="(\d+)">(.*?)</tr>', html)
    assert [int(a) for a, _ in rows] == [f.anchor_class for f in e.flips]
    assert len(rows) == int(s.set_index(schema.SAMPLE_ID).loc[sid, schema.INCONSISTENCY])
    f0 = e.flips[0]
    assert f"{f0.critical_eps:.3g}" in rows[0][1]
    assert f"{names[f0.label_before]} → <b>{names[f0.label_after]}</b>" in rows[0][1]
    assert f"‖α ⊙ Δ‖ = {e.step_norm:.3g}" in text
    # k-means: its cluster and the cluster's size among the round's candidates
    cluster = int(s.set_index(schema.SAMPLE_ID).loc[sid, schema.CLUSTER])
    cand = s[s[schema.CANDIDATE]]
    size = int((cand[schema.CLUSTER] == cluster).sum())
    noun = "candidate" if size == 1 else "candidates"
    assert f"representative of cluster {cluster} ({size:,} {noun})" in text
    # history: a row for each round it was in the pool, then who labelled it with what
    hist = re.findall(r'<tr class="alfaviz-why-round" data-round="(\d+)">', html)
    assert [int(h) for h in hist] == [0, 1]
    assert "selected in round 1" in text
    label = int(trained_run.data.labels([sid])[0])
    assert f"labelled {names[label]} by oracle" in text
    assert "alfaviz-why-strategies" in html
    assert card.errors.messages == []


def test_a_candidate_not_picked_and_a_sample_that_never_flips(trained_run):
    state, data, card = _card(trained_run, round=2)
    s = data.samples(2)
    lone = s[s[schema.CANDIDATE] & ~s[schema.SELECTED]].iloc[0]
    state.focus_id = int(lone[schema.SAMPLE_ID])
    text = _text(card.html.value)
    assert card.explanation == explain(trained_run, int(lone[schema.SAMPLE_ID]), 2)
    assert f"Why wasn't #{int(lone[schema.SAMPLE_ID])} selected?" in text
    assert f"A candidate in cluster {int(lone[schema.CLUSTER])}" in text
    rep = s[s[schema.SELECTED] & (s[schema.CLUSTER] == lone[schema.CLUSTER])]
    assert f"k-means took #{int(rep[schema.SAMPLE_ID].iloc[0])} there" in text
    lab = s[schema.LABELLED_ROUND].to_numpy()
    never = s[~s[schema.CANDIDATE] & ~np.isfinite(s[schema.CRITICAL_EPS]) & (lab < 0)].iloc[0]
    state.focus_id = int(never[schema.SAMPLE_ID])
    text = _text(card.html.value)
    assert "Not a candidate" in text
    assert "No anchor's mixing flips it" in text
    labelled = s[(lab >= 0) & (lab <= 2)].iloc[0]
    state.focus_id = int(labelled[schema.SAMPLE_ID])
    assert "was labelled before round 2" in _text(card.html.value)
    assert card.explanation.labelled_before


def test_a_fill_pick_says_so(oracle_run):
    state, data, card = _card(oracle_run, round=0)
    s = data.samples(0)
    fill = s[s[schema.SELECTED] & s[schema.FILL]]
    assert len(fill)
    sid = int(fill[schema.SAMPLE_ID].iloc[0])
    state.focus_id = sid
    assert card.explanation == explain(oracle_run, sid, 0)
    text = _text(card.html.value)
    assert "random fill" in text
    assert f"the round had {int(s[schema.CANDIDATE].sum())} candidates for a budget of 8" in text


def test_the_card_follows_the_round_the_focus_and_the_data(trained_run):
    state, data, card = _card(trained_run, round=1)
    sid = int(data.queried(1)[schema.SAMPLE_ID].iloc[0])
    state.focus_id = sid
    assert card.explanation.round == 1
    state.round = 0
    assert card.explanation == explain(trained_run, sid, 0)
    assert 'data-round="0"' in card.html.value
    state.round = 2  # labelled by then
    assert card.explanation.labelled_before
    other = int(data.queried(1)[schema.SAMPLE_ID].iloc[1])
    state.round = 1
    state.focus_id = other
    assert card.explanation.sample_id == other
    assert "No other strategy was scored" in card.html.value
    data.compare_strategies(1, ["entropy"])  # bumps data_version: the card shows the rank
    e = card.explanation
    assert e == explain(trained_run, other, 1)
    (rank,) = e.other_strategies
    assert rank.strategy == "entropy"
    assert f"entropy</b> rank {rank.rank:,} of {rank.of:,}" in card.html.value
    state.focus_id = None
    assert EMPTY_HINT in card.html.value


def test_explaining_reads_no_frame_from_disk_once_cached(trained_run):
    state, data, card = _card(trained_run, round=1)
    s = data.samples(1)
    ids = s[schema.SAMPLE_ID].to_numpy()
    state.focus_id = int(ids[0])  # the first look at each round fills RunData's caches
    for r in (0, 2, 1):
        state.round = r
    store = trained_run.store

    def refuse(*args, **kwargs):
        raise AssertionError("read a whole frame from disk on a click")

    saved = store.read_samples, store.read_flips
    store.read_samples = store.read_flips = refuse
    try:
        for sid in ids[[5, 50, 500]]:
            state.focus_id = int(sid)
            assert card.explanation.sample_id == int(sid)
        state.round = 2
        state.round = 0
    finally:
        store.read_samples, store.read_flips = saved
    assert card.errors.messages == []
    calls = []
    import alfaviz.widgets._explain as mod

    original = mod.explain_frames

    def counting(*args, **kwargs):
        calls.append(args[4])
        return original(*args, **kwargs)

    mod.explain_frames = counting
    try:
        state.focus_id = int(ids[5])
        state.focus_id = int(ids[50])
        state.focus_id = int(ids[5])  # cached per (round, sample, data version)
    finally:
        mod.explain_frames = original
    assert calls == [int(ids[5]), int(ids[50])]


def test_clicks_in_the_gallery_heatmap_and_map_set_the_focus(trained_run):
    data = RunData(trained_run)
    state = AppState()
    data.attach(state)
    state.round = 1
    card = ExplainCard(state, data)
    g = Gallery(state, data)
    h = Heatmap(state, data)
    m = EmbeddingMap(state, data, renderer="plotly")
    # a gallery card (its ipyevents click)
    sid = g.shown_ids[2]
    g._events[id(g._boxes[sid])]._handle_mouse_msg(None, {"type": "click"}, [])
    assert state.focus_id == sid
    assert state.selected_ids == (sid,)
    assert card.explanation.sample_id == sid
    # a heatmap row
    rows = h.row_ids.copy()
    h._on_click(h.figure.data[0], Points(point_inds=[0], xs=[0], ys=[1], trace_index=0))
    assert state.focus_id == int(rows[1])
    assert f"#{int(rows[1])}" in card.html.value
    # one point clicked on the map
    shown = np.asarray(m.figure.data[0].customdata, dtype=np.int64)
    m._on_click(m.figure.data[0], Points(point_inds=[7], xs=[0], ys=[0], trace_index=0))
    assert state.focus_id == int(shown[7])
    # a lasso around one point explains it; around many it only selects
    m._on_selection(m.figure.data[0], Points(point_inds=[9], xs=[0], ys=[0], trace_index=0))
    assert state.focus_id == int(shown[9])
    m._on_selection(m.figure.data[0], Points(point_inds=[1, 2, 3], trace_index=0))
    assert state.focus_id == int(shown[9])
    assert state.selected_ids == tuple(int(i) for i in shown[[1, 2, 3]])
    for v in (card, g, h, m):
        assert v.errors.messages == []


def test_a_click_on_the_canvas_sets_the_focus(trained_run):
    pytest.importorskip("jscatter")
    data = RunData(trained_run)
    state = AppState(round=1)
    m = EmbeddingMap(state, data, renderer="scatter")
    card = ExplainCard(state, data)
    ids = m._view.shown_ids
    m.canvas._selection_changed({"new": np.array([11], dtype=np.uint32)})  # a click
    assert state.focus_id == int(ids[11])
    assert card.explanation.sample_id == int(ids[11])
    m.canvas._selection_changed({"new": np.array([3, 4], dtype=np.uint32)})  # a lasso
    assert state.focus_id == int(ids[11])
    assert state.selected_ids == (int(ids[3]), int(ids[4]))
