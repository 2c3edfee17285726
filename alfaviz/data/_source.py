"""The :class:`DataSource` every loader returns, its split storage, and its fingerprint.

Every loader returns a :class:`DataSource`: a train pool, a test split, integer labels, class
names, and **stable global sample ids**:

* the train pool has ids ``0 .. n_train - 1``, in the order of the source's train rows;
* the test split has ids ``n_train .. n_train + n_test - 1``, in the order of its rows.

The ids are a pure function of the loader's arguments (the split is seeded), so the same call
gives the same ids on every machine, and a run store can refer to samples by id alone. Use
:meth:`DataSource.labels`, :meth:`DataSource.inputs`, :meth:`DataSource.images` and
:meth:`DataSource.dataset` to go from ids to data; positions inside a split stay private.
:meth:`DataSource.fingerprint` summarises a source in a small JSON-able dict, so that data
reopened later can be checked against the data a run was made from
(:func:`check_fingerprint`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from alfaviz.errors import AlfavizInputError, RunStoreError

__all__ = [
    "FINGERPRINT_VERSION",
    "DataSource",
    "Kind",
    "SplitData",
    "TensorSplit",
    "check_fingerprint",
    "make_source",
    "to_display",
]

logger = logging.getLogger(__name__)

Kind = Literal["image", "tabular"]

#: Version of the dict :meth:`DataSource.fingerprint` returns.
FINGERPRINT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Split storage: datasets that can also fetch whole batches and display images.
# --------------------------------------------------------------------------------------------


class SplitData(Dataset):
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


class TensorSplit(SplitData):
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


def to_display(x: torch.Tensor) -> np.ndarray:
    """Float images (n, C, H, W) -> uint8 (n, H, W[, 3]), each image min-max scaled."""
    x = x.detach().float().cpu()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    u8 = ((x - lo) / (hi - lo).clamp_min(1e-12) * 255.0).round().to(torch.uint8)
    if u8.shape[1] == 1:
        return u8[:, 0].numpy()
    return u8[:, :3].permute(0, 2, 3, 1).contiguous().numpy()


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
        feature names, ...). JSON-serialisable. ``meta["embeddings"]`` is true for
        pre-computed features (:func:`~alfaviz.data.from_embeddings`).
    external_ids : numpy.ndarray of int64, shape (n_samples,), optional
        The caller's own id of each sample (an ``id`` column, an ``ids`` array), indexed by
        sample id: ``external_ids[sample_id]``. Unique. None when the data brought none; see
        :meth:`to_external_ids` and :meth:`from_external_ids`.
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
    external_ids: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for arr in (self.train_ids, self.test_ids, self.y_train, self.y_test):
            arr.setflags(write=False)
        if self.external_ids is not None:
            if self.external_ids.shape != (self.n_samples,):
                raise AlfavizInputError(
                    f"{self.name}: external_ids has shape {self.external_ids.shape}; it needs "
                    f"one id per sample, shape ({self.n_samples},)."
                )
            self.external_ids.setflags(write=False)
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

    @property
    def is_embeddings(self) -> bool:
        """True for pre-computed features (``meta["embeddings"]``); ``"auto"`` trains a linear
        head on them."""
        return bool(self.meta.get("embeddings", False))

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

    def to_external_ids(self, sample_ids: Any) -> np.ndarray:
        """The caller's own ids of ``sample_ids``, int64 array of shape (n,).

        Without :attr:`external_ids` the sample ids themselves are returned.
        """
        in_test, pos = self._locate(sample_ids)
        ids = np.where(in_test, pos + self.n_train, pos)
        return ids if self.external_ids is None else self.external_ids[ids]

    def from_external_ids(self, external_ids: Any) -> np.ndarray:
        """The sample ids of the caller's own ids ``external_ids``, int64 array of shape (n,).

        Raises
        ------
        AlfavizInputError
            For an id the data does not hold (named in the message).
        """
        ids = np.asarray(external_ids)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.size and ids.dtype.kind not in "iu":
            raise AlfavizInputError(f"external ids must be integers; got dtype {ids.dtype}.")
        ids = ids.astype(np.int64, copy=False)
        if self.external_ids is None:
            self._locate(ids)
            return ids
        order = np.argsort(self.external_ids, kind="stable")
        known = self.external_ids[order]
        at = np.searchsorted(known, ids).clip(0, max(len(known) - 1, 0))
        missing = known[at] != ids
        if missing.any():
            raise AlfavizInputError(
                f"ids {ids[missing][:5].tolist()} are not in {self.name}; its ids are the ones "
                "its file (or the ids= argument) gave."
            )
        return order[at].astype(np.int64)

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

        A memory-mapped feature file (:func:`~alfaviz.data.from_embeddings`) gives instead a
        read-only :class:`~alfaviz.data.FeatureRows` view that reads the rows asked for
        (``x[ids]``, ``x[i:j]``) from the file, so the pool is never copied whole.
        """
        rows = getattr(self.train, "rows", None)
        return rows() if callable(rows) else self.inputs(self.train_ids)

    @cached_property
    def x_test(self) -> torch.Tensor:
        """All test inputs, float32 tensor of shape (n_test, *input_shape); row i is id
        ``n_train + i``. A view for memory-mapped feature files, as :attr:`x_train`."""
        rows = getattr(self.test, "rows", None)
        return rows() if callable(rows) else self.inputs(self.test_ids)

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

    def fingerprint(self) -> dict[str, Any]:
        """A small JSON-able summary that identifies this data, for checking a reopened run.

        Two loads of the same files with the same arguments give equal fingerprints; a changed
        split, relabelled or added samples, another input shape or renamed classes do not.
        Computing it reads no inputs (only ids and labels), so it is cheap for every source.

        Returns
        -------
        dict
            ``version`` (int, :data:`FINGERPRINT_VERSION`), ``name`` (str), ``kind``
            (``"image"`` or ``"tabular"``), ``n_train`` and ``n_test`` (int), ``input_shape``
            (list of int), ``class_names`` (list of str), ``ids_sha256`` (hex SHA-256 of the
            int64 sample ids of the train split, then of the test split, each tagged with its
            length) and ``labels_sha256`` (the same over the int64 labels); with
            :attr:`external_ids`, also ``external_ids_sha256`` (the same over those ids).
        """

        def digest(train: np.ndarray, test: np.ndarray) -> str:
            h = hashlib.sha256()
            for tag, a in ((b"train", train), (b"test", test)):
                h.update(tag + len(a).to_bytes(8, "little"))
                h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
            return h.hexdigest()

        out = {
            "version": FINGERPRINT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "input_shape": [int(s) for s in self.input_shape],
            "class_names": list(self.class_names),
            "ids_sha256": digest(self.train_ids, self.test_ids),
            "labels_sha256": digest(self.y_train, self.y_test),
        }
        if self.external_ids is not None:
            ext = self.external_ids
            out["external_ids_sha256"] = digest(ext[: self.n_train], ext[self.n_train :])
        return out


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


def make_source(
    *,
    name: str,
    kind: Kind,
    train: SplitData,
    test: SplitData,
    class_names: Sequence[str],
    input_shape: Sequence[int],
    description: str,
    meta: Mapping[str, Any] | None = None,
    external_ids: np.ndarray | None = None,
) -> DataSource:
    """Check the splits' labels and assign the global ids.

    ``external_ids``, when given, holds the caller's ids of the train rows, then of the test
    rows, shape (n_train + n_test,).
    """
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
        external_ids=None if external_ids is None else np.asarray(external_ids, dtype=np.int64),
    )


def check_fingerprint(source: DataSource, expected: Mapping[str, Any], *, what: str = "") -> None:
    """Raise :class:`~alfaviz.errors.RunStoreError` unless ``source`` matches ``expected``.

    Parameters
    ----------
    source : DataSource
        The data just loaded (e.g. by :func:`~alfaviz.data.load_dataset_from_config`).
    expected : Mapping
        A dict recorded earlier by :meth:`DataSource.fingerprint`.
    what : str
        Where ``expected`` comes from, for the message (e.g. ``"run runs/digits-0"``).

    Raises
    ------
    RunStoreError
        One line naming every field that differs (recorded value, then loaded value).
    """
    if not isinstance(expected, Mapping):
        raise RunStoreError(
            f"the recorded data fingerprint{' in ' + what if what else ''} is a "
            f"{type(expected).__name__}, not a dict; the run's config is damaged."
        )
    actual = source.fingerprint()
    keys = sorted(set(actual) | set(expected))
    diffs = []
    for k in keys:
        if actual.get(k) != expected.get(k):
            a, e = actual.get(k), expected.get(k)
            if isinstance(a, list) and len(a) > 6:
                a, e = f"{len(a)} entries", (f"{len(e)} entries" if isinstance(e, list) else e)
            diffs.append(f"{k} (recorded {e!r}, loaded {a!r})")
    if diffs:
        where = f" in {what}" if what else ""
        raise RunStoreError(
            f"the data loaded for {source.name!r} does not match the fingerprint recorded{where}: "
            f"{'; '.join(diffs)}. Restore the original files, or pass the original data "
            "explicitly."
        )
