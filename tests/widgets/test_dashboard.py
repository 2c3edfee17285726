"""The composed dashboard: every view in one page, linked through one state."""

from __future__ import annotations

from alfaviz import schema
from alfaviz.analysis.explain import explain
from alfaviz.analysis.sweep import round_sweep
from alfaviz.widgets import RunData, dashboard
from tests.widgets.conftest import make_run

CLASSES = {
    "round-controls": "alfaviz-round-controls",
    "embedding": "alfaviz-embedding",
    "eps": "alfaviz-eps",
    "heatmap": "alfaviz-heatmap",
    "gallery": "alfaviz-gallery",
    "label-panel": "alfaviz-label-panel",
    "why": "alfaviz-why",
    "curve": "alfaviz-curve",
    "ab": "alfaviz-ab",
    "hypothesis": "alfaviz-hypothesis",
}


def _walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _walk(c)


def test_every_view_is_in_the_page_with_its_css_class(oracle_run):
    board = dashboard(RunData(oracle_run))
    board.wait(120)
    assert set(board.views) == set(CLASSES)
    shown = list(_walk(board.widget))
    for name, css in CLASSES.items():
        view = board.views[name]
        assert css in view.widget._dom_classes, name
        assert any(w is view.widget for w in shown), f"{name} is not placed in the page"
    assert "alfaviz-dashboard" in board.widget._dom_classes
    assert board.errors.messages == []
    assert board.views["hypothesis"].rates is not None  # computed once the page is built


def test_a_gallery_click_explains_the_pick_and_the_slider_recolours_the_map(oracle_run):
    data = RunData(oracle_run)
    board = dashboard(data)
    state = board.state
    r = state.round
    sid = int(data.queried(r)[schema.SAMPLE_ID].iloc[0])
    board.views["gallery"].select(sid)
    assert state.selected_ids == (sid,)
    assert state.focus_id == sid
    want = explain(oracle_run, sid, r)
    card = board.views["why"].html.value
    assert f'data-sample="{sid}"' in card or f"#{sid}" in card
    for f in want.flips:  # the card lists the anchors that flip it
        assert f'data-anchor="{f.anchor_class}"' in card
    eps = board.views["eps"]
    options = [o for _, o in eps.slider.options]
    cap = options[-1]
    eps.slider.value = cap
    assert state.sweep_cap == cap
    sw = round_sweep(oracle_run, r, cap)
    assert f"{sw.n_candidates:,}" in eps.readout.value
    assert board.errors.messages == []


def test_a_run_that_is_not_alfamix_still_makes_a_whole_page(tmp_path):
    run = make_run(tmp_path / "ent", labelling="oracle", rounds=1, strategy="entropy")
    board = dashboard(RunData(run))
    board.wait(120)
    assert board.errors.messages == []
    assert "ALFA-Mix" in board.views["eps"].readout.value


def test_closing_a_board_stops_the_watcher_of_the_data_it_made(oracle_run):
    board = dashboard(oracle_run)
    board.data.watch(0.5)
    assert board.data.watching
    board.close()
    assert not board.data.watching
    shared = RunData(oracle_run)
    shared.watch(0.5)
    other = dashboard(shared)
    other.close()
    assert shared.watching  # data passed in belongs to the caller
    shared.close()
    assert not shared.watching
