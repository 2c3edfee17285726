"""Checks every loader runs at its boundary, label encoding and the seeded stratified split.

Each check raises :class:`~alfaviz.errors.AlfavizInputError` with one line that names the
argument and says how to fix it. Loaders call them once, before they read any file, and then
call unchecked internals.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from alfaviz._checks import MAX_SEED
from alfaviz.errors import AlfavizInputError

__all__ = [
    "MAX_SEED",
    "check_bool",
    "check_name",
    "check_names",
    "check_path",
    "check_seed",
    "check_str_list",
    "check_test_size",
    "encode_labels",
    "first_container",
    "stratified_split",
]


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an int in ``0 .. 2**63 - 1``; bools, floats and strings are refused."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise AlfavizInputError(
            f"{what} must be an integer in 0..2**63-1 (e.g. {what}=0); got "
            f"{type(seed).__name__} {seed!r}."
        )
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise AlfavizInputError(f"{what} must lie in 0..2**63-1 (e.g. {what}=0); got {value}.")
    return value


def check_test_size(test_size: Any) -> float:
    """``test_size`` as a float strictly between 0 and 1."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.floating)):
        raise AlfavizInputError(
            f"test_size must be a fraction strictly between 0 and 1 (e.g. test_size=0.25); got "
            f"{type(test_size).__name__} {test_size!r}."
        )
    if not 0.0 < float(test_size) < 1.0:  # also refuses NaN
        raise AlfavizInputError(
            f"test_size must be a fraction strictly between 0 and 1 (e.g. 0.25); got {test_size}."
        )
    return float(test_size)


def check_bool(value: Any, what: str) -> bool:
    """A real bool (``"false"`` or ``0`` would silently mean something else)."""
    if not isinstance(value, (bool, np.bool_)):
        raise AlfavizInputError(
            f"{what} must be True or False; got {type(value).__name__} {value!r}."
        )
    return bool(value)


def check_name(name: Any, what: str = "name") -> str:
    """A non-empty string."""
    if not isinstance(name, str) or not name.strip():
        raise AlfavizInputError(
            f"{what} must be a non-empty string (e.g. {what}='my_data'); got {name!r}."
        )
    return name


def check_str_list(values: Any, what: str) -> list[str] | None:
    """``None`` or a list/tuple of names; a bare string (a sequence of letters) is refused."""
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, pd.Index)):
        raise AlfavizInputError(
            f"{what} must be a list of names (e.g. {what}=['a', 'b']); got "
            f"{type(values).__name__} {values!r}."
        )
    return [str(v) for v in values]


def check_path(path: Any, what: str) -> str:
    """A non-empty path string (str or ``os.PathLike``) without NUL bytes."""
    if not isinstance(path, (str, os.PathLike)):
        raise AlfavizInputError(
            f"{what} must be a path (str or pathlib.Path); got {type(path).__name__} {path!r}."
        )
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise AlfavizInputError(f"{what} must be a text path, not bytes; got {text!r}.")
    if not text.strip() or "\x00" in text:
        raise AlfavizInputError(f"{what} must be a non-empty path without NUL bytes; got {text!r}.")
    return text


def stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of positions: ``(train_pos, test_pos)``, each sorted.

    Each class sends ``round(test_size * n_c)`` of its rows to the test split but always keeps
    at least one in the train pool, so no test class is unseen in the pool. ``test_size`` and
    ``seed`` must already be checked (:func:`check_test_size`, :func:`check_seed`).

    Parameters
    ----------
    y : numpy.ndarray of int, shape (n,)
    test_size : float
    seed : int

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        int64 positions, shapes (n - n_test,) and (n_test,).
    """
    rng = np.random.default_rng(seed)
    test_parts = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        n_test = min(round(test_size * len(rows)), len(rows) - 1)
        if n_test > 0:
            test_parts.append(rng.permutation(rows)[:n_test])
    test_pos = np.sort(np.concatenate(test_parts)) if test_parts else np.empty(0, np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[test_pos] = False
    return np.flatnonzero(mask).astype(np.int64), test_pos.astype(np.int64)


def first_container(values: np.ndarray) -> int | None:
    """Position of the first list/tuple/array/dict/set in an object array, or None."""
    if values.dtype != object:
        return None
    for i, v in enumerate(values):
        if isinstance(v, (list, tuple, np.ndarray, dict, set, torch.Tensor)):
            return i
    return None


def encode_labels(
    y: Any, class_names: Sequence[Any] | None, what: str = "y"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels to class ids ``0..C-1``.

    Integer labels with ``class_names`` given are used as ids directly. Otherwise the sorted
    distinct values become the classes (so ``{1, 2, 3}`` -> ids ``{0, 1, 2}`` named
    ``"1", "2", "3"``, and strings map alphabetically). Pandas categoricals keep their
    category order.

    Parameters
    ----------
    y : array-like, shape (n,) or (n, 1)
    class_names : sequence, optional
    what : str
        How the labels are named in error messages (``"y"``, ``"target column 'species'"``).

    Returns
    -------
    (numpy.ndarray of int64, shape (n,), tuple of str)
        The codes and the class names.
    """
    if isinstance(y, pd.Series) and isinstance(y.dtype, pd.CategoricalDtype):
        if y.isna().any():
            raise AlfavizInputError(
                f"{what} has {int(y.isna().sum())} missing label(s); drop those rows first."
            )
        observed = [c for c in y.cat.categories if (y == c).any()]
        lookup = {c: i for i, c in enumerate(observed)}
        codes = np.array([lookup[v] for v in y], dtype=np.int64)
        names = class_names if class_names is not None else [str(c) for c in observed]
        return codes, check_names(names, codes, what)
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu()
        y = y.to(torch.float32) if y.dtype == torch.bfloat16 else y
        y = y.numpy()
    elif isinstance(y, (pd.Series, pd.Index)):
        y = y.to_numpy()
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise AlfavizInputError(
            f"{what} could not be read as one label per row ({type(exc).__name__}); pass a flat "
            "list or 1-D array of class labels."
        ) from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise AlfavizInputError(
            f"{what} must be 1-D with one class label per row; got shape {arr.shape}. "
            "(One-hot labels: pass y.argmax(1).)"
        )
    if arr.dtype.kind == "c":
        raise AlfavizInputError(f"{what} holds complex numbers; pass integer or string labels.")
    if arr.dtype.kind == "f":
        missing = ~np.isfinite(arr)
        if missing.any():
            raise AlfavizInputError(
                f"{what} has {int(missing.sum())} missing (NaN) label(s); drop those rows first."
            )
        if not np.all(arr == np.round(arr)):
            raise AlfavizInputError(
                f"{what} holds non-integer numbers (e.g. {arr[arr != np.round(arr)][0]}); it "
                "looks like a regression target. alfaviz needs class labels."
            )
        arr = arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
        if class_names is not None:
            return arr, check_names(class_names, arr, what)
        values, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int64), tuple(str(v) for v in values)
    # strings, objects, bools
    if arr.dtype.kind == "O":
        bad = first_container(arr)
        if bad is not None:
            raise AlfavizInputError(
                f"{what} holds {type(arr[bad]).__name__} values (first at row {bad}); each label "
                "must be one value (an int or a string), not a list or array."
            )
        missing = pd.isna(arr)
        if missing.any():
            raise AlfavizInputError(
                f"{what} has {int(missing.sum())} missing label(s); drop those rows first."
            )
        arr = arr.astype(str)
    values, codes = np.unique(arr, return_inverse=True)
    names = class_names if class_names is not None else [str(v) for v in values]
    codes = codes.astype(np.int64)
    return codes, check_names(names, codes, what)


def check_names(names: Sequence[Any], codes: np.ndarray, what: str) -> tuple[str, ...]:
    """Class names as distinct strings, one per class id in ``codes``."""
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise AlfavizInputError(f"class_names must be distinct; got {list(names)}.")
    if codes.size and (codes.min() < 0 or codes.max() >= len(names)):
        raise AlfavizInputError(
            f"{what} holds class ids in [{codes.min()}, {codes.max()}] but class_names has "
            f"{len(names)} entries; ids must lie in 0..{len(names) - 1}."
        )
    return names
