"""Frames to Parquet bytes and back, with dtypes preserved.

Frames are stored with pyarrow's pandas metadata, so ``int64``, ``int32``, ``float32``,
``float64`` (``inf`` and ``NaN`` included), ``bool``, nullable ``Int64``/``boolean``, strings
and datetimes come back unchanged. Column names must be unique strings. Categorical columns
are refused: alfaviz's frames hold plain codes (see :mod:`alfaviz.schema`), and Parquet cannot
keep the categories of numbers or dates.

Named numeric arrays (a round's classifier head, see ``RunStore.write_round(head=...)``) go
to NumPy's ``.npz`` format instead and are read back with ``allow_pickle=False``: nothing in
the file is executed or unpickled.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.store._io import canonical, write_point

__all__ = [
    "EMBEDDING_COL",
    "Parts",
    "arrays_to_npz",
    "check_frame",
    "check_row",
    "embeddings_table",
    "embeddings_to_parquet",
    "frame_table",
    "frame_to_parquet",
    "npz_to_arrays",
    "parquet_to_table",
    "table_to_embeddings",
    "table_to_frame",
    "table_to_parquet",
    "write_frame_parts",
    "write_matrix_parts",
    "write_table_file",
]

PARQUET_FORMAT_VERSION = 1
"""Version of the ``alfaviz`` metadata written into each Parquet file."""

EMBEDDING_COL = "embedding"

ROW_GROUP_BYTES = 64 << 20
"""About how many bytes of a table one Parquet row group holds when it is streamed to a file."""
_META_KEY = b"alfaviz"
_ARRAY_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def check_frame(df: Any, what: str) -> pd.DataFrame:
    """Check that ``df`` is a DataFrame with unique string column names; return it."""
    if not isinstance(df, pd.DataFrame):
        raise AlfavizInputError(
            f"{what} must be a pandas DataFrame; got {type(df).__name__}. "
            "Wrap the data in pd.DataFrame(...)."
        )
    if isinstance(df.columns, pd.MultiIndex) or not all(isinstance(c, str) for c in df.columns):
        raise AlfavizInputError(
            f"{what} must have string column names to be stored as Parquet; got "
            f"{list(df.columns)!r}. Rename the columns first."
        )
    if df.columns.has_duplicates:
        dups = sorted(set(df.columns[df.columns.duplicated()]))
        raise AlfavizInputError(f"{what} has duplicate column names {dups}; make them unique.")
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if cats:
        raise AlfavizInputError(
            f"{what} has categorical columns {cats}; store their codes or values instead "
            "(df[col] = df[col].cat.codes or df[col].astype(str))."
        )
    return df


def _scalar(value: Any, key: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise AlfavizInputError(
        f"rounds_row[{key!r}] must be a scalar (int, float, bool, str or None); "
        f"got {type(value).__name__}. Store arrays in an extra frame instead."
    )


def check_row(rounds_row: Any, round: int) -> dict[str, Any]:
    """Check a rounds row (a mapping of string keys to scalars); return it without ``round``."""
    if not isinstance(rounds_row, Mapping):
        raise AlfavizInputError(
            f"rounds_row must be a dict of scalars; got {type(rounds_row).__name__}. "
            "Pass e.g. {'accuracy': 0.9}."
        )
    row: dict[str, Any] = {}
    for key, value in rounds_row.items():
        if not isinstance(key, str):
            raise AlfavizInputError(
                f"rounds_row keys must be strings; got {key!r}. Rename the key."
            )
        row[key] = _scalar(value, key)
    if schema.ROUND in row and row[schema.ROUND] != round:
        raise AlfavizInputError(
            f"rounds_row['round'] is {row[schema.ROUND]!r} but round={round}; "
            "drop the key or make them agree."
        )
    row.pop(schema.ROUND, None)
    return row


def frame_to_parquet(df: pd.DataFrame, what: str) -> bytes:
    """Serialise ``df`` (index and dtypes included) to Parquet bytes."""
    return table_to_parquet(frame_table(df, what))


def _arrow_table(df: pd.DataFrame, what: str, preserve_index: bool | None) -> pa.Table:
    try:
        return pa.Table.from_pandas(df, preserve_index=preserve_index)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise AlfavizInputError(
            f"{what} cannot be stored as Parquet: {exc}. Give each column one type "
            "(numbers, bools or strings)."
        ) from exc


def frame_table(df: pd.DataFrame, what: str) -> pa.Table:
    """``df`` (index and dtypes included) as the Arrow table that is stored."""
    table = _arrow_table(df, what, None)
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = canonical({"format_version": PARQUET_FORMAT_VERSION}).encode()
    return table.replace_schema_metadata(metadata)


def table_to_parquet(table: pa.Table) -> bytes:
    """Parquet bytes of ``table`` (zstd, page checksums)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()


def write_table_file(table: pa.Table, path: Path) -> None:
    """Write ``table`` to the new file ``path`` as Parquet (zstd, page checksums), streamed in
    row groups of about :data:`ROW_GROUP_BYTES`, and fsync it.

    The file is written in place (for a file in a temporary directory, as
    :func:`alfaviz.store._io.write_file`): memory stays at the table plus one row group's
    pages, instead of the whole file's bytes.
    """
    rows = _row_group_rows(table)
    with open(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", write_page_checksum=True, row_group_size=rows)
        fh.flush()
        os.fsync(fh.fileno())
    write_point(f"write {path.name}")


@dataclass(frozen=True)
class Parts:
    """One stored table given in parts, written one part at a time into one Parquet file.

    For a pool that no process holds whole (a sharded round): a frame's parts are
    DataFrames with the same columns and dtypes, a matrix's parts are ``(sample_ids,
    matrix)`` pairs of one width and dtype. Each part becomes row groups of the one file, so
    the file reads back as if the concatenated table had been written, and memory holds one
    part at a time. An iterator is consumed by the write.

    Attributes
    ----------
    parts : iterable
        The parts in file order.
    """

    parts: Iterable[Any]


def _row_group_rows(table: pa.Table) -> int:
    per_row = max(table.nbytes // max(table.num_rows, 1), 1)
    return int(min(max(ROW_GROUP_BYTES // per_row, 1024), 1 << 20))


def _write_parts(tables: Iterable[pa.Table], path: Path, what: str) -> pa.Schema:
    """Stream ``tables`` (one schema) into the new Parquet file ``path``; fsync it."""
    writer: pq.ParquetWriter | None = None
    with open(path, "wb") as fh:
        try:
            for i, table in enumerate(tables):
                if writer is None:
                    metadata = dict(table.schema.metadata or {})
                    metadata[_META_KEY] = canonical(
                        {"format_version": PARQUET_FORMAT_VERSION}
                    ).encode()
                    writer = pq.ParquetWriter(
                        fh, table.schema.with_metadata(metadata), compression="zstd",
                        write_page_checksum=True,
                    )  # fmt: skip
                elif not table.schema.equals(writer.schema, check_metadata=False):
                    raise AlfavizInputError(
                        f"{what} part {i} does not match part 0: its columns are "
                        f"{table.schema} but part 0's are {writer.schema.remove_metadata()}. "
                        "Give every part the same columns and dtypes (schema.conform each)."
                    )
                writer.write_table(table, row_group_size=_row_group_rows(table))
            if writer is None:
                raise AlfavizInputError(
                    f"{what} has no parts; give at least one (it may be empty)."
                )
            out = writer.schema
        finally:
            if writer is not None:
                writer.close()
        fh.flush()
        os.fsync(fh.fileno())
    write_point(f"write {path.name}")
    return out


def write_frame_parts(parts: Parts, path: Path, what: str) -> int:
    """Write a frame given as :class:`Parts` to the new file ``path``; returns its rows.

    Each part's own index is dropped: the file reads back with a RangeIndex.
    """
    rows = 0

    def tables() -> Iterable[pa.Table]:
        nonlocal rows
        for i, df in enumerate(parts.parts):
            check_frame(df, f"{what} part {i}")
            table = _arrow_table(df, f"{what} part {i}", False)
            rows += table.num_rows
            yield table

    _write_parts(tables(), path, what)
    return rows


def write_matrix_parts(
    parts: Parts, path: Path, *, what: str = "embeddings", ids_what: str = "embedding_ids"
) -> int:
    """Write a matrix given as :class:`Parts` of ``(sample_ids, matrix)`` to the new file
    ``path``, as :func:`embeddings_table` would the whole; returns its width (``dim``).

    Raises
    ------
    AlfavizInputError
        For a part that is not such a pair, parts of different widths or dtypes, or a sample
        id in two parts.
    """
    seen: list[np.ndarray] = []

    def tables() -> Iterable[pa.Table]:
        for i, part in enumerate(parts.parts):
            if not isinstance(part, tuple) or len(part) != 2:
                raise AlfavizInputError(
                    f"{what} part {i} must be a (sample_ids, matrix) pair; got "
                    f"{type(part).__name__}."
                )
            ids, mat = part
            table, _ = embeddings_table(
                mat, ids, what=f"{what} part {i}", ids_what=f"{ids_what} of part {i}"
            )
            seen.append(table.column(schema.SAMPLE_ID).to_numpy())
            yield table

    out = _write_parts(tables(), path, what)
    ids = np.concatenate(seen)
    if np.unique(ids).size != ids.size:
        raise AlfavizInputError(
            f"{ids_what} must be unique across the parts of {what} (one row per sample); a "
            "sample id is in two parts."
        )
    return int(out.field(EMBEDDING_COL).type.list_size)


def parquet_to_table(data: bytes, path: Path) -> pa.Table:
    """Parse Parquet bytes read from ``path``, verifying page checksums."""
    try:
        return pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise RunStoreError(
            f"{path} is corrupt or truncated ({exc}); refusing to load it partially. "
            "Restore the file from a copy of the run or rewrite the round with overwrite=True."
        ) from exc


def table_to_frame(table: pa.Table, path: Path) -> pd.DataFrame:
    """The DataFrame of ``table``."""
    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError) as exc:  # pragma: no cover - defensive
        raise RunStoreError(f"{path} is corrupt: cannot convert it to a DataFrame ({exc})") from exc


def embeddings_to_parquet(embeddings: Any, embedding_ids: Any) -> tuple[bytes, int]:
    """An embedding matrix ``(n, dim)`` and its sample ids as Parquet bytes; returns ``dim``.

    The matrix is stored as a fixed-size-list column, so its dtype comes back unchanged.
    ``embedding_ids=None`` means ``arange(n)``.
    """
    table, dim = embeddings_table(embeddings, embedding_ids)
    return table_to_parquet(table), dim


def embeddings_table(
    embeddings: Any,
    embedding_ids: Any,
    *,
    what: str = "embeddings",
    ids_what: str = "embedding_ids",
    row: str = "embedding row",
) -> tuple[pa.Table, int]:
    """The checked table of :func:`embeddings_to_parquet` and ``dim``; a C-contiguous numpy
    matrix is wrapped without a copy.

    ``what``, ``ids_what`` and ``row`` name the matrix, its ids and one of its rows in the
    error messages (the same table holds a round's critical-ε matrix).
    """
    if hasattr(embeddings, "detach"):  # torch tensor, possibly on a GPU
        embeddings = embeddings.detach().cpu().numpy()
    try:
        mat = np.ascontiguousarray(np.asarray(embeddings))
    except (ValueError, TypeError) as exc:
        raise AlfavizInputError(
            f"{what} must be a numeric array of shape (n_samples, dim); {exc}."
        ) from exc
    if mat.ndim != 2 or mat.shape[1] == 0:
        raise AlfavizInputError(
            f"{what} must be 2-D with shape (n_samples, dim >= 1); got {mat.shape}. "
            "Reshape it to one row per sample."
        )
    if mat.dtype.kind not in "iuf":
        raise AlfavizInputError(
            f"{what} must be numeric (integer or float); got dtype {mat.dtype}. "
            "Convert it with .astype(np.float32)."
        )
    n, dim = mat.shape
    if embedding_ids is None:
        ids = np.arange(n, dtype=np.int64)
    else:
        if hasattr(embedding_ids, "detach"):
            embedding_ids = embedding_ids.detach().cpu().numpy()
        ids = np.asarray(embedding_ids)
        if ids.shape != (n,) or (n and ids.dtype.kind not in "iu"):
            raise AlfavizInputError(
                f"{ids_what} must be integers of shape ({n},) (one per {row}); "
                f"got {ids.dtype} {ids.shape}."
            )
        ids = ids.astype(np.int64)
        if len(np.unique(ids)) != n:
            raise AlfavizInputError(
                f"{ids_what} must be unique (one sample id per row); drop the duplicates."
            )
        if n and ids.min() < 0:
            raise AlfavizInputError(f"{ids_what} must be sample ids >= 0; got a negative id.")
    values = pa.array(mat.reshape(-1))
    table = pa.table(
        {
            schema.SAMPLE_ID: pa.array(ids, type=pa.int64()),
            EMBEDDING_COL: pa.FixedSizeListArray.from_arrays(values, dim),
        }
    )
    return table, dim


def table_to_embeddings(
    table: pa.Table, path: Path, what: str = "embeddings"
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids ``(n,)`` int64 and the matrix ``(n, dim)`` (its written dtype) of a table."""
    try:
        ids = table.column(schema.SAMPLE_ID).to_numpy().astype(np.int64, copy=True)
        col = table.column(EMBEDDING_COL).combine_chunks()
        dim = col.type.list_size
        flat = col.flatten().to_numpy(zero_copy_only=False)
        matrix = np.array(flat, copy=True).reshape(len(col), dim)
    except (KeyError, pa.ArrowException, ValueError, AttributeError) as exc:
        raise RunStoreError(f"{path} is corrupt: not a valid {what} table ({exc}).") from exc
    return ids, matrix


def arrays_to_npz(arrays: Any, what: str) -> bytes:
    """Named numeric arrays (e.g. a head's ``state_dict`` as numpy) as ``.npz`` bytes.

    Parameters
    ----------
    arrays : Mapping[str, array-like]
        Names (letters, digits, ``_ . -``) to integer or floating arrays; torch tensors are
        moved to the CPU first.
    what : str
        The argument's name, for the error messages.

    Returns
    -------
    bytes
    """
    if not isinstance(arrays, Mapping) or not arrays:
        raise AlfavizInputError(
            f"{what} must be a non-empty dict of name -> numeric array; got "
            f"{type(arrays).__name__}. Pass e.g. {{'weight': W, 'bias': b}}."
        )
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not _ARRAY_NAME_RE.match(name):
            raise AlfavizInputError(
                f"{what} names must be letters, digits, '_', '.' or '-'; got {name!r}."
            )
        if hasattr(value, "detach"):  # torch tensor, possibly on a GPU
            value = value.detach().cpu().numpy()
        try:
            arr = np.ascontiguousarray(np.asarray(value))
        except (ValueError, TypeError) as exc:
            raise AlfavizInputError(f"{what}[{name!r}] must be a numeric array; {exc}.") from exc
        if arr.dtype.kind not in "iuf":
            raise AlfavizInputError(
                f"{what}[{name!r}] must be numeric (integer or float); got dtype {arr.dtype}."
            )
        out[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **out)  # type: ignore[arg-type]
    return buf.getvalue()


def npz_to_arrays(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` bytes read from ``path`` (``allow_pickle=False``)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: np.array(npz[name], copy=True) for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise RunStoreError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); refusing to load it."
        ) from None
    bad = [n for n, a in arrays.items() if a.dtype.kind not in "iuf"]
    if bad:
        raise RunStoreError(f"{path} is corrupt: arrays {bad} are not numeric.")
    return arrays
