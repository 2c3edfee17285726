"""Strategies as plain estimators: the base class and the validated inputs.

``__init__`` only stores parameters; :meth:`Strategy.query` validates the inputs at the
boundary, maps positions to global ids, and returns one frozen
:class:`~alfaviz.strategies.QueryResult`. Subclasses implement :meth:`Strategy._select`,
which works on positions only (positions never leave it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz._validation import check_query_inputs
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._result import QueryResult, empty_flips_frame

__all__ = [
    "QueryInputs",
    "Selection",
    "Strategy",
    "head_probabilities",
]


@dataclass(frozen=True)
class QueryInputs:
    """Validated inputs handed to :meth:`Strategy._select` (positions, not ids)."""

    z_unlabelled: torch.Tensor
    z_labelled: torch.Tensor
    y_labelled: torch.Tensor
    head: nn.Module | None
    budget: int
    n_classes: int


@dataclass
class Selection:
    """What :meth:`Strategy._select` returns; positions index ``z_unlabelled``."""

    selected_idx: np.ndarray
    columns: dict[str, np.ndarray]
    flips: pd.DataFrame | None = None
    info: dict[str, Any] | None = None
    paths: pd.DataFrame | None = None


@torch.no_grad()
def head_probabilities(head: nn.Module, z: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Softmax of ``head(z)`` in eval mode, computed in chunks.

    Parameters
    ----------
    head : nn.Module
    z : torch.Tensor, shape (n_samples, dim)

    Returns
    -------
    torch.Tensor, shape (n_samples, n_classes)
    """
    was_training = head.training
    head.eval()
    try:
        out = [
            torch.softmax(head(z[i : i + chunk]).float(), dim=1) for i in range(0, len(z), chunk)
        ]
    finally:
        head.train(was_training)
    return torch.cat(out)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)


class Strategy:
    """Base class of every query strategy.

    Subclasses set :attr:`name`, store their parameters in ``__init__`` and implement
    :meth:`_select`.
    """

    name: ClassVar[str] = "base"
    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (for configs and reprs)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def query(
        self,
        z_unlabelled: Any,
        z_labelled: Any,
        y_labelled: Any,
        head: nn.Module | None,
        budget: int,
        *,
        unlabelled_ids: Any = None,
        labelled_ids: Any = None,
        n_classes: int | None = None,
    ) -> QueryResult:
        """Pick ``budget`` samples to label next.

        Parameters
        ----------
        z_unlabelled : torch.Tensor, shape (n_unlabelled, dim)
            Embeddings of the unlabelled pool (the input of the head).
        z_labelled : torch.Tensor, shape (n_labelled, dim)
            Embeddings of the labelled samples.
        y_labelled : torch.Tensor, shape (n_labelled,)
            Their class ids in ``0..n_classes-1``.
        head : nn.Module
            Maps embeddings to logits (an ``nn.Linear`` for the built-in models).
        budget : int
            Number of samples to pick, ``1 <= budget <= n_unlabelled``.
        unlabelled_ids : array-like of int, shape (n_unlabelled,), optional
            Global sample ids of the pool rows; defaults to ``0..n_unlabelled-1``.
        labelled_ids : array-like of int, shape (n_labelled,), optional
            Global ids of the labelled rows, checked to be disjoint from ``unlabelled_ids``.
        n_classes : int, optional
            Inferred from the head when omitted.

        Returns
        -------
        QueryResult
            Exactly ``budget`` unique unlabelled ids and the per-sample records.
        """
        if self.needs_head and head is None:
            raise AlfavizInputError(f"{type(self).__name__} needs the model head; got None.")
        zu, zl, yl, n_cls, budget = check_query_inputs(
            z_unlabelled, z_labelled, y_labelled, head, budget, n_classes
        )
        ids = _check_ids(unlabelled_ids, zu.shape[0], "unlabelled_ids")
        if labelled_ids is not None:
            lids = _check_ids(labelled_ids, zl.shape[0], "labelled_ids")
            overlap = np.intersect1d(ids, lids)
            if overlap.size:
                raise AlfavizInputError(
                    f"{overlap.size} sample id(s) are both labelled and unlabelled "
                    f"(e.g. {overlap[:5].tolist()}); the pool must exclude labelled samples."
                )
        inputs = QueryInputs(zu, zl, yl, head, budget, n_cls)
        was_training = head.training if head is not None else False
        if head is not None:
            head.eval()
        t0 = time.perf_counter()
        try:
            sel = self._select(inputs)
        finally:
            if head is not None:
                head.train(was_training)
        elapsed = time.perf_counter() - t0
        idx = np.asarray(sel.selected_idx, dtype=np.int64)
        if idx.shape != (budget,) or np.unique(idx).size != budget:
            raise RuntimeError(  # a bug in a strategy, not user error
                f"{type(self).__name__} returned {idx.size} positions ({np.unique(idx).size} "
                f"unique) for budget {budget}"
            )
        selected_mask = np.zeros(zu.shape[0], dtype=bool)
        selected_mask[idx] = True
        cols: dict[str, Any] = {schema.SAMPLE_ID: ids}
        cols.update(sel.columns)
        cols[schema.SELECTED] = selected_mask
        samples = pd.DataFrame(cols)
        for col in schema.SAMPLES_COLUMNS:
            if col not in samples:
                samples[col] = _default_column(col, len(samples))
        samples = samples[list(schema.SAMPLES_COLUMNS)]
        flips = sel.flips if sel.flips is not None else empty_flips_frame()
        if len(flips):
            flips = flips.assign(**{schema.SAMPLE_ID: ids[flips[schema.SAMPLE_ID].to_numpy()]})
        paths = sel.paths
        if paths is not None and len(paths):
            paths = paths.assign(**{schema.SAMPLE_ID: ids[paths[schema.SAMPLE_ID].to_numpy()]})
        info = {
            "level": math.nan,
            "n_candidates": 0,
            "n_kmeans": 0,
            "n_fill": 0,
            "time_query": elapsed,
        }
        info.update(sel.info or {})
        info["time_query"] = elapsed
        return QueryResult(
            strategy=self.name,
            selected_ids=ids[idx],
            samples=samples,
            flips=flips,
            info=info,
            paths=paths,
        )

    def _select(self, inputs: QueryInputs) -> Selection:  # pragma: no cover - abstract
        raise NotImplementedError

    # helpers shared by subclasses ---------------------------------------------------------
    def _generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed(0 if self.random_state is None else int(self.random_state))
        return g

    @staticmethod
    def _prob_columns(p: torch.Tensor) -> dict[str, np.ndarray]:
        return {
            schema.PSEUDO_LABEL: p.argmax(dim=1).cpu().numpy(),
            schema.PROB_MAX: p.max(dim=1).values.double().cpu().numpy(),
            schema.ENTROPY: _entropy(p).double().cpu().numpy(),
        }


def _default_column(col: str, n: int) -> np.ndarray:
    if col in (schema.CANDIDATE, schema.SELECTED, schema.FILL):
        return np.zeros(n, dtype=bool)
    if col in (schema.CLUSTER, schema.PSEUDO_LABEL):
        return np.full(n, -1, dtype=np.int64)
    if col == schema.INCONSISTENCY:
        return np.zeros(n, dtype=np.int64)
    if col in (schema.FIRST_FLIP_EPS, schema.CRITICAL_EPS):
        return np.full(n, np.inf)
    return np.full(n, np.nan)


def _check_ids(ids: Any, n: int, name: str) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise AlfavizInputError(f"{name} must have shape ({n},); got {arr.shape}.")
    if arr.size and arr.dtype.kind not in "iu":
        raise AlfavizInputError(f"{name} must be integer sample ids; got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if np.unique(arr).size != n:
        raise AlfavizInputError(f"{name} contains duplicate sample ids.")
    return arr
