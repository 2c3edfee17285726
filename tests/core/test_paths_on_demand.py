"""Interpolation paths on demand: any sample, any written round, live or reopened, computed once.

``Experiment.project_paths`` computes the paths of any sample from what a round stored (its
embeddings, 2-D layout, training labels and classifier head) with the functions that framed
the batch's paths, keeps them as the round's derived ``paths`` frame, and fires a ``paths``
event. These tests use one small digits run (two ALFA-Mix rounds, PCA layout) and copies of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import TrainConfig
from alfaviz.session import MAX_PATH_SAMPLES, Event, Experiment, open_run
from alfaviz.session import paths as paths_mod
from alfaviz.store import RunStore
from alfaviz.store import _run as run_mod

FAST = TrainConfig(max_epochs=2, min_steps=2)
STEPS = 11  # ALFAMix's default path_steps
REPO_ROOT = Path(__file__).resolve().parents[2]


def _make(path: Path, *, strategy: str = "alfamix", rounds: int = 2, **kw: Any) -> Experiment:
    args: dict[str, Any] = {
        "initial_size": 20, "budget": 8, "seed": 0, "projection": "pca", "train": FAST,
        "out": path,
    }  # fmt: skip
    args.update(kw)
    exp = Experiment("digits", "auto", strategy, **args)
    exp.run(rounds)
    return exp


@dataclass(frozen=True)
class _Runs:
    live: Experiment
    pristine: Path


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*-shm"))
    return dest


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    root = tmp_path_factory.mktemp("paths")
    exp = _make(root / "run")
    return _Runs(exp, _copy(exp.path, root / "pristine"))  # before any path is projected


@pytest.fixture
def live(runs: _Runs) -> Experiment:
    """Two ALFA-Mix rounds, oracle labels, PCA layout: the live experiment that wrote them."""
    return runs.live


@pytest.fixture
def reopened(runs: _Runs, tmp_path: Path) -> Experiment:
    """A copy of the run as written, reopened from its directory (a fresh, untrained learner)."""
    return open_run(_copy(runs.pristine, tmp_path / "copy"))


def _batch(exp: Experiment, r: int) -> np.ndarray:
    return exp.store.read_extra(r, "queried")[schema.SAMPLE_ID].to_numpy(np.int64)


def _outsiders(exp: Experiment, r: int, k: int = 3) -> np.ndarray:
    """``k`` samples that were unlabelled in round ``r`` and not in its batch."""
    s = exp.store.read_samples(r)
    unl = s.loc[s[schema.LABELLED_ROUND] < 0, schema.SAMPLE_ID].to_numpy(np.int64)
    out = np.setdiff1d(unl, _batch(exp, r))
    return out[[5, 400, 900][:k]]


def _assert_same_paths(got: pd.DataFrame, want: pd.DataFrame) -> None:
    keys = [schema.SAMPLE_ID, schema.ANCHOR_CLASS, schema.PATH_T]
    got = got.sort_values(keys, kind="stable").reset_index(drop=True)
    want = want.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(got) == len(want) > 0
    for col in (schema.SAMPLE_ID, schema.ANCHOR_CLASS, schema.PATH_PRED):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    for col in (schema.PATH_T, schema.PATH_PROB, schema.X, schema.Y):
        np.testing.assert_allclose(
            got[col].to_numpy(), want[col].to_numpy(), rtol=1e-5, atol=1e-5, err_msg=col
        )


# ---------------------------------------------------------------------------------------------
# the values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", [0, 1])
def test_batch_samples_get_the_paths_stored_with_the_round(live: Experiment, r: int) -> None:
    stored = schema.conform(live.store.read_extra(r, "paths"), schema.PATHS)
    assert np.isfinite(stored[schema.X]).all()  # the layout exists, so x, y are compared too
    got = live.project_paths(_batch(live, r), round=r)
    assert list(got.columns) == list(schema.PATHS.names)
    _assert_same_paths(got, stored)


def test_paths_of_a_sample_outside_the_batch(live: Experiment) -> None:
    r = 1
    ids = _outsiders(live, r)
    got = live.project_paths(ids, round=r)
    samples = live.store.read_samples(r).set_index(schema.SAMPLE_ID)
    coords = live.store.read_coords(r).set_index(schema.SAMPLE_ID)
    n_cls = live.data.n_classes
    assert got[schema.SAMPLE_ID].drop_duplicates().tolist() == ids.tolist()  # request order
    assert len(got) == ids.size * n_cls * STEPS
    assert np.isfinite(got[[schema.X, schema.Y]].to_numpy()).all()
    for sid, one in got.groupby(schema.SAMPLE_ID):
        assert sorted(one[schema.ANCHOR_CLASS].unique()) == list(range(n_cls))
        for _, path in one.groupby(schema.ANCHOR_CLASS):
            t = path[schema.PATH_T].to_numpy()
            np.testing.assert_allclose(t, np.linspace(0, 1, STEPS), atol=1e-6)
        start = one[one[schema.PATH_T] == 0]
        # t = 0 is the sample itself: the head predicts its pseudo-label there ...
        assert (start[schema.PATH_PRED] == samples.loc[sid, schema.PSEUDO_LABEL]).all()
        # ... and the point sits where the map put the sample
        np.testing.assert_allclose(
            start[[schema.X, schema.Y]].to_numpy(),
            np.tile(coords.loc[sid, [schema.X, schema.Y]].to_numpy(float), (n_cls, 1)),
            atol=1e-4,
        )
        assert ((start[schema.PATH_PROB] > 0) & (start[schema.PATH_PROB] <= 1)).all()


def test_an_earlier_round_of_a_reopened_run(live: Experiment, reopened: Experiment) -> None:
    # the reopened learner is untrained: the paths must come from round 0's stored head
    stored = schema.conform(reopened.store.read_extra(0, "paths"), schema.PATHS)
    _assert_same_paths(reopened.project_paths(_batch(reopened, 0), round=0), stored)
    ids = _outsiders(live, 0)
    _assert_same_paths(reopened.project_paths(ids, round=0), live.project_paths(ids, round=0))
    # a different round gives different paths (another head, another layout)
    r1 = reopened.project_paths(ids, round=1)
    assert not np.allclose(r1[schema.X], live.project_paths(ids, round=0)[schema.X])


def test_the_latest_round_is_the_default(reopened: Experiment) -> None:
    ids = _outsiders(reopened, 1, k=1)
    default = reopened.project_paths(ids)
    pd.testing.assert_frame_equal(default, reopened.project_paths(ids, round=1))
    pd.testing.assert_frame_equal(reopened.project_paths(int(ids[0])), default)


# ---------------------------------------------------------------------------------------------
# kept with the run
# ---------------------------------------------------------------------------------------------


def _forbid_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the paths were computed again")

    monkeypatch.setattr(paths_mod, "interpolation_paths", boom)


def test_projected_paths_are_stored_and_read_back(
    reopened: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _outsiders(reopened, 1)
    first = reopened.project_paths(ids, round=1)
    files = sorted((reopened.path / "derived" / "round_0001").iterdir())
    assert [f.suffix for f in files] == [".parquet"]
    assert files[0].name.startswith("paths.")
    assert reopened.store.verify() == []

    _forbid_computing(monkeypatch)
    pd.testing.assert_frame_equal(reopened.project_paths(ids, round=1), first)
    part = reopened.project_paths(ids[::-1][:2], round=1)  # a subset, in the order asked for
    assert part[schema.SAMPLE_ID].drop_duplicates().tolist() == ids[::-1][:2].tolist()
    for sid, rows in part.groupby(schema.SAMPLE_ID):
        pd.testing.assert_frame_equal(
            rows.reset_index(drop=True),
            first[first[schema.SAMPLE_ID] == sid].reset_index(drop=True),
        )

    again = open_run(reopened.path)  # a new session reads them from disk
    pd.testing.assert_frame_equal(again.project_paths(ids, round=1), first)
    known = again.round_paths(1)
    assert set(known[schema.SAMPLE_ID]) == set(_batch(again, 1)) | set(ids)
    keys = [schema.SAMPLE_ID, schema.ANCHOR_CLASS, schema.PATH_T]
    assert not known.duplicated(keys).any()
    assert again.round_paths(0)[schema.SAMPLE_ID].nunique() == _batch(again, 0).size


def test_a_second_call_adds_only_the_new_samples(reopened: Experiment) -> None:
    a, b, c = (int(i) for i in _outsiders(reopened, 1))
    reopened.project_paths([a, b], round=1)
    seen: list[Event] = []
    reopened.subscribe(seen.append)
    got = reopened.project_paths([c, a, c], round=1)  # duplicates are dropped
    assert got[schema.SAMPLE_ID].drop_duplicates().tolist() == [c, a]
    assert [e.payload["sample_ids"] for e in seen] == [[c]]
    stored = reopened.store.read_derived(1, "paths")
    assert sorted(stored[schema.SAMPLE_ID].unique()) == sorted([a, b, c])
    assert len(list((reopened.path / "derived" / "round_0001").iterdir())) == 1  # replaced


def test_batch_samples_appear_once_in_the_round_paths(reopened: Experiment) -> None:
    batch = _batch(reopened, 1)
    extra = _outsiders(reopened, 1, k=1)
    reopened.project_paths(np.concatenate([batch[:2], extra]), round=1)
    known = reopened.round_paths(1)
    stored = schema.conform(reopened.store.read_extra(1, "paths"), schema.PATHS)
    pd.testing.assert_frame_equal(known.iloc[: len(stored)], stored)  # the batch's, as stored
    assert known[schema.SAMPLE_ID].value_counts().max() == reopened.data.n_classes * STEPS


def test_read_only_run_projects_in_memory(
    runs: _Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(runs.pristine, tmp_path / "ro")
    real = os.access

    def no_write(p: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(p) == path:
            return False
        return real(p, mode, *args, **kwargs)

    monkeypatch.setattr(run_mod.os, "access", no_write)
    exp = open_run(path)
    assert exp.store.read_only
    seen: list[Event] = []
    exp.subscribe(seen.append, kinds=["paths"])
    ids = _outsiders(exp, 1, k=2)
    got = exp.project_paths(ids, round=1)
    assert len(got) == ids.size * exp.data.n_classes * STEPS
    assert [(e.round, e.payload["persisted"]) for e in seen] == [(1, False)]
    assert not (path / "derived").exists()  # nothing written
    assert set(ids) <= set(exp.round_paths(1)[schema.SAMPLE_ID])
    _forbid_computing(monkeypatch)
    pd.testing.assert_frame_equal(exp.project_paths(ids, round=1), got)  # kept in memory


def test_a_failed_write_keeps_the_paths_in_memory(
    reopened: Experiment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunStore, "write_derived", disk_full)
    ids = _outsiders(reopened, 0, k=1)
    got = reopened.project_paths(ids, round=0)
    assert len(got) == reopened.data.n_classes * STEPS
    assert "keeping them in memory" in caplog.text
    assert set(ids) <= set(reopened.round_paths(0)[schema.SAMPLE_ID])


# ---------------------------------------------------------------------------------------------
# events and the views' data
# ---------------------------------------------------------------------------------------------


def test_new_paths_fire_one_event_and_known_ones_none(reopened: Experiment) -> None:
    seen: list[Event] = []
    reopened.subscribe(seen.append)
    ids = _outsiders(reopened, 1, k=2)
    reopened.project_paths(ids, round=1)
    assert [(e.kind, e.round) for e in seen] == [("paths", 1)]
    assert seen[0].payload == {"sample_ids": ids.tolist(), "persisted": True}
    reopened.project_paths(ids, round=1)
    reopened.project_paths([], round=1)
    assert len(seen) == 1


def test_run_data_reads_projected_paths_and_bumps_the_version(reopened: Experiment) -> None:
    pytest.importorskip("ipywidgets")
    from alfaviz.widgets import AppState, RunData

    data = RunData(reopened)
    state = AppState()
    data.attach(state)
    before = data.paths(1)
    samples = data.samples(1)
    assert set(before[schema.SAMPLE_ID]) == set(_batch(reopened, 1))
    version = state.data_version
    ids = _outsiders(reopened, 1, k=2)
    got = data.project_paths(ids, 1)
    assert state.data_version > version  # views observing data_version redraw
    after = data.paths(1)
    assert set(after[schema.SAMPLE_ID]) == set(before[schema.SAMPLE_ID]) | set(ids)
    pd.testing.assert_frame_equal(
        after[after[schema.SAMPLE_ID].isin(ids)].reset_index(drop=True), got
    )
    assert data.samples(1) is samples  # a paths event drops only that round's paths
    assert (
        RunData(reopened.path).paths(1)[schema.SAMPLE_ID].nunique()
        == after[schema.SAMPLE_ID].nunique()
    )


# ---------------------------------------------------------------------------------------------
# bad inputs and older runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "kw", "match"),
    [
        ([-1], {}, r"sample_ids -1 is not in the train pool \(ids 0\.\.1346\)"),
        ([3, 10**6], {}, r"sample_ids 1000000 is not in the train pool"),
        (list(range(MAX_PATH_SAMPLES + 1)), {}, r"257 distinct samples.*at most 256 per call"),
        ([1.5], {}, r"integer sample ids"),
        ("12", {}, r"sample_ids must be"),
        ([[1, 2]], {}, r"flat list"),
        ([True], {}, r"integer sample ids"),
        ([1], {"round": 2}, r"round 2 has not been written yet; rounds 0\.\.1 exist"),
        ([1], {"round": 1.0}, r"round must be the integer"),
        ([1], {"round": True}, r"round must be the integer"),
    ],
)
def test_bad_inputs_get_one_clear_line(live: Experiment, ids: Any, kw: dict, match: str) -> None:
    with pytest.raises(AlfavizInputError, match=match) as info:
        live.project_paths(ids, **kw)
    assert "\n" not in str(info.value)


def test_empty_request_and_capped_request(live: Experiment) -> None:
    empty = live.project_paths([], round=0)
    assert list(empty.columns) == list(schema.PATHS.names)
    assert len(empty) == 0
    assert len(live.project_paths(np.array([], dtype=np.int64))) == 0
    # the cap counts distinct samples: many duplicates of a few ids are fine
    ids = np.repeat(_outsiders(live, 0, k=1), MAX_PATH_SAMPLES + 5)
    assert live.project_paths(ids, round=0)[schema.SAMPLE_ID].nunique() == 1


def test_no_round_written_yet(tmp_path: Path) -> None:
    exp = _make(tmp_path / "none", strategy="random", rounds=0, projection="none")
    with pytest.raises(AlfavizInputError, match=r"no round has been written yet"):
        exp.project_paths([1])
    with pytest.raises(AlfavizInputError, match=r"no round has been written yet"):
        exp.round_paths()


def test_a_round_written_without_its_head_says_the_run_predates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = RunStore.write_round

    def as_before(self: RunStore, *args: Any, head: Any = None, **kwargs: Any) -> Any:
        return write(self, *args, **kwargs)  # what an earlier alfaviz wrote: no head.npz

    monkeypatch.setattr(RunStore, "write_round", as_before)
    exp = _make(tmp_path / "old", rounds=1, projection="none")
    monkeypatch.undo()
    assert "head.npz" not in exp.store.artefacts(0)
    with pytest.raises(RunStoreError, match=r"earlier alfaviz that did not store") as info:
        open_run(exp.path).project_paths([1], round=0)
    assert "\n" not in str(info.value)
    assert exp.round_paths(0)[schema.SAMPLE_ID].nunique() == exp.budget  # the batch's remain
    exp.step()  # rounds written now carry their head
    assert exp.store.has_head(1)
    assert np.isnan(exp.project_paths([1], round=1)[schema.X]).all()  # no layout: no x, y


def test_the_head_is_stored_with_each_round(live: Experiment) -> None:
    for r in live.store.rounds_written():
        head = live.store.read_head(r)
        assert set(head) == {"weight", "bias"}
        assert head["weight"].shape == (
            live.data.n_classes,
            live.store.read_embeddings(r)[1].shape[1],
        )
    assert not np.allclose(live.store.read_head(0)["weight"], live.store.read_head(1)["weight"])
    np.testing.assert_array_equal(
        live.store.read_head(1)["weight"], live.learner.head.weight.detach().cpu().numpy()
    )


# ---------------------------------------------------------------------------------------------
# the store: a derived frame survives a kill -9 at any write point
# ---------------------------------------------------------------------------------------------

_DRIVER = r"""
import json, os, shutil, sys
import numpy as np, pandas as pd
from alfaviz.store import RunStore, _io

root = sys.argv[1]
frame = lambda n: pd.DataFrame({"sample_id": np.arange(n, dtype=np.int64)})
base = os.path.join(root, "base")

def child(fn):  # the store's work runs in forked children only (no pyarrow threads forked)
    pid = os.fork()
    if pid == 0:
        fn()
        os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def build():
    s = RunStore.create(base, {"seed": 0})
    s.write_round(0, samples=frame(4), flips=frame(0), rounds_row={"a": 1})
    s.write_derived(0, "paths", frame(2))

assert child(build) == 0
codes, k = {}, 0
while not codes or codes[k] == 9:
    k += 1
    run = os.path.join(root, f"k{k}")
    shutil.copytree(base, run)
    def crash(k=k, run=run):
        seen = [0]
        def hook(what):
            seen[0] += 1
            if seen[0] == k:
                os._exit(9)
        _io.set_write_hook(hook)
        RunStore.open(run).write_derived(0, "paths", frame(3))
    codes[k] = child(crash)
    if k > 50:
        break
print(json.dumps(codes))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kill_at_every_write_point_of_a_derived_frame(tmp_path: Path) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    codes = {int(k): v for k, v in json.loads(proc.stdout).items()}
    n = len(codes) - 1
    assert n >= 5  # write, move into place, fsync, commit, delete the old version
    assert [codes[k] for k in range(1, n + 1)] == [9] * n
    assert codes[n + 1] == 0
    seen = set()
    for k in range(1, n + 2):
        store = RunStore.open(tmp_path / f"k{k}")  # a writable open clears the leftovers
        assert store.verify() == [], k
        got = store.read_derived(0, "paths")
        assert got is not None, k
        seen.add(len(got))
        left = [p.name for p in (tmp_path / f"k{k}" / "derived" / "round_0000").iterdir()]
        assert len(left) == 1, (k, left)
        assert left[0].startswith("paths."), (k, left)
        store.close()
    assert seen == {2, 3}  # the old version, or the new one, never anything else
