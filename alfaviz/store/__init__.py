"""The run store: a directory of Parquet rounds, a SQLite label log and JSON config.

Torch-free: importing this package never loads torch.
"""

from __future__ import annotations

from alfaviz.errors import RunStoreError
from alfaviz.store._store import (
    CONFIG_FILE,
    FORMAT_VERSION,
    LABELS_FILE,
    ROUND_FILE,
    ROUNDS_DIR,
    LabelLog,
    RunStore,
)

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
