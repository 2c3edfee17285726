"""The batch gallery: cards for the batch or the selection, flips, pickers, thumbnails, clicks."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest

from alfaviz import schema
from alfaviz.data import from_arrays
from alfaviz.session import Experiment
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._gallery import (
    Gallery,
    card_records,
    feature_bar_svg,
    flip_targets,
    picker_text,
    png_bytes,
)

from .conftest import FAST


def _view(run, **kw):
    data = RunData(run)
    state = AppState()
    data.attach(state)
    state.round = data.n_rounds - 1
    return state, data, Gallery(state, data, **kw)


def test_cards_for_the_batch_then_the_selection(oracle_run):
    state, data, g = _view(oracle_run)
    assert "alfaviz-gallery" in g.widget._dom_classes
    batch = data.queried(state.round).sort_values(schema.ORDER)[schema.SAMPLE_ID].tolist()
    assert g.shown_ids == batch
    assert len(g.grid.children) == len(batch)
    # a selection outside the batch is shown instead of it
    s = data.samples(state.round)
    outside = [int(i) for i in s[schema.SAMPLE_ID] if int(i) not in batch][:5]
    state.select(outside)
    assert g.shown_ids == outside
    assert "selection" in g.header.value
    # a selection inside the batch keeps the batch and outlines the card
    state.select(batch[2:3])
    assert g.shown_ids == batch
    box = g.grid.children[2]
    assert "alfaviz-card-selected" in box._dom_classes
    assert "alfaviz-card-selected" not in g.grid.children[0]._dom_classes
    # pinned to the selection, it shows just that
    g.source.value = "selection"
    assert g.shown_ids == batch[2:3]
    state.select([])
    assert g.shown_ids == []
    assert g.errors.messages == []


def test_cards_say_flips_eps_and_picker(oracle_run):
    state, data, g = _view(oracle_run)
    r = state.round
    s = data.samples(r)
    f = data.flips(r)
    flipped = f[f[schema.FLIPPED] & (f[schema.FLIP_TO] >= 0)]
    targets = flip_targets(f, g.shown_ids)
    for card in g.cards:
        want = set(flipped.loc[flipped[schema.SAMPLE_ID] == card.sample_id, schema.FLIP_TO])
        assert set(card.flips_to) == want
        assert card.flips_to == targets[card.sample_id]
        row = s[s[schema.SAMPLE_ID] == card.sample_id].iloc[0]
        assert card.pseudo_label == int(row[schema.PSEUDO_LABEL])
        assert card.critical_eps == pytest.approx(float(row[schema.CRITICAL_EPS]))
        expect = "fill" if bool(row[schema.FILL]) else "k-means"
        assert card.picker.startswith(expect)
    html = " ".join(c.children[0].children[1].value for c in g.grid.children)
    assert "pseudo-label" in html
    assert "flips to" in html
    assert picker_text(True, False, 3) == "k-means (cluster 3)"
    assert picker_text(True, True, -1) == "fill"
    assert picker_text(True, False, -1) == "score"  # no clusters: not ALFA-Mix
    assert picker_text(False, False, -1, candidate=True) == "candidate"
    assert picker_text(False, False, -1) == ""


def test_flip_targets_and_examples_from_frames(oracle_run):
    data = RunData(oracle_run)
    s = data.samples(1)
    f = data.flips(1).copy()
    sid = int(s[schema.SAMPLE_ID].iloc[0])
    rows = f.index[f[schema.SAMPLE_ID] == sid][:2]
    f.loc[rows, schema.FLIPPED] = True
    f.loc[rows, schema.FLIP_TO] = np.array([4, 7], dtype=np.int32)
    f.loc[rows, schema.CRITICAL_EPS] = [0.5, 0.1]
    assert flip_targets(f, [sid])[sid] == (7, 4)  # smallest ε first
    cards = card_records(s, f, [sid, 10**9])  # unknown ids are left out
    assert [c.sample_id for c in cards] == [sid]
    assert cards[0].flips_to == (7, 4)


def test_image_thumbnails_are_png_and_decoded_once(oracle_run):
    state, data, g = _view(oracle_run)
    pics = [c.children[0].children[0] for c in g.grid.children]
    assert all(isinstance(p, widgets.Image) for p in pics)
    assert all(p.value[:8] == b"\x89PNG\r\n\x1a\n" for p in pics)
    decoded = g.thumbs.n_decoded
    assert decoded >= len(pics)
    state.bump()  # a redraw reuses the cache
    g.render()
    assert g.thumbs.n_decoded == decoded
    g2 = Gallery(state, data)  # another view of the same run shares it
    assert g2.thumbs is g.thumbs
    assert g.thumbs.n_decoded == decoded
    big = png_bytes(np.zeros((8, 8), dtype=np.uint8))
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(big)).size == (96, 96)


def test_examples_of_the_flip_target_sit_beside_the_card(oracle_run):
    _state, _data, g = _view(oracle_run)
    for card, box in zip(g.cards, g.grid.children, strict=True):
        side = box.children[1]
        if card.flips_to:
            assert "labelled" in side.children[0].value
            assert 1 + 0 <= len(side.children) <= 1 + 3
        else:
            assert "no flip" in side.children[0].value


def test_click_selects_the_card(oracle_run):
    state, _data, g = _view(oracle_run)
    sid = g.shown_ids[3]
    g.select(sid)
    assert state.selected_ids == (sid,)
    # the ipyevents click handler goes to the same place
    second = g.shown_ids[1]
    g._events[id(g._boxes[second])]._handle_mouse_msg(None, {"type": "click"}, [])
    assert state.selected_ids == (second,)


def test_cards_are_reused_until_the_data_change(oracle_run):
    state, _data, g = _view(oracle_run)
    batch = list(g.shown_ids)
    boxes = dict(g._boxes)
    state.select([batch[0], 5])  # 5 is outside the batch: the selection is shown
    assert g.shown_ids == [batch[0], 5]
    assert g._boxes[batch[0]] is boxes[batch[0]]  # the same card, not a new widget
    state.select([])
    assert g.shown_ids == batch
    assert all(g._boxes[i] is boxes[i] for i in batch)
    # the reused cards still answer clicks
    g._events[id(g._boxes[batch[2]])]._handle_mouse_msg(None, {"type": "click"}, [])
    assert state.selected_ids == (batch[2],)
    state.bump()  # the run changed: every card is drawn afresh from the new frames
    assert all(g._boxes[i] is not boxes[i] for i in g.shown_ids)


def test_cards_are_capped_and_say_so(oracle_run):
    state, data, g = _view(oracle_run, max_cards=4, source="selection")
    ids = data.samples(state.round)[schema.SAMPLE_ID].head(30).tolist()
    state.select(ids)
    assert len(g.cards) == 4
    assert "30 samples" in g.header.value
    assert "cap" in g.header.value


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)
    src = from_arrays(x, y, class_names=["a", "b", "c"])
    exp = Experiment(
        src, "mlp", "alfamix", initial_size=12, budget=6, seed=0, projection="pca",
        train=FAST, out=tmp_path_factory.mktemp("runs") / "tab", labelling="oracle",
    )  # fmt: skip
    exp.step()
    return exp


def test_tabular_cards_draw_feature_bars(tabular_run):
    _state, data, g = _view(tabular_run)
    assert not data.is_image
    assert len(g.cards) == 6
    pics = [c.children[0].children[0] for c in g.grid.children]
    assert all(isinstance(p, widgets.HTML) for p in pics)
    assert all(p.value.count("<rect") == 6 for p in pics)
    assert not any(isinstance(w, widgets.Image) for w in pics)
    svg = feature_bar_svg(np.array([1.0, -2.0, np.nan, 9.0]))
    assert svg.startswith("<svg")
    assert svg.count("<rect") == 4
    assert g.errors.messages == []


def test_building_and_browsing_call_no_torch(oracle_run):
    from torch.overrides import TorchFunctionMode

    from alfaviz.widgets._curve import LearningCurve
    from alfaviz.widgets._labels import LabelPanel
    from alfaviz.widgets._rounds import RoundControls

    calls = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            calls.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    data = RunData(oracle_run)  # fresh: thumbnails are decoded inside the recorder
    state = AppState()
    with Record():
        views = [
            Gallery(state, data),
            LabelPanel(state, data),
            RoundControls(state, data),
            LearningCurve(state, data),
        ]
        state.round = 0
        state.select(data.queried(0)[schema.SAMPLE_ID].head(2).tolist())
        state.round = 1
        state.bump()
    assert calls == []
    assert all(v.errors.messages == [] for v in views)
