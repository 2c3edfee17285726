"""The learning curve: a static figure from the rounds (or a comparison), redrawn after a round."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from alfaviz import schema
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._curve import PLOTLY_MIME, LearningCurve, curve_figure


def _walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _walk(c)


def _curves() -> pd.DataFrame:
    rows = []
    for strategy, base in (("alfamix", 0.5), ("random", 0.4), ("entropy", 0.45)):
        for seed in (0, 1):
            for r in range(3):
                rows.append(
                    {
                        schema.STRATEGY: strategy,
                        schema.SEED: seed,
                        schema.ROUND: r,
                        schema.N_LABELLED: 20 + 8 * r,
                        schema.ACCURACY: base + 0.1 * r + 0.01 * seed,
                    }
                )
    return schema.conform(pd.DataFrame(rows), schema.CURVES)


def test_figure_from_the_rounds(oracle_run):
    rounds = RunData(oracle_run).rounds()
    fig = curve_figure(rounds)
    assert isinstance(fig, go.Figure)
    assert not isinstance(fig, go.FigureWidget)
    assert len(fig.data) == 1
    t = fig.data[0]
    assert t.x.dtype == np.float64
    assert t.y.dtype == np.float64
    np.testing.assert_array_equal(t.x, rounds[schema.N_LABELLED].to_numpy(np.float64))
    np.testing.assert_allclose(t.y, rounds[schema.ACCURACY].to_numpy())
    assert t.name == "alfamix"
    assert fig.layout.xaxis.title.text == "labelled samples"


def test_one_trace_per_strategy_for_a_curves_frame():
    curves = _curves()
    fig = curve_figure(curves)
    assert [t.name for t in fig.data] == ["alfamix", "entropy", "random"]
    alfa = fig.data[0]
    assert alfa.x.dtype == np.float64
    assert alfa.y.dtype == np.float64
    np.testing.assert_array_equal(alfa.x, [20.0, 28.0, 36.0])
    np.testing.assert_allclose(alfa.y, [0.505, 0.605, 0.705])  # mean over seeds
    assert alfa.error_y.array.dtype == np.float64
    assert alfa.error_y.array[0] == pytest.approx(np.std([0.5, 0.51], ddof=1))


def test_view_is_static_and_offline(oracle_run):
    data = RunData(oracle_run)
    view = LearningCurve(AppState(), data, comparison=_curves())
    assert "alfaviz-curve" in view.widget._dom_classes
    assert not any(isinstance(w, go.FigureWidget) for w in _walk(view.widget))
    assert isinstance(view.output, widgets.Output)
    (out,) = view.output.outputs
    bundle = out["data"]
    assert set(bundle) == {PLOTLY_MIME, "text/plain"}
    spec = bundle[PLOTLY_MIME]
    names = [t["name"] for t in spec["data"]]
    assert names == ["alfamix", "entropy", "random", "this run (alfamix)"]
    assert "cdn" not in str(spec).lower()
    assert "this run (alfamix)" in bundle["text/plain"]


def test_redraws_after_a_round_not_after_a_label(human_run):
    data = RunData(human_run, read_only=False)
    state = AppState()
    data.attach(state)
    view = LearningCurve(state, data)
    assert len(view.figure.data[0].x) == 1
    draws = view.n_draws
    sid = int(data.pending[0])
    data.submit_label(sid, 1)  # the data version moves, the rounds do not
    assert view.n_draws == draws
    for s in data.pending.tolist():
        data.submit_label(s, int(human_run.data.labels([s])[0]))
    human_run.step()
    assert view.n_draws == draws + 1
    x = view.figure.data[0].x
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, data.rounds()[schema.N_LABELLED].to_numpy(np.float64))
    assert len(x) == 2
    assert view.errors.messages == []


def test_the_x_axis_counts_whole_labels_even_for_one_round():
    curves = _curves()
    first = curves[curves[schema.ROUND] == 0]
    fig = curve_figure(first)  # one point per strategy, all at 20 labels
    assert fig.layout.xaxis.tickformat == "d"
    assert fig.layout.xaxis.dtick == 1  # ticks 19, 20, 21: no 19.5 or 20.5
    assert tuple(fig.layout.xaxis.range) == (19.0, 21.0)
    wide = curve_figure(curves)  # 20 to 36 labels: plotly's own ticks, whole numbers
    assert wide.layout.xaxis.tickformat == "d"
    assert wide.layout.xaxis.dtick is None
