"""What other strategies would score and pick on a written round, computed once.

:class:`ScoreRecorder` runs any registered strategy's own ``query``
(:meth:`~alfaviz.strategies.Strategy.query`) on exactly the inputs the round's query saw,
read back from what the round stored: its embeddings (the whole train pool), the labelled set
and labels at the start of the round (its samples frame, before its batch was labelled), its
classifier head (``head.npz``) and its budget. Each (round, strategy) gets a seed derived
from the run's seed, the round and the strategy's name
(:func:`~alfaviz.session.config.comparison_seed`).

The result is kept as the round's derived ``scores`` frame in the run store
(:meth:`~alfaviz.store.RunStore.write_derived`), conformed to
:data:`~alfaviz.schema.STRATEGY_SCORES`, so that a second request, a reopened run and the
dashboard read it instead of querying again. A run open read-only keeps it in memory for the
life of the object. The :class:`~alfaviz.session.Experiment` owns one recorder and fires a
``scores`` event whenever it records a strategy for a round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.session._derived import DerivedRecorder
from alfaviz.session.config import comparison_seed
from alfaviz.session.paths import _by_sample, _head_from_state
from alfaviz.session.round import QUERIED_EXTRA
from alfaviz.store import RunStore
from alfaviz.strategies import STRATEGIES, QueryResult, Strategy, get_strategy

__all__ = [
    "COMPARE_SCORES",
    "RoundQueryInputs",
    "ScoreComparison",
    "ScoreRecorder",
    "empty_scores",
    "scores_frame",
]

log = logging.getLogger(__name__)

COMPARE_SCORES = "scores"
"""The derived frame of a round that holds the other strategies' scores and picks."""


@dataclass(frozen=True)
class ScoreComparison:
    """What one :meth:`ScoreRecorder.compare` call did.

    Attributes
    ----------
    round : int
    scores : pandas.DataFrame
        Conformed to :data:`~alfaviz.schema.STRATEGY_SCORES`, the strategies in the order
        asked for.
    new : tuple of str
        The strategies queried by this call (the others were read back, or, for the run's
        own strategy, taken from the round itself).
    persisted : bool
        Whether the round's recorded scores are on disk (``False`` for a read-only run, or
        after a failed write, whose new scores are kept in memory).
    """

    round: int
    scores: pd.DataFrame
    new: tuple[str, ...]
    persisted: bool


@dataclass(frozen=True)
class RoundQueryInputs:
    """The inputs a round's query saw, read back from the run store.

    Attributes
    ----------
    z_unlabelled : torch.Tensor of float32, shape (n_unlabelled, dim)
    z_labelled : torch.Tensor of float32, shape (n_labelled, dim)
    y_labelled : torch.Tensor of int64, shape (n_labelled,)
    head : nn.Linear or None
        The stored head in eval mode; ``None`` for a round written without one.
    budget : int
        The size of the round's batch.
    unlabelled_ids, labelled_ids : numpy.ndarray of int64
        Global ids of the rows of ``z_unlabelled`` and ``z_labelled``, sorted.
    n_classes : int
    """

    z_unlabelled: torch.Tensor
    z_labelled: torch.Tensor
    y_labelled: torch.Tensor
    head: nn.Linear | None
    budget: int
    unlabelled_ids: np.ndarray
    labelled_ids: np.ndarray
    n_classes: int


def empty_scores() -> pd.DataFrame:
    """An empty frame conformed to :data:`~alfaviz.schema.STRATEGY_SCORES`."""
    return schema.conform(
        pd.DataFrame({c: [] for c in schema.STRATEGY_SCORES.names}), schema.STRATEGY_SCORES
    )


def scores_frame(round: int, strategy: str, result: QueryResult) -> pd.DataFrame:
    """One strategy's query result as rows of :data:`~alfaviz.schema.STRATEGY_SCORES`.

    Parameters
    ----------
    round : int
    strategy : str
        The name the rows are recorded under.
    result : QueryResult
        Its per-sample frame gives ``sample_id`` and ``score``; ``selected_ids`` the picks in
        order; ``info["random_state"]`` the seed.

    Returns
    -------
    pandas.DataFrame
        One row per sample of ``result.samples``, in its order.
    """
    ids = result.samples[schema.SAMPLE_ID].to_numpy(np.int64)
    order = np.full(ids.size, -1, dtype=np.int32)
    at = pd.Index(ids).get_indexer(np.asarray(result.selected_ids, dtype=np.int64))
    order[at] = np.arange(at.size, dtype=np.int32)
    seed = result.info.get(schema.RANDOM_STATE)
    frame = pd.DataFrame(
        {
            schema.ROUND: np.full(ids.size, round, dtype=np.int32),
            schema.STRATEGY: [strategy] * ids.size,
            schema.SAMPLE_ID: ids,
            schema.SCORE: result.samples[schema.SCORE].to_numpy(np.float64),
            schema.PICKED: order >= 0,
            schema.ORDER: order,
            schema.RANDOM_STATE: np.full(ids.size, -1 if seed is None else int(seed)),
        }
    )
    return schema.conform(frame, schema.STRATEGY_SCORES, extra="drop")


def _key(name: str) -> str:
    """A strategy name as :func:`~alfaviz.strategies.get_strategy` compares it."""
    return name.lower().replace("-", "").replace("_", "")


class ScoreRecorder(DerivedRecorder):
    """Queries, keeps and reads back other strategies' scores and picks on a run's rounds.

    Parameters
    ----------
    store : RunStore
        The run.
    n_train : int
        Size of the train pool (ids ``0..n_train-1``).
    n_classes : int
    seed : int
        The run's seed (:func:`~alfaviz.session.config.comparison_seed` derives each query's
        seed from it).
    own : callable
        Returns the registered name of the run's own strategy (read at each call).

    Notes
    -----
    Thread-safe: one lock covers reading, querying and writing a round's scores.
    """

    derived = COMPARE_SCORES
    what = "strategy scores"
    nothing_yet = "there is nothing to compare strategies on"

    def __init__(
        self, store: RunStore, n_train: int, n_classes: int, seed: int, own: Callable[[], str]
    ) -> None:
        super().__init__(store)
        self._n_train = int(n_train)
        self._n_classes = int(n_classes)
        self._seed = int(seed)
        self._own = own
        self._lock = threading.RLock()

    # checks ---------------------------------------------------------------------------------

    @property
    def own(self) -> str:
        """The run's own strategy, lower case."""
        return str(self._own()).lower()

    def default_strategies(self) -> list[str]:
        """Every registered strategy but the run's own, in registry order."""
        own = _key(self.own)
        return [name for name in STRATEGIES if _key(name) != own]

    def check_strategies(self, strategies: Any) -> list[str]:
        """``strategies`` as distinct registered names (or the run's own), in request order.

        ``None`` means :meth:`default_strategies`; a single name is a list of one. Names
        are matched as :func:`~alfaviz.strategies.get_strategy` matches them (case, ``-``
        and ``_`` do not matter).
        """
        if strategies is None:
            return self.default_strategies()
        if isinstance(strategies, str):
            strategies = [strategies]
        if isinstance(strategies, Strategy) or not isinstance(strategies, Iterable):
            raise AlfavizInputError(
                "strategies must be a strategy name or a list of names (e.g. ['entropy', "
                f"'badge']), or None for every other registered one; got "
                f"{type(strategies).__name__}."
            )
        own = self.own
        out: list[str] = []
        for item in strategies:
            if not isinstance(item, str):
                raise AlfavizInputError(
                    "strategies must be strategy names (str), e.g. ['entropy', 'badge']; got "
                    f"{type(item).__name__} {item!r:.40}."
                )
            if _key(item) == _key(own):
                name = own
            else:
                found = [reg for reg in STRATEGIES if _key(reg) == _key(item)]
                if not found:
                    raise AlfavizInputError(
                        f"unknown strategy {item!r}; choose one of: "
                        f"{', '.join(sorted(STRATEGIES))}."
                    )
                name = found[0]
            if name not in out:
                out.append(name)
        return out

    # reading --------------------------------------------------------------------------------
    def recorded(self, round: int) -> pd.DataFrame:
        """Every strategy recorded for ``round`` so far (on disk or in memory), by name.

        The run's own strategy is not recorded: its scores and batch are the round's own.
        """
        r = self.check_round(round)
        with self._lock:
            return self._known(r, self._store.round_checksum(r))

    def _known(self, r: int, checksum: str) -> pd.DataFrame:
        stored = self._store.read_derived(r, COMPARE_SCORES)
        if stored is None:
            stored = empty_scores()
        else:
            try:
                stored = schema.conform(stored, schema.STRATEGY_SCORES, extra="drop")
            except ValueError as exc:
                log.warning(
                    "round %d's recorded scores do not fit the schema (%s); ignoring them (they "
                    "are computed again when needed)",
                    r,
                    exc,
                )
                stored = empty_scores()
            stored = stored[stored[schema.ROUND] == r]
        memory = self._memory.get((r, checksum))
        if memory is not None:
            have = set(stored[schema.STRATEGY].unique())
            stored = pd.concat([stored, memory[~memory[schema.STRATEGY].isin(have)]])
        return schema.conform(stored, schema.STRATEGY_SCORES)

    # comparing ------------------------------------------------------------------------------
    def compare(self, strategies: Any = None, round: Any = None) -> ScoreComparison:
        """The scores and picks of ``strategies`` on ``round``, querying only new ones.

        See :meth:`alfaviz.session.Experiment.compare_strategies`.
        """
        r = self.check_round(round)
        names = self.check_strategies(strategies)
        own = self.own
        persisted = not self._store.read_only
        new: list[str] = []
        with self._lock:
            checksum = self._store.round_checksum(r)
            known = self._known(r, checksum)
            have = set(known[schema.STRATEGY].unique())
            todo = [n for n in names if n != own and n not in have]
            if todo:
                inputs = self.query_inputs(r)
                fresh = [self._query(n, r, inputs) for n in todo]
                known = schema.conform(
                    pd.concat([known, *fresh], ignore_index=True), schema.STRATEGY_SCORES
                )
                persisted = self._keep(r, checksum, known)
                new = todo
            parts = [
                self._own_rows(r, n) if n == own else known[known[schema.STRATEGY] == n]
                for n in names
            ]
        scores = (
            schema.conform(pd.concat(parts, ignore_index=True), schema.STRATEGY_SCORES)
            if parts
            else empty_scores()
        )
        return ScoreComparison(r, scores, tuple(new), persisted)

    def _query(self, name: str, r: int, inputs: RoundQueryInputs) -> pd.DataFrame:
        """``name``'s own query on the round's inputs, seeded for (run, round, name)."""
        strategy = get_strategy(name)
        if schema.RANDOM_STATE in strategy.get_params():
            strategy.set_params(**{schema.RANDOM_STATE: comparison_seed(self._seed, r, name)})
        if inputs.head is None and strategy.needs_head:
            raise RunStoreError(
                f"round {r} of the run {self._store.path} was written by an earlier alfaviz "
                f"that did not store the round's classifier head, so {name} (which needs it) "
                "cannot be run on it; random and coreset can."
            )
        result = strategy.query(
            inputs.z_unlabelled, inputs.z_labelled, inputs.y_labelled, inputs.head,
            inputs.budget, unlabelled_ids=inputs.unlabelled_ids,
            labelled_ids=inputs.labelled_ids, n_classes=inputs.n_classes,
        )  # fmt: skip
        return scores_frame(r, name, result)

    def _own_rows(self, r: int, name: str) -> pd.DataFrame:
        """The run's own strategy on ``r``: the round's stored scores, batch and seed."""
        store = self._store
        samples = store.read_samples(r)
        pool = samples[samples[schema.LABELLED_ROUND].to_numpy() < 0]
        pool = pool.sort_values(schema.SAMPLE_ID, kind="stable")
        ids = pool[schema.SAMPLE_ID].to_numpy(np.int64)
        order = np.full(ids.size, -1, dtype=np.int32)
        if f"extra/{QUERIED_EXTRA}.parquet" in store.artefacts(r):
            q = schema.conform(store.read_extra(r, QUERIED_EXTRA), schema.QUERIED)
            at = pd.Index(ids).get_indexer(q[schema.SAMPLE_ID].to_numpy(np.int64))
            ok = at >= 0
            order[at[ok]] = q[schema.ORDER].to_numpy(np.int32)[ok]
        seed = store.read_round_row(r).get(schema.RANDOM_STATE, -1)
        frame = pd.DataFrame(
            {
                schema.ROUND: np.full(ids.size, r, dtype=np.int32),
                schema.STRATEGY: [name] * ids.size,
                schema.SAMPLE_ID: ids,
                schema.SCORE: pool[schema.SCORE].to_numpy(np.float64),
                schema.PICKED: order >= 0,
                schema.ORDER: order,
                schema.RANDOM_STATE: np.full(ids.size, -1 if seed is None else int(seed)),
            }
        )
        return schema.conform(frame, schema.STRATEGY_SCORES, extra="drop")

    def query_inputs(self, round: int) -> RoundQueryInputs:
        """What ``round``'s query saw, read back from the store.

        Parameters
        ----------
        round : int
            A written round.

        Returns
        -------
        RoundQueryInputs
            The embeddings of the samples unlabelled and labelled at the start of the round
            (``labelled_round`` of its samples frame), their labels then, the stored head and
            the round's budget (its ``rounds`` row, capped at the pool).

        Raises
        ------
        RunStoreError
            If the round's embeddings do not cover the train pool, or the head does not fit.
        """
        r = self.check_round(round)
        store = self._store
        ids, z = store.read_embeddings(r)
        if ids.shape != (self._n_train,) or not np.array_equal(ids, np.arange(self._n_train)):
            raise RunStoreError(
                f"round {r} of the run {store.path} stored embeddings of {ids.size} samples, not "
                f"of the whole train pool of {self._n_train} in id order; strategies cannot be "
                "compared on it."
            )
        z = np.ascontiguousarray(z, dtype=np.float32)
        samples = store.read_samples(r)
        n = self._n_train
        lab_round = _by_sample(samples, schema.LABELLED_ROUND, n, -1, np.int64)
        labels = _by_sample(samples, schema.LABEL, n, -1, np.int64)
        lab = np.flatnonzero(lab_round >= 0).astype(np.int64)  # as Pool.labelled_ids
        unl = np.flatnonzero(lab_round < 0).astype(np.int64)
        if unl.size == 0 or lab.size == 0:
            raise RunStoreError(
                f"round {r} of the run {store.path} records {lab.size} labelled and "
                f"{unl.size} unlabelled samples; a query needs both."
            )
        head = None
        if store.has_head(r):
            head = _head_from_state(
                store.read_head(r), self._n_classes, z.shape[1], f"the head stored with round {r}"
            )
        row = store.read_round_row(r)
        budget = int(row.get(schema.BUDGET, 0) or 0)
        if budget <= 0 and f"extra/{QUERIED_EXTRA}.parquet" in store.artefacts(r):
            budget = len(store.read_extra(r, QUERIED_EXTRA))
        budget = min(max(budget, 1), int(unl.size))
        return RoundQueryInputs(
            z_unlabelled=torch.from_numpy(z[unl]),
            z_labelled=torch.from_numpy(z[lab]),
            y_labelled=torch.from_numpy(labels[lab]),
            head=head,
            budget=budget,
            unlabelled_ids=unl,
            labelled_ids=lab,
            n_classes=self._n_classes,
        )
