"""ALFA-Mix as a query strategy: the estimator over :func:`~alfaviz.alfamix.alfamix_query`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from alfaviz import schema
from alfaviz.alfamix.candidates import AlphaMode
from alfaviz.alfamix.query import alfamix_query, paths_frame
from alfaviz.strategies._base import (
    QueryInputs,
    Selection,
    Strategy,
    head_probabilities,
)

__all__ = ["ALFAMix"]


class ALFAMix(Strategy):
    """ALFA-Mix as a query strategy (Parvaneh et al., CVPR 2022).

    Parameters
    ----------
    alpha_cap : float, optional
        Step of the ε schedule; defaults to 0.2 for the closed form and 1/32 for learned α.
    alpha : {"closed_form", "learned"}
    kmeans_n_init, kmeans_max_iter, kmeans_tol : int, int, float
        k-means settings (k-means++ seeding), always explicit.
    learn_steps, learn_lr : int, float
        Optimiser settings for learned α.
    path_steps : int
        Points along z_u → z*_c recorded for the selected samples (0 to skip).
    random_state : int
    """

    name = "alfamix"

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
        random_state: int = 0,
    ) -> None:
        super().__init__(random_state=random_state)
        self.alpha_cap = alpha_cap
        self.alpha = alpha
        self.kmeans_n_init = kmeans_n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.kmeans_tol = kmeans_tol
        self.learn_steps = learn_steps
        self.learn_lr = learn_lr
        self.path_steps = path_steps

    def _select(self, inputs: QueryInputs) -> Selection:
        assert inputs.head is not None
        cap = self.alpha_cap
        if cap is None:
            cap = 0.2 if self.alpha == "closed_form" else 1 / 32
        out = alfamix_query(
            inputs.z_unlabelled,
            inputs.z_labelled,
            inputs.y_labelled,
            inputs.head,
            inputs.budget,
            alpha_cap=cap,
            random_state=int(self.random_state or 0),
            n_classes=inputs.n_classes,
            alpha=self.alpha,
            kmeans_n_init=self.kmeans_n_init,
            kmeans_max_iter=self.kmeans_max_iter,
            kmeans_tol=self.kmeans_tol,
            learn_steps=self.learn_steps,
            learn_lr=self.learn_lr,
        )
        c = out.candidates
        p = head_probabilities(inputs.head, inputs.z_unlabelled)
        cols = self._prob_columns(p)
        cols[schema.PSEUDO_LABEL] = c.pseudo_labels
        crit_min = c.critical_eps.min(axis=1) if c.critical_eps.size else np.zeros(0)
        fill = np.zeros(len(c.mask), dtype=bool)
        fill[out.selected[out.from_fill]] = True
        cols.update(
            {
                schema.SCORE: np.where(np.isfinite(crit_min), -crit_min, -np.inf),
                schema.CANDIDATE: c.mask,
                schema.FILL: fill,
                schema.CLUSTER: out.clusters,
                schema.FIRST_FLIP_EPS: c.first_flip_eps,
                schema.CRITICAL_EPS: crit_min,
                schema.INCONSISTENCY: c.inconsistency,
            }
        )
        n, n_cls = c.flips.shape
        flips = pd.DataFrame(
            {
                schema.SAMPLE_ID: np.repeat(np.arange(n, dtype=np.int64), n_cls),
                schema.ANCHOR_CLASS: np.tile(np.arange(n_cls, dtype=np.int64), n),
                schema.FLIPPED: c.flips.ravel(),
                schema.FLIP_TO: c.flip_to.ravel(),
                schema.CRITICAL_EPS: c.critical_eps.ravel(),
                schema.STEP_NORM: c.step_norm.ravel(),
            }
        )
        paths = None
        if self.path_steps and out.selected.size:
            paths = paths_frame(
                inputs.head,
                inputs.z_unlabelled,
                torch.as_tensor(c.anchors, device=inputs.z_unlabelled.device),
                out.selected,
                self.path_steps,
            )
        info = {
            "level": c.level,
            "n_candidates": c.n_candidates,
            "n_kmeans": out.n_kmeans,
            "n_fill": out.n_fill,
            "candidates_per_level": list(c.n_candidates_per_level),
        }
        info.update({f"time_alfamix_{k}": v for k, v in out.timings.items()})
        return Selection(out.selected, cols, flips, info, paths)
