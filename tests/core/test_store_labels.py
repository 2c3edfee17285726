"""Scoped undo, batches of labels in one transaction, and rounds committed with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store import LabelLog, RunStore, _io
from alfaviz.store._labels import LabelLog as _LabelLog


def _round(store: RunStore, r: int, **kwargs) -> Path:
    ids = np.arange(4, dtype=np.int64)
    return store.write_round(
        r,
        samples=pd.DataFrame({"sample_id": ids, "v": ids * 1.5}),
        flips=pd.DataFrame({"sample_id": ids[:1]}),
        rounds_row={"accuracy": 0.5},
        **kwargs,
    )


@pytest.fixture
def run(tmp_path: Path) -> Path:
    store = RunStore.create(tmp_path / "run", {"seed": 0}, initial_labels=[(0, 1), (1, 0), (2, 2)])
    store.close()
    return tmp_path / "run"


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The durable write steps taken while the test runs."""
    seen: list[str] = []
    old = _io.set_write_hook(seen.append)
    yield seen
    _io.set_write_hook(old)


# ---------------------------------------------------------------------------------------------
# undo is scoped to the caller's own human actions
# ---------------------------------------------------------------------------------------------


def test_two_stores_on_one_run_undo_only_their_own_actions(run: Path) -> None:
    tab_a, tab_b = RunStore.open(run), RunStore.open(run)
    assert tab_a.session != tab_b.session
    a1 = tab_a.add_label(10, 1, round=1)
    b1 = tab_b.add_label(11, 2, round=1)
    a2 = tab_a.add_skip(12, round=1)
    b2 = tab_b.add_label(13, 0, round=1)

    assert tab_a.undo()["id"] == a2  # not b2, the latest action overall
    assert tab_a.undo()["id"] == a1
    assert tab_a.undo() is None  # the initial set and tab B's labels are out of reach
    assert sorted(tab_b.labels()["sample_id"]) == [0, 1, 2, 11, 13]
    assert tab_b.undo()["id"] == b2
    assert tab_b.undo()["id"] == b1
    assert tab_b.undo() is None
    assert sorted(tab_a.labels()["sample_id"]) == [0, 1, 2]
    acts = tab_a.actions()
    undo_rows = acts[acts["action"] == "undo"]
    assert undo_rows["session"].tolist() == [tab_a.session] * 2 + [tab_b.session] * 2


def test_two_label_logs_on_one_database_are_two_sessions(tmp_path: Path) -> None:
    a, b = LabelLog(tmp_path / "l.sqlite"), LabelLog(tmp_path / "l.sqlite")
    a.add_label(1, 1, round=0)
    b.add_label(2, 2, round=0)
    assert b.undo()["sample_id"] == 2
    assert b.undo() is None
    assert a.labels()["sample_id"].tolist() == [1]


def test_undo_never_touches_initial_or_oracle_labels(run: Path) -> None:
    store = RunStore.open(run)
    store.add_labels([(20, 1), (21, 0)], round=1)  # oracle, this very session
    store.add_label(22, 1, round=1, source="oracle")
    store.add_label(23, 1, round=1, source="initial")
    assert store.undo() is None
    human = store.add_label(24, 2, round=1)
    store.add_labels([(25, 1)], round=1)
    assert store.undo()["id"] == human  # the human action behind the later oracle batch
    assert sorted(store.labels()["sample_id"]) == [0, 1, 2, 20, 21, 22, 23, 25]


def test_undo_in_a_named_session_and_a_reopened_store(run: Path) -> None:
    first = RunStore.open(run, session="tab-1")
    first.add_label(30, 1, round=1)
    first.close()
    again = RunStore.open(run, session="tab-1")  # the same tab after a reload
    assert again.undo()["sample_id"] == 30
    other = RunStore.open(run)
    other.add_label(31, 1, round=1)
    assert again.undo() is None
    assert RunStore.open(run).undo() is None  # a fresh session owns nothing


def test_undo_of_another_process_label_is_impossible(run: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys; from alfaviz.store import RunStore; "
        "RunStore.open(sys.argv[1]).add_label(40, 1, round=1)"
    )
    subprocess.run([sys.executable, "-c", script, str(run)], check=True, timeout=120)
    store = RunStore.open(run)
    assert store.undo() is None
    assert 40 in store.labels()["sample_id"].tolist()


# ---------------------------------------------------------------------------------------------
# batches: one transaction, all or nothing
# ---------------------------------------------------------------------------------------------


def test_add_labels_is_one_transaction(run: Path, commits: list[str]) -> None:
    store = RunStore.open(run)
    commits.clear()
    ids = store.add_labels([(i, i % 4) for i in range(100, 150)], round=2)
    assert commits == ["commit 50 labels"]  # one commit (one fsync), not fifty
    assert len(ids) == 50
    assert ids == sorted(ids)
    labels = store.labels().set_index("sample_id")
    assert labels.loc[149, "label"] == 1
    assert (labels.loc[100:149, "source"] == "oracle").all()
    assert (labels.loc[100:149, "round"] == 2).all()


def test_add_labels_takes_arrays_and_per_item_sources(run: Path) -> None:
    store = RunStore.open(run)
    store.add_labels(np.array([[50, 1], [51, 2]]), round=1, source="initial")
    store.add_labels([(52, 0, "human")], round=1)
    got = store.labels().set_index("sample_id")["source"]
    assert got.loc[[50, 51, 52]].tolist() == ["initial", "initial", "human"]
    assert store.add_labels([], round=1) == []


def test_a_bad_item_writes_nothing(run: Path) -> None:
    store = RunStore.open(run)
    before = len(store.actions())
    with pytest.raises(AlfavizInputError, match=r"labels\[2\] label"):
        store.add_labels([(60, 1), (61, 1), (62, -1)], round=1)
    with pytest.raises(AlfavizInputError, match="twice"):
        store.add_labels([(60, 1), (60, 2)], round=1)
    assert len(store.actions()) == before


def test_a_failing_batch_is_rolled_back(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore.open(run)
    real = _LabelLog._insert_labels

    def half(conn, rows, round, session):
        real(conn, rows[:1], round, session)
        raise OSError("disk full")

    monkeypatch.setattr(_LabelLog, "_insert_labels", staticmethod(half))
    with pytest.raises(OSError, match="disk full"):
        store.add_labels([(70, 1), (71, 1)], round=1)
    monkeypatch.undo()
    assert 70 not in store.labels()["sample_id"].tolist()


def test_initial_set_is_written_with_the_run_in_one_step(tmp_path: Path, commits) -> None:
    store = RunStore.create(tmp_path / "r", {}, initial_labels=[(i, i % 2) for i in range(30)])
    label_commits = [c for c in commits if c.startswith("commit") and "labels" in c]
    assert label_commits == ["commit 30 labels"]
    # the commit happened in the hidden build directory, before the run was moved into place
    assert commits.index("commit 30 labels") < commits.index("move run into place")
    labels = store.labels()
    assert len(labels) == 30
    assert set(labels["source"]) == {"initial"}
    assert set(labels["round"]) == {0}


def test_exist_ok_resumes_without_relabelling(tmp_path: Path) -> None:
    initial = [(0, 1), (1, 1)]
    first = RunStore.create(tmp_path / "r", {"seed": 1}, initial_labels=initial)
    first.add_label(0, 0, round=1)
    again = RunStore.create(tmp_path / "r", {"seed": 1}, exist_ok=True, initial_labels=initial)
    assert len(again.actions()) == 3  # nothing added
    assert again.labels().set_index("sample_id").loc[0, "label"] == 0


# ---------------------------------------------------------------------------------------------
# rounds commit with their labels
# ---------------------------------------------------------------------------------------------


def test_write_round_commits_labels_with_the_round(run: Path, commits) -> None:
    store = RunStore.open(run)
    commits.clear()
    _round(store, 0, labels=[(10, 1), (11, 2, "human")], session="s")
    assert [c for c in commits if c.startswith("commit")] == ["commit round 0"]
    labels = store.labels().set_index("sample_id")
    assert labels.loc[[10, 11], "round"].tolist() == [1, 1]  # default: round + 1
    assert labels.loc[[10, 11], "source"].tolist() == ["oracle", "human"]
    assert store.actions()["session"].iloc[-1] == "s"
    _round(store, 1, labels=[(12, 0)], label_round=7)
    assert store.labels().set_index("sample_id").loc[12, "round"] == 7
    assert store.rounds_written() == [0, 1]


def test_failed_commit_leaves_neither_round_nor_labels(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore.open(run)

    def refuse(*args, **kwargs):
        raise OSError("database is locked")

    monkeypatch.setattr(_LabelLog, "_record_round", refuse)
    with pytest.raises(OSError, match="locked"):
        _round(store, 0, labels=[(10, 1)])
    monkeypatch.undo()
    assert store.rounds_written() == []
    assert 10 not in store.labels()["sample_id"].tolist()
    assert [p.name for p in (run / "rounds").iterdir()] == []
    _round(store, 0, labels=[(10, 1)])  # and the round can be written afterwards
    assert store.rounds_written() == [0]


def test_failed_overwrite_keeps_the_committed_round(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore.open(run)
    _round(store, 0, labels=[(10, 1)])
    before = store.read_samples(0)

    def refuse(*args, **kwargs):
        raise OSError("database is locked")

    monkeypatch.setattr(_LabelLog, "_record_round", refuse)
    with pytest.raises(OSError, match="locked"):
        store.write_round(
            0,
            samples=pd.DataFrame({"sample_id": [9]}),
            flips=pd.DataFrame({"sample_id": [9]}),
            rounds_row={},
            overwrite=True,
            labels=[(11, 1)],
        )
    monkeypatch.undo()
    pd.testing.assert_frame_equal(RunStore.open(run).read_samples(0), before)
    assert 11 not in store.labels()["sample_id"].tolist()
    assert store.verify() == []


def test_round_folder_without_index_row_is_not_a_round(run: Path) -> None:
    store = RunStore.open(run)
    _round(store, 0)
    # a copy of a committed folder under another round's name: not committed, so not there
    import shutil

    shutil.copytree(run / "rounds" / "round_0000", run / "rounds" / "round_0005")
    assert store.rounds_written() == [0]
    with pytest.raises(RunStoreError, match="round 5 is not in the run"):
        store.read_samples(5)


def test_a_round_written_meanwhile_by_another_writer_is_refused(run: Path) -> None:
    a, b = RunStore.open(run), RunStore.open(run)
    _round(a, 0, labels=[(10, 1)])
    with pytest.raises(RunStoreError, match="immutable"):
        _round(b, 0, labels=[(11, 1)])
    assert 11 not in a.labels()["sample_id"].tolist()
