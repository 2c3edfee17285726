"""A kill -9 at every write point of creating a run, writing rounds and labelling.

The store calls ``alfaviz.store._io.write_point`` right after each durable step (a file
written and fsync'ed, a rename, a directory fsync, a SQLite commit). A driver subprocess runs
the scenario below once to list those points, then once per point ``k`` in a forked child
whose hook calls ``os._exit(9)`` at the ``k``-th point: the process dies there as under
``kill -9`` (no ``finally`` blocks, no atexit, no SQLite close). The test then reopens each
run and asserts that it is exactly the state before the interrupted operation or the state
after it, healthy (``verify() == []``), and that the scenario can be resumed to the same
final state as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import RunStoreError
from alfaviz.store import RunStore

REPO_ROOT = Path(__file__).resolve().parents[2]
SESSION = "writer"
CONFIG = {"seed": 3, "budget": 2, "name": "crash"}
FINGERPRINT = {"n_samples": 40, "classes": ["a", "b", "c"], "shape": {"x": [40, 4]}}
INIT_FILE = "init_state.bin"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


# ---------------------------------------------------------------------------------------------
# the scenario (run by the driver subprocess and, to resume, by the test)
# ---------------------------------------------------------------------------------------------


def _round_kwargs(r: int, version: int = 1) -> dict[str, Any]:
    ids = np.arange(8, dtype=np.int64) + 10 * r
    rng = np.random.default_rng(r + 100 * version)
    return {
        "samples": pd.DataFrame({"sample_id": ids, "score": rng.random(8)}),
        "flips": pd.DataFrame({"sample_id": ids[:2], "anchor_class": [0, 1]}),
        "rounds_row": {"accuracy": 0.5 + r / 10, "version": version},
        "embeddings": rng.standard_normal((8, 3)).astype(np.float32),
        "embedding_ids": ids,
        "coords": pd.DataFrame({"sample_id": ids, "x": rng.random(8), "y": rng.random(8)}),
        "extra": {"queried": pd.DataFrame({"sample_id": ids[:2]})},
    }


def _ops() -> list[tuple[str, Callable[[Path, RunStore | None], RunStore]]]:
    """The scenario as named operations; each takes the run path and the open store."""

    def create(path: Path, store: RunStore | None) -> RunStore:
        return RunStore.create(
            path,
            CONFIG,
            exist_ok=True,
            fingerprint=FINGERPRINT,
            initial_labels=[(i, i % 3) for i in range(4)],
            files={INIT_FILE: bytes(range(256)) * 4},
            session=SESSION,
        )

    def op(fn: Callable[[RunStore], Any]) -> Callable[[Path, RunStore | None], RunStore]:
        def run(path: Path, store: RunStore | None) -> RunStore:
            assert store is not None
            fn(store)
            return store

        return run

    return [
        ("create", create),
        (
            "round 0 + labels",
            op(lambda s: s.write_round(0, **_round_kwargs(0), labels=[(10, 1), (11, 2), (12, 0)])),
        ),
        ("human label", op(lambda s: s.add_label(5, 1, round=1))),
        ("skip", op(lambda s: s.add_skip(6, round=1))),
        ("undo", op(lambda s: s.undo())),
        ("oracle batch", op(lambda s: s.add_labels([(7, 1), (8, 2)], round=1))),
        ("event", op(lambda s: s.log_event("round_end", {"round": 0}))),
        (
            "round 1 + labels",
            op(lambda s: s.write_round(1, **_round_kwargs(1), labels=[(11, 1), (12, 0)])),
        ),
        (
            "round 1 overwrite",
            op(
                lambda s: s.write_round(
                    1, **_round_kwargs(1, version=2), overwrite=True, labels=[(13, 2)]
                )
            ),
        ),
        ("round 2, no labels", op(lambda s: s.write_round(2, **_round_kwargs(2)))),
    ]


def run_scenario(
    path: Path,
    start: int = 0,
    stop: int | None = None,
    after: Callable[[int], None] | None = None,
) -> None:
    """Run operations ``start:stop``; ``after(i)`` is called when op ``i`` is done."""
    store: RunStore | None = None
    if start > 0:
        store = RunStore.open(path, session=SESSION)
    for i, (_, fn) in enumerate(_ops()):
        if i < start or (stop is not None and i >= stop):
            continue
        store = fn(path, store)
        if after is not None:
            after(i)
    if store is not None:
        store.close()


def state_of(path: Path) -> dict[str, Any]:
    """Everything observable about a run, as JSON-able data (opening it writable first)."""
    try:
        store = RunStore.open(path, session=SESSION)
    except RunStoreError as exc:
        if "does not exist" in str(exc):
            return {"exists": False}
        raise
    try:
        rounds = {}
        for r in store.rounds_written():
            ids, emb = store.read_embeddings(r)
            rounds[str(r)] = {
                "row": store.read_round_row(r),
                "artefacts": store.artefacts(r),
                "samples": store.read_samples(r).to_json(),
                "flips": store.read_flips(r).to_json(),
                "coords": store.read_coords(r).to_json(),
                "queried": store.read_extra(r, "queried")["sample_id"].tolist(),
                "embeddings": [ids.tolist(), emb.round(6).tolist()],
            }
        labels = store.labels()[["sample_id", "label", "round", "source"]]
        state = {
            "exists": True,
            "config": store.config,
            "fingerprint": store.fingerprint,
            "file": store.read_file(INIT_FILE).hex()[:16],
            "rounds": rounds,
            "labels": labels.to_numpy().tolist(),
            "skipped": store.skipped()["sample_id"].tolist(),
            "actions": store.actions()["action"].tolist(),
            "events": store.events()["kind"].tolist(),
            "problems": store.verify(),
        }
        return json.loads(json.dumps(state, default=str))
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# the driver: trace the write points, then crash at each one in a forked child
# ---------------------------------------------------------------------------------------------

DRIVER = r"""
import json, os, shutil, sys
sys.path.insert(0, os.getcwd())
from alfaviz.store import _io
from tests.core import test_store_crash as t

root, mode = t.Path(sys.argv[1]), sys.argv[2]

def child(fn):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException as exc:
            sys.stderr.write(f"child failed: {exc!r}\n")
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

def snapshot(src, dst):
    # a hot copy between operations (no write in flight): SQLite rebuilds the -shm index
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*-shm"))

if mode == "trace":
    def trace():
        run = root / "trace" / "run"
        points, op = [], [0]
        states = [t.state_of(run)]
        _io.set_write_hook(lambda what: points.append([op[0], what]))
        def after(i):
            op[0] = i + 1
            hook = _io.set_write_hook(None)
            snapshot(run, root / f"snap{i + 1}" / "run")
            states.append(t.state_of(run))
            _io.set_write_hook(hook)
        t.run_scenario(run, after=after)
        (root / "trace.json").write_text(json.dumps({"points": points, "states": states}))
    sys.exit(child(trace))

if mode == "op":  # crash at k = 1, 2, ... of one operation until it completes
    src, op = t.Path(sys.argv[3]), int(sys.argv[4])
    codes, k = {}, 0
    while not codes or codes[k] == 9:
        k += 1
        def crash(k=k):
            run = root / f"k{k}" / "run"
            if op > 0:
                snapshot(src, run)
            seen = [0]
            def hook(what):
                seen[0] += 1
                if seen[0] == k:
                    os._exit(9)
            _io.set_write_hook(hook)
            t.run_scenario(run, start=op, stop=op + 1)
        codes[k] = child(crash)
        if k > 200:
            break
    print(json.dumps(codes))
    sys.exit(0)

points = json.loads((root / "trace.json").read_text())["points"]
codes = {}
for k in map(int, sys.argv[3:]):
    op = points[k - 1][0]
    first = next(i for i, p in enumerate(points, start=1) if p[0] == op)
    def crash(k=k, op=op, first=first):
        run = root / f"k{k}" / "run"
        if op > 0:  # start from the state before the operation, as the trace left it
            snapshot(root / f"snap{op}" / "run", run)
        seen = [first - 1]
        def hook(what):
            seen[0] += 1
            if seen[0] == k:
                os._exit(9)
        _io.set_write_hook(hook)
        t.run_scenario(run, start=op, stop=op + 1)
    codes[k] = child(crash)
print(json.dumps(codes))
"""


def _driver(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("crash")
    _driver(root, "trace")
    data = json.loads((root / "trace.json").read_text())
    data["root"] = root
    return data


@pytest.fixture(scope="module")
def crashed(trace: dict[str, Any]) -> dict[int, int]:
    n = len(trace["points"])
    out = _driver(trace["root"], "crash", *map(str, range(1, n + 1)))
    return {int(k): v for k, v in json.loads(out.stdout).items()}


def test_kill_at_every_write_point_of_a_round_with_labels(tmp_path: Path) -> None:
    """Fast: every write point of ``write_round(..., labels=...)``, checked directly."""
    base = tmp_path / "base" / "run"
    run_scenario(base, stop=1)  # the created run, with its initial set
    out = _driver(tmp_path, "op", str(base), "1")
    codes = {int(k): v for k, v in json.loads(out.stdout).items()}
    n = len(codes) - 1
    assert n >= 10  # mkdir, 5 files, round.json, fsyncs, rename, commit
    assert [codes[k] for k in range(1, n + 1)] == [9] * n
    assert codes[n + 1] == 0  # the operation completes when no point kills it
    initial = [[i, i % 3, 0, "initial"] for i in range(4)]
    with_round = sorted(
        [*initial, [10, 1, 1, "oracle"], [11, 2, 1, "oracle"], [12, 0, 1, "oracle"]]
    )
    seen = set()
    for k in range(1, n + 2):
        got = state_of(tmp_path / f"k{k}" / "run")
        assert got["problems"] == [], k
        rounds = sorted(got["rounds"])
        labels = sorted(got["labels"])
        if rounds == []:
            assert labels == sorted(initial), k  # the previous complete state
        else:
            assert rounds == ["0"], k
            assert labels == with_round, k  # the round together with all of its labels
            assert got["rounds"]["0"]["queried"] == list(range(2))
        seen.add(tuple(rounds))
    assert seen == {(), ("0",)}  # both outcomes occur: the commit point is inside the op


@pytest.mark.slow
def test_scenario_has_write_points_in_every_operation(trace: dict[str, Any]) -> None:
    ops_with_points = {op for op, _ in trace["points"]}
    assert ops_with_points == set(range(len(_ops())))
    kinds = {what.split()[0] for _, what in trace["points"]}
    assert {"write", "move", "fsync", "commit"} <= kinds
    states = trace["states"]
    assert states[0] == {"exists": False}
    assert all(s["problems"] == [] for s in states[1:])
    assert len({json.dumps(s, sort_keys=True) for s in states}) == len(states)  # each op shows


@pytest.mark.slow
def test_every_write_point_was_crashed(trace: dict[str, Any], crashed: dict[int, int]) -> None:
    assert sorted(crashed) == list(range(1, len(trace["points"]) + 1))
    assert set(crashed.values()) == {9}, crashed  # every child died at its write point


@pytest.mark.slow
def test_kill_at_every_write_point_gives_previous_or_next_complete_state(
    trace: dict[str, Any], crashed: dict[int, int]
) -> None:
    states = trace["states"]
    for k, (op, what) in enumerate(trace["points"], start=1):
        got = state_of(trace["root"] / f"k{k}" / "run")
        before, after = states[op], states[op + 1]
        name = _ops()[op][0]
        assert got in (before, after), f"kill after write point {k} ({what!r}) in {name!r}"
        if got["exists"]:
            assert got["problems"] == [], (k, what)
            leftovers = [
                p.name
                for p in (trace["root"] / f"k{k}").rglob(".*")
                if ".tmp-" in p.name or ".old-" in p.name or ".trash-" in p.name
            ]
            assert leftovers == [], (k, what, leftovers)


@pytest.mark.slow
def test_resuming_after_any_kill_reaches_the_uninterrupted_final_state(
    trace: dict[str, Any], crashed: dict[int, int]
) -> None:
    states = trace["states"]
    for k, (op, what) in enumerate(trace["points"], start=1):
        path = trace["root"] / f"k{k}" / "run"
        got = state_of(path)
        start = op if got == states[op] else op + 1
        run_scenario(path, start=start)
        assert state_of(path) == states[-1], f"resumed after write point {k} ({what!r})"
