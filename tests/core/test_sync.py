"""Two sessions on one run (two tabs, two processes): each sees the other's work, loses none.

Each dashboard page opens its own :class:`Experiment` on the run directory; here two
Experiments opened on one directory play the two tabs.
"""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from alfaviz.errors import RunStoreError
from alfaviz.learner.training import TrainConfig
from alfaviz.session import Experiment, open_run
from alfaviz.session.experiment import STEP_LOCK_FILE
from tests._processes import kill_9_after

FAST = TrainConfig(max_epochs=2, min_steps=2)


def make(path: Path, **kw) -> Experiment:
    args = {
        "initial_size": 10, "budget": 6, "seed": 0, "projection": "none", "train": FAST,
        "out": path, "labelling": "human",
    }  # fmt: skip
    args.update(kw)
    return Experiment("digits", "auto", "random", **args)


@pytest.fixture
def two_tabs(tmp_path):
    """One human-labelled run with its first batch waiting, opened twice."""
    exp = make(tmp_path / "run")
    exp.step()
    return open_run(exp.path), open_run(exp.path)


def truth(exp: Experiment, sid: int) -> int:
    return int(exp.data.labels([sid])[0])


def test_every_open_is_its_own_session(two_tabs):
    a, b = two_tabs
    assert a._session != b._session
    assert a.store.session == a._session
    assert b.store.session == b._session


def test_sync_is_a_no_op_until_another_session_commits(two_tabs):
    a, b = two_tabs
    events = []
    b.subscribe(events.append)
    assert b.sync() is False
    assert events == []
    sid = int(a.pending[0])
    a.submit_label(sid, 3)
    assert a.sync() is False  # its own label is nothing new to it
    assert b.labels[sid] == -1  # b's snapshot is stale until it syncs
    assert b.sync() is True
    assert b.labels[sid] == 3
    assert sid not in b.pending
    assert [e.kind for e in events] == ["synced"]
    assert events[0].payload["sample_ids"] == [sid]
    assert events[0].payload["synced"] is True
    assert b.sync() is False  # absorbed once


def test_sync_is_cheap_when_nothing_changed(two_tabs):
    _, b = two_tabs
    b.sync()
    t0 = time.perf_counter()
    for _ in range(200):
        b.sync()
    assert (time.perf_counter() - t0) / 200 < 0.005  # well under the 1 s poll


def test_paths_projected_in_one_tab_reach_the_other(two_tabs):
    a, b = two_tabs
    events = []
    a.subscribe(events.append)
    b.subscribe(events.append)
    sid = int(a.unlabelled_ids[0])
    a.project_paths([sid], round=0)
    assert [e.kind for e in events] == ["paths"]  # a's own, once
    assert a.sync() is False  # its own version is nothing new to it
    assert b.sync() is True
    assert [e.kind for e in events] == ["paths", "paths"]
    assert events[1].round == 0
    assert events[1].payload["synced"] is True
    assert sid in set(b.round_paths(0)["sample_id"].tolist())


def test_two_tabs_labelling_at_once_lose_nothing(two_tabs):
    a, b = two_tabs
    pool = a.unlabelled_ids[:60].tolist()
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def label(exp: Experiment, ids: list[int]) -> None:
        try:
            go.wait()
            for s in ids:
                exp.submit_label(s, s % 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=label, args=(a, pool[0::2])),
        threading.Thread(target=label, args=(b, pool[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    a.sync()
    b.sync()
    for exp in (a, b, open_run(a.path)):
        assert all(exp.labels[s] == s % 10 for s in pool)


def test_undo_in_one_tab_never_removes_the_other_tabs_label(two_tabs):
    a, b = two_tabs
    sa, sb = (int(s) for s in a.pending[:2])
    a.submit_label(sa, truth(a, sa))
    b.sync()
    b.submit_label(sb, truth(b, sb))
    assert b.undo()["sample_id"] == sb
    assert b.undo() is None  # nothing more of b's own: a's label is not b's to undo
    b.sync()
    a.sync()
    assert a.labels[sa] == b.labels[sa] == truth(a, sa)
    assert a.labels[sb] == b.labels[sb] == -1
    assert a.undo()["sample_id"] == sa  # a's own undo still works
    assert b.sync() is True
    assert b.labels[sa] == -1


def test_a_round_written_elsewhere_is_caught_up_and_not_written_twice(two_tabs):
    a, b = two_tabs
    for sid in a.pending.tolist():
        a.submit_label(sid, truth(a, sid))
    events = []
    b.subscribe(events.append)
    row = a.step()
    assert a.round == 2
    assert b.round == 1  # stale
    assert b.sync() is True
    assert b.round == 2
    assert np.array_equal(np.sort(b.pending), np.sort(a.pending))
    assert len(b.rounds) == 2
    kinds = [e.kind for e in events]
    assert kinds[0] == "round_written"
    assert events[0].round == 1
    assert events[0].payload["synced"] is True
    assert events[0].payload["accuracy"] == pytest.approx(row["accuracy"])
    # a stale tab that steps catches up and refuses instead of writing round 2 twice
    c = open_run(a.path)
    for sid in a.pending.tolist():
        a.submit_label(sid, truth(a, sid))
    a.step()
    with pytest.raises(RunStoreError, match=r"round 2 .* written meanwhile by another session"):
        c.step()
    assert c.round == 3
    assert a.store.rounds_written() == [0, 1, 2]
    assert (a.path / STEP_LOCK_FILE).exists()


def test_a_round_running_elsewhere_is_refused_at_once(two_tabs, monkeypatch):
    a, b = two_tabs
    for sid in a.pending.tolist():
        a.submit_label(sid, truth(a, sid))
    b.sync()
    inside = threading.Event()
    release = threading.Event()
    real = a._step

    def slow_step():
        inside.set()
        release.wait(30)
        return real()

    monkeypatch.setattr(a, "_step", slow_step)
    worker = threading.Thread(target=a.step)
    worker.start()
    try:
        assert inside.wait(30)
        t0 = time.perf_counter()
        with pytest.raises(RunStoreError, match="is running a round"):
            b.step()
        assert time.perf_counter() - t0 < 5  # refused at once, nothing trained
    finally:
        release.set()
        worker.join(120)
    assert a.store.rounds_written() == [0, 1]
    b.sync()
    assert b.round == 2


_LABELLER = textwrap.dedent(
    """
    import sys, time
    from alfaviz.session import open_run
    exp = open_run(sys.argv[1])
    for sid in exp.pending.tolist()[: int(sys.argv[2])]:
        action = exp.submit_label(sid, int(exp.data.labels([sid])[0]))
        print(sid, action, flush=True)  # acknowledged: committed before submit_label returned
    time.sleep(60)
    """
)


def test_kill_9_of_a_labelling_process_keeps_acknowledged_labels(two_tabs):
    a, watcher = two_tabs  # watcher: an open page on the same run, in this process
    order = a.pending.tolist()
    lines = kill_9_after(_LABELLER, [str(a.path), "3"], 3)  # mid-batch, after the third ack
    acked = [(int(sid), int(action)) for sid, action in (ln.split() for ln in lines)]
    assert [s for s, _ in acked] == order[:3]
    assert watcher.sync() is True  # an open page sees them
    assert watcher.pending.tolist() == order[3:]
    again = open_run(a.path)  # the next `alfaviz serve` resumes at the next unlabelled sample
    log = again.label_log.set_index("id")
    for sid, action in acked:
        assert again.labels[sid] == truth(again, sid)
        assert int(log.loc[action, "sample_id"]) == sid
    assert again.pending.tolist() == order[3:]
