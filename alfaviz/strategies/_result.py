"""The frozen result every strategy's ``query`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema

__all__ = ["QueryResult", "empty_flips_frame"]


def empty_flips_frame() -> pd.DataFrame:
    """An empty ``flips`` frame with the schema's columns and dtypes."""
    return schema.conform(
        pd.DataFrame({c: [] for c in schema.QUERY_FLIPS.names}), schema.QUERY_FLIPS
    )


@dataclass(frozen=True)
class QueryResult:
    """What one query decided, as tidy frames.

    Attributes
    ----------
    strategy : str
        Registered name of the strategy that produced it.
    selected_ids : numpy.ndarray of int64, shape (budget,)
        Global sample ids to label next, unique, in pick order (k-means picks first, then fill).
    samples : pandas.DataFrame
        One row per unlabelled sample, conformed to :data:`alfaviz.schema.QUERY_SAMPLES`.
    flips : pandas.DataFrame
        One row per (unlabelled sample, anchor class) for ALFA-Mix, conformed to
        :data:`alfaviz.schema.QUERY_FLIPS`; empty for strategies without anchors.
    info : Mapping[str, Any]
        Round-level facts: ``level``, ``n_candidates``, ``n_kmeans``, ``n_fill`` and
        ``time_<phase>`` seconds.
    paths : pandas.DataFrame or None
        For ALFA-Mix, the head's predictions along z_u -> z*_c for the selected samples,
        conformed to :data:`alfaviz.schema.PATHS`.
    critical_eps : numpy.ndarray of float32, shape (n_unlabelled, n_classes), or None
        For ALFA-Mix on a large pool (more than ``ALFAMix.full_flips_max_pairs`` pairs), where
        ``flips`` keeps only the candidates' and selected samples' rows: the critical ε of
        every pair, row ``i`` for ``samples``' row ``i`` (inf: the pair never flips). None when
        ``flips`` holds every pair.
    """

    strategy: str
    selected_ids: np.ndarray
    samples: pd.DataFrame
    flips: pd.DataFrame = field(default_factory=empty_flips_frame)
    info: Mapping[str, Any] = field(default_factory=dict)
    paths: pd.DataFrame | None = None
    critical_eps: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.array(self.selected_ids, dtype=np.int64, copy=True)
        ids.setflags(write=False)
        object.__setattr__(self, "selected_ids", ids)
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        # the one way a strategy's frames leave: every column with the schema's dtype
        object.__setattr__(self, "samples", schema.conform(self.samples, schema.QUERY_SAMPLES))
        object.__setattr__(self, "flips", schema.conform(self.flips, schema.QUERY_FLIPS))
        if self.paths is not None:
            object.__setattr__(self, "paths", schema.conform(self.paths, schema.PATHS))
        if self.critical_eps is not None:
            crit = np.asarray(self.critical_eps, dtype=np.float32)
            if crit.ndim != 2 or crit.shape[0] != len(self.samples):
                raise ValueError(
                    f"critical_eps must have shape (n_unlabelled={len(self.samples)}, "
                    f"n_classes); got {crit.shape}."
                )
            crit.setflags(write=False)
            object.__setattr__(self, "critical_eps", crit)

    @property
    def budget(self) -> int:
        """Number of selected samples."""
        return int(self.selected_ids.shape[0])

    @property
    def n_fill(self) -> int:
        """How many picks came from the uniform random fill."""
        return int(self.info.get(schema.N_FILL, 0))
