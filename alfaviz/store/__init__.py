"""The run store: a directory of Parquet rounds, a SQLite label log and JSON config.

Torch-free: importing this package never loads torch.

Modules
-------
``_layout``
    File and folder names of a run directory, and the format version.
``_io``
    JSON, checksums, fsync'ed and atomic writes, temporary names and their safe clean-up,
    argument checks, and the write points the crash tests hook into.
``_parquet``
    Frames and embeddings to Parquet bytes and back, dtypes preserved.
``_labels``
    :class:`LabelLog`: actions, events and the rounds index in SQLite (WAL mode).
``_run``
    :class:`RunStore`: creating, opening, checking, writing and reading a run.
"""

from __future__ import annotations

from alfaviz.errors import RunStoreError
from alfaviz.store._labels import HUMAN_SOURCE, MACHINE_SOURCES, LabelLog
from alfaviz.store._layout import CONFIG_FILE, FORMAT_VERSION, LABELS_FILE, ROUND_FILE, ROUNDS_DIR
from alfaviz.store._parquet import Parts
from alfaviz.store._run import RunStore

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "HUMAN_SOURCE",
    "LABELS_FILE",
    "MACHINE_SOURCES",
    "ROUNDS_DIR",
    "ROUND_FILE",
    "LabelLog",
    "Parts",
    "RunStore",
    "RunStoreError",
]
