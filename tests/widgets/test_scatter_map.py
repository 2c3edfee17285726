"""The embedding map on its regl canvas (jupyter-scatter): state in, widget traits out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from alfaviz import schema
from alfaviz.widgets import AppState, EmbeddingMap, RunData
from alfaviz.widgets._embedding import MAX_PATH_SAMPLES, MISSING_COLOUR, STATUS_COLOURS, colour_spec
from alfaviz.widgets._scatter import N_COLOURS, colour_table

pytest.importorskip("jscatter")


@pytest.fixture
def view(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=1)
    return EmbeddingMap(state, data), state, data


def _shown_colour(m, k):
    """The colour jupyter-scatter gives point ``k``: ``floor(v * (n_colours - 1))``."""
    w = m.scatter.widget
    v = float(np.asarray(w.points)[k, 2])
    return to_hex(w.color[int(np.floor(v * (len(w.color) - 1)))])


def _norm(a):
    a = np.asarray(a, dtype=np.float64)
    return (a - a.min()) / (a.max() - a.min())


def test_auto_picks_the_canvas_and_bad_renderers_are_refused(view, oracle_run):
    m, _state, data = view
    assert m.renderer == "scatter"
    assert "alfaviz-scatter-canvas" in m.scatter.widget._dom_classes
    with pytest.raises(ValueError, match="renderer must be one of"):
        EmbeddingMap(AppState(), data, renderer="matplotlib")


def test_every_point_is_drawn_at_its_stored_place(view):
    m, _state, data = view
    s = data.samples(1)
    w = m.scatter.widget
    pts = np.asarray(w.points)
    assert pts.shape == (len(s), 4)  # no cap: every sample of the round
    order = np.argsort(s[schema.SAMPLE_ID].to_numpy(), kind="stable")
    x = s[schema.X].to_numpy(np.float32)[order]
    y = s[schema.Y].to_numpy(np.float32)[order]
    np.testing.assert_allclose(_norm(pts[:, 0]), _norm(x), atol=1e-5)
    np.testing.assert_allclose(_norm(pts[:, 1]), _norm(y), atol=1e-5)
    dx, dy = m.canvas.drawn
    assert dx.dtype == np.float32
    assert dy.dtype == np.float32
    assert "Round 1" in m.canvas.title.value
    assert m.errors.messages == []


def test_status_colours_reach_each_point(view):
    m, _state, data = view
    q = set(data.queried(1)[schema.SAMPLE_ID].tolist())
    ids = m._view.shown_ids
    picked = [k for k, i in enumerate(ids) if i in q]
    lr = data.samples(1).set_index(schema.SAMPLE_ID)[schema.LABELLED_ROUND]
    labelled = [k for k, i in enumerate(ids) if 0 <= lr[i] <= 1 and i not in q]
    assert picked
    assert labelled
    batch_colours = {STATUS_COLOURS[3].lower(), STATUS_COLOURS[4].lower()}
    assert all(_shown_colour(m, k) in batch_colours for k in picked)
    assert {_shown_colour(m, k) for k in labelled} == {STATUS_COLOURS[1].lower()}
    legend = m.canvas.legend.value
    for name in ("status", "labelled", "unlabelled", "selected", "anchors"):
        assert name in legend


def test_class_colouring_gives_each_class_its_colour(view):
    m, state, data = view
    state.colour_by = schema.PSEUDO_LABEL
    s = data.samples(1).sort_values(schema.SAMPLE_ID)
    codes = s[schema.PSEUDO_LABEL].to_numpy()
    spec = colour_spec(s, schema.PSEUDO_LABEL, round=1, class_names=data.class_names)
    for k in range(0, len(s), 37):
        assert _shown_colour(m, k) == spec.colours[codes[k] + 1].lower()  # code -1 is grey
    assert m.colour.value == schema.PSEUDO_LABEL
    assert "pseudo-label" in m.canvas.legend.value


def test_continuous_colouring_draws_no_flip_grey(view):
    m, state, data = view
    state.colour_by = schema.CRITICAL_EPS
    s = data.samples(1).sort_values(schema.SAMPLE_ID)
    eps = s[schema.CRITICAL_EPS].to_numpy()
    grey = MISSING_COLOUR.lower()
    for k in np.flatnonzero(~np.isfinite(eps))[:20]:
        assert _shown_colour(m, k) == grey
    for k in np.flatnonzero(np.isfinite(eps))[:20]:
        assert _shown_colour(m, k) != grey
    assert len(m.scatter.widget.color) == N_COLOURS
    assert "∞" in m.canvas.legend.value


def test_colour_table_maps_codes_to_their_colours():
    s = pd.DataFrame(
        {
            schema.SAMPLE_ID: np.arange(6),
            schema.LABELLED_ROUND: [-1, 0, -1, -1, -1, -1],
            schema.CANDIDATE: [False, False, True, True, False, False],
            schema.SELECTED: [False, False, False, True, True, False],
            schema.FILL: [False, False, False, False, True, False],
            schema.PSEUDO_LABEL: np.array([0, 1, 2, -1, 1, 0], dtype=np.int32),
            schema.CRITICAL_EPS: np.array([0.1, np.inf, 0.3, np.nan, 0.2, 0.5]),
        }
    )
    for by, expect in (
        ("status", [STATUS_COLOURS[c] for c in (0, 1, 2, 3, 4, 0)]),
        (schema.PSEUDO_LABEL, None),
    ):
        spec = colour_spec(s, by, round=0, class_names=["a", "b", "c"])
        values, colours = colour_table(spec)
        assert values.dtype == np.float32
        assert ((values >= 0) & (values < 1)).all()
        got = [colours[int(np.floor(v * (len(colours) - 1)))] for v in values]
        if expect is None:
            expect = [spec.colours[c + 1] for c in s[schema.PSEUDO_LABEL]]
        assert got == [c.lower() for c in expect]
    spec = colour_spec(s, schema.CRITICAL_EPS, round=0, class_names=["a", "b", "c"])
    values, colours = colour_table(spec)
    got = [colours[int(np.floor(v * (len(colours) - 1)))] for v in values]
    assert got[1] == got[3] == MISSING_COLOUR.lower()
    assert len(set(got[i] for i in (0, 2, 4, 5))) == 4  # distinct finite values, distinct colours


def test_selection_is_highlighted_and_paths_drawn(view):
    m, state, data = view
    batch = data.queried(1)[schema.SAMPLE_ID].tolist()
    state.select([batch[0], 5])
    w = m.scatter.widget
    sel = m.canvas.highlighted
    assert m._view.shown_ids[sel].tolist() == [batch[0], 5]
    assert w.selection is None or len(w.selection) == 0  # the points canvas is not redrawn
    # rings: a black disc under a smaller disc in the point's own colour, on the top canvas
    r = m.canvas.rings.widget
    rp = np.asarray(r.points)
    assert rp.shape == (2 + 2 * 2, 4)  # two parked points, two discs per selected point
    colours = [to_hex(c, keep_alpha=True) for c in r.color]
    at = [colours[int(np.floor(v * (len(colours) - 1)))] for v in rp[:, 2]]
    assert at[0].endswith("00")  # the parked points are transparent
    assert at[1].endswith("00")
    assert at[2] == at[3] == "#000000ff"
    assert [a[:7] for a in at[4:]] == [_shown_colour(m, int(k)) for k in sel]
    np.testing.assert_allclose(rp[2:4, :2], np.asarray(w.points)[sel, :2], atol=1e-5)
    n_anchor = len(data.anchor_points(1))
    lines = m.canvas.rings.widget.annotations
    # one curve per anchor for the batch sample (5 is not in the batch: no stored path), a
    # cross (two arms) per anchor, and a diamond per flip
    assert len(lines) >= n_anchor + 2 * n_anchor
    assert max(len(a.vertices) for a in lines) > 2  # the curves follow the placed points
    # the overlay is drawn in the canvas's own normalised coordinates: a path starts at the
    # very place where jupyter-scatter drew its sample
    k = int(np.flatnonzero(m._view.shown_ids == batch[0])[0])
    curve = max(lines, key=lambda a: len(a.vertices))
    np.testing.assert_allclose(curve.vertices[0], np.asarray(w.points)[k, :2], atol=1e-5)
    state.select([])
    assert m.canvas.highlighted.size == 0
    assert len(np.asarray(r.points)) == 2
    # never a data range of zero width on either canvas (Chromium's page crashed on one)
    for c in (w, r):
        assert c.x_domain[0] < c.x_domain[1]
        assert c.y_domain[0] < c.y_domain[1]
    assert len(m.canvas.rings.widget.annotations) == 2 * n_anchor  # the anchors stay
    assert m.errors.messages == []


def test_batch_button_selects_the_batch(view):
    m, state, data = view
    m.batch_button.click()
    batch = data.queried(1)[schema.SAMPLE_ID].tolist()
    assert list(state.selected_ids) == batch
    assert m._view.shown_ids[m.canvas.highlighted].tolist() == batch
    # more than MAX_PATH_SAMPLES selected: highlighted, without paths covering the map
    assert len(batch) > MAX_PATH_SAMPLES
    assert len(m.canvas.rings.widget.annotations) == 2 * len(data.anchor_points(1))


def test_lasso_and_hover_on_the_canvas_write_the_state(view):
    m, state, _data = view
    w = m.scatter.widget
    ids = m._view.shown_ids
    w.selection = np.asarray([4, 2, 9], dtype=np.uint32)  # what the front-end sends
    assert state.selected_ids == (int(ids[4]), int(ids[2]), int(ids[9]))
    assert m.canvas.highlighted.tolist() == [4, 2, 9]  # drawn as rings as well
    w.hovering = 7
    assert state.hovered_id == int(ids[7])
    assert f"id {int(ids[7])}" in m.details.value
    w.selection = np.asarray([3], dtype=np.uint32)  # a click on a point
    assert state.selected_ids == (int(ids[3]),)
    m.batch_button.click()  # a selection made elsewhere replaces the canvas's own
    assert len(w.selection) == 0
    assert list(state.selected_ids) == _data.queried(1)[schema.SAMPLE_ID].tolist()
    w.selection = np.asarray([3], dtype=np.uint32)
    w.selection = np.asarray([], dtype=np.uint32)  # a click on the background clears
    assert state.selected_ids == ()
    assert m.canvas.highlighted.size == 0
    m.batch_button.click()
    m.clear_button.click()
    assert state.selected_ids == ()
    assert m.errors.messages == []


def test_round_replay_and_pca_keep_the_point_order(view):
    m, state, data = view
    before = m._view.shown_ids.copy()
    state.round = 0
    np.testing.assert_array_equal(m._view.shown_ids, before)
    x0 = data.samples(0).sort_values(schema.SAMPLE_ID)[schema.X].to_numpy(np.float32)
    np.testing.assert_array_equal(m.canvas.drawn[0], x0)
    assert "Round 0" in m.canvas.title.value
    assert m.slider.value == 0
    # written straight into the shown canvas's buffer: the same places jupyter-scatter's own
    # scale gives, and the rings (placed by jupyter-scatter) sit on their points
    w = m.scatter.widget
    lo, hi = w.x_scale_domain
    np.testing.assert_allclose(np.asarray(w.points)[:, 0], 2 * (x0 - lo) / (hi - lo) - 1, atol=1e-5)
    state.select([int(m._view.shown_ids[3])])
    rp = np.asarray(m.canvas.rings.widget.points)
    np.testing.assert_allclose(rp[2, :2], np.asarray(w.points)[3, :2], atol=1e-5)
    assert np.asarray(w.points).dtype == np.float32
    state.round = 1
    m.pca_button.value = True
    assert "PCA" in m.canvas.title.value
    np.testing.assert_array_equal(m._view.shown_ids, before)
    assert not np.array_equal(m.canvas.drawn[0], data.samples(1)[schema.X].to_numpy(np.float32))
    m.pca_button.value = False
    assert m.errors.messages == []


def test_paths_of_any_sample_on_demand(tmp_path):
    from tests.widgets.conftest import make_run

    run = make_run(tmp_path / "run", labelling="oracle", rounds=1)
    data = RunData(run)
    state = AppState(round=0)
    data.attach(state)
    m = EmbeddingMap(state, data)
    batch = set(data.queried(0)[schema.SAMPLE_ID].tolist())
    sid = next(int(i) for i in m._view.shown_ids if int(i) not in batch)
    assert m.paths_button.disabled  # nothing selected
    state.select([sid])
    assert not m.paths_button.disabled  # a sample without stored paths
    assert m.canvas.rings.widget.annotations == m.canvas._overlay
    n_anchor = len(data.anchor_points(0))
    assert len(m.canvas.rings.widget.annotations) == 2 * n_anchor  # only the anchors so far
    m.paths_button.click()
    assert m.errors.messages == []
    assert sid in set(data.paths(0)[schema.SAMPLE_ID].tolist())  # stored with the round
    lines = m.canvas.rings.widget.annotations
    assert len(lines) >= 3 * n_anchor  # a curve per anchor joins the crosses
    assert m.paths_button.disabled  # they are known now
    # a reopened run finds them without projecting again
    again = RunData(str(run.path))
    assert sid in set(again.paths(0)[schema.SAMPLE_ID].tolist())


def test_only_numeric_binary_arrays_reach_the_canvas(view):
    m, state, data = view
    for colour_by in ("status", schema.CRITICAL_EPS, schema.PSEUDO_LABEL):
        state.colour_by = colour_by
        state.select(data.queried(1)[schema.SAMPLE_ID].tolist()[:2])
        sent = m.scatter.widget.get_state()
        n = len(m._view.shown_ids)
        arrays = {k: v for k, v in sent.items() if isinstance(v, dict) and "dtype" in v}
        assert arrays["points"]["dtype"] == "float32"
        assert tuple(arrays["points"]["shape"]) == (n, 4)
        assert arrays["selection"]["dtype"] in ("uint32", "int32")
        assert len(arrays["selection"]["shape"]) == 1
        for k, v in arrays.items():
            assert v["dtype"] in ("float32", "int32", "uint32"), k
        for k, v in sent.items():  # lists are colour tables and the like, never per point
            if isinstance(v, list):
                assert len(v) <= 256 or len(v) < n // 4, k
            if not k.startswith("_"):  # the front-end code itself (_esm, _css) aside
                assert not (isinstance(v, str) and len(v) > 10_000), k


def test_other_strategies_scores_become_colourings(tmp_path):
    from tests.widgets.conftest import make_run

    run = make_run(tmp_path / "run", labelling="oracle", rounds=1)
    data = RunData(run)
    state = AppState(round=0)
    data.attach(state)
    m = EmbeddingMap(state, data)
    assert not [o for _, o in m.colour.options if o.startswith("score:")]
    m._on_scores(wait=True)  # what the button does, waiting for its worker thread
    assert m.errors.messages == []
    options = dict((o, label) for label, o in m.colour.options)
    for name in ("entropy", "margin", "badge", "coreset", "random"):
        assert f"score:{name}" in options
        assert options[f"score:{name}"] == f"{name} score"
    assert not m.scores_button.disabled
    state.colour_by = "score:entropy"
    s = data.samples(0).sort_values(schema.SAMPLE_ID)
    ent = s["score:entropy"].to_numpy()
    unl = np.flatnonzero(np.isfinite(ent))
    hi, lo = unl[np.argmax(ent[unl])], unl[np.argmin(ent[unl])]
    assert _shown_colour(m, hi) != _shown_colour(m, lo)  # the colours follow the scores
    assert "entropy" in m.canvas.legend.value


def test_canvas_takes_a_round_with_another_number_of_points():
    from types import SimpleNamespace

    from alfaviz.widgets._scatter import ScatterCanvas

    picked = []
    c = ScatterCanvas(picked.append, lambda _: None)
    rng = np.random.default_rng(0)

    def spec(n):
        return SimpleNamespace(
            values=rng.random(n).astype(np.float32), colorscale=[[0, "#000000"], [1, "#ff0000"]],
            cmin=0.0, cmax=1.0, colorbar={}, label="x", colours=(),
        )  # fmt: skip

    c.points(rng.normal(size=500).astype(np.float32), rng.normal(size=500).astype(np.float32))
    c.colour(spec(500), "first")
    box = c.widget  # shown
    first = c.scatter.widget
    c.select(np.array([1, 499]))
    c.points(rng.normal(size=300).astype(np.float32), rng.normal(size=300).astype(np.float32))
    c.colour(spec(300), "second")  # (swapping the data of a coloured canvas used to fail)
    assert c.scatter.widget is not first
    assert np.asarray(c.scatter.widget.points).shape == (300, 4)
    assert box.children[2].children[0] is c.scatter.widget  # in the old canvas's place
    c.scatter.widget.selection = np.asarray([7], dtype=np.uint32)  # the new one still listens
    assert picked[-1].tolist() == [7]
