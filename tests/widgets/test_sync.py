"""Views of one run in two tabs: RunData's watcher brings the other tab's work in (no browser)."""

from __future__ import annotations

import threading
import time

import pytest

import alfaviz
from alfaviz.errors import AlfavizInputError
from alfaviz.widgets import AppState, RunData
from alfaviz.widgets._data import WATCH_INTERVAL_S


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def truth(exp, sid: int) -> int:
    return int(exp.data.labels([sid])[0])


@pytest.fixture
def tabs(human_run):
    """Tab A (an Experiment labelling) and tab B (its views, watching), on one run."""
    a = alfaviz.open_run(human_run.path)
    data = RunData(alfaviz.open_run(human_run.path), read_only=False)
    state = AppState()
    detach = data.attach(state)
    yield a, data, state
    detach()
    data.close()


def test_the_watcher_brings_another_tabs_label_within_a_couple_of_seconds(tabs):
    a, data, state = tabs
    sid = int(a.pending[0])
    data.watch(0.1)
    assert data.watching
    assert data.watch_interval == 0.1
    before = state.data_version
    a.submit_label(sid, truth(a, sid))
    assert wait_for(lambda: state.data_version > before, timeout=3.0)
    assert data.labels()[sid] == truth(a, sid)
    assert sid not in data.pending.tolist()
    # an undo in A reaches B the same way; B's own undo has nothing of A's to undo
    assert data.undo() is None
    v = state.data_version
    a.undo()
    assert wait_for(lambda: state.data_version > v, timeout=3.0)
    assert data.labels()[sid] == -1


def test_a_round_written_elsewhere_moves_the_views_to_it(tabs):
    a, data, state = tabs
    assert data.n_rounds == 1
    frame = data.rounds()  # cached until the run changes
    assert len(frame) == 1
    for sid in a.pending.tolist():
        a.submit_label(sid, truth(a, sid))
    a.step()
    assert data.sync() is True  # what the watcher does every interval
    assert data.n_rounds == 2
    assert state.round == 1
    assert len(data.rounds()) == 2  # the cache was dropped
    assert sorted(data.pending.tolist()) == sorted(a.pending.tolist())
    for sid in a.pending.tolist():
        a.submit_label(sid, truth(a, sid))
    a.step()
    v = state.data_version
    with pytest.raises(alfaviz.RunStoreError, match="written meanwhile by another session"):
        data.experiment.step()  # stale again: refuses after catching up, writes nothing
    assert data.n_rounds == 3
    assert state.round == 2
    assert state.data_version > v
    assert a.store.rounds_written() == [0, 1, 2]


def test_attaching_catches_up_with_a_stale_snapshot(human_run):
    data = RunData(alfaviz.open_run(human_run.path), read_only=False)  # opened early (preheat)
    try:
        other = alfaviz.open_run(human_run.path)
        sid = int(other.pending[0])
        other.submit_label(sid, truth(other, sid))
        assert data.labels()[sid] == -1  # the snapshot is stale
        state = AppState()
        detach = data.attach(state)  # a page takes the kernel
        assert data.labels()[sid] == truth(other, sid)
        detach()
    finally:
        data.close()


def test_watching_starts_stops_and_checks_its_interval(human_run):
    data = RunData(human_run, watch=True)
    try:
        assert data.watching
        assert data.watch_interval == WATCH_INTERVAL_S == 1.0
        data.watch(0.2)  # changes the interval, no second thread
        assert data.watch_interval == 0.2
        assert [t.name for t in threading.enumerate()].count("alfaviz-sync") == 1
        for bad in (0, -1, "1", float("nan"), True, 0.01):
            with pytest.raises(AlfavizInputError, match="interval"):
                data.watch(bad)
    finally:
        data.close()
    assert not data.watching
    assert "alfaviz-sync" not in [t.name for t in threading.enumerate()]
    assert not RunData(human_run).watching  # off unless asked for


def test_a_failing_look_is_logged_and_watching_goes_on(human_run, monkeypatch, caplog):
    data = RunData(human_run)
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise alfaviz.RunStoreError("round 9 is damaged")

    monkeypatch.setattr(data.experiment, "needs_sync", lambda: True)
    monkeypatch.setattr(data.experiment, "sync", broken)
    try:
        with caplog.at_level("WARNING", logger="alfaviz.widgets._data"):
            data.watch(0.05)
            assert wait_for(lambda: len(calls) >= 3)
        assert data.watching
        assert sum("round 9 is damaged" in r.message for r in caplog.records) == 1  # once
    finally:
        data.close()


def test_in_a_kernel_the_sync_runs_on_its_main_thread(tabs, monkeypatch):
    """Only the question "anything new?" is asked in the watcher thread; the catching up
    (and so every redraw) runs where the widgets' own handlers run."""
    import queue

    import alfaviz.widgets._data as data_mod

    a, data, state = tabs
    jobs: queue.Queue = queue.Queue()

    def main_loop() -> None:  # stands in for the kernel's event loop
        while (job := jobs.get()) is not None:
            job()

    main = threading.Thread(target=main_loop, name="kernel-main", daemon=True)
    main.start()
    monkeypatch.setattr(data_mod, "_kernel_dispatch", lambda: jobs.put)
    where = []
    state.observe(lambda _c: where.append(threading.current_thread().name), "data_version")
    try:
        data.watch(0.05)
        sid = int(a.pending[0])
        a.submit_label(sid, truth(a, sid))
        assert wait_for(lambda: bool(where), timeout=3.0)
        assert set(where) == {"kernel-main"}
        assert data.labels()[sid] == truth(a, sid)
    finally:
        data.unwatch()
        jobs.put(None)
        main.join(5)


def test_the_served_dashboard_watches_the_run(human_run):
    from alfaviz.serve import served_dashboard

    board = served_dashboard(human_run.path, watch=0.1)
    try:
        assert board.data.watching
        assert board.data.watch_interval == 0.1
        other = alfaviz.open_run(human_run.path)
        sid = int(other.pending[0])
        other.submit_label(sid, truth(other, sid))
        # (the page's own workers bump data_version too: wait for the label itself)
        assert wait_for(lambda: board.data.labels()[sid] == truth(other, sid), timeout=3.0)
        assert wait_for(lambda: sid not in board.views["label-panel"].queue, timeout=3.0)
    finally:
        board.close()
        board.data.close()
    assert not board.data.watching
    unwatched = served_dashboard(human_run.path, watch=None)
    try:
        assert not unwatched.data.watching
    finally:
        unwatched.close()
