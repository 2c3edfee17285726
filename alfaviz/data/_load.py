"""The dispatcher by name, folder or file, and the safe reopening of a run's data from its config.

A run records its data as ``{"spec": <str>, "kwargs": {...}}`` (build it with
:func:`data_config`) and reopens it with :func:`load_dataset_from_config`, which

* accepts only the options of :data:`CONFIG_OPTIONS` for the kind of source the spec names
  (anything else raises :class:`~alfaviz.errors.AlfavizInputError` naming the key), with plain
  JSON values;
* never downloads (``download`` may only be ``false``) and never turns off an integrity check
  (``verify`` may only be ``true``);
* never unpickles: the spec can only name the digits, a torchvision data set, an image folder,
  a ``.csv``/``.tsv``/``.txt``/``.gz``/``.parquet`` table or a ``.npy``/``.npz`` feature file
  (read with ``allow_pickle=False``), none of whose readers runs
  ``pickle``, ``torch.load`` without ``weights_only=True``, ``np.load(allow_pickle=True)`` or
  ``pd.read_pickle``. (CIFAR batches are pickles: they are md5-checked against the official
  release first, and read with an unpickler that can only build arrays.)
* checks the data it loaded against the recorded ``fingerprint``, when there is one.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from alfaviz.data._digits import load_digits
from alfaviz.data._features import FEATURE_SUFFIXES, load_features
from alfaviz.data._images import from_image_folder
from alfaviz.data._source import DataSource, check_fingerprint
from alfaviz.data._tabular import TABLE_SUFFIXES, from_csv
from alfaviz.data._torchvision import TORCHVISION_DATASETS, canonical_torchvision, load_torchvision
from alfaviz.errors import AlfavizInputError

__all__ = [
    "CONFIG_OPTIONS",
    "SourceKind",
    "data_config",
    "load_dataset",
    "load_dataset_from_config",
    "source_kind",
]

logger = logging.getLogger(__name__)

SourceKind = Literal["digits", "torchvision", "image_folder", "table"]


# ---- resolving a spec ------------------------------------------------------------------------


def _check_spec(spec: Any) -> str:
    if spec is None:
        raise AlfavizInputError(
            "dataset spec is None; pass a name ('digits', 'mnist', 'cifar10', ...), an image "
            "folder or a .csv/.parquet file."
        )
    if not isinstance(spec, (str, os.PathLike)):
        raise AlfavizInputError(
            f"dataset spec must be a string or a path; got {type(spec).__name__} {spec!r}. Pass "
            "a name ('digits', 'mnist', ...), an image folder or a .csv/.parquet file."
        )
    text = os.fspath(spec)
    if not isinstance(text, str):
        raise AlfavizInputError(f"dataset spec must be a text path, not bytes; got {text!r}.")
    if not text.strip():
        raise AlfavizInputError(
            f"dataset spec is empty ({text!r}); pass a name ('digits', 'mnist', ...), an image "
            "folder or a .csv/.parquet file."
        )
    if "\x00" in text:
        raise AlfavizInputError(f"dataset spec {text!r} contains a NUL byte; pass a clean path.")
    return text


def _looks_like_table(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES + FEATURE_SUFFIXES)


def _is_feature_file(path: Path) -> bool:
    return path.name.lower().endswith(FEATURE_SUFFIXES)


def _split_dirs(path: Path) -> tuple[Path, Path] | None:
    """``(train, test)`` sub-folders of an image folder that has them (``test`` or ``val``)."""
    sub = {p.name.lower(): p for p in path.iterdir() if p.is_dir()}
    test_dir = sub.get("test", sub.get("val"))
    if "train" in sub and test_dir is not None:
        return sub["train"], test_dir
    return None


def source_kind(spec: str | os.PathLike[str]) -> SourceKind:
    """Which kind of source ``spec`` names, as :func:`load_dataset` dispatches it.

    Returns
    -------
    {"digits", "torchvision", "image_folder", "table"}
        ``"table"`` covers every file of samples: tables (``.csv``, ``.parquet``, ...) and
        feature arrays (``.npy``, ``.npz``).

    Raises
    ------
    AlfavizInputError
        For an empty spec, or one that names no known data set, folder or table file.
    """
    text = _check_spec(spec)
    if text.strip().lower() == "digits":
        return "digits"
    if canonical_torchvision(text) is not None:
        return "torchvision"
    path = Path(text).expanduser()
    if path.is_dir():
        return "image_folder"
    if _looks_like_table(path):
        return "table"
    hint = f" ({str(path)!r} does not exist)" if ("/" in text or "." in text) else ""
    if path.is_file():
        suffixes = ", ".join(TABLE_SUFFIXES + FEATURE_SUFFIXES)
        hint = f" ({str(path)!r} is not a table: its name must end in {suffixes})"
    raise AlfavizInputError(
        f"unknown dataset {text!r}{hint}. Choose 'digits', a torchvision name "
        f"({', '.join(n.lower() for n in TORCHVISION_DATASETS)}), an image folder path, a "
        ".csv/.tsv/.parquet file, or a .npy/.npz feature file."
    )


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
          label column, the last column by default); with ``embeddings=True``, pre-computed
          features read by :func:`~alfaviz.data.load_features` (an ``id``/``sample_id``
          column, numeric features, no one-hot encoding);
        * a ``.npy`` (memory-mapped) or ``.npz`` feature file:
          :func:`~alfaviz.data.load_features` (``labels=`` names a ``.npy`` file of labels).

        ``None``, ``""`` and blank strings are refused.
    root : path, optional
        Root of the torchvision datasets (ignored by the other kinds).
    **kwargs :
        Passed to the chosen loader (e.g. ``seed``, ``test_size``, ``download``, ``target``).
    """
    text = _check_spec(spec)
    kind = source_kind(text)
    if kind == "digits":
        return _call(load_digits, text, **kwargs)
    if kind == "torchvision":
        return _call(load_torchvision, text, text, root, **kwargs)
    path = Path(text).expanduser()
    if kind == "table":
        embeddings = kwargs.pop("embeddings", False)
        if not isinstance(embeddings, bool):
            raise AlfavizInputError(
                f"embeddings must be True or False; got {type(embeddings).__name__} {embeddings!r}."
            )
        if embeddings or _is_feature_file(path) or "labels" in kwargs:
            return _call(load_features, text, path, **kwargs)
        return _call(from_csv, text, path, **kwargs)
    dirs = _split_dirs(path)
    if dirs is not None and "test_root" not in kwargs:
        kwargs.setdefault("name", path.name)
        return _call(from_image_folder, text, dirs[0], test_root=dirs[1], **kwargs)
    return _call(from_image_folder, text, path, **kwargs)


# ---- configs ---------------------------------------------------------------------------------

_Check = Callable[[str, str, Any], None]


def _fail(kind: str, key: str, value: Any, want: str) -> AlfavizInputError:
    return AlfavizInputError(
        f"data option {key!r} of a {kind} source must be {want}; got {value!r}. Fix it in the "
        "run's config.json, or pass data= explicitly."
    )


def _int(kind: str, key: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(kind, key, v, "an integer")


def _number(kind: str, key: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _fail(kind, key, v, "a number")


def _bool(kind: str, key: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _fail(kind, key, v, "true or false")


def _str(kind: str, key: str, v: Any) -> None:
    if not isinstance(v, str):
        raise _fail(kind, key, v, "a string")


def _opt_str(kind: str, key: str, v: Any) -> None:
    if v is not None and not isinstance(v, str):
        raise _fail(kind, key, v, "a string or null")


def _opt_str_list(kind: str, key: str, v: Any) -> None:
    if v is not None and not (isinstance(v, list) and all(isinstance(s, str) for s in v)):
        raise _fail(kind, key, v, "a list of strings or null")


def _opt_size(kind: str, key: str, v: Any) -> None:
    ok_int = isinstance(v, int) and not isinstance(v, bool)
    ok_pair = (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in v)
    )
    if v is not None and not (ok_int or ok_pair):
        raise _fail(kind, key, v, "an integer, a [height, width] pair or null")


def _only(value: Any, why: str) -> _Check:
    def check(kind: str, key: str, v: Any) -> None:
        if v is not value or not isinstance(v, bool):
            raise AlfavizInputError(
                f"data option {key}={v!r} is never honoured from a config file ({why}); remove "
                f"it, or set it to {str(value).lower()}."
            )

    return check


_SPLIT = {"seed": _int, "test_size": _number}

#: Options :func:`load_dataset_from_config` accepts for each kind of source, with the check of
#: each value (JSON types; the loaders then check ranges). ``download`` may only be false and
#: ``verify`` only true: opening a run never downloads and never skips an integrity check.
CONFIG_OPTIONS: Mapping[SourceKind, Mapping[str, _Check]] = MappingProxyType(
    {
        "digits": MappingProxyType(dict(_SPLIT)),
        "torchvision": MappingProxyType(
            {
                "root": _opt_str,
                "normalize": _bool,
                "download": _only(False, "opening a run downloads nothing"),
                "verify": _only(True, "integrity checks stay on"),
            }
        ),
        "image_folder": MappingProxyType(
            {**_SPLIT, "test_root": _opt_str, "image_size": _opt_size, "name": _opt_str}
        ),
        "table": MappingProxyType(
            {
                **_SPLIT,
                "target": _opt_str,
                "features": _opt_str_list,
                "categorical": _str,
                "standardize": _bool,
                "class_names": _opt_str_list,
                "name": _str,
                "embeddings": _bool,
                "labels": _opt_str,
            }
        ),
    }
)

_CONFIG_KEYS = ("spec", "kwargs", "fingerprint", "summary")


def _check_kwargs(kind: SourceKind, spec: str, kwargs: Any) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise AlfavizInputError(
            f"data kwargs must be a mapping of option names to values; got {type(kwargs).__name__}."
        )
    allowed = CONFIG_OPTIONS[kind]
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if not isinstance(key, str) or key not in allowed:
            raise AlfavizInputError(
                f"data option {key!r} is not allowed for the {kind} source {spec!r}; allowed "
                f"options are {sorted(allowed)}. Remove it from the run's config.json."
            )
        allowed[key](kind, key, value)
        out[key] = list(value) if isinstance(value, list) else value
    return out


def data_config(
    spec: str | os.PathLike[str],
    kwargs: Mapping[str, Any] | None = None,
    *,
    source: DataSource | None = None,
) -> dict[str, Any]:
    """The JSON-ready entry a run records so that :func:`load_dataset_from_config` reopens it.

    Parameters
    ----------
    spec : str or path
        What was passed to :func:`load_dataset`. Folder and table paths are made absolute, so
        the run reopens from any working directory.
    kwargs : Mapping, optional
        The options passed with it. ``download`` is dropped (the files are local now, and a
        reopened run never downloads), as is a ``root`` that the kind of source ignores; the
        rest must pass :data:`CONFIG_OPTIONS`.
    source : DataSource, optional
        The loaded data; its :meth:`~DataSource.fingerprint` is recorded too.

    Returns
    -------
    dict
        ``{"spec": str, "kwargs": dict}``, plus ``"fingerprint"`` when ``source`` is given.

    Raises
    ------
    AlfavizInputError
        When the spec or an option could not be honoured on reopening (e.g. ``verify=False``).
    """
    text = _check_spec(spec)
    kind = source_kind(text)
    kw = dict(kwargs or {})
    kw.pop("download", None)
    if kind != "torchvision" and "root" in kw:
        kw.pop("root")
    if kind in ("image_folder", "table"):
        text = str(Path(text).expanduser().resolve())
        for key in ("test_root", "labels"):
            if isinstance(kw.get(key), (str, os.PathLike)):
                kw[key] = str(Path(kw[key]).expanduser().resolve())
    elif kind == "torchvision" and isinstance(kw.get("root"), os.PathLike):
        kw["root"] = os.fspath(kw["root"])
    if isinstance(kw.get("image_size"), tuple):
        kw["image_size"] = list(kw["image_size"])
    for key in ("features", "class_names"):
        if isinstance(kw.get(key), tuple):
            kw[key] = list(kw[key])
    out: dict[str, Any] = {"spec": text, "kwargs": _check_kwargs(kind, text, kw)}
    if source is not None:
        out["fingerprint"] = source.fingerprint()
    return out


def load_dataset_from_config(config: Mapping[str, Any], *, what: str = "") -> DataSource:
    """Reopen a run's data from its config entry, safely: nothing runs, nothing downloads.

    Parameters
    ----------
    config : Mapping
        ``{"spec": str, "kwargs": {...}}`` as written by :func:`data_config`, optionally with
        ``"fingerprint"`` (checked against the loaded data) and ``"summary"`` (ignored).
    what : str
        Where the config comes from (e.g. the run's path), for error messages.

    Returns
    -------
    DataSource
        ``load_dataset(spec, **kwargs)``.

    Raises
    ------
    AlfavizInputError
        For a missing or empty spec, an option not on the :data:`CONFIG_OPTIONS` allow-list of
        its kind of source (named in the message), ``download=true``, ``verify=false``, or a
        value of the wrong type; and for whatever the loader refuses.
    RunStoreError
        When the loaded data does not match the recorded ``fingerprint``.
    """
    where = f" of {what}" if what else ""
    if not isinstance(config, Mapping):
        raise AlfavizInputError(
            f"the data config{where} must be a mapping {{'spec': ..., 'kwargs': {{...}}}}; got "
            f"{type(config).__name__}."
        )
    extra = [k for k in config if k not in _CONFIG_KEYS]
    if extra:
        raise AlfavizInputError(
            f"the data config{where} has unknown key(s) {extra}; it may hold only "
            f"{list(_CONFIG_KEYS)}."
        )
    spec = config.get("spec")
    if spec is None:
        raise AlfavizInputError(
            f"the data config{where} records no dataset spec (the data was given in memory); "
            "pass the data explicitly (data=<the DataSource>)."
        )
    if not isinstance(spec, str):
        raise AlfavizInputError(
            f"the data config{where} has a spec of type {type(spec).__name__}; it must be a string."
        )
    kind = source_kind(spec)
    kwargs = _check_kwargs(kind, spec, config.get("kwargs"))
    logger.info("reopening %s data %r with %s", kind, spec, kwargs)
    source = load_dataset(spec, **kwargs)
    if config.get("fingerprint") is not None:
        check_fingerprint(source, config["fingerprint"], what=what or f"the config of {spec!r}")
    return source
