"""Compatibility module: the run store now lives in :mod:`alfaviz.store`'s private modules.

``alfaviz.store._store`` re-exports the same names as before; import them from
:mod:`alfaviz.store` instead.
"""

from __future__ import annotations

from alfaviz.errors import RunStoreError
from alfaviz.store._labels import LabelLog
from alfaviz.store._layout import CONFIG_FILE, FORMAT_VERSION, LABELS_FILE, ROUND_FILE, ROUNDS_DIR
from alfaviz.store._run import RunStore

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
