"""The session: events for every change, whole Pool snapshots, RunConfig, seeds, resuming."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

from alfaviz import schema
from alfaviz.data import from_arrays, load_digits
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import Learner, TrainConfig, build_model
from alfaviz.session import EVENT_KINDS, Event, EventStream, Experiment, Pool, RunConfig, seed_for
from alfaviz.session.config import MAX_SEED
from alfaviz.strategies import Random

FAST = TrainConfig(max_epochs=2, min_steps=2)


def make(tmp_path, name="run", **kw):
    args = {
        "initial_size": 10, "budget": 5, "seed": 0, "projection": "none", "train": FAST,
        "out": tmp_path / name,
    }  # fmt: skip
    strategy = kw.pop("strategy", "random")
    data = kw.pop("data", "digits")
    args.update(kw)
    return Experiment(data, "auto", strategy, **args)


# ---------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------


def test_every_change_fires_one_event_in_order(tmp_path):
    exp = make(tmp_path, labelling="human")
    seen: list[Event] = []
    unsubscribe = exp.subscribe(seen.append)
    exp.step()
    batch = exp.pending.tolist()
    exp.submit_label(batch[0], 3)
    exp.skip(batch[1])
    exp.undo()
    kinds = [e.kind for e in seen]
    assert kinds == ["round_started", "round_written", "label", "skip", "undo"]
    assert seen[1].payload[schema.ROUND] == 0
    assert (seen[2].sample_id, seen[2].label, seen[2].source) == (batch[0], 3, "human")
    assert seen[4].sample_id == batch[1]  # the undo undid the skip, the last action
    unsubscribe()
    exp.submit_label(batch[2], 1)
    assert len(seen) == 5


def test_oracle_labels_are_events_and_kinds_filter(tmp_path):
    exp = make(tmp_path)
    labels: list[Event] = []
    exp.subscribe(labels.append, kinds=["label"])
    exp.step()
    assert [e.source for e in labels] == ["oracle"] * 5
    assert {e.round for e in labels} == {1}
    assert set(EVENT_KINDS) >= {e.kind for e in labels}


def test_a_failing_observer_never_stops_the_writer(tmp_path, caplog):
    exp = make(tmp_path, labelling="human")

    def broken(event):
        raise RuntimeError("view crashed")

    got: list[str] = []
    exp.subscribe(broken)
    exp.subscribe(lambda e: got.append(e.kind))
    exp.step()
    sid = int(exp.pending[0])
    exp.submit_label(sid, 2)
    assert exp.labels[sid] == 2  # recorded despite the broken observer
    assert got[-1] == "label"
    assert "view crashed" in caplog.text


def test_event_stream_rejects_unknown_kinds():
    stream = EventStream()
    with pytest.raises(ValueError, match="unknown event kinds"):
        stream.subscribe(print, kinds=["boom"])
    assert len(stream) == 0


# ---------------------------------------------------------------------------------------------
# the pool
# ---------------------------------------------------------------------------------------------


def test_pool_is_a_new_read_only_object_after_each_change(tmp_path):
    exp = make(tmp_path, labelling="human")
    exp.step()
    before = exp.pool
    sid = int(exp.pending[0])
    exp.submit_label(sid, 4)
    after = exp.pool
    assert after is not before
    assert before.labels[sid] == -1  # the old snapshot is untouched
    assert after.labels[sid] == 4
    assert sid not in after.pending
    with pytest.raises(ValueError, match="read-only"):
        after.labels[0] = 9


def test_pool_from_log():
    labels = pd.DataFrame(
        {schema.SAMPLE_ID: [1, 3, 99], schema.LABEL: [0, 2, 1], schema.ROUND: [0, 1, 0]}
    )
    skipped = pd.DataFrame({schema.SAMPLE_ID: [5]})
    pool = Pool.from_log(6, labels, skipped, queried=np.array([3, 4, 5, 2]))
    assert pool.labelled_ids.tolist() == [1, 3]
    assert pool.labelled_round.tolist() == [-1, 0, -1, 1, -1, -1]
    assert pool.pending.tolist() == [4, 2]  # 3 is labelled, 5 skipped, query order kept
    assert pool.skipped.tolist() == [5]
    assert pool.n_labelled == 2


def test_readers_in_other_threads_see_whole_snapshots(tmp_path):
    exp = make(tmp_path, labelling="human")
    exp.step()
    batch = exp.pending.tolist()
    bad: list[str] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            p = exp.pool
            n_lab = int((p.labelled_round >= 0).sum())
            if n_lab != int((p.labels >= 0).sum()):
                bad.append("labels and labelled_round disagree")

    t = threading.Thread(target=reader)
    t.start()
    for sid in batch:
        exp.submit_label(sid, 1)
    stop.set()
    t.join()
    assert not bad


# ---------------------------------------------------------------------------------------------
# RunConfig
# ---------------------------------------------------------------------------------------------


def test_run_config_round_trips_and_is_what_the_run_records(tmp_path):
    exp = make(tmp_path)
    cfg = exp.run_config
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert RunConfig.from_dict(exp.store.config) == cfg
    assert cfg.data["spec"] == "digits"
    assert cfg.data["fingerprint"]["n_train"] == exp.data.n_train


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"budget": 0}, "budget"),
        ({"seed": MAX_SEED + 1}, "seed"),
        ({"projection": "tsne"}, "projection"),
        ({"labelling": 1}, "labelling"),
        ({"strategy": {"params": {}}}, "strategy.name"),
    ],
)
def test_run_config_checks_every_field(change, match):
    with pytest.raises(AlfavizInputError, match=match):
        RunConfig(**change)


# ---------------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------------


def test_each_round_uses_a_clone_seeded_by_seed_for(tmp_path):
    exp = make(tmp_path, seed=3)
    exp.run(2)
    assert exp.rounds[schema.RANDOM_STATE].tolist() == [seed_for(3, 0), seed_for(3, 1)]
    assert exp.strategy.random_state == 3  # the experiment's own strategy is never changed


def test_random_state_none_draws_fresh_recorded_seeds(tmp_path):
    exp = make(tmp_path, strategy=Random(random_state=None))
    exp.run(2)
    seeds = exp.rounds[schema.RANDOM_STATE].tolist()
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert seeds[0] != seeds[1]


def test_seed_for_stays_in_range():
    assert 0 <= seed_for(MAX_SEED, 10**6) <= MAX_SEED
    assert seed_for(0, 4) == 4


# ---------------------------------------------------------------------------------------------
# resuming and reopening
# ---------------------------------------------------------------------------------------------


def test_exist_ok_resumes_without_relabelling_the_initial_set(tmp_path):
    exp = make(tmp_path)
    exp.run(1)
    n_actions = len(exp.label_log)
    exp.store.close()
    again = make(tmp_path, exist_ok=True)
    assert len(again.label_log) == n_actions
    assert again.round == 1
    assert again.labelled_ids.tolist() == exp.labelled_ids.tolist()
    again.step()
    assert again.rounds[schema.ROUND].tolist() == [0, 1]


def test_reopening_with_other_data_is_refused(tmp_path):
    src = load_digits()
    exp = Experiment(
        src, "auto", "random", initial_size=10, budget=5, projection="none", train=FAST,
        out=tmp_path / "mem",
    )  # fmt: skip
    exp.store.close()
    other = load_digits(seed=1)  # a different split of the same data
    with pytest.raises(RunStoreError, match=r"ids_sha256|labels_sha256"):
        Experiment.open(exp.path, data=other)
    assert Experiment.open(exp.path, data=src).labelled_ids.size == 10


def test_runs_from_arrays_record_their_fingerprint(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.arange(60) % 3
    exp = make(tmp_path, data=from_arrays(x, y), initial_size=6)
    assert exp.run_config.data["spec"] is None
    assert exp.run_config.data["fingerprint"]["n_train"] == exp.data.n_train


def test_learner_owns_model_state_and_device():
    src = load_digits()
    learner = Learner(build_model("auto", src, seed=0), FAST, device="cpu", n_classes=10)
    first = {k: v.clone() for k, v in learner.model.state_dict().items()}
    ids = np.arange(30)
    learner.fit(src.inputs(ids), __import__("torch").as_tensor(src.labels(ids)), seed=0)
    changed = any(
        not (v == first[k]).all()
        for k, v in learner.model.state_dict().items()
        if v.is_floating_point()
    )
    assert changed
    learner.reset()
    assert all((v == first[k]).all() for k, v in learner.model.state_dict().items())
    z = learner.embed(src.inputs(ids))
    assert z.dtype == torch.float32
    assert z.shape[0] == 30
    assert 0.0 <= learner.evaluate(src.x_test, src.y_test) <= 1.0
    with pytest.raises(AlfavizInputError, match="classes"):
        Learner(build_model("auto", src, seed=0), n_classes=3)
