"""The run store: one directory per run, so a run can be copied, opened later and served.

Layout of a run directory::

    run/
      config.json                  the config, seed, versions, data fingerprint, checksum
      labels.sqlite                actions, events, the rounds index (SQLite, WAL mode)
      <attached files>             optional, e.g. the model's initial state (see ``files=``)
      rounds/
        round_0003/
          round.json               the per-round row and a manifest (size + sha256 per file)
          samples.parquet
          flips.parquet
          embeddings.parquet       optional: sample_id + a fixed-size-list column ``embedding``
          coords.parquet           optional: sample_id, x, y
          head.npz                 optional: the round's classifier head (numeric arrays)
          critical_eps.parquet     optional: sample_id + the (n, n_classes) float32 critical ε,
                                   for a large pool whose flips frame keeps the candidates only
          extra/<name>.parquet     optional named frames
      derived/
        round_0003/
          <name>.<sha256[:16]>.parquet   replaceable frames computed from the committed round

Durability
----------
* **Creating** a run builds the whole directory (``config.json``, ``labels.sqlite`` with the
  initial set, attached files, ``rounds/``) in a hidden temporary directory beside it and
  renames it into place: a run either exists complete, initial set included, or not at all.
* **Writing a round** is a two-step commit whose commit point is one SQLite transaction:

  1. every file goes into a hidden ``rounds/.round_NNNN.tmp-*`` directory (each fsync'ed,
     ``round.json`` last), which is then renamed to ``rounds/round_NNNN``;
  2. one transaction in ``labels.sqlite`` inserts the round's row into the rounds index
     (with the checksum of its ``round.json``) *and* the labels the round produced.

  A round exists only once step 2 has committed, so a reader sees the round and its labels
  together or neither. A folder without its index row is an interrupted write: readers
  ignore it and the next writable open removes it. The choice of the label log as the
  commit record (rather than the folder rename) is what lets the labels join the same
  atomic unit: SQLite's commit is the one atomic step that can cover many rows, and the
  checksum in the index row ties the transaction to exactly one ``round.json``.
* ``overwrite=True`` renames the old folder aside (``.round_NNNN.old-*``) before the new one
  moves in, and deletes it after the commit; an open after a crash in between puts back
  whichever folder the index names.
* Every Parquet file is listed in ``round.json`` with its size and SHA-256, and
  ``round.json`` and ``config.json`` carry checksums of their own content. Reading verifies
  them, so a damaged file raises :class:`RunStoreError` naming it instead of loading
  partially. Parquet pages also carry CRC checksums that pyarrow verifies on read.
* Labels and events go to ``labels.sqlite`` (see :class:`LabelLog`): one row per action,
  committed as soon as it is added; a batch of machine labels in one transaction.
* **Derived frames** (:meth:`RunStore.write_derived`, e.g. interpolation paths projected on
  demand after the round was written) never touch the immutable round folder. Each version
  is written under a name that carries its SHA-256 (fsync'ed, renamed into place), and one
  SQLite transaction then records it in ``run_meta`` with its size, its SHA-256 and the
  checksum of the ``round.json`` it was computed from; only then is the version it replaced
  deleted. A reader follows the record, so it sees the old version or the new one, never a
  partial file; a version whose round was since overwritten counts as absent. Files no record
  names (an interrupted write) are removed on the next writable open.

Reopening
---------
:meth:`RunStore.open` refuses a missing or empty ``labels.sqlite`` (never recreating it), a
hand-edited ``config.json``, a round folder the index records but that is gone or replaced,
and (with ``expected_fingerprint``) data that differ from the fingerprint recorded at
creation. Leftovers of interrupted writes are removed when the run is opened writable. A
run in a directory without write permission opens read-only (:attr:`RunStore.read_only`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from alfaviz import __version__, schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store import _io
from alfaviz.store._io import (
    TempName,
    canonical,
    check_int,
    check_path,
    check_str,
    dumps,
    file_digest,
    fsync_dir,
    is_stale,
    parse_temp_name,
    read_json_file,
    remove_tree,
    sha256,
    temp_name,
    write_file,
    write_point,
)
from alfaviz.store._labels import LabelLog, check_labels
from alfaviz.store._layout import (
    CONFIG_FILE,
    COORDS_FILE,
    CRITICAL_EPS_FILE,
    DERIVED_DIR,
    EMBEDDINGS_FILE,
    EXTRA_DIR,
    FLIPS_FILE,
    FORMAT_VERSION,
    HEAD_FILE,
    LABELS_FILE,
    NAME_RE,
    READABLE_FORMATS,
    RESERVED_NAMES,
    ROUND_DIR_RE,
    ROUND_FILE,
    ROUNDS_DIR,
    SAMPLES_FILE,
    round_dir_name,
)
from alfaviz.store._parquet import (
    Parts,
    arrays_to_npz,
    check_frame,
    check_row,
    embeddings_table,
    frame_table,
    frame_to_parquet,
    npz_to_arrays,
    parquet_to_table,
    table_to_embeddings,
    table_to_frame,
    write_frame_parts,
    write_matrix_parts,
    write_table_file,
)

__all__ = ["RunStore"]

logger = logging.getLogger(__name__)

_CONFIG_SHA_KEY = "config_sha256"
_INDEX_KEY = "rounds_index"
_DERIVED_KEY = f"{DERIVED_DIR}/"
"""Prefix of the ``run_meta`` keys that record derived frames (``derived/round_0003/paths``)."""
_DERIVED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_ANY_DERIVED_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.[0-9a-f]{16}\.parquet$")


def _derived_file_re(name: str) -> re.Pattern[str]:
    """The file names :meth:`RunStore.write_derived` gives the versions of frame ``name``."""
    return re.compile(rf"^{re.escape(name)}\.[0-9a-f]{{16}}\.parquet$")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    """Library versions for ``config.json`` (torch's without importing it)."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "alfaviz": __version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = str(torch.__version__)
    else:
        from importlib import metadata

        try:
            versions["torch"] = metadata.version("torch")
        except metadata.PackageNotFoundError:  # pragma: no cover - torch is a core dependency
            versions["torch"] = None
    return versions


def _checked_body(doc: Any) -> tuple[dict[str, Any], bool]:
    """``(doc, checksum_ok)`` of a JSON document carrying a ``checksum`` of its own content."""
    if not isinstance(doc, dict) or "checksum" not in doc:
        return doc, False
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return doc, sha256(canonical(body).encode()) == doc["checksum"]


def _jsonable_mapping(value: Any, name: str, example: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise AlfavizInputError(
            f"{name} must be a dict; got {type(value).__name__}. Pass e.g. {example}."
        )
    for key in value:
        if not isinstance(key, str):
            raise AlfavizInputError(f"{name} keys must be strings; got {key!r}. Rename the key.")
    loaded: dict[str, Any] = json.loads(dumps(dict(value), name))
    return loaded


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _short(value: Any) -> str:
    text = canonical(value) if value is not _MISSING else "missing"
    return text if len(text) <= 40 else text[:37] + "..."


_MISSING = object()


def _frame_or_parts(value: Any, what: str) -> pd.DataFrame | Parts:
    return value if isinstance(value, Parts) else check_frame(value, what)


def _writer_stale(manifest: Any, folder: Path) -> bool:
    """Whether the process that wrote an uncommitted round folder is gone."""
    writer = manifest.get("writer") if isinstance(manifest, dict) else None
    if not isinstance(writer, dict) or not isinstance(writer.get("pid"), int):
        return False
    parsed = TempName(folder.name, "tmp", writer.get("host"), writer["pid"])
    return is_stale(folder, parsed)


# ---------------------------------------------------------------------------------------------
# the run store
# ---------------------------------------------------------------------------------------------


class RunStore:
    """A run directory: config, immutable per-round Parquet artefacts and a label log.

    Use :meth:`create` for a new run and :meth:`open` for an existing one; the constructor
    does not touch the disk. The store is picklable (it pickles as its path and settings)
    and safe to use from several threads and processes: rounds are written atomically and
    the label log opens one SQLite connection per thread and process.

    Parameters
    ----------
    path : str or Path
        The run directory.
    verify : bool
        Check every Parquet file against the size and SHA-256 recorded in ``round.json``
        before loading it.
    timeout : float
        SQLite busy timeout in seconds (see :class:`LabelLog`).
    read_only : bool
        Refuse every write with :class:`RunStoreError` and open the label log read-only.
    session : str, optional
        This writer's session id (see :attr:`session`); a fresh random id by default.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verify: bool = True,
        timeout: float = 30.0,
        read_only: bool = False,
        session: str | None = None,
    ) -> None:
        self._path = check_path(path)
        self._verify = bool(verify)
        self._read_only = bool(read_only)
        self._log = LabelLog(
            self._path / LABELS_FILE,
            timeout=timeout,
            session=session,
            must_exist=True,
            read_only=self._read_only,
        )
        self._timeout = float(timeout)
        self._meta: dict[str, Any] | None = None

    # construction -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        config: Mapping[str, Any],
        *,
        exist_ok: bool = False,
        seed: int | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        fingerprint: Mapping[str, Any] | None = None,
        initial_labels: Iterable[tuple[Any, ...]] | None = None,
        files: Mapping[str, bytes] | None = None,
        session: str | None = None,
    ) -> RunStore:
        """Create a new run directory, complete, in one atomic step.

        Parameters
        ----------
        path : str or Path
            The run directory. It may exist if it is empty.
        config : Mapping
            JSON-serialisable run configuration (numpy scalars and arrays are converted).
        exist_ok : bool
            If ``path`` already is a run with the same config, open it (resume) instead of
            raising. The initial set is not labelled again.
        seed : int, optional
            The run's random seed; defaults to ``config["seed"]`` when present.
        verify, timeout, session
            See :class:`RunStore`.
        fingerprint : Mapping, optional
            A JSON-able description of the data (ids, shapes, class names, hashes), recorded
            so that :meth:`check_fingerprint` / ``open(expected_fingerprint=...)`` can refuse
            other data later.
        initial_labels : iterable of (sample_id, label), optional
            The initial labelled set, committed (source ``"initial"``, round 0) in the same
            atomic step as the directory. With ``exist_ok`` on an existing run they are
            added only if the run has no initial labels yet.
        files : Mapping[str, bytes], optional
            Further files to place in the run directory at creation (e.g. a model's initial
            state), listed with their SHA-256 in ``config.json``; read them back with
            :meth:`read_file`. With ``exist_ok`` on an existing run they are ignored.

        Returns
        -------
        RunStore

        Raises
        ------
        RunStoreError
            If ``path`` is a run and ``exist_ok`` is false, if it is a run with a different
            config or fingerprint, or if it is a non-empty directory that is not a run.
        """
        path = check_path(path)
        check_str(session, "session", allow_none=True)
        if not isinstance(config, Mapping):
            raise AlfavizInputError(
                f"config must be a dict; got {type(config).__name__}. Pass e.g. {{'seed': 0}}."
            )
        config = dict(config)
        if seed is None and config.get("seed") is not None:
            seed = config["seed"]
        elif seed is not None and config.get("seed") not in (None, seed):
            raise AlfavizInputError(
                f"seed={seed!r} disagrees with config['seed']={config['seed']!r}; pass one."
            )
        if seed is not None:
            seed = check_int(seed, "seed", minimum=None, maximum=None)
        config_doc = json.loads(dumps(config, "config"))
        fp = None
        if fingerprint is not None:
            fp = _jsonable_mapping(fingerprint, "fingerprint", "{'n_samples': 100}")
        initial = (
            []
            if initial_labels is None
            else check_labels(initial_labels, source="initial", what="initial_labels")
        )
        attached = cls._check_files(files)
        if path.exists() and not path.is_dir():
            raise RunStoreError(f"cannot create a run at {path}: it exists and is not a directory.")
        if not (path / CONFIG_FILE).exists():
            if path.is_dir() and any(path.iterdir()):
                raise RunStoreError(
                    f"cannot create a run at {path}: the directory is not empty and is not a "
                    f"run directory ({CONFIG_FILE} is missing). Choose a new or empty directory."
                )
            meta: dict[str, Any] = {
                "format_version": FORMAT_VERSION,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "seed": seed,
                "versions": _versions(),
                "config": config_doc,
                "fingerprint": fp,
                "files": {
                    name: {"bytes": len(data), "sha256": sha256(data)}
                    for name, data in attached.items()
                },
            }
            meta["checksum"] = sha256(canonical(meta).encode())
            if cls._build(path, meta, initial, attached, timeout):
                store = cls.open(path, verify=verify, timeout=timeout, session=session)
                logger.info("created run %s", path)
                return store
        # the run exists (or a concurrent creator just made it)
        if not exist_ok:
            raise RunStoreError(
                f"a run already exists at {path}; pass exist_ok=True to reopen it, or "
                "choose a new directory."
            )
        store = cls.open(path, verify=verify, timeout=timeout, session=session)
        if canonical(store.config) != canonical(config_doc):
            old, new = store.config, config_doc
            keys = sorted(
                k for k in set(old) | set(new) if canonical(old.get(k)) != canonical(new.get(k))
            )
            raise RunStoreError(
                f"a run already exists at {path} with a different config (keys differing: "
                f"{keys}); use a new directory for a new config."
            )
        if fp is not None:
            store.check_fingerprint(fp)
        if initial and not store.read_only:
            labels = store.labels()
            if not (labels[schema.SOURCE] == "initial").any():
                store.add_labels(initial, round=0, source="initial")
                logger.info("added the missing initial set to %s", path)
        logger.info("reopened existing run %s", path)
        return store

    @staticmethod
    def _check_files(files: Any) -> dict[str, bytes]:
        if files is None:
            return {}
        if not isinstance(files, Mapping):
            raise AlfavizInputError(
                f"files must be a dict of name -> bytes; got {type(files).__name__}."
            )
        out: dict[str, bytes] = {}
        for name, data in files.items():
            if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED_NAMES:
                raise AlfavizInputError(
                    f"files name {name!r} must be a plain file name (letters, digits, '_', '.', "
                    f"'-') other than {sorted(RESERVED_NAMES)}."
                )
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise AlfavizInputError(
                    f"files[{name!r}] must be bytes; got {type(data).__name__}. Serialise it "
                    "first (e.g. into io.BytesIO)."
                )
            out[name] = bytes(data)
        return out

    @classmethod
    def _build(
        cls,
        path: Path,
        meta: dict[str, Any],
        initial: list[tuple[int, int, str | None]],
        files: Mapping[str, bytes],
        timeout: float,
    ) -> bool:
        """Build the run in a temporary directory and rename it to ``path``.

        Returns ``False`` when another creator got there first (``path`` is a run now).
        """
        parent = path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunStoreError(f"cannot create a run at {path}: {exc}") from exc
        cls._clean_create_leftovers(path)
        tmp = parent / temp_name(path.name, "tmp")
        try:
            try:
                tmp.mkdir()
            except OSError as exc:
                raise RunStoreError(f"cannot create a run at {path}: {exc}") from exc
            write_point("mkdir run")
            (tmp / ROUNDS_DIR).mkdir()
            log = LabelLog(tmp / LABELS_FILE, timeout=timeout)
            try:
                log.initialise()
                log._set_run_meta(
                    {
                        _INDEX_KEY: "1",
                        _CONFIG_SHA_KEY: meta["checksum"],
                        "format_version": str(FORMAT_VERSION),
                    }
                )
                if initial:
                    log.add_labels(initial, round=0, source="initial")
            finally:
                log.close()  # checkpoints the WAL into labels.sqlite
            write_point("close labels")
            for name, data in files.items():
                write_file(tmp / name, data)
            write_file(tmp / CONFIG_FILE, (dumps(meta, CONFIG_FILE) + "\n").encode())
            fsync_dir(tmp / ROUNDS_DIR)
            fsync_dir(tmp)
            try:
                os.rename(tmp, path)  # atomic; fails if ``path`` is a non-empty directory
            except OSError as exc:
                if (path / CONFIG_FILE).exists():
                    return False
                raise RunStoreError(
                    f"cannot create a run at {path}: {exc}. Choose a new or empty directory."
                ) from exc
            write_point("move run into place")
        finally:
            if tmp.exists():
                remove_tree(tmp)
        fsync_dir(parent)
        return True

    @staticmethod
    def _clean_create_leftovers(path: Path) -> None:
        """Remove this run's stale temporary directories from interrupted creates."""
        parent = path.parent
        if not os.access(parent, os.W_OK):
            return
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                parsed = parse_temp_name(entry.name)
                if parsed and parsed.base == path.name and is_stale(entry, parsed):
                    logger.info("removing %s left by an interrupted create", entry)
                    remove_tree(entry)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        verify: bool = True,
        timeout: float = 30.0,
        expected_fingerprint: Mapping[str, Any] | None = None,
        read_only: bool | None = None,
        check: bool = True,
        session: str | None = None,
    ) -> RunStore:
        """Open an existing run directory, checking what it opens.

        Parameters
        ----------
        path : str or Path
            The run directory.
        verify, timeout, session
            See :class:`RunStore`.
        expected_fingerprint : Mapping, optional
            The fingerprint of the data the caller will use; raises if it differs from the
            one recorded at creation (see :meth:`check_fingerprint`).
        read_only : bool, optional
            ``None`` (default): read-only exactly when the run directory, ``rounds/`` or
            ``labels.sqlite`` is not writable. ``True`` forces read-only.
        check : bool
            Refuse a damaged run (see Raises). ``False`` opens it anyway so that
            :meth:`verify` can list every problem (``alfaviz info`` does this).

        Raises
        ------
        RunStoreError
            If ``path`` does not exist, is not a directory or has no ``config.json``; if
            ``config.json`` is corrupt, from a newer format, or edited by hand (its checksum
            differs from the one recorded at creation); if ``labels.sqlite`` is missing,
            empty or corrupt; if a round folder the rounds index records is missing or
            replaced; or if ``expected_fingerprint`` differs from the recorded one.
        """
        path = check_path(path)
        check_str(session, "session", allow_none=True)
        if expected_fingerprint is not None:
            _jsonable_mapping(expected_fingerprint, "expected_fingerprint", "{'n_samples': 100}")
        if not path.exists():
            raise RunStoreError(f"{path} is not a run directory: it does not exist.")
        if not path.is_dir():
            raise RunStoreError(f"{path} is not a run directory: it is a file.")
        if not (path / CONFIG_FILE).is_file():
            raise RunStoreError(
                f"{path} is not a run directory: {CONFIG_FILE} is missing. "
                "Create a run with RunStore.create(path, config)."
            )
        if read_only is None:
            read_only = cls._detect_read_only(path)
        store = cls(
            path, verify=verify, timeout=timeout, read_only=bool(read_only), session=session
        )
        store._meta = store._load_meta()
        if check:
            problems = store._config_problems()
            if problems:
                raise RunStoreError(problems[0])
            store._log.initialise()  # refuses a missing, empty or corrupt labels.sqlite
        if not store._read_only:
            try:
                store._recover()
            except RunStoreError:
                if check:
                    raise
        if check:
            problems = store._round_problems(deep=False)
            if problems:
                more = f" (and {len(problems) - 1} more; see RunStore.verify())"
                raise RunStoreError(problems[0] + (more if len(problems) > 1 else ""))
        if expected_fingerprint is not None:
            store.check_fingerprint(expected_fingerprint)
        return store

    @staticmethod
    def _detect_read_only(path: Path) -> bool:
        candidates = [path, path / ROUNDS_DIR, path / LABELS_FILE]
        return any(p.exists() and not os.access(p, os.W_OK) for p in candidates)

    def _load_meta(self) -> dict[str, Any]:
        file = self._path / CONFIG_FILE
        meta = read_json_file(file)
        if not isinstance(meta, dict) or "config" not in meta or "format_version" not in meta:
            raise RunStoreError(
                f"{file} is corrupt: expected an object with 'format_version' and 'config'."
            )
        version = meta["format_version"]
        if not isinstance(version, int) or version not in READABLE_FORMATS:
            raise RunStoreError(
                f"{file} has format_version {version!r} but this alfaviz reads "
                f"{list(READABLE_FORMATS)}; upgrade alfaviz to open this run."
            )
        return meta

    def _config_problems(self) -> list[str]:
        """Checksum problems of ``config.json`` (hand edits, damage, replacement)."""
        file = self._path / CONFIG_FILE
        meta = self.meta
        if meta["format_version"] < 2:
            return []  # older runs recorded no checksum
        _, ok = _checked_body(meta)
        if not ok:
            return [
                f"{file} was edited by hand or is damaged: its content does not match the "
                "checksum recorded at creation. Restore it from a copy of the run; settings "
                "of a run are changed by starting a new run."
            ]
        try:
            recorded = self._log.run_meta().get(_CONFIG_SHA_KEY)
        except RunStoreError:
            return []  # reported as a label-log problem
        if recorded is not None and recorded != meta["checksum"]:
            return [
                f"{file} is not the config this run was created with (its checksum differs "
                f"from the one in {LABELS_FILE}); restore the original config.json."
            ]
        return []

    # plumbing ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "verify": self._verify,
            "timeout": self._timeout,
            "meta": self._meta,
            "read_only": self._read_only,
            "session": self._log.session,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = Path(state["path"])
        self._verify = state["verify"]
        self._timeout = state["timeout"]
        self._meta = state["meta"]
        self._read_only = bool(state.get("read_only", False))
        self._log = LabelLog(
            self._path / LABELS_FILE,
            timeout=self._timeout,
            session=state.get("session"),
            must_exist=True,
            read_only=self._read_only,
        )

    def __repr__(self) -> str:
        try:
            rounds: Any = self.rounds_written()
        except (RunStoreError, sqlite3.Error):
            rounds = "?"
        ro = ", read_only=True" if self._read_only else ""
        return f"RunStore({str(self._path)!r}, rounds={rounds}{ro})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the label log's SQLite connections (the store stays usable)."""
        self._log.close()

    @property
    def path(self) -> Path:
        """The run directory."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether the run is open read-only (every write raises :class:`RunStoreError`)."""
        return self._read_only

    @property
    def session(self) -> str:
        """This store's session id: recorded with its actions; :meth:`undo` is scoped to it."""
        return self._log.session

    @property
    def meta(self) -> dict[str, Any]:
        """Everything in ``config.json``: ``format_version``, ``created_at``, ``seed``,
        ``versions``, ``config``, ``fingerprint``, ``files`` and ``checksum``."""
        if self._meta is None:
            self._meta = self._load_meta()
        return self._meta

    @property
    def config(self) -> dict[str, Any]:
        """The user config passed to :meth:`create` (after a JSON round trip)."""
        config: dict[str, Any] = self.meta["config"]
        return config

    @property
    def seed(self) -> int | None:
        """The run's seed, or ``None`` if none was given."""
        return self.meta.get("seed")

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        """The data fingerprint recorded at creation, or ``None`` if none was."""
        return self.meta.get("fingerprint")

    @property
    def log(self) -> LabelLog:
        """The label and event log in ``labels.sqlite``."""
        return self._log

    def _check_writable(self, what: str) -> None:
        if self._read_only:
            raise RunStoreError(
                f"cannot {what}: the run {self._path} is open read-only (no write permission); "
                "copy the run to a writable directory to continue it."
            )

    # fingerprint and attached files ------------------------------------------------------------
    def check_fingerprint(self, expected: Mapping[str, Any]) -> None:
        """Raise :class:`RunStoreError` if ``expected`` differs from the recorded fingerprint.

        Nested dicts are compared field by field (``shape.x``); the error names every field
        that differs, is missing or is new. A run that recorded no fingerprint (an older
        run) passes with a logged warning.
        """
        exp = _jsonable_mapping(expected, "expected_fingerprint", "{'n_samples': 100}")
        recorded = self.fingerprint
        if recorded is None:
            logger.warning("%s records no data fingerprint; the data cannot be checked", self)
            return
        old, new = _flatten(recorded), _flatten(exp)
        diffs = []
        for key in sorted(set(old) | set(new)):
            was, now = old.get(key, _MISSING), new.get(key, _MISSING)
            if (was is _MISSING) != (now is _MISSING) or canonical(was) != canonical(now):
                diffs.append(f"{key} (recorded {_short(was)}, got {_short(now)})")
        if diffs:
            raise RunStoreError(
                f"the data do not match the run {self._path}: fingerprint fields differ: "
                f"{'; '.join(diffs)}. Open the run with the data it was made from."
            )

    def read_file(self, name: str) -> bytes:
        """An attached file (see ``files=`` in :meth:`create`), checked against its SHA-256."""
        entry = self.meta.get("files", {}).get(name) if isinstance(name, str) else None
        if entry is None:
            raise RunStoreError(
                f"the run {self._path} has no attached file {name!r}; attached: "
                f"{sorted(self.meta.get('files', {}))}."
            )
        file = self._path / name
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise RunStoreError(f"{file} is missing although {CONFIG_FILE} lists it.") from None
        if len(data) != entry["bytes"] or sha256(data) != entry["sha256"]:
            raise RunStoreError(
                f"{file} is truncated or corrupt: it does not match the size and SHA-256 in "
                f"{CONFIG_FILE}. Restore it from a copy of the run."
            )
        return data

    # the rounds index ----------------------------------------------------------------------------
    def _rounds_dir(self) -> Path:
        return self._path / ROUNDS_DIR

    def _round_dir(self, round: int) -> Path:
        return self._rounds_dir() / round_dir_name(round)

    def _indexed(self) -> bool:
        return self._log.run_meta().get(_INDEX_KEY) == "1"

    def _scan_rounds(self) -> dict[int, str]:
        """Round folders on disk with the checksum their ``round.json`` records ("" if none)."""
        rounds_dir = self._rounds_dir()
        if not rounds_dir.is_dir():
            return {}
        found: dict[int, str] = {}
        for entry in rounds_dir.iterdir():
            m = ROUND_DIR_RE.match(entry.name)
            if m and entry.is_dir():
                found[int(m.group(1))] = self._folder_checksum(entry) or ""
        return found

    @staticmethod
    def _folder_checksum(folder: Path) -> str | None:
        """The checksum in ``folder/round.json`` if it is readable and sound, else ``None``."""
        try:
            doc = json.loads((folder / ROUND_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        doc, ok = _checked_body(doc)
        return str(doc["checksum"]) if ok else None

    def _index(self) -> dict[int, str]:
        """Committed rounds ``{round: checksum of round.json}``."""
        if self._indexed():
            index = self._log.rounds_index()
            return index or {}
        return self._scan_rounds()  # an older run opened read-only

    def rounds_written(self) -> list[int]:
        """Round numbers written (committed) in the store, ascending."""
        return sorted(self._index())

    # crash recovery -------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Finish or undo interrupted writes; remove the store's own stale temporary entries."""
        self._clean_create_leftovers(self._path)
        for entry in list(self._path.iterdir()):
            parsed = parse_temp_name(entry.name)
            if parsed is not None and is_stale(entry, parsed):
                logger.info("removing %s left by an interrupted write", entry)
                remove_tree(entry)
        rounds_dir = self._rounds_dir()
        if not rounds_dir.is_dir():
            if self._indexed() and self._index():
                return  # reported by the round checks
            rounds_dir.mkdir(exist_ok=True)
            write_point("mkdir rounds")
        if not self._indexed():
            self._log._adopt_rounds(self._scan_rounds())
            logger.info("%s: recorded the rounds index of an older run", self._path)
        index = self._index()
        entries = list(rounds_dir.iterdir())
        old_dirs: dict[int, list[Path]] = {}
        for entry in entries:
            parsed = parse_temp_name(entry.name)
            if parsed is None:
                continue
            m = ROUND_DIR_RE.match(parsed.base)
            if parsed.kind == "old" and m:
                old_dirs.setdefault(int(m.group(1)), []).append(entry)
            elif is_stale(entry, parsed):
                logger.info("removing %s left by an interrupted write", entry)
                remove_tree(entry)
        for entry in entries:
            m = ROUND_DIR_RE.match(entry.name)
            if not m or not entry.is_dir():
                continue
            r = int(m.group(1))
            if r in index:
                continue
            manifest: Any = None
            with contextlib.suppress(OSError, ValueError):
                manifest = json.loads((entry / ROUND_FILE).read_bytes())
            if _writer_stale(manifest, entry):
                logger.info("removing %s: its write was interrupted before it committed", entry)
                remove_tree(entry)
        for r, olds in old_dirs.items():
            final = self._round_dir(r)
            committed = index.get(r)
            for old in olds:
                parsed = parse_temp_name(old.name)
                if parsed is None or not is_stale(old, parsed):
                    continue
                holds_committed = committed is not None and self._folder_checksum(old) == committed
                if holds_committed and self._folder_checksum(final) != committed:
                    # crashed mid-overwrite: the index still names the old folder
                    if final.exists():
                        remove_tree(final)
                    os.rename(old, final)
                    write_point(f"restore {final.name}")
                    fsync_dir(rounds_dir)
                    logger.info("restored %s after an interrupted overwrite", final)
                    continue
                remove_tree(old)
        for entry in self._derived_leftovers():
            logger.info("removing %s left by an interrupted write of a derived frame", entry)
            remove_tree(entry)

    def _round_problems(self, *, deep: bool) -> list[str]:
        """Problems of the committed rounds: missing, replaced or (``deep``) damaged files."""
        problems: list[str] = []
        try:
            index = self._index()
        except RunStoreError as exc:
            return [str(exc)]
        for r, checksum in sorted(index.items()):
            rdir = self._round_dir(r)
            file = rdir / ROUND_FILE
            if not rdir.is_dir():
                problems.append(
                    f"{rdir} is missing: round {r} was written (the rounds index in "
                    f"{LABELS_FILE} records it) but its folder was deleted or moved. Restore "
                    "it from a copy of the run."
                )
                continue
            try:
                manifest = self._read_manifest(r, file, checksum)
            except RunStoreError as exc:
                problems.append(str(exc))
                continue
            if deep:
                for rel, entry in sorted(manifest["files"].items()):
                    problem = self._file_problem(rdir / rel, entry, r)
                    if problem:
                        problems.append(problem)
        return problems

    # rounds: writing --------------------------------------------------------------------------
    def write_round(
        self,
        round: int,
        *,
        samples: pd.DataFrame,
        flips: pd.DataFrame,
        rounds_row: Mapping[str, Any],
        embeddings: Any | None = None,
        embedding_ids: Any | None = None,
        coords: pd.DataFrame | None = None,
        extra: Mapping[str, pd.DataFrame] | None = None,
        head: Mapping[str, Any] | None = None,
        critical_eps: Any | None = None,
        critical_eps_ids: Any | None = None,
        overwrite: bool = False,
        labels: Iterable[tuple[Any, ...]] | None = None,
        label_round: int | None = None,
        session: str | None = None,
    ) -> Path:
        """Write one round's artefacts and the labels it produced, as one atomic unit.

        Parameters
        ----------
        round : int
            Round number (>= 0).
        samples : pandas.DataFrame or Parts
            Per-sample frame (see :mod:`alfaviz.schema`), or its :class:`Parts` (frames with
            the same columns, written one at a time into the one file: a pool no process
            holds whole).
        flips : pandas.DataFrame or Parts
            Per-(sample, anchor) frame; may be empty.
        rounds_row : Mapping[str, scalar]
            This round's row of the rounds frame (ints, floats, bools, strings, None). A
            ``round`` key, if present, must equal ``round``.
        embeddings : array-like, shape (n, dim), or Parts, optional
            Embedding matrix (numpy array or CPU/GPU tensor); its dtype is kept. Or its
            :class:`Parts`, ``(sample_ids, matrix)`` pairs (then without ``embedding_ids``).
        embedding_ids : array-like of int, shape (n,), optional
            Sample id of each embedding row; defaults to ``arange(n)`` (row ``i`` is sample
            ``i``, the usual case for whole-pool embeddings).
        coords : pandas.DataFrame, optional
            2-D layout with at least the columns ``sample_id, x, y``.
        extra : Mapping[str, pandas.DataFrame], optional
            Further named frames (names: letters, digits, ``_ . -``).
        head : Mapping[str, array-like], optional
            The round's classifier head as named numeric arrays (its ``state_dict``, e.g.
            ``weight`` (C, D) and ``bias`` (C,)), written to ``head.npz`` and listed in the
            manifest like every other artefact; read it back with :meth:`read_head`.
        critical_eps : array-like, shape (n, n_classes), optional
            The critical ε of every (sample, anchor) pair the round scored, as one matrix
            (stored as float32; inf: the pair never flips). A large pool writes it with a flips
            frame that keeps only the candidates' and selected samples' rows; read it back with
            :meth:`read_critical_eps`. Or its :class:`Parts`, ``(sample_ids, matrix)`` pairs.
        critical_eps_ids : array-like of int, shape (n,), optional
            The sample id of each row of ``critical_eps``; required with a matrix (not with
            parts).
        overwrite : bool
            Replace an existing round (or rewrite a damaged one). Rounds are immutable
            otherwise.
        labels : iterable of tuples, optional
            The labels this round produced, ``(sample_id, label)`` or ``(sample_id, label,
            source)`` each (source defaults to ``"oracle"``). They are committed in the same
            SQLite transaction that makes the round exist: after a crash the round is there
            with all of them, or neither is.
        label_round : int, optional
            The round the labels belong to; defaults to ``round + 1`` (the samples this
            round queried are first trained on in the next round).
        session : str, optional
            Session recorded with the labels; defaults to :attr:`session`.

        Returns
        -------
        Path
            The round directory.

        Raises
        ------
        RunStoreError
            If the round was already written and ``overwrite`` is false, if another process
            is writing it, or if the run is read-only.
        """
        round = check_int(round, "round")
        self._check_writable(f"write round {round}")
        label_rows = [] if labels is None else check_labels(labels, source="oracle")
        label_round = round + 1 if label_round is None else check_int(label_round, "label_round")
        if session is not None:
            check_str(session, "session")
        # everything is checked before anything is written; the files are then written one at
        # a time straight into the round's temporary folder (Parquet streamed in row groups),
        # so that memory holds one table, not every file's bytes
        # (parts are checked as they are written: a bad part aborts the write, nothing commits)
        frames: dict[str, tuple[pd.DataFrame | Parts, str]] = {
            SAMPLES_FILE: (_frame_or_parts(samples, "samples"), "samples"),
            FLIPS_FILE: (_frame_or_parts(flips, "flips"), "flips"),
        }
        row = check_row(rounds_row, round)
        embedding_dim = None
        emb_table: Any = None
        if isinstance(embeddings, Parts):
            if embedding_ids is not None:
                raise AlfavizInputError(
                    "embedding_ids go with an embedding matrix; Parts carry their own "
                    "(sample_ids, matrix) pairs. Drop embedding_ids."
                )
            emb_table = embeddings
        elif embeddings is not None:
            emb_table, embedding_dim = embeddings_table(embeddings, embedding_ids)
        elif embedding_ids is not None:
            raise AlfavizInputError("embedding_ids given without embeddings; pass both or neither.")
        crit_table: Any = None
        if isinstance(critical_eps, Parts):
            if critical_eps_ids is not None:
                raise AlfavizInputError(
                    "critical_eps_ids go with a critical_eps matrix; Parts carry their own "
                    "(sample_ids, matrix) pairs. Drop critical_eps_ids."
                )
            crit_table = critical_eps
        elif (critical_eps is None) != (critical_eps_ids is None):
            raise AlfavizInputError(
                "critical_eps and critical_eps_ids go together (one sample id per matrix row); "
                "pass both or neither."
            )
        elif critical_eps is not None:
            if hasattr(critical_eps, "detach"):
                critical_eps = critical_eps.detach().cpu().numpy()
            crit = np.asarray(critical_eps)
            if crit.dtype.kind != "f":
                raise AlfavizInputError(
                    f"critical_eps must be a float matrix of shape (n_samples, n_classes); got "
                    f"dtype {crit.dtype}. Convert it with .astype(np.float32)."
                )
            crit_table, _ = embeddings_table(
                crit.astype(np.float32, copy=False),
                critical_eps_ids,
                what="critical_eps",
                ids_what="critical_eps_ids",
                row="matrix row",
            )
        if coords is not None:
            coords = check_frame(coords, "coords")
            missing = [c for c in (schema.SAMPLE_ID, schema.X, schema.Y) if c not in coords]
            if missing:
                raise AlfavizInputError(
                    f"coords must have columns sample_id, x, y; missing {missing}. Add them."
                )
            frames[COORDS_FILE] = (coords, "coords")
        small: dict[str, bytes] = {}
        if head is not None:
            small[HEAD_FILE] = arrays_to_npz(head, "head")
        if extra is not None and not isinstance(extra, Mapping):
            raise AlfavizInputError(
                f"extra must be a dict of name -> DataFrame; got {type(extra).__name__}."
            )
        for name, frame in (extra or {}).items():
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise AlfavizInputError(
                    f"extra frame name {name!r} must be letters, digits, '_', '.' or '-' "
                    "(starting with a letter or digit)."
                )
            what = f"extra[{name!r}]"
            frames[f"{EXTRA_DIR}/{name}.parquet"] = (check_frame(frame, what), what)
        order = [SAMPLES_FILE, FLIPS_FILE]
        order += [EMBEDDINGS_FILE] if emb_table is not None else []
        order += [CRITICAL_EPS_FILE] if crit_table is not None else []
        order += [rel for rel in frames if rel not in order] + list(small)
        files: dict[str, dict[str, Any]] = {}

        committed = self._index().get(round)
        final = self._round_dir(round)
        if committed is not None and not overwrite:
            raise RunStoreError(
                f"round {round} is already written at {final}; rounds are immutable "
                "(pass overwrite=True to replace it)."
            )
        rounds_dir = self._rounds_dir()
        if not rounds_dir.is_dir():
            rounds_dir.mkdir()
            write_point("mkdir rounds")
        if committed is None and final.exists():
            self._clear_uncommitted(final, round)
        tmp = rounds_dir / temp_name(final.name, "tmp")
        old: Path | None = None
        moved = False
        try:
            tmp.mkdir()
            write_point(f"mkdir {tmp.name}")
            for rel in order:
                target = tmp / rel
                if not target.parent.exists():
                    target.parent.mkdir()
                if rel in small:
                    write_file(target, small[rel])
                elif rel == EMBEDDINGS_FILE and isinstance(emb_table, Parts):
                    embedding_dim = write_matrix_parts(emb_table, target)
                elif rel == EMBEDDINGS_FILE:
                    write_table_file(emb_table, target)
                elif rel == CRITICAL_EPS_FILE and isinstance(crit_table, Parts):
                    write_matrix_parts(
                        crit_table, target, what="critical_eps", ids_what="critical_eps_ids"
                    )
                elif rel == CRITICAL_EPS_FILE:
                    write_table_file(crit_table, target)
                else:
                    frame, what = frames[rel]
                    if isinstance(frame, Parts):
                        write_frame_parts(frame, target, what)
                    else:
                        write_table_file(frame_table(frame, what), target)
                size, digest = file_digest(target)
                files[rel] = {"bytes": size, "sha256": digest}
            manifest: dict[str, Any] = {
                "format_version": FORMAT_VERSION,
                "round": round,
                "written_at": time.time(),
                "write_id": uuid.uuid4().hex,
                "writer": {"host": _io._HOST_TAG, "pid": os.getpid()},
                "row": row,
                "files": files,
                "embedding_dim": embedding_dim,
            }
            manifest["checksum"] = sha256(canonical(manifest).encode())
            write_file(tmp / ROUND_FILE, (dumps(manifest, ROUND_FILE) + "\n").encode())
            if (tmp / EXTRA_DIR).exists():
                fsync_dir(tmp / EXTRA_DIR)
            fsync_dir(tmp)
            if final.exists():  # overwrite of a committed round
                old = rounds_dir / temp_name(final.name, "old")
                os.rename(final, old)
                write_point(f"move {final.name} aside")
            try:
                os.rename(tmp, final)  # atomic; fails if ``final`` exists and is not empty
            except OSError as exc:
                raise RunStoreError(
                    f"round {round} is already written at {final}; rounds are immutable "
                    "(pass overwrite=True to replace it)."
                ) from exc
            moved = True
            write_point(f"move {final.name} into place")
            fsync_dir(rounds_dir)
            self._log._record_round(
                round,
                manifest["checksum"],
                labels=label_rows,
                label_round=label_round,
                session=session,
                replace=committed is not None,
                expect=committed,
            )
        except BaseException:
            # not committed: take the new folder out and put the old one back
            if moved:
                with contextlib.suppress(OSError):
                    remove_tree(final)
            if old is not None and old.exists() and not final.exists():
                with contextlib.suppress(OSError):
                    os.rename(old, final)
            raise
        finally:
            if tmp.exists():
                remove_tree(tmp)
        if old is not None:
            remove_tree(old)
            fsync_dir(rounds_dir)
        logger.info(
            "wrote round %d to %s (%s) with %d labels",
            round,
            final,
            ", ".join(files),
            len(label_rows),
        )
        return final

    def _clear_uncommitted(self, final: Path, round: int) -> None:
        """Remove a round folder whose write never committed, unless its writer still runs."""
        manifest: Any = None
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((final / ROUND_FILE).read_bytes())
        if _writer_stale(manifest, final):
            remove_tree(final)
            return
        writer = manifest.get("writer", {}) if isinstance(manifest, dict) else {}
        raise RunStoreError(
            f"round {round} of {self._path} is being written by another process "
            f"(pid {writer.get('pid', '?')}); wait for it, or remove {final} if that process "
            "is gone."
        )

    # rounds: reading --------------------------------------------------------------------------
    def _read_manifest(self, round: int, file: Path, committed: str) -> dict[str, Any]:
        if not file.is_file():
            raise RunStoreError(f"{file} is missing: round {round} is incomplete or damaged.")
        manifest = read_json_file(file)
        if not isinstance(manifest, dict) or "checksum" not in manifest:
            raise RunStoreError(f"{file} is corrupt: it is not a round manifest.")
        _, ok = _checked_body(manifest)
        if not ok:
            raise RunStoreError(f"{file} is corrupt: its content does not match its checksum.")
        if committed and manifest["checksum"] != committed:
            raise RunStoreError(
                f"{file} is not the round {round} that was committed (its checksum differs "
                f"from the rounds index in {LABELS_FILE}); the folder was replaced. Restore it "
                "from a copy of the run."
            )
        return manifest

    def _manifest(self, round: int) -> dict[str, Any]:
        round = check_int(round, "round")
        index = self._index()
        rdir = self._round_dir(round)
        if round not in index:
            raise RunStoreError(
                f"round {round} is not in the run {self._path} (no {rdir.name}/); rounds "
                f"written: {sorted(index)}."
            )
        if not rdir.is_dir():
            raise RunStoreError(
                f"{rdir} is missing: round {round} was written but its folder was deleted or "
                "moved. Restore it from a copy of the run."
            )
        return self._read_manifest(round, rdir / ROUND_FILE, index[round])

    def round_checksum(self, round: int) -> str:
        """The checksum of ``round``'s committed ``round.json``: it names this write of it."""
        return str(self._manifest(round)["checksum"])

    def artefacts(self, round: int) -> list[str]:
        """Files written for ``round`` (relative names, e.g. ``"coords.parquet"``)."""
        return sorted(self._manifest(round)["files"])

    @staticmethod
    def _file_problem(file: Path, entry: Mapping[str, Any], round: int) -> str | None:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return f"{file} is missing although {ROUND_FILE} lists it; the round is damaged."
        if len(data) != entry["bytes"]:
            return (
                f"{file} is truncated or corrupt: expected {entry['bytes']} bytes, found "
                f"{len(data)}. Restore it from a copy of the run or rewrite round {round} "
                "with overwrite=True."
            )
        if sha256(data) != entry["sha256"]:
            return (
                f"{file} is corrupt: its SHA-256 does not match {ROUND_FILE}. Restore it "
                f"from a copy of the run or rewrite round {round} with overwrite=True."
            )
        return None

    def _read_bytes(self, round: int, rel: str, what: str) -> tuple[bytes, Path]:
        manifest = self._manifest(round)
        rdir = self._round_dir(round)
        entry = manifest["files"].get(rel)
        if entry is None:
            raise RunStoreError(
                f"round {round} of {self._path} has no {what} ({rel} was not written); "
                f"artefacts: {sorted(manifest['files'])}."
            )
        file = rdir / rel
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise RunStoreError(
                f"{file} is missing although {ROUND_FILE} lists it; the round is damaged."
            ) from None
        if self._verify:
            problem = self._file_problem(file, entry, round)
            if problem:
                raise RunStoreError(problem)
        return data, file

    def _read_frame(self, round: int, rel: str, what: str) -> pd.DataFrame:
        data, file = self._read_bytes(round, rel, what)
        return table_to_frame(parquet_to_table(data, file), file)

    def _read_all(self, rel: str, what: str, round: int | None) -> pd.DataFrame:
        if round is not None:
            return self._read_frame(round, rel, what)
        frames = []
        for r in self.rounds_written():
            df = self._read_frame(r, rel, what)
            if schema.ROUND not in df.columns:
                df.insert(0, schema.ROUND, np.full(len(df), r, dtype=np.int64))
            frames.append(df)
        if not frames:
            return pd.DataFrame({schema.ROUND: np.empty(0, np.int64)})
        return pd.concat(frames, ignore_index=True)

    def read_samples(self, round: int | None = None) -> pd.DataFrame:
        """The samples frame of ``round`` exactly as written, or of all rounds.

        With ``round=None`` the frames of all rounds are concatenated (new RangeIndex) with a
        leading int64 ``round`` column (unless the frames already have one). Categoricals
        whose categories differ between rounds become object columns then.
        """
        return self._read_all(SAMPLES_FILE, "samples", round)

    def read_flips(self, round: int | None = None) -> pd.DataFrame:
        """The flips frame of ``round``, or of all rounds (as in :meth:`read_samples`)."""
        return self._read_all(FLIPS_FILE, "flips", round)

    def read_rounds(self) -> pd.DataFrame:
        """The rounds frame: one row per written round, sorted, ``round`` first."""
        rows = []
        for r in self.rounds_written():
            rows.append({schema.ROUND: r, **self._manifest(r)["row"]})
        if not rows:
            return pd.DataFrame({schema.ROUND: np.empty(0, np.int64)})
        return pd.DataFrame(rows)

    def read_round_row(self, round: int) -> dict[str, Any]:
        """The ``rounds_row`` dict written for ``round`` (with its ``round`` key)."""
        return {schema.ROUND: int(round), **self._manifest(round)["row"]}

    def read_embeddings(self, round: int) -> tuple[np.ndarray, np.ndarray]:
        """The embeddings of ``round``.

        Returns
        -------
        ids : numpy.ndarray of int64, shape (n,)
        matrix : numpy.ndarray, shape (n, dim)
            Same dtype as written.
        """
        data, file = self._read_bytes(round, EMBEDDINGS_FILE, "embeddings")
        return table_to_embeddings(parquet_to_table(data, file), file)

    def read_coords(self, round: int) -> pd.DataFrame:
        """The 2-D coordinates of ``round`` (``sample_id, x, y``, as written)."""
        return self._read_frame(round, COORDS_FILE, "coords")

    def read_head(self, round: int) -> dict[str, np.ndarray]:
        """The classifier head written with ``round`` (see ``write_round(head=...)``).

        Returns
        -------
        dict of str to numpy.ndarray
            The arrays as written (e.g. ``weight`` (C, D) and ``bias`` (C,)).

        Raises
        ------
        RunStoreError
            If the round has no head (rounds written before heads were stored have none; see
            :meth:`has_head`) or the file is damaged.
        """
        data, file = self._read_bytes(round, HEAD_FILE, "classifier head")
        return npz_to_arrays(data, file)

    def read_critical_eps(self, round: int) -> tuple[np.ndarray, np.ndarray]:
        """The critical-ε matrix written with ``round`` (see ``write_round(critical_eps=...)``).

        Returns
        -------
        ids : numpy.ndarray of int64, shape (n,)
        matrix : numpy.ndarray of float32, shape (n, n_classes)
            Row ``i`` for sample ``ids[i]``, column ``c`` for anchor class ``c``; inf where
            the pair never flips.

        Raises
        ------
        RunStoreError
            If the round has none (its flips frame holds every pair; see
            :meth:`has_critical_eps`) or the file is damaged.
        """
        data, file = self._read_bytes(round, CRITICAL_EPS_FILE, "critical-eps matrix")
        return table_to_embeddings(parquet_to_table(data, file), file, "critical-eps")

    def has_critical_eps(self, round: int) -> bool:
        """Whether ``round`` has a critical-ε matrix (its flips frame keeps the candidates only)."""
        return CRITICAL_EPS_FILE in self._manifest(round)["files"]

    def has_head(self, round: int) -> bool:
        """Whether ``round`` was written with its classifier head (``head.npz``)."""
        return HEAD_FILE in self._manifest(round)["files"]

    def read_extra(self, round: int, name: str) -> pd.DataFrame:
        """The extra frame ``name`` of ``round``."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise AlfavizInputError(
                f"extra frame name {name!r} must be letters, digits, '_', '.' or '-'."
            )
        return self._read_frame(round, f"{EXTRA_DIR}/{name}.parquet", f"extra frame {name!r}")

    # derived frames ----------------------------------------------------------------------------
    def _derived_dir(self, round: int) -> Path:
        return self._path / DERIVED_DIR / round_dir_name(round)

    @staticmethod
    def _derived_key(round: int, name: str) -> str:
        return f"{_DERIVED_KEY}{round_dir_name(round)}/{name}"

    @staticmethod
    def _check_derived_name(name: Any) -> str:
        if not isinstance(name, str) or not _DERIVED_NAME_RE.match(name):
            raise AlfavizInputError(
                f"derived frame name {name!r} must be letters, digits, '_' or '-' (starting "
                "with a letter or digit), e.g. 'paths'."
            )
        return name

    @staticmethod
    def _parse_record(value: str | None, name: str) -> dict[str, Any] | None:
        """A derived frame's record, or ``None`` if it is absent or unreadable."""
        if value is None:
            return None
        try:
            rec = json.loads(value)
        except ValueError:
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
            return None
        if not _derived_file_re(name).match(rec["file"]):
            return None  # never follow a name the store did not make
        return rec

    def _derived_records(self) -> dict[tuple[int, str], dict[str, Any] | None]:
        """Every derived frame recorded in the label log: ``{(round, name): record}``."""
        out: dict[tuple[int, str], dict[str, Any] | None] = {}
        for key, value in self._log.run_meta().items():
            if not key.startswith(_DERIVED_KEY):
                continue
            parts = key[len(_DERIVED_KEY) :].split("/")
            m = ROUND_DIR_RE.match(parts[0]) if len(parts) == 2 else None
            if m is None or not _DERIVED_NAME_RE.match(parts[1]):
                continue
            out[(int(m.group(1)), parts[1])] = self._parse_record(value, parts[1])
        return out

    def derived_names(self, round: int) -> list[str]:
        """Names of the derived frames recorded for ``round`` as it is committed now."""
        committed = self._manifest(round)["checksum"]
        return sorted(
            name
            for (r, name), rec in self._derived_records().items()
            if r == round and rec is not None and rec.get("round") == committed
        )

    def write_derived(self, round: int, name: str, frame: pd.DataFrame) -> Path:
        """Replace the derived frame ``name`` of the committed ``round``, atomically.

        A derived frame is computed from a round after the round was written (the
        interpolation paths projected on demand, say); unlike the round's own artefacts it may
        be replaced. The round folder is never touched: the frame goes to
        ``derived/round_NNNN/<name>.<sha256[:16]>.parquet`` (fsync'ed, renamed into place) and
        one SQLite transaction then records it, with its size, SHA-256 and the checksum of the
        round it belongs to. The version it replaces is deleted after that commit. A crash at
        any point leaves the previous version or the new one readable.

        Parameters
        ----------
        round : int
            A written round.
        name : str
            Letters, digits, ``_`` or ``-``.
        frame : pandas.DataFrame

        Returns
        -------
        Path
            The file now recorded for ``(round, name)``.

        Raises
        ------
        RunStoreError
            If the run is read-only or ``round`` has not been written.
        """
        round = check_int(round, "round")
        name = self._check_derived_name(name)
        self._check_writable(f"write the derived frame {name!r} of round {round}")
        what = f"derived frame {name!r}"
        data = frame_to_parquet(check_frame(frame, what), what)
        committed = self._manifest(round)["checksum"]
        digest = sha256(data)
        fname = f"{name}.{digest[:16]}.parquet"
        ddir = self._derived_dir(round)
        for folder in (ddir.parent, ddir):
            if not folder.is_dir():
                folder.mkdir()
                write_point(f"mkdir {folder.name}")
                fsync_dir(folder.parent)
        tmp = ddir / temp_name(fname, "tmp")
        try:
            write_file(tmp, data)
            os.replace(tmp, ddir / fname)  # atomic; a same-content version is replaced by itself
            write_point(f"move {fname} into place")
            fsync_dir(ddir)
        finally:
            if tmp.exists():
                remove_tree(tmp)
        record = {"file": fname, "bytes": len(data), "sha256": digest, "round": committed}
        previous = self._log._swap_run_meta(
            self._derived_key(round, name), canonical(record), f"{name} of round {round}"
        )
        old = self._parse_record(previous, name)
        if old is not None and old["file"] != fname and (ddir / old["file"]).exists():
            remove_tree(ddir / old["file"])
            fsync_dir(ddir)
        logger.info("wrote %s of round %d (%d bytes)", what, round, len(data))
        return ddir / fname

    def read_derived(self, round: int, name: str) -> pd.DataFrame | None:
        """The derived frame ``name`` of ``round``, or ``None`` if there is none to read.

        ``None`` also when the recorded version belongs to an earlier write of the round (it
        was overwritten since), or when its file is missing or damaged (logged as a warning;
        :meth:`verify` reports it): a derived frame can always be computed again, and the next
        :meth:`write_derived` replaces it.

        Raises
        ------
        RunStoreError
            If ``round`` has not been written.
        """
        round = check_int(round, "round")
        name = self._check_derived_name(name)
        committed = self._manifest(round)["checksum"]
        key = self._derived_key(round, name)
        for attempt in range(2):
            rec = self._parse_record(self._log.run_meta().get(key), name)
            if rec is None or rec.get("round") != committed:
                return None
            file = self._derived_dir(round) / rec["file"]
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                if attempt == 0:
                    continue  # replaced by another writer just now: follow the new record
                logger.warning("%s is missing although the run records it; ignoring it", file)
                return None
            problem = self._derived_problem(file, rec, data) if self._verify else None
            if problem is None:
                try:
                    return table_to_frame(parquet_to_table(data, file), file)
                except RunStoreError as exc:
                    problem = str(exc)
            logger.warning("%s; ignoring it (it is computed again when needed)", problem)
            return None
        return None  # pragma: no cover - the loop returns

    @staticmethod
    def _derived_problem(file: Path, rec: Mapping[str, Any], data: bytes | None) -> str | None:
        if data is None:
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                return f"{file} is missing although {LABELS_FILE} records it"
        if len(data) != rec.get("bytes") or sha256(data) != rec.get("sha256"):
            return f"{file} is truncated or corrupt: it does not match its recorded SHA-256"
        return None

    def _derived_files(self) -> list[tuple[int, Path]]:
        """Every entry in the ``derived/round_NNNN/`` folders: ``(round, path)``."""
        root = self._path / DERIVED_DIR
        if not root.is_dir():
            return []
        found = []
        for folder in sorted(root.iterdir()):
            m = ROUND_DIR_RE.match(folder.name)
            if m and folder.is_dir() and not folder.is_symlink():
                found.extend((int(m.group(1)), entry) for entry in sorted(folder.iterdir()))
        return found

    def _derived_leftovers(self) -> list[Path]:
        """Derived files no record names (interrupted writes) and stale temporary files."""
        records = self._derived_records()
        named = {(r, rec["file"]) for (r, _), rec in records.items() if rec is not None}
        out = []
        for r, entry in self._derived_files():
            parsed = parse_temp_name(entry.name)
            if parsed is not None:
                if is_stale(entry, parsed):
                    out.append(entry)
            elif (r, entry.name) not in named and _ANY_DERIVED_FILE_RE.match(entry.name):
                out.append(entry)
        return out

    def _derived_problems(self) -> list[str]:
        """Damaged versions of the derived frames of the rounds as committed now."""
        index = self._index()
        problems = []
        for (r, name), rec in sorted(self._derived_records().items()):
            if rec is None or index.get(r) != rec.get("round"):
                continue  # unreadable or stale: ignored, replaced by the next write
            problem = self._derived_problem(self._derived_dir(r) / rec["file"], rec, None)
            if problem:
                problems.append(
                    f"{problem}; the derived frame {name!r} of round {r} is ignored and "
                    "computed again when needed."
                )
        return problems

    # verification -----------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Check every checksum of the run; one message per problem, naming the file.

        Checks ``config.json`` (its own checksum and the one recorded in the label log),
        attached files, ``labels.sqlite`` (present, not empty, SQLite ``quick_check``), and
        every written round: its folder, its ``round.json`` (own checksum and the rounds
        index's) and the size and SHA-256 of every file it lists. Leftovers of interrupted
        writes whose writer is gone are reported too (a writable open removes them).

        Returns
        -------
        list of str
            Empty when the run is healthy.
        """
        problems: list[str] = []
        try:
            self._meta = self._load_meta()
        except RunStoreError as exc:
            problems.append(str(exc))
        log_ok = True
        try:
            self._log._check_present()
            self._log.initialise()
        except RunStoreError as exc:
            problems.append(str(exc))
            log_ok = False
        if log_ok:
            problems.extend(self._log.integrity_problems())
        if self._meta is not None:
            if log_ok or self.meta["format_version"] < 2:
                problems.extend(self._config_problems())
            elif not _checked_body(self.meta)[1]:
                problems.append(
                    f"{self._path / CONFIG_FILE} was edited by hand or is damaged: its content "
                    "does not match the checksum recorded at creation."
                )
            for name, entry in sorted(self.meta.get("files", {}).items()):
                file = self._path / name
                if not file.is_file():
                    problems.append(f"{file} is missing although {CONFIG_FILE} lists it.")
                    continue
                data = file.read_bytes()
                if len(data) != entry["bytes"] or sha256(data) != entry["sha256"]:
                    problems.append(
                        f"{file} is truncated or corrupt: it does not match the size and "
                        f"SHA-256 in {CONFIG_FILE}."
                    )
        if log_ok:
            problems.extend(self._round_problems(deep=True))
            problems.extend(self._derived_problems())
            problems.extend(self._leftovers())
        return problems

    def _leftovers(self) -> list[str]:
        rounds_dir = self._rounds_dir()
        if not rounds_dir.is_dir():
            return []
        index = self._index()
        found = []
        for entry in sorted(rounds_dir.iterdir()):
            parsed = parse_temp_name(entry.name)
            m = ROUND_DIR_RE.match(entry.name)
            if parsed is not None and is_stale(entry, parsed):
                found.append(
                    f"{entry} is left over from an interrupted write (removed when the run is "
                    "next opened with write permission)."
                )
            elif m and entry.is_dir() and int(m.group(1)) not in index:
                manifest: Any = None
                with contextlib.suppress(OSError, ValueError):
                    manifest = json.loads((entry / ROUND_FILE).read_bytes())
                if _writer_stale(manifest, entry) or manifest is None:
                    found.append(
                        f"{entry} is a round folder whose write never committed (it is not in "
                        "the rounds index); it is ignored and removed on a writable open."
                    )
        for entry in self._derived_leftovers():
            found.append(
                f"{entry} is left over from an interrupted write of a derived frame (no record "
                "names it); it is ignored and removed on a writable open."
            )
        return found

    # labels and events (delegates to the LabelLog) ---------------------------------------------
    def add_label(
        self,
        sample_id: int,
        label: int,
        *,
        round: int,
        source: str | None = "human",
        session: str | None = None,
    ) -> int:
        """See :meth:`LabelLog.add_label`."""
        self._check_writable("add a label")
        return self._log.add_label(sample_id, label, round=round, source=source, session=session)

    def add_labels(
        self,
        labels: Iterable[tuple[Any, ...]],
        *,
        round: int,
        source: str | None = "oracle",
        session: str | None = None,
    ) -> list[int]:
        """See :meth:`LabelLog.add_labels`: many labels in one transaction."""
        self._check_writable("add labels")
        return self._log.add_labels(labels, round=round, source=source, session=session)

    def add_skip(
        self,
        sample_id: int,
        *,
        round: int,
        source: str | None = "human",
        session: str | None = None,
    ) -> int:
        """See :meth:`LabelLog.add_skip`."""
        self._check_writable("record a skip")
        return self._log.add_skip(sample_id, round=round, source=source, session=session)

    def undo(
        self, *, session: str | None = None, source: str | None = "human"
    ) -> dict[str, Any] | None:
        """See :meth:`LabelLog.undo`: this session's last human action only."""
        self._check_writable("undo")
        return self._log.undo(session=session, source=source)

    def labels(self) -> pd.DataFrame:
        """See :meth:`LabelLog.labels`."""
        return self._log.labels()

    def skipped(self) -> pd.DataFrame:
        """See :meth:`LabelLog.skipped`."""
        return self._log.skipped()

    def actions(self) -> pd.DataFrame:
        """See :meth:`LabelLog.actions`."""
        return self._log.actions()

    def log_event(self, kind: str, payload: Mapping[str, Any] | None = None) -> int:
        """See :meth:`LabelLog.log_event`."""
        self._check_writable("log an event")
        return self._log.log_event(kind, payload)

    def events(self) -> pd.DataFrame:
        """See :meth:`LabelLog.events`."""
        return self._log.events()

    # noticing other writers ------------------------------------------------------------------
    def change_stamp(self) -> tuple[Any, ...]:
        """See :meth:`LabelLog.change_stamp`: changes whenever any writer commits something."""
        return self._log.change_stamp()

    def actions_since(self, action_id: int) -> list[dict[str, Any]]:
        """See :meth:`LabelLog.actions_since`: the actions after ``action_id``, oldest first."""
        return self._log.actions_since(action_id)

    def derived_versions(self) -> dict[tuple[int, str], str]:
        """The current version of every derived frame: ``{(round, name): sha256}``.

        Read from the records in the label log (no file is opened); a frame recorded for an
        earlier write of its round is listed too. Compare two results to see which derived
        frames another writer replaced.
        """
        return {
            key: str(rec.get("sha256"))
            for key, rec in self._derived_records().items()
            if rec is not None
        }
