"""The ε slider: the candidates it puts on the map are find_candidates' at that step."""

from __future__ import annotations

import numpy as np
import pytest

from alfaviz import schema
from alfaviz.alfamix import find_candidates
from alfaviz.session import Experiment
from alfaviz.strategies import ALFAMix
from alfaviz.widgets import AppState, EmbeddingMap, RunData
from alfaviz.widgets._embedding import SWEEP_COLOURS, SWEEP_STATUS
from alfaviz.widgets._sweep import SWEEP_STEPS, EpsilonSweep, sweep_inputs, sweep_steps

from .conftest import FAST

CAPS = (0.05, 0.1, 0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def references(trained_run):
    """find_candidates on each round's stored inputs, at every step of CAPS."""
    out = {}
    for r in (1, 2):
        inputs = trained_run._scores.query_inputs(r)
        for cap in CAPS:
            ref = find_candidates(inputs.z_unlabelled, inputs.z_labelled, inputs.y_labelled,
                                  inputs.head, inputs.budget, alpha_cap=cap)  # fmt: skip
            out[r, cap] = (np.sort(inputs.unlabelled_ids[ref.mask]), ref.level, ref)
    return out


def _views(run, renderer="scatter", round=1):
    data = RunData(run)
    state = AppState()
    data.attach(state)
    state.round = round
    return state, data, EmbeddingMap(state, data, renderer=renderer), EpsilonSweep(state, data)


def _drawn_codes(m):
    """The sweep code of every drawn point, read back from what the renderer was given."""
    if m.renderer == "scatter":
        w = m.scatter.widget
        v = np.asarray(w.points)[:, 2]
        n = len(SWEEP_COLOURS)
        return np.round(v * n - 0.5).astype(int)  # colour_table's bin centres (k + 0.5) / n
    return np.asarray(m.figure.data[0].marker.color, dtype=int)


def _drawn_ids(m):
    v = m._view
    return v.shown_ids


@pytest.mark.parametrize("renderer", ["scatter", "plotly"])
@pytest.mark.parametrize("r", [1, 2])
def test_the_map_shows_find_candidates_at_every_step(trained_run, references, r, renderer):
    if renderer == "scatter":
        pytest.importorskip("jscatter")
    state, _data, m, e = _views(trained_run, renderer, round=r)
    assert m.sweep is None  # nothing asked yet
    for cap in CAPS:
        want, level, _ = references[r, cap]
        e.slider.value = cap  # what a user's drag does
        assert state.sweep_cap == cap
        assert e.show.value
        np.testing.assert_array_equal(m.sweep_ids, want)
        assert m.sweep.level == pytest.approx(level)
        # what the canvas or figure was handed: codes 2 and 3 exactly on those points
        codes = _drawn_codes(m)
        shown = _drawn_ids(m)
        np.testing.assert_array_equal(np.sort(shown[np.isin(codes, (2, 3))]), want)
        # the slider says the same
        assert f'alfaviz-eps-count">{want.size:,}<' in e.readout.value
        assert f"ε {level:.3g}</span>" in e.readout.value
        assert e.sweep.n_candidates == want.size
        label = f"ε step {cap:.4g}: {want.size:,} candidates"
        if renderer == "scatter":
            assert label in m.canvas.legend.value
        else:
            assert m.figure.data[0].marker.colorbar.title.text.startswith(label)
        title = m.canvas.title.value if renderer == "scatter" else m.figure.layout.title.text
        assert label in title
    assert m.errors.messages == []
    assert e.errors.messages == []


def test_the_recorded_step_gives_back_the_rounds_own_candidates(trained_run):
    state, data, m, e = _views(trained_run, round=1)
    assert e.recorded == pytest.approx(0.2)  # the default closed-form step
    assert e.slider.value == pytest.approx(0.2)
    state.sweep_cap = 0.2
    s = data.samples(1)
    own = np.sort(s.loc[s[schema.CANDIDATE], schema.SAMPLE_ID].to_numpy())
    np.testing.assert_array_equal(m.sweep_ids, own)
    codes = _drawn_codes(m)
    assert not np.isin(codes, (3, 4)).any()  # nothing added, nothing dropped
    row = data.rounds().set_index(schema.ROUND).loc[1]
    assert m.sweep.level == pytest.approx(float(row[schema.LEVEL]))
    assert f"recorded: ε step 0.2 → {int(row[schema.N_CANDIDATES]):,} candidates" in (
        e.readout.value
    )


def test_added_and_dropped_candidates_are_told_apart(trained_run, references):
    state, data, m, _e = _views(trained_run, round=2)
    state.sweep_cap = 0.5
    s = data.samples(2)
    own = set(s.loc[s[schema.CANDIDATE], schema.SAMPLE_ID].tolist())
    want = set(references[2, 0.5][0].tolist())
    codes, shown = _drawn_codes(m), _drawn_ids(m)
    assert set(shown[codes == 3].tolist()) == want - own
    assert set(shown[codes == 4].tolist()) == own - want
    assert set(shown[codes == 2].tolist()) == want & own
    lab = s[schema.LABELLED_ROUND].to_numpy()
    labelled = set(s.loc[(lab >= 0) & (lab <= 2), schema.SAMPLE_ID].tolist())
    assert set(shown[codes == 1].tolist()) == labelled
    assert len(want - own) > 0  # the step really adds candidates here


def test_show_on_map_off_brings_the_colouring_back(trained_run):
    state, _data, m, e = _views(trained_run)
    state.colour_by = "pseudo_label"
    e.slider.value = 0.1
    assert "ε step 0.1" in m.canvas.legend.value
    e.show.value = False
    assert state.sweep_cap is None
    assert m.sweep is None
    assert m.sweep_ids.size == 0
    assert "pseudo-label" in m.canvas.legend.value
    assert "ε step" not in m.canvas.legend.value
    assert "not shown on the map" in e.readout.value
    e.show.value = True
    assert state.sweep_cap == pytest.approx(0.1)
    assert "ε step 0.1" in m.canvas.legend.value


def test_the_slider_follows_the_state_and_the_round(trained_run, references):
    state, _data, m, e = _views(trained_run, round=1)
    state.sweep_cap = 0.25
    assert e.slider.value == pytest.approx(0.25)
    assert e.show.value
    state.sweep_cap = 0.07  # not one of the slider's steps: it is added
    assert e.slider.value == pytest.approx(0.07)
    assert 0.07 in [v for _, v in e.slider.options]
    state.sweep_cap = 0.1
    state.round = 2  # another round: the same step replayed on its pool
    np.testing.assert_array_equal(m.sweep_ids, references[2, 0.1][0])
    assert ", round 2:" in e.readout.value
    assert e.sweep.n_candidates == references[2, 0.1][0].size
    state.sweep_cap = None
    assert not e.show.value
    assert m.sweep is None


def test_a_step_that_stops_above_the_recorded_levels_is_not_exact(oracle_run):
    data = RunData(oracle_run)
    state = AppState(round=0)
    m = EmbeddingMap(state, data, renderer="plotly")
    e = EpsilonSweep(state, data)
    inputs = sweep_inputs(data, 0)
    e.slider.value = 0.3  # 0.3, 0.6, 0.9, 1.2: critical ε above 1.0 were never recorded
    sw = e.sweep
    if sw.level <= 1.0:
        pytest.skip("this run's round 0 stops below 1.0 at ε step 0.3")
    assert not sw.exact
    assert "not exact" in e.readout.value
    assert "not exact" in m.figure.data[0].marker.colorbar.title.text
    assert inputs.max_eps == pytest.approx(1.0)
    e.slider.value = 0.25
    assert e.sweep.exact
    assert 'alfaviz-eps-exact"' in e.readout.value


def test_the_steps_hold_the_recorded_one():
    assert sweep_steps(0.2) == sorted(set(SWEEP_STEPS))
    assert 0.07 in sweep_steps(0.07)
    assert sweep_steps(None, (0.5, 0.1, 0.5)) == [0.1, 0.5]
    assert SWEEP_STEPS[0] == 0.02
    assert SWEEP_STEPS[-1] == 1.0
    assert len(SWEEP_STATUS) == len(SWEEP_COLOURS)
    with pytest.raises(ValueError, match="steps must be numbers"):
        EpsilonSweep(AppState(), None, steps=(0.0, 0.5))


def test_moving_the_slider_reads_nothing_from_disk(trained_run):
    _state, _data, m, e = _views(trained_run, round=1)
    e.slider.value = 0.1
    store = trained_run.store

    def refuse(*args, **kwargs):
        raise AssertionError("read from disk on a slider move")

    saved = store.read_samples, store.read_flips
    store.read_samples = store.read_flips = refuse
    try:
        for cap in (0.05, 0.25, 0.5, 1.0, 0.1):
            e.slider.value = cap
    finally:
        store.read_samples, store.read_flips = saved
    assert m.errors.messages == []
    assert e.errors.messages == []


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("norun")
    learned = Experiment(
        "digits", "auto", ALFAMix(alpha="learned", random_state=0), initial_size=20, budget=5,
        seed=0, projection="pca", train=FAST, out=base / "learned", labelling="oracle",
    )  # fmt: skip
    learned.step()
    entropy = Experiment(
        "digits", "auto", "entropy", initial_size=20, budget=5, seed=0, projection="pca",
        train=FAST, out=base / "entropy", labelling="oracle",
    )  # fmt: skip
    entropy.step()
    return {"learned": learned, "entropy": entropy}


@pytest.mark.parametrize(("kind", "why"), [("learned", "learns α"), ("entropy", "ALFA-Mix run")])
def test_runs_that_cannot_be_replayed_disable_the_slider(other_runs, kind, why):
    run = other_runs[kind]
    data = RunData(run)
    state = AppState()
    m = EmbeddingMap(state, data, renderer="plotly")
    e = EpsilonSweep(state, data)
    assert e.slider.disabled
    assert e.show.disabled
    assert why in e.refusal
    assert why in e.readout.value
    assert "ε slider unavailable" in e.readout.value
    state.sweep_cap = 0.1  # asked from code: the map keeps its colouring
    assert m.sweep is None
    assert m.figure.data[0].marker.colorbar.title.text == "status"
    assert not e.show.value
    e.slider.value = 0.5  # a disabled slider moved anyway writes nothing
    assert state.sweep_cap == pytest.approx(0.1)
    assert m.errors.messages == []
    assert e.errors.messages == []
    assert "alfaviz-eps" in e.widget._dom_classes
