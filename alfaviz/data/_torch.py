"""A user's own map-style ``torch.utils.data.Dataset``: :func:`from_torch_dataset`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from alfaviz.data._checks import (
    check_name,
    check_seed,
    check_str_list,
    check_test_size,
    stratified_split,
)
from alfaviz.data._source import DataSource, Kind, SplitData, make_source, to_display
from alfaviz.errors import AlfavizInputError

__all__ = ["from_torch_dataset"]


class _UserSplit(SplitData):
    """A view of rows ``positions`` of a user's dataset, with items converted to (tensor, int)."""

    def __init__(self, base: Dataset, positions: np.ndarray, labels: np.ndarray, kind: Kind):
        self.base = base
        self.positions = positions
        self.labels = labels
        self.kind = kind

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, _ = _unpack_item(self.base[int(self.positions[i])], int(self.positions[i]))
        return x, int(self.labels[i])

    def display(self, pos: np.ndarray) -> np.ndarray | None:
        if self.kind != "image":
            return None
        return to_display(self.batch(pos))


def _unpack_item(item: Any, pos: int) -> tuple[torch.Tensor, int]:
    """Turn one dataset item into ``(float tensor, int label)`` or raise a clear error."""
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise AlfavizInputError(
            f"dataset item {pos} is a {type(item).__name__}; alfaviz needs items (x, y) with x a "
            "tensor and y an integer class id."
        )
    x, y = item[0], item[1]
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise AlfavizInputError(
                f"dataset item {pos} has x of dtype {x.dtype}; x must hold real numbers."
            )
        x = torch.from_numpy(x)
    if isinstance(x, torch.Tensor) and x.is_complex():
        raise AlfavizInputError(f"dataset item {pos} has complex x; x must hold real numbers.")
    if not isinstance(x, torch.Tensor):
        raise AlfavizInputError(
            f"dataset item {pos} has x of type {type(x).__name__}; x must be a tensor. For PIL "
            "images add transform=torchvision.transforms.ToTensor() to your dataset."
        )
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            raise AlfavizInputError(
                f"dataset item {pos} has a label of shape {tuple(y.shape)}; y must be one "
                "integer class id (not one-hot)."
            )
        y = y.item()
    if isinstance(y, (np.generic,)):
        y = y.item()
    if isinstance(y, float) and y.is_integer():
        y = int(y)
    if isinstance(y, bool) or not isinstance(y, int):
        raise AlfavizInputError(
            f"dataset item {pos} has label {y!r}; y must be an integer class id 0..n_classes-1."
        )
    return x.float(), y


def _scan_dataset(ds: Dataset, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Labels of every item and the common input shape; checks items and finiteness."""
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError as exc:
        raise AlfavizInputError(
            f"{what} must be a map-style Dataset with __len__ and __getitem__."
        ) from exc
    if n == 0:
        raise AlfavizInputError(f"{what} is empty (0 samples); nothing to learn from.")
    labels = np.empty(n, dtype=np.int64)
    shape: tuple[int, ...] | None = None
    for i in range(n):
        x, y = _unpack_item(ds[i], i)
        if shape is None:
            shape = tuple(x.shape)
        elif tuple(x.shape) != shape:
            raise AlfavizInputError(
                f"{what} item {i} has input shape {tuple(x.shape)} but item 0 has {shape}; all "
                "inputs must share one shape (resize them in your transform)."
            )
        if not bool(torch.isfinite(x).all()):
            raise AlfavizInputError(
                f"{what} item {i} contains NaN or inf features; clean the data first."
            )
        labels[i] = y
    assert shape is not None
    return labels, shape


def from_torch_dataset(
    train: Dataset,
    test: Dataset | None = None,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    n_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    name: str = "torch_dataset",
) -> DataSource:
    """A user's map-style ``torch.utils.data.Dataset`` with items ``(x, y)``.

    Parameters
    ----------
    train : Dataset
        Items ``(x, y)``: ``x`` a tensor (or ndarray) of one fixed shape, ``y`` an int class id.
        Every item is read once here to collect the labels and check the inputs.
    test : Dataset, optional
        The test split; when omitted, a seeded stratified ``test_size`` fraction of ``train``.
    n_classes : int, optional
        Number of classes (default: ``len(class_names)``, else the largest label + 1).
    class_names : sequence of str, optional
        Names of the class ids (default ``"0", "1", ...``).
    test_size, seed :
        The split, used only without ``test`` (but checked always).
    name : str
        Name of the source.

    Returns
    -------
    DataSource
        ``kind="image"`` when inputs are (C, H, W) with C in {1, 3}, else ``"tabular"``.
    """
    test_size = check_test_size(test_size)
    seed = check_seed(seed)
    name = check_name(name)
    names_given = check_str_list(class_names, "class_names")
    if n_classes is not None and (
        isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2
    ):
        raise AlfavizInputError(
            f"n_classes must be an integer of at least 2 (or None to infer it); got {n_classes!r}."
        )
    for what, ds in (("train", train), ("test", test)):
        if ds is not None and not isinstance(ds, Dataset) and not hasattr(ds, "__getitem__"):
            raise AlfavizInputError(
                f"{what} must be a map-style torch Dataset (with __len__ and __getitem__); got "
                f"{type(ds).__name__}."
            )
    y_all, shape = _scan_dataset(train, "train")
    if test is not None:
        y_test, shape_t = _scan_dataset(test, "test")
        if shape_t != shape:
            raise AlfavizInputError(
                f"test inputs have shape {shape_t} but train inputs have {shape}."
            )
    if names_given is not None:
        names = tuple(names_given)
        if n_classes is not None and n_classes != len(names):
            raise AlfavizInputError(
                f"n_classes={n_classes} but class_names has {len(names)} entries."
            )
    else:
        hi = int(y_all.max()) if test is None else max(int(y_all.max()), int(y_test.max()))
        k = int(n_classes) if n_classes is not None else hi + 1
        names = tuple(str(c) for c in range(k))
    kind: Kind = "image" if len(shape) == 3 and shape[0] in (1, 3) else "tabular"
    if test is None:
        tr, te = stratified_split(y_all, test_size, seed)
        train_split = _UserSplit(train, tr, y_all[tr], kind)
        test_split = _UserSplit(train, te, y_all[te], kind)
        how = f"stratified split test_size={test_size}, seed={seed}"
    else:
        train_split = _UserSplit(train, np.arange(len(y_all)), y_all, kind)
        test_split = _UserSplit(test, np.arange(len(y_test)), y_test, kind)
        how = "given test dataset"
    return make_source(
        name=name,
        kind=kind,
        train=train_split,
        test=test_split,
        class_names=names,
        input_shape=shape,
        description=f"{name}: user dataset of {type(train).__name__} ({how})",
        meta={"source": "torch_dataset", "test_size": test_size, "seed": seed},
    )
