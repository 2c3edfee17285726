"""The sharded round: an Experiment whose workers embed, score and write the pool's shards
records exactly what the whole-pool round records, and this process never holds the pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import alfaviz.alfamix.candidates as candidates
import alfaviz.session.round as round_module
import alfaviz.session.sharded_round as sharded_round
from alfaviz import schema
from alfaviz.data import from_embeddings
from alfaviz.engine import LocalEngine
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Callback, Experiment
from alfaviz.strategies import ALFAMix

TRAIN = TrainConfig(max_epochs=5)


class CountingEngine:
    """In-process, but not the default engine: counts the shards of every pass."""

    parallelism = 1

    def __init__(self) -> None:
        self.calls: list[int] = []

    def map(self, fn, shards):
        shards = list(shards)
        self.calls.append(len(shards))
        return LocalEngine().map(fn, shards)


def without_times(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.startswith("time_")])


def assert_same_runs(a: Experiment, b: Experiment) -> None:
    pd.testing.assert_frame_equal(a.samples, b.samples, check_exact=True)
    pd.testing.assert_frame_equal(a.flips, b.flips, check_exact=True)
    pd.testing.assert_frame_equal(without_times(a.rounds), without_times(b.rounds))
    log = ["round", "sample_id", "action", "label", "source"]
    pd.testing.assert_frame_equal(a.label_log[log], b.label_log[log])
    for r in a.store.rounds_written():
        for x, y in zip(a.store.read_embeddings(r), b.store.read_embeddings(r), strict=True):
            np.testing.assert_array_equal(x, y)
        assert a.store.has_critical_eps(r) == b.store.has_critical_eps(r)
        for x, y in zip(a.critical_eps(r), b.critical_eps(r), strict=True):
            np.testing.assert_array_equal(x, y)
        for name in ("queried", "paths"):
            pd.testing.assert_frame_equal(
                a.store.read_extra(r, name), b.store.read_extra(r, name), check_exact=True
            )
        if a.projection != "none":
            pd.testing.assert_frame_equal(a.store.read_coords(r), b.store.read_coords(r))
    assert a.store.verify() == [] and b.store.verify() == []  # noqa: PT018


def digits_run(tmp_path, name: str, **kwargs) -> Experiment:
    exp = Experiment(
        "digits", "mlp", "alfamix", initial_size=30, budget=20, seed=1, projection="pca",
        train=TRAIN, out=tmp_path / name, **kwargs,
    )  # fmt: skip
    exp.run(2)
    return exp


def test_a_sharded_round_records_what_the_whole_pool_round_records(tmp_path):
    whole = digits_run(tmp_path, "whole")
    assert not whole.uses_sharded_rounds
    eng = CountingEngine()
    sharded = digits_run(tmp_path, "sharded", engine=eng)
    assert sharded.uses_sharded_rounds  # any engine but the in-process default
    assert eng.calls == [1, 1, 1] * 2  # embed, score, finish: one shard each, two rounds
    assert_same_runs(whole, sharded)
    assert sharded.samples["candidate"].any()
    # only each round's account of its shards stays in shards/; the records are the round's
    left = sorted(p.name for p in (sharded.path / "shards").iterdir())
    assert left == ["manifest-r0000.json", "manifest-r0001.json"]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows, so that a small pool makes several shards."""
    monkeypatch.setattr(candidates, "EXACT_BLOCK_F64_BYTES", 8 * 16 * 64)


def features(n: int = 6000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, 16, generator=g)
    y = torch.randint(5, (n,), generator=g)
    z = (centres[y] + 1.5 * torch.randn(n, 16, generator=g)).relu()
    return from_embeddings(z.numpy(), y.numpy(), seed=0)


@pytest.mark.parametrize(
    ("budget", "max_pairs"), [(40, None), (40, 1000), (2600, 1000)], ids=["full", "cut", "fill"]
)
def test_several_shards_a_cut_flips_frame_and_the_random_fill(
    tmp_path, monkeypatch, small_blocks, budget, max_pairs
):
    """Several shards of a feature pool, the flips cut to the candidates' and the batch's
    rows above ``full_flips_max_pairs`` (the matrix streamed from the shards), and a budget
    above the candidates (the random fill's rows)."""
    if max_pairs is not None:
        monkeypatch.setattr(ALFAMix, "full_flips_max_pairs", max_pairs)
    runs = []
    for name, sharded in (("whole", False), ("sharded", True)):
        exp = Experiment(
            features(3000 if budget > 1000 else 6000), "linear", "alfamix", initial_size=100,
            budget=budget, seed=2, projection="pca", train=TRAIN, out=tmp_path / name,
            sharded=sharded, shard_size=1,
        )  # fmt: skip
        exp.run(1 if budget > 1000 else 2)
        runs.append(exp)
    whole, sharded = runs
    assert_same_runs(whole, sharded)
    doc = (sharded.path / "shards" / "manifest-r0000.json").read_text()
    assert doc.count('"index"') > 1  # several shards
    assert whole.store.has_critical_eps(0) == (max_pairs is not None)
    if budget > 1000:
        assert whole.rounds[schema.N_FILL].iloc[0] > 0


def test_the_projection_reads_the_rows_in_blocks_above_the_umap_subset(tmp_path, monkeypatch):
    """Above the projection's fit size the embeddings are read by row, never as one array;
    the coordinates are those of the whole-pool round."""
    import alfaviz.analysis.projection as projection

    monkeypatch.setattr(projection, "UMAP_FIT_MAX", 500)
    monkeypatch.setattr(projection, "_CHECK_ROWS", 700)
    monkeypatch.setattr(projection, "_PCA_BLOCK_BYTES", 8 * 128 * 300)
    monkeypatch.setattr(sharded_round, "EMBEDDING_PART_BYTES", 4 * 128 * 300)
    monkeypatch.setattr(round_module, "PATH_REFERENCE_MAX", 400)
    reads: list[int] = []
    real = sharded_round.EmbeddingRows.__getitem__

    def spy(self, rows):
        out = real(self, rows)
        reads.append(len(out))
        return out

    monkeypatch.setattr(sharded_round.EmbeddingRows, "__getitem__", spy)
    runs = [digits_run(tmp_path, name, sharded=s) for name, s in (("w", False), ("s", True))]
    assert_same_runs(*runs)
    assert reads
    assert max(reads) < runs[0].data.n_train  # the pool was never read whole


class Queries(Callback):
    def __init__(self) -> None:
        self.results: list = []

    def on_query_end(self, exp, round, result) -> None:
        self.results.append(result)


def test_callbacks_get_the_query_with_the_candidates_and_the_batch(tmp_path):
    got = {}
    for name, sharded in (("whole", False), ("sharded", True)):
        cb = Queries()
        digits_run(tmp_path, name, sharded=sharded, callbacks=[cb])
        got[name] = cb.results
    for whole, part in zip(got["whole"], got["sharded"], strict=True):
        np.testing.assert_array_equal(whole.selected_ids, part.selected_ids)
        s = whole.samples
        keep = s[schema.CANDIDATE].to_numpy(bool) | s[schema.SELECTED].to_numpy(bool)
        want = s[keep].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.samples, want, check_exact=True)
        for key in (schema.LEVEL, schema.N_CANDIDATES, schema.N_KMEANS, schema.N_FILL):
            assert part.info[key] == whole.info[key]
        pd.testing.assert_frame_equal(part.paths, whole.paths, check_exact=True)
        assert len(part.flips) == len(whole.flips)  # a small pool: every pair


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(AlfavizInputError, match="sharded must be True, False or None"):
        Experiment("digits", sharded="yes", out=tmp_path / "a")
    with pytest.raises(AlfavizInputError, match="sharded ALFA-Mix query"):
        Experiment("digits", strategy="entropy", sharded=True, out=tmp_path / "b")
    exp = Experiment("digits", strategy="entropy", engine=CountingEngine(), out=tmp_path / "c")
    assert not exp.uses_sharded_rounds  # other strategies run whole-pool rounds


def test_a_run_reopened_with_sharded_rounds_goes_on_as_before(tmp_path):
    whole = digits_run(tmp_path, "whole")
    Experiment(
        "digits", "mlp", "alfamix", initial_size=30, budget=20, seed=1, projection="pca",
        train=TRAIN, out=tmp_path / "mixed",
    ).run(1)  # fmt: skip
    again = Experiment.open(tmp_path / "mixed", sharded=True)
    assert again.uses_sharded_rounds
    again.run(1)
    assert_same_runs(whole, again)


def test_clearing_a_round_touches_only_that_round(tmp_path):
    names = ["samples-r0003-s00000.parquet", "manifest-r0003.json", "embeddings-r0003.npy",
             ".samples-r0003-s00001.parquet.12.ab12cd34.tmp", "samples-r10003-s00000.parquet",
             "manifest-r0030.json", "flips-r0030-s00000.parquet"]  # fmt: skip
    for n in names:
        (tmp_path / n).write_text("x")
    sharded_round.clear_round_files(tmp_path, 3, keep_manifest=True)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["manifest-r0003.json", *names[4:]])
    sharded_round.clear_round_files(tmp_path, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[4:])
