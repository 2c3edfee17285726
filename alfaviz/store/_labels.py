"""Labels, events and the rounds index: one SQLite database in WAL mode.

The database (``<run>/labels.sqlite``) holds four tables:

``actions``
    One row per human or machine action (``label``, ``skip``, ``undo``); append-only.
``events``
    Free-form events (a kind plus a JSON payload); append-only.
``rounds``
    The rounds index: one row per written round with the checksum of its ``round.json``.
    A round counts as written only once its row is committed, and the labels the round
    produces are committed in the same transaction (see :meth:`RunStore.write_round`).
``run_meta``
    Key/value facts recorded at creation, e.g. the checksum of ``config.json``, and the
    record (file, size, SHA-256, round checksum) of each derived frame of a round; that
    record's commit is what makes a new version of a derived frame current.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store._io import check_int, check_str, dumps, write_point

__all__ = ["HUMAN_SOURCE", "MACHINE_SOURCES", "LabelLog"]

logger = logging.getLogger(__name__)

HUMAN_SOURCE = "human"
"""The default source of :meth:`LabelLog.add_label`: a person labelled the sample."""

MACHINE_SOURCES = frozenset({"initial", "oracle"})
"""Sources of labels no person gave; :meth:`LabelLog.undo` never undoes them."""

_SCHEMA_VERSION = 2
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
CREATE TABLE IF NOT EXISTS rounds (
    round    INTEGER PRIMARY KEY CHECK (round >= 0),
    manifest TEXT NOT NULL,
    ts       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_ACTION_COLS = schema.ACTIONS.names
_UNDONE = "SELECT undoes FROM actions WHERE undoes IS NOT NULL"
_INSERT = (
    "INSERT INTO actions (ts, round, sample_id, action, label, source, undoes, session) "
    "VALUES (?, ?, ?, ?, ?, ?, NULL, ?)"
)
_STR_DTYPE = pd.Series(["x"]).dtype  # "str" on pandas >= 3, object before
_STR_IS_OBJECT = _STR_DTYPE.kind == "O" and not isinstance(_STR_DTYPE, pd.StringDtype)

LabelRow = tuple[int, int, str | None]
"""A checked label: ``(sample_id, label, source)``."""


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


def check_labels(items: Any, *, source: str | None, what: str = "labels") -> list[LabelRow]:
    """Check a batch of labels before anything is written.

    Parameters
    ----------
    items : iterable of tuples
        ``(sample_id, label)`` or ``(sample_id, label, source)`` per sample; a numpy array
        of shape ``(n, 2)`` works too.
    source : str or None
        The source of pairs that do not name their own.
    what : str
        The argument's name, for error messages.

    Returns
    -------
    list of (sample_id, label, source)

    Raises
    ------
    AlfavizInputError
        If an item is malformed, an id or label is not an integer >= 0, or a sample appears
        twice.
    """
    if items is None or isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise AlfavizInputError(
            f"{what} must be a list of (sample_id, label) or (sample_id, label, source) "
            f"tuples; got {type(items).__name__}."
        )
    rows: list[LabelRow] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list, np.ndarray)) or len(item) not in (2, 3):
            raise AlfavizInputError(
                f"{what}[{i}] must be a (sample_id, label) or (sample_id, label, source) "
                f"tuple; got {item!r}."
            )
        sid = check_int(item[0], f"{what}[{i}] sample_id")
        lab = check_int(item[1], f"{what}[{i}] label")
        src = (
            check_str(item[2], f"{what}[{i}] source", allow_none=True) if len(item) == 3 else source
        )
        if sid in seen:
            raise AlfavizInputError(
                f"{what} names sample_id {sid} twice; pass each sample once per batch."
            )
        seen.add(sid)
        rows.append((sid, lab, src))
    return rows


class LabelLog:
    """Append-only log of human actions and events in one SQLite database.

    One row per action (``label``, ``skip`` or ``undo``), committed as soon as it is added
    (a batch from :meth:`add_labels` in one transaction); nothing is ever updated or deleted.
    The effective labels are derived from the history (:meth:`labels`).

    Parameters
    ----------
    path : str or Path
        The database file (``<run>/labels.sqlite``); created if missing unless
        ``must_exist`` or ``read_only``.
    timeout : float
        Seconds a writer waits for another writer's lock (SQLite busy timeout) before
        raising ``sqlite3.OperationalError: database is locked``.
    session : str, optional
        This writer's session id, recorded with every action it adds and used by
        :meth:`undo` to undo only this session's own actions. Defaults to a fresh random
        id, so two ``LabelLog`` objects (two tabs, two processes) are two sessions.
    must_exist : bool
        Refuse a missing or empty database (:class:`RunStoreError`) instead of creating it.
    read_only : bool
        Open the database read-only; every write raises :class:`RunStoreError`.

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
      arrive at most a few per second, so the millisecond fsync is worth it; machine labels
      come in batches (:meth:`add_labels`), one fsync per batch.
    * **Connections**: one ``sqlite3`` connection per thread and per process, opened lazily
      (a connection must not cross a ``fork``; the owning pid is checked). The object is
      picklable: it pickles as its path, settings and session, and the copy opens its own
      connections.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        session: str | None = None,
        must_exist: bool = False,
        read_only: bool = False,
    ) -> None:
        self._path = Path(path)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise AlfavizInputError(
                f"timeout must be a number of seconds >= 0; got {timeout!r}. Pass e.g. 30.0."
            )
        self._timeout = float(timeout)
        self._session = uuid.uuid4().hex if session is None else str(check_str(session, "session"))
        self._must_exist = bool(must_exist)
        self._read_only = bool(read_only)
        self._init_state()

    def _init_state(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._generation = 0

    # pickling ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "timeout": self._timeout,
            "session": self._session,
            "must_exist": self._must_exist,
            "read_only": self._read_only,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = Path(state["path"])
        self._timeout = float(state["timeout"])
        self._session = state.get("session") or uuid.uuid4().hex
        self._must_exist = bool(state.get("must_exist", False))
        self._read_only = bool(state.get("read_only", False))
        self._init_state()

    def __repr__(self) -> str:
        return f"LabelLog({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The SQLite database file."""
        return self._path

    @property
    def session(self) -> str:
        """This writer's session id (recorded with its actions; scopes :meth:`undo`)."""
        return self._session

    @property
    def read_only(self) -> bool:
        """Whether the log was opened read-only."""
        return self._read_only

    # connections ------------------------------------------------------------------------------
    def _check_present(self) -> None:
        try:
            size = self._path.stat().st_size
        except FileNotFoundError:
            raise RunStoreError(
                f"{self._path} is missing; the run's labels are gone. Restore labels.sqlite "
                "from a copy of the run (it is never recreated empty)."
            ) from None
        if size == 0:
            raise RunStoreError(
                f"{self._path} is empty (0 bytes); the run's labels are gone. Restore "
                "labels.sqlite from a copy of the run (it is never recreated empty)."
            )

    def _connect(self) -> sqlite3.Connection:
        kwargs: dict[str, Any] = {
            "timeout": self._timeout,
            "isolation_level": None,
            # check_same_thread=False only so that close() may close every connection; each
            # connection is used by the one thread that opened it (see _conn).
            "check_same_thread": False,
        }
        if not (self._must_exist or self._read_only):
            return sqlite3.connect(self._path, **kwargs)
        self._check_present()
        uri = self._path.resolve().as_uri()
        if not self._read_only:
            return sqlite3.connect(f"{uri}?mode=rw", uri=True, **kwargs)
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **kwargs)
        try:
            conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.OperationalError:
            # a WAL database in a directory we cannot write to (no -shm file can be made):
            # nobody can write to it either, so read it as an immutable file
            conn.close()
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, **kwargs)
        return conn

    def _open_connection(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            if self._read_only:
                self._check_schema(conn)
            else:
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

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a database that is not a label log (a must-exist or read-only open)."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version < 1 or not {"actions", "events"} <= tables:
            raise RunStoreError(
                f"{self._path} has no label tables (an empty or foreign SQLite database); "
                "restore labels.sqlite from a copy of the run."
            )
        if version > _SCHEMA_VERSION:
            raise RunStoreError(
                f"{self._path} has label-log schema {version} but this alfaviz reads up to "
                f"{_SCHEMA_VERSION}; upgrade alfaviz to open this run."
            )

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self._must_exist:
            self._check_schema(conn)
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
        write_point("commit label-log schema")

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
                " Restore labels.sqlite from a copy of the run."
            ) from exc
        local.conn, local.pid, local.generation = conn, pid, self._generation
        with self._lock:
            self._conns.append((pid, conn))
        return conn

    def _writable(self) -> sqlite3.Connection:
        if self._read_only:
            raise RunStoreError(
                f"{self._path} is open read-only; copy the run to a writable directory to "
                "add labels or rounds."
            )
        return self._conn()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (one fsync), rolled back on any error."""
        conn = self._writable()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        write_point(f"commit {what}")

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
    def _session_of(self, session: str | None) -> str:
        return self._session if session is None else str(check_str(session, "session"))

    def _insert_action(
        self,
        action: str,
        sample_id: Any,
        label: Any,
        round: Any,
        source: str | None,
        session: str | None,
    ) -> int:
        sample_id = check_int(sample_id, "sample_id")
        round = check_int(round, "round")
        if label is not None:
            label = check_int(label, "label")
        source = check_str(source, "source", allow_none=True)
        session = self._session_of(session)
        cur = self._writable().execute(
            _INSERT, (time.time(), round, sample_id, action, label, source, session)
        )
        write_point(f"commit {action}")
        action_id = int(cur.lastrowid or 0)
        logger.debug("%s: %s sample %d (action %d)", self._path, action, sample_id, action_id)
        return action_id

    def add_label(
        self,
        sample_id: int,
        label: int,
        *,
        round: int,
        source: str | None = HUMAN_SOURCE,
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
            Who labelled it (``"human"``, ``"oracle"``, ``"initial"``, ...).
        session : str, optional
            The tab/kernel that acted; defaults to :attr:`session`. :meth:`undo` undoes only
            its own session's actions.

        Returns
        -------
        int
            The id of the new action row.
        """
        if label is None:
            raise AlfavizInputError("label must be an integer class id >= 0; got None.")
        return self._insert_action("label", sample_id, label, round, source, session)

    def add_labels(
        self,
        labels: Iterable[tuple[Any, ...]],
        *,
        round: int,
        source: str | None = "oracle",
        session: str | None = None,
    ) -> list[int]:
        """Record many labels in one transaction (one fsync): all of them or none.

        Parameters
        ----------
        labels : iterable of tuples
            ``(sample_id, label)`` or ``(sample_id, label, source)`` per sample (each sample
            at most once); a numpy array of shape ``(n, 2)`` works too.
        round : int
            The round the labels belong to.
        source : str or None
            Source of the pairs that do not name one (``"oracle"``; ``"initial"`` for the
            initial set).
        session : str, optional
            Defaults to :attr:`session`.

        Returns
        -------
        list of int
            The ids of the new action rows, in the order given.
        """
        rows = check_labels(labels, source=check_str(source, "source", allow_none=True))
        round = check_int(round, "round")
        session = self._session_of(session)
        if not rows:
            return []
        with self._transaction(f"{len(rows)} labels") as conn:
            ids = self._insert_labels(conn, rows, round, session)
        logger.debug("%s: %d labels in round %d", self._path, len(ids), round)
        return ids

    @staticmethod
    def _insert_labels(
        conn: sqlite3.Connection, rows: list[LabelRow], round: int, session: str
    ) -> list[int]:
        now = time.time()
        ids = []
        for sid, lab, src in rows:
            cur = conn.execute(_INSERT, (now, round, sid, "label", lab, src, session))
            ids.append(int(cur.lastrowid or 0))
        return ids

    def add_skip(
        self,
        sample_id: int,
        *,
        round: int,
        source: str | None = HUMAN_SOURCE,
        session: str | None = None,
    ) -> int:
        """Record that ``sample_id`` was skipped in ``round``; returns the action id.

        A skip does not change the effective labels (:meth:`labels`); see :meth:`skipped`.
        """
        return self._insert_action("skip", sample_id, None, round, source, session)

    def undo(
        self, *, session: str | None = None, source: str | None = HUMAN_SOURCE
    ) -> dict[str, Any] | None:
        """Undo this session's most recent human label or skip that is not undone yet.

        Only actions of ``session`` (default: :attr:`session`) are considered, and never a
        machine label (source ``"initial"`` or ``"oracle"``): one tab or process cannot undo
        another's work, and undo never removes the initial set or an oracle's answer.

        The undo is a new ``'undo'`` row whose ``undoes`` column points at the undone action;
        no row is deleted. Undo is not undoable itself: calling it again undoes the action
        before. Lookup and insert happen in one ``BEGIN IMMEDIATE`` transaction, so two
        processes undoing at once never undo the same action twice.

        Parameters
        ----------
        session : str, optional
            Whose actions to consider; defaults to :attr:`session`.
        source : str or None
            Stored in the undo row.

        Returns
        -------
        dict or None
            The undone action row (keys ``id, ts, round, sample_id, action, label, source,
            undoes, session``), or ``None`` when this session has nothing to undo.
        """
        session = self._session_of(session)
        source = check_str(source, "source", allow_none=True)
        machine = ", ".join(f"'{s}'" for s in sorted(MACHINE_SOURCES))
        undone: dict[str, Any] | None = None
        with self._transaction("undo") as conn:
            row = conn.execute(
                f"SELECT {', '.join(_ACTION_COLS)} FROM actions "
                "WHERE action IN ('label', 'skip') AND session = ? "
                f"AND COALESCE(source, '') NOT IN ({machine}) "
                f"AND id NOT IN ({_UNDONE}) ORDER BY id DESC LIMIT 1",
                (session,),
            ).fetchone()
            if row is not None:
                undone = dict(zip(_ACTION_COLS, row, strict=True))
                conn.execute(
                    "INSERT INTO actions (ts, round, sample_id, action, label, source, undoes, "
                    "session) VALUES (?, ?, ?, 'undo', NULL, ?, ?, ?)",
                    (
                        time.time(),
                        undone[schema.ROUND],
                        undone[schema.SAMPLE_ID],
                        source,
                        undone[schema.ACTION_ID],
                        session,
                    ),
                )
        if undone is not None:
            logger.debug("%s: undid action %d", self._path, undone[schema.ACTION_ID])
        return undone

    def log_event(self, kind: str, payload: Mapping[str, Any] | None = None) -> int:
        """Append an event (``kind`` plus a JSON payload); returns the event id."""
        if not isinstance(kind, str) or not kind:
            raise AlfavizInputError(
                f"kind must be a non-empty string naming the event; got {kind!r}."
            )
        payload = {} if payload is None else payload
        if not isinstance(payload, Mapping):
            raise AlfavizInputError(
                f"payload must be a dict (or None); got {type(payload).__name__}."
            )
        text = dumps(dict(payload), f"event payload for {kind!r}", indent=None)
        cur = self._writable().execute(
            "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)", (time.time(), kind, text)
        )
        write_point("commit event")
        return int(cur.lastrowid or 0)

    # the rounds index and run facts (used by RunStore) -----------------------------------------
    def _has_table(self, conn: sqlite3.Connection, name: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def rounds_index(self) -> dict[int, str] | None:
        """Committed rounds: ``{round: checksum of its round.json}``.

        ``None`` when the database predates the index (a run written by an older alfaviz and
        opened read-only).
        """
        conn = self._conn()
        if not self._has_table(conn, "rounds"):
            return None
        rows = conn.execute("SELECT round, manifest FROM rounds ORDER BY round").fetchall()
        return {int(r): str(m) for r, m in rows}

    def run_meta(self) -> dict[str, str]:
        """The facts recorded at creation (e.g. ``config_sha256``); empty for older runs."""
        conn = self._conn()
        if not self._has_table(conn, "run_meta"):
            return {}
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM run_meta")}

    def _set_run_meta(self, values: Mapping[str, str]) -> None:
        with self._transaction("run facts") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO run_meta (key, value) VALUES (?, ?)",
                [(str(k), str(v)) for k, v in values.items()],
            )

    def _swap_run_meta(self, key: str, value: str, what: str) -> str | None:
        """Set one fact in one transaction (the commit point of a derived frame).

        Returns the value it replaced, or ``None`` when the key was new.
        """
        with self._transaction(what) as conn:
            old = conn.execute("SELECT value FROM run_meta WHERE key = ?", (key,)).fetchone()
            conn.execute("INSERT OR REPLACE INTO run_meta (key, value) VALUES (?, ?)", (key, value))
        return None if old is None else str(old[0])

    def _record_round(
        self,
        round: int,
        manifest: str,
        *,
        labels: list[LabelRow],
        label_round: int,
        session: str | None,
        replace: bool,
        expect: str | None = None,
    ) -> list[int]:
        """Commit a round's index row and its labels in one transaction.

        With ``replace`` the existing row (whose checksum must be ``expect``) is replaced;
        otherwise an existing row raises :class:`RunStoreError` and nothing is committed.
        """
        session = self._session_of(session)
        with self._transaction(f"round {round}") as conn:
            old = conn.execute("SELECT manifest FROM rounds WHERE round = ?", (round,)).fetchone()
            if old is not None and not (replace and old[0] == expect):
                raise RunStoreError(
                    f"round {round} was written meanwhile by another writer of {self._path}; "
                    "rounds are immutable (pass overwrite=True to replace it)."
                )
            conn.execute(
                "INSERT OR REPLACE INTO rounds (round, manifest, ts) VALUES (?, ?, ?)",
                (round, manifest, time.time()),
            )
            ids = self._insert_labels(conn, labels, label_round, session)
        return ids

    def _adopt_rounds(self, rounds: Mapping[int, str]) -> None:
        """Fill the rounds index of a run written before it existed (one transaction)."""
        with self._transaction("rounds index") as conn:
            if conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]:
                return
            conn.executemany(
                "INSERT INTO rounds (round, manifest, ts) VALUES (?, ?, ?)",
                [(int(r), m, time.time()) for r, m in sorted(rounds.items())],
            )
            conn.execute(
                "INSERT OR REPLACE INTO run_meta (key, value) VALUES ('rounds_index', '1')"
            )

    # noticing other writers ------------------------------------------------------------------
    def change_stamp(self) -> tuple[Any, ...]:
        """A cheap fingerprint of everything other writers can add: one small query.

        The last action id, the rounds index (count, last round, last commit time) and the
        records of the derived frames. It changes whenever another tab or process commits a
        label, skip, undo, round or derived frame, so a reader polling it (about once a
        second) reads the log again only after a change.

        Returns
        -------
        tuple
            Compare it with an earlier stamp; its parts are not meant to be read one by one.
        """
        conn = self._conn()
        try:
            row = conn.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM actions), "
                "(SELECT COUNT(*) FROM rounds), (SELECT COALESCE(MAX(round), -1) FROM rounds), "
                "(SELECT COALESCE(MAX(ts), 0) FROM rounds), "
                "(SELECT group_concat(key || '=' || value, '|') FROM run_meta "
                "WHERE key LIKE 'derived/%')"
            ).fetchone()
        except sqlite3.OperationalError:  # an older log without the rounds index (read-only)
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM actions").fetchone()
        return tuple(row)

    def actions_since(self, action_id: int) -> list[dict[str, Any]]:
        """The actions committed after ``action_id``, oldest first (an index range scan).

        Parameters
        ----------
        action_id : int
            The last action already seen (``0`` for all of them).

        Returns
        -------
        list of dict
            One dict per action with the keys of :meth:`actions` (``id, ts, round,
            sample_id, action, label, source, undoes, session``).
        """
        action_id = check_int(action_id, "action_id")
        rows = (
            self._conn()
            .execute(
                f"SELECT {', '.join(_ACTION_COLS)} FROM actions WHERE id > ? ORDER BY id",
                (action_id,),
            )
            .fetchall()
        )
        return [dict(zip(_ACTION_COLS, r, strict=True)) for r in rows]

    def integrity_problems(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check`` findings (empty when the database is sound)."""
        try:
            rows = self._conn().execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"{self._path} is corrupt: {exc}"]
        found = [str(r[0]) for r in rows if str(r[0]).lower() != "ok"]
        return [f"{self._path} is corrupt: {msg}" for msg in found]

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
        frame = pd.DataFrame(
            {
                schema.ACTION_ID: _int_col(data[schema.ACTION_ID]),
                schema.TS: np.asarray(data[schema.TS], dtype=np.float64),
                schema.ROUND: _int_col(data[schema.ROUND]),
                schema.SAMPLE_ID: _int_col(data[schema.SAMPLE_ID]),
                schema.ACTION: _str_col(data[schema.ACTION]),
                schema.LABEL: _int_col(data[schema.LABEL], nullable=True),
                schema.SOURCE: _str_col(data[schema.SOURCE]),
                schema.UNDOES: _int_col(data[schema.UNDOES], nullable=True),
                schema.SESSION: _str_col(data[schema.SESSION]),
            }
        )
        return schema.conform(frame, schema.ACTIONS)

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
        cols = schema.LABELS.names
        rows = self._latest_live("label", cols)
        data = _transpose(rows, len(cols))
        frame = pd.DataFrame(
            {
                schema.SAMPLE_ID: _int_col(data[0]),
                schema.LABEL: _int_col(data[1]),
                schema.ROUND: _int_col(data[2]),
                schema.SOURCE: _str_col(data[3]),
                schema.TS: np.asarray(data[4], dtype=np.float64),
            }
        )
        return schema.conform(frame, schema.LABELS)

    def skipped(self) -> pd.DataFrame:
        """Samples with a not-undone skip: columns ``sample_id, round, source, ts``."""
        cols = schema.SKIPPED.names
        rows = self._latest_live("skip", cols)
        data = _transpose(rows, len(cols))
        frame = pd.DataFrame(
            {
                schema.SAMPLE_ID: _int_col(data[0]),
                schema.ROUND: _int_col(data[1]),
                schema.SOURCE: _str_col(data[2]),
                schema.TS: np.asarray(data[3], dtype=np.float64),
            }
        )
        return schema.conform(frame, schema.SKIPPED)

    def events(self) -> pd.DataFrame:
        """All events ordered by id: ``id, ts, kind`` and ``payload`` (decoded dicts)."""
        rows = (
            self._conn().execute("SELECT id, ts, kind, payload FROM events ORDER BY id").fetchall()
        )
        data = _transpose(rows, 4)
        payloads = pd.Series([json.loads(p) for p in data[3]], dtype=object)
        return pd.DataFrame(
            {
                schema.ACTION_ID: _int_col(data[0]),
                schema.TS: np.asarray(data[1], dtype=np.float64),
                schema.KIND: _str_col(data[2]),
                schema.PAYLOAD: payloads,
            }
        )
