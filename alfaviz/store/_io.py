"""Low-level helpers of the run store: JSON, checksums, atomic files, temporary names.

Every durable step the store takes (a file written and fsync'ed, a rename, a directory
fsync, a SQLite commit) calls :func:`write_point` right after it. In normal use that does
nothing; the crash tests install a hook that ends the process there (``os._exit``), so that a
``kill -9`` can be simulated at *every* write point instead of at random times.

Temporary names
---------------
Everything the store writes before it is complete has a hidden name of the form::

    .<base>.<kind>-<host>-<pid>-<32 hex digits>

where ``kind`` is ``tmp`` (being written), ``old`` (a round being replaced) or ``trash``
(being removed), ``host`` is a short hash of the host name and ``pid`` the writer's process
id. :func:`is_stale` says when such an entry may be removed: its writer ran on this host and
is dead, or it ran elsewhere and the entry is more than a day old. Nothing else is ever
removed by the store's clean-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alfaviz.errors import AlfavizInputError, RunStoreError

__all__ = [
    "TempName",
    "canonical",
    "check_int",
    "check_path",
    "check_str",
    "dumps",
    "file_digest",
    "fsync_dir",
    "is_stale",
    "parse_temp_name",
    "pid_alive",
    "read_json_file",
    "remove_tree",
    "set_write_hook",
    "sha256",
    "temp_name",
    "write_file",
    "write_point",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# write points (for the crash tests)
# ---------------------------------------------------------------------------------------------

_write_hook: Callable[[str], None] | None = None


def set_write_hook(hook: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Install ``hook(what)``, called after every durable write step; returns the old hook.

    Private test machinery: the crash tests install a hook that calls ``os._exit`` at the
    k-th write point. ``None`` removes the hook.
    """
    global _write_hook
    old, _write_hook = _write_hook, hook
    return old


def write_point(what: str) -> None:
    """Mark that a durable write step (described by ``what``) has just completed."""
    hook = _write_hook
    if hook is not None:
        hook(what)


# ---------------------------------------------------------------------------------------------
# JSON and checksums
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


def dumps(obj: Any, what: str, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps`` with numpy support and an :class:`AlfavizInputError` on failure.

    NaN and infinities are written as Python's ``json`` writes them (``NaN``,
    ``Infinity``), so that a rounds row with an infinite value round-trips.
    """
    try:
        return json.dumps(obj, default=_json_default, indent=indent, sort_keys=sort_keys)
    except (TypeError, ValueError) as exc:
        raise AlfavizInputError(
            f"{what} must be JSON-serialisable (numbers, strings, lists, dicts); {exc}."
        ) from exc


def canonical(obj: Any) -> str:
    """The canonical JSON text of ``obj`` (sorted keys, no spaces): what checksums cover."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and hex SHA-256 of the file ``path``, read in 4 MiB pieces."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
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
    write_point(f"fsync {path.name}/")


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (no rename: for files in a temp directory)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    write_point(f"write {path.name}")


def read_json_file(path: Path) -> Any:
    """Read and parse a JSON file, raising :class:`RunStoreError` if it is missing or corrupt."""
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


# ---------------------------------------------------------------------------------------------
# temporary names and safe clean-up
# ---------------------------------------------------------------------------------------------

_HOST_TAG = sha256(socket.gethostname().encode())[:8]
_TEMP_RE = re.compile(
    r"^\.(?P<base>[A-Za-z0-9][A-Za-z0-9_.-]*?)\.(?P<kind>tmp|old|trash)"
    r"-(?:(?P<host>[0-9a-f]{8})-)?(?P<pid>\d+)-(?P<token>[0-9a-f]{32})$"
)
_FOREIGN_AGE_S = 24 * 3600.0


@dataclass(frozen=True)
class TempName:
    """The parts of a temporary name made by :func:`temp_name`."""

    base: str
    kind: str
    host: str | None
    pid: int


def temp_name(base: str, kind: str) -> str:
    """A hidden temporary name for ``base`` owned by this process (see the module notes)."""
    return f".{base}.{kind}-{_HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex}"


def parse_temp_name(name: str) -> TempName | None:
    """Parse a name made by :func:`temp_name` (or by an older alfaviz); ``None`` otherwise."""
    m = _TEMP_RE.match(name)
    if m is None:
        return None
    return TempName(m.group("base"), m.group("kind"), m.group("host"), int(m.group("pid")))


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this host (this process counts as alive)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:  # pragma: no cover - defensive: assume alive, never remove
        return True
    return True


def is_stale(path: Path, parsed: TempName) -> bool:
    """Whether the temporary entry ``path`` was left by a writer that is gone."""
    if parsed.host is None or parsed.host == _HOST_TAG:
        return not pid_alive(parsed.pid)
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        return False
    return age > _FOREIGN_AGE_S


def remove_tree(path: Path) -> None:
    """Remove a directory (or file) the store owns: renamed aside first, then deleted.

    The rename makes the removal atomic for readers: the entry disappears at once under its
    old name, and a crash mid-delete leaves only a ``.trash`` name that the next clean-up
    removes.
    """
    parsed = parse_temp_name(path.name)
    victim = path
    if parsed is None or parsed.kind != "trash":
        victim = path.with_name(temp_name(parsed.base if parsed else path.name, "trash"))
        try:
            os.rename(path, victim)
        except FileNotFoundError:
            return
        write_point(f"move {path.name} to trash")
    if victim.is_dir() and not victim.is_symlink():
        shutil.rmtree(victim, ignore_errors=True)
    else:
        victim.unlink(missing_ok=True)
    write_point(f"delete {victim.name}")


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


_INT64_MAX = 2**63 - 1


def check_int(
    value: Any, name: str, *, minimum: int | None = 0, maximum: int | None = _INT64_MAX
) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; booleans, floats, strings refused.

    The default ``maximum`` is what SQLite and int64 columns hold; ``None`` means unbounded.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        bound = "" if minimum is None else f" >= {minimum}"
        raise AlfavizInputError(
            f"{name} must be an integer{bound}; got {value!r} ({type(value).__name__}). "
            f"Pass a whole number such as {0 if minimum is None else minimum}."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise AlfavizInputError(
            f"{name} must be an integer >= {minimum}; got {value}. Pass a value >= {minimum}."
        )
    if maximum is not None and value > maximum:
        raise AlfavizInputError(
            f"{name} must be an integer <= {maximum} (64 bits); got {value}. Pass a smaller value."
        )
    return value


def check_str(value: Any, name: str, *, allow_none: bool = False) -> str | None:
    """``value`` as a non-empty, single-line string (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\x00" in value:
        what = "a non-empty one-line string" + (" or None" if allow_none else "")
        raise AlfavizInputError(f"{name} must be {what}; got {value!r}.")
    return value


def check_path(value: Any, name: str = "path") -> Path:
    """``value`` as a :class:`~pathlib.Path`; refuses non-paths, empty strings and NUL bytes."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise AlfavizInputError(
            f"{name} must be a str or pathlib.Path naming the run directory; got "
            f"{type(value).__name__}."
        )
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise AlfavizInputError(
            f"{name} must name a directory; got {text!r}. Pass a path such as 'runs/my_run'."
        )
    if "\x00" in text:
        raise AlfavizInputError(f"{name} must not contain NUL bytes; got {text!r}.")
    return Path(text)
