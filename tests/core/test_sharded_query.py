"""The sharded query: workers embed, score and write their shards, the driver keeps the
candidates, and everything equals the ALFA-Mix strategy on the whole pool, bit for bit."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import alfaviz.alfamix.candidates as candidates
from alfaviz.alfamix.sharded import RECORD_KINDS, ShardedQuery, sharded_query
from alfaviz.data import load_features
from alfaviz.engine import LocalEngine
from alfaviz.errors import AlfavizInputError
from alfaviz.learner.models import MLP, LinearProbe
from alfaviz.learner.training import embed
from alfaviz.strategies import ALFAMix

N, D, C, BUDGET = 12_000, 16, 5, 120


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 64 rows, so that a 12k pool makes several shards (groups of 2,048 rows)."""
    monkeypatch.setattr(candidates, "EXACT_BLOCK_F64_BYTES", 8 * D * 64)


def make_pool(seed: int = 0, n: int = N):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, D, generator=g)
    y = torch.randint(C, (n,), generator=g)
    x = (centres[y] + 1.5 * torch.randn(n, D, generator=g)).relu()
    lab = np.sort(np.random.default_rng(seed).choice(n, 150, replace=False))
    unl = np.setdiff1d(np.arange(n), lab)
    return x, y, lab, unl


def make_model(kind: str) -> torch.nn.Module:
    torch.manual_seed(1)
    model = LinearProbe(D, C) if kind == "linear" else MLP(D, C)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    return model


def whole_pool(x, y, lab, unl, model, budget=BUDGET, **params):
    """The reference: the ALFA-Mix strategy in one process, on embeddings of the whole pool."""
    z = embed(model, x).float()
    return ALFAMix(**params).query(
        z[unl], z[lab], y[lab], model.head, budget, unlabelled_ids=unl, labelled_ids=lab
    )


def assert_same(q: ShardedQuery, ref) -> None:
    np.testing.assert_array_equal(q.selected_ids, ref.selected_ids)
    pd.testing.assert_frame_equal(q.samples(), ref.samples, check_exact=True)
    # the shards keep the rows of the candidates (the only pairs that flip) and of the batch
    cand = ref.samples.loc[ref.samples["candidate"], "sample_id"].to_numpy()
    np.testing.assert_array_equal(q.candidate_ids, cand)
    keep = np.union1d(cand, ref.selected_ids)
    want = ref.flips[ref.flips["sample_id"].isin(keep)].reset_index(drop=True)
    got = q.flips()
    assert got["flipped"].any()
    assert not ref.flips.loc[~ref.flips["sample_id"].isin(cand), "flipped"].any()
    pd.testing.assert_frame_equal(got, want[got.columns], check_exact=True, check_dtype=False)
    ids, crit = q.critical_eps()
    np.testing.assert_array_equal(ids, ref.samples["sample_id"].to_numpy())
    np.testing.assert_array_equal(crit.min(axis=1), ref.samples["critical_eps"].astype("f4"))
    assert q.level == ref.info["level"]
    assert q.n_kmeans == ref.info["n_kmeans"]
    assert q.n_fill == ref.info["n_fill"]


def digests(folder: Path) -> dict[str, str]:
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.iterdir())
        if f.suffix == ".parquet"
    }


@pytest.mark.parametrize("shard_size", [None, 3000, 7000])
@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_sharded_query_equals_the_strategy_on_the_whole_pool(tmp_path, kind, shard_size):
    x, y, lab, unl = make_pool()
    model = make_model(kind)
    ref = whole_pool(x, y, lab, unl, model)
    q = sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path, shard_size=shard_size)
    assert_same(q, ref)
    group = q.manifest.block_rows * candidates.FLIP_GROUP_BLOCKS  # whole groups of blocks
    size = unl.size if shard_size is None else -(-shard_size // group) * group
    assert len(q.manifest.score_shards) == len(range(0, unl.size, size))
    # the model's encoder is embedded by shards; a linear probe's rows are the embeddings
    assert (tmp_path / "embeddings.npy").exists() == (kind == "mlp")
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["round"] is None
    assert sum(s["candidates"] for s in doc["score_shards"]) == q.n_candidates
    assert sum(s["rows"] for s in doc["score_shards"]) == unl.size
    for s in doc["score_shards"]:
        assert {k: (tmp_path / f).exists() for k, f in s["files"].items()} == dict.fromkeys(
            RECORD_KINDS, True
        )
    assert doc["query"]["selected_ids"] == ref.selected_ids.tolist()
    assert not list(tmp_path.glob("scores-*"))  # the scratch scores are removed
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_random_fills_rows_join_the_flips_as_in_the_strategy(tmp_path):
    """A budget above the candidates: the fill's samples keep their (sample, anchor) rows,
    written after the fill into the shards that hold them."""
    x, y, lab, unl = make_pool(3, n=3000)
    model = make_model("linear")
    ref = whole_pool(x, y, lab, unl, model, budget=2700)
    q = sharded_query(x, unl, lab, y[lab], model, 2700, folder=tmp_path, shard_size=1)
    assert q.n_fill > 0
    assert len(q.manifest.score_shards) > 1
    assert_same(q, ref)
    filled = q.selected_ids[q.from_fill]
    assert set(filled) <= set(q.flips()["sample_id"])
    assert "fill_flips" in q.timings


@pytest.mark.parametrize("budget", [BUDGET, 2700])
def test_every_pair_below_full_flips_max_pairs(tmp_path, budget):
    """At most ``full_flips_max_pairs`` pairs: every pair's row, as the strategy keeps them."""
    x, y, lab, unl = make_pool(3, n=3000)
    model = make_model("linear")
    ref = whole_pool(x, y, lab, unl, model, budget=budget)
    pairs = unl.size * C
    q = sharded_query(x, unl, lab, y[lab], model, budget, folder=tmp_path, shard_size=1,
                      full_flips_max_pairs=pairs)  # fmt: skip
    pd.testing.assert_frame_equal(q.flips(), ref.flips, check_exact=True, check_dtype=False)
    assert "fill_flips" not in q.timings
    q = sharded_query(x, unl, lab, y[lab], model, budget, folder=tmp_path / "cut",
                      shard_size=1, full_flips_max_pairs=pairs - 1)  # fmt: skip
    assert_same(q, ref)
    assert len(q.flips()) < len(ref.flips)
    with pytest.raises(AlfavizInputError, match="full_flips_max_pairs"):
        sharded_query(x, unl, lab, y[lab], model, budget, folder=tmp_path,
                      full_flips_max_pairs=-1)  # fmt: skip


def test_learned_alpha_too(tmp_path):
    x, y, lab, unl = make_pool(2, n=6000)
    model = make_model("linear")
    ref = whole_pool(x, y, lab, unl, model, alpha="learned", alpha_cap=0.125, learn_steps=2)
    q = sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path, shard_size=1,
                      alpha="learned", alpha_cap=0.125, learn_steps=2)  # fmt: skip
    assert len(q.manifest.score_shards) > 2
    assert_same(q, ref)


class Recorder(LocalEngine):
    """A local engine that runs shards in reverse order and records what each pass returns,
    pickled, as an engine's driver would receive it."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.returned: list[int] = []

    def map(self, fn, shards):
        self.sent.append(len(pickle.dumps(fn)))
        out = [fn(s) for s in reversed(list(shards))][::-1]
        self.returned.append(len(pickle.dumps(out)))
        return out


def test_the_driver_receives_counts_and_candidates_only(tmp_path):
    x, y, lab, unl = make_pool(3)
    model = make_model("linear")
    eng = Recorder()
    q = sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path, engine=eng,
                      shard_size=2048)  # fmt: skip
    assert_same(q, whole_pool(x, y, lab, unl, model))
    n_shards = len(q.manifest.score_shards)
    assert n_shards == 6
    assert len(eng.returned) == 2
    score, finish = eng.returned
    assert score < 1000 * n_shards  # per-level counts: a few int64 each
    assert q.n_candidates < unl.size / 2
    # the candidates' embeddings and positions, not the (N, C) scores of the pool
    assert finish < q.n_candidates * (4 * D + 8) + 2000 * n_shards
    assert finish < unl.size * C * 8  # what the critical-eps matrix alone would weigh


def test_files_are_named_by_round_and_shard(tmp_path):
    x, y, lab, unl = make_pool(9, n=6000)
    model = make_model("mlp")
    for r in (0, 1):
        sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path, shard_size=2048,
                      round=r)  # fmt: skip
    names = sorted(f.name for f in tmp_path.iterdir())
    for r in ("r0000", "r0001"):
        assert f"manifest-{r}.json" in names
        assert f"embeddings-{r}.npy" in names
        for kind in RECORD_KINDS:
            assert [n for n in names if n.startswith(f"{kind}-{r}-s")] == [
                f"{kind}-{r}-s{i:05d}.parquet" for i in range(3)
            ]
    assert json.loads((tmp_path / "manifest-r0001.json").read_text())["round"] == 1
    with pytest.raises(AlfavizInputError, match="round must be"):
        sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path, round=-1)


def test_records_are_idempotent_by_shard(tmp_path):
    x, y, lab, unl = make_pool(4)
    model = make_model("mlp")
    a = sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path / "a", shard_size=4096)
    first = digests(tmp_path / "a")
    # the same query again into the same folder (a rerun, a retried shard) writes the same bytes
    b = sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path / "a", shard_size=4096)
    assert digests(tmp_path / "a") == first
    np.testing.assert_array_equal(a.selected_ids, b.selected_ids)
    assert len(first) == 3 * len(a.manifest.score_shards)


def test_a_memory_mapped_feature_file_is_read_by_rows_not_copied(tmp_path):
    x, y, lab, _unl = make_pool(5)
    np.save(tmp_path / "z.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    src = load_features(tmp_path / "z.npy", labels=tmp_path / "y.npy", test_size=0.2)
    rows = src.x_train
    n = len(rows)
    assert len(pickle.dumps(rows)) < 9 * n + 4096  # the file name and the row ids, no values
    xt = rows[:]
    yt = torch.as_tensor(np.array(src.y_train))
    lab2 = lab[lab < n]
    unl2 = np.setdiff1d(np.arange(n), lab2)
    model = make_model("linear")
    eng = Recorder()
    q = sharded_query(rows, unl2, lab2, yt[lab2], model, BUDGET, folder=tmp_path / "q",
                      shard_size=4096, engine=eng)  # fmt: skip
    assert_same(q, whole_pool(xt, yt, lab2, unl2, model))
    # the pool never travels with the passes: their function holds the file name and the ids
    assert max(eng.sent) < 20 * n + 50_000 < xt.numel() * 4


def test_a_numpy_memory_map_travels_by_file_name(tmp_path):
    x, y, lab, unl = make_pool(10, n=6000)
    np.save(tmp_path / "z.npy", x.numpy())
    mm = np.load(tmp_path / "z.npy", mmap_mode="r")
    model = make_model("linear")
    eng = Recorder()
    q = sharded_query(mm, unl, lab, y[lab], model, BUDGET, folder=tmp_path / "q", engine=eng)
    assert_same(q, whole_pool(x, y, lab, unl, model))
    assert max(eng.sent) < 20 * len(x) + 50_000 < x.numel() * 4
    plain = sharded_query(x.numpy(), unl, lab, y[lab], model, BUDGET, folder=tmp_path / "p")
    np.testing.assert_array_equal(plain.selected_ids, q.selected_ids)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"labelled_ids": "overlap"}, "both labelled and unlabelled"),
        ({"unlabelled_ids": np.array([0, 1, 1])}, "repeated"),
        ({"unlabelled_ids": np.array([N + 5])}, "rows of x"),
        ({"unlabelled_ids": np.zeros((2, 2), int)}, "1-D array"),
        ({"budget": 0}, "budget must be"),
        ({"budget": True}, "budget must be"),
        ({"model": torch.nn.Linear(D, C)}, "split model"),
        ({"y_labelled": "short"}, "one each"),
        ({"y_labelled": "big"}, "class ids in 0..4"),
        ({"folder": "file"}, "not a folder"),
        ({"folder": 3}, "folder must be a path"),
        ({"x": 5}, "indexable by row"),
        ({"x": np.array([["a"]])}, "must hold numbers"),
        ({"shard_size": 0}, "shard_size"),
        ({"engine": "ray"}, "make_engine"),
        ({"alpha": "guess"}, "alpha must be"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, change, match):
    x, y, lab, unl = make_pool(6)
    args = {"x": x, "unlabelled_ids": unl, "labelled_ids": lab, "y_labelled": y[lab],
            "model": make_model("linear"), "budget": BUDGET, "folder": tmp_path / "q"}  # fmt: skip
    for k, v in change.items():
        if isinstance(v, np.ndarray):
            pass
        elif v == "overlap":
            v = np.concatenate([lab, unl[:3]])
            args["y_labelled"] = y[v]
        elif v == "short":
            v = y[lab][:-1]
        elif v == "big":
            v = y[lab] + 10
        elif v == "file":
            (tmp_path / "f").write_text("x")
            v = tmp_path / "f"
        args[k] = v
    with pytest.raises(AlfavizInputError, match=match):
        sharded_query(**args)


@pytest.mark.xfail(
    reason="MKL's default float32 kernels round some small products differently with 1 and 2 "
    "threads (one row of this pool); MKL_CBWR=AUTO,STRICT narrows it",
    strict=False,
)
def test_the_records_do_not_depend_on_the_thread_count(tmp_path):
    # an engine's workers each get their share of the cores; MKL's default kernels round
    # some float32 products differently with 1 and 2 threads (this pool hit one such row)
    x, y, lab, unl = make_pool(7)
    model = make_model("mlp")
    before = torch.get_num_threads()
    out = {}
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            sharded_query(x, unl, lab, y[lab], model, BUDGET, folder=tmp_path / str(t),
                          shard_size=3000)  # fmt: skip
            out[t] = digests(tmp_path / str(t))
    finally:
        torch.set_num_threads(before)
    assert out[1] == out[2]
