"""The embedding map: its pure figure and helpers, and the view on a real run (no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import BoxSelector, Points

from alfaviz import schema
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._embedding import (
    STATUS,
    TRACES,
    EmbeddingMap,
    colour_options,
    colour_spec,
    display_positions,
    embedding_figure,
    path_segments,
    pca_2d,
    status_codes,
)

NAMES = ("cat", "dog", "owl")


def _samples(n: int = 12, round: int = 1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n)
    labelled = np.full(n, -1)
    labelled[:3] = 0
    eps = np.full(n, np.inf)
    eps[3:6] = [0.2, 0.4, 0.6]
    df = pd.DataFrame(
        {
            schema.ROUND: round,
            schema.SAMPLE_ID: ids,
            schema.PSEUDO_LABEL: np.where(labelled >= 0, -1, ids % 3),
            schema.SCORE: np.where(np.isfinite(eps), 1 - eps, -np.inf),
            schema.CANDIDATE: np.isfinite(eps),
            schema.SELECTED: np.isin(ids, [103, 106]),
            schema.FILL: np.isin(ids, [106]),
            schema.CRITICAL_EPS: eps,
            schema.INCONSISTENCY: np.isfinite(eps).astype(int) * 2,
            schema.TRUE_LABEL: ids % 3,
            schema.LABEL: np.where(labelled >= 0, ids % 3, -1),
            schema.LABELLED_ROUND: labelled,
            schema.X: rng.normal(size=n),
            schema.Y: rng.normal(size=n),
        }
    )
    df[f"{schema.SCORE}:entropy"] = rng.random(n)
    return schema.conform(df, schema.SAMPLES)


def _anchors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ANCHOR_CLASS: np.array([0, 1, 2], dtype=np.int32),
            schema.X: np.array([10.0, 0.0, -10.0], dtype=np.float32),
            schema.Y: np.array([0.0, 10.0, 0.0], dtype=np.float32),
        }
    )


def _paths(sample_id: int, pseudo: int) -> pd.DataFrame:
    t = np.linspace(0, 1, 11, dtype=np.float32)
    rows = []
    for c in range(3):
        pred = np.full(11, pseudo)
        if c == 1:
            pred[3:] = (pseudo + 1) % 3  # flips at t = 0.3 on the way to the anchor of class 1
        rows.append(
            pd.DataFrame(
                {schema.SAMPLE_ID: sample_id, schema.ANCHOR_CLASS: c, schema.PATH_T: t,
                 schema.PATH_PRED: pred}
            )
        )  # fmt: skip
    return schema.conform(pd.concat(rows), schema.PATHS)


def _walk(obj, path=""):
    """Every array or list inside a figure's JSON-like dict, with its path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(obj, np.ndarray):
        yield path, obj
    elif isinstance(obj, (list, tuple)):
        yield path, obj
        for i, v in enumerate(obj):
            if isinstance(v, (dict, list, tuple, np.ndarray)):
                yield from _walk(v, f"{path}[{i}]")


def assert_only_numeric_1d(fig, n_classes: int) -> None:
    """Per-point data is numeric, 1-D, float32 or int32; lists stay tiny (ticks, anchors)."""
    for i, trace in enumerate(fig.data):
        for path, a in _walk(trace.to_plotly_json(), f"data[{i}]"):
            if isinstance(a, np.ndarray):
                assert a.ndim == 1, path
                assert a.dtype in (np.float32, np.int32), (path, a.dtype)
            else:
                assert len(a) <= max(2 * n_classes + 2, 24), (path, len(a))
    for path, a in _walk(fig.layout.to_plotly_json(), "layout"):
        assert not isinstance(a, np.ndarray) or a.size <= 24, path


# pure helpers -------------------------------------------------------------------------------


def test_status_codes():
    s = _samples()
    codes = status_codes(s, round=1)
    assert codes.dtype == np.int32
    assert [STATUS[c] for c in codes[:8]] == [
        "labelled", "labelled", "labelled", "selected", "candidate", "candidate", "filled",
        "unlabelled",
    ]  # fmt: skip
    assert status_codes(s, round=1, queried_ids=[111])[11] == STATUS.index("selected")


def test_display_positions_keep_the_important_points_and_are_stable():
    s = _samples(n=400)
    assert display_positions(s, round=1, max_points=1000).tolist() == list(range(400))
    pos = display_positions(s, round=1, max_points=50, keep_ids=[499])
    ids = s[schema.SAMPLE_ID].to_numpy()[pos]
    assert len(pos) == 50
    assert np.all(np.diff(ids) > 0)  # ordered by sample id
    assert {100, 101, 102, 103, 104, 105, 106, 499} <= set(ids.tolist())
    np.testing.assert_array_equal(pos, display_positions(s, round=1, max_points=50, keep_ids=[499]))
    # another round's frame (new coordinates) keeps the same sample
    s2 = _samples(n=400, seed=1)
    np.testing.assert_array_equal(
        pos, display_positions(s2, round=1, max_points=50, keep_ids=[499])
    )


@pytest.mark.parametrize(
    ("colour_by", "dtype"),
    [
        ("status", np.int32),
        (schema.PSEUDO_LABEL, np.int32),
        (schema.TRUE_LABEL, np.int32),
        (schema.INCONSISTENCY, np.int32),
        (schema.CRITICAL_EPS, np.float32),
        (schema.SCORE, np.float32),
        (f"{schema.SCORE}:entropy", np.float32),
    ],
)
def test_colour_spec_per_colouring(colour_by, dtype):
    s = _samples()
    spec = colour_spec(s, colour_by, round=1, class_names=NAMES)
    assert spec.values.dtype == dtype
    assert spec.values.shape == (len(s),)
    assert np.isfinite(spec.values).all()
    assert spec.cmin < spec.cmax
    assert len(spec.colorbar.get("ticktext", [])) <= 10


def test_colour_values():
    s = _samples()
    spec = colour_spec(s, schema.CRITICAL_EPS, round=1, class_names=NAMES)
    np.testing.assert_allclose(spec.values[3:6], [0.2, 0.4, 0.6], rtol=1e-6)
    assert (spec.values[np.isinf(s[schema.CRITICAL_EPS])] == np.float32(spec.cmax)).all()  # grey
    lab = colour_spec(s, schema.PSEUDO_LABEL, round=1, class_names=NAMES)
    assert lab.values[:3].tolist() == [-1, -1, -1]  # labelled: no pseudo-label
    assert list(lab.colorbar["ticktext"]) == ["unknown", *NAMES]
    assert "score:entropy" in colour_options(s)
    with pytest.raises(ValueError, match="no such score"):
        colour_spec(s, "score:badge", round=1, class_names=NAMES)
    with pytest.raises(ValueError, match="colour_by"):
        colour_spec(s, "rainbow", round=1, class_names=NAMES)


def test_path_segments_end_at_the_anchors_and_mark_the_flip():
    s = _samples()
    sid = 103
    row = s[s[schema.SAMPLE_ID] == sid].iloc[0]
    seg = path_segments(s, _anchors(), _paths(sid, int(row[schema.PSEUDO_LABEL])), [sid, 104])
    assert seg["line_x"].dtype == np.float32
    assert len(seg["line_x"]) == 9  # three anchors: start, end, NaN break
    x0, y0 = float(row[schema.X]), float(row[schema.Y])
    np.testing.assert_allclose(seg["line_x"][[0, 1]], [x0, 10.0], rtol=1e-6)
    assert np.isnan(seg["line_x"][2])
    assert seg["flip_class"].tolist() == [(int(row[schema.PSEUDO_LABEL]) + 1) % 3]
    assert seg["flip_ids"].tolist() == [sid]
    np.testing.assert_allclose(
        [seg["flip_x"][0], seg["flip_y"][0]], [x0 + 0.3 * (0 - x0), y0 + 0.3 * (10 - y0)], rtol=1e-5
    )
    assert len(path_segments(s, _anchors(), _paths(sid, 0), [])["line_x"]) == 0


def test_placed_paths_follow_their_points_and_end_on_the_anchor_marker():
    s = _samples()
    sid = 103
    row = s[s[schema.SAMPLE_ID] == sid].iloc[0]
    p = _paths(sid, int(row[schema.PSEUDO_LABEL]))
    rng = np.random.default_rng(0)
    p[schema.X] = rng.normal(size=len(p)).astype(np.float32)  # placed somewhere on the map
    p[schema.Y] = rng.normal(size=len(p)).astype(np.float32)
    seg = path_segments(s, _anchors(), p, [sid])
    breaks = np.flatnonzero(np.isnan(seg["line_x"]))
    assert len(breaks) == 3  # one curve per anchor
    first = slice(0, breaks[0])
    assert breaks[0] == 11  # the sample's own point, then t = 0.1 .. 1
    x0, y0 = float(row[schema.X]), float(row[schema.Y])
    np.testing.assert_allclose([seg["line_x"][0], seg["line_y"][0]], [x0, y0], rtol=1e-6)
    g = p[p[schema.ANCHOR_CLASS] == 0]
    np.testing.assert_allclose(seg["line_x"][first][1:-1], g[schema.X].to_numpy()[1:-1])
    # t = 1 is the anchor: the curve ends on its marker, wherever its placement fell
    np.testing.assert_allclose([seg["line_x"][breaks[0] - 1], seg["line_y"][breaks[0] - 1]],
                               [10.0, 0.0])  # fmt: skip
    straight = path_segments(s, _anchors(), p, [sid], placed=False)
    assert len(straight["line_x"]) == 9


def test_pca_2d_keeps_paths_straight():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 16)).astype(np.float32)
    a, b = z[0], z[1:20].mean(axis=0)
    line = np.stack([a + t * (b - a) for t in (0.0, 0.25, 0.5, 1.0)])
    p = pca_2d(np.vstack([z, line]))
    assert p.dtype == np.float32
    assert p.shape == (204, 2)
    q = p[-4:]
    np.testing.assert_allclose(q[1], q[0] + 0.25 * (q[3] - q[0]), atol=1e-4)
    np.testing.assert_allclose(p, pca_2d(np.vstack([z, line])))  # deterministic signs


def test_embedding_figure_sends_only_numeric_1d_arrays():
    s = _samples()
    fig = embedding_figure(
        s, _anchors(), colour_by=schema.CRITICAL_EPS, class_names=NAMES, round=1,
        selected=[103], paths=_paths(103, 1), queried_ids=[103, 106],
    )  # fmt: skip
    assert_only_numeric_1d(fig, len(NAMES))
    pts = fig.data[TRACES["points"]]
    assert len(pts.x) == len(s)
    assert pts.customdata.tolist() == s[schema.SAMPLE_ID].tolist()
    assert "%{customdata}" in pts.hovertemplate
    assert pts.text is None
    assert fig.data[TRACES["selection"]].customdata.tolist() == [103]
    assert len(fig.data[TRACES["paths"]].x) == 9
    assert len(fig.data[TRACES["flips"]].x) == 1
    anchors = fig.data[TRACES["anchors"]]
    assert anchors.marker.symbol == "x"
    assert list(anchors.text) == list(NAMES)


def test_embedding_figure_caps_points_and_says_so():
    s = _samples(n=300)
    fig = embedding_figure(s, _anchors(), class_names=NAMES, round=1, max_points=40)
    assert len(fig.data[TRACES["points"]].x) == 40
    assert "showing 40 of 300 points" in fig.layout.title.text


def test_figure_functions_do_not_modify_frames():
    s = _samples()
    s0 = s.copy(deep=True)
    embedding_figure(
        s, _anchors(), class_names=NAMES, round=1, selected=[103], paths=_paths(103, 1)
    )
    colour_spec(s, schema.SCORE, round=1, class_names=NAMES)
    pd.testing.assert_frame_equal(s, s0)


# the view (plotly renderer; the canvas renderer is tested in test_scatter_map.py) -----------


@pytest.fixture
def view(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=1)
    return EmbeddingMap(state, data, renderer="plotly"), state, data


def _points(m):
    return m.figure.data[TRACES["points"]]


def test_view_builds_the_round_map(view):
    m, _state, data = view
    assert "alfaviz-embedding" in m.widget._dom_classes
    s = data.samples(1)
    pts = _points(m)
    assert len(pts.x) == len(s)
    np.testing.assert_array_equal(pts.x, s[schema.X].to_numpy(np.float32))
    assert pts.customdata.tolist() == s[schema.SAMPLE_ID].tolist()
    assert_only_numeric_1d(m.figure, data.n_classes)
    assert len(m.figure.data[TRACES["anchors"]].x) == len(data.anchor_points(1))
    assert m.errors.messages == []


@pytest.mark.parametrize(
    "colour_by",
    ["status", schema.PSEUDO_LABEL, schema.TRUE_LABEL, schema.INCONSISTENCY,
     schema.CRITICAL_EPS, schema.SCORE],
)  # fmt: skip
def test_view_colours(view, colour_by):
    m, state, data = view
    state.colour_by = colour_by
    expected = colour_spec(
        data.samples(1), colour_by, round=1, class_names=data.class_names,
        queried_ids=data.queried(1)[schema.SAMPLE_ID].to_numpy(),
    )  # fmt: skip
    color = _points(m).marker.color
    assert color.dtype == expected.values.dtype
    np.testing.assert_array_equal(color, expected.values)
    assert m.colour.value == colour_by
    assert_only_numeric_1d(m.figure, data.n_classes)
    assert m.errors.messages == []


def test_status_colours_show_labelled_and_batch(view):
    m, _, data = view
    s = data.samples(1)
    codes = _points(m).marker.color
    batch = data.queried(1)[schema.SAMPLE_ID].to_numpy()
    assert set(codes[np.isin(s[schema.SAMPLE_ID], batch)].tolist()) <= {3, 4}
    assert (codes == 1).sum() == (
        (s[schema.LABELLED_ROUND] >= 0) & (s[schema.LABELLED_ROUND] <= 1)
    ).sum()


def test_selection_highlight_and_paths(view):
    m, state, data = view
    batch = data.queried(1)[schema.SAMPLE_ID].tolist()
    state.select([batch[0], 5])
    ring = m.figure.data[TRACES["selection"]]
    assert ring.customdata.tolist() == [batch[0], 5]
    assert ring.x.dtype == np.float32
    pts = _points(m)
    assert pts.selectedpoints is None  # the big trace is not restyled on a selection
    at = [int(np.flatnonzero(pts.customdata == i)[0]) for i in (batch[0], 5)]
    assert ring.x.tolist() == pts.x[at].tolist()
    assert ring.y.tolist() == pts.y[at].tolist()
    n_anchor = len(data.anchor_points(1))
    paths = m.figure.data[TRACES["paths"]]
    # only the batch sample has paths: one curve (ended by NaN) per anchor, through the placed
    # mixed points
    assert int(np.isnan(paths.x).sum()) == n_anchor
    assert len(paths.x) > 3 * n_anchor
    assert paths.x.dtype == np.float32
    state.select([])
    assert len(m.figure.data[TRACES["selection"]].x) == 0
    assert _points(m).selectedpoints is None
    assert len(m.figure.data[TRACES["paths"]].x) == 0


def test_lasso_sets_global_ids(view):
    m, state, _ = view
    pts = _points(m)
    (callback,) = pts._select_callbacks
    ids = pts.customdata
    callback(pts, Points(point_inds=[4, 2, 9], trace_index=0), BoxSelector())
    assert state.selected_ids == (int(ids[4]), int(ids[2]), int(ids[9]))
    pts._click_callbacks[0](pts, Points(point_inds=[7], trace_index=0), None)
    assert state.selected_ids == (int(ids[7]),)


def test_hover_sets_the_hovered_id_and_shows_details(view):
    m, state, data = view
    pts = _points(m)
    sid = int(data.queried(1)[schema.SAMPLE_ID].iloc[0])
    i = int(np.flatnonzero(pts.customdata == sid)[0])
    pts._hover_callbacks[0](pts, Points(point_inds=[i], trace_index=0), None)
    assert state.hovered_id == sid
    text = m.details.value
    assert f"id {sid}" in text
    assert "pseudo-label" in text
    assert "flips" in text
    assert "critical ε" in text


def test_round_change_keeps_the_point_order(view):
    m, state, data = view
    before = _points(m).customdata.copy()
    state.round = 0
    np.testing.assert_array_equal(_points(m).customdata, before)
    np.testing.assert_array_equal(_points(m).x, data.samples(0)[schema.X].to_numpy(np.float32))
    assert m.slider.value == 0
    m.slider.value = 1
    assert state.round == 1
    assert "Round 1" in m.figure.layout.title.text
    assert m.errors.messages == []


def test_pca_view_places_anchors_at_class_means(view):
    m, _state, data = view
    m.pca_button.value = True
    assert "PCA" in m.figure.layout.title.text
    pts = _points(m)
    assert pts.x.dtype == np.float32
    s = data.samples(1)
    lab = (s[schema.LABELLED_ROUND] >= 0).to_numpy() & (s[schema.LABEL] == 1).to_numpy()
    a = m.figure.data[TRACES["anchors"]]
    np.testing.assert_allclose(a.x[1], pts.x[lab].mean(), rtol=1e-4, atol=1e-6)
    assert len(a.x) == data.n_classes
    m.pca_button.value = False
    np.testing.assert_array_equal(_points(m).x, s[schema.X].to_numpy(np.float32))
    assert m.errors.messages == []


def test_capped_view_keeps_the_batch_and_selection(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=1)
    m = EmbeddingMap(state, data, max_points=100, renderer="plotly")
    shown = set(_points(m).customdata.tolist())
    assert len(shown) == 100
    assert set(data.queried(1)[schema.SAMPLE_ID].tolist()) <= shown
    outside = next(i for i in range(data.experiment.data.n_train) if i not in shown)
    state.select([outside])
    assert outside in set(_points(m).customdata.tolist())
    assert "of 1,347 points" in m.figure.layout.title.text


def test_errors_land_in_the_error_area(view):
    m, state, _ = view
    m._dropdown_changed({"new": "rainbow"})  # the dropdown's registered (guarded) handler
    assert m.errors.messages
    assert m.errors.messages[-1].startswith("embedding:")
    state.colour_by = "score:badge"  # no such column in the frame
    assert "no such score" in m.errors.messages[-1]
    state.colour_by = "status"
    assert _points(m).marker.color.dtype == np.int32
