"""Every bad input to a data loader gets one clear line from AlfavizInputError, at the boundary.

Each row of ``BAD_INPUTS`` is ``(case, make, match)``: ``make(tmp_path)`` calls a loader with one
bad argument (writing any files it needs under ``tmp_path``), and the error must be an
:class:`~alfaviz.errors.AlfavizInputError` whose single line matches ``match``: it names the
argument and says how to fix it, never a NumPy, pandas, torch or Pillow message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from alfaviz.data import (
    from_arrays,
    from_csv,
    from_dataframe,
    from_image_folder,
    from_torch_dataset,
    load_dataset,
    load_dataset_from_config,
    load_digits,
    load_torchvision,
)
from alfaviz.errors import AlfavizInputError

Make = Callable[[Path], Any]

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(20, 3))
Y = np.arange(20) % 2


def _with(x: np.ndarray, pos: tuple[int, int], value: float) -> np.ndarray:
    out = x.copy()
    out[pos] = value
    return out


def _df(**columns: Any) -> pd.DataFrame:
    base: dict[str, Any] = {"a": np.linspace(0, 1, 8), "y": [0, 1] * 4}
    return pd.DataFrame({**base, **columns})


def _folder(tmp: Path, n: int = 3, size: tuple[int, int] = (8, 8)) -> Path:
    """A small image folder of PNG and JPEG files: root/{a,b}/..."""
    root = tmp / "imgs"
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
            Image.fromarray(pixels).save(root / cls / f"{i}.jpg", quality=90)
    return root


def _truncated(tmp: Path, name: str) -> Path:
    root = _folder(tmp, size=(32, 32))
    path = root / "b" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return root


def _flat_folder(tmp: Path) -> Path:
    """Images directly in the folder, with no class sub-folders."""
    root = tmp / "flat"
    root.mkdir()
    Image.new("L", (4, 4)).save(root / "1.png")
    return root


def _with_empty_class(tmp: Path) -> Path:
    root = _folder(tmp)
    (root / "c").mkdir()
    return root


def _file(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


BAD_INPUTS: list[tuple[str, Make, str]] = [
    # ---- dataset specs -----------------------------------------------------------------------
    ("spec_none", lambda t: load_dataset(None), r"dataset spec is None; pass a name"),
    ("spec_empty", lambda t: load_dataset(""), r"dataset spec is empty \(''\)"),
    ("spec_blank", lambda t: load_dataset(" \t "), r"dataset spec is empty"),
    ("spec_int", lambda t: load_dataset(5), r"dataset spec must be a string or a path; got int"),
    ("spec_bytes", lambda t: load_dataset(b"digits"), r"dataset spec must be a string"),
    ("spec_nul", lambda t: load_dataset("dig\x00its"), r"contains a NUL byte"),
    ("spec_unknown", lambda t: load_dataset("imagenet"), r"unknown dataset 'imagenet'.*digits"),
    (
        "spec_missing_file",
        lambda t: load_dataset(str(t / "nope.csv")),
        r"nope\.csv' does not exist",
    ),
    (
        "spec_pickle_file",
        lambda t: load_dataset(_file(t, "d.pkl", b"\x80\x04N.")),
        r"d\.pkl' is not a table: its name must end in \.csv",
    ),
    (
        "spec_unknown_option",
        lambda t: load_dataset("digits", target="y"),
        r"bad option for dataset 'digits'.*load_digits accepts \['seed', 'test_size'\]",
    ),
    # ---- seeds -------------------------------------------------------------------------------
    ("seed_negative", lambda t: load_digits(seed=-1), r"seed must lie in 0\.\.2\*\*63-1.*got -1"),
    ("seed_too_big", lambda t: load_digits(seed=2**63), r"seed must lie in 0\.\.2\*\*63-1"),
    ("seed_bool", lambda t: load_digits(seed=True), r"seed must be an integer.*got bool True"),
    ("seed_float", lambda t: from_arrays(X, Y, seed=1.0), r"seed must be an integer.*float 1\.0"),
    ("seed_str", lambda t: from_arrays(X, Y, seed="0"), r"seed must be an integer.*str '0'"),
    (
        "seed_numpy_negative",
        lambda t: from_arrays(X, Y, seed=np.int64(-5)),
        r"seed must lie in 0\.\.2\*\*63-1.*-5",
    ),
    (
        "seed_folder",
        lambda t: from_image_folder(_folder(t), seed=-2),
        r"seed must lie in 0\.\.2\*\*63-1",
    ),
    (
        "seed_torch_dataset",
        lambda t: from_torch_dataset(
            TensorDataset(torch.randn(8, 2), torch.arange(8) % 2), seed=None
        ),
        r"seed must be an integer.*NoneType",
    ),
    # ---- test_size ---------------------------------------------------------------------------
    ("test_size_zero", lambda t: load_digits(test_size=0), r"test_size must be a fraction.*got 0"),
    ("test_size_one", lambda t: from_arrays(X, Y, test_size=1.0), r"test_size .* got 1\.0"),
    ("test_size_negative", lambda t: from_arrays(X, Y, test_size=-0.1), r"test_size .* -0\.1"),
    ("test_size_nan", lambda t: from_arrays(X, Y, test_size=float("nan")), r"test_size .* nan"),
    ("test_size_str", lambda t: load_digits(test_size="0.2"), r"test_size .* got str '0\.2'"),
    ("test_size_bool", lambda t: load_digits(test_size=True), r"test_size .* got bool True"),
    (
        "test_size_folder",
        lambda t: from_image_folder(_folder(t), test_size=2),
        r"test_size must be a fraction",
    ),
    # ---- from_arrays: dtypes and shapes --------------------------------------------------------
    ("x_ragged_list", lambda t: from_arrays([[1.0, 2.0], [3.0]], [0, 1]), r"X is ragged"),
    (
        "x_list_with_none",
        lambda t: from_arrays([[1.0, None]] * 4, [0, 1, 0, 1]),
        r"X must be numeric; got dtype object",
    ),
    ("x_strings", lambda t: from_arrays([["a", "b"]] * 4, [0, 1] * 2), r"X must be numeric"),
    ("x_complex", lambda t: from_arrays(X.astype(complex), Y), r"X holds complex numbers"),
    (
        "x_complex_tensor",
        lambda t: from_arrays(torch.tensor(X, dtype=torch.complex64), Y),
        r"X holds complex numbers",
    ),
    (
        "x_float64_overflow",
        lambda t: from_arrays(_with(X, (3, 1), 1e300), Y),
        r"values beyond float32's range .*first rows: \[3\]",
    ),
    (
        "x_float16_nan",
        lambda t: from_arrays(_with(X, (7, 0), np.nan).astype(np.float16), Y),
        r"X contains NaN or inf in 1 row\(s\) \(first rows: \[7\]\)",
    ),
    (
        "x_bfloat16_inf",
        lambda t: from_arrays(torch.tensor(_with(X, (2, 2), np.inf), dtype=torch.bfloat16), Y),
        r"X contains NaN or inf .* \[2\]",
    ),
    ("x_1d", lambda t: from_arrays(np.ones(5), np.arange(5)), r"X must have shape \(n_samples"),
    (
        "x_channels_last",
        lambda t: from_arrays(np.zeros((4, 8, 8, 5), np.uint8), [0, 1] * 2),
        r"C = 1 or 3.*transpose",
    ),
    ("xy_lengths", lambda t: from_arrays(X, Y[:-1]), r"X has 20 rows but y has 19 labels"),
    ("y_scalar", lambda t: from_arrays(X, 3), r"y must be an array of labels"),
    ("y_one_hot", lambda t: from_arrays(X, np.eye(2)[Y]), r"y must be 1-D.*argmax"),
    ("y_lists", lambda t: from_arrays(X[:4], [[0], [1, 2], [0], [1]]), r"y .*(ragged|1-D|list)"),
    (
        "class_names_str",
        lambda t: from_arrays(X, Y, class_names="ab"),
        r"class_names must be a list",
    ),
    (
        "feature_names_length",
        lambda t: from_arrays(X, Y, feature_names=["a"]),
        r"feature_names has 1 names but X has shape \(20, 3\)",
    ),
    (
        "standardize_str",
        lambda t: from_arrays(X, Y, standardize="yes"),
        r"standardize must be True",
    ),
    ("name_empty", lambda t: from_arrays(X, Y, name=""), r"name must be a non-empty string"),
    # ---- DataFrames ----------------------------------------------------------------------------
    (
        "df_duplicate_columns",
        lambda t: from_dataframe(
            pd.DataFrame([[1.0, 2.0, 0], [3.0, 4.0, 1]] * 4, columns=["a", "a", "y"])
        ),
        r"duplicate column name\(s\) \['a'\]; rename them",
    ),
    (
        "df_list_feature",
        lambda t: from_dataframe(_df(emb=[[1.0, 2.0]] * 8), target="y"),
        r"feature column 'emb' holds list values \(first at row 0\).*tolist",
    ),
    (
        "df_array_feature",
        lambda t: from_dataframe(_df(emb=[np.zeros(3)] * 8), target="y"),
        r"feature column 'emb' holds ndarray values",
    ),
    (
        "df_list_target",
        lambda t: from_dataframe(_df(y=[[0], [1]] * 4)),
        r"target column 'y' holds list values",
    ),
    ("df_features_str", lambda t: from_dataframe(_df(), features="a"), r"features must be a list"),
    ("df_target_missing", lambda t: from_dataframe(_df(), target="kind"), r"'kind' is not in the"),
    ("df_empty", lambda t: from_dataframe(_df().iloc[:0]), r"df has no rows"),
    (
        "df_inf",
        lambda t: from_dataframe(_df(a=[1.0, np.inf] * 4)),
        r"feature column\(s\) \['a'\] contain inf",
    ),
    (
        "df_float32_overflow",
        lambda t: from_dataframe(_df(a=[1.0, 1e300] * 4)),
        r"\['a'\] contain inf or values beyond float32's range",
    ),
    (
        "df_complex",
        lambda t: from_dataframe(_df(a=np.ones(8) * 1j)),
        r"\['a'\] hold complex numbers",
    ),
    ("df_categorical", lambda t: from_dataframe(_df(), categorical="drop"), r"categorical must be"),
    (
        "df_not_frame",
        lambda t: from_dataframe({"a": [1]}),
        r"df must be a pandas DataFrame; got dict",
    ),
    # ---- image folders -------------------------------------------------------------------------
    (
        "image_truncated_png",
        lambda t: from_image_folder(_truncated(t, "1.png")),
        r"image file '.*/b/1\.png' is truncated or corrupt",
    ),
    (
        "image_truncated_jpeg",
        lambda t: load_dataset(_truncated(t, "2.jpg")),
        r"image file '.*/b/2\.jpg' is truncated or corrupt",
    ),
    (
        "image_not_an_image",
        lambda t: from_image_folder(_file(_folder(t) / "a", "x.png", b"not a png").parent.parent),
        r"image file '.*/a/x\.png' is not an image in a supported format",
    ),
    (
        "image_size_zero",
        lambda t: from_image_folder(_folder(t), image_size=0),
        r"image_size must be",
    ),
    (
        "image_size_float",
        lambda t: from_image_folder(_folder(t), image_size=(2.5, 3)),
        r"image_size must be a positive int or \(height, width\)",
    ),
    (
        "image_size_bool",
        lambda t: from_image_folder(_folder(t), image_size=True),
        r"image_size must",
    ),
    (
        "image_size_str",
        lambda t: from_image_folder(_folder(t), image_size="32"),
        r"image_size must",
    ),
    ("image_size_huge", lambda t: from_image_folder(_folder(t), image_size=10**6), r"up to 4096"),
    ("image_root_missing", lambda t: from_image_folder(t / "nope"), r"root '.*nope' is not a dir"),
    (
        "image_root_flat",
        lambda t: from_image_folder(_flat_folder(t)),
        r"has no class sub-folders; expected one sub-folder per class",
    ),
    (
        "image_class_empty",
        lambda t: from_image_folder(_with_empty_class(t)),
        r"class folder\(s\) \['c'\] .* hold no image files",
    ),
    # ---- table files ---------------------------------------------------------------------------
    ("csv_empty", lambda t: from_csv(_file(t, "e.csv", b"")), r"table file '.*e\.csv' is empty"),
    (
        "parquet_garbage",
        lambda t: from_csv(_file(t, "g.parquet", b"garbage")),
        r"could not read '.*g\.parquet' as a Parquet table \(\w+\); check that the file",
    ),
    (
        "csv_unknown_option",
        lambda t: from_csv(_file(t, "t.csv", b"a,y\n1,0\n2,1\n"), sep=";"),
        r"unknown option\(s\) \['sep'\] for a table file",
    ),
    # ---- torchvision ---------------------------------------------------------------------------
    (
        "tv_download_str",
        lambda t: load_torchvision("mnist", t, download="yes"),
        r"download must be",
    ),
    ("tv_verify_int", lambda t: load_torchvision("cifar10", t, verify=1), r"verify must be True"),
    ("tv_root_int", lambda t: load_torchvision("mnist", root=5), r"root must be a path.*int 5"),
    ("tv_name_none", lambda t: load_torchvision(None, t), r"name must be a string, one of"),
    ("tv_unknown", lambda t: load_torchvision("imagenet", t), r"unknown torchvision dataset"),
    # ---- torch datasets ------------------------------------------------------------------------
    (
        "torch_n_classes",
        lambda t: from_torch_dataset(
            TensorDataset(torch.randn(8, 2), torch.arange(8) % 2), n_classes=1
        ),
        r"n_classes must be an integer of at least 2",
    ),
    ("torch_not_dataset", lambda t: from_torch_dataset(5), r"train must be a map-style torch"),
    # ---- configs -------------------------------------------------------------------------------
    (
        "config_download",
        lambda t: load_dataset_from_config({"spec": "mnist", "kwargs": {"download": True}}),
        r"download=True is never honoured from a config file",
    ),
    (
        "config_verify_off",
        lambda t: load_dataset_from_config({"spec": "svhn", "kwargs": {"verify": False}}),
        r"verify=False is never honoured",
    ),
    (
        "config_unknown_option",
        lambda t: load_dataset_from_config({"spec": "digits", "kwargs": {"allow_pickle": True}}),
        r"data option 'allow_pickle' is not allowed for the digits source",
    ),
    (
        "config_bad_type",
        lambda t: load_dataset_from_config({"spec": "digits", "kwargs": {"test_size": "0.3"}}),
        r"data option 'test_size' of a digits source must be a number",
    ),
    (
        "config_empty_spec",
        lambda t: load_dataset_from_config({"spec": ""}),
        r"dataset spec is empty",
    ),
    ("config_not_mapping", lambda t: load_dataset_from_config("digits"), r"must be a mapping"),
]


@pytest.mark.parametrize(("make", "match"), [pytest.param(f, m, id=c) for c, f, m in BAD_INPUTS])
def test_bad_data_input_raises_one_clear_line(tmp_path: Path, make: Make, match: str) -> None:
    with pytest.raises(AlfavizInputError, match=match) as info:
        make(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.rstrip().endswith((".", ")")), message


def test_the_table_is_large_and_has_unique_cases() -> None:
    cases = [c for c, _, _ in BAD_INPUTS]
    assert len(cases) >= 30
    assert len(set(cases)) == len(cases)


def test_accepted_dtypes_become_float32() -> None:
    """The documented rule: lists, float16, float64 and bfloat16 are converted, not refused."""
    reference = from_arrays(X.astype(np.float32), Y, standardize=False)
    cases: list[tuple[Any, float]] = [
        (X.tolist(), 1e-6),
        (X, 1e-6),
        (torch.tensor(X, dtype=torch.float64), 1e-6),
        (X.astype(np.float16), 1e-2),
        (torch.tensor(X, dtype=torch.bfloat16), 1e-2),
    ]
    for given, tol in cases:
        src = from_arrays(given, list(Y), standardize=False)
        assert src.x_train.dtype == torch.float32
        torch.testing.assert_close(src.x_train, reference.x_train, atol=4 * tol, rtol=tol)
        np.testing.assert_array_equal(src.y_train, reference.y_train)
