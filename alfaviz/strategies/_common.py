"""Helpers shared by the strategy modules: ranking, chunking, work dtype, seeds, checks.

Nothing here knows about a particular strategy; each strategy module imports what it needs.
The tensor helpers shared with :mod:`alfaviz.alfamix` (eval mode, entropy, nearest-centre
distances, the D² draw) are written once in :mod:`alfaviz._tensor`; :func:`eval_mode` is
re-exported from there.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from alfaviz._checks import MAX_SEED, fresh_seed
from alfaviz._tensor import entropy, eval_mode
from alfaviz.errors import AlfavizInputError

__all__ = [
    "CHUNK_ELEMENTS",
    "MAX_SEED",
    "check_int",
    "check_real",
    "check_seed",
    "chunk_rows",
    "entropy_scores",
    "eval_mode",
    "fresh_seed",
    "seeded_generator",
    "to_numpy",
    "top_k_positions",
    "work_dtype",
]

CHUNK_ELEMENTS = 1 << 22
"""Upper bound on the number of elements of one chunk's temporaries (16 MiB in float32)."""


# ----------------------------------------------------------------------------------------------
# tensors
# ----------------------------------------------------------------------------------------------
def work_dtype(z: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else (float32, half, bfloat16) is computed in float32."""
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def chunk_rows(width: int) -> int:
    """Rows per chunk so that a ``(rows, width)`` temporary holds about :data:`CHUNK_ELEMENTS`."""
    return max(1, CHUNK_ELEMENTS // max(int(width), 1))


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """``x`` as a float64 numpy array on the CPU (a copy; ``x`` is untouched)."""
    return x.detach().to(torch.float64).cpu().numpy()


def top_k_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, highest first; ties go to the lower position.

    Parameters
    ----------
    scores : numpy.ndarray, shape (n_samples,)
        NaN sorts last.
    k : int
        ``0 <= k <= n_samples``.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:k].astype(np.int64)


def entropy_scores(p: torch.Tensor) -> torch.Tensor:
    """Predictive entropy ``-sum_c p_c log p_c`` (nats) of each row; ``0 log 0`` counts as 0.

    The strategies' name for :func:`alfaviz._tensor.entropy` over the class dimension.

    Parameters
    ----------
    p : torch.Tensor, shape (n_samples, n_classes)
        Class probabilities.

    Returns
    -------
    torch.Tensor, shape (n_samples,)
    """
    return entropy(p, dim=1)


# ----------------------------------------------------------------------------------------------
# seeds
# ----------------------------------------------------------------------------------------------
def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (an int in ``0..2**63-1``)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


# ----------------------------------------------------------------------------------------------
# parameter checks (construction time)
# ----------------------------------------------------------------------------------------------
def check_seed(owner: str, value: Any) -> None:
    """``random_state`` must be ``None`` or an int (not a bool) in ``0..2**63-1``."""
    if value is None:
        return
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) <= MAX_SEED
    ):
        raise AlfavizInputError(
            f"{owner} random_state must be None (fresh entropy) or an integer in 0..2**63-1; "
            f"got {value!r}."
        )


def check_int(owner: str, name: str, value: Any, *, minimum: int, hint: str = "") -> None:
    """``value`` must be an int (not a bool, not a float) ``>= minimum``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or int(value) < minimum
    ):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise AlfavizInputError(f"{owner} {name} must be {kind}{hint}; got {value!r}.")


def check_real(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float,
    high: float,
    low_open: bool,
    high_open: bool,
    what: str = "a number",
) -> None:
    """``value`` must be a finite real number (not a bool) in the given interval."""
    ok = (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, numbers.Real)
        and np.isfinite(float(value))
    )
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise AlfavizInputError(f"{owner} {name} must be {what} in {interval}; got {value!r}.")
