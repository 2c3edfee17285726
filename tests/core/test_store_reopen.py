"""Reopening checks what it opens: labels, rounds, config, fingerprint, leftovers, read-only."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store import CONFIG_FILE, LABELS_FILE, ROUND_FILE, ROUNDS_DIR, RunStore
from alfaviz.store import _run as run_mod
from alfaviz.store._io import parse_temp_name, temp_name

FINGERPRINT = {
    "n_samples": 40,
    "ids_sha256": "ab12",
    "shape": {"x": [40, 4], "y": [40]},
    "class_names": ["cat", "dog"],
}


def _round(store: RunStore, r: int) -> None:
    ids = np.arange(5, dtype=np.int64) + r
    store.write_round(
        r,
        samples=pd.DataFrame({"sample_id": ids, "v": ids * 0.5}),
        flips=pd.DataFrame({"sample_id": ids[:2]}),
        rounds_row={"accuracy": 0.1 * r},
        embeddings=np.ones((5, 2), np.float32),
        embedding_ids=ids,
        labels=[(100 + r, 1)],
    )


@pytest.fixture
def run(tmp_path: Path) -> Path:
    store = RunStore.create(
        tmp_path / "run",
        {"seed": 1, "budget": 5},
        fingerprint=FINGERPRINT,
        initial_labels=[(0, 1), (1, 0)],
        files={"init_state.pt": b"weights" * 10},
    )
    _round(store, 0)
    _round(store, 1)
    store.close()
    return tmp_path / "run"


# ---------------------------------------------------------------------------------------------
# labels.sqlite
# ---------------------------------------------------------------------------------------------


def test_missing_labels_database_is_refused_not_recreated(run: Path) -> None:
    (run / LABELS_FILE).unlink()
    with pytest.raises(RunStoreError, match=r"labels\.sqlite is missing.*never recreated"):
        RunStore.open(run)
    assert not (run / LABELS_FILE).exists()
    store = RunStore.open(run, check=False)
    assert any("labels.sqlite is missing" in p for p in store.verify())
    with pytest.raises(RunStoreError, match="missing"):
        store.add_label(3, 1, round=2)
    assert not (run / LABELS_FILE).exists()


def test_empty_labels_database_is_refused(run: Path) -> None:
    (run / LABELS_FILE).write_bytes(b"")
    with pytest.raises(RunStoreError, match=r"labels\.sqlite is empty"):
        RunStore.open(run)
    assert (run / LABELS_FILE).stat().st_size == 0


def test_foreign_sqlite_database_is_refused(run: Path) -> None:
    (run / LABELS_FILE).unlink()
    con = sqlite3.connect(run / LABELS_FILE)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    with pytest.raises(RunStoreError, match="no label tables"):
        RunStore.open(run)


# ---------------------------------------------------------------------------------------------
# round folders
# ---------------------------------------------------------------------------------------------


def test_deleted_round_folder_is_detected(run: Path) -> None:
    shutil.rmtree(run / ROUNDS_DIR / "round_0001")
    with pytest.raises(RunStoreError, match=r"round_0001 is missing: round 1 was written"):
        RunStore.open(run)
    store = RunStore.open(run, check=False)
    assert store.rounds_written() == [0, 1]  # the index still knows it
    problems = store.verify()
    assert len(problems) == 1
    assert "round_0001 is missing" in problems[0]
    with pytest.raises(RunStoreError, match="round_0001 is missing"):
        store.read_samples()


def test_deleted_rounds_directory_is_detected(run: Path) -> None:
    shutil.rmtree(run / ROUNDS_DIR)
    with pytest.raises(RunStoreError, match="round_0000 is missing"):
        RunStore.open(run)


def test_replaced_round_folder_is_detected(run: Path) -> None:
    rounds = run / ROUNDS_DIR
    shutil.rmtree(rounds / "round_0001")
    shutil.copytree(rounds / "round_0000", rounds / "round_0001")
    with pytest.raises(
        RunStoreError, match=r"round_0001/round\.json (is not the round 1|is corrupt)"
    ):
        RunStore.open(run)


def test_rewriting_a_deleted_round_repairs_the_run(run: Path) -> None:
    shutil.rmtree(run / ROUNDS_DIR / "round_0001")
    store = RunStore.open(run, check=False)
    store.write_round(
        1, samples=pd.DataFrame({"sample_id": [1]}), flips=pd.DataFrame(), rounds_row={},
        overwrite=True,
    )  # fmt: skip
    assert RunStore.open(run).verify() == []


# ---------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------


def test_hand_edited_config_is_detected(run: Path) -> None:
    file = run / CONFIG_FILE
    file.write_text(file.read_text().replace('"budget": 5', '"budget": 50'))
    with pytest.raises(RunStoreError, match=r"config\.json was edited by hand or is damaged"):
        RunStore.open(run)
    problems = RunStore.open(run, check=False).verify()
    assert any("config.json was edited by hand" in p for p in problems)


def test_config_with_a_recomputed_checksum_is_still_detected(run: Path) -> None:
    from alfaviz.store._io import canonical, sha256

    file = run / CONFIG_FILE
    meta = json.loads(file.read_text())
    meta["config"]["budget"] = 50
    meta["checksum"] = sha256(
        canonical({k: v for k, v in meta.items() if k != "checksum"}).encode()
    )
    file.write_text(json.dumps(meta))
    with pytest.raises(RunStoreError, match=r"not the config this run was created with"):
        RunStore.open(run)


def test_config_of_another_run_is_detected(run: Path, tmp_path: Path) -> None:
    other = RunStore.create(tmp_path / "other", {"seed": 1, "budget": 5})
    shutil.copy(other.path / CONFIG_FILE, run / CONFIG_FILE)
    with pytest.raises(RunStoreError, match="not the config this run was created with"):
        RunStore.open(run)


# ---------------------------------------------------------------------------------------------
# fingerprint
# ---------------------------------------------------------------------------------------------


def test_fingerprint_is_recorded_and_checked(run: Path) -> None:
    store = RunStore.open(run, expected_fingerprint=FINGERPRINT)
    assert store.fingerprint == FINGERPRINT
    store.check_fingerprint(dict(FINGERPRINT))


def test_fingerprint_mismatch_names_every_differing_field(run: Path) -> None:
    other = {**FINGERPRINT, "ids_sha256": "ff00", "shape": {"x": [40, 5], "y": [40]}}
    del other["class_names"]
    other["n_classes"] = 2
    with pytest.raises(RunStoreError) as info:
        RunStore.open(run, expected_fingerprint=other)
    msg = str(info.value)
    for field in ("ids_sha256", "shape.x", "class_names", "n_classes"):
        assert field in msg
    assert "shape.y" not in msg
    assert "n_samples" not in msg
    assert "\n" not in msg
    with pytest.raises(RunStoreError, match=r"ids_sha256 \(recorded \"ab12\", got \"ff00\"\)"):
        RunStore.open(run).check_fingerprint(other)


def test_exist_ok_with_other_data_is_refused(run: Path) -> None:
    with pytest.raises(RunStoreError, match="n_samples"):
        RunStore.create(
            run,
            {"seed": 1, "budget": 5},
            exist_ok=True,
            fingerprint={**FINGERPRINT, "n_samples": 9},
        )


def test_run_without_fingerprint_passes_the_check(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", {})
    assert store.fingerprint is None
    store.check_fingerprint({"anything": 1})


# ---------------------------------------------------------------------------------------------
# attached files
# ---------------------------------------------------------------------------------------------


def test_attached_files_are_checksummed(run: Path) -> None:
    store = RunStore.open(run)
    assert store.read_file("init_state.pt") == b"weights" * 10
    (run / "init_state.pt").write_bytes(b"weights" * 9 + b"WEIGHTS")
    with pytest.raises(RunStoreError, match=r"init_state\.pt is truncated or corrupt"):
        store.read_file("init_state.pt")
    assert any("init_state.pt" in p for p in store.verify())
    with pytest.raises(RunStoreError, match="no attached file 'nope'"):
        store.read_file("nope")


# ---------------------------------------------------------------------------------------------
# leftovers of interrupted writes
# ---------------------------------------------------------------------------------------------


def _fake_dead_pid() -> int:
    pid = 2**22 - 7
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def _stale_name(base: str, kind: str) -> str:
    live = temp_name(base, kind)
    parsed = parse_temp_name(live)
    assert parsed is not None
    return live.replace(f"-{parsed.pid}-", f"-{_fake_dead_pid()}-")


def test_stale_temporary_entries_are_removed_on_open(run: Path) -> None:
    rounds = run / ROUNDS_DIR
    stale_round = rounds / _stale_name("round_0002", "tmp")
    stale_round.mkdir()
    (stale_round / "samples.parquet").write_bytes(b"half")
    stale_trash = rounds / _stale_name("round_0000", "trash")
    stale_trash.mkdir()
    stale_create = run.parent / _stale_name(run.name, "tmp")
    stale_create.mkdir()
    (stale_create / CONFIG_FILE).write_text("{}")
    stale_config = run / _stale_name(CONFIG_FILE, "tmp")
    stale_config.write_text("{")
    live = rounds / temp_name("round_0003", "tmp")  # this process: still being written
    live.mkdir()
    user_dirs = [rounds / ".hidden_by_user", run / "notes.tmp-1-2", run.parent / ".run.bak"]
    for d in user_dirs:
        d.mkdir()
    assert any("left over" in p for p in RunStore.open(run, read_only=True).verify())

    store = RunStore.open(run)
    for gone in (stale_round, stale_trash, stale_create, stale_config):
        assert not gone.exists(), gone
    assert live.exists()
    for d in user_dirs:  # names the store does not make are never touched
        assert d.exists()
    assert store.rounds_written() == [0, 1]
    live.rmdir()
    assert store.verify() == []


def test_uncommitted_round_folder_of_a_dead_writer_is_removed(run: Path) -> None:
    store = RunStore.open(run)
    _round(store, 2)
    # make round 2 look like a write that never committed, by a process that is gone
    con = sqlite3.connect(run / LABELS_FILE)
    con.execute("DELETE FROM rounds WHERE round = 2")
    con.commit()
    con.close()
    manifest = run / ROUNDS_DIR / "round_0002" / ROUND_FILE
    doc = json.loads(manifest.read_text())
    doc["writer"]["pid"] = _fake_dead_pid()
    manifest.write_text(json.dumps(doc))
    assert store.rounds_written() == [0, 1]
    RunStore.open(run)
    assert not (run / ROUNDS_DIR / "round_0002").exists()


def test_uncommitted_round_of_a_live_writer_is_left_alone(run: Path) -> None:
    store = RunStore.open(run)
    _round(store, 2)
    con = sqlite3.connect(run / LABELS_FILE)
    con.execute("DELETE FROM rounds WHERE round = 2")
    con.commit()
    con.close()
    RunStore.open(run)  # the writer (this process) is alive
    assert (run / ROUNDS_DIR / "round_0002").exists()
    other = RunStore.open(run)
    with pytest.raises(RunStoreError, match="being written by another process"):
        _round(other, 2)


def test_interrupted_overwrite_is_rolled_back_on_open(run: Path) -> None:
    rounds = run / ROUNDS_DIR
    before = RunStore.open(run).read_samples(1)
    # a crash after the old folder was moved aside and the new one moved in, before the commit
    os.rename(rounds / "round_0001", rounds / _stale_name("round_0001", "old"))
    shutil.copytree(rounds / "round_0000", rounds / "round_0001")
    store = RunStore.open(run)
    pd.testing.assert_frame_equal(store.read_samples(1), before)
    assert store.verify() == []
    assert sorted(p.name for p in rounds.iterdir()) == ["round_0000", "round_0001"]


# ---------------------------------------------------------------------------------------------
# read-only runs
# ---------------------------------------------------------------------------------------------


def test_read_only_run_can_be_read_and_refuses_writes(run: Path) -> None:
    store = RunStore.open(run, read_only=True)
    assert store.read_only
    assert "read_only=True" in repr(store)
    assert store.rounds_written() == [0, 1]
    assert len(store.read_samples()) == 10
    assert sorted(store.labels()["sample_id"]) == [0, 1, 100, 101]
    assert store.verify() == []
    size = (run / LABELS_FILE).stat().st_size
    for write in (
        lambda: store.add_label(5, 1, round=2),
        lambda: store.add_labels([(5, 1)], round=2),
        lambda: store.add_skip(5, round=2),
        lambda: store.undo(),
        lambda: store.log_event("x"),
        lambda: _round(store, 2),
    ):
        with pytest.raises(RunStoreError, match="read-only"):
            write()
    assert (run / LABELS_FILE).stat().st_size == size
    assert store.rounds_written() == [0, 1]


def test_no_write_permission_opens_read_only(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.access

    def no_write(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path) == run:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(run_mod.os, "access", no_write)
    store = RunStore.open(run)
    assert store.read_only
    with pytest.raises(RunStoreError, match="read-only"):
        store.add_label(5, 1, round=2)
    monkeypatch.undo()
    assert not RunStore.open(run).read_only


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_chmod_read_only_directory_opens_for_reading(run: Path) -> None:
    paths = [run, run / ROUNDS_DIR, run / LABELS_FILE]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        store = RunStore.open(run)
        assert store.read_only
        assert store.rounds_written() == [0, 1]
        assert len(store.labels()) == 4
        with pytest.raises(RunStoreError, match="read-only"):
            store.add_label(5, 1, round=2)
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


# ---------------------------------------------------------------------------------------------
# verify()
# ---------------------------------------------------------------------------------------------


def test_verify_is_empty_when_healthy_and_names_each_damaged_file(run: Path) -> None:
    assert RunStore.open(run).verify() == []
    samples = run / ROUNDS_DIR / "round_0000" / "samples.parquet"
    samples.write_bytes(samples.read_bytes()[:-10])
    emb = run / ROUNDS_DIR / "round_0001" / "embeddings.parquet"
    data = bytearray(emb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    emb.write_bytes(bytes(data))
    (run / ROUNDS_DIR / "round_0001" / "flips.parquet").unlink()
    problems = RunStore.open(run).verify()
    assert len(problems) == 3, problems
    assert "round_0000/samples.parquet is truncated" in problems[0]
    assert "round_0001/embeddings.parquet is corrupt" in problems[1]
    assert "round_0001/flips.parquet is missing" in problems[2]
    assert all("\n" not in p for p in problems)


def test_verify_reports_a_damaged_manifest_and_database(run: Path) -> None:
    manifest = run / ROUNDS_DIR / "round_0000" / ROUND_FILE
    manifest.write_text(manifest.read_text().replace('"accuracy": 0.0', '"accuracy": 1.0'))
    problems = RunStore.open(run, check=False).verify()
    assert problems == [f"{manifest} is corrupt: its content does not match its checksum."]
    with pytest.raises(RunStoreError, match=r"round_0000/round\.json is corrupt"):
        RunStore.open(run)


def test_open_with_check_false_still_rejects_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        RunStore.open(tmp_path / "nope", check=False)
    with pytest.raises(AlfavizInputError, match="path"):
        RunStore.open("", check=False)


# ---------------------------------------------------------------------------------------------
# runs written by an older alfaviz (format 1: no rounds index, no config checksum)
# ---------------------------------------------------------------------------------------------


def _downgrade_to_format_1(run: Path) -> None:
    meta = json.loads((run / CONFIG_FILE).read_text())
    for key in ("checksum", "fingerprint", "files"):
        meta.pop(key)
    meta["format_version"] = 1
    (run / CONFIG_FILE).write_text(json.dumps(meta))
    con = sqlite3.connect(run / LABELS_FILE)
    con.execute("DROP TABLE rounds")
    con.execute("DROP TABLE run_meta")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


def test_format_1_run_opens_read_only_from_its_folders(run: Path) -> None:
    before = RunStore.open(run).read_samples()
    _downgrade_to_format_1(run)
    store = RunStore.open(run, read_only=True)
    assert store.rounds_written() == [0, 1]
    pd.testing.assert_frame_equal(store.read_samples(), before)
    assert store.verify() == []


def test_format_1_run_gets_its_rounds_index_on_a_writable_open(run: Path) -> None:
    _downgrade_to_format_1(run)
    store = RunStore.open(run)
    assert store.rounds_written() == [0, 1]
    con = sqlite3.connect(run / LABELS_FILE)
    assert [r[0] for r in con.execute("SELECT round FROM rounds ORDER BY round")] == [0, 1]
    con.close()
    _round(store, 2)
    shutil.rmtree(run / ROUNDS_DIR / "round_0000")
    with pytest.raises(RunStoreError, match="round_0000 is missing"):  # now detected
        RunStore.open(run)
