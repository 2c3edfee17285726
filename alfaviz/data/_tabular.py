"""Tabular data and in-memory arrays: :func:`from_arrays`, :func:`from_dataframe`, :func:`from_csv`.

Input dtypes (the rule :func:`from_arrays` applies)
----------------------------------------------------
Models train in float32, so every numeric input is **converted to float32**: NumPy arrays,
torch tensors and nested Python lists of bool, (unsigned) integers, float16, float32, float64 or
bfloat16 are all accepted. uint8 *images* are also scaled to [0, 1]. Refused, with an error that
says what to do: complex numbers, strings and objects (encode them, or use
:func:`from_dataframe`), ragged lists, NaN or inf, and float64 values beyond float32's range
(about 3.4e38), which would become inf.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from alfaviz.data._checks import (
    check_bool,
    check_name,
    check_path,
    check_seed,
    check_str_list,
    check_test_size,
    encode_labels,
    first_container,
    stratified_split,
)
from alfaviz.data._source import DataSource, Kind, TensorSplit, make_source, to_display
from alfaviz.errors import AlfavizInputError

__all__ = ["TABLE_SUFFIXES", "from_arrays", "from_csv", "from_dataframe"]

logger = logging.getLogger(__name__)

#: File names :func:`from_csv` (and :func:`~alfaviz.data.load_dataset`) read as tables.
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt", ".gz", ".parquet")


def _as_array(X: Any) -> np.ndarray:
    """``X`` as a real-valued NumPy array (not yet float32), or a clear error."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu()
        if X.is_complex():
            raise AlfavizInputError("X holds complex numbers; pass real-valued features.")
        return (X.float() if X.dtype == torch.bfloat16 else X).numpy()
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise AlfavizInputError(
            "X is ragged or not an array: its rows must all have the same length, e.g. a list "
            "of n_samples lists of n_features numbers, or a 2-D numpy array."
        ) from exc
    if arr.dtype.name == "bfloat16":  # ml_dtypes' bfloat16
        arr = arr.astype(np.float32)
    if arr.dtype.kind == "c":
        raise AlfavizInputError("X holds complex numbers; pass real-valued features.")
    if arr.dtype.kind not in "biuf":
        raise AlfavizInputError(
            f"X must be numeric; got dtype {arr.dtype}. Encode text/categorical columns first "
            "(from_dataframe one-hot encodes them for you)."
        )
    return arr


def _check_finite_rows(x: torch.Tensor, source: np.ndarray) -> None:
    """Refuse non-finite rows of float32 ``x`` (n, ...), telling overflow from NaN/inf."""
    if x.numel() == 0:
        return
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    if not bool(bad.any()):
        return
    rows = torch.nonzero(bad).flatten()
    first = rows[:5].tolist()
    if source.dtype.kind == "f" and np.isfinite(source[rows.numpy()]).all():
        raise AlfavizInputError(
            f"X has values beyond float32's range (about 3.4e38) in {len(rows)} row(s) (first "
            f"rows: {first}); rescale the features before loading."
        )
    raise AlfavizInputError(
        f"X contains NaN or inf in {len(rows)} row(s) (first rows: {first}). Impute or drop them "
        "before loading."
    )


def _build(
    x: torch.Tensor,
    codes: np.ndarray,
    names: tuple[str, ...],
    *,
    kind: Kind,
    raw: np.ndarray | None,
    test_size: float,
    seed: int,
    standardize: bool,
    name: str,
    feature_names: list[str] | None,
) -> DataSource:
    """Split and scale checked inputs: ``x`` float32 (n, *input_shape), ``codes`` (n,)."""
    tr, te = stratified_split(codes, test_size, seed)
    meta: dict[str, Any] = {"source": name, "test_size": test_size, "seed": seed}
    if feature_names is not None:
        meta["feature_names"] = feature_names
    if kind == "tabular" and standardize:
        mean = x[tr].mean(dim=0)
        std = x[tr].std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        x = (x - mean) / std
        meta.update(standardize=True, mean=mean.tolist(), std=std.tolist())
    else:
        meta["standardize"] = False
    x = x.contiguous()

    def split(pos: np.ndarray) -> TensorSplit:
        shown: np.ndarray | None = None
        if raw is not None:
            shown = raw[pos]
        elif kind == "image":
            shown = to_display(x[torch.as_tensor(pos)])
        return TensorSplit(x[torch.as_tensor(pos)].contiguous(), codes[pos], shown)

    scaled = ", standardised with train statistics" if meta["standardize"] else ""
    return make_source(
        name=name,
        kind=kind,
        train=split(tr),
        test=split(te),
        class_names=names,
        input_shape=tuple(x.shape[1:]),
        description=(
            f"{name}: {x.shape[0]} {kind} samples{scaled}; stratified split "
            f"test_size={test_size}, seed={seed}"
        ),
        meta=meta,
    )


def from_arrays(
    X: Any,
    y: Any,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    standardize: bool = True,
    name: str = "arrays",
    feature_names: Sequence[str] | None = None,
) -> DataSource:
    """In-memory features and labels.

    Parameters
    ----------
    X : array-like
        Shape (n_samples, n_features) for tabular data; (n_samples, H, W) or
        (n_samples, C, H, W) with C in {1, 3} for images (uint8 images are scaled to [0, 1]).
        A NumPy array, torch tensor or nested list of any real dtype; it is converted to
        float32 (see the module notes for what is refused).
    y : array-like, shape (n_samples,)
        Class labels: integers, strings or anything hashable. Labels are mapped to ids
        ``0..C-1`` in sorted order unless ``class_names`` is given with integer ids.
    test_size, seed :
        Seeded stratified split; every class keeps at least one sample in the pool.
        ``0 < test_size < 1``; ``seed`` in ``0 .. 2**63 - 1``.
    class_names : sequence of str, optional
        Names of class ids ``0..C-1`` (only with integer ``y`` holding ids).
    standardize : bool
        Tabular only: subtract the train pool's mean and divide by its std per feature (a
        constant feature keeps std 1). The statistics are recorded in ``meta``.
    name : str
        Name of the source.
    feature_names : sequence of str, optional
        Recorded in ``meta["feature_names"]``; one per feature.
    """
    test_size = check_test_size(test_size)
    seed = check_seed(seed)
    standardize = check_bool(standardize, "standardize")
    name = check_name(name)
    class_names = check_str_list(class_names, "class_names")
    features = check_str_list(feature_names, "feature_names")
    arr = _as_array(X)
    if arr.ndim not in (2, 3, 4):
        raise AlfavizInputError(
            f"X must have shape (n_samples, n_features) or hold images (n, H, W) / "
            f"(n, C, H, W); got shape {arr.shape}."
        )
    if isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise AlfavizInputError("y must be an array of labels, one per row of X.")
    if arr.shape[0] != len(y):
        raise AlfavizInputError(
            f"X has {arr.shape[0]} rows but y has {len(y)} labels; they must have the same length."
        )
    if arr.shape[0] == 0:
        raise AlfavizInputError("X and y are empty (0 samples); nothing to learn from.")
    if features is not None and (arr.ndim != 2 or len(features) != arr.shape[1]):
        raise AlfavizInputError(
            f"feature_names has {len(features)} names but X has shape {arr.shape}; give one "
            "name per column of a 2-D X."
        )
    codes, names = encode_labels(y, class_names)
    kind: Kind = "tabular" if arr.ndim == 2 else "image"
    raw: np.ndarray | None = None
    if kind == "image":
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.shape[1] not in (1, 3):
            raise AlfavizInputError(
                f"image arrays must be (n, C, H, W) with C = 1 or 3; got shape {arr.shape}. "
                "For channels-last images pass X.transpose(0, 3, 1, 2)."
            )
        if arr.dtype == np.uint8:
            raw = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
            arr = arr.astype(np.float32) / 255.0
    if arr[0].size == 0:
        raise AlfavizInputError(f"X has no features (shape {arr.shape}).")
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    _check_finite_rows(x, arr)
    return _build(
        x, codes, names, kind=kind, raw=raw, test_size=test_size, seed=seed,
        standardize=standardize, name=name, feature_names=features,
    )  # fmt: skip


def _has_column(df: pd.DataFrame, column: Any) -> bool:
    if isinstance(column, (bool, list, dict, set, np.ndarray, pd.Series, pd.Index)):
        return False
    try:
        return column in df.columns
    except TypeError:  # unhashable
        return False


def from_dataframe(
    df: pd.DataFrame,
    target: str | None = None,
    *,
    features: Sequence[str] | None = None,
    categorical: Literal["onehot", "error"] = "onehot",
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    class_names: Sequence[str] | None = None,
    name: str = "dataframe",
) -> DataSource:
    """A pandas DataFrame with one target column.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_samples, n_columns)
        Column names must be distinct, and every cell one value (not a list or an array).
    target : str, optional
        The label column; the last column by default. String and categorical targets map to
        ids ``0..C-1`` (sorted, or category order) and keep their values as ``class_names``.
    features : sequence of str, optional
        Feature columns; all other columns by default.
    categorical : {"onehot", "error"}
        What to do with non-numeric feature columns (strings, categories, objects): one-hot
        encode them (a missing value gets its own indicator column), or raise an error.
        Booleans count as numeric (0/1).
    test_size, seed, standardize, class_names, name :
        As in :func:`from_arrays`.
    """
    if not isinstance(df, pd.DataFrame):
        raise AlfavizInputError(f"df must be a pandas DataFrame; got {type(df).__name__}.")
    test_size = check_test_size(test_size)
    seed = check_seed(seed)
    standardize = check_bool(standardize, "standardize")
    name = check_name(name)
    class_names = check_str_list(class_names, "class_names")
    dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if dupes:
        raise AlfavizInputError(
            f"df has duplicate column name(s) {dupes}; rename them so that every column name "
            "is distinct (e.g. df.columns = [...])."
        )
    if df.shape[1] < 2:
        raise AlfavizInputError(
            f"df needs at least one feature column and one target column; got columns "
            f"{list(df.columns)}."
        )
    if target is None:
        target = df.columns[-1]
    if not _has_column(df, target):
        raise AlfavizInputError(
            f"target column {target!r} is not in the frame; columns are {list(df.columns)}."
        )
    if features is None:
        feats = [c for c in df.columns if c != target]
    elif isinstance(features, (str, bytes)) or not isinstance(features, (Sequence, pd.Index)):
        raise AlfavizInputError(
            f"features must be a list of column names (e.g. features=['a', 'b']); got {features!r}."
        )
    else:
        feats = list(features)
    absent = [c for c in feats if not _has_column(df, c)]
    if absent:
        raise AlfavizInputError(f"feature column(s) {absent} are not in the frame.")
    if target in feats:
        raise AlfavizInputError(f"target column {target!r} cannot also be a feature.")
    if len(set(feats)) != len(feats):
        raise AlfavizInputError(f"features lists a column twice: {feats}.")
    if categorical not in ("onehot", "error"):
        raise AlfavizInputError(f"categorical must be 'onehot' or 'error'; got {categorical!r}.")
    if len(df) == 0:
        raise AlfavizInputError("df has no rows; nothing to learn from.")
    for c in [*feats, target]:
        values = df[c].to_numpy()
        row = first_container(values)
        if row is not None:
            kind = type(values[row]).__name__
            role = "target" if c == target else "feature"
            raise AlfavizInputError(
                f"{role} column {c!r} holds {kind} values (first at row {row}); each cell must be "
                "one value. "
                f"Expand it into one column per element first, e.g. "
                f"pd.DataFrame(df[{c!r}].tolist(), index=df.index)."
            )
    X = df[feats]
    complex_cols = [c for c in feats if pd.api.types.is_complex_dtype(X[c])]
    if complex_cols:
        raise AlfavizInputError(
            f"feature column(s) {complex_cols} hold complex numbers; split them into real and "
            "imaginary columns first."
        )
    non_numeric = [
        c
        for c in feats
        if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
    ]
    if non_numeric and categorical == "error":
        raise AlfavizInputError(
            f"feature column(s) {non_numeric} are not numeric; encode them first or pass "
            "categorical='onehot'."
        )
    numeric = [c for c in feats if c not in non_numeric]
    with_nan = [c for c in numeric if X[c].isna().any()]
    if with_nan:
        raise AlfavizInputError(
            f"feature column(s) {with_nan} contain NaN in "
            f"{int(X[with_nan].isna().any(axis=1).sum())} row(s); impute or drop them first."
        )
    if non_numeric:
        parts = [X[numeric].astype(np.float32)]
        for c in non_numeric:
            col = X[c].astype(object).where(X[c].notna(), None)
            parts.append(
                pd.get_dummies(
                    col, prefix=str(c), dummy_na=bool(col.isna().any()), dtype=np.float32
                )
            )
        X = pd.concat(parts, axis=1)
        logger.info("one-hot encoded %s into %d columns", non_numeric, X.shape[1])
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        values = X.to_numpy(dtype=np.float32)
    if not values.flags.writeable:  # pandas' copy-on-write hands out read-only views
        values = values.copy()
    finite = np.isfinite(values).all(axis=0)
    inf_cols = [str(c) for c, ok in zip(X.columns, finite, strict=True) if not ok]
    if inf_cols:
        raise AlfavizInputError(
            f"feature column(s) {inf_cols} contain inf or values beyond float32's range (about "
            "3.4e38); clip, rescale or drop them first."
        )
    codes, names = encode_labels(df[target], class_names, what=f"target column {target!r}")
    return _build(
        torch.from_numpy(values), codes, names, kind="tabular", raw=None, test_size=test_size,
        seed=seed, standardize=standardize, name=name,
        feature_names=[str(c) for c in X.columns],
    )  # fmt: skip


_DATAFRAME_OPTIONS = tuple(p for p in inspect.signature(from_dataframe).parameters if p != "df")


def from_csv(path: str | os.PathLike[str], target: str | None = None, **kwargs: Any) -> DataSource:
    """A CSV (or TSV / Parquet) table; see :func:`from_dataframe` for ``target`` and options.

    Parameters
    ----------
    path : path
        ``.parquet`` is read as Parquet; ``.tsv`` and ``.tsv.gz`` as tab-separated text;
        anything else as comma-separated text (gzip-compressed when it ends in ``.gz``).
    target : str, optional
        The label column; the last column by default.
    **kwargs :
        Options of :func:`from_dataframe` (``features``, ``test_size``, ``seed``, ...);
        ``name`` defaults to the file's stem.
    """
    unknown = sorted(k for k in kwargs if k not in _DATAFRAME_OPTIONS)
    if unknown:
        raise AlfavizInputError(
            f"unknown option(s) {unknown} for a table file; from_csv accepts "
            f"{list(_DATAFRAME_OPTIONS)}."
        )
    path = Path(check_path(path, "path")).expanduser()
    if not path.is_file():
        raise AlfavizInputError(f"table file {str(path)!r} does not exist.")
    is_parquet = path.suffix.lower() == ".parquet"
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    try:
        df = pd.read_parquet(path) if is_parquet else pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError as exc:
        raise AlfavizInputError(
            f"table file {str(path)!r} is empty; it needs a header row and data rows."
        ) from exc
    except Exception as exc:
        fmt = "Parquet" if is_parquet else ("tab" if sep == "\t" else "comma") + "-separated"
        raise AlfavizInputError(
            f"could not read {str(path)!r} as a {fmt} table ({type(exc).__name__}); check that "
            "the file is complete and that its suffix (.csv, .tsv, .parquet) matches its format."
        ) from exc
    kwargs.setdefault("name", path.stem)
    return from_dataframe(df, target=target, **kwargs)
