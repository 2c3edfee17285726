"""Image folders: ``root/<class name>/<image file>``, the layout of torchvision's ``ImageFolder``.

Every image is opened and fully decoded once when the folder is loaded, so a truncated or
unreadable file is named then, not at training time. Files are decoded by Pillow with a fixed
list of raster formats (:data:`IMAGE_FORMATS`), whatever their suffix says: a PostScript or
other exotic file renamed to ``.png`` is refused instead of being handed to an external program.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alfaviz.data._checks import (
    check_name,
    check_path,
    check_seed,
    check_test_size,
    stratified_split,
)
from alfaviz.data._source import DataSource, SplitData, make_source
from alfaviz.errors import AlfavizInputError

__all__ = ["IMAGE_FORMATS", "IMAGE_SUFFIXES", "MAX_IMAGE_SIDE", "from_image_folder"]

#: File suffixes an image folder's files may have (those of torchvision's ``ImageFolder``).
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)

#: The Pillow decoders image files may use.
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "PPM", "BMP", "TIFF", "WEBP")

#: The largest ``image_size`` side accepted.
MAX_IMAGE_SIDE = 4096

_GREY_MODES = frozenset({"1", "L", "I", "I;16", "F"})


def _open(path: str) -> Any:
    from PIL import Image

    Image.init()  # register every plugin, so that each name of IMAGE_FORMATS is known
    return Image.open(path, formats=IMAGE_FORMATS)


def _read_error(path: str, exc: BaseException) -> AlfavizInputError:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        why = f"is not an image in a supported format ({', '.join(IMAGE_FORMATS)})"
    elif isinstance(exc, Image.DecompressionBombError):
        why = "is too large to decode safely (Pillow's decompression-bomb limit)"
    elif isinstance(exc, FileNotFoundError):
        why = "no longer exists"
    elif isinstance(exc, PermissionError):
        why = "cannot be read (permission denied)"
    else:
        why = f"is truncated or corrupt ({type(exc).__name__} while decoding)"
    return AlfavizInputError(
        f"image file {path!r} {why}; re-export it, or delete it and load the folder again."
    )


class _ImageFileSplit(SplitData):
    """Images read lazily from files, as float (C, H, W) in [0, 1]."""

    def __init__(
        self, paths: Sequence[str], labels: np.ndarray, size: tuple[int, int], channels: int
    ):
        self.paths = list(paths)
        self.labels = labels
        self.size = size  # (H, W)
        self.channels = channels

    def _load(self, i: int) -> np.ndarray:
        from PIL import Image

        path = self.paths[i]
        try:
            with _open(path) as f:
                im = f.convert("L" if self.channels == 1 else "RGB")
        except Exception as exc:  # the file changed after the folder was loaded
            raise _read_error(path, exc) from exc
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


def _size_arg(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    hint = (
        f"image_size must be a positive int or (height, width) of ints up to {MAX_IMAGE_SIDE}, "
        f"e.g. image_size=32; got {image_size!r}."
    )
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size: tuple[Any, ...] = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)):
        size = tuple(image_size)
    else:
        raise AlfavizInputError(hint)
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 1 <= s <= MAX_IMAGE_SIDE
        for s in size
    ):
        raise AlfavizInputError(hint)
    return int(size[0]), int(size[1])


def _scan_folder(root: Path, what: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names and ``(path, class id)`` items, in ``ImageFolder``'s order.

    Classes are the sorted sub-folder names; each class's files are found by a sorted walk
    (following links, each real folder once) and kept when their suffix is an image suffix.
    """
    if not root.is_dir():
        raise AlfavizInputError(f"{what} {str(root)!r} is not a directory.")
    example = f"e.g. {root}/cat/1.png and {root}/dog/2.png"
    try:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError as exc:
        raise AlfavizInputError(f"{what} {str(root)!r} cannot be listed ({exc.strerror}).") from exc
    if not classes:
        raise AlfavizInputError(
            f"{what} {str(root)!r} has no class sub-folders; expected one sub-folder per class "
            f"holding image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...), {example}."
        )
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for c, cls in enumerate(classes):
        seen: set[str] = set()
        walked: list[tuple[str, list[str]]] = []
        for folder, dirs, files in os.walk(root / cls, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a link back up the tree: do not walk it again
                dirs.clear()
                continue
            seen.add(real)
            walked.append((folder, files))
        before = len(samples)
        for folder, files in sorted(walked):
            for fname in sorted(files):
                if fname.lower().endswith(IMAGE_SUFFIXES):
                    samples.append((os.path.join(folder, fname), c))
        if len(samples) == before:
            empty.append(cls)
    if empty:
        raise AlfavizInputError(
            f"class folder(s) {empty} under {what} {str(root)!r} hold no image files "
            f"({', '.join(IMAGE_SUFFIXES)}); add images or remove those folders."
        )
    return classes, samples


def _inspect_images(paths: Sequence[str]) -> tuple[set[tuple[int, int]], set[str]]:
    """Decode every image once; return the (height, width) sizes and modes seen."""
    sizes: set[tuple[int, int]] = set()
    modes: set[str] = set()
    for path in paths:
        try:
            with _open(path) as im:
                im.load()  # decodes the pixels: a truncated file fails here
                sizes.add((im.height, im.width))
                modes.add(im.mode)
        except Exception as exc:
            raise _read_error(path, exc) from exc
    return sizes, modes


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
        The split, used only without ``test_root`` (but checked always).
    image_size : int or (height, width), optional
        Resize every image to this size (sides 1..:data:`MAX_IMAGE_SIDE`). Without it, all
        images must share one size.
    name : str, optional
        Name of the source; the folder's name by default.

    Returns
    -------
    DataSource
        Classes are the sorted sub-folder names. Images are decoded once here (to find
        unreadable files) and then read lazily; inputs are float (C, H, W) in [0, 1], with
        C = 1 when every image is greyscale and 3 otherwise.
    """
    root = Path(os.path.abspath(Path(check_path(root, "root")).expanduser()))
    test_size = check_test_size(test_size)
    seed = check_seed(seed)
    size = _size_arg(image_size)
    if name is not None:
        name = check_name(name)
    classes, samples = _scan_folder(root, "root")
    test_samples: list[tuple[str, int]] = []
    if test_root is not None:
        test_root = os.path.abspath(Path(check_path(test_root, "test_root")).expanduser())
        test_classes, raw_test = _scan_folder(Path(test_root), "test_root")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise AlfavizInputError(
                f"test_root has class folder(s) {unknown} that root {str(root)!r} lacks; the "
                "test split can only hold classes of the train pool."
            )
        remap = [classes.index(c) for c in test_classes]
        test_samples = [(p, remap[c]) for p, c in raw_test]

    sizes, modes = _inspect_images([p for p, _ in samples + test_samples])
    if size is None:
        if len(sizes) > 1:
            raise AlfavizInputError(
                f"images under {str(root)!r} have {len(sizes)} different sizes "
                f"(e.g. {sorted(sizes)[:3]} as (height, width)); pass image_size=... to resize "
                "them all."
            )
        size = next(iter(sizes))
    channels = 1 if modes <= _GREY_MODES else 3

    labels = np.array([c for _, c in samples], dtype=np.int64)
    if test_root is None:
        tr, te = stratified_split(labels, test_size, seed)
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

    return make_source(
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
