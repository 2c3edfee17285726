"""Text reports of runs: presentation kept apart from the objects that compute."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alfaviz import schema

__all__ = ["describe_round"]

_PHASES = ("train", "eval", "embed", "query", "project", "store")


def describe_round(row: Mapping[str, Any]) -> str:
    """One line summarising a round, for logs and the command line.

    Parameters
    ----------
    row : Mapping
        A row of the ``rounds`` frame (:data:`~alfaviz.schema.ROUNDS`).

    Returns
    -------
    str
        For example ``round 2: 40 labelled, test accuracy 0.912, level=0.20 candidates=312
        picked 10 (fill 0), 3.1s``.
    """
    lvl = row.get(schema.LEVEL, math.nan)
    has_level = lvl is not None and math.isfinite(float(lvl))
    lvl_s = f" level={float(lvl):.2f}" if has_level else ""
    cand = f" candidates={row.get(schema.N_CANDIDATES, 0)}" if has_level else ""
    secs = sum(float(row.get(schema.time_column(p), 0.0) or 0.0) for p in _PHASES)
    return (
        f"round {row[schema.ROUND]}: {row[schema.N_LABELLED]} labelled, "
        f"test accuracy {float(row[schema.ACCURACY]):.3f},{lvl_s}{cand} "
        f"picked {row.get(schema.BUDGET, 0)} (fill {row.get(schema.N_FILL, 0)}), {secs:.1f}s"
    )
