"""Round controls: the next round in a worker thread, progress from events, errors on screen."""

from __future__ import annotations

import threading

from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._rounds import RoundControls


def _controls(run, **kw):
    data = RunData(run, read_only=False)
    state = AppState()
    data.attach(state)
    return state, data, RoundControls(state, data, **kw)


def _label_batch(run):
    for sid in run.pending.tolist():
        run.submit_label(sid, int(run.data.labels([sid])[0]))


def test_runs_the_next_round_in_a_thread(human_run, monkeypatch):
    state, data, rc = _controls(human_run)
    assert "alfaviz-round-controls" in rc.widget._dom_classes
    assert rc.counter.value == "round 0 of 0–0"
    assert not rc.run_button.disabled
    assert not rc.run_next_round()  # the batch still waits for labels
    assert "label the batch first" in rc.status.value
    _label_batch(human_run)

    real_step = human_run.step
    go = threading.Event()
    seen = {}

    def step():
        seen["thread"] = threading.current_thread().name
        seen["disabled"] = rc.run_button.disabled
        go.wait(30)
        return real_step()

    monkeypatch.setattr(human_run, "step", step)
    assert rc.run_next_round()
    assert rc.running
    assert rc.run_button.disabled  # cannot start twice
    assert not rc.run_next_round()
    go.set()
    rc.thread.join(60)
    assert not rc.thread.is_alive()
    assert seen == {"thread": "alfaviz-round", "disabled": True}
    assert not rc.running
    assert not rc.run_button.disabled
    assert rc.progress.value == rc.progress.max == 2
    assert "round 1 written" in rc.status.value
    assert state.round == 1
    assert data.n_rounds == 2
    assert rc.slider.max == 1
    assert rc.slider.value == 1
    assert rc.counter.value == "round 1 of 0–1"
    assert rc.errors.messages == []


def test_the_slider_sets_the_round(oracle_run):
    data = RunData(oracle_run)
    state = AppState()
    rc = RoundControls(state, data)
    assert rc.slider.max == 1
    rc.slider.value = 0
    assert state.round == 0
    assert rc.counter.value == "round 0 of 0–1"
    state.round = 1
    assert rc.slider.value == 1
    assert rc.counter.value == "round 1 of 0–1"


def test_read_only_runs_disable_the_button(oracle_run):
    data = RunData(oracle_run)
    rc = RoundControls(AppState(), data)
    assert rc.run_button.disabled
    rounds = data.n_rounds
    assert not rc.run_next_round(wait=True)
    assert data.n_rounds == rounds
    assert "read-only" in rc.status.value


def test_a_failing_round_shows_in_the_error_area(human_run, monkeypatch):
    _state, _data, rc = _controls(human_run)
    _label_batch(human_run)

    def boom():
        raise RuntimeError("out of GPU memory")

    monkeypatch.setattr(human_run, "step", boom)
    assert rc.run_next_round(wait=True)
    assert rc.errors.messages == ["round-controls: RuntimeError: out of GPU memory"]
    assert "failed" in rc.status.value
    assert not rc.run_button.disabled  # back for another try
    assert not rc.running
    monkeypatch.undo()
    assert rc.run_next_round(wait=True)
    assert human_run.round == 2


def test_a_new_round_drops_the_labelled_samples_from_the_selection(human_run):
    state, _data, _rc = _controls(human_run)
    batch = [int(i) for i in human_run.pending.tolist()]
    other = int(next(i for i in human_run.unlabelled_ids.tolist() if i not in batch))
    state.select([batch[0], other])
    _label_batch(human_run)
    human_run.step()
    assert state.round == 1
    # the labelled pick left the pool; the still-unlabelled sample stays selected
    assert state.selected_ids == (other,)
