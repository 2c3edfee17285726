"""Bring your own embeddings: ``from_embeddings``, feature files, the ``"linear"`` model."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import alfaviz
from alfaviz.data import (
    CONFIG_OPTIONS,
    DataSource,
    FeatureRows,
    data_config,
    from_embeddings,
    load_dataset,
    load_dataset_from_config,
    load_features,
)
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import MLP, LinearProbe, TrainConfig, build_model
from alfaviz.learner.training import embed
from alfaviz.session import Experiment, open_run

FAST = {"max_epochs": 3, "min_steps": 5}


def blobs(n: int = 240, d: int = 12, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` separable Gaussian blobs: float32 features (n, d) and int labels (n,)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(scale=4.0, size=(k, d))
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def write_npy(tmp_path: Path, n: int = 240, d: int = 12) -> tuple[Path, Path, np.ndarray]:
    Z, y = blobs(n, d)
    np.save(tmp_path / "z.npy", Z)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "z.npy", tmp_path / "y.npy", Z


def write_parquet(tmp_path: Path, n: int = 240) -> tuple[Path, pd.DataFrame]:
    Z, y = blobs(n, 6)
    df = pd.DataFrame(Z, columns=[f"f{i}" for i in range(Z.shape[1])])
    df["label"] = np.array(["cat", "dog", "emu"])[y]
    df["sample_id"] = 1000 + 7 * np.arange(n)
    path = tmp_path / "feats.parquet"
    df.to_parquet(path)
    return path, df


# ---------------------------------------------------------------------------------------------
# from_embeddings
# ---------------------------------------------------------------------------------------------


def test_from_embeddings_keeps_ids_class_names_and_a_stratified_test_split() -> None:
    Z, y = blobs()
    ids = np.arange(len(y))[::-1] * 10 + 5
    src = from_embeddings(Z, y, ids=ids, class_names=["a", "b", "c"], test_size=0.25, seed=3)
    assert isinstance(src, DataSource)
    assert src.is_embeddings
    assert src.meta["embeddings"] is True
    assert src.class_names == ("a", "b", "c")
    assert src.input_shape == (12,)
    assert (src.n_train, src.n_test) == (180, 60)
    assert sorted(np.bincount(src.y_test).tolist()) == [20, 20, 20]
    # ids travel with their rows: the external id of a sample finds the same features
    ext = src.to_external_ids(src.sample_ids)
    assert sorted(ext.tolist()) == sorted(ids.tolist())
    rows = np.array([np.flatnonzero(ids == e)[0] for e in ext])
    np.testing.assert_array_equal(src.inputs(src.sample_ids).numpy(), Z[rows])
    np.testing.assert_array_equal(src.labels(src.sample_ids), y[rows])
    np.testing.assert_array_equal(src.from_external_ids(ext[[4, 0, 7]]), [4, 0, 7])
    with pytest.raises(AlfavizInputError, match=r"ids \[-1\] are not in"):
        src.from_external_ids([-1])
    # the same call gives the same split and the same fingerprint
    again = from_embeddings(Z, y, ids=ids, class_names=["a", "b", "c"], test_size=0.25, seed=3)
    assert again.fingerprint() == src.fingerprint()
    assert "external_ids_sha256" in src.fingerprint()


def test_from_embeddings_is_exported_lazily_from_alfaviz() -> None:
    assert "from_embeddings" in alfaviz.__all__
    assert alfaviz.from_embeddings is from_embeddings


def test_in_memory_features_are_not_standardised_unless_asked() -> None:
    Z, y = blobs()
    raw = from_embeddings(Z, y)
    assert raw.meta["standardize"] is False
    assert torch.is_tensor(raw.x_train)
    scaled = from_embeddings(Z, y, standardize=True)
    assert scaled.meta["standardize"] is True
    assert torch.allclose(scaled.x_train.mean(0), torch.zeros(12), atol=1e-4)


def test_auto_picks_linear_and_linear_is_an_identity_encoder_and_a_linear_head() -> None:
    Z, y = blobs()
    src = from_embeddings(Z, y)
    model = build_model("auto", src, seed=0)
    assert type(model) is LinearProbe
    assert isinstance(model.encoder, nn.Identity)
    assert type(model.head) is nn.Linear
    assert (model.head.in_features, model.head.out_features) == (12, 3)
    assert model.embed_dim == 12
    assert model.config["name"] == "linear"
    x = src.inputs([0, 1, 2])
    assert torch.equal(model.embed(x), x)  # the embedding is the feature vector itself
    assert type(build_model("linear", src)) is LinearProbe
    assert type(build_model("mlp", src)) is MLP
    # a plain table still gets an MLP from auto; "linear" works on it too
    from alfaviz.data import from_arrays

    table = from_arrays(Z, y)
    assert type(build_model("auto", table)) is MLP
    assert type(build_model("linear", table)) is LinearProbe
    with pytest.raises(AlfavizInputError, match=r"unknown option\(s\) \['hidden'\]"):
        build_model("linear", src, hidden=(4,))


# ---------------------------------------------------------------------------------------------
# memory-mapped .npy files
# ---------------------------------------------------------------------------------------------


def test_npy_features_stay_a_memmap_and_batches_index_from_it(tmp_path: Path) -> None:
    zpath, ypath, Z = write_npy(tmp_path)
    src = load_dataset(zpath, labels=ypath)
    base = src.train.base  # type: ignore[attr-defined]
    assert isinstance(base, np.memmap)
    assert Path(base.filename) == zpath.resolve()
    assert not base.flags.writeable
    assert src.test.base is base  # type: ignore[attr-defined]
    assert src.meta["memory_mapped"] is True
    assert src.is_embeddings
    x = src.x_train
    assert isinstance(x, FeatureRows)
    assert x.shape == (src.n_train, 12)
    assert len(x) == src.n_train
    pos = src.train.rows().pos  # type: ignore[attr-defined]
    batch = x[torch.tensor([5, 0, 3])]
    assert batch.dtype == torch.float32
    assert batch.shape == (3, 12)
    np.testing.assert_array_equal(batch.numpy(), Z[pos[[5, 0, 3]]])
    np.testing.assert_array_equal(x[2:6].numpy(), Z[pos[2:6]])
    np.testing.assert_array_equal(x[-1].numpy(), Z[pos[-1]])
    np.testing.assert_array_equal(src.inputs([src.n_train]).numpy(), Z[src.test.rows().pos[:1]])  # type: ignore[attr-defined]
    assert np.asarray(x).shape == (src.n_train, 12)
    assert x.detach().cpu().numpy().shape == (src.n_train, 12)  # what the dashboard reads
    with pytest.raises(IndexError):
        x[src.n_train]
    # the same data in memory gives the same source
    mem = from_embeddings(Z, np.load(ypath), name="z")
    assert mem.fingerprint() == src.fingerprint()
    np.testing.assert_array_equal(mem.x_train.numpy(), x.numpy())
    # standardisation of a memory map: train statistics, applied per batch
    scaled = load_dataset(zpath, labels=ypath, standardize=True)
    mem_scaled = from_embeddings(Z, np.load(ypath), standardize=True)
    assert torch.allclose(scaled.x_train[:], mem_scaled.x_train, atol=1e-4)
    # a worker process gets the file's name, not a copy of the array
    blob = pickle.dumps(src.train)
    assert len(blob) < Z.nbytes / 2
    clone = pickle.loads(blob)
    assert isinstance(clone.base, np.memmap)
    assert torch.equal(clone.batch(np.array([1, 2])), src.train.batch(np.array([1, 2])))  # type: ignore[attr-defined]


def test_a_view_of_a_memmap_is_read_through_the_view(tmp_path: Path) -> None:
    zpath, ypath, Z = write_npy(tmp_path)
    mm = np.load(zpath, mmap_mode="r")
    y = np.load(ypath)
    part = from_embeddings(mm[40:200], y[40:200])
    assert isinstance(part.train.base, np.memmap)  # type: ignore[attr-defined]
    pos = part.train.rows().pos  # type: ignore[attr-defined]
    np.testing.assert_array_equal(part.x_train[:5].numpy(), Z[40:200][pos[:5]])
    clone = pickle.loads(pickle.dumps(part.train))
    assert torch.equal(clone.batch(np.arange(4)), part.train.batch(np.arange(4)))  # type: ignore[attr-defined]
    nan = Z.copy()
    nan[150, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    bad = np.load(tmp_path / "nan.npy", mmap_mode="r")
    with pytest.raises(AlfavizInputError, match=r"first rows: \[110\]"):
        from_embeddings(bad[40:200], y[40:200])
    with pytest.raises(AlfavizInputError, match=r"first rows: \[150\]"):
        from_embeddings(bad, y)


def test_training_and_embedding_read_batches_not_the_whole_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zpath, ypath, _ = write_npy(tmp_path, n=3000, d=8)
    src = load_dataset(zpath, labels=ypath)
    assert src.n_train > 1024
    reads: list[int] = []
    original = FeatureRows.read

    def counting(self: FeatureRows, file_rows: np.ndarray) -> torch.Tensor:
        reads.append(len(file_rows))
        return original(self, file_rows)

    monkeypatch.setattr(FeatureRows, "read", counting)

    def refuse(self: FeatureRows, *args: object, **kwargs: object) -> None:
        raise AssertionError("the whole feature matrix was materialised")

    monkeypatch.setattr(FeatureRows, "numpy", refuse)
    monkeypatch.setattr(FeatureRows, "__array__", refuse)
    exp = Experiment(
        src, "linear", "alfamix", initial_size=12, budget=6, seed=0, projection="none",
        train=FAST, out=tmp_path / "run",
    )  # fmt: skip
    exp.run(1)
    assert len(exp.rounds) == 1
    assert reads
    assert max(reads) <= 1024 < src.n_train
    z = embed(exp.learner.model, src.x_train)
    assert z.shape == (src.n_train, 8)


@pytest.mark.slow
def test_opening_a_200mb_npy_does_not_grow_memory_by_its_size(tmp_path: Path) -> None:
    rows, dim = 65_536, 800  # 200 MiB of float32
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, 8192):
        mm[start : start + 8192] = np.random.default_rng(start).normal(size=(8192, dim))
    mm.flush()
    del mm
    np.save(tmp_path / "y.npy", np.arange(rows) % 10)
    code = textwrap.dedent(
        f"""
        import resource, numpy as np, torch
        from alfaviz.data import load_dataset
        from alfaviz.learner import build_model
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        src = load_dataset({str(path)!r}, labels={str(tmp_path / "y.npy")!r})
        assert isinstance(src.train.base, np.memmap)
        x = src.x_train[torch.arange(64)]
        model = build_model("auto", src)
        assert model(x).shape == (64, 10)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    grown = int(out.stdout.split()[-1])
    assert grown < 0.25 * path.stat().st_size, f"peak RSS grew by {grown / 2**20:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# files: parquet and npz; reopening
# ---------------------------------------------------------------------------------------------


def test_parquet_round_trip_keeps_ids_and_class_names(tmp_path: Path) -> None:
    path, df = write_parquet(tmp_path)
    src = load_dataset(path, target="label", embeddings=True)
    assert src.is_embeddings
    assert src.class_names == ("cat", "dog", "emu")
    assert src.input_shape == (6,)  # the id column is not a feature
    ext = src.to_external_ids(src.sample_ids)
    assert sorted(ext.tolist()) == df["sample_id"].tolist()
    rows = (ext - 1000) // 7
    np.testing.assert_array_equal(
        src.inputs(src.sample_ids).numpy(), df[[f"f{i}" for i in range(6)]].to_numpy()[rows]
    )
    assert [src.class_names[c] for c in src.labels(src.sample_ids)] == df["label"][rows].tolist()
    config = data_config(path, {"target": "label", "embeddings": True}, source=src)
    assert config["spec"] == str(path.resolve())
    assert config["kwargs"] == {"target": "label", "embeddings": True}
    again = load_dataset_from_config(config)
    assert again.class_names == src.class_names
    np.testing.assert_array_equal(again.external_ids, src.external_ids)
    # an "id" column works too, and the default label column is "label"
    df.rename(columns={"sample_id": "id"}).to_parquet(tmp_path / "b.parquet")
    other = load_features(tmp_path / "b.parquet")
    np.testing.assert_array_equal(other.external_ids, src.external_ids)


def test_a_parquet_vector_column_is_read_as_the_features(tmp_path: Path) -> None:
    Z, y = blobs(60, 5)
    pd.DataFrame({"embedding": list(Z), "label": y}).to_parquet(tmp_path / "v.parquet")
    src = load_features(tmp_path / "v.parquet")
    assert src.input_shape == (5,)
    assert src.external_ids is None


def test_npz_reads_named_arrays(tmp_path: Path) -> None:
    Z, y = blobs()
    ids = np.arange(len(y)) + 50
    np.savez(tmp_path / "a.npz", features=Z, labels=y, ids=ids, class_names=["x", "y", "z"])
    src = load_dataset(tmp_path / "a.npz")
    assert src.class_names == ("x", "y", "z")
    assert src.is_embeddings
    assert sorted(src.external_ids.tolist()) == ids.tolist()  # type: ignore[union-attr]
    np.savez(tmp_path / "b.npz", embeddings=Z, classes=y)
    assert load_dataset(tmp_path / "b.npz", target="classes").n_classes == 3
    np.savez(tmp_path / "c.npz", X=Z)
    np.save(tmp_path / "y.npy", y)
    assert load_dataset(tmp_path / "c.npz", labels=tmp_path / "y.npy").n_samples == len(y)
    with pytest.raises(AlfavizInputError, match="pass only one of them"):
        load_dataset(tmp_path / "a.npz", labels=tmp_path / "y.npy")
    with pytest.raises(AlfavizInputError, match=r"holds no labels.*'labels', 'y'"):
        load_dataset(tmp_path / "c.npz")


def test_experiment_on_a_feature_file_reopens_from_its_config(tmp_path: Path) -> None:
    zpath, ypath, _ = write_npy(tmp_path)
    exp = Experiment(
        str(zpath), "auto", "alfamix", initial_size=10, budget=5, seed=1, projection="pca",
        train=FAST, out=tmp_path / "run", data_kwargs={"labels": str(ypath)},
    )  # fmt: skip
    exp.run(2)
    assert type(exp.model) is LinearProbe
    data = exp.config()["data"]
    assert data["spec"] == str(zpath.resolve())
    assert data["kwargs"] == {"labels": str(ypath.resolve())}
    assert data["fingerprint"] == exp.data.fingerprint()
    assert len(exp.rounds) == 2
    assert len(exp.samples)
    reopened = open_run(tmp_path / "run")
    assert type(reopened.model) is LinearProbe
    assert isinstance(reopened.data.train.base, np.memmap)  # type: ignore[attr-defined]
    assert reopened.data.fingerprint() == exp.data.fingerprint()
    pd.testing.assert_frame_equal(reopened.rounds, exp.rounds)
    reopened.run(1)
    assert len(reopened.rounds) == 3
    # changed labels on disk are caught by the fingerprint
    np.save(ypath, np.roll(np.load(ypath), 1))
    with pytest.raises(Exception, match="does not match the fingerprint"):
        open_run(tmp_path / "run")


def test_experiment_on_in_memory_embeddings_runs_alfamix_rounds(tmp_path: Path) -> None:
    Z, y = blobs()
    src = from_embeddings(Z, y, ids=np.arange(len(y)) * 3)
    exp = Experiment(
        src, "linear", "alfamix", initial_size=9, budget=6, seed=0, projection="pca",
        train=TrainConfig(lr=1e-2, max_epochs=100), out=tmp_path / "mem",
    )  # fmt: skip
    rounds = exp.run(2)
    assert rounds["n_labelled"].tolist() == [9, 15]
    assert exp.pool.n_labelled == 21
    assert rounds["accuracy"].iloc[-1] > 0.5
    reopened = open_run(tmp_path / "mem", data=src)
    assert len(reopened.rounds) == 2


def test_config_allow_list_checks_the_feature_options_field_by_field(tmp_path: Path) -> None:
    zpath, ypath, _ = write_npy(tmp_path)
    assert {"labels", "embeddings"} <= set(CONFIG_OPTIONS["table"])
    with pytest.raises(AlfavizInputError, match="'labels' of a table source must be a string"):
        load_dataset_from_config({"spec": str(zpath), "kwargs": {"labels": 3}})
    with pytest.raises(AlfavizInputError, match="'embeddings' of a table source must be true"):
        load_dataset_from_config({"spec": str(zpath), "kwargs": {"embeddings": "yes"}})
    with pytest.raises(AlfavizInputError, match="'mmap_mode' is not allowed"):
        load_dataset_from_config({"spec": str(zpath), "kwargs": {"mmap_mode": "r+"}})
    config = data_config(zpath, {"labels": ypath, "seed": 2})
    assert config == {
        "spec": str(zpath.resolve()),
        "kwargs": {"labels": str(ypath.resolve()), "seed": 2},
    }
    assert load_dataset_from_config(config).meta["seed"] == 2


# ---------------------------------------------------------------------------------------------
# bad input: one line that names the problem
# ---------------------------------------------------------------------------------------------


def _bad_files(tmp: Path) -> dict[str, tuple[dict[str, object], str]]:
    Z, y = blobs(60, 4)
    np.save(tmp / "z.npy", Z)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "short.npy", y[:-3])
    nan = Z.copy()
    nan[7, 2] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "flat.npy", Z[:, 0])
    np.save(tmp / "text.npy", Z.astype(str))
    df = pd.DataFrame(Z, columns=list("abcd"))
    df["label"] = y
    df.assign(colour=["red"] * 60).to_parquet(tmp / "text.parquet")
    df.assign(id=np.arange(60) % 30).to_parquet(tmp / "dupe.parquet")
    df.assign(id=np.arange(60) + 0.5).to_parquet(tmp / "float_ids.parquet")
    df.to_parquet(tmp / "ok.parquet")
    np.savez(tmp / "nofeat.npz", data=Z, labels=y)
    return {
        "missing target column": (
            {"spec": "ok.parquet", "target": "species", "embeddings": True},
            "target column 'species' is not in",
        ),
        "labels length mismatch": (
            {"spec": "z.npy", "labels": "short.npy"},
            "have 60 rows but labels file",
        ),
        "non-numeric table features": (
            {"spec": "text.parquet", "embeddings": True},
            "feature column(s) ['colour']",
        ),
        "non-numeric array": ({"spec": "text.npy", "labels": "y.npy"}, "must be numeric"),
        "NaN": ({"spec": "nan.npy", "labels": "y.npy"}, "NaN or inf in 1 row(s) (first rows: [7])"),
        "1-D features": ({"spec": "flat.npy", "labels": "y.npy"}, "must be 2-D"),
        "missing file": ({"spec": "gone.npy", "labels": "y.npy"}, "gone.npy' does not exist"),
        "missing labels file": ({"spec": "z.npy", "labels": "nope.npy"}, "nope.npy' does not"),
        "no labels": ({"spec": "z.npy"}, "--labels labels.npy"),
        "duplicate ids": ({"spec": "dupe.parquet", "embeddings": True}, "must be unique"),
        "float ids": ({"spec": "float_ids.parquet", "embeddings": True}, "must be integers"),
        "npz without features": (
            {"spec": "nofeat.npz"},
            "holds no array named features or embeddings or X",
        ),
        "labels with a table": ({"spec": "ok.parquet", "labels": "y.npy"}, "labels= goes with"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing target column", "labels length mismatch", "non-numeric table features",
        "non-numeric array", "NaN", "1-D features", "missing file", "missing labels file",
        "no labels", "duplicate ids", "float ids", "npz without features", "labels with a table",
    ],
)  # fmt: skip
def test_bad_feature_files_get_one_clear_line(tmp_path: Path, case: str) -> None:
    kwargs, needle = _bad_files(tmp_path)[case]
    kwargs = dict(kwargs)
    spec = tmp_path / str(kwargs.pop("spec"))
    if "labels" in kwargs:
        kwargs["labels"] = str(tmp_path / str(kwargs["labels"]))
    with pytest.raises(AlfavizInputError) as info:
        load_dataset(spec, **kwargs)
    message = str(info.value)
    assert needle in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("Z", "y", "kwargs", "needle"),
    [
        (np.zeros(5), [0, 1, 0, 1, 0], {}, "must be 2-D"),
        (np.zeros((4, 2)), [0, 1, 0], {}, "have 4 rows but y holds 3 labels"),
        (np.array([["a", "b"]] * 4), [0, 1, 0, 1], {}, "must be numeric"),
        (np.full((4, 2), np.inf), [0, 1, 0, 1], {}, "NaN or inf"),
        (np.zeros((4, 2)), [0, 1, 0, 1], {"ids": [1, 1, 2, 3]}, "must be unique"),
        (np.zeros((4, 2)), [0, 1, 0, 1], {"ids": [1, 2]}, "one id per sample"),
        (np.zeros((4, 2)), [0, 1, 0, 1], {"ids": ["a", "b", "c", "d"]}, "must be integers"),
        (np.zeros((0, 2)), [], {}, "empty"),
    ],
)
def test_from_embeddings_refuses_bad_arrays(
    Z: np.ndarray, y: list[int], kwargs: dict[str, object], needle: str
) -> None:
    with pytest.raises(AlfavizInputError) as info:
        from_embeddings(Z, y, **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)
