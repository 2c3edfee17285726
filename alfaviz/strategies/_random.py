"""Random: uniform sampling without replacement."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from alfaviz import schema
from alfaviz.strategies._base import QueryInputs, Selection, Strategy, head_probabilities
from alfaviz.strategies._common import seeded_generator, top_k_positions

__all__ = ["Random", "random_keys"]


def random_keys(n_samples: int, random_state: int) -> np.ndarray:
    """One uniform key in ``[0, 1)`` per sample, from a CPU generator seeded with ``random_state``.

    The keys do not depend on the device of the embeddings.

    Parameters
    ----------
    n_samples : int
    random_state : int
        Seed in ``0..2**63-1``.

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples,)
    """
    gen = seeded_generator(random_state, "cpu")
    return torch.rand(n_samples, generator=gen, dtype=torch.float64).numpy()


class Random(Strategy):
    """Uniform sampling without replacement.

    Each unlabelled sample gets a random key (:func:`random_keys`); the ``budget`` largest keys
    are picked and the key is recorded as the score. The head is optional; when given, the
    pseudo-label columns are recorded too.

    Parameters
    ----------
    random_state : int or None
        Seed in ``0..2**63-1``; ``None`` draws a fresh seed at every query. The seed used is
        recorded in ``QueryResult.info["random_state"]``.
    """

    name: ClassVar[str] = "random"
    needs_head: ClassVar[bool] = False

    def __init__(self, random_state: int | None = 0) -> None:
        self.random_state = random_state
        self._validate_params()

    def _select(self, inputs: QueryInputs) -> Selection:
        keys = random_keys(inputs.z_unlabelled.shape[0], inputs.random_state)
        columns: dict[str, np.ndarray] = {schema.SCORE: keys}
        if inputs.head is not None:
            columns.update(self._prob_columns(head_probabilities(inputs.head, inputs.z_unlabelled)))
        return Selection(selected_idx=top_k_positions(keys, inputs.budget), columns=columns)
