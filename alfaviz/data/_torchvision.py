"""torchvision's classic image data sets, read from local files.

Nothing is downloaded unless a caller asks for it in Python (``download=True``).

How each format is read, and why it is safe on untrusted files:

* MNIST and FashionMNIST: torchvision's own classes (raw idx files; a legacy
  ``processed/*.pt`` cache is read by torchvision with ``torch.load(weights_only=True)``);
* CIFAR-10 and CIFAR-100: the batches are Python pickles. They are read here with a
  restricted unpickler that resolves only what a NumPy array needs (``_reconstruct``,
  ``ndarray``, ``dtype``, ``_frombuffer``, ``_codecs.encode``) and refuses every other global,
  so a hostile file cannot run code. With ``verify=True`` (the default, and always when a run
  is reopened) every file's md5 must also match the official release before it is read;
* SVHN: ``scipy.io.loadmat`` of the two ``.mat`` files (no code runs), with the same md5
  check.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alfaviz.data._checks import check_bool, check_path
from alfaviz.data._source import DataSource, SplitData, make_source
from alfaviz.errors import AlfavizInputError

__all__ = ["TORCHVISION_DATASETS", "canonical_torchvision", "default_data_root", "load_torchvision"]

logger = logging.getLogger(__name__)

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


class _Uint8ImageSplit(SplitData):
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


def default_data_root() -> Path:
    """Where torchvision datasets live when no ``root`` is given.

    ``$ALFAVIZ_DATA`` if set, else ``./data``.
    """
    return Path(os.environ.get("ALFAVIZ_DATA", "data")).expanduser()


def canonical_torchvision(name: str) -> str | None:
    """The canonical spelling of a torchvision data set name, or None if it is not one."""
    lookup = {n.lower(): n for n in TORCHVISION_DATASETS}
    lookup["fashion-mnist"] = lookup["fashion_mnist"] = "FashionMNIST"
    lookup["cifar-10"] = "CIFAR10"
    lookup["cifar-100"] = "CIFAR100"
    return lookup.get(name.strip().lower())


# ---- expected files and their checksums -------------------------------------------------------


def _tv_class(name: str) -> Any:
    import torchvision.datasets as tvd

    return getattr(tvd, name)


def _cifar_files(name: str, root: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """``(train files, test files)`` of CIFAR, each ``(path, official md5)``; meta is last."""
    cls = _tv_class(name)
    d = root / cls.base_folder
    meta = (d / cls.meta["filename"], cls.meta["md5"])
    train = [(d / f, md5) for f, md5 in cls.train_list]
    test = [(d / f, md5) for f, md5 in cls.test_list]
    return train, [*test, meta]


def _svhn_files(root: Path) -> dict[str, tuple[Path, str]]:
    split_list = _tv_class("SVHN").split_list
    return {s: (root / split_list[s][1], split_list[s][2]) for s in ("train", "test")}


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
    if name in ("CIFAR10", "CIFAR100"):
        train, test = _cifar_files(name, root)
        return [p for p, _ in train + test]
    return [p for p, _ in _svhn_files(root).values()]


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
            except (OSError, EOFError) as exc:
                path.unlink(missing_ok=True)
                raise AlfavizInputError(
                    f"could not decompress {gz} into {path} ({type(exc).__name__}); the archive "
                    "is damaged: copy it again, or decompress it by hand (gunzip)."
                ) from exc


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(name: str, files: Sequence[tuple[Path, str]]) -> None:
    for path, md5 in files:
        if _md5(path) != md5:
            raise AlfavizInputError(
                f"{name} file {str(path)!r} does not match the official release (md5 differs), "
                "so it was not read. Delete it and copy the original again; for a subset or a "
                "converted copy in the same format, load it in Python with verify=False."
            )


# ---- CIFAR: pickled batches, read with a restricted unpickler ----------------------------------


def _array_globals() -> dict[tuple[str, str], Any]:
    try:  # NumPy >= 2
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    import codecs

    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and NumPy arrays; refuses every other global."""

    _allowed = _array_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def _read_cifar_file(name: str, path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise AlfavizInputError(
            f"{name} file {str(path)!r} is not a CIFAR batch: it asks to run code or build "
            f"objects other than arrays ({exc}), so it was refused. Replace it with the original."
        ) from exc
    except Exception as exc:
        raise AlfavizInputError(
            f"{name} file {str(path)!r} could not be read as a CIFAR batch "
            f"({type(exc).__name__}); it is truncated or not in the CIFAR python format. Copy "
            "the original again."
        ) from exc
    if not isinstance(entry, dict):
        raise AlfavizInputError(
            f"{name} file {str(path)!r} holds a {type(entry).__name__}, not a CIFAR batch (a "
            "dict); replace it with the original."
        )
    return entry


def _cifar_batch(name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _read_cifar_file(name, path)
    data, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    if (
        not isinstance(data, np.ndarray)
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels is None
        or len(labels) != len(data)
    ):
        raise AlfavizInputError(
            f"{name} file {str(path)!r} is not a CIFAR batch: it needs 'data' of shape "
            "(n, 3072) and one label per row; replace it with the original."
        )
    x = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(labels, dtype=np.int64)


def _read_cifar(
    name: str, root: Path, verify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    train, test = _cifar_files(name, root)
    if verify:
        _verify(name, train + test)
    parts = [_cifar_batch(name, p) for p, _ in train]
    x_tr = np.concatenate([x for x, _ in parts])
    y_tr = np.concatenate([y for _, y in parts])
    x_te, y_te = _cifar_batch(name, test[0][0])
    meta = _read_cifar_file(name, test[-1][0])
    key = _tv_class(name).meta["key"]
    names = meta.get(key)
    if not isinstance(names, (list, tuple)):
        raise AlfavizInputError(
            f"{name} file {str(test[-1][0])!r} has no {key!r} list of class names; replace it "
            "with the original."
        )
    classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    return x_tr, y_tr, x_te, y_te, classes


# ---- SVHN: MATLAB files --------------------------------------------------------------------------


def _read_svhn(root: Path, verify: bool) -> tuple[np.ndarray, ...]:
    from scipy.io import loadmat

    files = _svhn_files(root)
    if verify:
        _verify("SVHN", list(files.values()))
    out: list[np.ndarray] = []
    for path, _ in files.values():
        try:
            mat = loadmat(str(path))
            x = np.asarray(mat["X"], dtype=np.uint8).transpose(3, 0, 1, 2)  # (n, H, W, 3)
            y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
        except Exception as exc:
            raise AlfavizInputError(
                f"SVHN file {str(path)!r} could not be read ({type(exc).__name__}); it needs "
                "arrays 'X' (32, 32, 3, n) and 'y' (n, 1). Copy the original again."
            ) from exc
        if len(x) != len(y):
            raise AlfavizInputError(
                f"SVHN file {str(path)!r} has {len(x)} images but {len(y)} labels; copy the "
                "original again."
            )
        out += [x, np.where(y == 10, 0, y)]  # SVHN stores digit 0 as 10
    return tuple(out)


# ---- MNIST: torchvision's reader -----------------------------------------------------------------


def _read_mnist(
    name: str, root: Path, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    cls = _tv_class(name)
    splits = []
    for train in (True, False):
        try:
            splits.append(cls(str(root), train=train, download=download))
        except Exception as exc:
            missing = [p for p in _expected_files(name, root) if not p.exists()]
            if missing:
                raise AlfavizInputError(
                    _missing_message(name, root, missing) + f" (download failed: "
                    f"{type(exc).__name__})"
                ) from exc
            raise AlfavizInputError(
                f"{name} files under {str(root)!r} could not be read ({type(exc).__name__}); "
                "they are truncated or not in the idx format. Delete them (and any "
                f"{name}/processed folder) and copy the originals again."
            ) from exc
    (x_tr, y_tr), (x_te, y_te) = ((s.data.numpy(), s.targets.numpy()) for s in splits)
    classes = [str(d) for d in range(10)] if name == "MNIST" else [str(c) for c in cls.classes]
    return x_tr, y_tr, x_te, y_te, classes


def _download(name: str, root: Path) -> None:
    """Fetch the official archive (CIFAR) or files (SVHN), checking their md5 sums."""
    from torchvision.datasets.utils import download_and_extract_archive, download_url

    cls = _tv_class(name)
    try:
        if name == "SVHN":
            for url, filename, md5 in cls.split_list.values():
                if not (root / filename).exists():
                    download_url(url, str(root), filename, md5)
        else:
            download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except Exception as exc:
        missing = [p for p in _expected_files(name, root) if not p.exists()]
        raise AlfavizInputError(
            _missing_message(name, root, missing) + f" (download failed: {type(exc).__name__})"
        ) from exc


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
        Check the md5 sums of the CIFAR/SVHN files against the official release before
        reading them. Set False to load a subset or a converted copy in the same format (the
        CIFAR batches are still read with a restricted unpickler that cannot run code).
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
    if not isinstance(name, str):
        raise AlfavizInputError(
            f"name must be a string, one of {list(TORCHVISION_DATASETS)}; got {name!r}."
        )
    canonical = canonical_torchvision(name)
    if canonical is None:
        raise AlfavizInputError(
            f"unknown torchvision dataset {name!r}; choose one of {list(TORCHVISION_DATASETS)}."
        )
    download = check_bool(download, "download")
    verify = check_bool(verify, "verify")
    normalize = check_bool(normalize, "normalize")
    root_path = (
        Path(check_path(root, "root")).expanduser() if root is not None else default_data_root()
    )
    if canonical in ("MNIST", "FashionMNIST"):
        _gunzip_mnist(canonical, root_path)
    expected = _expected_files(canonical, root_path)
    legacy = root_path / canonical / "processed"
    has_legacy = (legacy / "training.pt").exists() and (legacy / "test.pt").exists()
    missing = [p for p in expected if not p.exists()]
    if missing and not download and not has_legacy:
        raise AlfavizInputError(_missing_message(canonical, root_path, missing))

    if canonical in ("MNIST", "FashionMNIST"):
        x_tr, y_tr, x_te, y_te, class_names = _read_mnist(canonical, root_path, download)
    else:
        if missing:  # download is True here
            _download(canonical, root_path)
        if canonical == "SVHN":
            x_tr, y_tr, x_te, y_te = _read_svhn(root_path, verify)
            class_names = [str(d) for d in range(10)]
        else:
            x_tr, y_tr, x_te, y_te, class_names = _read_cifar(canonical, root_path, verify)
    channels = 1 if x_tr.ndim == 3 else x_tr.shape[3]
    if normalize:
        mean, std = _NORMALISATION[canonical]
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    return make_source(
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
