"""Data sources: stable ids, shapes, class names, real file formats, and clear errors."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.datasets import load_digits as sk_digits
from torch.utils.data import DataLoader, TensorDataset

from alfaviz.data import (
    DataSource,
    from_arrays,
    from_csv,
    from_dataframe,
    from_image_folder,
    from_torch_dataset,
    load_dataset,
    load_digits,
    load_torchvision,
)
from alfaviz.errors import AlfavizInputError

# ---------------------------------------------------------------------------------------------
# helpers that write real file formats
# ---------------------------------------------------------------------------------------------


def _digits_28(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits upscaled 3x and padded to 28x28 uint8, with their labels."""
    bunch = sk_digits()
    imgs = (bunch.images[offset : offset + n] * 15).astype(np.uint8)
    big = np.kron(imgs, np.ones((1, 3, 3), dtype=np.uint8))  # (n, 24, 24)
    return np.pad(big, ((0, 0), (2, 2), (2, 2))), bunch.target[offset : offset + n].astype(np.uint8)


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">I", 0x0800 | arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_mnist(root: Path, folder: str = "MNIST", *, gz: bool = False) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    x_tr, y_tr = _digits_28(120)
    x_te, y_te = _digits_28(40, offset=500)
    files = {
        "train-images-idx3-ubyte": x_tr,
        "train-labels-idx1-ubyte": y_tr,
        "t10k-images-idx3-ubyte": x_te,
        "t10k-labels-idx1-ubyte": y_te,
    }
    for fname, arr in files.items():
        data = _idx_bytes(arr)
        if gz:
            with gzip.open(raw / (fname + ".gz"), "wb") as f:
                f.write(data)
        else:
            (raw / fname).write_bytes(data)
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


def write_cifar(root: Path, *, hundred: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n_classes = 5 if hundred else 10
    x_tr = rng.integers(0, 256, size=(50, 3, 32, 32), dtype=np.uint8)
    y_tr = np.arange(50) % n_classes
    x_te = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
    y_te = np.arange(20) % n_classes

    def dump(path: Path, obj: dict) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    if hundred:
        d = root / "cifar-100-python"
        d.mkdir(parents=True)
        dump(d / "train", {"data": x_tr.reshape(50, -1), "fine_labels": y_tr.tolist()})
        dump(d / "test", {"data": x_te.reshape(20, -1), "fine_labels": y_te.tolist()})
        names = [f"fine{i}" for i in range(100)]
        dump(d / "meta", {"fine_label_names": names})
    else:
        d = root / "cifar-10-batches-py"
        d.mkdir(parents=True)
        for b in range(5):
            sl = slice(10 * b, 10 * (b + 1))
            dump(
                d / f"data_batch_{b + 1}",
                {"data": x_tr[sl].reshape(10, -1), "labels": y_tr[sl].tolist()},
            )
        dump(d / "test_batch", {"data": x_te.reshape(20, -1), "labels": y_te.tolist()})
        names = ["airplane", "automobile", "bird", "cat", "deer"]
        names += ["dog", "frog", "horse", "ship", "truck"]
        dump(d / "batches.meta", {"label_names": names})
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, "names": names}


def write_svhn(root: Path) -> dict[str, np.ndarray]:
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", 30), ("test", 10)):
        x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        y = np.arange(n) % 10
        mat_y = np.where(y == 0, 10, y).astype(np.uint8)[:, None]  # SVHN stores 0 as 10
        savemat(root / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": mat_y})
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def write_folder(
    root: Path,
    classes: dict[str, int],
    size: tuple[int, int] = (10, 12),
    mode: str = "RGB",
    seed: int = 0,
) -> None:
    rng = np.random.default_rng(seed)
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = size + ((3,) if mode == "RGB" else ())
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / cls / f"{i}.png")


def check_ids(src: DataSource) -> None:
    """The id contract every source keeps."""
    assert src.train_ids.dtype == np.int64
    assert src.test_ids.dtype == np.int64
    np.testing.assert_array_equal(src.train_ids, np.arange(src.n_train))
    np.testing.assert_array_equal(src.test_ids, np.arange(src.n_train, src.n_samples))
    assert len(src.y_train) == src.n_train == len(src.train)
    assert len(src.y_test) == src.n_test == len(src.test)
    assert src.n_classes == len(src.class_names)
    assert set(np.unique(src.y_test)) <= set(np.unique(src.y_train))
    x, y = src.train[0]
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == src.input_shape
    assert isinstance(y, int)
    assert y == src.y_train[0]


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


def test_digits_shapes_ids_and_range() -> None:
    src = load_digits()
    check_ids(src)
    assert src.name == "digits"
    assert src.kind == "image"
    assert src.input_shape == (1, 8, 8)
    assert src.n_classes == 10
    assert src.class_names == tuple(str(d) for d in range(10))
    assert (src.n_train, src.n_test) == (1347, 450)
    assert src.x_train.shape == (1347, 1, 8, 8)
    assert src.x_test.shape == (450, 1, 8, 8)
    assert float(src.x_train.min()) == 0.0
    assert float(src.x_train.max()) == 1.0
    # stratified: every class in both splits, in proportion
    counts = np.bincount(src.y_test, minlength=10)
    assert counts.min() >= 40


def test_digits_split_is_stable_and_seeded() -> None:
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)
    # the split is a partition of sklearn's rows: every image appears exactly once
    everything = torch.cat([a.x_train, a.x_test]).reshape(a.n_samples, -1)
    sk = torch.as_tensor(sk_digits().images / 16.0, dtype=torch.float32).reshape(a.n_samples, -1)
    assert sorted(map(tuple, everything.tolist())) == sorted(map(tuple, sk.tolist()))


def test_id_lookups_across_splits() -> None:
    src = load_digits()
    ids = np.array([5, src.n_train + 3, 0, src.n_samples - 1])
    np.testing.assert_array_equal(
        src.labels(ids), [src.y_train[5], src.y_test[3], src.y_train[0], src.y_test[-1]]
    )
    np.testing.assert_array_equal(src.is_test(ids), [False, True, False, True])
    x = src.inputs(ids)
    assert torch.equal(x[0], src.x_train[5])
    assert torch.equal(x[1], src.x_test[3])
    imgs = src.images(ids)
    assert imgs.dtype == np.uint8
    assert imgs.shape == (4, 8, 8)
    np.testing.assert_allclose(imgs[1] / 255.0, src.x_test[3, 0].numpy(), atol=1 / 255)
    assert src.images([]).shape == (0, 8, 8)
    assert src.inputs([]).shape == (0, 1, 8, 8)
    with pytest.raises(AlfavizInputError, match=r"out of range.*ids 0\.\.1796"):
        src.labels([src.n_samples])
    with pytest.raises(AlfavizInputError, match="integers"):
        src.labels([0.5])


def test_dataset_by_ids_feeds_a_dataloader() -> None:
    src = load_digits()
    ids = np.array([10, 3, src.n_train + 1])
    ds = src.dataset(ids, with_ids=True)
    assert len(ds) == 3
    x, y, sid = next(iter(DataLoader(ds, batch_size=3)))
    np.testing.assert_array_equal(sid.numpy(), ids)
    np.testing.assert_array_equal(y.numpy(), src.labels(ids))
    assert torch.equal(x, src.inputs(ids))


def test_source_is_frozen_and_read_only() -> None:
    src = load_digits()
    with pytest.raises(AttributeError):
        src.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        src.y_train[0] = 3
    summary = src.summary()
    assert summary["n_train"] == 1347
    assert summary["class_names"][0] == "0"
    assert json.loads(json.dumps(summary)) == summary


def test_source_pickles_for_dataloader_workers() -> None:
    src = load_digits()
    _ = src.x_train  # a cached tensor is not pickled
    copy = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(copy.y_test, src.y_test)
    assert torch.equal(copy.x_train, src.x_train)
    assert copy.meta == src.meta
    ds = pickle.loads(pickle.dumps(src.dataset([1, 2])))
    assert ds[1][1] == src.labels([2])[0]


# ---------------------------------------------------------------------------------------------
# torchvision formats, written for real
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "folder"), [("mnist", "MNIST"), ("FashionMNIST", "FashionMNIST")])
def test_mnist_idx_files_load_through_torchvision(tmp_path: Path, spec: str, folder: str) -> None:
    written = write_mnist(tmp_path, folder)
    src = load_torchvision(spec, tmp_path)
    check_ids(src)
    assert src.name == folder
    assert src.input_shape == (1, 28, 28)
    assert (src.n_train, src.n_test) == (120, 40)
    np.testing.assert_array_equal(src.y_train, written["y_train"])
    np.testing.assert_array_equal(src.y_test, written["y_test"])
    np.testing.assert_array_equal(src.images(src.test_ids), written["x_test"])
    # normalised with MNIST-style statistics: (u8 / 255 - mean) / std
    mean, std = src.meta["mean"][0], src.meta["std"][0]
    expected = (torch.as_tensor(written["x_train"][:3]).float() / 255 - mean) / std
    torch.testing.assert_close(src.inputs([0, 1, 2])[:, 0], expected)
    if folder == "MNIST":
        assert src.class_names[:3] == ("0", "1", "2")
    else:
        assert src.class_names[0] == "T-shirt/top"


def test_mnist_gz_only_files_are_decompressed(tmp_path: Path) -> None:
    written = write_mnist(tmp_path, gz=True)
    src = load_dataset("MNIST", root=tmp_path, normalize=False)
    np.testing.assert_array_equal(src.y_train, written["y_train"])
    assert float(src.x_test.max()) <= 1.0
    assert (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def test_missing_torchvision_files_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(AlfavizInputError, match=r"MNIST/raw/train-images-idx3-ubyte") as info:
        load_torchvision("mnist", tmp_path)
    message = str(info.value)
    assert "download=True" in message
    assert "copy" in message
    assert ".gz" in message
    with pytest.raises(AlfavizInputError, match=r"cifar-10-batches-py/data_batch_1"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(AlfavizInputError, match=r"train_32x32\.mat"):
        load_torchvision("SVHN", tmp_path)
    with pytest.raises(AlfavizInputError, match="choose one of"):
        load_torchvision("imagenet", tmp_path)


def test_cifar10_batches_load_through_torchvision(tmp_path: Path) -> None:
    written = write_cifar(tmp_path)
    # the fixture's md5 sums differ from the official release: refused with a clear hint...
    with pytest.raises(AlfavizInputError, match="verify=False"):
        load_torchvision("cifar10", tmp_path)
    # ...and loaded with the checks off
    src = load_torchvision("CIFAR10", tmp_path, verify=False)
    check_ids(src)
    assert src.input_shape == (3, 32, 32)
    assert src.class_names == tuple(written["names"])
    np.testing.assert_array_equal(src.y_train, written["y_train"])
    imgs = src.images([0, src.n_train])
    assert imgs.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(imgs[0], written["x_train"][0].transpose(1, 2, 0))
    np.testing.assert_array_equal(imgs[1], written["x_test"][0].transpose(1, 2, 0))
    x = src.inputs([0])[0]
    expected = (torch.as_tensor(written["x_train"][0]).float() / 255 - 0.4914) / 0.2470
    torch.testing.assert_close(x[0], expected[0], atol=1e-5, rtol=1e-5)


def test_cifar100_and_svhn_formats(tmp_path: Path) -> None:
    written = write_cifar(tmp_path / "c100", hundred=True)
    src = load_torchvision("cifar100", tmp_path / "c100", verify=False)
    assert src.n_classes == 100
    assert src.class_names[4] == "fine4"
    np.testing.assert_array_equal(src.y_test, written["y_test"])

    svhn = write_svhn(tmp_path / "svhn")
    src = load_torchvision("svhn", tmp_path / "svhn", verify=False)
    check_ids(src)
    np.testing.assert_array_equal(src.y_train, svhn["y_train"])  # label 10 -> 0
    np.testing.assert_array_equal(src.images([0]), svhn["x_train"][:1])


# ---------------------------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------------------------


def test_image_folder_split_and_classes(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs", {"dog": 4, "cat": 4, "eel": 4})
    src = from_image_folder(tmp_path / "imgs", test_size=0.25, seed=0)
    check_ids(src)
    assert src.class_names == ("cat", "dog", "eel")
    assert src.input_shape == (3, 10, 12)
    assert (src.n_train, src.n_test) == (9, 3)
    assert sorted(src.y_test.tolist()) == [0, 1, 2]
    imgs = src.images(src.sample_ids)
    assert imgs.shape == (12, 10, 12, 3)
    torch.testing.assert_close(
        src.inputs([0])[0], torch.as_tensor(imgs[0]).permute(2, 0, 1).float() / 255
    )
    again = from_image_folder(tmp_path / "imgs", test_size=0.25, seed=0)
    np.testing.assert_array_equal(again.images(again.sample_ids), imgs)


def test_image_folder_test_root_resize_and_grey(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", {"a": 3, "b": 3}, size=(9, 9), mode="L")
    write_folder(tmp_path / "test", {"a": 1, "b": 2}, size=(9, 9), mode="L", seed=1)
    src = load_dataset(tmp_path, image_size=6)  # train/ and test/ are found automatically
    assert src.input_shape == (1, 6, 6)
    assert (src.n_train, src.n_test) == (6, 3)
    assert src.name == tmp_path.name
    assert src.images(src.test_ids).shape == (3, 6, 6)
    np.testing.assert_array_equal(src.y_test, [0, 1, 1])


def test_image_folder_errors(tmp_path: Path) -> None:
    write_folder(tmp_path / "m2", {"a": 2, "b": 2}, size=(8, 8))
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "m2" / "b" / "odd.png")
    with pytest.raises(AlfavizInputError, match=r"different sizes.*image_size"):
        from_image_folder(tmp_path / "m2")
    write_folder(tmp_path / "tr", {"a": 3, "b": 3})
    write_folder(tmp_path / "te", {"a": 1, "c": 1})
    with pytest.raises(AlfavizInputError, match=r"\['c'\].*lacks"):
        from_image_folder(tmp_path / "tr", test_root=tmp_path / "te")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlfavizInputError, match="one sub-folder per class"):
        from_image_folder(tmp_path / "empty")
    write_folder(tmp_path / "one", {"only": 4})
    with pytest.raises(AlfavizInputError, match="single class"):
        from_image_folder(tmp_path / "one")


# ---------------------------------------------------------------------------------------------
# tabular
# ---------------------------------------------------------------------------------------------


def test_from_arrays_maps_string_labels_and_standardises() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(40, 3))
    X[:, 2] = 7.0  # a constant feature keeps std 1
    y = np.array(["spam", "ham", "eggs", "ham"] * 10)
    src = from_arrays(X, y, seed=0)
    check_ids(src)
    assert src.kind == "tabular"
    assert src.class_names == ("eggs", "ham", "spam")
    assert src.input_shape == (3,)
    assert src.images([0]) is None
    # labels keep their meaning: class_names[y] gives back the original strings
    everything = np.concatenate([src.y_train, src.y_test])
    assert sorted(np.array(src.class_names)[everything].tolist()) == sorted(y.tolist())
    torch.testing.assert_close(src.x_train.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(src.x_train[:, :2].std(0, unbiased=False), torch.ones(2))
    assert torch.all(src.x_test[:, 2] == 0)
    raw = from_arrays(X, y, standardize=False)
    assert float(raw.x_train[:, 2].max()) == 7.0


def test_from_arrays_integer_labels_and_class_names() -> None:
    X = np.arange(24, dtype=float).reshape(12, 2)
    src = from_arrays(X, np.array([1, 2, 3] * 4))  # 1-based labels -> ids 0..2
    assert src.class_names == ("1", "2", "3")
    named = from_arrays(X, np.array([0, 1, 2] * 4), class_names=["a", "b", "c"])
    assert named.class_names == ("a", "b", "c")
    with pytest.raises(AlfavizInputError, match="class_names has 2 entries"):
        from_arrays(X, np.array([0, 1, 2] * 4), class_names=["a", "b"])


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((5, 2)), np.zeros(4), "5 rows but y has 4"),
        (np.zeros((0, 2)), np.zeros(0), "empty"),
        (np.ones((6, 2)), np.array([3] * 6), "single class"),
        (
            np.array([[1.0, np.nan]] + [[0.0, 1.0]] * 7),
            np.array([0, 1] * 4),
            r"NaN.*first rows: \[0\]",
        ),
        (np.ones((6, 2)), np.array([0.5, 1.0] * 3), "regression"),
        (np.ones((6, 2)), np.array([0, 1, np.nan] * 2), "missing"),
        (np.array([["a", "b"]] * 6), np.array([0, 1] * 3), "numeric"),
    ],
)
def test_from_arrays_bad_data(X: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(AlfavizInputError, match=match):
        from_arrays(X, y)


def test_bad_test_size() -> None:
    with pytest.raises(AlfavizInputError, match="test_size"):
        load_digits(test_size=1.5)
    with pytest.raises(AlfavizInputError, match="test split is empty"):
        from_arrays(np.ones((4, 1)), np.array([0, 1, 0, 1]), test_size=0.1)


def test_from_arrays_images() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(20, 3, 16, 16), dtype=np.uint8)
    src = from_arrays(X, np.arange(20) % 2)
    assert src.kind == "image"
    assert src.input_shape == (3, 16, 16)
    assert src.images([0]).shape == (1, 16, 16, 3)


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=6, max_size=60),
    test_size=st.floats(0.1, 0.6),
    seed=st.integers(0, 2**16),
)
def test_split_partitions_rows_and_keeps_classes_in_pool(
    labels: list[int], test_size: float, seed: int
) -> None:
    y = np.array(labels)
    if len(np.unique(y)) < 2:
        return
    X = np.arange(len(y), dtype=float)[:, None]  # the feature is the row number
    try:
        src = from_arrays(X, y, test_size=test_size, seed=seed, standardize=False)
    except AlfavizInputError as exc:
        message = str(exc)
    else:
        message = ""
    if message:  # tiny classes can leave no test rows: that is the only allowed failure
        assert "test split is empty" in message
        return
    rows = np.concatenate([src.x_train[:, 0].numpy(), src.x_test[:, 0].numpy()]).astype(int)
    assert sorted(rows.tolist()) == list(range(len(y)))
    assert set(src.y_test.tolist()) <= set(src.y_train.tolist())
    again = from_arrays(X, y, test_size=test_size, seed=seed, standardize=False)
    assert torch.equal(src.x_test, again.x_test)


def test_from_dataframe_targets_and_categoricals(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "size": np.linspace(0, 1, 24),
            "colour": ["red", "green", None] * 8,
            "flag": [True, False] * 12,
            "species": ["setosa", "virginica", "versicolor"] * 8,
        }
    )
    src = from_dataframe(df)  # target: last column
    check_ids(src)
    assert src.class_names == ("setosa", "versicolor", "virginica")
    assert src.meta["feature_names"] == ["size", "flag", "colour_green", "colour_red", "colour_nan"]
    assert src.input_shape == (5,)
    with pytest.raises(AlfavizInputError, match=r"\['colour'\] are not numeric"):
        from_dataframe(df, categorical="error")
    with pytest.raises(AlfavizInputError, match="target column 'kind' is not in the frame"):
        from_dataframe(df, target="kind")
    with pytest.raises(AlfavizInputError, match="8 missing label"):
        from_dataframe(df, target="colour", features=["size"])
    df.to_csv(tmp_path / "iris.csv", index=False)
    by_path = load_dataset(str(tmp_path / "iris.csv"), target="species")
    assert by_path.name == "iris"
    assert by_path.class_names == src.class_names
    np.testing.assert_array_equal(by_path.y_train, src.y_train)


def test_from_dataframe_bad_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    with pytest.raises(AlfavizInputError, match=r"\['a'\] contain NaN"):
        from_dataframe(df)
    with pytest.raises(AlfavizInputError, match="missing label"):
        from_dataframe(pd.DataFrame({"a": [1, 2, 3], "y": ["x", None, "z"]}), target="y")
    with pytest.raises(AlfavizInputError, match="does not exist"):
        from_csv(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------
# a user's torch dataset
# ---------------------------------------------------------------------------------------------


def test_from_torch_dataset_split_and_given_test() -> None:
    x = torch.randn(30, 1, 6, 6)
    y = torch.arange(30) % 3
    src = from_torch_dataset(TensorDataset(x, y), class_names=["a", "b", "c"])
    check_ids(src)
    assert src.kind == "image"
    assert src.class_names == ("a", "b", "c")
    assert src.images([0, 29]).shape == (2, 6, 6)
    # the rows are the user's rows: features and labels stay paired
    for i in range(src.n_samples):
        row = int(torch.nonzero((x == src.inputs([i])[0]).flatten(1).all(1))[0])
        assert int(y[row]) == src.labels([i])[0]
    tab = from_torch_dataset(
        TensorDataset(torch.randn(8, 4), torch.tensor([0, 1] * 4)),
        TensorDataset(torch.randn(4, 4), torch.tensor([1, 0, 1, 0])),
    )
    assert tab.kind == "tabular"
    assert (tab.n_train, tab.n_test) == (8, 4)
    assert tab.class_names == ("0", "1")


def test_from_torch_dataset_errors() -> None:
    train = TensorDataset(torch.randn(8, 4), torch.tensor([0, 1] * 4))
    test = TensorDataset(torch.randn(4, 4), torch.tensor([0, 1, 2, 2]))
    with pytest.raises(AlfavizInputError, match=r"class\(es\) \['2'\] that never occur"):
        from_torch_dataset(train, test)
    with pytest.raises(AlfavizInputError, match="ToTensor"):
        from_torch_dataset([(Image.new("L", (4, 4)), 0)] * 4)
    bad = torch.randn(8, 4)
    bad[3, 1] = float("nan")
    with pytest.raises(AlfavizInputError, match="item 3 contains NaN"):
        from_torch_dataset(TensorDataset(bad, torch.tensor([0, 1] * 4)))
    with pytest.raises(AlfavizInputError, match="empty"):
        from_torch_dataset(TensorDataset(torch.empty(0, 3), torch.empty(0)))


# ---------------------------------------------------------------------------------------------
# dispatcher
# ---------------------------------------------------------------------------------------------


def test_load_dataset_dispatch_and_errors(tmp_path: Path) -> None:
    assert load_dataset().name == "digits"
    assert load_dataset("Digits", seed=3).meta["seed"] == 3
    with pytest.raises(AlfavizInputError, match="load_digits accepts"):
        load_dataset("digits", target="x")
    with pytest.raises(AlfavizInputError, match=r"unknown dataset 'imagenet'.*digits.*mnist"):
        load_dataset("imagenet")
    with pytest.raises(AlfavizInputError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.csv"))


def test_cifar_batches_pickled_by_python2_numpy_1_load(tmp_path: Path) -> None:
    """The official batches are protocol-2 pickles naming ``numpy.core.multiarray``; the
    restricted unpickler resolves that name without importing anything."""
    written = write_cifar(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    for f in d.iterdir():
        obj = pickle.loads(f.read_bytes())
        data = pickle.dumps(obj, protocol=2).replace(
            b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"
        )
        assert b"numpy.core.multiarray\n_reconstruct" in data or f.name == "batches.meta"
        f.write_bytes(data)
    src = load_torchvision("cifar10", tmp_path, verify=False)
    np.testing.assert_array_equal(src.y_test, written["y_test"])
    np.testing.assert_array_equal(src.images([0])[0], written["x_train"][0].transpose(1, 2, 0))


def test_image_folder_keeps_imagefolder_order_and_finds_nested_files(tmp_path: Path) -> None:
    """Ids stay those of torchvision's ImageFolder: same classes, same files, same order."""
    from torchvision.datasets import ImageFolder

    from alfaviz.data._images import _scan_folder

    for cls in ("b", "a", "C"):
        for sub in ("", "z", "y/x"):
            write_folder(tmp_path / "t" / cls / sub, {"": 0})
            for i, suffix in ((3, ".png"), (1, ".png"), (2, ".PNG")):
                Image.new("RGB", (5, 4)).save(tmp_path / "t" / cls / sub / f"{i}{suffix}")
            (tmp_path / "t" / cls / sub / "notes.txt").write_text("not an image")
    folder = ImageFolder(str(tmp_path / "t"))
    src = from_image_folder(tmp_path / "t", test_size=0.3, seed=2)
    assert src.class_names == tuple(folder.classes)
    assert _scan_folder(tmp_path / "t", "root") == (folder.classes, folder.samples)
    assert src.n_samples == len(folder.samples) == 27
