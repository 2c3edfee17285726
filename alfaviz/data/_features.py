"""Pre-computed features (embeddings): :func:`from_embeddings` and :func:`load_features`.

This is the paper's frozen-feature setting: features of a foundation model, computed once,
and a linear classifier trained on them (the model ``"linear"``, which ``"auto"`` picks for
these sources). Sources made here have ``meta["embeddings"] = True``.

Files :func:`load_features` reads
---------------------------------
* ``.npy``: a 2-D array ``(n_samples, n_features)``, **memory-mapped** read-only
  (``np.lib.format.open_memmap(path, mode="r")``, what ``np.load(path, mmap_mode="r")``
  does), with the labels in a separate ``.npy`` file
  (``labels=``). Nothing is copied: a 1M x 768 float32 pool (3 GB) stays on disk, and the
  training and embedding passes read the rows they need (:class:`FeatureRows`). The one check
  of the values (NaN, inf) reads the file in 16 MB chunks with plain file reads, so opening it
  does not grow the process's memory by the file's size.
* ``.npz``: the arrays ``features`` (or ``embeddings``, ``X``), ``labels`` (or ``y``; or the
  array named by ``target=``, or a separate ``labels=`` file), and optionally ``ids`` and
  ``class_names``. A zip archive cannot be memory-mapped, so its arrays are read into memory.
* a table (``.parquet``, ``.csv``, ...): one label column (``target=``; by default the first
  of ``label``, ``labels``, ``target``, ``y``), an optional id column (``sample_id`` or
  ``id``), and numeric feature columns (all the others, or ``features=``), or a single column
  holding one vector per row. A string or categorical label column gives the class names.

Nothing is unpickled: arrays are read with :mod:`numpy.lib.format`, which refuses object
arrays, and ``.npz`` members one by one from the zip archive. Bad input (a missing file or label
column, labels of another length, non-numeric or 1-D features, NaN or inf, ids that are not
unique integers) raises :class:`~alfaviz.errors.AlfavizInputError` with one line saying what
is wrong and how to fix it.
"""

from __future__ import annotations

import logging
import mmap
import os
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from alfaviz.data._source import DataSource, SplitData, make_source
from alfaviz.data._tabular import TABLE_SUFFIXES, _build
from alfaviz.errors import AlfavizInputError

__all__ = [
    "FEATURE_SUFFIXES",
    "ID_COLUMNS",
    "NPZ_FEATURE_KEYS",
    "NPZ_LABEL_KEYS",
    "TARGET_COLUMNS",
    "FeatureRows",
    "FeatureSplit",
    "from_embeddings",
    "load_features",
]

logger = logging.getLogger(__name__)

#: Array files :func:`load_features` reads (tables are read too, see the module notes).
FEATURE_SUFFIXES: tuple[str, ...] = (".npy", ".npz")
#: Names of the feature array in an ``.npz`` file, in the order they are looked for.
NPZ_FEATURE_KEYS: tuple[str, ...] = ("features", "embeddings", "X")
#: Names of the label array in an ``.npz`` file, in the order they are looked for.
NPZ_LABEL_KEYS: tuple[str, ...] = ("labels", "y")
#: Label columns of a table looked for when ``target`` is not given, in order.
TARGET_COLUMNS: tuple[str, ...] = ("label", "labels", "target", "y")
#: Id columns of a table, in the order they are looked for.
ID_COLUMNS: tuple[str, ...] = ("sample_id", "id")

_CHUNK_BYTES = 16 * 2**20
_F32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------------------------
# Split storage over a (memory-mapped) feature matrix.
# --------------------------------------------------------------------------------------------


class FeatureRows:
    """Read-only rows of a feature matrix, read on demand: a tensor-like view of one split.

    ``rows[key]`` (an int, a slice, an int or bool array or tensor) returns a float32 tensor
    of those rows only, standardised when the source is. This is what
    :attr:`DataSource.x_train` and :attr:`~DataSource.x_test` give for a memory-mapped file,
    so that the training loop (``x[ids]``) and the embedding pass (``x[i:i + batch]``) never
    copy the whole array. :meth:`numpy` (and ``np.asarray``) materialise everything
    explicitly.

    Parameters
    ----------
    base : numpy.ndarray, shape (n_rows, n_features)
        The whole matrix (usually a read-only :class:`numpy.memmap`), any real dtype.
    pos : numpy.ndarray of int64, shape (n,)
        The rows of ``base`` in this split, in sample-id order.
    mean, std : torch.Tensor, shape (n_features,), optional
        Standardisation applied to each batch read.
    """

    dtype = torch.float32
    device = torch.device("cpu")
    ndim = 2

    def __init__(
        self,
        base: np.ndarray,
        pos: np.ndarray,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ) -> None:
        self.base = base
        self.pos = pos
        self.mean = mean
        self.std = std

    @property
    def shape(self) -> torch.Size:
        """``(n, n_features)``."""
        return torch.Size((len(self.pos), int(self.base.shape[1])))

    def __len__(self) -> int:
        return len(self.pos)

    def __repr__(self) -> str:
        kind = "memory-mapped" if isinstance(self.base, np.memmap) else "in-memory"
        return f"FeatureRows({tuple(self.shape)}, {kind} {self.base.dtype})"

    def dim(self) -> int:
        """2, like a tensor of shape (n, n_features)."""
        return 2

    def size(self, dim: int | None = None) -> Any:
        """``shape``, or ``shape[dim]``."""
        return self.shape if dim is None else self.shape[dim]

    def _select(self, key: Any) -> np.ndarray:
        n = len(self.pos)
        if isinstance(key, slice):
            return np.arange(n, dtype=np.int64)[key]
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"row {i} is out of range for {n} rows")
            return np.array([i % n], dtype=np.int64)
        if isinstance(key, torch.Tensor):
            key = key.detach().cpu().numpy()
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean mask must have shape ({n},); got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.size == 0:
            return np.empty(0, dtype=np.int64)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise IndexError(f"rows are selected with an int, a slice or a 1-D index; got {key!r}")
        idx = idx.astype(np.int64)
        if ((idx < -n) | (idx >= n)).any():
            raise IndexError(f"row index out of range for {n} rows")
        return idx % n

    def read(self, file_rows: np.ndarray) -> torch.Tensor:
        """Rows ``file_rows`` of ``base`` (positions in the file) as a float32 tensor."""
        d = int(self.base.shape[1])
        if len(file_rows) == 0:
            return torch.empty((0, d), dtype=torch.float32)
        lo, hi = int(file_rows[0]), int(file_rows[-1])
        if hi - lo + 1 == len(file_rows) and (np.diff(file_rows) == 1).all():
            block = self.base[lo : hi + 1]  # one contiguous read
        else:
            block = self.base[file_rows]
        x = torch.from_numpy(np.array(block, dtype=np.float32))
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x

    def __getitem__(self, key: Any) -> torch.Tensor:
        sel = self._select(key)
        x = self.read(self.pos[sel])
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return x[0]
        return x

    def numpy(self) -> np.ndarray:
        """Every row, materialised: float32 array of shape (n, n_features)."""
        return self[:].numpy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def detach(self) -> FeatureRows:
        """The view itself (it holds no gradients)."""
        return self

    def cpu(self) -> FeatureRows:
        """The view itself (it reads into CPU memory)."""
        return self

    def float(self) -> FeatureRows:
        """The view itself (it reads float32)."""
        return self

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Every row, materialised, then ``Tensor.to(*args, **kwargs)``."""
        return self[:].to(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        # a whole memory map pickles by file name and offset, so that worker processes (a
        # DataLoader's, an engine's) map the same file instead of receiving a copy of it
        state = dict(self.__dict__)
        base = self.base
        name = _whole_map(base)
        if name is not None:
            state["base"] = {
                "file": name, "offset": int(getattr(base, "offset", 0)), "dtype": base.dtype.str,
                "shape": tuple(base.shape), "memory_order": "F" if _fortran(base) else "C",
            }  # fmt: skip
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        base = state["base"]
        if isinstance(base, dict):
            state["base"] = np.memmap(
                base["file"], dtype=np.dtype(base["dtype"]), mode="r", offset=base["offset"],
                shape=base["shape"], order=base["memory_order"],
            )  # fmt: skip
        self.__dict__.update(state)


class FeatureSplit(SplitData):
    """One split of a feature matrix: rows ``pos`` of ``base`` (see :class:`FeatureRows`,
    which pickles a memory map by file name)."""

    def __init__(
        self,
        base: np.ndarray,
        pos: np.ndarray,
        labels: np.ndarray,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ) -> None:
        self.labels = labels
        self._rows = FeatureRows(base, pos, mean, std)

    @property
    def base(self) -> np.ndarray:
        """The whole feature matrix (a :class:`numpy.memmap` for ``.npy`` files)."""
        return self._rows.base

    def rows(self) -> FeatureRows:
        """This split's rows as a :class:`FeatureRows` view (nothing is read yet)."""
        return self._rows

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._rows[int(i)], int(self.labels[i])

    def batch(self, pos: np.ndarray) -> torch.Tensor:
        return self._rows[np.asarray(pos, dtype=np.int64)]


def _fortran(a: np.ndarray) -> bool:
    return bool(a.flags.f_contiguous and not a.flags.c_contiguous)


def _whole_map(a: np.ndarray) -> str | None:
    """The file behind ``a`` when ``a`` is a whole :class:`numpy.memmap` (not a view of one,
    whose ``offset`` would not describe it), else None."""
    if not isinstance(a, np.memmap) or not isinstance(a.base, mmap.mmap):
        return None
    name = getattr(a, "filename", None)
    return None if name is None or not os.path.isfile(name) else os.fspath(name)


# --------------------------------------------------------------------------------------------
# Boundary checks.
# --------------------------------------------------------------------------------------------


def _features_array(Z: Any, what: str) -> np.ndarray:
    """``Z`` as a real-valued 2-D array, without copying a memory map."""
    if isinstance(Z, torch.Tensor):
        Z = Z.detach().cpu()
        if Z.is_complex():
            raise AlfavizInputError(f"{what} hold complex numbers; pass real-valued features.")
        Z = (Z.float() if Z.dtype == torch.bfloat16 else Z).numpy()
    if isinstance(Z, (pd.DataFrame, pd.Series)):
        raise AlfavizInputError(
            f"{what} is a pandas {type(Z).__name__}; pass df.to_numpy(), or use "
            "load_features / from_dataframe for a table."
        )
    if isinstance(Z, np.ndarray):
        arr = Z
    else:
        try:
            arr = np.asarray(Z)
        except (ValueError, TypeError) as exc:
            raise AlfavizInputError(
                f"{what} are ragged or not an array: every sample needs the same number of "
                "features; pass a 2-D array of shape (n_samples, n_features)."
            ) from exc
    if arr.dtype.name == "bfloat16":
        arr = arr.astype(np.float32)
    if arr.dtype.kind == "c":
        raise AlfavizInputError(f"{what} hold complex numbers; pass real-valued features.")
    if arr.dtype.kind not in "biuf":
        raise AlfavizInputError(
            f"{what} must be numeric; got dtype {arr.dtype}. Pass the feature vectors as "
            "numbers (float32 is best)."
        )
    if arr.ndim != 2:
        hint = (
            " For one feature per sample pass Z.reshape(-1, 1)."
            if arr.ndim == 1
            else " Flatten each sample's features first: Z.reshape(len(Z), -1)."
        )
        raise AlfavizInputError(
            f"{what} must be 2-D, shape (n_samples, n_features); got shape {arr.shape}.{hint}"
        )
    if arr.shape[0] == 0:
        raise AlfavizInputError(f"{what} are empty (0 samples); nothing to learn from.")
    if arr.shape[1] == 0:
        raise AlfavizInputError(f"{what} have no features (shape {arr.shape}).")
    return arr


def _check_ids(ids: Any, n: int, what: str) -> np.ndarray | None:
    """``ids`` as unique int64, one per sample, or None."""
    if ids is None:
        return None
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids.to_numpy() if isinstance(ids, (pd.Series, pd.Index)) else ids)
    if arr.ndim != 1 or len(arr) != n:
        raise AlfavizInputError(
            f"{what} must hold one id per sample, shape ({n},); got shape {arr.shape}."
        )
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            hint = " (they are whole numbers stored as floats: cast them with .astype('int64'))"
        else:
            hint = ""
        raise AlfavizInputError(
            f"{what} must be integers; got dtype {arr.dtype}{hint}. Use unique integer ids, "
            "e.g. np.arange(n_samples)."
        )
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise AlfavizInputError(f"{what} must fit in int64; got ids up to {arr.max()}.")
    out = arr.astype(np.int64)
    uniq, counts = np.unique(out, return_counts=True)
    if len(uniq) != n:
        dupes = uniq[counts > 1][:5].tolist()
        raise AlfavizInputError(
            f"{what} must be unique; {int((counts > 1).sum())} id(s) occur more than once "
            f"(e.g. {dupes}). Give every sample its own id."
        )
    return out


def _chunks(base: np.ndarray) -> Any:
    """``(start, rows)`` chunks of ~16 MB, read with plain file reads for a memory map."""
    n, d = (int(s) for s in base.shape)
    step = max(1, _CHUNK_BYTES // max(1, d * base.dtype.itemsize))
    name = _whole_map(base)
    if name is not None and base.flags.c_contiguous:
        buf = np.empty((min(step, n), d), dtype=base.dtype)
        with open(name, "rb") as f:
            f.seek(int(getattr(base, "offset", 0)))
            for start in range(0, n, step):
                view = buf[: min(step, n - start)]
                got = f.readinto(view.data.cast("B"))
                if got != view.nbytes:
                    raise AlfavizInputError(
                        f"feature file {name!r} is truncated at row {start}; write it again "
                        "(np.save)."
                    )
                yield start, view
        return
    for start in range(0, n, step):
        yield start, np.asarray(base[start : start + step])


def _scan(base: np.ndarray, train_mask: np.ndarray, standardize: bool, what: str) -> Any:
    """One pass over ``base``: refuse NaN, inf and float32 overflow; train mean and std."""
    d = int(base.shape[1])
    total = np.zeros(d, np.float64)
    sq = np.zeros(d, np.float64)
    bad_rows: list[int] = []
    n_bad = 0
    overflow = False
    check = base.dtype.kind == "f"
    for start, chunk in _chunks(base):
        if check:
            with np.errstate(invalid="ignore"):
                finite = np.isfinite(chunk)
                if chunk.dtype.itemsize > 4:
                    big = np.abs(chunk) > _F32_MAX
                    overflow = overflow or bool((big & finite).any())
                    finite &= ~big
            bad = ~finite.all(axis=1)
            if bad.any():
                n_bad += int(bad.sum())
                bad_rows.extend((np.flatnonzero(bad)[:5] + start).tolist())
        if standardize and not n_bad:
            rows = chunk[train_mask[start : start + len(chunk)]].astype(np.float64)
            total += rows.sum(axis=0)
            sq += (rows * rows).sum(axis=0)
    if n_bad:
        if overflow:
            raise AlfavizInputError(
                f"{what} have values beyond float32's range (about 3.4e38) or NaN/inf in "
                f"{n_bad} row(s) (first rows: {bad_rows[:5]}); rescale them before loading."
            )
        raise AlfavizInputError(
            f"{what} contain NaN or inf in {n_bad} row(s) (first rows: {bad_rows[:5]}); "
            "recompute or drop those samples before loading."
        )
    if not standardize:
        return None, None
    k = max(int(train_mask.sum()), 1)
    mean = total / k
    std = np.sqrt(np.maximum(sq / k - mean * mean, 0.0))
    std = np.where(std > 1e-12, std, 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


# --------------------------------------------------------------------------------------------
# from_embeddings
# --------------------------------------------------------------------------------------------


def from_embeddings(
    Z: Any,
    y: Any,
    *,
    ids: Any = None,
    class_names: Sequence[str] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = False,
    name: str = "embeddings",
    feature_names: Sequence[str] | None = None,
) -> DataSource:
    """Pre-computed features (e.g. a foundation model's embeddings) and their labels.

    Train the model ``"linear"`` on them (an identity encoder and one ``nn.Linear``, which
    ``"auto"`` picks for these sources): the paper's frozen-feature setting.

    Parameters
    ----------
    Z : array-like, shape (n_samples, n_features)
        Any real dtype (read as float32). A :class:`numpy.memmap` (e.g.
        ``np.load("z.npy", mmap_mode="r")``) is **not copied**: the source reads the rows it
        needs from the file (:attr:`DataSource.x_train` is then a :class:`FeatureRows` view).
        Other arrays, tensors and lists are converted to one float32 tensor.
    y : array-like, shape (n_samples,)
        Class labels: integers, strings or anything hashable (see :func:`from_arrays`).
    ids : array-like of int, shape (n_samples,), optional
        Your own unique integer id of each row, kept as :attr:`DataSource.external_ids`
        (map with :meth:`DataSource.to_external_ids` / :meth:`~DataSource.from_external_ids`).
    class_names : sequence of str, optional
        Names of class ids ``0..C-1`` (with integer ``y`` holding ids).
    test_size, seed :
        The seeded stratified held-out split, as in :func:`from_arrays`: each class sends
        ``round(test_size * n_c)`` rows to the test split and keeps at least one in the pool.
    standardize : bool
        Subtract the train pool's mean and divide by its std per feature (off by default:
        frozen features are usually used as they are). For a memory map, the statistics are
        computed in the same chunked pass as the value check and applied to each batch read.
    name : str
        Name of the source.
    feature_names : sequence of str, optional
        One per feature, recorded in ``meta["feature_names"]``.

    Returns
    -------
    DataSource
        ``kind="tabular"``, ``input_shape=(n_features,)``, ``meta["embeddings"] = True``.

    Raises
    ------
    AlfavizInputError
        For 1-D, non-numeric, empty or non-finite features, labels of another length, or ids
        that are not unique integers.
    """
    return _from_embeddings(
        Z, y, ids=ids, class_names=class_names, test_size=test_size, seed=seed,
        standardize=standardize, name=name, feature_names=feature_names,
    )  # fmt: skip


def _from_embeddings(
    Z: Any,
    y: Any,
    *,
    ids: Any,
    class_names: Sequence[str] | None,
    test_size: float,
    seed: int,
    standardize: bool,
    name: str,
    feature_names: Sequence[str] | None,
    what: str = "features",
    y_what: str = "y",
    ids_what: str = "ids",
    meta: dict[str, Any] | None = None,
) -> DataSource:
    test_size = check_test_size(test_size)
    seed = check_seed(seed)
    standardize = check_bool(standardize, "standardize")
    name = check_name(name)
    names_given = check_str_list(class_names, "class_names")
    features = check_str_list(feature_names, "feature_names")
    arr = _features_array(Z, what)
    n, d = (int(s) for s in arr.shape)
    if isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise AlfavizInputError(f"{y_what} must be an array of labels, one per row of {what}.")
    if len(y) != n:
        raise AlfavizInputError(
            f"{what} have {n} rows but {y_what} holds {len(y)} labels; give exactly one label "
            "per row, in the same order."
        )
    if features is not None and len(features) != d:
        raise AlfavizInputError(
            f"feature_names has {len(features)} names but {what} have {d} columns; give one "
            "name per column."
        )
    ext = _check_ids(ids, n, ids_what)
    codes, names = encode_labels(y, names_given, what=y_what)
    extra = {"embeddings": True, **(meta or {})}
    if not isinstance(arr, np.memmap):
        _scan(arr, np.zeros(n, dtype=bool), False, what)
        arr32 = np.ascontiguousarray(arr, dtype=np.float32)
        x = torch.from_numpy(arr32 if arr32.flags.writeable else arr32.copy())
        tr, te = stratified_split(codes, test_size, seed)
        source = _build(
            x, codes, names, kind="tabular", raw=None, test_size=test_size, seed=seed,
            standardize=standardize, name=name, feature_names=features,
        )  # fmt: skip
        return replace(
            source,
            meta={**source.meta, **extra},
            description=f"{source.description}; {d}-d pre-computed features",
            external_ids=None if ext is None else np.concatenate([ext[tr], ext[te]]),
        )
    tr, te = stratified_split(codes, test_size, seed)
    mask = np.zeros(n, dtype=bool)
    mask[tr] = True
    mean, std = _scan(arr, mask, standardize, what)
    meta_out: dict[str, Any] = {
        "source": name, "test_size": test_size, "seed": seed, "standardize": standardize,
        **extra, "memory_mapped": True,
    }  # fmt: skip
    if arr.filename is not None:
        meta_out.setdefault("file", str(arr.filename))
    if mean is not None and std is not None:
        meta_out.update(mean=mean.tolist(), std=std.tolist())
    if features is not None:
        meta_out["feature_names"] = features
    scaled = ", standardised with train statistics" if standardize else ""
    return make_source(
        name=name,
        kind="tabular",
        train=FeatureSplit(arr, tr, codes[tr], mean, std),
        test=FeatureSplit(arr, te, codes[te], mean, std),
        class_names=names,
        input_shape=(d,),
        description=(
            f"{name}: {n} memory-mapped {d}-d pre-computed features ({arr.dtype}){scaled}; "
            f"stratified split test_size={test_size}, seed={seed}"
        ),
        meta=meta_out,
        external_ids=None if ext is None else np.concatenate([ext[tr], ext[te]]),
    )


# --------------------------------------------------------------------------------------------
# load_features: .npy / .npz / tables
# --------------------------------------------------------------------------------------------


def _read_labels(labels: Any) -> tuple[np.ndarray, str]:
    text = check_path(labels, "labels")
    path = Path(text).expanduser()
    what = f"labels file {str(path)!r}"
    if not path.is_file():
        raise AlfavizInputError(
            f"{what} does not exist; pass the .npy file of labels saved with "
            "np.save('labels.npy', y)."
        )
    if path.suffix.lower() != ".npy":
        raise AlfavizInputError(
            f"{what} must be a .npy array of one label per row (np.save('labels.npy', y)); "
            f"got a {path.suffix or 'suffix-less'} file."
        )
    try:
        with open(path, "rb") as f:
            y = np.lib.format.read_array(f)  # never unpickles (allow_pickle is off)
    except ValueError as exc:
        raise AlfavizInputError(
            f"{what} holds Python objects, which alfaviz never unpickles; save the labels as "
            "integers or strings (np.save('labels.npy', np.asarray(y, dtype=str)))."
        ) from exc
    except (OSError, EOFError) as exc:
        raise AlfavizInputError(
            f"could not read {what} ({type(exc).__name__}: {exc}); write it again with np.save."
        ) from exc
    if not isinstance(y, np.ndarray):
        raise AlfavizInputError(f"{what} must hold one array; write it with np.save.")
    return y, what


def _open_npy(path: Path) -> np.ndarray:
    try:
        # what np.load(path, mmap_mode="r") does for a .npy file; refuses object arrays
        Z = np.lib.format.open_memmap(path, mode="r")
    except ValueError as exc:
        msg = str(exc)
        if "object" in msg.lower() or "pickle" in msg.lower():
            raise AlfavizInputError(
                f"could not read {str(path)!r} as features: it holds Python objects, which "
                "alfaviz never unpickles; save a numeric array "
                "(np.save(path, Z.astype('float32')))."
            ) from exc
        raise AlfavizInputError(
            f"could not read {str(path)!r} as a .npy array ({msg}); the file may be truncated: "
            "write it again with np.save."
        ) from exc
    except (OSError, EOFError) as exc:
        raise AlfavizInputError(
            f"could not read {str(path)!r} as a .npy array ({type(exc).__name__}); write it "
            "again with np.save."
        ) from exc
    if _fortran(Z):
        raise AlfavizInputError(
            f"feature file {str(path)!r} is stored column by column (Fortran order); save it "
            "row by row: np.save(path, np.ascontiguousarray(Z))."
        )
    return Z


def _read_npz(path: Path, target: str | None) -> dict[str, Any]:
    """The named arrays of an ``.npz`` archive, read with pickles refused."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {n[: -len(".npy")]: n for n in zf.namelist() if n.endswith(".npy")}
            keys = list(members)
            fkey = next((k for k in NPZ_FEATURE_KEYS if k in keys), None)
            if fkey is None:
                raise AlfavizInputError(
                    f"could not read features from {str(path)!r}: it holds no array named "
                    f"{' or '.join(NPZ_FEATURE_KEYS)} (its arrays: {keys}); save it with "
                    "np.savez(path, features=Z, labels=y)."
                )
            if target is not None and target not in keys:
                raise AlfavizInputError(
                    f"{str(path)!r} has no array {target!r} (target=); its arrays are {keys}."
                )
            lkey = target or next((k for k in NPZ_LABEL_KEYS if k in keys), None)

            def read(key: str | None) -> np.ndarray | None:
                if key is None or key not in members:
                    return None
                with zf.open(members[key]) as f:
                    return np.lib.format.read_array(f)  # allow_pickle is off by default

            out = {
                "features": read(fkey),
                "labels": read(lkey),
                "labels_key": lkey,
                "ids": read("ids"),
                "class_names": read("class_names"),
            }
    except AlfavizInputError:
        raise
    except ValueError as exc:
        raise AlfavizInputError(
            f"could not read {str(path)!r}: it holds Python objects, which alfaviz never "
            "unpickles; save plain numeric or string arrays (np.savez(path, features=Z, labels=y))."
        ) from exc
    except Exception as exc:
        raise AlfavizInputError(
            f"could not read {str(path)!r} as a .npz archive ({type(exc).__name__}); write it "
            "again with np.savez."
        ) from exc
    return out


def _read_table(
    path: Path, target: str | None, features: list[str] | None
) -> tuple[np.ndarray, Any, Any, str]:
    """``(Z, y, ids, target)`` from a table file."""
    is_parquet = path.suffix.lower() == ".parquet"
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    try:
        df = pd.read_parquet(path) if is_parquet else pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError as exc:
        raise AlfavizInputError(f"table file {str(path)!r} is empty.") from exc
    except Exception as exc:
        raise AlfavizInputError(
            f"could not read {str(path)!r} as a {'Parquet' if is_parquet else 'text'} table "
            f"({type(exc).__name__}); check that the file is complete."
        ) from exc
    cols = [str(c) for c in df.columns]
    df.columns = cols
    if len(set(cols)) != len(cols):
        raise AlfavizInputError(f"{str(path)!r} has duplicate column names {cols}; rename them.")
    if target is None:
        target = next((c for c in TARGET_COLUMNS if c in cols), None)
        if target is None:
            raise AlfavizInputError(
                f"{str(path)!r} has no label column: none of {list(TARGET_COLUMNS)} is among its "
                f"columns {cols[:12]}; name it with target= (CLI: --target COLUMN)."
            )
    elif target not in cols:
        raise AlfavizInputError(
            f"target column {target!r} is not in {str(path)!r}; its columns are {cols[:12]}"
            f"{' ...' if len(cols) > 12 else ''}. Pass the label column with --target."
        )
    id_col = next((c for c in ID_COLUMNS if c in cols and c != target), None)
    if features is None:
        feats = [c for c in cols if c not in (target, id_col)]
    else:
        absent = [c for c in features if c not in cols]
        if absent:
            raise AlfavizInputError(f"feature column(s) {absent} are not in {str(path)!r}.")
        if target in features:
            raise AlfavizInputError(f"target column {target!r} cannot also be a feature.")
        feats = list(features)
    if not feats:
        raise AlfavizInputError(
            f"{str(path)!r} has no feature columns besides {target!r}"
            f"{f' and {id_col!r}' if id_col else ''}."
        )
    if len(df) == 0:
        raise AlfavizInputError(f"{str(path)!r} has no rows; nothing to learn from.")
    row = first_container(df[target].to_numpy())
    if row is not None:
        raise AlfavizInputError(
            f"target column {target!r} holds lists (first at row {row}); each label must be one "
            "value."
        )
    if len(feats) == 1 and first_container(df[feats[0]].to_numpy()) is not None:
        values = df[feats[0]].to_numpy()
        try:
            Z = np.stack([np.asarray(v) for v in values])
        except ValueError as exc:
            raise AlfavizInputError(
                f"vector column {feats[0]!r} holds vectors of different lengths; every row "
                "needs the same number of features."
            ) from exc
    else:
        bad = [
            c
            for c in feats
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
            or pd.api.types.is_complex_dtype(df[c])
        ]
        if bad:
            raise AlfavizInputError(
                f"feature column(s) {bad[:8]} of {str(path)!r} are not numeric; pre-computed "
                "features must be numbers (drop those columns, or name the feature columns "
                "with features=[...])."
            )
        Z = df[feats].to_numpy(dtype=np.float32)
    ids = df[id_col] if id_col is not None else None
    y = df[target]
    return Z, y, ids, target


def load_features(
    path: str | os.PathLike[str],
    target: str | None = None,
    *,
    labels: str | os.PathLike[str] | None = None,
    features: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = False,
    name: str | None = None,
) -> DataSource:
    """A file of pre-computed features: ``.npy`` (memory-mapped), ``.npz`` or a table.

    See the module notes for what each format holds; the result is
    :func:`from_embeddings` of the arrays read.

    Parameters
    ----------
    path : path
        A ``.npy`` array (n_samples, n_features), an ``.npz`` archive, or a
        ``.parquet`` / ``.csv`` table.
    target : str, optional
        A table's label column (by default the first of ``label``, ``labels``, ``target``,
        ``y``), or the name of an ``.npz`` file's label array.
    labels : path, optional
        A ``.npy`` file of labels, one per row: required for a ``.npy`` features file,
        optional for ``.npz`` (instead of a ``labels`` array in it).
    features : sequence of str, optional
        A table's feature columns (all but the label and id columns by default).
    class_names : sequence of str, optional
        Names of class ids ``0..C-1``, for integer labels (an ``.npz`` file's
        ``class_names`` array otherwise).
    test_size, seed, standardize :
        As in :func:`from_embeddings`.
    name : str, optional
        The file's stem by default.
    """
    p = Path(check_path(path, "path")).expanduser()
    if not p.is_file():
        raise AlfavizInputError(
            f"feature file {str(p)!r} does not exist; pass a .npy, .npz or .parquet file of "
            "features."
        )
    low = p.name.lower()
    if target is not None and not isinstance(target, str):
        raise AlfavizInputError(f"target must be a column name (a string); got {target!r}.")
    feats = check_str_list(features, "features")
    source_name = check_name(name) if name is not None else p.stem
    ids: Any = None
    y: Any
    meta: dict[str, Any] = {"file": str(p.resolve())}
    y_what = "the labels"
    if low.endswith(".npy"):
        if target is not None:
            raise AlfavizInputError(
                f"target={target!r} names a table column, but {str(p)!r} is a .npy array; pass "
                "its labels as a file instead: labels='labels.npy' (CLI: --labels labels.npy)."
            )
        if feats is not None:
            raise AlfavizInputError("features= names table columns; a .npy file has none.")
        Z: Any = _open_npy(p)
        if labels is None:
            raise AlfavizInputError(
                f"{str(p)!r} holds features only; pass their labels as a .npy file: "
                "labels='labels.npy' (CLI: --labels labels.npy)."
            )
        y, y_what = _read_labels(labels)
    elif low.endswith(".npz"):
        if feats is not None:
            raise AlfavizInputError("features= names table columns; an .npz file has none.")
        got = _read_npz(p, target)
        Z = got["features"]
        ids = got["ids"]
        if class_names is None and got["class_names"] is not None:
            class_names = [str(c) for c in np.asarray(got["class_names"]).ravel()]
        if labels is not None and got["labels"] is not None:
            raise AlfavizInputError(
                f"{str(p)!r} holds labels (array {got['labels_key']!r}) and labels= names a "
                "labels file too; pass only one of them."
            )
        if labels is not None:
            y, y_what = _read_labels(labels)
        elif got["labels"] is None:
            raise AlfavizInputError(
                f"{str(p)!r} holds no labels: add an array named one of {list(NPZ_LABEL_KEYS)} "
                "(np.savez(path, features=Z, labels=y)), or pass labels='labels.npy'."
            )
        else:
            y = got["labels"]
            y_what = f"array {got['labels_key']!r} of {str(p)!r}"
    elif low.endswith(TABLE_SUFFIXES):
        if labels is not None:
            raise AlfavizInputError(
                f"labels= goes with .npy/.npz feature files; the labels of the table {str(p)!r} "
                "are its target column (target=, CLI: --target)."
            )
        Z, y, ids, col = _read_table(p, target, feats)
        y_what = f"target column {col!r}"
        meta["target"] = col
    else:
        raise AlfavizInputError(
            f"{str(p)!r} is not a feature file: its name must end in "
            f"{', '.join(FEATURE_SUFFIXES + TABLE_SUFFIXES)}."
        )
    if labels is not None:
        meta["labels"] = str(Path(os.fspath(labels)).expanduser().resolve())
    return _from_embeddings(
        Z, y, ids=ids, class_names=class_names, test_size=test_size, seed=seed,
        standardize=standardize, name=source_name, feature_names=None,
        what=f"the features in {str(p)!r}", y_what=y_what, ids_what=f"the ids in {str(p)!r}",
        meta=meta,
    )  # fmt: skip
