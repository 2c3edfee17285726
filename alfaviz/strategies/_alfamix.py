"""ALFA-Mix as a query strategy: the estimator over :func:`~alfaviz.alfamix.alfamix_query`."""

from __future__ import annotations

import numbers
from typing import ClassVar, get_args

import numpy as np
import pandas as pd
import torch

from alfaviz import schema
from alfaviz.alfamix.candidates import AlphaMode, CandidateResult
from alfaviz.alfamix.query import alfamix_query, paths_frame
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._base import (
    QueryInputs,
    Selection,
    Strategy,
    head_probabilities,
)
from alfaviz.strategies._common import check_int, check_real

__all__ = ["FULL_FLIPS_MAX_PAIRS", "ALFAMix", "candidate_columns", "flip_rows"]

_MAX_LEVELS = 1000
"""The ε schedule ``alpha_cap, 2 alpha_cap, ..., 1`` has at most this many levels."""

_MAX_PATH_STEPS = 1000
"""The most points recorded along one path z_u → z*_c."""

_ALPHA_MODES: tuple[str, ...] = get_args(AlphaMode)

FULL_FLIPS_MAX_PAIRS = 1_000_000
"""The most (sample, anchor) pairs for which the flips frame holds every pair.

Above it (more than 100k samples × 10 classes, or 10k × 100), the frame keeps only the rows
of the candidates and the selected samples, the only samples that flip, and the critical ε of
every pair goes along as one float32 matrix (``QueryResult.critical_eps``). A full frame of 1M × 100
pairs would take about 4 GB; the matrix takes 400 MB.
"""


def _default_alpha_cap(alpha: AlphaMode) -> float:
    """The schedule step used when ``alpha_cap`` is None: 0.2 closed form, 1/32 learned."""
    return 0.2 if alpha == "closed_form" else 1 / 32


class ALFAMix(Strategy):
    """ALFA-Mix as a query strategy (Parvaneh et al., CVPR 2022).

    All parameters are checked when the strategy is built (and by :meth:`set_params`).

    Parameters
    ----------
    alpha_cap : float or None
        Step of the ε schedule, a real number in ``[1/1000, 1]`` (so the schedule has at most
        1000 levels); None means 0.2 for the closed form and 1/32 for learned α.
    alpha : {"closed_form", "learned"}
    kmeans_n_init, kmeans_max_iter : int
        k-means restarts and Lloyd iterations, positive integers.
    kmeans_tol : float
        k-means convergence tolerance, ``>= 0``.
    learn_steps : int
        Optimiser steps for learned α, an integer ``>= 0`` (0 evaluates the start only).
    learn_lr : float
        Learning rate for learned α, ``> 0``.
    path_steps : int
        Points along z_u → z*_c recorded for the selected samples: 0 to skip, or
        ``2..1000``.
    random_state : int or None
        Seeds k-means and the random fill, an int in ``0..2**63-1``; None draws a fresh seed at
        every query. The seed used is recorded in ``QueryResult.info["random_state"]``.

    Attributes
    ----------
    full_flips_max_pairs : int
        The most (sample, anchor) pairs whose every row goes in the flips frame
        (:data:`FULL_FLIPS_MAX_PAIRS`). Above it, the frame holds the candidates' and selected
        samples' rows and the query returns the whole critical-ε matrix as float32
        (``QueryResult.critical_eps``). It is not a constructor parameter: set it on the class
        (``ALFAMix.full_flips_max_pairs = 5_000_000``) for every run in the process, or on an
        instance for its own queries (:func:`~alfaviz.strategies.clone`, which runs use, keeps
        only parameters).
    """

    name: ClassVar[str] = "alfamix"
    full_flips_max_pairs: int = FULL_FLIPS_MAX_PAIRS

    def __init__(
        self,
        alpha_cap: float | None = None,
        alpha: AlphaMode = "closed_form",
        kmeans_n_init: int = 1,
        kmeans_max_iter: int = 50,
        kmeans_tol: float = 1e-4,
        learn_steps: int = 5,
        learn_lr: float = 0.1,
        path_steps: int = 11,
        random_state: int | None = 0,
    ) -> None:
        self.alpha_cap = alpha_cap
        self.alpha = alpha
        self.kmeans_n_init = kmeans_n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.kmeans_tol = kmeans_tol
        self.learn_steps = learn_steps
        self.learn_lr = learn_lr
        self.path_steps = path_steps
        self.random_state = random_state
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        if not (isinstance(self.alpha, str) and self.alpha in _ALPHA_MODES):
            raise AlfavizInputError(
                f"ALFAMix alpha must be one of {', '.join(map(repr, _ALPHA_MODES))}; "
                f"got {self.alpha!r}."
            )
        cap = self.alpha_cap
        if cap is not None and not (
            isinstance(cap, numbers.Real)
            and not isinstance(cap, (bool, np.bool_))
            and 1.0 / _MAX_LEVELS <= float(cap) <= 1.0
        ):
            raise AlfavizInputError(
                f"ALFAMix alpha_cap must be a real number in [{1 / _MAX_LEVELS:g}, 1] (the ε "
                f"schedule steps by alpha_cap up to 1, at most {_MAX_LEVELS} levels), or None "
                f"for the default; got {cap!r}."
            )
        check_int("ALFAMix", "kmeans_n_init", self.kmeans_n_init, minimum=1)
        check_int("ALFAMix", "kmeans_max_iter", self.kmeans_max_iter, minimum=1)
        check_real(
            "ALFAMix",
            "kmeans_tol",
            self.kmeans_tol,
            low=0.0,
            high=float("inf"),
            low_open=False,
            high_open=True,
        )
        check_int("ALFAMix", "learn_steps", self.learn_steps, minimum=0)
        check_real(
            "ALFAMix",
            "learn_lr",
            self.learn_lr,
            low=0.0,
            high=float("inf"),
            low_open=True,
            high_open=True,
        )
        steps = self.path_steps
        check_int("ALFAMix", "path_steps", steps, minimum=0, hint=" (0 to skip, or 2..1000)")
        if steps == 1 or steps > _MAX_PATH_STEPS:
            raise AlfavizInputError(
                f"ALFAMix path_steps must be 0 (no paths) or in 2..{_MAX_PATH_STEPS} (a path "
                f"needs both ends); got {steps!r}."
            )

    def _select(self, inputs: QueryInputs) -> Selection:
        assert inputs.head is not None  # Strategy.query checks needs_head
        cap = _default_alpha_cap(self.alpha) if self.alpha_cap is None else float(self.alpha_cap)
        out = alfamix_query(
            inputs.z_unlabelled,
            inputs.z_labelled,
            inputs.y_labelled,
            inputs.head,
            inputs.budget,
            alpha_cap=cap,
            random_state=inputs.random_state,
            n_classes=inputs.n_classes,
            alpha=self.alpha,
            kmeans_n_init=int(self.kmeans_n_init),
            kmeans_max_iter=int(self.kmeans_max_iter),
            kmeans_tol=float(self.kmeans_tol),
            learn_steps=int(self.learn_steps),
            learn_lr=float(self.learn_lr),
            engine=inputs.engine,
            shard_size=inputs.shard_size,
        )
        c = out.candidates
        cols = candidate_columns(c, head_probabilities(inputs.head, inputs.z_unlabelled))
        fill = np.zeros(len(c.mask), dtype=bool)
        fill[out.selected[out.from_fill]] = True
        cols[schema.FILL] = fill
        cols[schema.CLUSTER] = out.clusters
        flips, crit = self._flips_frame(c, out.selected)
        paths = None
        if self.path_steps and out.selected.size:
            paths = paths_frame(
                inputs.head,
                inputs.z_unlabelled,
                torch.as_tensor(c.anchors, device=inputs.z_unlabelled.device),
                out.selected,
                int(self.path_steps),
            )
        info = {
            schema.LEVEL: c.level,
            schema.N_CANDIDATES: c.n_candidates,
            schema.N_KMEANS: out.n_kmeans,
            schema.N_FILL: out.n_fill,
            schema.CANDIDATES_PER_LEVEL: list(c.n_candidates_per_level),
        }
        info.update({schema.time_column(f"alfamix_{k}"): v for k, v in out.timings.items()})
        return Selection(out.selected, cols, flips, info, paths, crit)

    def _flips_frame(
        self, c: CandidateResult, selected: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """The per-(sample, anchor) frame, and the float32 critical-ε matrix when it is cut.

        Every row while ``n * n_classes <= full_flips_max_pairs``; above that, the rows of the
        candidates and the selected samples (every sample with a flip is a candidate), with
        the (n, n_classes) critical ε returned beside it as float32.
        """
        n, n_cls = c.flips.shape
        if n * n_cls <= int(self.full_flips_max_pairs):
            return flip_rows(c, None), None
        keep = c.mask.copy()
        keep[np.asarray(selected, dtype=np.int64)] = True
        return flip_rows(c, np.flatnonzero(keep)), c.critical_eps.astype(np.float32)


def candidate_columns(c: CandidateResult, probabilities: torch.Tensor) -> dict[str, np.ndarray]:
    """The per-sample columns of an ALFA-Mix query that do not depend on the batch picked.

    Parameters
    ----------
    c : CandidateResult
        The candidate search of a pool (or of a shard of it: every column is per sample).
    probabilities : torch.Tensor, shape (n, n_classes)
        The head's softmax on the same rows (:func:`~alfaviz.strategies.head_probabilities`).

    Returns
    -------
    dict of str to numpy.ndarray
        ``pseudo_label``, ``prob_max``, ``entropy``, ``score`` (minus the smallest critical ε),
        ``candidate``, ``first_flip_eps``, ``critical_eps`` (the smallest over anchors) and
        ``inconsistency``, one value per row; ``fill`` and ``cluster`` come with the batch.
    """
    cols = Strategy._prob_columns(probabilities)
    cols[schema.PSEUDO_LABEL] = c.pseudo_labels
    crit_min = c.critical_eps.min(axis=1) if c.critical_eps.size else np.zeros(0)
    cols.update(
        {
            schema.SCORE: np.where(np.isfinite(crit_min), -crit_min, -np.inf),
            schema.CANDIDATE: c.mask,
            schema.FIRST_FLIP_EPS: c.first_flip_eps,
            schema.CRITICAL_EPS: crit_min,
            schema.INCONSISTENCY: c.inconsistency,
        }
    )
    return cols


def flip_rows(c: CandidateResult, rows: np.ndarray | None) -> pd.DataFrame:
    """The per-(sample, anchor) rows of some samples of a candidate search.

    Parameters
    ----------
    c : CandidateResult
    rows : numpy.ndarray of int, optional
        Positions into ``c`` (every row when None); the frame's ``sample_id`` holds them.

    Returns
    -------
    pandas.DataFrame
        ``sample_id, anchor_class, flipped, flip_to, critical_eps, step_norm``, ``n_classes``
        rows per sample.
    """
    n, n_cls = c.flips.shape
    take: slice | np.ndarray = slice(None) if rows is None else np.asarray(rows, np.int64)
    ids = np.arange(n, dtype=np.int64) if rows is None else take
    return pd.DataFrame(
        {
            schema.SAMPLE_ID: np.repeat(ids, n_cls),
            schema.ANCHOR_CLASS: np.tile(np.arange(n_cls, dtype=np.int64), len(ids)),
            schema.FLIPPED: c.flips[take].ravel(),
            schema.FLIP_TO: c.flip_to[take].ravel(),
            schema.CRITICAL_EPS: c.critical_eps[take].ravel(),
            schema.STEP_NORM: c.step_norm[take].ravel(),
        }
    )
