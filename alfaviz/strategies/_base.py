"""Strategies as plain estimators: the base class, :func:`clone` and the validated inputs.

The estimator API follows scikit-learn's ``BaseEstimator``:

- ``__init__`` stores each parameter under its own name and then calls
  :meth:`Strategy._validate_params` once; it sets no other attribute, so a bad parameter fails
  when the strategy is built, before a run folder is written or a model trained;
- :meth:`Strategy.get_params` reads the parameter names from the ``__init__`` signature;
- :meth:`Strategy.set_params` changes parameters (validated again) and returns the strategy;
- :func:`clone` builds a new strategy with deep copies of the same parameters.

:meth:`Strategy.query` validates the inputs at the boundary, resolves the seed
(``random_state=None`` draws a fresh one from the operating system), maps positions to global
ids, and returns one frozen :class:`~alfaviz.strategies.QueryResult` whose
``info["random_state"]`` is the seed actually used. Subclasses implement
:meth:`Strategy._select`, which works on positions only (positions never leave it) and takes
its seed from :attr:`QueryInputs.random_state`.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz._validation import check_disjoint, check_query_inputs
from alfaviz.engine import Engine, check_engine, check_shard_size
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._common import (
    check_seed,
    entropy_scores,
    eval_mode,
    fresh_seed,
)
from alfaviz.strategies._result import QueryResult, empty_flips_frame

__all__ = [
    "RANDOM_STATE_KEY",
    "QueryInputs",
    "Selection",
    "Strategy",
    "clone",
    "head_probabilities",
]

RANDOM_STATE_KEY = schema.RANDOM_STATE
"""The key of :attr:`QueryResult.info` that holds the seed a query actually used (an int)."""

_S = TypeVar("_S", bound="Strategy")


@dataclass(frozen=True)
class QueryInputs:
    """Validated inputs handed to :meth:`Strategy._select` (positions, not ids).

    Attributes
    ----------
    z_unlabelled : torch.Tensor, shape (n_unlabelled, dim)
    z_labelled : torch.Tensor, shape (n_labelled, dim)
    y_labelled : torch.Tensor of int64, shape (n_labelled,)
    head : nn.Module or None
    budget : int
    n_classes : int
    random_state : int
        The seed of this query, in ``0..2**63-1`` (drawn fresh when the strategy's
        ``random_state`` is None); every random draw of ``_select`` derives from it.
    engine : Engine or None
        Where a strategy that works shard by shard maps its work (in-process when None).
    shard_size : int or None
        Rows per shard for such a strategy (its own choice when None).
    """

    z_unlabelled: torch.Tensor
    z_labelled: torch.Tensor
    y_labelled: torch.Tensor
    head: nn.Module | None
    budget: int
    n_classes: int
    random_state: int
    engine: Engine | None = None
    shard_size: int | None = None


@dataclass
class Selection:
    """What :meth:`Strategy._select` returns; positions index ``z_unlabelled``."""

    selected_idx: np.ndarray
    columns: dict[str, np.ndarray]
    flips: pd.DataFrame | None = None
    info: dict[str, Any] | None = None
    paths: pd.DataFrame | None = None
    critical_eps: np.ndarray | None = None
    """The (n_unlabelled, n_classes) critical ε as float32, when ``flips`` keeps only some
    samples' rows; None when ``flips`` holds every pair."""


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
    with eval_mode(head):
        out = [
            torch.softmax(head(z[i : i + chunk]).float(), dim=1) for i in range(0, len(z), chunk)
        ]
    return torch.cat(out)


class Strategy:
    """Base class of every query strategy.

    Subclasses set :attr:`name`, list every parameter explicitly in ``__init__`` (no
    ``*args`` or ``**kwargs``), store each as an attribute of the same name, call
    ``self._validate_params()`` once and set nothing else; they extend
    :meth:`_validate_params` (calling ``super()``) and implement :meth:`_select`.

    Parameters
    ----------
    random_state : int or None
        Seed of the query's random draws, an int in ``0..2**63-1``; ``None`` draws a fresh
        seed from the operating system at every query. Either way the seed used is recorded in
        ``QueryResult.info["random_state"]``.
    """

    name: ClassVar[str] = "base"
    needs_head: ClassVar[bool] = True

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state
        self._validate_params()

    # estimator API -------------------------------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The parameter names of ``cls.__init__``, in signature order.

        Raises
        ------
        AlfavizInputError
            When ``__init__`` takes ``*args``, ``**kwargs`` or positional-only parameters
            (the parameters could then not be read back or passed by keyword).
        """
        init = cls.__init__
        if init is object.__init__:
            return []
        names: list[str] = []
        for param in list(inspect.signature(init).parameters.values())[1:]:  # skip self
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise AlfavizInputError(
                    f"{cls.__name__}.__init__ must list its parameters explicitly by keyword; "
                    f"it takes {param} ({param.kind.description}). Name each parameter instead."
                )
            names.append(param.name)
        return names

    @classmethod
    def _check_param_names(cls, params: Mapping[str, Any]) -> None:
        """Raise an :class:`AlfavizInputError` listing the valid names for any unknown key."""
        valid = cls._get_param_names()
        unknown = [key for key in params if key not in valid]
        if unknown:
            raise AlfavizInputError(
                f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}; "
                f"valid parameters: {', '.join(valid) or '(none)'}."
            )

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor parameters, read from the ``__init__`` signature.

        Parameters
        ----------
        deep : bool
            Accepted for scikit-learn compatibility; strategies hold no nested estimators, so
            it changes nothing.

        Returns
        -------
        dict
            ``{name: value}`` for every parameter of ``__init__``, in signature order.
        """
        del deep  # no nested estimators
        params: dict[str, Any] = {}
        for key in self._get_param_names():
            try:
                params[key] = getattr(self, key)
            except AttributeError as exc:
                raise AttributeError(
                    f"{type(self).__name__}.__init__ must store its parameter {key!r} as "
                    f"self.{key}."
                ) from exc
        return params

    def set_params(self: _S, **params: Any) -> _S:
        """Set parameters by name, check them as the constructor does, and return ``self``.

        On an error nothing is changed.

        Raises
        ------
        AlfavizInputError
            For an unknown parameter (the message lists the valid ones) or a bad value.
        """
        self._check_param_names(params)
        old = {key: getattr(self, key) for key in params}
        for key, value in params.items():
            setattr(self, key, value)
        try:
            self._validate_params()
        except Exception:
            for key, value in old.items():
                setattr(self, key, value)
            raise
        return self

    def _validate_params(self) -> None:
        """Check every parameter; raise a one-line :class:`AlfavizInputError` naming it.

        Called by ``__init__`` and :meth:`set_params` (and again by :meth:`query`, in case an
        attribute was assigned directly). Sets no attribute.
        """
        check_seed(type(self).__name__, self.random_state)

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
        engine: Engine | None = None,
        shard_size: int | None = None,
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
        engine : Engine, optional
            Maps the pool scoring over row shards, for the strategies that score shard by
            shard (ALFA-Mix); in-process (:class:`~alfaviz.engine.LocalEngine`) when omitted.
            The result does not depend on the engine.
        shard_size : int, optional
            Rows per shard for such an engine (the engine's choice when omitted).

        Returns
        -------
        QueryResult
            Exactly ``budget`` unique unlabelled ids and the per-sample records;
            ``info["random_state"]`` is the seed used (an int, fresh when ``random_state`` is
            None).
        """
        self._validate_params()
        if self.needs_head and head is None:
            raise AlfavizInputError(f"{type(self).__name__} needs the model head; got None.")
        zu, zl, yl, n_cls, budget = check_query_inputs(
            z_unlabelled, z_labelled, y_labelled, head, budget, n_classes
        )
        ids = _check_ids(unlabelled_ids, zu.shape[0], "unlabelled_ids")
        if labelled_ids is not None:
            lids = _check_ids(labelled_ids, zl.shape[0], "labelled_ids")
            check_disjoint(ids, lids)
        seed = fresh_seed() if self.random_state is None else int(self.random_state)
        engine = check_engine(engine)
        shard_size = check_shard_size(shard_size)
        inputs = QueryInputs(zu, zl, yl, head, budget, n_cls, seed, engine, shard_size)
        t0 = time.perf_counter()
        with eval_mode(head):
            sel = self._select(inputs)
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
        samples = schema.conform(pd.DataFrame(cols), schema.QUERY_SAMPLES, extra="drop")
        flips = sel.flips if sel.flips is not None else empty_flips_frame()
        if len(flips):
            flips = flips.assign(**{schema.SAMPLE_ID: ids[flips[schema.SAMPLE_ID].to_numpy()]})
        paths = sel.paths
        if paths is not None and len(paths):
            paths = paths.assign(**{schema.SAMPLE_ID: ids[paths[schema.SAMPLE_ID].to_numpy()]})
        info = {
            schema.LEVEL: math.nan,
            schema.N_CANDIDATES: 0,
            schema.N_KMEANS: 0,
            schema.N_FILL: 0,
        }
        info.update(sel.info or {})
        info[schema.time_column("query")] = elapsed
        info[RANDOM_STATE_KEY] = seed
        return QueryResult(
            strategy=self.name,
            selected_ids=ids[idx],
            samples=samples,
            flips=flips,
            info=info,
            paths=paths,
            critical_eps=sel.critical_eps,  # QueryResult checks its shape
        )

    def _select(self, inputs: QueryInputs) -> Selection:  # pragma: no cover - abstract
        raise NotImplementedError

    # helpers shared by subclasses ---------------------------------------------------------
    @staticmethod
    def _prob_columns(p: torch.Tensor) -> dict[str, np.ndarray]:
        return {
            schema.PSEUDO_LABEL: p.argmax(dim=1).cpu().numpy(),
            schema.PROB_MAX: p.max(dim=1).values.double().cpu().numpy(),
            schema.ENTROPY: entropy_scores(p).double().cpu().numpy(),
        }


def clone(strategy: _S) -> _S:
    """A new strategy of the same class with deep copies of the same parameters.

    Like :func:`sklearn.base.clone`: nothing but the constructor parameters is carried over,
    and the copy shares no mutable parameter with the original. ``clone(s).set_params(...)``
    changes the copy only.

    Parameters
    ----------
    strategy : Strategy

    Returns
    -------
    Strategy
        ``type(strategy)(**deepcopy(strategy.get_params()))``.

    Raises
    ------
    AlfavizInputError
        When ``strategy`` is not a :class:`Strategy`.
    """
    if not isinstance(strategy, Strategy):
        raise AlfavizInputError(
            f"clone expects a Strategy instance (e.g. get_strategy('alfamix')); "
            f"got {type(strategy).__name__}."
        )
    params = copy.deepcopy(strategy.get_params())
    return type(strategy)(**params)


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
