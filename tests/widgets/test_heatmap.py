"""The inconsistency heatmap: its pure figure, and the view on a real run (no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import Points

from alfaviz import schema
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._heatmap import (
    Heatmap,
    heatmap_cells,
    heatmap_figure,
    heatmap_rows,
    sort_rows,
)

NAMES = ("cat", "dog", "owl")
INF = np.inf


def _samples() -> pd.DataFrame:
    return schema.conform(
        pd.DataFrame(
            {
                schema.ROUND: [0] * 5,
                schema.SAMPLE_ID: [10, 11, 12, 13, 14],
                schema.PSEUDO_LABEL: [0, 1, 2, 0, 1],
                schema.CANDIDATE: [True, True, True, False, False],
                schema.SELECTED: [True, False, True, False, False],
                schema.CLUSTER: [1, -1, 0, -1, -1],
                schema.CRITICAL_EPS: [0.4, 0.2, 0.9, INF, INF],
                schema.INCONSISTENCY: [1, 2, 1, 0, 0],
            }
        ),
        schema.SAMPLES,
    )


def _flips() -> pd.DataFrame:
    ids = np.repeat([10, 11, 12, 13, 14], 3)
    cls = np.tile([0, 1, 2], 5)
    eps = np.full(15, INF)
    to = np.full(15, -1)
    eps[[1, 3, 5, 8]] = [0.4, 0.2, 0.3, 0.9]  # (10,1) (11,0) (11,2) (12,2)
    to[[1, 3, 5, 8]] = [1, 0, 0, 1]
    return schema.conform(
        pd.DataFrame(
            {
                schema.ROUND: 0,
                schema.SAMPLE_ID: ids,
                schema.ANCHOR_CLASS: cls,
                schema.FLIPPED: to >= 0,
                schema.FLIP_TO: to,
                schema.CRITICAL_EPS: eps,
            }
        ),
        schema.FLIPS,
    )


def _queried() -> pd.DataFrame:
    return schema.conform(
        pd.DataFrame({schema.SAMPLE_ID: [12, 10], schema.ORDER: [0, 1]}), schema.QUERIED
    )


def _assert_numeric_1d(trace) -> None:
    for name in ("x", "y", "z", "customdata"):
        a = getattr(trace, name)
        assert isinstance(a, np.ndarray), name
        assert a.ndim == 1, name
        assert a.dtype in (np.float32, np.int32), (name, a.dtype)


# pure functions -----------------------------------------------------------------------------


def test_rows_come_from_the_selection_the_batch_or_the_candidates():
    s, q = _samples(), _queried()
    assert heatmap_rows(s, q).tolist() == [12, 10]  # nothing selected: the batch
    assert heatmap_rows(s, q, selected=[14, 11]).tolist() == [14, 11]
    assert heatmap_rows(s, q, source="batch", selected=[14]).tolist() == [12, 10]
    assert heatmap_rows(s, q, source="candidates").tolist() == [10, 11, 12]
    with pytest.raises(ValueError, match="source"):
        heatmap_rows(s, q, source="all")


def test_sort_orders():
    s = _samples()
    ids = [10, 11, 12, 13, 14, 99]
    assert sort_rows(s, ids, schema.INCONSISTENCY).tolist() == [11, 10, 12, 13, 14, 99]
    assert sort_rows(s, ids, schema.CLUSTER).tolist() == [12, 10, 11, 13, 14, 99]
    assert sort_rows(s, ids, schema.CRITICAL_EPS).tolist() == [11, 10, 12, 13, 14, 99]
    with pytest.raises(ValueError, match="sort_by"):
        sort_rows(s, ids, "colour")


def test_cells_mask_infinite_eps_and_show_flip_targets():
    f = _flips()
    ids = np.array([11, 10], dtype=np.int64)
    eps = heatmap_cells(f, ids, 3, schema.CRITICAL_EPS)
    assert eps.dtype == np.float32
    np.testing.assert_allclose(eps, [[0.2, np.nan, 0.3], [np.nan, 0.4, np.nan]])
    to = heatmap_cells(f, ids, 3, schema.FLIP_TO)
    np.testing.assert_array_equal(to, [[0, np.nan, 0], [np.nan, 1, np.nan]])
    with pytest.raises(ValueError, match="value"):
        heatmap_cells(f, ids, 3, schema.SCORE)


def test_figure_is_one_dimensional_numeric_and_sorted():
    fig = heatmap_figure(
        _flips(), _samples(), [10, 11, 12], class_names=NAMES, sort_by=schema.INCONSISTENCY
    )
    (t,) = fig.data
    _assert_numeric_1d(t)
    assert len(t.z) == 9
    assert t.customdata.tolist() == [11, 11, 11, 10, 10, 10, 12, 12, 12]
    assert t.x.tolist() == [0, 1, 2] * 3
    assert t.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(t.z[:3], [0.2, np.nan, 0.3])
    assert list(fig.layout.xaxis.ticktext) == list(NAMES)
    assert list(fig.layout.yaxis.ticktext) == ["11", "10", "12"]
    assert "blank: never flips" in fig.layout.title.text
    flip = heatmap_figure(_flips(), _samples(), [10], class_names=NAMES, value=schema.FLIP_TO)
    assert flip.data[0].z.tolist()[1] == 1.0
    assert list(flip.data[0].colorbar.ticktext) == list(NAMES)


def test_rows_are_capped_and_the_title_says_so():
    fig = heatmap_figure(_flips(), _samples(), [10, 11, 12, 13], class_names=NAMES, max_rows=2)
    assert len(fig.data[0].z) == 6
    assert "showing 2 of 4 rows" in fig.layout.title.text


def test_row_labels_stay_legible_for_many_rows():
    n = 150
    ids = np.arange(1000, 1000 + n)
    samples = schema.conform(
        pd.DataFrame({schema.ROUND: 0, schema.SAMPLE_ID: ids, schema.PSEUDO_LABEL: 0}),
        schema.SAMPLES,
    )
    flips = schema.conform(
        pd.DataFrame(
            {
                schema.ROUND: 0,
                schema.SAMPLE_ID: np.repeat(ids, 3),
                schema.ANCHOR_CLASS: np.tile([0, 1, 2], n),
                schema.CRITICAL_EPS: np.linspace(0.1, 0.9, 3 * n),
            }
        ),
        schema.FLIPS,
    )
    fig = heatmap_figure(flips, samples, ids, class_names=NAMES)
    labels = list(fig.layout.yaxis.ticktext)
    assert 1 < len(labels) < n  # not one label per 4 px row
    assert (fig.layout.height - 60) / len(labels) >= 12  # at least 12 px apart
    rows = list(fig.layout.yaxis.tickvals)
    shown = [int(fig.data[0].customdata[3 * r]) for r in rows]
    assert labels == [str(i) for i in shown]  # each label sits on its own row


def test_frames_are_not_modified():
    f, s = _flips(), _samples()
    f0, s0 = f.copy(deep=True), s.copy(deep=True)
    heatmap_figure(f, s, [12, 10], class_names=NAMES, sort_by=schema.CLUSTER)
    pd.testing.assert_frame_equal(f, f0)
    pd.testing.assert_frame_equal(s, s0)


# the view -----------------------------------------------------------------------------------


@pytest.fixture
def view(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=1)
    return Heatmap(state, data), state, data


def test_view_shows_the_batch(view):
    h, _state, data = view
    assert "alfaviz-heatmap" in h.widget._dom_classes
    batch = data.queried(1)[schema.SAMPLE_ID].to_numpy()
    (t,) = h.figure.data
    _assert_numeric_1d(t)
    assert sorted(h.row_ids.tolist()) == sorted(batch.tolist())
    assert len(t.z) == len(batch) * data.n_classes
    expected = heatmap_cells(data.flips(1), h.row_ids, data.n_classes, schema.CRITICAL_EPS)
    np.testing.assert_array_equal(t.z, expected.ravel())
    assert h.errors.messages == []


def test_clicking_a_cell_selects_its_sample_and_frames_the_row(view):
    h, state, _ = view
    rows = h.row_ids.copy()
    h._on_click(h.figure.data[0], Points(point_inds=[5], xs=[2], ys=[3], trace_index=0))
    assert state.selected_ids == (int(rows[3]),)
    np.testing.assert_array_equal(h.row_ids, rows)  # the rows stay
    (shape,) = h.figure.layout.shapes
    assert (shape.y0, shape.y1) == (2.5, 3.5)
    h.sort.value = schema.CRITICAL_EPS  # still the same rows after a control change
    assert sorted(h.row_ids.tolist()) == sorted(rows.tolist())


def test_selection_becomes_the_rows_and_the_toggle_shows_candidates(view):
    h, state, data = view
    state.select([3, 5, 7])
    assert h.row_ids.tolist() == [3, 5, 7]  # ties: by id
    assert len(h.figure.data[0].z) == 3 * data.n_classes
    h.source.value = "candidates"
    cand = data.samples(1)[schema.CANDIDATE].sum()
    assert h.row_ids.size == min(cand, 200)
    h.source.value = "batch"
    assert h.row_ids.size == len(data.queried(1))
    state.round = 0
    assert sorted(h.row_ids.tolist()) == sorted(data.queried(0)[schema.SAMPLE_ID].tolist())
    h.value.value = schema.FLIP_TO
    assert h.figure.data[0].z.dtype == np.float32
    assert h.errors.messages == []


def test_view_caps_rows(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=1)
    h = Heatmap(state, data, max_rows=5)
    state.select(range(12))
    assert h.row_ids.size == 5
    assert "showing 5 of 12 rows" in h.figure.layout.title.text


def test_failures_land_in_the_error_area(view):
    h, _state, _ = view
    h.figure.data[0]._click_callbacks[0](
        h.figure.data[0], Points(point_inds=[0], xs=[0], ys=["not a row"], trace_index=0)
    )
    assert h.errors.messages
    assert h.errors.messages[0].startswith("heatmap:")
