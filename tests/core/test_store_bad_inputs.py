"""Every bad input to the run store gets a clear one-line error, before anything is written.

Each row calls the store with one bad argument and names the error type and a message
pattern: the message names the argument (and, where there is one, the fix). After each row
the run directory and its label log are checked to be unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store import LabelLog, RunStore

IDS = np.arange(4, dtype=np.int64)


def frames(**overrides: Any) -> dict[str, Any]:
    ok: dict[str, Any] = {
        "samples": pd.DataFrame({"sample_id": IDS, "v": IDS * 1.0}),
        "flips": pd.DataFrame({"sample_id": IDS[:2]}),
        "rounds_row": {"accuracy": 0.5},
    }
    return {**ok, **overrides}


def write(r: Any = 1, **overrides: Any) -> Callable[[RunStore, Path], Any]:
    return lambda s, tmp: s.write_round(r, **frames(**overrides))


def create(*args: Any, **kwargs: Any) -> Callable[[RunStore, Path], Any]:
    return lambda s, tmp: RunStore.create(*(a(tmp) if callable(a) else a for a in args), **kwargs)


def new(tmp: Path) -> Path:
    return tmp / "new_run"


Row = tuple[str, Callable[[RunStore, Path], Any], type[Exception], str]

BAD_INPUTS: list[Row] = [
    # paths ----------
    ("create-path-none", create(None, {}), AlfavizInputError, r"path must be a str or pathlib"),
    ("create-path-empty", create("", {}), AlfavizInputError, r"path must name a directory.*Pass"),
    ("create-path-blank", create("  ", {}), AlfavizInputError, r"path must name a directory"),
    ("create-path-bytes", create(b"run", {}), AlfavizInputError, r"path must be a str or pathlib"),
    ("create-path-int", create(7, {}), AlfavizInputError, r"path must be a str or pathlib"),
    ("create-path-nul", create("a\x00b", {}), AlfavizInputError, r"path must not contain NUL"),
    (
        "create-path-is-file",
        lambda s, tmp: RunStore.create(tmp / "afile", {}),
        RunStoreError,
        r"afile: it exists and is not a directory",
    ),
    (
        "create-path-non-empty",
        lambda s, tmp: RunStore.create(tmp, {}),
        RunStoreError,
        r"not empty and is not a run directory.*Choose a new or empty directory",
    ),
    (
        "create-existing-run",
        lambda s, tmp: RunStore.create(s.path, s.config),
        RunStoreError,
        r"a run already exists at .*pass exist_ok=True",
    ),
    ("open-path-int", lambda s, tmp: RunStore.open(3), AlfavizInputError, r"path must be a str"),
    ("open-path-empty", lambda s, tmp: RunStore.open(""), AlfavizInputError, r"path must name"),
    (
        "open-missing",
        lambda s, tmp: RunStore.open(tmp / "nope"),
        RunStoreError,
        r"nope is not a run directory: it does not exist",
    ),
    (
        "open-not-a-run",
        lambda s, tmp: RunStore.open(tmp / "plain"),
        RunStoreError,
        r"plain is not a run directory: config\.json is missing.*RunStore\.create",
    ),
    # config, seed, fingerprint, initial set, files, timeout ----------
    ("config-list", create(new, [1]), AlfavizInputError, r"config must be a dict.*Pass e\.g\."),
    ("config-object", create(new, {"m": object()}), AlfavizInputError, r"config must be JSON"),
    ("seed-str", create(new, {}, seed="3"), AlfavizInputError, r"seed must be an integer"),
    ("seed-float", create(new, {}, seed=1.5), AlfavizInputError, r"seed must be an integer"),
    (
        "seed-disagrees",
        create(new, {"seed": 1}, seed=2),
        AlfavizInputError,
        r"seed=2 disagrees with config\['seed'\]=1; pass one",
    ),
    (
        "fingerprint-list",
        create(new, {}, fingerprint=[1]),
        AlfavizInputError,
        r"fingerprint must be a dict",
    ),
    (
        "fingerprint-object",
        create(new, {}, fingerprint={"f": object()}),
        AlfavizInputError,
        r"fingerprint must be JSON",
    ),
    (
        "fingerprint-int-key",
        create(new, {}, fingerprint={1: 2}),
        AlfavizInputError,
        r"fingerprint keys must be strings",
    ),
    (
        "initial-str",
        create(new, {}, initial_labels="abc"),
        AlfavizInputError,
        r"initial_labels must be a list of \(sample_id, label\)",
    ),
    (
        "initial-short",
        create(new, {}, initial_labels=[(1,)]),
        AlfavizInputError,
        r"initial_labels\[0\] must be a \(sample_id, label\)",
    ),
    (
        "initial-negative",
        create(new, {}, initial_labels=[(1, 0), (-2, 0)]),
        AlfavizInputError,
        r"initial_labels\[1\] sample_id must be an integer >= 0",
    ),
    (
        "initial-dup",
        create(new, {}, initial_labels=[(1, 0), (1, 1)]),
        AlfavizInputError,
        r"initial_labels names sample_id 1 twice",
    ),
    (
        "files-list",
        create(new, {}, files=[b"x"]),
        AlfavizInputError,
        r"files must be a dict of name -> bytes",
    ),
    (
        "files-traversal",
        create(new, {}, files={"../x": b""}),
        AlfavizInputError,
        r"files name '\.\./x' must be a plain file name",
    ),
    (
        "files-reserved",
        create(new, {}, files={"config.json": b""}),
        AlfavizInputError,
        r"files name 'config\.json' must be a plain file name .* other than",
    ),
    (
        "files-text",
        create(new, {}, files={"a.txt": "text"}),
        AlfavizInputError,
        r"files\['a\.txt'\] must be bytes.*Serialise",
    ),
    (
        "timeout-negative",
        create(new, {}, timeout=-1),
        AlfavizInputError,
        r"timeout must be a number of seconds >= 0",
    ),
    ("timeout-bool", create(new, {}, timeout=True), AlfavizInputError, r"timeout must be a number"),
    (
        "session-empty",
        create(new, {}, session=""),
        AlfavizInputError,
        r"session must be a non-empty",
    ),
    # rounds: numbers ----------
    (
        "round-negative",
        write(-1),
        AlfavizInputError,
        r"round must be an integer >= 0; got -1\. Pass",
    ),
    (
        "round-float",
        write(1.5),
        AlfavizInputError,
        r"round must be an integer >= 0; got 1\.5 \(float\)",
    ),
    ("round-str", write("2"), AlfavizInputError, r"round must be an integer >= 0; got '2' \(str\)"),
    ("round-bool", write(True), AlfavizInputError, r"round must be an integer >= 0; got True"),
    ("round-none", write(None), AlfavizInputError, r"round must be an integer"),
    (
        "round-huge",
        write(2**64),
        AlfavizInputError,
        r"round must be an integer <= 9223372036854775807",
    ),
    ("round-exists", write(0), RunStoreError, r"round 0 is already written .*pass overwrite=True"),
    # rounds: frames and rows ----------
    (
        "samples-dict",
        write(samples={"a": [1]}),
        AlfavizInputError,
        r"samples must be a pandas DataFrame; got dict\. Wrap",
    ),
    ("samples-none", write(samples=None), AlfavizInputError, r"samples must be a pandas DataFrame"),
    (
        "flips-array",
        write(flips=np.zeros((2, 2))),
        AlfavizInputError,
        r"flips must be a pandas DataFrame",
    ),
    (
        "flips-int-columns",
        write(flips=pd.DataFrame({0: [1]})),
        AlfavizInputError,
        r"flips must have string column names.*Rename",
    ),
    (
        "samples-multiindex",
        write(
            samples=pd.DataFrame(
                [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])
            )
        ),
        AlfavizInputError,
        r"samples must have string column names",
    ),
    (
        "samples-duplicate-columns",
        write(samples=pd.DataFrame([[1, 2]], columns=["a", "a"])),
        AlfavizInputError,
        r"samples has duplicate column names \['a'\]; make them unique",
    ),
    (
        "samples-mixed-objects",
        write(samples=pd.DataFrame({"a": [1, "x", 2.5]})),
        AlfavizInputError,
        r"samples cannot be stored as Parquet.*one type",
    ),
    (
        "row-list",
        write(rounds_row=[1]),
        AlfavizInputError,
        r"rounds_row must be a dict of scalars; got list",
    ),
    (
        "row-array-value",
        write(rounds_row={"a": [1, 2]}),
        AlfavizInputError,
        r"rounds_row\['a'\] must be a scalar.*extra frame",
    ),
    (
        "row-int-key",
        write(rounds_row={1: 2}),
        AlfavizInputError,
        r"rounds_row keys must be strings",
    ),
    (
        "row-round-mismatch",
        write(rounds_row={"round": 3}),
        AlfavizInputError,
        r"rounds_row\['round'\] is 3 but round=1; drop the key",
    ),
    # rounds: embeddings, coords, extras ----------
    (
        "embeddings-1d",
        write(embeddings=np.zeros(3)),
        AlfavizInputError,
        r"embeddings must be 2-D with shape \(n_samples, dim >= 1\); got \(3,\)",
    ),
    (
        "embeddings-no-columns",
        write(embeddings=np.zeros((3, 0))),
        AlfavizInputError,
        r"embeddings must be 2-D",
    ),
    (
        "embeddings-strings",
        write(embeddings=np.array([["a", "b"]])),
        AlfavizInputError,
        r"embeddings must be numeric.*astype",
    ),
    (
        "embeddings-ragged",
        write(embeddings=[[1.0, 2.0], [3.0]]),
        AlfavizInputError,
        r"embeddings must be a numeric array",
    ),
    (
        "embedding-ids-length",
        write(embeddings=np.zeros((3, 2)), embedding_ids=[1, 2]),
        AlfavizInputError,
        r"embedding_ids must be integers of shape \(3,\)",
    ),
    (
        "embedding-ids-float",
        write(embeddings=np.zeros((2, 2)), embedding_ids=[1.0, 2.0]),
        AlfavizInputError,
        r"embedding_ids must be integers",
    ),
    (
        "embedding-ids-dup",
        write(embeddings=np.zeros((2, 2)), embedding_ids=[1, 1]),
        AlfavizInputError,
        r"embedding_ids must be unique",
    ),
    (
        "embedding-ids-negative",
        write(embeddings=np.zeros((2, 2)), embedding_ids=[1, -1]),
        AlfavizInputError,
        r"embedding_ids must be sample ids >= 0",
    ),
    (
        "embedding-ids-alone",
        write(embedding_ids=[1, 2]),
        AlfavizInputError,
        r"embedding_ids given without embeddings; pass both",
    ),
    (
        "coords-missing-y",
        write(coords=pd.DataFrame({"sample_id": [1], "x": [0.0]})),
        AlfavizInputError,
        r"coords must have columns sample_id, x, y; missing \['y'\]",
    ),
    (
        "coords-array",
        write(coords=np.zeros((2, 3))),
        AlfavizInputError,
        r"coords must be a pandas DataFrame",
    ),
    (
        "extra-traversal",
        write(extra={"../evil": pd.DataFrame()}),
        AlfavizInputError,
        r"extra frame name '\.\./evil' must be letters",
    ),
    (
        "extra-slash",
        write(extra={"a/b": pd.DataFrame()}),
        AlfavizInputError,
        r"extra frame name 'a/b'",
    ),
    (
        "extra-empty-name",
        write(extra={"": pd.DataFrame()}),
        AlfavizInputError,
        r"extra frame name ''",
    ),
    ("extra-int-name", write(extra={3: pd.DataFrame()}), AlfavizInputError, r"extra frame name 3"),
    (
        "extra-not-a-dict",
        write(extra=[pd.DataFrame()]),
        AlfavizInputError,
        r"extra must be a dict of name -> DataFrame",
    ),
    (
        "extra-not-a-frame",
        write(extra={"q": [1, 2]}),
        AlfavizInputError,
        r"extra\['q'\] must be a pandas DataFrame",
    ),
    # rounds: labels ----------
    (
        "round-labels-negative",
        write(labels=[(1, -1)]),
        AlfavizInputError,
        r"labels\[0\] label must be an integer >= 0; got -1",
    ),
    (
        "round-labels-float",
        write(labels=[(1, 1.5)]),
        AlfavizInputError,
        r"labels\[0\] label must be an integer",
    ),
    (
        "round-labels-none",
        write(labels=[(1, None)]),
        AlfavizInputError,
        r"labels\[0\] label must be an integer",
    ),
    (
        "round-labels-class-name",
        write(labels=[(1, "cat")]),
        AlfavizInputError,
        r"labels\[0\] label must be an integer",
    ),
    (
        "round-labels-dict",
        write(labels={1: 2}),
        AlfavizInputError,
        r"labels must be a list of \(sample_id, label\)",
    ),
    (
        "round-labels-dup",
        write(labels=[(1, 0), (1, 0)]),
        AlfavizInputError,
        r"labels names sample_id 1 twice; pass each sample once",
    ),
    (
        "round-labels-source",
        write(labels=[(1, 0, "")]),
        AlfavizInputError,
        r"labels\[0\] source must be a non-empty one-line string",
    ),
    (
        "label-round-negative",
        write(labels=[(1, 0)], label_round=-2),
        AlfavizInputError,
        r"label_round must be an integer >= 0",
    ),
    (
        "round-session-int",
        write(session=5),
        AlfavizInputError,
        r"session must be a non-empty one-line string",
    ),
    # labels, skips, events ----------
    (
        "label-str",
        lambda s, tmp: s.add_label(1, "cat", round=0),
        AlfavizInputError,
        r"label must be an integer >= 0; got 'cat'",
    ),
    (
        "label-none",
        lambda s, tmp: s.add_label(1, None, round=0),
        AlfavizInputError,
        r"label must be an integer class id >= 0; got None",
    ),
    (
        "label-float",
        lambda s, tmp: s.add_label(1, 0.5, round=0),
        AlfavizInputError,
        r"label must be an integer",
    ),
    (
        "label-bool",
        lambda s, tmp: s.add_label(1, True, round=0),
        AlfavizInputError,
        r"label must be an integer",
    ),
    (
        "label-sample-negative",
        lambda s, tmp: s.add_label(-1, 0, round=0),
        AlfavizInputError,
        r"sample_id must be an integer >= 0; got -1",
    ),
    (
        "label-sample-huge",
        lambda s, tmp: s.add_label(2**64, 0, round=0),
        AlfavizInputError,
        r"sample_id must be an integer <= ",
    ),
    (
        "add-label-round-negative",
        lambda s, tmp: s.add_label(1, 0, round=-1),
        AlfavizInputError,
        r"round must be an integer >= 0",
    ),
    (
        "label-source-empty",
        lambda s, tmp: s.add_label(1, 0, round=0, source=""),
        AlfavizInputError,
        r"source must be a non-empty one-line string or None",
    ),
    (
        "label-source-multiline",
        lambda s, tmp: s.add_label(1, 0, round=0, source="a\nb"),
        AlfavizInputError,
        r"source must be a non-empty one-line string",
    ),
    (
        "label-session-int",
        lambda s, tmp: s.add_label(1, 0, round=0, session=5),
        AlfavizInputError,
        r"session must be a non-empty one-line string",
    ),
    (
        "labels-batch-triple-bad",
        lambda s, tmp: s.add_labels([(1, 0, 3)], round=0),
        AlfavizInputError,
        r"labels\[0\] source must be",
    ),
    (
        "labels-batch-none",
        lambda s, tmp: s.add_labels(None, round=0),
        AlfavizInputError,
        r"labels must be a list of",
    ),
    (
        "labels-batch-round",
        lambda s, tmp: s.add_labels([(1, 0)], round="1"),
        AlfavizInputError,
        r"round must be an integer",
    ),
    (
        "skip-float-id",
        lambda s, tmp: s.add_skip(1.0, round=0),
        AlfavizInputError,
        r"sample_id must be an integer",
    ),
    (
        "skip-round-bool",
        lambda s, tmp: s.add_skip(1, round=True),
        AlfavizInputError,
        r"round must be an integer",
    ),
    (
        "undo-session-empty",
        lambda s, tmp: s.undo(session=""),
        AlfavizInputError,
        r"session must be a non-empty",
    ),
    (
        "event-kind-empty",
        lambda s, tmp: s.log_event(""),
        AlfavizInputError,
        r"kind must be a non-empty string naming the event",
    ),
    (
        "event-payload-list",
        lambda s, tmp: s.log_event("x", [1]),
        AlfavizInputError,
        r"payload must be a dict \(or None\); got list",
    ),
    (
        "event-payload-object",
        lambda s, tmp: s.log_event("x", {"a": object()}),
        AlfavizInputError,
        r"event payload for 'x' must be JSON-serialisable",
    ),
    # reading ----------
    (
        "read-round-negative",
        lambda s, tmp: s.read_samples(-1),
        AlfavizInputError,
        r"round must be an integer >= 0",
    ),
    (
        "read-round-str",
        lambda s, tmp: s.read_flips("0"),
        AlfavizInputError,
        r"round must be an integer",
    ),
    (
        "read-round-missing",
        lambda s, tmp: s.read_samples(7),
        RunStoreError,
        r"round 7 is not in the run .*rounds written: \[0\]",
    ),
    (
        "read-coords-absent",
        lambda s, tmp: s.read_coords(0),
        RunStoreError,
        r"round 0 of .* has no coords",
    ),
    (
        "read-extra-traversal",
        lambda s, tmp: s.read_extra(0, "../round"),
        AlfavizInputError,
        r"extra frame name '\.\./round'",
    ),
    (
        "read-extra-missing",
        lambda s, tmp: s.read_extra(0, "nope"),
        RunStoreError,
        r"has no extra frame 'nope'",
    ),
    (
        "read-file-missing",
        lambda s, tmp: s.read_file("nope"),
        RunStoreError,
        r"has no attached file 'nope'",
    ),
    (
        "fingerprint-check-str",
        lambda s, tmp: s.check_fingerprint("abc"),
        AlfavizInputError,
        r"expected_fingerprint must be a dict",
    ),
    (
        "open-fingerprint-list",
        lambda s, tmp: RunStore.open(s.path, expected_fingerprint=[1]),
        AlfavizInputError,
        r"expected_fingerprint must be a dict",
    ),
    (
        "open-fingerprint-differs",
        lambda s, tmp: RunStore.open(s.path, expected_fingerprint={"n": 2}),
        RunStoreError,
        r"fingerprint fields differ: n \(recorded 1, got 2\)",
    ),
    (
        "labellog-timeout",
        lambda s, tmp: LabelLog(tmp / "x.sqlite", timeout="5"),
        AlfavizInputError,
        r"timeout must be a number of seconds",
    ),
]


def _snapshot(store: RunStore, tmp: Path) -> tuple[Any, ...]:
    files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if LABELS_SUFFIXES not in p.name)
    return tuple(files), len(store.actions()), len(store.events()), tuple(store.rounds_written())


LABELS_SUFFIXES = "labels.sqlite"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def store(tmp: Path) -> RunStore:
    """One run for all rows: every row must leave it unchanged, which each row checks."""
    s = RunStore.create(tmp / "run", {"seed": 0}, fingerprint={"n": 1})
    s.write_round(0, **frames())
    (tmp / "afile").write_text("x")
    (tmp / "plain").mkdir()
    yield s
    s.close()


def test_table_is_large_and_ids_are_unique() -> None:
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [r[1:] for r in BAD_INPUTS], ids=[r[0] for r in BAD_INPUTS]
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    store: RunStore, tmp: Path, call, error: type[Exception], pattern: str
) -> None:
    before = _snapshot(store, tmp)
    with pytest.raises(error, match=pattern) as info:
        call(store, tmp)
    assert type(info.value) is error  # not a subclass or a numpy/pandas/sqlite error
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    assert not isinstance(info.value.__cause__, AssertionError)
    assert _snapshot(store, tmp) == before
