"""The candidate set at any ε step, from a round's recorded critical ε, with no recomputation.

With the closed-form α the flip condition of a (sample, anchor) pair depends on ε alone, not
on the schedule that reached it: the pair flips at every level ``ε >= critical ε``. So once a
round has recorded the critical ε of every pair (the ``critical_eps`` of its flips frame, whose
minimum over the anchors is the samples frame's ``critical_eps``), the candidate set and the
stopping level of any other schedule ``alpha_cap, 2·alpha_cap, ...`` follow from the stopping
rule of docs/algorithm.md in O(N·C) (O(N log L) from the per-sample minimum):

- a sample's first flipping level is the first level ``>=`` its critical ε;
- the search stops after the first level whose candidate count strictly exceeds the budget,
  or at the schedule's last level;
- the candidates are the samples whose first flipping level is at or below the stopping one.

:func:`candidate_sweep` does this on arrays; :func:`round_sweep` reads a round of a run first.
The ε slider of the embedding map calls them on every move.

What is exact: the critical ε of a linear head's closed form is a float64 threshold (within
about 1e-5 relative of the literal definition, see ``alfaviz.alfamix._linear``), so a sweep
agrees with :func:`~alfaviz.alfamix.find_candidates` run at that ``alpha_cap`` except for a
pair whose critical ε lies within that tolerance of a level. Other heads record a bisection
estimate (14 halvings between levels). Learned α has no schedule-free threshold (its clamp is
ε itself), so :func:`round_sweep` refuses it. A recorded critical ε is ``inf`` above the
recorded schedule's last level (1.0 for every schedule that divides 1 evenly); a schedule that
would stop above it (for example ``alpha_cap=0.3``, whose last level is 1.2) is marked
``exact=False``, because pairs that flip only between 1.0 and 1.2 are not known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alfaviz import schema
from alfaviz.errors import AlfavizInputError

__all__ = ["Sweep", "candidate_sweep", "round_sweep", "sweep_params"]

_TOL = 1e-12


@dataclass(frozen=True)
class Sweep:
    """The candidate search of one ε schedule, replayed from recorded critical ε.

    Attributes
    ----------
    alpha_cap : float
        Step of the schedule.
    levels : tuple of float
        The schedule (:func:`~alfaviz.alfamix.mixing.level_schedule`).
    level_index : int
        Index of the stopping level in ``levels``.
    level : float
        The stopping level ε.
    counts : tuple of int
        Candidates after each level evaluated, up to and including the stopping one.
    mask : numpy.ndarray of bool, shape (n,)
        The candidate set, aligned with the input rows.
    sample_ids : numpy.ndarray of int64, shape (n,) or None
        Global ids of the rows, when known.
    budget : int
    exact : bool
        False when the stopping level lies above ``max_eps``, the last level whose critical ε
        was recorded.
    """

    alpha_cap: float
    levels: tuple[float, ...]
    level_index: int
    level: float
    counts: tuple[int, ...]
    mask: np.ndarray
    sample_ids: np.ndarray | None
    budget: int
    exact: bool

    @property
    def n_candidates(self) -> int:
        """Size of the candidate set."""
        return int(self.mask.sum())

    @property
    def candidate_ids(self) -> np.ndarray:
        """Global ids of the candidates (positions when ``sample_ids`` is None), sorted."""
        at = np.flatnonzero(self.mask)
        return at if self.sample_ids is None else self.sample_ids[at]


def _per_sample(critical_eps: Any) -> np.ndarray:
    crit = np.asarray(critical_eps, dtype=np.float64)
    if crit.ndim == 2:
        crit = crit.min(axis=1) if crit.shape[1] else np.full(crit.shape[0], np.inf)
    if crit.ndim != 1:
        raise AlfavizInputError(
            f"critical_eps must have shape (n_samples,) or (n_samples, n_classes); got shape "
            f"{crit.shape}."
        )
    if np.isnan(crit).any():
        raise AlfavizInputError(
            "critical_eps holds NaN; use inf for a pair that never flips (as a round records)."
        )
    return crit


def candidate_sweep(
    critical_eps: Any,
    budget: int,
    alpha_cap: float,
    *,
    sample_ids: Any = None,
    max_eps: float = 1.0,
) -> Sweep:
    """The candidate set and stopping level of the schedule ``alpha_cap`` (module docstring).

    Parameters
    ----------
    critical_eps : array-like of float, shape (n,) or (n, n_classes)
        Critical ε of each sample (its minimum over the anchors) or of each (sample, anchor)
        pair, ``inf`` where nothing flips it. Only the minimum per sample matters.
    budget : int
        The batch size B of the stopping rule.
    alpha_cap : float
        Step of the schedule, in ``(0, 1]``.
    sample_ids : array-like of int, shape (n,), optional
        Global ids of the rows (kept in the result).
    max_eps : float
        The last level whose critical ε was recorded (1.0 for the default schedule).

    Returns
    -------
    Sweep

    Raises
    ------
    AlfavizInputError
        For a bad ``alpha_cap`` or ``budget``, NaN critical ε, or ids of the wrong length.
    """
    from alfaviz.alfamix.candidates import stopping_level
    from alfaviz.alfamix.mixing import level_schedule

    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise AlfavizInputError(f"budget must be a positive integer; got {budget!r}.")
    levels = level_schedule(alpha_cap)
    crit = _per_sample(critical_eps)
    ids = None
    if sample_ids is not None:
        ids = np.asarray(sample_ids, dtype=np.int64)
        if ids.shape != crit.shape:
            raise AlfavizInputError(
                f"sample_ids has {ids.size} entries but critical_eps has {crit.size} rows."
            )
    lv = np.asarray(levels, dtype=np.float64)
    first = np.searchsorted(lv, crit, side="left")  # first level >= critical ε; len(lv) if none
    j, counts = stopping_level(first, int(budget), len(levels))
    mask = first <= j
    level = float(levels[j])
    return Sweep(
        alpha_cap=float(alpha_cap),
        levels=tuple(levels),
        level_index=int(j),
        level=level,
        counts=tuple(int(c) for c in counts),
        mask=mask,
        sample_ids=ids,
        budget=int(budget),
        exact=level <= float(max_eps) + _TOL,
    )


def sweep_params(run: Any) -> tuple[str, float]:
    """The α mode and the recorded schedule step of an ALFA-Mix run.

    Parameters
    ----------
    run : Experiment
        Anything with a ``strategy`` attribute.

    Returns
    -------
    tuple of (str, float)
        ``("closed_form" | "learned", alpha_cap)``: the step the run's own schedule used.

    Raises
    ------
    AlfavizInputError
        For a run whose strategy is not ALFA-Mix (it records no critical ε).
    """
    strategy = run.strategy
    if not hasattr(strategy, "alpha"):
        raise AlfavizInputError(
            f"this run queries with {strategy.name}, which records no critical ε; the ε sweep "
            "needs an ALFA-Mix run (strategy='alfamix')."
        )
    from alfaviz.strategies._alfamix import _default_alpha_cap

    cap = strategy.alpha_cap
    return str(strategy.alpha), float(_default_alpha_cap(strategy.alpha) if cap is None else cap)


def round_sweep(run: Any, round: int, alpha_cap: float) -> Sweep:
    """:func:`candidate_sweep` on ``round`` of an ALFA-Mix ``run``, over the round's pool.

    Parameters
    ----------
    run : Experiment
        A live or reopened ALFA-Mix run (closed-form α).
    round : int
        A written round.
    alpha_cap : float
        The schedule step to replay.

    Returns
    -------
    Sweep
        Rows are the round's unlabelled pool, by sample id; ``budget`` is the run's.

    Raises
    ------
    AlfavizInputError
        For a run that is not ALFA-Mix, learned α, or a round not written.
    """
    from alfaviz.alfamix.mixing import level_schedule

    mode, cap = sweep_params(run)
    if mode != "closed_form":
        raise AlfavizInputError(
            "this run learns α, whose critical ε is only known at the recorded levels (its "
            "clamp is ε itself), so another schedule cannot be replayed; rerun the query with "
            "that alpha_cap instead."
        )
    samples = run.samples
    if isinstance(round, bool) or not isinstance(round, (int, np.integer)):
        raise AlfavizInputError(f"round must be an integer; got {round!r}.")
    r = int(round)
    rounds = samples[schema.ROUND].to_numpy()
    if r not in set(rounds.tolist()):
        raise AlfavizInputError(
            f"round={r}: not written; written rounds: {sorted(set(rounds.tolist()))}."
        )
    this = samples[rounds == r]
    lr = this[schema.LABELLED_ROUND].to_numpy()
    pool = this[~((lr >= 0) & (lr <= r))].sort_values(schema.SAMPLE_ID, kind="stable")
    return candidate_sweep(
        pool[schema.CRITICAL_EPS].to_numpy(np.float64),
        int(run.budget),
        alpha_cap,
        sample_ids=pool[schema.SAMPLE_ID].to_numpy(np.int64),
        max_eps=level_schedule(cap)[-1],
    )
