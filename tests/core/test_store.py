"""Tests for the run store: Parquet rounds, config JSON and the SQLite label log."""

from __future__ import annotations

import json
import pickle
import queue
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import AlfavizInputError
from alfaviz.store import (
    CONFIG_FILE,
    FORMAT_VERSION,
    LABELS_FILE,
    ROUND_FILE,
    ROUNDS_DIR,
    LabelLog,
    RunStore,
    RunStoreError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------


def rich_frame(offset: int = 0) -> pd.DataFrame:
    """Six rows covering the dtypes a run stores."""
    return pd.DataFrame(
        {
            "sample_id": np.arange(6, dtype=np.int64) * 3 + offset,
            "score": np.array([0.5, np.inf, np.nan, -np.inf, 1e-300, -0.0]),
            "prob_max": np.linspace(0, 1, 6, dtype=np.float32),
            "selected": np.array([True, False, False, True, False, True]),
            "strategy": pd.Series(["alfamix", "random", None, "alfamix", "é ü", ""]),
            "cluster": np.array([3, 1, 3, 1, 1, 3], dtype=np.int32),
            "x": np.linspace(-1, 1, 6, dtype=np.float32),
            "true_label": pd.array([1, None, 2, 0, 1, 9], dtype="Int64"),
            "flag": pd.array([True, None, False, True, True, False], dtype="boolean"),
        },
        index=pd.RangeIndex(6),
    )


def flips_frame(offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": np.repeat(np.arange(3, dtype=np.int64) + offset, 2),
            "anchor_class": np.tile(np.arange(2, dtype=np.int64), 3),
            "flipped": np.array([True, False, False, False, True, True]),
            "flip_to": np.array([1, -1, -1, -1, 0, 0], dtype=np.int64),
            "critical_eps": np.array([0.1, np.inf, np.inf, np.nan, 0.2, 0.3]),
        }
    )


ROW0 = {
    "strategy": "alfamix",
    "n_labelled": 20,
    "level": 0.25,
    "accuracy": np.float64(0.5),
    "n_fill": np.int64(0),
    "converged": True,
    "time_query": float("inf"),
    "note": None,
}
ROW1 = {
    "strategy": "alfamix",
    "n_labelled": 30,
    "level": 0.5,
    "accuracy": 0.75,
    "n_fill": 2,
    "converged": False,
    "time_query": 1.5,
    "note": None,
}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore.create(tmp_path / "run", {"seed": 7, "budget": 10, "name": "test"})
    yield s
    s.close()


def write_two_rounds(store: RunStore) -> None:
    rng = np.random.default_rng(0)
    store.write_round(
        0,
        samples=rich_frame(),
        flips=flips_frame(),
        rounds_row=ROW0,
        embeddings=rng.standard_normal((6, 4)).astype(np.float32),
        embedding_ids=np.arange(6) * 3,
        coords=pd.DataFrame(
            {"sample_id": np.arange(6) * 3, "x": rng.random(6), "y": rng.random(6)}
        ),
        extra={"paths": flips_frame()},
    )
    store.write_round(1, samples=rich_frame(100), flips=flips_frame(100), rounds_row=ROW1)


def readline(proc: subprocess.Popen, timeout: float) -> str:
    """Read one line of ``proc.stdout``, failing the test after ``timeout`` seconds."""
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: q.put(proc.stdout.readline()), daemon=True).start()
    try:
        return q.get(timeout=timeout).strip()
    except queue.Empty:
        proc.kill()
        pytest.fail(f"subprocess printed nothing within {timeout}s: {proc.stderr.read()}")


def spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


# ---------------------------------------------------------------------------------------------
# create / open / config
# ---------------------------------------------------------------------------------------------


def test_create_writes_config_with_versions_and_seed(store: RunStore) -> None:
    meta = json.loads((store.path / CONFIG_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["config"] == {"seed": 7, "budget": 10, "name": "test"}
    assert meta["seed"] == 7
    for key in ("python", "torch", "numpy", "pandas", "alfaviz", "platform"):
        assert meta["versions"][key]
    assert not list(store.path.glob(".*tmp*"))  # the temporary file was moved away
    reopened = RunStore.open(store.path)
    assert reopened.config == store.config == meta["config"]
    assert reopened.seed == 7


def test_create_converts_numpy_values_and_rejects_unserialisable(tmp_path: Path) -> None:
    s = RunStore.create(tmp_path / "a", {"lr": np.float64(0.1), "dims": np.arange(3)}, seed=1)
    assert s.config == {"lr": 0.1, "dims": [0, 1, 2]}
    assert s.seed == 1
    with pytest.raises(AlfavizInputError, match="JSON"):
        RunStore.create(tmp_path / "b", {"model": object()})


def test_create_refuses_existing_run_unless_exist_ok(store: RunStore) -> None:
    with pytest.raises(RunStoreError, match="already exists"):
        RunStore.create(store.path, store.config)
    again = RunStore.create(store.path, store.config, exist_ok=True)
    assert again.path == store.path
    with pytest.raises(RunStoreError, match=r"different config.*budget"):
        RunStore.create(store.path, {**store.config, "budget": 11}, exist_ok=True)


def test_create_refuses_non_empty_non_run_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunStoreError, match="not empty"):
        RunStore.create(tmp_path, {}, exist_ok=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert RunStore.create(empty, {}).rounds_written() == []


def test_open_names_path_and_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        RunStore.open(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunStoreError, match="is a file"):
        RunStore.open(tmp_path / "file")
    with pytest.raises(RunStoreError, match=r"config\.json is missing") as info:
        RunStore.open(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert issubclass(RunStoreError, ValueError)


def test_open_refuses_newer_format(store: RunStore) -> None:
    meta = json.loads((store.path / CONFIG_FILE).read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (store.path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(RunStoreError, match="format_version"):
        RunStore.open(store.path)


# ---------------------------------------------------------------------------------------------
# rounds: round trip and immutability
# ---------------------------------------------------------------------------------------------


def test_round_trip_frames_rows_embeddings_coords(store: RunStore) -> None:
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((6, 4)).astype(np.float32)
    coords = pd.DataFrame({"sample_id": np.arange(6) * 3, "x": rng.random(6), "y": rng.random(6)})
    store.write_round(
        0,
        samples=rich_frame(),
        flips=flips_frame(),
        rounds_row=ROW0,
        embeddings=emb,
        embedding_ids=np.arange(6) * 3,
        coords=coords,
        extra={"paths": flips_frame()},
    )
    emb64 = rng.standard_normal((6, 3))
    store.write_round(
        1, samples=rich_frame(100), flips=flips_frame(100), rounds_row=ROW1, embeddings=emb64
    )

    s = RunStore.open(store.path)  # everything comes from disk
    assert s.rounds_written() == [0, 1]
    pd.testing.assert_frame_equal(s.read_samples(0), rich_frame())
    pd.testing.assert_frame_equal(s.read_samples(1), rich_frame(100))
    pd.testing.assert_frame_equal(s.read_flips(0), flips_frame())
    pd.testing.assert_frame_equal(s.read_coords(0), coords)
    pd.testing.assert_frame_equal(s.read_extra(0, "paths"), flips_frame())

    ids, matrix = s.read_embeddings(0)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, np.arange(6) * 3)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, emb)
    matrix[0, 0] = 1.0  # a writable copy
    ids1, matrix1 = s.read_embeddings(1)
    np.testing.assert_array_equal(ids1, np.arange(6))
    assert matrix1.dtype == np.float64
    np.testing.assert_array_equal(matrix1, emb64)

    expected_rounds = pd.DataFrame([{"round": 0, **ROW0}, {"round": 1, **ROW1}])
    expected_rounds["accuracy"] = expected_rounds["accuracy"].astype(np.float64)
    expected_rounds["n_fill"] = expected_rounds["n_fill"].astype(np.int64)
    got = s.read_rounds()
    pd.testing.assert_frame_equal(got, expected_rounds)
    assert got["time_query"].iloc[0] == np.inf
    assert s.read_round_row(1) == {"round": 1, **ROW1}
    assert s.artefacts(1) == ["embeddings.parquet", "flips.parquet", "samples.parquet"]


def test_read_all_rounds_adds_round_column(store: RunStore) -> None:
    write_two_rounds(store)
    got = store.read_samples()
    parts = []
    for r, offset in ((0, 0), (1, 100)):
        part = rich_frame(offset)
        part.insert(0, "round", np.full(6, r, dtype=np.int64))
        parts.append(part)
    pd.testing.assert_frame_equal(got, pd.concat(parts, ignore_index=True))
    flips = store.read_flips()
    assert flips["round"].tolist() == [0] * 6 + [1] * 6
    assert flips["round"].dtype == np.int64


def test_empty_store_reads_empty_frames(store: RunStore) -> None:
    assert store.rounds_written() == []
    assert store.read_samples().empty
    assert list(store.read_rounds().columns) == ["round"]
    assert store.labels().empty
    assert list(store.labels().columns) == ["sample_id", "label", "round", "source", "ts"]
    assert store.labels()["label"].dtype == np.int32  # schema.LABELS: class codes are int32


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical(["a", "b", "a"]),
        pd.Categorical(np.array([1, 2, 1], dtype=np.uint8), categories=[2, 1, 5]),
    ],
    ids=["strings", "uint8"],
)
def test_categorical_columns_are_refused_clearly(store: RunStore, column: pd.Categorical) -> None:
    df = pd.DataFrame({"sample_id": [4, 5, 6], "c": column})
    with pytest.raises(AlfavizInputError, match=r"categorical columns \['c'\]; store their codes"):
        store.write_round(0, samples=df, flips=df, rounds_row={})
    assert store.rounds_written() == []


def test_empty_frames_round_trip(store: RunStore) -> None:
    empty_flips = flips_frame().iloc[:0]
    store.write_round(0, samples=rich_frame(), flips=empty_flips, rounds_row={})
    pd.testing.assert_frame_equal(store.read_flips(0), empty_flips)
    assert store.read_rounds().to_dict("records") == [{"round": 0}]


def test_rounds_are_immutable(store: RunStore) -> None:
    write_two_rounds(store)
    samples_file = store.path / ROUNDS_DIR / "round_0000" / "samples.parquet"
    before = samples_file.read_bytes()
    with pytest.raises(RunStoreError, match="immutable"):
        store.write_round(0, samples=rich_frame(50), flips=flips_frame(), rounds_row=ROW1)
    assert samples_file.read_bytes() == before
    pd.testing.assert_frame_equal(store.read_samples(0), rich_frame())

    store.write_round(
        0, samples=rich_frame(50), flips=flips_frame(), rounds_row=ROW1, overwrite=True
    )
    pd.testing.assert_frame_equal(store.read_samples(0), rich_frame(50))
    assert store.artefacts(0) == ["flips.parquet", "samples.parquet"]  # old files are gone
    assert sorted(p.name for p in (store.path / ROUNDS_DIR).iterdir()) == [
        "round_0000",
        "round_0001",
    ]


def test_failed_write_leaves_no_round(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import alfaviz.store._run as store_mod

    calls = []
    real = store_mod.write_table_file

    def flaky(table: Any, path: Path) -> None:  # the second Parquet file (flips) fails
        calls.append(path)
        if len(calls) == 2:
            real(table, path)  # half written
            with open(path, "r+b") as fh:
                fh.truncate(path.stat().st_size // 2)
            raise OSError("disk full")
        real(table, path)

    monkeypatch.setattr(store_mod, "write_table_file", flaky)
    with pytest.raises(OSError, match="disk full"):
        store.write_round(0, samples=rich_frame(), flips=flips_frame(), rounds_row=ROW0)
    assert [p.name for p in calls] == ["samples.parquet", "flips.parquet"]
    assert store.rounds_written() == []
    assert list((store.path / ROUNDS_DIR).iterdir()) == []  # no temp directory left behind
    # the manifest (round.json) is written last: a write that fails on it leaves no round either
    monkeypatch.setattr(store_mod, "write_table_file", real)
    real_file = store_mod.write_file

    def no_manifest(path: Path, data: bytes) -> None:
        if path.name == "round.json":
            raise OSError("disk full")
        real_file(path, data)

    monkeypatch.setattr(store_mod, "write_file", no_manifest)
    with pytest.raises(OSError, match="disk full"):
        store.write_round(0, samples=rich_frame(), flips=flips_frame(), rounds_row=ROW0)
    assert store.rounds_written() == []
    assert list((store.path / ROUNDS_DIR).iterdir()) == []


def test_hidden_temp_directories_are_ignored(store: RunStore) -> None:
    (store.path / ROUNDS_DIR / ".round_0004.tmp-1-abc").mkdir()
    assert store.rounds_written() == []


def test_missing_round_and_artefact_errors(store: RunStore) -> None:
    write_two_rounds(store)
    with pytest.raises(RunStoreError, match=r"round 5 is not in the run.*\[0, 1\]"):
        store.read_samples(5)
    with pytest.raises(RunStoreError, match="no coords"):
        store.read_coords(1)
    with pytest.raises(RunStoreError, match="extra frame 'nope'"):
        store.read_extra(0, "nope")


def test_write_round_rejects_bad_input(store: RunStore) -> None:
    ok = {"samples": rich_frame(), "flips": flips_frame(), "rounds_row": ROW0}
    with pytest.raises(AlfavizInputError, match="samples must be a pandas DataFrame"):
        store.write_round(0, **{**ok, "samples": {"a": [1]}})
    with pytest.raises(AlfavizInputError, match="string column names"):
        store.write_round(0, **{**ok, "flips": pd.DataFrame({0: [1]})})
    with pytest.raises(AlfavizInputError, match="scalar"):
        store.write_round(0, **{**ok, "rounds_row": {"a": [1, 2]}})
    with pytest.raises(AlfavizInputError, match=r"rounds_row\['round'\]"):
        store.write_round(0, **{**ok, "rounds_row": {"round": 3}})
    with pytest.raises(AlfavizInputError, match="2-D"):
        store.write_round(0, **ok, embeddings=np.zeros(3))
    with pytest.raises(AlfavizInputError, match="embedding_ids"):
        store.write_round(0, **ok, embeddings=np.zeros((3, 2)), embedding_ids=[1, 2])
    with pytest.raises(AlfavizInputError, match="missing"):
        store.write_round(0, **ok, coords=pd.DataFrame({"sample_id": [1], "x": [0.0]}))
    with pytest.raises(AlfavizInputError, match="extra frame name"):
        store.write_round(0, **ok, extra={"../evil": flips_frame()})
    assert store.rounds_written() == []


def test_torch_embeddings_are_accepted(store: RunStore) -> None:
    torch = pytest.importorskip("torch")
    z = torch.randn(5, 2)
    store.write_round(0, samples=rich_frame(), flips=flips_frame(), rounds_row={}, embeddings=z)
    ids, matrix = store.read_embeddings(0)
    np.testing.assert_array_equal(matrix, z.numpy())
    np.testing.assert_array_equal(ids, np.arange(5))


# ---------------------------------------------------------------------------------------------
# corrupted files
# ---------------------------------------------------------------------------------------------


def _truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scribble_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(16)
    if bytes(data) == path.read_bytes():  # pragma: no cover - the middle was zeros already
        data[mid : mid + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate_half, _scribble_middle], ids=["truncate", "scribble"])
@pytest.mark.parametrize(
    ("file", "read"),
    [
        ("samples.parquet", lambda s: s.read_samples(0)),
        ("samples.parquet", lambda s: s.read_samples()),
        ("flips.parquet", lambda s: s.read_flips(0)),
        ("embeddings.parquet", lambda s: s.read_embeddings(0)),
        ("coords.parquet", lambda s: s.read_coords(0)),
    ],
)
def test_corrupt_parquet_raises_naming_file(store: RunStore, damage, file: str, read) -> None:
    write_two_rounds(store)
    damage(store.path / ROUNDS_DIR / "round_0000" / file)
    with pytest.raises(RunStoreError, match=rf"round_0000/{file}.*(corrupt|truncated)"):
        read(RunStore.open(store.path))


def test_truncated_parquet_raises_even_without_checksum_verification(store: RunStore) -> None:
    write_two_rounds(store)
    _truncate_half(store.path / ROUNDS_DIR / "round_0001" / "samples.parquet")
    s = RunStore.open(store.path, verify=False)
    with pytest.raises(RunStoreError, match=r"round_0001/samples\.parquet is corrupt or truncated"):
        s.read_samples(1)
    pd.testing.assert_frame_equal(s.read_samples(0), rich_frame())  # other rounds still load


def test_truncated_config_json_raises(store: RunStore) -> None:
    _truncate_half(store.path / CONFIG_FILE)
    with pytest.raises(RunStoreError, match=r"config\.json is corrupt or truncated"):
        RunStore.open(store.path)


def test_garbage_round_json_raises(store: RunStore) -> None:
    write_two_rounds(store)
    (store.path / ROUNDS_DIR / "round_0001" / ROUND_FILE).write_bytes(b"\x00\xffgarbage{]")
    with pytest.raises(RunStoreError, match=r"round_0001/round\.json is corrupt"):
        store.read_rounds()
    with pytest.raises(RunStoreError, match=r"round_0001/round\.json is corrupt"):
        store.read_samples(1)
    pd.testing.assert_frame_equal(store.read_samples(0), rich_frame())


def test_edited_round_json_fails_its_checksum(store: RunStore) -> None:
    write_two_rounds(store)
    file = store.path / ROUNDS_DIR / "round_0001" / ROUND_FILE
    file.write_text(file.read_text().replace('"n_labelled": 30', '"n_labelled": 31'))
    with pytest.raises(RunStoreError, match=r"round\.json is corrupt.*checksum"):
        store.read_rounds()


def test_truncated_round_json_raises(store: RunStore) -> None:
    write_two_rounds(store)
    _truncate_half(store.path / ROUNDS_DIR / "round_0000" / ROUND_FILE)
    with pytest.raises(RunStoreError, match=r"round_0000/round\.json is corrupt or truncated"):
        store.read_rounds()


def test_missing_parquet_file_raises(store: RunStore) -> None:
    write_two_rounds(store)
    (store.path / ROUNDS_DIR / "round_0000" / "flips.parquet").unlink()
    with pytest.raises(RunStoreError, match=r"flips\.parquet is missing"):
        store.read_flips()


# ---------------------------------------------------------------------------------------------
# labels, skips, undo, events
# ---------------------------------------------------------------------------------------------


def test_labels_are_one_row_per_action_and_latest_wins(store: RunStore) -> None:
    a = store.add_label(5, 1, round=0)
    b = store.add_label(2, 0, round=0, source="oracle")
    c = store.add_label(5, 3, round=1, session="tab1")
    assert a < b < c
    labels = store.labels()
    assert labels[["sample_id", "label", "round"]].to_dict("records") == [
        {"sample_id": 2, "label": 0, "round": 0},
        {"sample_id": 5, "label": 3, "round": 1},
    ]
    assert labels["source"].tolist() == ["oracle", "human"]
    assert dict(labels.dtypes.astype(str)) == {
        "sample_id": "int64",
        "label": "int32",
        "round": "int32",
        "source": str(pd.Series(["x"]).dtype),
        "ts": "float64",
    }
    acts = store.actions()
    assert acts["id"].tolist() == [a, b, c]
    assert acts["action"].tolist() == ["label"] * 3
    assert acts["label"].dtype == "Int64"
    assert acts["session"].tolist() == [store.session, store.session, "tab1"]


def test_skip_and_undo_semantics(store: RunStore) -> None:
    first = store.add_label(1, 4, round=0)
    store.add_label(1, 5, round=0)
    skip = store.add_skip(2, round=0)
    assert store.skipped()["sample_id"].tolist() == [2]
    assert store.labels()["label"].tolist() == [5]  # skips do not touch labels

    undone = store.undo()
    assert undone["id"] == skip
    assert undone["action"] == "skip"
    assert store.skipped().empty

    undone = store.undo()
    assert (undone["sample_id"], undone["label"]) == (1, 5)
    assert store.labels()["label"].tolist() == [4]  # falls back to the previous label

    undone = store.undo()
    assert undone["id"] == first
    assert store.labels().empty
    assert store.undo() is None  # nothing left to undo

    acts = store.actions()
    assert acts["action"].tolist() == ["label", "label", "skip", "undo", "undo", "undo"]
    assert acts["undoes"].tolist()[3:] == [skip, first + 1, first]
    assert acts["sample_id"].tolist()[3:] == [2, 1, 1]  # undo rows name the sample


def test_undo_by_session_touches_only_that_session(store: RunStore) -> None:
    store.add_label(1, 1, round=0, session="a")
    b = store.add_label(2, 2, round=0, session="b")
    store.add_label(3, 3, round=0, session="a")
    assert store.undo(session="b")["id"] == b
    assert store.undo(session="b") is None
    assert store.labels()["sample_id"].tolist() == [1, 3]
    assert store.undo(session="a")["sample_id"] == 3
    assert store.labels()["sample_id"].tolist() == [1]


def test_label_input_is_validated(store: RunStore) -> None:
    with pytest.raises(AlfavizInputError, match="label"):
        store.add_label(1, 0.5, round=0)
    with pytest.raises(AlfavizInputError, match="sample_id"):
        store.add_label(-1, 0, round=0)
    with pytest.raises(AlfavizInputError, match="round"):
        store.add_skip(1, round=True)
    assert store.add_label(np.int64(3), np.int32(1), round=np.int64(0)) > 0
    assert store.actions().shape[0] == 1


def test_events_round_trip(store: RunStore) -> None:
    e = store.log_event("round_start", {"round": np.int64(2), "ids": np.arange(3), "acc": 0.5})
    store.log_event("ui", {})
    ev = store.events()
    assert ev["id"].tolist() == [e, e + 1]
    assert ev["kind"].tolist() == ["round_start", "ui"]
    assert ev["payload"].iloc[0] == {"round": 2, "ids": [0, 1, 2], "acc": 0.5}
    with pytest.raises(AlfavizInputError, match="payload"):
        store.log_event("x", [1, 2])


def test_sqlite_is_in_wal_mode_with_tables(store: RunStore) -> None:
    store.add_label(1, 1, round=0)
    con = sqlite3.connect(store.path / LABELS_FILE)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"actions", "events"} <= tables
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(
                "INSERT INTO actions (ts, round, sample_id, action) VALUES (0, 0, 1, 'delete')"
            )
    finally:
        con.close()


def test_garbage_labels_database_raises(store: RunStore) -> None:
    store.close()
    (store.path / LABELS_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(RunStoreError, match=r"labels\.sqlite.*corrupt"):
        RunStore.open(store.path).labels()


def test_store_is_picklable_and_thread_safe(store: RunStore) -> None:
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path
    copy.add_label(0, 1, round=0)
    log = pickle.loads(pickle.dumps(store.log))
    assert isinstance(log, LabelLog)
    assert log.labels()["sample_id"].tolist() == [0]

    def work(start: int) -> None:
        for i in range(start, start + 25):
            store.add_label(i, i % 3, round=0)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, [100, 200, 300, 400]))
    assert len(store.labels()) == 101
    store.close()
    assert len(store.labels()) == 101  # usable again after close


# ---------------------------------------------------------------------------------------------
# durability and concurrency across processes
# ---------------------------------------------------------------------------------------------

KILL_SCRIPT = """
import sys, time
from alfaviz.store import RunStore
store = RunStore.open(sys.argv[1])
store.add_label(42, 7, round=3, session="doomed")
print("done", flush=True)
time.sleep(120)
"""


def test_label_survives_kill_9(store: RunStore) -> None:
    store.close()
    proc = spawn(KILL_SCRIPT, str(store.path))
    try:
        assert readline(proc, timeout=120) == "done"
        wal = store.path / (LABELS_FILE + "-wal")
        assert wal.exists()  # WAL mode is on and the label sits in the write-ahead log
        assert wal.stat().st_size > 0
        proc.kill()  # SIGKILL: no atexit handlers, no sqlite close, no checkpoint
        assert proc.wait(timeout=30) == -9
    finally:
        if proc.poll() is None:  # pragma: no cover - only on failure
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    reopened = RunStore.open(store.path)
    labels = reopened.labels()
    assert labels[["sample_id", "label", "round"]].to_dict("records") == [
        {"sample_id": 42, "label": 7, "round": 3}
    ]
    assert reopened.actions()["session"].tolist() == ["doomed"]


WRITER_SCRIPT = """
import os, sys, time
from alfaviz.store import RunStore
path, start, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = RunStore.open(path)
store.labels()  # open the connection before the start signal
print("ready", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
for i in range(start, start + n):
    store.add_label(i, i % 10, round=1, session=f"writer{start}")
print("finished", flush=True)
"""


def test_two_processes_writing_at_once_lose_nothing(store: RunStore, tmp_path: Path) -> None:
    n = 200
    go = tmp_path / "go"
    procs = [spawn(WRITER_SCRIPT, str(store.path), str(start), str(n), str(go)) for start in (0, n)]
    try:
        for proc in procs:
            assert readline(proc, timeout=120) == "ready"
        go.touch()  # barrier: both writers start together
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:  # pragma: no cover - only on failure
                proc.kill()
                proc.wait()

    acts = store.actions()
    assert len(acts) == 2 * n
    assert (acts["action"] == "label").all()
    assert acts["id"].is_unique
    labels = store.labels()
    assert labels["sample_id"].tolist() == list(range(2 * n))
    assert labels["label"].tolist() == [i % 10 for i in range(2 * n)]
    assert set(acts["session"]) == {"writer0", f"writer{n}"}


def test_round_files_are_streamed_in_row_groups_and_read_back_whole(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    import alfaviz.store._parquet as parquet_mod

    monkeypatch.setattr(parquet_mod, "ROW_GROUP_BYTES", 64 << 10)  # 64 KiB groups
    n, dim = 40_000, 16
    rng = np.random.default_rng(0)
    samples = pd.DataFrame(
        {"sample_id": np.arange(n, dtype=np.int64), "score": rng.random(n).astype(np.float32)}
    )
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    store.write_round(0, samples=samples, flips=flips_frame(), rounds_row=ROW0, embeddings=emb)
    folder = store.path / ROUNDS_DIR / "round_0000"
    assert pq.ParquetFile(folder / "samples.parquet").metadata.num_row_groups > 1
    assert pq.ParquetFile(folder / "embeddings.parquet").metadata.num_row_groups > 1
    pd.testing.assert_frame_equal(store.read_samples(0), samples)
    ids, back = store.read_embeddings(0)
    np.testing.assert_array_equal(ids, np.arange(n))
    np.testing.assert_array_equal(back, emb)
    manifest = json.loads((folder / "round.json").read_text())
    for rel, entry in manifest["files"].items():  # sizes and digests are of the files written
        assert entry["bytes"] == (folder / rel).stat().st_size
    assert store.verify() == []  # every file matches its manifest entry
