"""Active-learning runs end to end: the loop, the frames, reopening, and labels that survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner.training import TrainConfig
from alfaviz.session import Callback, Experiment

FAST = TrainConfig(max_epochs=4, min_steps=4)


def make(tmp_path: Path, name: str = "run", **kw) -> Experiment:
    args = {
        "initial_size": 10,
        "budget": 5,
        "seed": 0,
        "projection": "pca",
        "train": FAST,
        "out": tmp_path / name,
    }
    strategy = kw.pop("strategy", "alfamix")
    args.update(kw)
    return Experiment("digits", "auto", strategy, **args)


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_round_start(self, exp, round):
        self.events.append(("start", round))

    def on_query_end(self, exp, round, result):
        self.events.append(("query", round, len(result.selected_ids)))

    def on_label(self, exp, sample_id, label, source):
        self.events.append(("label", source))

    def on_round_end(self, exp, round, row):
        self.events.append(("end", round))


def test_rounds_frames_and_labelled_round(tmp_path):
    rec = Recorder()
    exp = make(tmp_path, callbacks=[rec])
    n = exp.data.n_train
    assert exp.labelled_ids.size == 10
    assert (exp.labelled_round[exp.labelled_ids] == 0).all()
    exp.run(2)
    rounds = exp.rounds
    assert rounds[schema.ROUND].tolist() == [0, 1]
    assert rounds[schema.N_LABELLED].tolist() == [10, 15]
    assert rounds[schema.ACCURACY].between(0, 1).all()
    assert exp.labelled_ids.size == 20
    # labels requested in round r are first used in round r + 1
    assert sorted(np.bincount(exp.labelled_round[exp.labelled_round >= 0]).tolist()) == [5, 5, 10]
    samples = exp.samples
    assert len(samples) == 2 * n
    assert {schema.X, schema.Y, schema.TRUE_LABEL, schema.LABEL, "labelled_round"} <= set(samples)
    r0 = samples[samples[schema.ROUND] == 0]
    assert r0[schema.SELECTED].sum() == 5
    assert np.isfinite(r0[[schema.X, schema.Y]].to_numpy()).all()
    flips = exp.flips
    assert len(flips[flips[schema.ROUND] == 0]) == (n - 10) * 10
    # callbacks saw the loop in order
    kinds = [e[0] for e in rec.events]
    assert kinds[:3] == ["start", "query", "end"] or kinds[:2] == ["start", "query"]
    assert kinds.count("label") == 10
    assert rec.events[-1] == ("end", 1)


def test_reopen_gives_same_frames_and_resumes_identically(tmp_path):
    a = make(tmp_path, "a")
    a.run(3)
    b = make(tmp_path, "b")
    b.run(2)
    reopened = Experiment.open(b.path)
    assert reopened.round == 2
    pd.testing.assert_frame_equal(reopened.samples, b.samples)
    pd.testing.assert_frame_equal(reopened.flips, b.flips)
    pd.testing.assert_frame_equal(reopened.rounds, b.rounds)
    np.testing.assert_array_equal(reopened.labelled_round, b.labelled_round)
    reopened.step()
    ra, rb = a.rounds, reopened.rounds
    np.testing.assert_allclose(rb[schema.ACCURACY], ra[schema.ACCURACY])
    sa = a.samples
    sb = reopened.samples
    for r in range(3):
        pick_a = sa[(sa[schema.ROUND] == r) & sa[schema.SELECTED]][schema.SAMPLE_ID].tolist()
        pick_b = sb[(sb[schema.ROUND] == r) & sb[schema.SELECTED]][schema.SAMPLE_ID].tolist()
        assert pick_a == pick_b


def test_human_labelling_submit_skip_undo(tmp_path):
    exp = make(tmp_path, labelling="human")
    exp.step()
    pending = exp.pending.tolist()
    assert len(pending) == 5
    exp.submit_label(pending[0], 3)
    exp.submit_label(pending[1], exp.data.class_names[4])
    exp.skip(pending[2])
    assert exp.pending.tolist() == pending[3:]
    undone = exp.undo()
    assert undone is not None
    assert exp.pending.tolist() == [pending[2], *pending[3:]]
    assert exp.labels[pending[0]] == 3
    assert exp.labels[pending[1]] == 4
    assert exp.labelled_round[pending[0]] == 1
    # a second process (another tab, a new kernel) sees the labels
    again = Experiment.open(exp.path)
    assert again.labels[pending[0]] == 3
    assert again.pending.tolist() == [pending[2], *pending[3:]]
    row = again.step()
    assert row[schema.N_LABELLED] == 12  # the 10 initial + 2 human labels


@pytest.mark.parametrize(
    ("sample_id", "label", "match"),
    [
        (10**6, 1, "not in the train pool"),
        (-1, 1, "not in the train pool"),
        (0, 10, "out of range"),
        (0, "eleven", "unknown class name"),
        (0, 1.5, "class id or name"),
        ("x", 1, "integer id"),
    ],
)
def test_bad_labels_are_refused(tmp_path, sample_id, label, match):
    exp = make(tmp_path, labelling="human")
    with pytest.raises(AlfavizInputError, match=match):
        exp.submit_label(sample_id, label)
    assert len(exp.label_log) == 10  # nothing was written


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial_size": 0}, "initial_size"),
        ({"initial_size": 5000}, "nothing to query"),
        ({"budget": 0}, "budget"),
        ({"projection": "tsne"}, "projection"),
        ({"labelling": "crowd"}, "labelling"),
        ({"strategy": "nope"}, "unknown strategy"),
        ({"initial": "stratified"}, "initial"),
    ],
)
def test_bad_settings_are_refused(tmp_path, kwargs, match):
    with pytest.raises(AlfavizInputError, match=match):
        make(tmp_path, **kwargs)


def test_per_class_initial_set(tmp_path):
    exp = make(tmp_path, initial="per_class", initial_size=20)
    labs = exp.data.y_train[exp.labelled_ids]
    assert np.bincount(labs, minlength=10).tolist() == [2] * 10


def test_pool_exhaustion_stops_cleanly(tmp_path):
    from alfaviz.data import from_arrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 2
    x[y == 1] += 2
    src = from_arrays(x, y, test_size=0.25, seed=0)
    exp = Experiment(src, "mlp", "random", initial_size=10, budget=15, out=tmp_path / "t",
                     projection="pca", train=FAST)  # fmt: skip
    exp.run(5)
    assert exp.unlabelled_ids.size == 0
    assert exp.rounds[schema.N_LABELLED].tolist() == [10, 25]
    with pytest.raises(AlfavizInputError, match="exhausted"):
        exp.step()


def test_in_memory_data_needs_data_to_reopen(tmp_path):
    from alfaviz.data import from_arrays

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = np.array(["cat", "dog", "emu"])[np.arange(60) % 3]
    src = from_arrays(x, y)
    exp = Experiment(src, "mlp", "entropy", initial_size=6, budget=3, out=tmp_path / "m",
                     projection="none", train=FAST)  # fmt: skip
    exp.step()
    with pytest.raises(AlfavizInputError, match="pass data="):
        Experiment.open(exp.path)
    again = Experiment.open(exp.path, data=src)
    assert again.round == 1
    assert again.data.class_names == ("cat", "dog", "emu")


def test_corrupt_files_give_clear_errors(tmp_path):
    exp = make(tmp_path)
    exp.step()
    samples = next(exp.path.glob("rounds/round_*/samples.parquet"))
    data = samples.read_bytes()
    samples.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunStoreError, match=r"samples\.parquet"):
        _ = Experiment.open(exp.path).samples
    cfg = exp.path / "config.json"
    cfg.write_text(cfg.read_text()[:40])
    with pytest.raises(RunStoreError, match=r"config\.json"):
        Experiment.open(exp.path)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from alfaviz.session import Experiment
    exp = Experiment.open(sys.argv[1])
    exp.submit_label(int(sys.argv[2]), int(sys.argv[3]))
    print("done", flush=True)
    time.sleep(60)
    """
)


def test_label_survives_kill_9(tmp_path):
    exp = make(tmp_path, labelling="human", projection="none")
    exp.step()
    sid = int(exp.pending[0])
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(exp.path), str(sid), "7"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "done"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    again = Experiment.open(exp.path)
    assert again.labels[sid] == 7
    assert sid in again.labelled_ids


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from alfaviz.session import Experiment
    exp = Experiment.open(sys.argv[1])
    ids = [int(s) for s in sys.argv[2].split(",")]
    go = Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    for s in ids:
        exp.submit_label(s, s % 10)
    print("ok", flush=True)
    """
)


@pytest.mark.slow
def test_two_processes_labelling_at_once_lose_nothing(tmp_path):
    exp = make(tmp_path, labelling="human", projection="none")
    unl = exp.unlabelled_ids
    a, b = unl[:40].tolist(), unl[40:80].tolist()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(exp.path), ",".join(map(str, ids)), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for ids in (a, b)
    ]
    time.sleep(4)  # both children have imported torch and opened the run
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(o.strip() == "ok" for o in outs), outs
    again = Experiment.open(exp.path)
    for s in a + b:
        assert again.labels[s] == s % 10
    log = again.label_log
    assert (log["action"] == "label").sum() == 10 + 80
