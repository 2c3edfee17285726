"""The run store: one directory per run, so a run can be copied, opened later and served.

Layout of a run directory::

    run/
      config.json                  the config, the seed, library versions, format_version
      labels.sqlite                human actions and events (SQLite, WAL mode)
      rounds/
        round_0003/
          round.json               the per-round row and a manifest (size + sha256 per file)
          samples.parquet
          flips.parquet
          embeddings.parquet       optional: sample_id + a fixed-size-list column ``embedding``
          coords.parquet           optional: sample_id, x, y
          extra/<name>.parquet     optional named frames

Durability
----------
* A round is written into a hidden temporary directory (each file fsync'ed, ``round.json``
  last) and then renamed into place with one ``os.rename``. A reader therefore sees either the
  whole round or none of it, and a crash mid-write leaves only a hidden ``.round_*.tmp-*``
  directory that readers ignore. Rounds are immutable: writing one again raises unless
  ``overwrite=True``.
* ``config.json`` is written to a temporary file and moved into place (``os.link`` for an
  exclusive create, ``os.replace`` otherwise).
* Every Parquet file is listed in ``round.json`` with its size and SHA-256, and
  ``round.json`` carries a checksum of its own content. Reading verifies both, so a truncated
  or corrupted file raises :class:`RunStoreError` naming the file instead of loading partially.
  Parquet pages also carry CRC checksums that pyarrow verifies on read.
* Labels and events go to ``labels.sqlite`` (see :class:`LabelLog`): one row per action,
  committed as soon as it is added.

Dtypes
------
Frames are stored with pyarrow's pandas metadata, so ``int64``, ``float64`` (``inf`` and
``NaN`` included), ``bool``, nullable ``Int64``/``boolean``, strings, datetimes and
categoricals come back unchanged. Parquet cannot store dictionaries of numbers or dates, so
the categories and order of every categorical column are kept in the file's ``alfaviz``
metadata (an Arrow IPC blob) and restored on read. Column names must be unique strings.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import numbers
import os
import platform
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alfaviz import __version__, schema
from alfaviz.errors import AlfavizInputError, RunStoreError

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "LABELS_FILE",
    "ROUNDS_DIR",
    "ROUND_FILE",
    "LabelLog",
    "RunStore",
    "RunStoreError",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the on-disk layout; a store refuses to open a run written by a newer format."""

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.sqlite"
ROUNDS_DIR = "rounds"
ROUND_FILE = "round.json"

_SAMPLES_FILE = "samples.parquet"
_FLIPS_FILE = "flips.parquet"
_EMBEDDINGS_FILE = "embeddings.parquet"
_COORDS_FILE = "coords.parquet"
_EXTRA_DIR = "extra"
_EMBEDDING_COL = "embedding"
_META_KEY = b"alfaviz"
_ROUND_DIR_RE = re.compile(r"^round_(\d+)$")
_EXTRA_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STR_DTYPE = pd.Series(["x"]).dtype  # "str" on pandas >= 3, object before
_STR_IS_OBJECT = _STR_DTYPE.kind == "O" and not isinstance(_STR_DTYPE, pd.StringDtype)


# ---------------------------------------------------------------------------------------------
# small helpers: JSON, atomic files, checksums
# ---------------------------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays, paths and sets JSON-serialisable."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any, what: str, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps`` with numpy support and an :class:`AlfavizInputError` on failure."""
    try:
        return json.dumps(obj, default=_json_default, indent=indent, sort_keys=sort_keys)
    except (TypeError, ValueError) as exc:
        raise AlfavizInputError(
            f"{what} must be JSON-serialisable (numbers, strings, lists, dicts); {exc}"
        ) from exc


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power cut (POSIX only)."""
    if os.name != "posix":  # pragma: no cover - Windows has no directory fsync
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - defensive
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (no rename: for files in a temp directory)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to a temporary file next to ``path`` and move it into place.

    With ``exclusive=True`` the move fails with :class:`FileExistsError` if ``path`` exists
    (``os.link`` is atomic and never replaces).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
    try:
        _write_file(tmp, data)
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # pragma: no cover - filesystems without hard links
                if path.exists():
                    raise FileExistsError(str(path)) from None
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _read_json_file(path: Path) -> Any:
    """Read and parse a JSON file, raising :class:`RunStoreError` if it is corrupt."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RunStoreError(f"{path} is missing") from None
    except UnicodeDecodeError as exc:
        raise RunStoreError(
            f"{path} is corrupt or truncated (not UTF-8 text: {exc}); the run cannot be read. "
            "Restore the file from a copy of the run."
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunStoreError(
            f"{path} is corrupt or truncated (invalid JSON: {exc}); the run cannot be read. "
            "Restore the file from a copy of the run."
        ) from exc


def _check_int(value: Any, name: str, *, minimum: int | None = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise AlfavizInputError(f"{name} must be an integer; got {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise AlfavizInputError(f"{name} must be >= {minimum}; got {value}.")
    return value


# ---------------------------------------------------------------------------------------------
# Parquet round trip
# ---------------------------------------------------------------------------------------------


def _check_frame(df: Any, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise AlfavizInputError(f"{what} must be a pandas DataFrame; got {type(df).__name__}.")
    if isinstance(df.columns, pd.MultiIndex) or not all(isinstance(c, str) for c in df.columns):
        raise AlfavizInputError(
            f"{what} must have string column names to be stored as Parquet; got "
            f"{list(df.columns)!r}. Rename the columns first."
        )
    if df.columns.has_duplicates:
        dups = sorted(set(df.columns[df.columns.duplicated()]))
        raise AlfavizInputError(f"{what} has duplicate column names {dups}; make them unique.")
    return df


def _encode_index(index: pd.Index, what: str) -> str:
    """An Index as a base64 Arrow IPC stream (exact dtype, any element type Arrow knows)."""
    try:
        table = pa.Table.from_pandas(pd.DataFrame({"c": index}), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise AlfavizInputError(f"{what} cannot be stored as Parquet: {exc}") from exc
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _decode_index(text: str) -> pd.Index:
    table = pa.ipc.open_stream(base64.b64decode(text)).read_all()
    return pd.Index(table.to_pandas()["c"]).rename(None)


def _frame_to_parquet(df: pd.DataFrame, what: str) -> bytes:
    """Serialise ``df`` (index and dtypes included) to Parquet bytes."""
    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise AlfavizInputError(
            f"{what} cannot be stored as Parquet: {exc}. Give each column one type "
            "(numbers, bools or strings)."
        ) from exc
    categoricals: dict[str, dict[str, Any]] = {}
    for col in df.columns:
        dtype = df[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categoricals[col] = {
                "categories": _encode_index(dtype.categories, f"{what}[{col!r}] categories"),
                "ordered": bool(dtype.ordered),
            }
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = _canonical(
        {"format_version": FORMAT_VERSION, "categoricals": categoricals}
    ).encode()
    table = table.replace_schema_metadata(metadata)
    return _table_to_parquet(table)


def _table_to_parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()


def _parquet_to_table(data: bytes, path: Path) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise RunStoreError(
            f"{path} is corrupt or truncated ({exc}); refusing to load it partially. "
            "Restore the file from a copy of the run or rewrite the round with overwrite=True."
        ) from exc


def _table_to_frame(table: pa.Table, path: Path) -> pd.DataFrame:
    try:
        df = table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError) as exc:  # pragma: no cover - defensive
        raise RunStoreError(f"{path} is corrupt: cannot convert it to a DataFrame ({exc})") from exc
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw:
        try:
            meta = json.loads(raw)
            for col, spec in meta.get("categoricals", {}).items():
                cats = _decode_index(spec["categories"])
                values = df[col]
                if cats.dtype.kind == "m" and values.dtype.kind in "iuf":
                    # a dictionary of durations comes back as its int64 storage
                    values = pd.to_timedelta(values, unit=np.datetime_data(cats.dtype)[0])
                df[col] = values.astype(pd.CategoricalDtype(cats, ordered=spec["ordered"]))
        except (pa.ArrowException, ValueError, KeyError, TypeError) as exc:
            raise RunStoreError(f"{path} is corrupt: bad alfaviz metadata ({exc})") from exc
    return df


# ---------------------------------------------------------------------------------------------
# labels and events: SQLite in WAL mode
# ---------------------------------------------------------------------------------------------

_SCHEMA_VERSION = 1
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS actions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        REAL    NOT NULL,
    round     INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    action    TEXT    NOT NULL CHECK (action IN ('label', 'undo', 'skip')),
    label     INTEGER,
    source    TEXT,
    undoes    INTEGER NULL REFERENCES actions(id),
    session   TEXT,
    CHECK ((action = 'label') = (label IS NOT NULL)),
    CHECK ((action = 'undo') = (undoes IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS actions_undoes ON actions(undoes);
CREATE INDEX IF NOT EXISTS actions_sample ON actions(sample_id);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts      REAL NOT NULL,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""
_ACTION_COLS = ("id", "ts", "round", "sample_id", "action", "label", "source", "undoes", "session")
_UNDONE = "SELECT undoes FROM actions WHERE undoes IS NOT NULL"


def _transpose(rows: list[tuple[Any, ...]], n_cols: int) -> list[list[Any]]:
    """Rows from ``fetchall()`` as ``n_cols`` column lists (empty lists for no rows)."""
    if not rows:
        return [[] for _ in range(n_cols)]
    return [list(col) for col in zip(*rows, strict=True)]


def _str_col(values: list[Any]) -> pd.Series:
    s = pd.Series(values, dtype=object)
    return s if _STR_IS_OBJECT else s.astype(_STR_DTYPE)


def _int_col(values: list[Any], nullable: bool = False) -> Any:
    if nullable:
        return pd.array(values, dtype="Int64")
    return np.asarray(values, dtype=np.int64)


class LabelLog:
    """Append-only log of human actions and events in one SQLite database.

    One row per action (``label``, ``skip`` or ``undo``), committed as soon as it is added;
    nothing is ever updated or deleted. The effective labels are derived from the history
    (:meth:`labels`).

    Parameters
    ----------
    path : str or Path
        The database file (``<run>/labels.sqlite``); created if missing.
    timeout : float
        Seconds a writer waits for another writer's lock (SQLite busy timeout) before
        raising ``sqlite3.OperationalError: database is locked``.

    Notes
    -----
    * **WAL mode** (``PRAGMA journal_mode=WAL``): readers never block the writer and the
      writer never blocks readers, so two dashboard tabs or two kernels can use the run at
      the same time; concurrent writers are serialised by SQLite's lock plus the busy
      timeout.
    * **synchronous=FULL**: in WAL mode ``NORMAL`` already survives ``kill -9`` of the
      process (a committed transaction is in the OS page cache), but it can lose the last
      commits on a power cut or OS crash. ``FULL`` fsyncs the WAL on every commit, so a label
      is on disk when :meth:`add_label` returns. Labels cost seconds of human time each and
      arrive at most a few per second, so the millisecond fsync is worth it.
    * **Connections**: one ``sqlite3`` connection per thread and per process, opened lazily
      (a connection must not cross a ``fork``; the owning pid is checked). The object is
      picklable: it pickles as its path and timeout, and the copy opens its own connections.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self._path = Path(path)
        self._timeout = float(timeout)
        self._init_state()

    def _init_state(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._generation = 0

    # pickling ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self._path, "timeout": self._timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = Path(state["path"])
        self._timeout = float(state["timeout"])
        self._init_state()

    def __repr__(self) -> str:
        return f"LabelLog({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The SQLite database file."""
        return self._path

    # connections ------------------------------------------------------------------------------
    def _open_connection(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() may close every connection; each
        # connection is used by the one thread that opened it (see _conn).
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            self._ensure_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError:
                # switching the journal mode needs an exclusive lock and does not always
                # honour the busy timeout: retry until the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if str(mode).lower() == "wal":
                return
            if time.monotonic() > deadline:  # pragma: no cover - e.g. a read-only filesystem
                raise RunStoreError(
                    f"{self._path}: could not switch SQLite to WAL mode (journal mode is {mode})"
                )
            time.sleep(0.05)  # pragma: no cover

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                for stmt in _SCHEMA_SQL.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == pid and local.generation == self._generation:
            return conn
        try:
            conn = self._open_connection()
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(
                f"{self._path} cannot be opened as a SQLite database ({exc}); it may be corrupt."
            ) from exc
        local.conn, local.pid, local.generation = conn, pid, self._generation
        with self._lock:
            self._conns.append((pid, conn))
        return conn

    def initialise(self) -> None:
        """Create the database (WAL mode, tables) now instead of on first use."""
        self._conn()

    def close(self) -> None:
        """Close every connection this process opened; later calls open new ones."""
        pid = os.getpid()
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for owner, conn in conns:
            if owner == pid:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._local = threading.local()

    # writing ----------------------------------------------------------------------------------
    def _insert_action(
        self,
        action: str,
        sample_id: Any,
        label: Any,
        round: Any,
        source: str | None,
        session: str | None,
    ) -> int:
        sample_id = _check_int(sample_id, "sample_id")
        round = _check_int(round, "round")
        if label is not None:
            label = _check_int(label, "label")
        cur = self._conn().execute(
            "INSERT INTO actions (ts, round, sample_id, action, label, source, undoes, session) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            (time.time(), round, sample_id, action, label, source, session),
        )
        action_id = int(cur.lastrowid or 0)
        logger.debug("%s: %s sample %d (action %d)", self._path, action, sample_id, action_id)
        return action_id

    def add_label(
        self,
        sample_id: int,
        label: int,
        *,
        round: int,
        source: str | None = "human",
        session: str | None = None,
    ) -> int:
        """Record that ``sample_id`` got class ``label`` in ``round``; committed on return.

        Parameters
        ----------
        sample_id : int
            Global sample id (>= 0).
        label : int
            Class id (>= 0).
        round : int
            The round the label belongs to.
        source : str or None
            Who labelled it (``"human"``, ``"oracle"``, ...).
        session : str or None
            Identifies the tab/kernel, so that :meth:`undo` can undo only its own actions.

        Returns
        -------
        int
            The id of the new action row.
        """
        if label is None:
            raise AlfavizInputError("label must be an integer class id; got None.")
        return self._insert_action("label", sample_id, label, round, source, session)

    def add_skip(
        self,
        sample_id: int,
        *,
        round: int,
        source: str | None = "human",
        session: str | None = None,
    ) -> int:
        """Record that ``sample_id`` was skipped in ``round``; returns the action id.

        A skip does not change the effective labels (:meth:`labels`); see :meth:`skipped`.
        """
        return self._insert_action("skip", sample_id, None, round, source, session)

    def undo(
        self, *, session: str | None = None, source: str | None = "human"
    ) -> dict[str, Any] | None:
        """Undo the most recent label or skip that has not been undone yet.

        The undo is a new ``'undo'`` row whose ``undoes`` column points at the undone action;
        no row is deleted. Undo is not undoable itself: calling it again undoes the action
        before. Lookup and insert happen in one ``BEGIN IMMEDIATE`` transaction, so two
        processes undoing at once never undo the same action twice.

        Parameters
        ----------
        session : str or None
            Only consider actions of this session; ``None`` considers all actions.
        source : str or None
            Stored in the undo row.

        Returns
        -------
        dict or None
            The undone action row (keys ``id, ts, round, sample_id, action, label, source,
            undoes, session``), or ``None`` when there was nothing to undo.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT {', '.join(_ACTION_COLS)} FROM actions "
                "WHERE action IN ('label', 'skip') AND (? IS NULL OR session = ?) "
                f"AND id NOT IN ({_UNDONE}) ORDER BY id DESC LIMIT 1",
                (session, session),
            ).fetchone()
            if row is not None:
                undone = dict(zip(_ACTION_COLS, row, strict=True))
                conn.execute(
                    "INSERT INTO actions (ts, round, sample_id, action, label, source, undoes, "
                    "session) VALUES (?, ?, ?, 'undo', NULL, ?, ?, ?)",
                    (
                        time.time(),
                        undone["round"],
                        undone["sample_id"],
                        source,
                        undone["id"],
                        session,
                    ),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if row is None:
            return None
        logger.debug("%s: undid action %d", self._path, undone["id"])
        return undone

    def log_event(self, kind: str, payload: Mapping[str, Any] | None = None) -> int:
        """Append an event (``kind`` plus a JSON payload); returns the event id."""
        if not isinstance(kind, str) or not kind:
            raise AlfavizInputError(f"kind must be a non-empty string; got {kind!r}.")
        payload = {} if payload is None else payload
        if not isinstance(payload, Mapping):
            raise AlfavizInputError(f"payload must be a dict; got {type(payload).__name__}.")
        text = _dumps(dict(payload), f"event payload for {kind!r}", indent=None)
        cur = self._conn().execute(
            "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)", (time.time(), kind, text)
        )
        return int(cur.lastrowid or 0)

    # reading ----------------------------------------------------------------------------------
    def actions(self) -> pd.DataFrame:
        """The full action history, one row per action, ordered by ``id``.

        Returns
        -------
        pandas.DataFrame
            Columns ``id, ts, round, sample_id`` (int64/float64), ``action, source, session``
            (strings) and ``label, undoes`` (nullable ``Int64``).
        """
        rows = (
            self._conn()
            .execute(f"SELECT {', '.join(_ACTION_COLS)} FROM actions ORDER BY id")
            .fetchall()
        )
        data = dict(zip(_ACTION_COLS, _transpose(rows, len(_ACTION_COLS)), strict=True))
        return pd.DataFrame(
            {
                "id": _int_col(data["id"]),
                "ts": np.asarray(data["ts"], dtype=np.float64),
                "round": _int_col(data["round"]),
                "sample_id": _int_col(data["sample_id"]),
                "action": _str_col(data["action"]),
                "label": _int_col(data["label"], nullable=True),
                "source": _str_col(data["source"]),
                "undoes": _int_col(data["undoes"], nullable=True),
                "session": _str_col(data["session"]),
            }
        )

    def _latest_live(self, action: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        return (
            self._conn()
            .execute(
                f"SELECT {', '.join(columns)} FROM ("
                "  SELECT *, ROW_NUMBER() OVER (PARTITION BY sample_id ORDER BY id DESC) AS rn"
                f"  FROM actions WHERE action = ? AND id NOT IN ({_UNDONE})"
                ") WHERE rn = 1 ORDER BY sample_id",
                (action,),
            )
            .fetchall()
        )

    def labels(self) -> pd.DataFrame:
        """The effective labels: the latest not-undone ``label`` action per sample.

        Skips do not remove a label; undoing a label falls back to the sample's previous
        not-undone label, if any.

        Returns
        -------
        pandas.DataFrame
            One row per labelled sample, sorted by ``sample_id``; columns ``sample_id, label,
            round`` (int64), ``source`` (string) and ``ts`` (float64, seconds since the epoch).
        """
        cols = ("sample_id", "label", "round", "source", "ts")
        rows = self._latest_live("label", cols)
        data = _transpose(rows, len(cols))
        return pd.DataFrame(
            {
                "sample_id": _int_col(data[0]),
                "label": _int_col(data[1]),
                "round": _int_col(data[2]),
                "source": _str_col(data[3]),
                "ts": np.asarray(data[4], dtype=np.float64),
            }
        )

    def skipped(self) -> pd.DataFrame:
        """Samples with a not-undone skip: columns ``sample_id, round, source, ts``."""
        cols = ("sample_id", "round", "source", "ts")
        rows = self._latest_live("skip", cols)
        data = _transpose(rows, len(cols))
        return pd.DataFrame(
            {
                "sample_id": _int_col(data[0]),
                "round": _int_col(data[1]),
                "source": _str_col(data[2]),
                "ts": np.asarray(data[3], dtype=np.float64),
            }
        )

    def events(self) -> pd.DataFrame:
        """All events ordered by id: ``id, ts, kind`` and ``payload`` (decoded dicts)."""
        rows = (
            self._conn().execute("SELECT id, ts, kind, payload FROM events ORDER BY id").fetchall()
        )
        data = _transpose(rows, 4)
        payloads = pd.Series([json.loads(p) for p in data[3]], dtype=object)
        return pd.DataFrame(
            {
                "id": _int_col(data[0]),
                "ts": np.asarray(data[1], dtype=np.float64),
                "kind": _str_col(data[2]),
                "payload": payloads,
            }
        )


# ---------------------------------------------------------------------------------------------
# the run store
# ---------------------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "alfaviz": __version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        versions["torch"] = None
    else:
        versions["torch"] = str(torch.__version__)
    return versions


def _scalar(value: Any, key: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise AlfavizInputError(
        f"rounds_row[{key!r}] must be a scalar (int, float, bool, str or None); "
        f"got {type(value).__name__}."
    )


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
    """

    def __init__(
        self, path: str | os.PathLike[str], *, verify: bool = True, timeout: float = 30.0
    ) -> None:
        self._path = Path(path)
        self._verify = bool(verify)
        self._timeout = float(timeout)
        self._meta: dict[str, Any] | None = None
        self._log = LabelLog(self._path / LABELS_FILE, timeout=self._timeout)

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
    ) -> RunStore:
        """Create a new run directory and write its ``config.json``.

        Parameters
        ----------
        path : str or Path
            The run directory. It may exist if it is empty.
        config : Mapping
            JSON-serialisable run configuration (numpy scalars and arrays are converted).
        exist_ok : bool
            If ``path`` already is a run with the same config, open it instead of raising.
        seed : int, optional
            The run's random seed; defaults to ``config["seed"]`` when present.
        verify, timeout
            See :class:`RunStore`.

        Returns
        -------
        RunStore

        Raises
        ------
        RunStoreError
            If ``path`` is a run and ``exist_ok`` is false, if it is a run with a different
            config, or if it is a non-empty directory that is not a run.
        """
        path = Path(path)
        if not isinstance(config, Mapping):
            raise AlfavizInputError(f"config must be a dict; got {type(config).__name__}.")
        config = dict(config)
        if seed is None and config.get("seed") is not None:
            seed = config["seed"]
        elif seed is not None and config.get("seed") not in (None, seed):
            raise AlfavizInputError(
                f"seed={seed!r} disagrees with config['seed']={config['seed']!r}; pass one."
            )
        if seed is not None:
            seed = _check_int(seed, "seed", minimum=None)
        config_text = _dumps(config, "config")
        if path.exists() and not path.is_dir():
            raise RunStoreError(f"cannot create a run at {path}: it exists and is not a directory.")
        if path.is_dir() and not (path / CONFIG_FILE).exists() and any(path.iterdir()):
            raise RunStoreError(
                f"cannot create a run at {path}: the directory is not empty and is not a run "
                f"directory ({CONFIG_FILE} is missing). Choose a new or empty directory."
            )
        meta = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "seed": seed,
            "versions": _versions(),
            "config": json.loads(config_text),
        }
        path.mkdir(parents=True, exist_ok=True)
        try:
            _atomic_write_bytes(
                path / CONFIG_FILE, (_dumps(meta, "config") + "\n").encode(), exclusive=True
            )
        except FileExistsError:
            if not exist_ok:
                raise RunStoreError(
                    f"a run already exists at {path}; pass exist_ok=True to reopen it, or "
                    "choose a new directory."
                ) from None
            store = cls.open(path, verify=verify, timeout=timeout)
            if _canonical(store.config) != _canonical(meta["config"]):
                old, new = store.config, meta["config"]
                keys = sorted(
                    k
                    for k in set(old) | set(new)
                    if _canonical(old.get(k)) != _canonical(new.get(k))
                )
                raise RunStoreError(
                    f"a run already exists at {path} with a different config (keys differing: "
                    f"{keys}); use a new directory for a new config."
                ) from None
            logger.info("reopened existing run %s", path)
            return store
        (path / ROUNDS_DIR).mkdir(exist_ok=True)
        store = cls(path, verify=verify, timeout=timeout)
        store._meta = meta
        store._log.initialise()
        logger.info("created run %s", path)
        return store

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, verify: bool = True, timeout: float = 30.0
    ) -> RunStore:
        """Open an existing run directory.

        Raises
        ------
        RunStoreError
            If ``path`` does not exist, is not a directory, has no ``config.json``, or its
            ``config.json`` is corrupt or from a newer format.
        """
        path = Path(path)
        if not path.exists():
            raise RunStoreError(f"{path} is not a run directory: it does not exist.")
        if not path.is_dir():
            raise RunStoreError(f"{path} is not a run directory: it is a file.")
        if not (path / CONFIG_FILE).is_file():
            raise RunStoreError(
                f"{path} is not a run directory: {CONFIG_FILE} is missing. "
                "Create a run with RunStore.create(path, config)."
            )
        store = cls(path, verify=verify, timeout=timeout)
        store._meta = store._load_meta()
        return store

    def _load_meta(self) -> dict[str, Any]:
        file = self._path / CONFIG_FILE
        meta = _read_json_file(file)
        if not isinstance(meta, dict) or "config" not in meta or "format_version" not in meta:
            raise RunStoreError(
                f"{file} is corrupt: expected an object with 'format_version' and 'config'."
            )
        version = meta["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RunStoreError(
                f"{file} has format_version {version!r} but this alfaviz reads up to "
                f"{FORMAT_VERSION}; upgrade alfaviz to open this run."
            )
        return meta

    # plumbing ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "verify": self._verify,
            "timeout": self._timeout,
            "meta": self._meta,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = Path(state["path"])
        self._verify = state["verify"]
        self._timeout = state["timeout"]
        self._meta = state["meta"]
        self._log = LabelLog(self._path / LABELS_FILE, timeout=self._timeout)

    def __repr__(self) -> str:
        return f"RunStore({str(self._path)!r}, rounds={self.rounds_written()})"

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
    def meta(self) -> dict[str, Any]:
        """Everything in ``config.json``: ``format_version``, ``created_at``, ``seed``,
        ``versions`` and ``config``."""
        if self._meta is None:
            self._meta = self._load_meta()
        return self._meta

    @property
    def config(self) -> dict[str, Any]:
        """The user config passed to :meth:`create` (after a JSON round trip)."""
        return self.meta["config"]

    @property
    def seed(self) -> int | None:
        """The run's seed, or ``None`` if none was given."""
        return self.meta.get("seed")

    @property
    def log(self) -> LabelLog:
        """The label and event log in ``labels.sqlite``."""
        return self._log

    # rounds: writing --------------------------------------------------------------------------
    def _round_dir(self, round: int) -> Path:
        return self._path / ROUNDS_DIR / f"round_{round:04d}"

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
        overwrite: bool = False,
    ) -> Path:
        """Write one round's artefacts, all at once and atomically.

        Parameters
        ----------
        round : int
            Round number (>= 0).
        samples : pandas.DataFrame
            Per-sample frame (see :mod:`alfaviz.schema`).
        flips : pandas.DataFrame
            Per-(sample, anchor) frame; may be empty.
        rounds_row : Mapping[str, scalar]
            This round's row of the rounds frame (ints, floats, bools, strings, None). A
            ``round`` key, if present, must equal ``round``.
        embeddings : array-like, shape (n, dim), optional
            Embedding matrix (numpy array or CPU/GPU tensor); its dtype is kept.
        embedding_ids : array-like of int, shape (n,), optional
            Sample id of each embedding row; defaults to ``arange(n)`` (row ``i`` is sample
            ``i``, the usual case for whole-pool embeddings).
        coords : pandas.DataFrame, optional
            2-D layout with at least the columns ``sample_id, x, y``.
        extra : Mapping[str, pandas.DataFrame], optional
            Further named frames (names: letters, digits, ``_ . -``).
        overwrite : bool
            Replace an existing round. Rounds are immutable otherwise.

        Returns
        -------
        Path
            The round directory.

        Raises
        ------
        RunStoreError
            If the round was already written and ``overwrite`` is false.
        """
        round = _check_int(round, "round")
        final = self._round_dir(round)
        if final.exists() and not overwrite:
            raise RunStoreError(
                f"round {round} is already written at {final}; rounds are immutable "
                "(pass overwrite=True to replace it)."
            )
        files: dict[str, bytes] = {}
        files[_SAMPLES_FILE] = _frame_to_parquet(_check_frame(samples, "samples"), "samples")
        files[_FLIPS_FILE] = _frame_to_parquet(_check_frame(flips, "flips"), "flips")
        row = self._check_row(rounds_row, round)
        embedding_dim = None
        if embeddings is not None:
            files[_EMBEDDINGS_FILE], embedding_dim = self._embeddings_to_parquet(
                embeddings, embedding_ids
            )
        elif embedding_ids is not None:
            raise AlfavizInputError("embedding_ids given without embeddings.")
        if coords is not None:
            coords = _check_frame(coords, "coords")
            missing = [c for c in (schema.SAMPLE_ID, schema.X, schema.Y) if c not in coords]
            if missing:
                raise AlfavizInputError(
                    f"coords must have columns sample_id, x, y; missing {missing}."
                )
            files[_COORDS_FILE] = _frame_to_parquet(coords, "coords")
        for name, frame in (extra or {}).items():
            if not isinstance(name, str) or not _EXTRA_NAME_RE.match(name):
                raise AlfavizInputError(
                    f"extra frame name {name!r} must be letters, digits, '_', '.' or '-'."
                )
            files[f"{_EXTRA_DIR}/{name}.parquet"] = _frame_to_parquet(
                _check_frame(frame, f"extra[{name!r}]"), f"extra[{name!r}]"
            )

        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "round": round,
            "written_at": time.time(),
            "row": row,
            "files": {rel: {"bytes": len(b), "sha256": _sha256(b)} for rel, b in files.items()},
            "embedding_dim": embedding_dim,
        }
        manifest["checksum"] = _sha256(_canonical(manifest).encode())

        rounds_dir = self._path / ROUNDS_DIR
        rounds_dir.mkdir(exist_ok=True)
        tmp = rounds_dir / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            for rel, data in files.items():
                target = tmp / rel
                target.parent.mkdir(exist_ok=True)
                _write_file(target, data)
            _write_file(tmp / ROUND_FILE, (_dumps(manifest, ROUND_FILE) + "\n").encode())
            if (tmp / _EXTRA_DIR).exists():
                _fsync_dir(tmp / _EXTRA_DIR)
            _fsync_dir(tmp)
            self._move_into_place(tmp, final, round, overwrite)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(rounds_dir)
        logger.info("wrote round %d to %s (%s)", round, final, ", ".join(files))
        return final

    @staticmethod
    def _move_into_place(tmp: Path, final: Path, round: int, overwrite: bool) -> None:
        old = None
        if overwrite and final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
            os.rename(final, old)
        try:
            os.rename(tmp, final)  # atomic; fails if ``final`` exists and is not empty
        except OSError as exc:
            if old is not None:
                with contextlib.suppress(OSError):
                    os.rename(old, final)
            raise RunStoreError(
                f"round {round} is already written at {final}; rounds are immutable "
                "(pass overwrite=True to replace it)."
            ) from exc
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def _check_row(rounds_row: Any, round: int) -> dict[str, Any]:
        if not isinstance(rounds_row, Mapping):
            raise AlfavizInputError(
                f"rounds_row must be a dict of scalars; got {type(rounds_row).__name__}."
            )
        row: dict[str, Any] = {}
        for key, value in rounds_row.items():
            if not isinstance(key, str):
                raise AlfavizInputError(f"rounds_row keys must be strings; got {key!r}.")
            row[key] = _scalar(value, key)
        if schema.ROUND in row and row[schema.ROUND] != round:
            raise AlfavizInputError(
                f"rounds_row['round'] is {row[schema.ROUND]!r} but round={round}."
            )
        row.pop(schema.ROUND, None)
        return row

    @staticmethod
    def _embeddings_to_parquet(embeddings: Any, embedding_ids: Any) -> tuple[bytes, int]:
        if hasattr(embeddings, "detach"):  # torch tensor, possibly on a GPU
            embeddings = embeddings.detach().cpu().numpy()
        mat = np.ascontiguousarray(np.asarray(embeddings))
        if mat.ndim != 2 or mat.shape[1] == 0:
            raise AlfavizInputError(
                f"embeddings must be 2-D with shape (n_samples, dim >= 1); got {mat.shape}."
            )
        if mat.dtype.kind not in "iuf":
            raise AlfavizInputError(f"embeddings must be numeric; got dtype {mat.dtype}.")
        n, dim = mat.shape
        if embedding_ids is None:
            ids = np.arange(n, dtype=np.int64)
        else:
            if hasattr(embedding_ids, "detach"):
                embedding_ids = embedding_ids.detach().cpu().numpy()
            ids = np.asarray(embedding_ids)
            if ids.shape != (n,) or (n and ids.dtype.kind not in "iu"):
                raise AlfavizInputError(
                    f"embedding_ids must be integers of shape ({n},); got {ids.dtype} {ids.shape}."
                )
            ids = ids.astype(np.int64)
            if len(np.unique(ids)) != n:
                raise AlfavizInputError("embedding_ids must be unique.")
        values = pa.array(mat.reshape(-1))
        table = pa.table(
            {
                schema.SAMPLE_ID: pa.array(ids, type=pa.int64()),
                _EMBEDDING_COL: pa.FixedSizeListArray.from_arrays(values, dim),
            }
        )
        return _table_to_parquet(table), dim

    # rounds: reading --------------------------------------------------------------------------
    def rounds_written(self) -> list[int]:
        """Round numbers present in the store, ascending."""
        rounds_dir = self._path / ROUNDS_DIR
        if not rounds_dir.is_dir():
            return []
        found = []
        for entry in rounds_dir.iterdir():
            m = _ROUND_DIR_RE.match(entry.name)
            if m and entry.is_dir():
                found.append(int(m.group(1)))
        return sorted(found)

    def _manifest(self, round: int) -> dict[str, Any]:
        round = _check_int(round, "round")
        rdir = self._round_dir(round)
        if not rdir.is_dir():
            raise RunStoreError(
                f"round {round} is not in the run {self._path} (no {rdir.name}/); rounds "
                f"written: {self.rounds_written()}."
            )
        file = rdir / ROUND_FILE
        if not file.is_file():
            raise RunStoreError(f"{file} is missing: round {round} is incomplete or damaged.")
        manifest = _read_json_file(file)
        if not isinstance(manifest, dict) or "checksum" not in manifest:
            raise RunStoreError(f"{file} is corrupt: it is not a round manifest.")
        body = {k: v for k, v in manifest.items() if k != "checksum"}
        if _sha256(_canonical(body).encode()) != manifest["checksum"]:
            raise RunStoreError(f"{file} is corrupt: its content does not match its checksum.")
        return manifest

    def artefacts(self, round: int) -> list[str]:
        """Files written for ``round`` (relative names, e.g. ``"coords.parquet"``)."""
        return sorted(self._manifest(round)["files"])

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
            if len(data) != entry["bytes"]:
                raise RunStoreError(
                    f"{file} is truncated or corrupt: expected {entry['bytes']} bytes, found "
                    f"{len(data)}. Restore it from a copy of the run or rewrite round {round} "
                    "with overwrite=True."
                )
            if _sha256(data) != entry["sha256"]:
                raise RunStoreError(
                    f"{file} is corrupt: its SHA-256 does not match {ROUND_FILE}. Restore it "
                    f"from a copy of the run or rewrite round {round} with overwrite=True."
                )
        return data, file

    def _read_frame(self, round: int, rel: str, what: str) -> pd.DataFrame:
        data, file = self._read_bytes(round, rel, what)
        return _table_to_frame(_parquet_to_table(data, file), file)

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
        return self._read_all(_SAMPLES_FILE, "samples", round)

    def read_flips(self, round: int | None = None) -> pd.DataFrame:
        """The flips frame of ``round``, or of all rounds (as in :meth:`read_samples`)."""
        return self._read_all(_FLIPS_FILE, "flips", round)

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
        data, file = self._read_bytes(round, _EMBEDDINGS_FILE, "embeddings")
        table = _parquet_to_table(data, file)
        try:
            ids = table.column(schema.SAMPLE_ID).to_numpy().astype(np.int64, copy=True)
            col = table.column(_EMBEDDING_COL).combine_chunks()
            dim = col.type.list_size
            flat = col.flatten().to_numpy(zero_copy_only=False)
            matrix = np.array(flat, copy=True).reshape(len(col), dim)
        except (KeyError, pa.ArrowException, ValueError, AttributeError) as exc:
            raise RunStoreError(f"{file} is corrupt: not an embeddings table ({exc}).") from exc
        return ids, matrix

    def read_coords(self, round: int) -> pd.DataFrame:
        """The 2-D coordinates of ``round`` (``sample_id, x, y``, as written)."""
        return self._read_frame(round, _COORDS_FILE, "coords")

    def read_extra(self, round: int, name: str) -> pd.DataFrame:
        """The extra frame ``name`` of ``round``."""
        return self._read_frame(round, f"{_EXTRA_DIR}/{name}.parquet", f"extra frame {name!r}")

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
        return self._log.add_label(sample_id, label, round=round, source=source, session=session)

    def add_skip(
        self,
        sample_id: int,
        *,
        round: int,
        source: str | None = "human",
        session: str | None = None,
    ) -> int:
        """See :meth:`LabelLog.add_skip`."""
        return self._log.add_skip(sample_id, round=round, source=source, session=session)

    def undo(
        self, *, session: str | None = None, source: str | None = "human"
    ) -> dict[str, Any] | None:
        """See :meth:`LabelLog.undo`."""
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
        return self._log.log_event(kind, payload)

    def events(self) -> pd.DataFrame:
        """See :meth:`LabelLog.events`."""
        return self._log.events()
