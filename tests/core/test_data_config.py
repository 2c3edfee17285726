"""Reopening data from a run's config: allow-lists, no downloads, no unpickling, fingerprints."""

from __future__ import annotations

import ast
import json
import pickle
import re
import socket
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import alfaviz.data
from alfaviz.data import (
    CONFIG_OPTIONS,
    DataSource,
    check_fingerprint,
    data_config,
    load_dataset,
    load_dataset_from_config,
    load_digits,
    load_torchvision,
)
from alfaviz.errors import AlfavizInputError, RunStoreError

# ---------------------------------------------------------------------------------------------
# hostile files: unpickling any of them creates a marker file
# ---------------------------------------------------------------------------------------------


class _Evil:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def evil_bytes(marker: Path) -> bytes:
    return pickle.dumps(_Evil(marker))


def test_the_hostile_payload_really_runs_code(tmp_path: Path) -> None:
    """The control: a plain ``pickle.loads`` of the payload creates the marker."""
    marker = tmp_path / "ran"
    pickle.loads(evil_bytes(marker))
    assert marker.exists()


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 | arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    path.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def write_mnist(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def _hostile_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Pickled payloads under every name a loader might be tempted to unpickle."""
    payload = evil_bytes(marker)
    files = {}
    for name in ("evil.pkl", "evil.pickle", "evil.csv", "evil.parquet", "evil.txt.gz"):
        files[name] = tmp_path / name
        files[name].write_bytes(payload)
    files["evil.npy"] = tmp_path / "evil.npy"
    np.save(files["evil.npy"], np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    files["evil.npz"] = tmp_path / "evil.npz"
    np.savez(files["evil.npz"], x=np.array([_Evil(marker)], dtype=object))
    files["evil.pt"] = tmp_path / "evil.pt"
    torch.save(_Evil(marker), files["evil.pt"])
    return files


@pytest.mark.parametrize(
    "name",
    [
        "evil.pkl",
        "evil.pickle",
        "evil.npy",
        "evil.npz",
        "evil.pt",
        "evil.csv",
        "evil.parquet",
        "evil.txt.gz",
    ],
)
def test_hostile_config_pointing_at_a_pickle_runs_no_code(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    files = _hostile_files(tmp_path, marker)
    config = json.loads(json.dumps({"spec": str(files[name]), "kwargs": {}}))  # as from disk
    with pytest.raises(AlfavizInputError) as info:
        load_dataset_from_config(config)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"unknown dataset|could not read|is empty|not a table", message), message
    assert not marker.exists(), "a loader unpickled the hostile file"


def _hostile_cifar(root: Path, marker: Path) -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for f in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (d / f).write_bytes(evil_bytes(marker))


def test_hostile_cifar_files_are_never_unpickled_from_a_config(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _hostile_cifar(tmp_path / "tv", marker)
    config = {"spec": "cifar10", "kwargs": {"root": str(tmp_path / "tv")}}
    with pytest.raises(AlfavizInputError, match=r"data_batch_1.*does not match the official"):
        load_dataset_from_config(config)
    assert not marker.exists()
    # asking for the checks off from the config is refused before any file is opened
    config["kwargs"]["verify"] = False
    with pytest.raises(AlfavizInputError, match=r"verify=False is never honoured"):
        load_dataset_from_config(config)
    assert not marker.exists()


def test_cifar_reader_refuses_code_even_with_verify_off(tmp_path: Path) -> None:
    """In Python, verify=False skips the md5 checks, but the unpickler still builds only arrays."""
    marker = tmp_path / "ran"
    _hostile_cifar(tmp_path, marker)
    with pytest.raises(AlfavizInputError, match=r"asks to run code.*refused"):
        load_torchvision("cifar10", tmp_path, verify=False)
    assert not marker.exists()


def test_hostile_legacy_mnist_cache_is_not_executed(tmp_path: Path) -> None:
    """torchvision reads a legacy ``processed/*.pt`` cache with ``weights_only=True``."""
    marker = tmp_path / "ran"
    write_mnist(tmp_path)
    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir()
    for f in ("training.pt", "test.pt"):
        torch.save(_Evil(marker), processed / f)
    with pytest.raises(AlfavizInputError, match=r"MNIST files under .* could not be read"):
        load_dataset_from_config({"spec": "mnist", "kwargs": {"root": str(tmp_path)}})
    assert not marker.exists()


def test_hostile_image_folder_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (4, 4), color=i).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "b" / "evil.png").write_bytes(evil_bytes(marker))
    with pytest.raises(AlfavizInputError, match=r"evil\.png.*not an image in a supported format"):
        load_dataset_from_config({"spec": str(tmp_path / "imgs"), "kwargs": {}})
    assert not marker.exists()


def test_data_package_calls_no_unpickling_reader() -> None:
    """No module of alfaviz.data calls a reader that can unpickle. The CIFAR reader's one
    ``pickle.Unpickler`` subclass must override ``find_class``."""
    forbidden = {
        ("pickle", "load"),
        ("pickle", "loads"),
        ("torch", "load"),
        ("np", "load"),
        ("numpy", "load"),
        ("pd", "read_pickle"),
        ("pandas", "read_pickle"),
        ("joblib", "load"),
    }
    package = Path(alfaviz.data.__file__).parent
    unpicklers = []
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                    assert (f.value.id, f.attr) not in forbidden, f"{path.name}:{node.lineno}"
                for kw in node.keywords:
                    assert kw.arg != "allow_pickle", f"{path.name}:{node.lineno}"
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Attribute) and b.attr == "Unpickler" for b in node.bases
            ):
                methods = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
                assert "find_class" in methods, f"{path.name}: {node.name} must restrict globals"
                unpicklers.append(node.name)
            if isinstance(node, ast.Attribute) and node.attr == "Unpickler":
                assert path.name == "_torchvision.py", f"{path.name}:{node.lineno}"
    assert unpicklers == ["_ArrayUnpickler"]


# ---------------------------------------------------------------------------------------------
# nothing is downloaded
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to download or open a socket is recorded and fails."""
    import torchvision.datasets.utils as tvu

    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append(str(args[:1]))
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(tvu, "download_url", refuse)
    monkeypatch.setattr(tvu, "download_and_extract_archive", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


@pytest.mark.parametrize("spec", ["mnist", "fashionmnist", "cifar10", "cifar100", "svhn"])
def test_reopening_missing_torchvision_data_never_downloads(
    tmp_path: Path, no_network: list[str], spec: str
) -> None:
    with pytest.raises(AlfavizInputError, match=r"was not found under root"):
        load_dataset_from_config({"spec": spec, "kwargs": {"root": str(tmp_path)}})
    with pytest.raises(AlfavizInputError, match=r"download=True is never honoured"):
        load_dataset_from_config(
            {"spec": spec, "kwargs": {"root": str(tmp_path), "download": True}}
        )
    assert no_network == []
    assert list(tmp_path.iterdir()) == []  # nothing was written either


# ---------------------------------------------------------------------------------------------
# the allow-lists
# ---------------------------------------------------------------------------------------------


def test_allow_lists_name_the_refused_key(tmp_path: Path) -> None:
    assert set(CONFIG_OPTIONS) == {"digits", "torchvision", "image_folder", "table"}
    for kind, options in CONFIG_OPTIONS.items():
        assert "download" not in options or kind == "torchvision"
        assert not {"allow_pickle", "weights_only", "check_integrity", "transform"} & set(options)
    with pytest.raises(AlfavizInputError, match=r"data option 'allow_pickle' is not allowed"):
        load_dataset_from_config({"spec": "digits", "kwargs": {"allow_pickle": True}})
    with pytest.raises(AlfavizInputError, match=r"'root' is not allowed for the digits source"):
        load_dataset_from_config({"spec": "digits", "kwargs": {"root": "/tmp"}})
    with pytest.raises(AlfavizInputError, match=r"'seed' of a digits source must be an integer"):
        load_dataset_from_config({"spec": "digits", "kwargs": {"seed": "3"}})
    with pytest.raises(AlfavizInputError, match=r"unknown key\(s\) \['loader'\]"):
        load_dataset_from_config({"spec": "digits", "loader": "pickle"})
    with pytest.raises(AlfavizInputError, match="given in memory"):
        load_dataset_from_config({"spec": None, "summary": {}})
    with pytest.raises(AlfavizInputError, match="kwargs must be a mapping"):
        load_dataset_from_config({"spec": "digits", "kwargs": ["seed", 1]})
    pd.DataFrame({"a": [1.0, 2.0] * 4, "y": [0, 1] * 4}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(AlfavizInputError, match=r"'sep' is not allowed for the table source"):
        load_dataset_from_config({"spec": str(tmp_path / "t.csv"), "kwargs": {"sep": ";"}})


def test_data_config_records_only_what_reopens_safely(tmp_path: Path) -> None:
    config = data_config("digits", {"seed": 2, "download": True, "root": "ignored"})
    assert config == {"spec": "digits", "kwargs": {"seed": 2}}
    with pytest.raises(AlfavizInputError, match="verify=False is never honoured"):
        data_config("cifar10", {"root": str(tmp_path), "verify": False})
    with pytest.raises(AlfavizInputError, match="'transform' is not allowed"):
        data_config("mnist", {"transform": "x"})
    with pytest.raises(AlfavizInputError, match="dataset spec is empty"):
        data_config("  ")


# ---------------------------------------------------------------------------------------------
# round trips and fingerprints
# ---------------------------------------------------------------------------------------------


def _same(a: DataSource, b: DataSource) -> None:
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert torch.equal(a.inputs(a.sample_ids[:20]), b.inputs(b.sample_ids[:20]))


def test_fingerprint_is_small_json_and_tells_data_apart() -> None:
    src = load_digits(seed=0)
    fp = src.fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    assert len(json.dumps(fp)) < 1000
    assert fp["n_train"] == src.n_train
    assert fp["n_test"] == src.n_test
    assert fp["input_shape"] == [1, 8, 8]
    assert fp["class_names"] == list(src.class_names)
    assert fp["kind"] == "image"
    assert re.fullmatch(r"[0-9a-f]{64}", fp["ids_sha256"])
    assert load_digits(seed=0).fingerprint() == fp
    other = load_digits(seed=1).fingerprint()
    assert other["n_train"] == fp["n_train"]  # same sizes, another split:
    assert other["labels_sha256"] != fp["labels_sha256"]
    assert load_digits(test_size=0.3).fingerprint()["ids_sha256"] != fp["ids_sha256"]


def test_check_fingerprint_names_what_differs() -> None:
    src = load_digits()
    check_fingerprint(src, src.fingerprint())
    recorded = {**src.fingerprint(), "n_train": 10, "class_names": ["a", "b"]}
    with pytest.raises(RunStoreError, match=r"class_names .*n_train \(recorded 10, loaded 1347\)"):
        check_fingerprint(src, recorded, what="run runs/x")
    with pytest.raises(RunStoreError, match="not a dict"):
        check_fingerprint(src, ["n_train"])  # type: ignore[arg-type]


def test_digits_round_trip_with_fingerprint() -> None:
    src = load_dataset("digits", seed=4, test_size=0.3)
    config = json.loads(
        json.dumps(data_config("digits", {"seed": 4, "test_size": 0.3}, source=src))
    )
    _same(load_dataset_from_config(config), src)
    config["kwargs"]["seed"] = 5  # a config edited by hand no longer matches the fingerprint
    with pytest.raises(RunStoreError, match=r"labels_sha256"):
        load_dataset_from_config(config, what="run r1")


def test_mnist_round_trip(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    src = load_dataset("mnist", root=tmp_path, normalize=False)
    config = data_config("mnist", {"root": tmp_path, "normalize": False}, source=src)
    assert config["kwargs"] == {"root": str(tmp_path), "normalize": False}
    _same(load_dataset_from_config(json.loads(json.dumps(config))), src)


def test_image_folder_round_trip_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (5, 6), color=(i * 40, 0, 9)).save(
                tmp_path / "imgs" / cls / f"{i}.png"
            )
    monkeypatch.chdir(tmp_path)
    src = load_dataset("imgs", seed=1, image_size=[4, 4])
    config = json.loads(
        json.dumps(data_config("imgs", {"seed": 1, "image_size": (4, 4)}, source=src))
    )
    assert config["spec"] == str((tmp_path / "imgs").resolve())
    monkeypatch.chdir(Path(__file__).parent)
    _same(load_dataset_from_config(config), src)
    (tmp_path / "imgs" / "b" / "3.png").unlink()  # the data changed on disk
    with pytest.raises(RunStoreError, match=r"n_train"):
        load_dataset_from_config(config)


def test_table_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.linspace(0, 1, 20), "kind": ["u", "v"] * 10, "y": [0, 1, 2, 3] * 5})
    df.to_csv(tmp_path / "t.csv", index=False)
    kwargs = {"target": "kind", "features": ("x", "y"), "seed": 3, "standardize": False}
    src = load_dataset(tmp_path / "t.csv", **kwargs)
    config = json.loads(json.dumps(data_config(tmp_path / "t.csv", kwargs, source=src)))
    assert config["kwargs"]["features"] == ["x", "y"]
    _same(load_dataset_from_config(config), src)
