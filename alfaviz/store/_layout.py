"""Names of the files and folders in a run directory, and the format version."""

from __future__ import annotations

import re

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "LABELS_FILE",
    "READABLE_FORMATS",
    "ROUNDS_DIR",
    "ROUND_FILE",
]

FORMAT_VERSION = 2
"""Version of the on-disk layout written by this alfaviz.

* 1: rounds are the ``round_NNNN`` folders present; ``config.json`` has no checksum.
* 2: the label log holds the rounds index (a round exists once its row is committed, with
  the labels it produced) and the checksum of ``config.json``; runs may record a data
  fingerprint and attached files. Optional additions that older readers of format 2 ignore:
  a round's classifier head (``head.npz``, listed in its manifest), a large pool's critical-ε
  matrix (``critical_eps.parquet``, with a flips frame cut to the candidates) and the replaceable
  derived frames of committed rounds (``derived/round_NNNN/``, recorded in the label log).
"""

READABLE_FORMATS = (1, 2)
"""Formats this alfaviz opens; a run of format 1 gets its rounds index on first writable open."""

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.sqlite"
ROUNDS_DIR = "rounds"
ROUND_FILE = "round.json"

SAMPLES_FILE = "samples.parquet"
FLIPS_FILE = "flips.parquet"
EMBEDDINGS_FILE = "embeddings.parquet"
COORDS_FILE = "coords.parquet"
HEAD_FILE = "head.npz"
CRITICAL_EPS_FILE = "critical_eps.parquet"
"""A large pool's (sample, anchor) critical ε as one float32 matrix (``critical_eps=``)."""
EXTRA_DIR = "extra"
DERIVED_DIR = "derived"
"""Frames computed from a committed round after it was written (see ``RunStore.write_derived``)."""

ROUND_DIR_RE = re.compile(r"^round_(\d+)$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Names allowed for extra frames and attached files."""

RESERVED_NAMES = frozenset(
    {CONFIG_FILE, LABELS_FILE, f"{LABELS_FILE}-wal", f"{LABELS_FILE}-shm", ROUNDS_DIR, DERIVED_DIR}
)


def round_dir_name(round: int) -> str:
    """The folder name of ``round`` (``round_0003``)."""
    return f"round_{round:04d}"
