"""Data sources: every dataset alfaviz can learn from, behind one small frozen dataclass.

Every loader returns a :class:`DataSource`: a train pool, a test split, integer labels, class
names, and **stable global sample ids**:

* the train pool has ids ``0 .. n_train - 1``, in the order of the source's train rows;
* the test split has ids ``n_train .. n_train + n_test - 1``, in the order of its rows.

The ids are a pure function of the loader's arguments (the split is seeded), so the same call
gives the same ids on every machine, and a run store can refer to samples by id alone. Use
:meth:`DataSource.labels`, :meth:`DataSource.inputs`, :meth:`DataSource.images` and
:meth:`DataSource.dataset` to go from ids to data; positions inside a split stay private.

Loaders
-------
* :func:`load_digits` -- scikit-learn's bundled 8x8 digits, offline (the default);
* :func:`load_torchvision` -- MNIST, FashionMNIST, CIFAR10, CIFAR100 and SVHN from local files
  (nothing is downloaded unless ``download=True``);
* :func:`from_image_folder` -- a torchvision ``ImageFolder`` tree (one sub-folder per class);
* :func:`from_arrays`, :func:`from_dataframe`, :func:`from_csv` -- tabular data (and
  in-memory image arrays for :func:`from_arrays`);
* :func:`from_torch_dataset` -- a user's own ``torch.utils.data.Dataset``;
* :func:`load_dataset` -- one dispatcher over all of the above, for the CLI.

Bad data (one class, NaN features, an empty split, test classes the pool never shows, X/y of
different lengths, missing files) raises :class:`~alfaviz._validation.AlfavizInputError`
with a message that says what to do.
"""

from __future__ import annotations

import gzip
import inspect
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from alfaviz.errors import AlfavizInputError

__all__ = [
    "TORCHVISION_DATASETS",
    "DataSource",
    "default_data_root",
    "from_arrays",
    "from_csv",
    "from_dataframe",
    "from_image_folder",
    "from_torch_dataset",
    "load_dataset",
    "load_digits",
    "load_torchvision",
]

logger = logging.getLogger(__name__)

Kind = Literal["image", "tabular"]

#: Canonical names of the torchvision datasets :func:`load_torchvision` knows (any case works).
TORCHVISION_DATASETS: tuple[str, ...] = ("MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN")

# Per-channel (mean, std) used by the ALFA-Mix release and the usual torchvision recipes.
_NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "MNIST": ((0.1307,), (0.3081,)),
    "FashionMNIST": ((0.2860,), (0.3530,)),
    "CIFAR10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "CIFAR100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "SVHN": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}

_IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".parquet")


# --------------------------------------------------------------------------------------------
# Split storage: private datasets that can also fetch whole batches and display images.
# --------------------------------------------------------------------------------------------


class _SplitData(Dataset):
    """One split (train or test). Items are ``(x, y)`` with ``x`` a float tensor, ``y`` an int.

    Subclasses may override :meth:`batch` with a vectorised version and :meth:`display` to
    provide images for the gallery.
    """

    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def batch(self, pos: np.ndarray) -> torch.Tensor:
        """Inputs at positions ``pos``, stacked: shape ``(len(pos), *input_shape)``."""
        if len(pos) == 0:
            x0 = self[0][0]
            return torch.empty((0, *x0.shape), dtype=x0.dtype)
        return torch.stack([self[int(i)][0] for i in pos])

    def display(self, pos: np.ndarray) -> np.ndarray | None:
        """uint8 images at positions ``pos``, shape (n, H, W) or (n, H, W, 3); None if tabular."""
        return None


class _TensorSplit(_SplitData):
    """A split held as one float tensor (tabular rows or small images such as digits)."""

    def __init__(self, x: torch.Tensor, labels: np.ndarray, raw: np.ndarray | None = None):
        self.x = x
        self.labels = labels
        self.raw = raw  # uint8 display images, or None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.labels[i])

    def batch(self, pos: np.ndarray) -> torch.Tensor:
        return self.x[torch.as_tensor(pos, dtype=torch.long)]

    def display(self, pos: np.ndarray) -> np.ndarray | None:
        return None if self.raw is None else self.raw[pos]


class _Uint8ImageSplit(_SplitData):
    """uint8 images (n, H, W) or (n, H, W, C), normalised to float (C, H, W) on the fly.

    Keeps the memory of a torchvision dataset at one byte per pixel; ``x = (u8 / 255 - mean) /
    std`` per channel.
    """

    def __init__(
        self, raw: np.ndarray, labels: np.ndarray, mean: Sequence[float], std: Sequence[float]
    ):
        self.raw = np.ascontiguousarray(raw)
        self.labels = labels
        c = 1 if raw.ndim == 3 else raw.shape[3]
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(c, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).reshape(c, 1, 1)

    def _convert(self, u8: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(u8)).float().div_(255.0)
        t = t.unsqueeze(-3) if u8.ndim == 3 else t.permute(0, 3, 1, 2)  # (n, C, H, W)
        return (t - self.mean) / self.std

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._convert(self.raw[i : i + 1])[0], int(self.labels[i])

    def batch(self, pos: np.ndarray) -> torch.Tensor:
        return self._convert(self.raw[pos])

    def display(self, pos: np.ndarray) -> np.ndarray | None:
        return self.raw[pos]


class _ImageFileSplit(_SplitData):
    """Images read lazily from files (an ``ImageFolder`` tree), as float (C, H, W) in [0, 1]."""

    def __init__(
        self, paths: Sequence[str], labels: np.ndarray, size: tuple[int, int], channels: int
    ):
        self.paths = list(paths)
        self.labels = labels
        self.size = size  # (H, W)
        self.channels = channels

    def _load(self, i: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.paths[i]) as f:
            im = f.convert("L" if self.channels == 1 else "RGB")
        if (im.height, im.width) != self.size:
            im = im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8).copy()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        a = torch.from_numpy(self._load(int(i))).float().div_(255.0)
        x = a.unsqueeze(0) if a.ndim == 2 else a.permute(2, 0, 1).contiguous()
        return x, int(self.labels[i])

    def display(self, pos: np.ndarray) -> np.ndarray | None:
        shape = (len(pos), *self.size) + (() if self.channels == 1 else (3,))
        out = np.empty(shape, dtype=np.uint8)
        for k, i in enumerate(pos):
            out[k] = self._load(int(i))
        return out


class _UserSplit(_SplitData):
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
        return _to_display(self.batch(pos))


def _to_display(x: torch.Tensor) -> np.ndarray:
    """Float images (n, C, H, W) -> uint8 (n, H, W[, 3]), each image min-max scaled."""
    x = x.detach().float().cpu()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    u8 = ((x - lo) / (hi - lo).clamp_min(1e-12) * 255.0).round().to(torch.uint8)
    if u8.shape[1] == 1:
        return u8[:, 0].numpy()
    return u8[:, :3].permute(0, 2, 3, 1).contiguous().numpy()


def _unpack_item(item: Any, pos: int) -> tuple[torch.Tensor, int]:
    """Turn one dataset item into ``(float tensor, int label)`` or raise a clear error."""
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise AlfavizInputError(
            f"dataset item {pos} is a {type(item).__name__}; alfaviz needs items (x, y) with x a "
            "tensor and y an integer class id."
        )
    x, y = item[0], item[1]
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
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


# --------------------------------------------------------------------------------------------
# The data source.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DataSource:
    """A train pool and a test split with stable global sample ids.

    Build one with a loader (:func:`load_dataset`, :func:`load_digits`, ...), not directly.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"digits"`` or ``"CIFAR10"``.
    kind : {"image", "tabular"}
        Image sources have inputs of shape (C, H, W) and can show :meth:`images`.
    train, test : torch.utils.data.Dataset
        Items ``(x, y)``: ``x`` a float32 tensor of shape ``input_shape``, ``y`` an int class id.
        Position ``i`` of ``train`` is sample id ``train_ids[i]``; likewise for ``test``.
    train_ids : numpy.ndarray of int64, shape (n_train,)
        ``0 .. n_train - 1``.
    test_ids : numpy.ndarray of int64, shape (n_test,)
        ``n_train .. n_train + n_test - 1``.
    y_train : numpy.ndarray of int64, shape (n_train,)
        True labels of the train pool (hidden from the learner until "labelled").
    y_test : numpy.ndarray of int64, shape (n_test,)
    class_names : tuple of str, length n_classes
        ``class_names[c]`` names class id ``c``.
    input_shape : tuple of int
        Shape of one input: ``(C, H, W)`` for images, ``(n_features,)`` for tabular data.
    description : str
        One human-readable line (where the data came from, how it was split and scaled).
    meta : Mapping[str, Any]
        Read-only facts worth recording with a run (root, seed, test_size, normalisation,
        feature names, ...). JSON-serialisable.
    """

    name: str
    kind: Kind
    train: Dataset = field(repr=False)
    test: Dataset = field(repr=False)
    train_ids: np.ndarray = field(repr=False)
    test_ids: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    class_names: tuple[str, ...] = field(repr=False)
    input_shape: tuple[int, ...] = ()
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for arr in (self.train_ids, self.test_ids, self.y_train, self.y_test):
            arr.setflags(write=False)
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def __getstate__(self) -> dict[str, Any]:
        # picklable (DataLoader workers, multiprocessing): meta as a dict, no cached tensors
        state = {k: v for k, v in self.__dict__.items() if k not in ("x_train", "x_test")}
        state["meta"] = dict(self.meta)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "meta", MappingProxyType(dict(state["meta"])))

    # ---- sizes --------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        """Size of the train pool."""
        return len(self.train_ids)

    @property
    def n_test(self) -> int:
        """Size of the test split."""
        return len(self.test_ids)

    @property
    def n_samples(self) -> int:
        """``n_train + n_test``; every valid sample id is in ``range(n_samples)``."""
        return self.n_train + self.n_test

    @property
    def sample_ids(self) -> np.ndarray:
        """All ids, train then test: ``arange(n_samples)``, shape (n_samples,)."""
        return np.arange(self.n_samples, dtype=np.int64)

    @property
    def is_image(self) -> bool:
        """True for image sources."""
        return self.kind == "image"

    # ---- id lookups ---------------------------------------------------------------------
    def _locate(self, sample_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(in_test, position_within_split)`` for ``sample_ids``; checks the ids."""
        ids = np.asarray(sample_ids)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.ndim != 1:
            raise AlfavizInputError(f"sample_ids must be 1-D; got shape {ids.shape}.")
        if ids.size == 0:
            ids = ids.astype(np.int64)
        if ids.dtype.kind not in "iu":
            raise AlfavizInputError(f"sample_ids must be integers; got dtype {ids.dtype}.")
        ids = ids.astype(np.int64, copy=False)
        bad = (ids < 0) | (ids >= self.n_samples)
        if bad.any():
            raise AlfavizInputError(
                f"sample_ids {ids[bad][:5].tolist()} are out of range; {self.name} has ids "
                f"0..{self.n_samples - 1} (train 0..{self.n_train - 1}, test "
                f"{self.n_train}..{self.n_samples - 1})."
            )
        in_test = ids >= self.n_train
        return in_test, np.where(in_test, ids - self.n_train, ids)

    def is_test(self, sample_ids: Any) -> np.ndarray:
        """Boolean mask, shape (n,): which of ``sample_ids`` belong to the test split."""
        return self._locate(sample_ids)[0]

    def labels(self, sample_ids: Any) -> np.ndarray:
        """True labels of ``sample_ids`` (train or test), int64 array of shape (n,)."""
        in_test, pos = self._locate(sample_ids)
        out = np.empty(len(pos), dtype=np.int64)
        out[~in_test] = self.y_train[pos[~in_test]]
        out[in_test] = self.y_test[pos[in_test]]
        return out

    def inputs(self, sample_ids: Any) -> torch.Tensor:
        """Model inputs of ``sample_ids``, float32 tensor of shape (n, *input_shape).

        Fast (vectorised) for in-memory sources; image folders and user datasets load item by
        item, so prefer :meth:`dataset` with a DataLoader for large id sets there.
        """
        in_test, pos = self._locate(sample_ids)
        out = torch.empty((len(pos), *self.input_shape), dtype=torch.float32)
        for mask, split in ((~in_test, self.train), (in_test, self.test)):
            if mask.any():
                out[torch.as_tensor(np.flatnonzero(mask))] = split.batch(pos[mask])  # type: ignore[attr-defined]
        return out

    def images(self, sample_ids: Any) -> np.ndarray | None:
        """Images of ``sample_ids`` for display, or ``None`` for tabular data.

        Returns
        -------
        numpy.ndarray of uint8, shape (n, H, W) for one channel or (n, H, W, 3) for colour
            Raw pixels (before normalisation); user tensors are min-max scaled per image.
        """
        if self.kind != "image":
            return None
        in_test, pos = self._locate(sample_ids)
        parts: dict[bool, np.ndarray] = {}
        for flag, split in ((False, self.train), (True, self.test)):
            mask = in_test == flag
            if mask.any():
                parts[flag] = split.display(pos[mask])  # type: ignore[attr-defined]
        if not parts:
            c, h, w = self.input_shape
            return np.empty((0, h, w) + (() if c == 1 else (3,)), dtype=np.uint8)
        first = next(iter(parts.values()))
        out = np.empty((len(pos), *first.shape[1:]), dtype=np.uint8)
        for flag, arr in parts.items():
            out[in_test == flag] = arr
        return out

    def dataset(self, sample_ids: Any, *, with_ids: bool = False) -> Dataset:
        """A Dataset over ``sample_ids`` (in the given order), for a DataLoader.

        Items are ``(x, y)``, or ``(x, y, sample_id)`` with ``with_ids=True``.
        """
        in_test, pos = self._locate(sample_ids)
        ids = np.where(in_test, pos + self.n_train, pos)
        return _IdSubset(self, ids, in_test, pos, with_ids)

    # ---- whole splits as tensors --------------------------------------------------------
    @cached_property
    def x_train(self) -> torch.Tensor:
        """All train-pool inputs, float32 tensor of shape (n_train, *input_shape).

        Materialised on first access and cached (digits: 0.3 MB; MNIST: 190 MB; CIFAR-10:
        600 MB). Row ``i`` is sample id ``i``.
        """
        return self.inputs(self.train_ids)

    @cached_property
    def x_test(self) -> torch.Tensor:
        """All test inputs, float32 tensor of shape (n_test, *input_shape); row i is id
        ``n_train + i``."""
        return self.inputs(self.test_ids)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the source, for a run's config."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "description": self.description,
            "meta": dict(self.meta),
        }


class _IdSubset(Dataset):
    def __init__(
        self,
        source: DataSource,
        ids: np.ndarray,
        in_test: np.ndarray,
        pos: np.ndarray,
        with_ids: bool,
    ):
        self.source, self.ids, self.in_test, self.pos = source, ids, in_test, pos
        self.with_ids = with_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int) -> tuple[Any, ...]:
        split = self.source.test if self.in_test[k] else self.source.train
        x, y = split[int(self.pos[k])]
        return (x, y, int(self.ids[k])) if self.with_ids else (x, y)


# --------------------------------------------------------------------------------------------
# Shared helpers: labels, splitting, checks.
# --------------------------------------------------------------------------------------------


def _check_test_size(test_size: Any) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise AlfavizInputError(f"test_size must be a fraction in (0, 1); got {test_size!r}.")
    if not 0.0 < float(test_size) < 1.0:
        raise AlfavizInputError(
            f"test_size must be a fraction strictly between 0 and 1 (e.g. 0.25); got {test_size}."
        )
    return float(test_size)


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of positions: ``(train_pos, test_pos)``, each sorted.

    Each class sends ``round(test_size * n_c)`` of its rows to the test split but always keeps
    at least one in the train pool, so no test class is unseen in the pool.
    """
    test_size = _check_test_size(test_size)
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


def _encode_labels(
    y: Any, class_names: Sequence[Any] | None, what: str = "y"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels to class ids ``0..C-1``; return ``(codes, class_names)``.

    Integer labels with ``class_names`` given are used as ids directly. Otherwise the sorted
    distinct values become the classes (so ``{1, 2, 3}`` -> ids ``{0, 1, 2}`` named
    ``"1", "2", "3"``, and strings map alphabetically). Pandas categoricals keep their
    category order.
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
        return codes, _check_names(names, codes, what)
    arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise AlfavizInputError(
            f"{what} must be 1-D with one class label per row; got shape {arr.shape}. "
            "(One-hot labels: pass y.argmax(1).)"
        )
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
            return arr, _check_names(class_names, arr, what)
        values, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int64), tuple(str(v) for v in values)
    # strings, objects, bools
    if arr.dtype.kind == "O":
        missing = pd.isna(arr)
        if missing.any():
            raise AlfavizInputError(
                f"{what} has {int(missing.sum())} missing label(s); drop those rows first."
            )
        arr = arr.astype(str)
    values, codes = np.unique(arr, return_inverse=True)
    names = class_names if class_names is not None else [str(v) for v in values]
    codes = codes.astype(np.int64)
    return codes, _check_names(names, codes, what)


def _check_names(names: Sequence[Any], codes: np.ndarray, what: str) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise AlfavizInputError(f"class_names must be distinct; got {list(names)}.")
    if codes.size and (codes.min() < 0 or codes.max() >= len(names)):
        raise AlfavizInputError(
            f"{what} holds class ids in [{codes.min()}, {codes.max()}] but class_names has "
            f"{len(names)} entries; ids must lie in 0..{len(names) - 1}."
        )
    return names


def _check_finite(x: np.ndarray | torch.Tensor, what: str) -> None:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t) or t.numel() == 0:
        return
    bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise AlfavizInputError(
            f"{what} contains NaN or inf in {int(bad.sum())} row(s) (first rows: {rows}). "
            "Impute or drop them before loading."
        )


def _make_source(
    *,
    name: str,
    kind: Kind,
    train: _SplitData,
    test: _SplitData,
    class_names: Sequence[str],
    input_shape: Sequence[int],
    description: str,
    meta: Mapping[str, Any] | None = None,
) -> DataSource:
    """Check the splits' labels and assign the global ids."""
    y_train = np.asarray(train.labels, dtype=np.int64)
    y_test = np.asarray(test.labels, dtype=np.int64)
    names = tuple(class_names)
    if len(y_train) == 0:
        raise AlfavizInputError(
            f"{name}: the train pool is empty (0 samples). Check the path or the data you passed."
        )
    if len(y_test) == 0:
        raise AlfavizInputError(
            f"{name}: the test split is empty. Use a larger test_size or more samples per class "
            "(each class keeps at least one sample in the train pool)."
        )
    for what, y in (("train", y_train), ("test", y_test)):
        if y.min() < 0 or y.max() >= len(names):
            raise AlfavizInputError(
                f"{name}: {what} labels lie in [{y.min()}, {y.max()}] but there are "
                f"{len(names)} classes; labels must be 0..{len(names) - 1}."
            )
    present = np.unique(y_train)
    if len(present) < 2:
        raise AlfavizInputError(
            f"{name}: the train pool holds a single class ({names[present[0]]!r}); active "
            "learning for classification needs at least 2 classes."
        )
    unseen = np.setdiff1d(np.unique(y_test), present)
    if len(unseen):
        raise AlfavizInputError(
            f"{name}: the test split holds class(es) {[names[c] for c in unseen]} that never "
            "occur in the train pool, so no model can learn them. Remove those test rows or add "
            "training samples of those classes."
        )
    n_train, n_test = len(y_train), len(y_test)
    logger.info("loaded %s: %d train, %d test, %d classes", name, n_train, n_test, len(names))
    return DataSource(
        name=name,
        kind=kind,
        train=train,
        test=test,
        train_ids=np.arange(n_train, dtype=np.int64),
        test_ids=np.arange(n_train, n_train + n_test, dtype=np.int64),
        y_train=y_train,
        y_test=y_test,
        class_names=names,
        input_shape=tuple(int(s) for s in input_shape),
        description=description,
        meta=dict(meta or {}),
    )


# --------------------------------------------------------------------------------------------
# Built-in: scikit-learn digits.
# --------------------------------------------------------------------------------------------


def load_digits(seed: int = 0, test_size: float = 0.25) -> DataSource:
    """scikit-learn's bundled handwritten digits (offline, 1797 images of 8x8, 10 classes).

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of each class sent to the test split.

    Returns
    -------
    DataSource
        ``kind="image"``, ``input_shape=(1, 8, 8)``, pixels scaled to [0, 1] (raw 0..16 / 16);
        1347 train and 450 test samples with the defaults.
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0  # (1797, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = _stratified_split(y, test_size, seed)
    x = torch.from_numpy(images).unsqueeze(1)  # (n, 1, 8, 8)
    raw = np.round(images * 255.0).astype(np.uint8)

    def split(pos: np.ndarray) -> _TensorSplit:
        return _TensorSplit(x[torch.as_tensor(pos)].contiguous(), y[pos], raw[pos])

    return _make_source(
        name="digits",
        kind="image",
        train=split(tr),
        test=split(te),
        class_names=[str(d) for d in range(10)],
        input_shape=(1, 8, 8),
        description=(
            f"scikit-learn digits (8x8 grey, scaled to [0, 1]); stratified split, "
            f"test_size={test_size}, seed={seed}"
        ),
        meta={"source": "sklearn.datasets.load_digits", "seed": seed, "test_size": test_size},
    )


# --------------------------------------------------------------------------------------------
# torchvision datasets.
# --------------------------------------------------------------------------------------------


def default_data_root() -> Path:
    """Where torchvision datasets live when no ``root`` is given.

    ``$ALFAVIZ_DATA`` if set, else ``./data``.
    """
    return Path(os.environ.get("ALFAVIZ_DATA", "data")).expanduser()


def _canonical_torchvision(name: str) -> str | None:
    lookup = {n.lower(): n for n in TORCHVISION_DATASETS}
    lookup["fashion-mnist"] = lookup["fashion_mnist"] = "FashionMNIST"
    lookup["cifar-10"] = "CIFAR10"
    lookup["cifar-100"] = "CIFAR100"
    return lookup.get(name.strip().lower())


def _expected_files(name: str, root: Path) -> list[Path]:
    if name in ("MNIST", "FashionMNIST"):
        raw = root / name / "raw"
        return [
            raw / f
            for f in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )
        ]
    if name == "CIFAR10":
        d = root / "cifar-10-batches-py"
        return [d / f"data_batch_{i}" for i in range(1, 6)] + [d / "test_batch", d / "batches.meta"]
    if name == "CIFAR100":
        d = root / "cifar-100-python"
        return [d / "train", d / "test", d / "meta"]
    return [root / "train_32x32.mat", root / "test_32x32.mat"]  # SVHN


def _missing_message(name: str, root: Path, missing: Sequence[Path]) -> str:
    gz = " (or the same names with .gz)" if name in ("MNIST", "FashionMNIST") else ""
    archive = {
        "CIFAR10": f" (or the archive {root / 'cifar-10-python.tar.gz'} with download=True, which "
        "extracts it without downloading)",
        "CIFAR100": f" (or the archive {root / 'cifar-100-python.tar.gz'} with download=True, "
        "which extracts it without downloading)",
    }.get(name, "")
    listing = ", ".join(str(p) for p in missing[:7])
    expected = _expected_files(name, root)
    full = (
        ""
        if len(missing) == len(expected)
        else (f" Expected files: {', '.join(str(p) for p in expected)}.")
    )
    return (
        f"{name} was not found under root={str(root)!r}: missing {listing}{gz}{archive}.{full} "
        f"To get them, call load_torchvision({name!r}, root=..., download=True) on a machine "
        "with internet access, or copy those files there from a machine that has them."
    )


def _gunzip_mnist(name: str, root: Path) -> None:
    """MNIST-style files copied as ``.gz`` only: decompress them next to the archives."""
    for path in _expected_files(name, root):
        gz = path.with_name(path.name + ".gz")
        if not path.exists() and gz.exists():
            logger.info("decompressing %s", gz)
            try:
                with gzip.open(gz, "rb") as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except OSError as exc:
                raise AlfavizInputError(
                    f"could not decompress {gz} into {path} ({exc}); decompress it by hand "
                    "(gunzip) or check the file."
                ) from exc


def _torchvision_class(name: str, verify: bool) -> type:
    import torchvision.datasets as tvd

    base = getattr(tvd, name)
    if verify or name in ("MNIST", "FashionMNIST"):
        return base
    # The same class with the md5 checks of the extracted files switched off (download still
    # checks the archive): lets users load subsets, converted copies and test fixtures.
    if name == "SVHN":
        attrs: dict[str, Any] = {
            "split_list": {k: [v[0], v[1], None] for k, v in base.split_list.items()}
        }
    else:
        attrs = {
            "train_list": [[f, None] for f, _ in base.train_list],
            "test_list": [[f, None] for f, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
        }
    return type(f"_Unverified{name}", (base,), attrs)


def load_torchvision(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    verify: bool = True,
    normalize: bool = True,
) -> DataSource:
    """One of torchvision's classic image datasets, from local files.

    Parameters
    ----------
    name : str
        ``"MNIST"``, ``"FashionMNIST"``, ``"CIFAR10"``, ``"CIFAR100"`` or ``"SVHN"`` (any case).
    root : path, optional
        The torchvision root: ``<root>/MNIST/raw/...``, ``<root>/FashionMNIST/raw/...``,
        ``<root>/cifar-10-batches-py/...``, ``<root>/cifar-100-python/...`` or
        ``<root>/{train,test}_32x32.mat``. Defaults to :func:`default_data_root`.
    download : bool
        Download missing files (needs internet). Nothing is downloaded otherwise.
    verify : bool
        Check the md5 sums of the CIFAR/SVHN files, as torchvision does. Set False to load a
        subset or a converted copy in the same format.
    normalize : bool
        Normalise each channel with the usual (mean, std) of the dataset (the ALFA-Mix release's
        values); otherwise inputs are in [0, 1].

    Returns
    -------
    DataSource
        The official train split is the pool (ids ``0..n_train-1`` in file order) and the
        official test split follows. ``input_shape`` is (1, 28, 28) or (3, 32, 32).
        Images are held as uint8 and converted per batch.
    """
    canonical = _canonical_torchvision(str(name))
    if canonical is None:
        raise AlfavizInputError(
            f"unknown torchvision dataset {name!r}; choose one of {list(TORCHVISION_DATASETS)}."
        )
    root_path = Path(root).expanduser() if root is not None else default_data_root()
    if canonical in ("MNIST", "FashionMNIST"):
        _gunzip_mnist(canonical, root_path)
    expected = _expected_files(canonical, root_path)
    legacy = root_path / canonical / "processed"
    has_legacy = (legacy / "training.pt").exists() and (legacy / "test.pt").exists()
    missing = [p for p in expected if not p.exists()]
    if missing and not download and not has_legacy:
        raise AlfavizInputError(_missing_message(canonical, root_path, missing))

    cls = _torchvision_class(canonical, verify)
    splits = []
    for train in (True, False):
        kwargs: dict[str, Any] = {"download": download}
        if canonical == "SVHN":
            kwargs["split"] = "train" if train else "test"
        else:
            kwargs["train"] = train
        try:
            splits.append(cls(str(root_path), **kwargs))
        except AlfavizInputError:
            raise
        except Exception as exc:
            now_missing = [p for p in expected if not p.exists()]
            if now_missing:
                raise AlfavizInputError(
                    _missing_message(canonical, root_path, now_missing)
                    + f" (download failed: {exc})"
                ) from exc
            raise AlfavizInputError(
                f"{canonical} files under {str(root_path)!r} could not be read ({exc}). If they "
                "are a subset or a converted copy, pass verify=False to skip the md5 checks; "
                "otherwise delete them and download again (download=True)."
            ) from exc
    tv_train, tv_test = splits

    def arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
        data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
        if canonical == "SVHN":
            data = data.transpose(0, 2, 3, 1)  # (n, 3, H, W) -> (n, H, W, 3)
            labels = np.asarray(ds.labels)
        else:
            t = ds.targets
            labels = t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        return data.astype(np.uint8, copy=False), labels.astype(np.int64)

    x_tr, y_tr = arrays(tv_train)
    x_te, y_te = arrays(tv_test)
    channels = 1 if x_tr.ndim == 3 else x_tr.shape[3]
    if normalize:
        mean, std = _NORMALISATION[canonical]
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    if canonical in ("MNIST", "SVHN"):
        class_names: list[str] = [str(d) for d in range(10)]
    else:
        class_names = [str(c) for c in tv_train.classes]
    return _make_source(
        name=canonical,
        kind="image",
        train=_Uint8ImageSplit(x_tr, y_tr, mean, std),
        test=_Uint8ImageSplit(x_te, y_te, mean, std),
        class_names=class_names,
        input_shape=(channels, x_tr.shape[1], x_tr.shape[2]),
        description=(
            f"torchvision {canonical} from {root_path} (official train/test split"
            + (f", normalised with mean={mean}, std={std})" if normalize else ", in [0, 1])")
        ),
        meta={
            "source": f"torchvision.datasets.{canonical}",
            "root": str(root_path),
            "normalize": normalize,
            "mean": list(mean),
            "std": list(std),
        },
    )


# --------------------------------------------------------------------------------------------
# Image folders.
# --------------------------------------------------------------------------------------------


def _size_arg(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size: tuple[int, ...] = (image_size, image_size)
    else:
        size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise AlfavizInputError(
            f"image_size must be a positive int or (height, width); got {image_size!r}."
        )
    return size[0], size[1]


def _scan_folder(root: Path, what: str) -> tuple[list[str], list[tuple[str, int]]]:
    from torchvision.datasets import ImageFolder

    if not root.is_dir():
        raise AlfavizInputError(f"{what} {str(root)!r} is not a directory.")
    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise AlfavizInputError(
            f"{what} {str(root)!r} is not an image folder ({exc}). Expected one sub-folder per "
            f"class holding image files ({', '.join(_IMAGE_SUFFIXES[:4])}, ...), e.g. "
            "root/cat/1.png, root/dog/2.png."
        ) from exc
    return list(folder.classes), list(folder.samples)


def from_image_folder(
    root: str | os.PathLike[str],
    *,
    test_root: str | os.PathLike[str] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    image_size: int | tuple[int, int] | None = None,
    name: str | None = None,
) -> DataSource:
    """Images in a torchvision ``ImageFolder`` tree: ``root/<class name>/<image file>``.

    Parameters
    ----------
    root : path
        The train folder (or the whole data set when ``test_root`` is None).
    test_root : path, optional
        A second folder with the same class names; when omitted, a seeded stratified
        ``test_size`` fraction of ``root`` becomes the test split.
    test_size, seed :
        The split, used only without ``test_root``.
    image_size : int or (height, width), optional
        Resize every image to this size. Without it, all images must share one size.
    name : str, optional
        Name of the source; the folder's name by default.

    Returns
    -------
    DataSource
        Classes are the sorted sub-folder names. Images are read lazily; inputs are float
        (C, H, W) in [0, 1], with C = 1 when every image is greyscale and 3 otherwise.
    """
    from PIL import Image

    root = Path(root).expanduser()
    classes, samples = _scan_folder(root, "root")
    size = _size_arg(image_size)
    test_samples: list[tuple[str, int]] = []
    if test_root is not None:
        test_classes, raw_test = _scan_folder(Path(test_root).expanduser(), "test_root")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise AlfavizInputError(
                f"test_root has class folder(s) {unknown} that root {str(root)!r} lacks; the "
                "test split can only hold classes of the train pool."
            )
        remap = [classes.index(c) for c in test_classes]
        test_samples = [(p, remap[c]) for p, c in raw_test]

    sizes, modes = set(), set()
    for path, _ in samples + test_samples:
        try:
            with Image.open(path) as im:
                sizes.add((im.height, im.width))
                modes.add(im.mode)
        except OSError as exc:
            raise AlfavizInputError(f"could not read image {path!r}: {exc}") from exc
    if size is None:
        if len(sizes) > 1:
            raise AlfavizInputError(
                f"images under {str(root)!r} have {len(sizes)} different sizes "
                f"(e.g. {sorted(sizes)[:3]} as (height, width)); pass image_size=... to resize "
                "them all."
            )
        size = next(iter(sizes))
    channels = 1 if modes <= {"1", "L", "I", "I;16", "F"} else 3

    labels = np.array([c for _, c in samples], dtype=np.int64)
    if test_root is None:
        tr, te = _stratified_split(labels, test_size, seed)
        train_s = [samples[i] for i in tr]
        test_s = [samples[i] for i in te]
        how = f"stratified split test_size={test_size}, seed={seed}"
    else:
        train_s, test_s = samples, test_samples
        how = f"test split from {test_root}"

    def split(items: list[tuple[str, int]]) -> _ImageFileSplit:
        return _ImageFileSplit(
            [p for p, _ in items], np.array([c for _, c in items], dtype=np.int64), size, channels
        )

    return _make_source(
        name=name or root.name or str(root),
        kind="image",
        train=split(train_s),
        test=split(test_s),
        class_names=classes,
        input_shape=(channels, *size),
        description=f"image folder {root} ({how}; {size[0]}x{size[1]}, {channels} channel(s))",
        meta={
            "source": "image_folder",
            "root": str(root),
            "test_root": None if test_root is None else str(test_root),
            "test_size": test_size,
            "seed": seed,
            "image_size": list(size),
        },
    )


# --------------------------------------------------------------------------------------------
# Tabular data and in-memory arrays.
# --------------------------------------------------------------------------------------------


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
    y : array-like, shape (n_samples,)
        Class labels: integers, strings or anything hashable. Labels are mapped to ids
        ``0..C-1`` in sorted order unless ``class_names`` is given with integer ids.
    test_size, seed :
        Seeded stratified split; every class keeps at least one sample in the pool.
    class_names : sequence of str, optional
        Names of class ids ``0..C-1`` (only with integer ``y`` holding ids).
    standardize : bool
        Tabular only: subtract the train pool's mean and divide by its std per feature (a
        constant feature keeps std 1). The statistics are recorded in ``meta``.
    name : str
        Name of the source.
    feature_names : sequence of str, optional
        Recorded in ``meta["feature_names"]``.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:
        raise AlfavizInputError(f"X could not be read as an array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise AlfavizInputError(
            f"X must be numeric; got dtype {arr.dtype}. Encode text/categorical columns first "
            "(from_dataframe one-hot encodes them for you)."
        )
    if arr.ndim not in (2, 3, 4):
        raise AlfavizInputError(
            f"X must have shape (n_samples, n_features) or hold images (n, H, W) / "
            f"(n, C, H, W); got shape {arr.shape}."
        )
    n_y = len(y) if hasattr(y, "__len__") else None
    if n_y is None:
        raise AlfavizInputError("y must be an array of labels, one per row of X.")
    if arr.shape[0] != n_y:
        raise AlfavizInputError(
            f"X has {arr.shape[0]} rows but y has {n_y} labels; they must have the same length."
        )
    if arr.shape[0] == 0:
        raise AlfavizInputError("X and y are empty (0 samples); nothing to learn from.")
    codes, names = _encode_labels(y, class_names)
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
    x = torch.as_tensor(arr.astype(np.float32, copy=False))
    _check_finite(x, "X")
    if x.shape[1:].numel() == 0:
        raise AlfavizInputError(f"X has no features (shape {tuple(x.shape)}).")
    tr, te = _stratified_split(codes, test_size, seed)
    meta: dict[str, Any] = {"source": name, "test_size": test_size, "seed": seed}
    if feature_names is not None:
        meta["feature_names"] = [str(f) for f in feature_names]
    if kind == "tabular" and standardize:
        mean = x[tr].mean(dim=0)
        std = x[tr].std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        x = (x - mean) / std
        meta.update(standardize=True, mean=mean.tolist(), std=std.tolist())
    else:
        meta["standardize"] = False
    x = x.contiguous()

    def split(pos: np.ndarray) -> _TensorSplit:
        shown: np.ndarray | None = None
        if raw is not None:
            shown = raw[pos]
        elif kind == "image":
            shown = _to_display(x[torch.as_tensor(pos)])
        return _TensorSplit(x[torch.as_tensor(pos)].contiguous(), codes[pos], shown)

    scaled = ", standardised with train statistics" if meta["standardize"] else ""
    return _make_source(
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
    df : pandas.DataFrame
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
    if df.shape[1] < 2:
        raise AlfavizInputError(
            f"df needs at least one feature column and one target column; got columns "
            f"{list(df.columns)}."
        )
    if target is None:
        target = df.columns[-1]
    if target not in df.columns:
        raise AlfavizInputError(
            f"target column {target!r} is not in the frame; columns are {list(df.columns)}."
        )
    feats = [c for c in df.columns if c != target] if features is None else list(features)
    absent = [c for c in feats if c not in df.columns]
    if absent:
        raise AlfavizInputError(f"feature column(s) {absent} are not in the frame.")
    if target in feats:
        raise AlfavizInputError(f"target column {target!r} cannot also be a feature.")
    if categorical not in ("onehot", "error"):
        raise AlfavizInputError(f"categorical must be 'onehot' or 'error'; got {categorical!r}.")
    X = df[feats]
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
    if X.shape[1] == 0:
        raise AlfavizInputError("no feature columns left after encoding.")
    values = X.to_numpy(dtype=np.float32)
    return from_arrays(
        values,
        df[target],
        test_size=test_size,
        seed=seed,
        class_names=class_names,
        standardize=standardize,
        name=name,
        feature_names=[str(c) for c in X.columns],
    )


def from_csv(path: str | os.PathLike[str], target: str | None = None, **kwargs: Any) -> DataSource:
    """A CSV (or TSV / Parquet) table; see :func:`from_dataframe` for ``target`` and options."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise AlfavizInputError(f"table file {str(path)!r} does not exist.")
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            sep = "\t" if path.suffix == ".tsv" or path.name.endswith(".tsv.gz") else ","
            df = pd.read_csv(path, sep=sep)
    except Exception as exc:
        raise AlfavizInputError(f"could not read {str(path)!r} as a table: {exc}") from exc
    kwargs.setdefault("name", path.stem)
    return from_dataframe(df, target=target, **kwargs)


# --------------------------------------------------------------------------------------------
# A user's torch Dataset.
# --------------------------------------------------------------------------------------------


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
    name : str

    Returns
    -------
    DataSource
        ``kind="image"`` when inputs are (C, H, W) with C in {1, 3}, else ``"tabular"``.
    """
    y_all, shape = _scan_dataset(train, "train")
    if test is not None:
        y_test, shape_t = _scan_dataset(test, "test")
        if shape_t != shape:
            raise AlfavizInputError(
                f"test inputs have shape {shape_t} but train inputs have {shape}."
            )
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
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
        tr, te = _stratified_split(y_all, test_size, seed)
        train_split = _UserSplit(train, tr, y_all[tr], kind)
        test_split = _UserSplit(train, te, y_all[te], kind)
        how = f"stratified split test_size={test_size}, seed={seed}"
    else:
        train_split = _UserSplit(train, np.arange(len(y_all)), y_all, kind)
        test_split = _UserSplit(test, np.arange(len(y_test)), y_test, kind)
        how = "given test dataset"
    return _make_source(
        name=name,
        kind=kind,
        train=train_split,
        test=test_split,
        class_names=names,
        input_shape=shape,
        description=f"{name}: user dataset of {type(train).__name__} ({how})",
        meta={"source": "torch_dataset", "test_size": test_size, "seed": seed},
    )


# --------------------------------------------------------------------------------------------
# Dispatcher.
# --------------------------------------------------------------------------------------------


def _call(fn: Callable[..., DataSource], spec: str, *args: Any, **kwargs: Any) -> DataSource:
    """Call a loader, turning unknown or missing options into a clear error."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        params = [p for p in inspect.signature(fn).parameters if p not in ("name", "root")]
        raise AlfavizInputError(
            f"bad option for dataset {spec!r} ({exc}); {fn.__name__} accepts {params}."
        ) from exc
    return fn(*args, **kwargs)


def _looks_like_table(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in _TABLE_SUFFIXES)


def load_dataset(
    spec: str | os.PathLike[str] = "digits",
    root: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> DataSource:
    """Load a data source from a short spec (what the CLI's ``--dataset`` takes).

    Parameters
    ----------
    spec : str or path
        * ``"digits"`` (the default): :func:`load_digits`;
        * a torchvision name (``"mnist"``, ``"fashionmnist"``, ``"cifar10"``, ``"cifar100"``,
          ``"svhn"``): :func:`load_torchvision` with ``root``;
        * a directory: :func:`from_image_folder`. A directory holding ``train/`` and ``test/``
          (or ``val/``) sub-folders uses them as the two splits;
        * a ``.csv`` / ``.tsv`` / ``.parquet`` file: :func:`from_csv` (``target=`` names the
          label column, the last column by default).
    root : path, optional
        Root of the torchvision datasets.
    **kwargs :
        Passed to the chosen loader (e.g. ``seed``, ``test_size``, ``download``, ``target``).
    """
    text = os.fspath(spec)
    key = text.strip().lower()
    if key == "digits":
        return _call(load_digits, text, **kwargs)
    if _canonical_torchvision(text) is not None:
        return _call(load_torchvision, text, text, root, **kwargs)
    path = Path(text).expanduser()
    if path.is_dir():
        sub = {p.name.lower(): p for p in path.iterdir() if p.is_dir()}
        test_dir = sub.get("test", sub.get("val"))
        if "train" in sub and test_dir is not None and "test_root" not in kwargs:
            kwargs.setdefault("name", path.name)
            return _call(from_image_folder, text, sub["train"], test_root=test_dir, **kwargs)
        return _call(from_image_folder, text, path, **kwargs)
    if _looks_like_table(path):
        return _call(from_csv, text, path, **kwargs)
    hint = f" ({str(path)!r} does not exist)" if ("/" in text or "." in text) else ""
    raise AlfavizInputError(
        f"unknown dataset {text!r}{hint}. Choose 'digits', a torchvision name "
        f"({', '.join(n.lower() for n in TORCHVISION_DATASETS)}), an image folder path, or a "
        ".csv/.tsv/.parquet file."
    )
