"""Strategy A/B on one round: what other strategies would pick on the same model and pool.

:func:`compare_batches` asks the run for the batches of the run's own strategy and of others
(:meth:`~alfaviz.session.Experiment.compare_strategies`, which queries each once, off the
round's stored inputs, and records them with the run) and compares them:

- ``overlap``: a strategy × strategy matrix of shared picks (the diagonal is each batch size);
- ``intersections``: UpSet-style exclusive intersections, one row per set of strategies that
  picked the same samples and no other strategy did, with their count and ids;
- ``only(name)``: the samples only that strategy picks (``only_own`` for the run's own);
- ``diversity``: each batch's mean pairwise Euclidean distance in the round's embedding space
  and the number of classes it covers (:data:`~alfaviz.schema.BATCH_DIVERSITY`).

:func:`batch_comparison` is the pure twin, on a scores frame and the round's samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.errors import AlfavizInputError

__all__ = [
    "AB_STRATEGIES",
    "COUNT",
    "IDS",
    "BatchComparison",
    "batch_comparison",
    "compare_batches",
    "mean_pairwise_distance",
]

AB_STRATEGIES: tuple[str, ...] = ("entropy", "margin", "badge", "coreset", "random")
"""The strategies :func:`compare_batches` sets beside the run's own by default."""

COUNT = "count"
"""Column of ``intersections``: samples in the exclusive intersection."""
IDS = "sample_ids"
"""Column of ``intersections``: their ids (a tuple)."""


def mean_pairwise_distance(z: np.ndarray, block: int = 1024) -> float:
    """Mean Euclidean distance over the distinct pairs of rows of ``z`` (NaN below 2 rows)."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    if n < 2:
        return float("nan")
    sq = np.einsum("ij,ij->i", z, z)
    total = 0.0
    for s in range(0, n, block):
        zb = z[s : s + block]
        d2 = sq[s : s + block, None] + sq[None, :] - 2.0 * zb @ z.T
        total += float(np.sqrt(np.maximum(d2, 0.0)).sum())
    # the diagonal is (numerically) zero; each distinct pair was counted twice
    return total / (n * (n - 1))


@dataclass(frozen=True)
class BatchComparison:
    """The batches of several strategies on one round, side by side.

    Attributes
    ----------
    round : int
    own : str
        The run's own strategy (the first of ``batches``).
    batches : dict of str to numpy.ndarray of int64
        Each strategy's picks, in pick order.
    overlap : pandas.DataFrame
        Shared picks of each pair of strategies (index and columns: strategy names).
    intersections : pandas.DataFrame
        One bool column per strategy, then ``count`` and ``sample_ids``: each exclusive
        intersection that is not empty, largest first.
    diversity : pandas.DataFrame
        :data:`~alfaviz.schema.BATCH_DIVERSITY`, one row per strategy.
    """

    round: int
    own: str
    batches: dict[str, np.ndarray]
    overlap: pd.DataFrame
    intersections: pd.DataFrame
    diversity: pd.DataFrame

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies compared, the run's own first."""
        return tuple(self.batches)

    def only(self, name: str) -> np.ndarray:
        """Ids that ``name`` picks and no other compared strategy does, in its pick order."""
        if name not in self.batches:
            raise AlfavizInputError(
                f"{name!r} was not compared on round {self.round}; compared: {list(self.batches)}."
            )
        others = [v for k, v in self.batches.items() if k != name]
        rest = np.concatenate(others) if others else np.zeros(0, np.int64)
        mine = self.batches[name]
        return mine[~np.isin(mine, rest)]

    @property
    def only_own(self) -> np.ndarray:
        """Ids only the run's own strategy picks."""
        return self.only(self.own)


def batch_comparison(
    scores: pd.DataFrame,
    samples: pd.DataFrame,
    round: int,
    *,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
) -> BatchComparison:
    """Compare the batches in ``scores`` (the first strategy is the run's own).

    Parameters
    ----------
    scores : pandas.DataFrame
        :data:`~alfaviz.schema.STRATEGY_SCORES` of ``round``, strategies in order.
    samples : pandas.DataFrame
        :data:`~alfaviz.schema.SAMPLES` holding ``round`` (true and pseudo labels).
    round : int
    embeddings : (ids, matrix), optional
        The round's embeddings, for the mean pairwise distance (NaN without them).

    Returns
    -------
    BatchComparison
    """
    r = int(round)
    sc = scores[scores[schema.ROUND].to_numpy() == r]
    names = list(dict.fromkeys(sc[schema.STRATEGY].astype(str).tolist()))
    if not names:
        raise AlfavizInputError(f"no strategy's scores for round {r} to compare.")
    batches: dict[str, np.ndarray] = {}
    for name in names:
        g = sc[(sc[schema.STRATEGY].to_numpy() == name) & sc[schema.PICKED].to_numpy(bool)]
        g = g.sort_values(schema.ORDER, kind="stable")
        batches[name] = g[schema.SAMPLE_ID].to_numpy(np.int64)
    sets = {k: set(v.tolist()) for k, v in batches.items()}
    overlap = pd.DataFrame(
        [[len(sets[a] & sets[b]) for b in names] for a in names], index=names, columns=names
    )
    member: dict[int, tuple[bool, ...]] = {}
    for sid in sorted(set().union(*sets.values())):
        member[sid] = tuple(sid in sets[k] for k in names)
    groups: dict[tuple[bool, ...], list[int]] = {}
    for sid, key in member.items():
        groups.setdefault(key, []).append(sid)
    inter = pd.DataFrame(
        [
            {**dict(zip(names, key, strict=True)), COUNT: len(ids), IDS: tuple(ids)}
            for key, ids in groups.items()
        ],
        columns=[*names, COUNT, IDS],
    )
    inter = inter.sort_values(COUNT, ascending=False, kind="stable").reset_index(drop=True)
    this = samples[samples[schema.ROUND].to_numpy() == r].set_index(schema.SAMPLE_ID)
    z_of = None
    if embeddings is not None:
        ids, z = embeddings
        z_of = pd.Index(np.asarray(ids, dtype=np.int64))
        zmat = np.asarray(z)
    rows = []
    for name, ids in batches.items():
        sub = this.reindex(ids)
        true = sub[schema.TRUE_LABEL].to_numpy()
        pseudo = sub[schema.PSEUDO_LABEL].to_numpy()
        dist = float("nan")
        if z_of is not None:
            at = z_of.get_indexer(ids)
            if (at < 0).any():
                raise AlfavizInputError(f"the round's embeddings miss some of {name}'s picks.")
            dist = mean_pairwise_distance(zmat[at])
        rows.append(
            {
                schema.STRATEGY: name,
                schema.N_SAMPLES: len(ids),
                schema.MEAN_DISTANCE: dist,
                schema.CLASSES_COVERED: len(set(true[true >= 0].tolist())),
                schema.PSEUDO_CLASSES_COVERED: len(set(pseudo[pseudo >= 0].tolist())),
            }
        )
    diversity = schema.conform(
        pd.DataFrame(rows, columns=list(schema.BATCH_DIVERSITY.names)), schema.BATCH_DIVERSITY
    )
    return BatchComparison(r, names[0], batches, overlap, inter, diversity)


def compare_batches(
    run: Any, round: int | None = None, strategies: Sequence[str] | None = None
) -> BatchComparison:
    """The run's own batch on ``round`` beside other strategies' (module docstring).

    Parameters
    ----------
    run : Experiment, or str or Path
        A live run, or a run directory (opened read-only: new batches are kept in memory).
    round : int, optional
        A written round; the latest by default.
    strategies : sequence of str, optional
        Registered names (:data:`AB_STRATEGIES` by default); any not recorded yet for the
        round are queried once and recorded.

    Returns
    -------
    BatchComparison
    """
    from alfaviz.analysis.hypothesis import _check_round, _open

    run = _open(run)
    r = _check_round(run, round)
    own = str(run.strategy.name)
    if isinstance(strategies, str):
        strategies = [strategies]
    names = [own, *(AB_STRATEGIES if strategies is None else strategies)]
    scores = run.compare_strategies(names, round=r)
    return batch_comparison(scores, run.samples, r, embeddings=run.store.read_embeddings(r))
