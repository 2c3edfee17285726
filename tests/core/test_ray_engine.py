"""The Ray engine gives bit-identical results to the local engine, and survives a lost worker.

One local Ray cluster (2 CPUs and 2 declared, fake, GPUs) serves the whole session; its
workers find this repository through ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import alfaviz.alfamix.candidates as candidates
import tests.core.test_sharded_query as sq
from alfaviz.alfamix import find_candidates
from alfaviz.alfamix.sharded import sharded_query
from alfaviz.data import from_embeddings
from alfaviz.engine import LocalEngine, RayEngine, make_engine
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from tests.core.test_alfamix import make_problem
from tests.core.test_engine import CASES, _assert_identical
from tests.core.test_sharded_round import assert_same_runs

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra: pip install 'alfaviz[ray]'")
    started = not ray.is_initialized()
    if started:
        env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": env})  # fmt: skip
    yield ray
    if started:
        ray.shutdown()


class SpyRay(RayEngine):
    """A RayEngine that records how many shards each map received (since the last
    ``calls.clear()``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []

    def map(self, fn, shards):
        self.calls.append(len(shards))
        return super().map(fn, shards)


class _Engines:
    """Engines shared by the tests of this module (starting actors takes seconds); one at a
    time, since each one's actors hold all the cluster's CPUs."""

    def __init__(self) -> None:
        self.made: dict[bool, SpyRay] = {}

    def __call__(self, gpus: bool = False) -> SpyRay:
        if gpus not in self.made:
            self.close()
            self.made[gpus] = SpyRay(gpus=gpus)
        self.made[gpus].calls.clear()
        return self.made[gpus]

    def close(self) -> None:
        for eng in self.made.values():
            eng.close()
        self.made.clear()


@pytest.fixture(scope="module")
def engines(ray_cluster):
    made = _Engines()
    yield made
    made.close()


@pytest.mark.parametrize("gpus", [False, True], ids=["cpu-workers", "fake-gpu-workers"])
@pytest.mark.parametrize("path", list(CASES))
def test_ray_candidates_equal_the_local_engine(engines, path, gpus):
    factory, alpha, cap, chunk = CASES[path]
    zu, zl, yl, lin = make_problem(41, 900, 120, 24, 10, relu=True)
    head = lin if factory is None else factory(24, 10)
    kw = {"alpha": alpha, "alpha_cap": cap, "max_chunk_bytes": chunk, "learn_steps": 3}
    local = find_candidates(zu, zl, yl, head, 150, engine=LocalEngine(), shard_size=256, **kw)
    eng = engines(gpus)
    remote = find_candidates(zu, zl, yl, head, 150, engine=eng, shard_size=256, **kw)
    workers = eng.describe()
    assert eng.calls == [4, 4]  # scoring and finishing, four shards each
    assert len(workers) == 2  # one actor per CPU, or per (declared) GPU
    assert {w["threads"] for w in workers} == {1}  # each pinned to its share of 2 cores
    assert len({w["pid"] for w in workers}) == 2
    assert 0 < local.n_candidates < 900
    _assert_identical(local, remote)
    # the caller's head is neither moved nor changed
    assert all(p.device.type == "cpu" for p in head.parameters())


def test_default_shards_one_per_worker(engines):
    zu, zl, yl, head = make_problem(42, 2000, 100, 8, 4)
    eng = engines()
    out = find_candidates(zu, zl, yl, head, 40, max_chunk_bytes=1 << 12, engine=eng)
    assert eng.calls == [2, 2]
    whole = find_candidates(zu, zl, yl, head, 40, max_chunk_bytes=1 << 12)
    _assert_identical(whole, out)


def _embeddings_source():
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(6, 64, generator=g) * 0.6
    y = torch.randint(6, (80000,), generator=g)
    z = (centres[y] + torch.randn(80000, 64, generator=g)).relu()
    return from_embeddings(z.numpy(), y.numpy(), seed=0)


def _run(tmp_path: Path, name: str, engine, shard_size=None) -> Experiment:
    exp = Experiment(
        _embeddings_source(), "linear", "alfamix", initial_size=40, budget=25, seed=3,
        projection="none", train=TrainConfig(max_epochs=20), out=tmp_path / name,
        engine=engine, shard_size=shard_size,
    )  # fmt: skip
    exp.run(2)
    return exp


@pytest.mark.parametrize("gpus", [False, True], ids=["cpu-workers", "fake-gpu-workers"])
def test_a_run_through_ray_equals_the_local_run(engines, tmp_path, gpus):
    """The same run on the local engine (whole-pool rounds) and on Ray (sharded rounds: the
    workers score and write the shards, the store writes the round from their files)."""
    # a 60k-row pool at D = 64: the smallest shard (32 blocks of the computation) is 31k rows
    local = _run(tmp_path, "local", "local", shard_size=1)
    assert not local.uses_sharded_rounds
    eng = engines(gpus)
    remote = _run(tmp_path, "ray", eng, shard_size=1)
    assert remote.uses_sharded_rounds
    assert eng.calls == [2, 2] * 2, eng.calls  # two rounds: score and finish, two shards each
    assert_same_runs(local, remote)
    np.testing.assert_array_equal(local.labelled_ids, remote.labelled_ids)
    assert remote.samples["candidate"].any()
    assert sorted(p.name for p in (remote.path / "shards").iterdir()) == [
        "manifest-r0000.json", "manifest-r0001.json"
    ]  # fmt: skip


def test_a_worker_killed_mid_sharded_round_changes_nothing(engines, tmp_path):
    """A worker lost while it finishes a shard of a round: the shard runs again, and the run
    is the local engine's."""
    engines.close()
    local = _run(tmp_path, "local", "local", shard_size=1)
    marker = tmp_path / "killed"
    with KillingRay(marker, at=1) as eng:  # the finishing pass of round 0
        remote = _run(tmp_path, "ray", eng, shard_size=1)
    assert marker.exists()
    assert_same_runs(local, remote)


def _die_once(marker: str, fn, shard):
    """Kill this worker process the first time any shard gets here (the marker file says)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(shard)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


class KillingRay(RayEngine):
    """Its map number ``at`` (the first by default) loses the worker that starts first,
    mid-shard."""

    def __init__(self, marker: Path, at: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker = str(marker)
        self.at = at
        self.maps = 0

    def map(self, fn, shards):
        self.maps += 1
        if self.maps - 1 == self.at:
            fn = partial(_die_once, self.marker, fn)
        return super().map(fn, shards)


def test_a_worker_killed_mid_round_changes_nothing(engines, tmp_path):
    engines.close()
    zu, zl, yl, head = make_problem(43, 900, 120, 24, 10, relu=True)
    kw = {"max_chunk_bytes": 1 << 15, "shard_size": 256}
    local = find_candidates(zu, zl, yl, head, 150, engine=LocalEngine(), **kw)
    marker = tmp_path / "killed"
    with KillingRay(marker) as eng:
        before = {w["pid"] for w in eng.describe()}
        remote = find_candidates(zu, zl, yl, head, 150, engine=eng, **kw)
        after = {w["pid"] for w in eng.describe()}
    assert marker.exists()  # a worker was killed
    assert before != after  # and restarted: its shard ran again
    _assert_identical(local, remote)


def test_a_full_cluster_is_a_clear_error(engines, monkeypatch):
    import alfaviz.engine._ray as ray_engine

    engines().parallelism  # noqa: B018 - two actors hold both CPUs
    monkeypatch.setattr(ray_engine, "FREE_WAIT_S", 0.5)
    with pytest.raises(AlfavizInputError, match="free CPUs"):
        RayEngine().parallelism  # noqa: B018


def _boom(shard):
    raise ValueError(f"bad shard {shard}")


def test_the_functions_own_error_comes_out(engines):
    with pytest.raises(ValueError, match=r"bad shard [23]"):
        engines().map(_boom, [2, 3])
    assert engines().map(abs, [-1, 2]) == [1, 2]  # the engine still works after an error
    engines.close()
    with RayEngine(workers=1) as eng:
        assert eng.map(abs, [-3, 4, -5]) == [3, 4, 5]
        assert eng.parallelism == 1
        assert eng.describe()[0]["threads"] == 2  # one worker takes both cores


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0}, "workers"),
        ({"threads": 1.5}, "threads"),
        ({"gpus": "yes"}, "gpus"),
        ({"max_retries": -1}, "max_retries"),
        ({"address": ""}, "address"),
    ],
)
def test_bad_engine_settings(kwargs, match):
    with pytest.raises(AlfavizInputError, match=match):
        RayEngine(**kwargs)


def test_engine_names():
    assert isinstance(make_engine(None), LocalEngine)
    assert isinstance(make_engine("ray"), RayEngine)  # nothing starts until it is used
    with pytest.raises(AlfavizInputError, match="unknown engine 'spark'"):
        make_engine("spark")
    with pytest.raises(AlfavizInputError, match="make_engine"):
        find_candidates(*make_problem(44, 50, 10, 4, 2), 5, engine="ray")
    with pytest.raises(AlfavizInputError, match="shard_size"):
        Experiment("digits", engine="local", shard_size=0)


def test_without_ray_the_error_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    eng = RayEngine()
    with pytest.raises(AlfavizInputError, match=r"pip install 'alfaviz\[ray\]'"):
        eng.map(abs, [1])


# the sharded query: workers embed, score and write their shards


@contextlib.contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("gpus", [False, True], ids=["cpu-workers", "fake-gpu-workers"])
def test_the_sharded_query_on_ray_equals_the_whole_pool(engines, tmp_path, gpus, monkeypatch):
    monkeypatch.setattr(candidates, "EXACT_BLOCK_F64_BYTES", 8 * sq.D * 64)
    x, y, lab, unl = sq.make_pool(7)
    model = sq.make_model("mlp")  # a learned encoder: the workers embed their rows
    with one_thread():  # as each of the two workers (see test_sharded_query: MKL rounding)
        ref = sq.whole_pool(x, y, lab, unl, model)
    eng = engines(gpus)
    q = sharded_query(x, unl, lab, y[lab], model, sq.BUDGET, folder=tmp_path / "ray",
                      engine=eng, shard_size=3000)  # fmt: skip
    assert eng.calls == [4, 4, 4]  # embed, score and finish, four shards each
    sq.assert_same(q, ref)
    with one_thread():
        sharded_query(x, unl, lab, y[lab], model, sq.BUDGET, folder=tmp_path / "local",
                      shard_size=3000)  # fmt: skip
    assert sq.digests(tmp_path / "ray") == sq.digests(tmp_path / "local")
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.parametrize("at", [0, 2], ids=["embedding", "finishing"])
def test_a_worker_killed_mid_sharded_query_changes_nothing(engines, tmp_path, at, monkeypatch):
    monkeypatch.setattr(candidates, "EXACT_BLOCK_F64_BYTES", 8 * sq.D * 64)
    engines.close()
    x, y, lab, unl = sq.make_pool(8)
    model = sq.make_model("mlp")
    with one_thread():
        local = sharded_query(x, unl, lab, y[lab], model, sq.BUDGET, folder=tmp_path / "local",
                              shard_size=3000)  # fmt: skip
    marker = tmp_path / "killed"
    with KillingRay(marker, at=at) as eng:
        before = {w["pid"] for w in eng.describe()}
        remote = sharded_query(x, unl, lab, y[lab], model, sq.BUDGET, folder=tmp_path / "ray",
                               engine=eng, shard_size=3000)  # fmt: skip
        after = {w["pid"] for w in eng.describe()}
    assert marker.exists()
    assert before != after
    np.testing.assert_array_equal(local.selected_ids, remote.selected_ids)
    pd.testing.assert_frame_equal(local.samples(), remote.samples(), check_exact=True)
    assert sq.digests(tmp_path / "ray") == sq.digests(tmp_path / "local")
    assert not list((tmp_path / "ray").glob(".*.tmp"))
