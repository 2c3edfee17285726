"""Input checks at the boundary of the core.

Every public entry point of :mod:`alfaviz.core` calls these first, so that bad input gets one
clear :class:`AlfavizInputError` that says what was wrong and how to fix it, instead of a
traceback from deep inside torch.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from alfaviz.errors import AlfavizInputError

__all__ = [
    "AlfavizInputError",
    "as_embedding",
    "as_labels",
    "check_budget",
    "check_query_inputs",
    "infer_n_classes",
]


def as_embedding(x: Any, name: str, *, allow_empty: bool = False) -> torch.Tensor:
    """Return ``x`` as a 2-D floating tensor, checking shape and finiteness.

    Parameters
    ----------
    x : torch.Tensor or array-like, shape (n_samples, n_features)
        The embedding matrix.
    name : str
        Argument name used in error messages.
    allow_empty : bool
        Accept zero rows.

    Returns
    -------
    torch.Tensor, shape (n_samples, n_features)
        ``x`` itself when it already is a floating tensor (never a modified copy).
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception as exc:  # pragma: no cover - defensive
            raise AlfavizInputError(
                f"{name} must be a torch tensor or array of shape (n_samples, n_features); "
                f"got {type(x).__name__} ({exc})"
            ) from exc
    if x.dim() != 2:
        raise AlfavizInputError(
            f"{name} must be 2-D with shape (n_samples, n_features); got shape {tuple(x.shape)}. "
            "Flatten or embed your inputs first (model.embed(x))."
        )
    if not torch.is_floating_point(x):
        x = x.float()
    if x.shape[0] == 0 and not allow_empty:
        raise AlfavizInputError(
            f"{name} is empty (0 samples). "
            + (
                "The unlabelled pool is exhausted: there is nothing left to query."
                if "unlabelled" in name
                else "Label at least one sample first (use an initial labelled set)."
            )
        )
    if x.shape[1] == 0:
        raise AlfavizInputError(f"{name} has 0 features; embeddings need at least one dimension.")
    if x.numel() and not _all_finite(x):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise AlfavizInputError(
            f"{name} contains NaN or inf in {bad} row(s). Check the model (a diverged training "
            "run gives NaN embeddings) or the input data."
        )
    return x


def _all_finite(x: torch.Tensor, rows: int = 8192) -> bool:
    """``isfinite(x).all()`` in row blocks, so no full-size boolean copy is made."""
    return all(bool(torch.isfinite(x[s : s + rows]).all()) for s in range(0, x.shape[0], rows))


def as_labels(y: Any, n_rows: int, name: str = "y_labelled") -> torch.Tensor:
    """Return ``y`` as a 1-D int64 tensor of length ``n_rows``.

    Parameters
    ----------
    y : torch.Tensor or array-like, shape (n_rows,)
        Integer class ids.
    n_rows : int
        Expected length.
    name : str
        Argument name used in error messages.
    """
    if not isinstance(y, torch.Tensor):
        arr = np.asarray(y)
        if arr.dtype.kind not in "iub":
            if (
                arr.dtype.kind == "f"
                and arr.size
                and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr))
            ):
                arr = arr.astype(np.int64)
            else:
                raise AlfavizInputError(
                    f"{name} must hold integer class ids 0..n_classes-1; got dtype {arr.dtype}. "
                    "Map class names to ids first (alfaviz data sources do this for you)."
                )
        y = torch.as_tensor(arr.astype(np.int64))
    if y.dim() != 1 or y.shape[0] != n_rows:
        raise AlfavizInputError(
            f"{name} must have shape ({n_rows},) to match the labelled embeddings; "
            f"got shape {tuple(y.shape)}."
        )
    if torch.is_floating_point(y) and not bool(torch.all(y == torch.round(y))):
        raise AlfavizInputError(f"{name} must hold integer class ids; got fractional values.")
    return y.long()


def check_budget(budget: Any, n_pool: int) -> int:
    """Check that ``budget`` is an integer in ``[1, n_pool]`` and return it as ``int``."""
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral):
        raise AlfavizInputError(f"budget must be a positive integer; got {budget!r}.")
    budget = int(budget)
    if budget <= 0:
        raise AlfavizInputError(
            f"budget must be at least 1 (the number of samples to query); got {budget}."
        )
    if budget > n_pool:
        raise AlfavizInputError(
            f"budget {budget} is larger than the unlabelled pool ({n_pool} samples). "
            f"Ask for at most {n_pool}."
        )
    return budget


def infer_n_classes(head: nn.Module, dim: int, like: torch.Tensor) -> int:
    """Number of logits ``head`` produces for a ``dim``-dimensional embedding."""
    if isinstance(head, nn.Linear):
        if head.in_features != dim:
            raise AlfavizInputError(
                f"head expects {head.in_features}-dimensional embeddings but the embeddings have "
                f"{dim} features. Pass the embedding that feeds the head (model.embed(x))."
            )
        return int(head.out_features)
    try:
        with torch.no_grad():
            out = head(like[:1])
    except Exception as exc:
        raise AlfavizInputError(
            f"head could not be applied to a {dim}-dimensional embedding: {exc}. "
            "Pass the module that maps embeddings to logits."
        ) from exc
    if out.dim() != 2 or out.shape[0] != 1:
        raise AlfavizInputError(
            f"head must map (n, {dim}) embeddings to (n, n_classes) logits; "
            f"got output shape {tuple(out.shape)} for one sample."
        )
    return int(out.shape[1])


def check_query_inputs(
    z_unlabelled: Any,
    z_labelled: Any,
    y_labelled: Any,
    head: nn.Module | None,
    budget: Any,
    n_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """Validate the common inputs of every query.

    Parameters
    ----------
    z_unlabelled : tensor, shape (n_unlabelled, dim)
    z_labelled : tensor, shape (n_labelled, dim)
    y_labelled : tensor, shape (n_labelled,)
    head : nn.Module or None
        Maps embeddings to logits. ``None`` is allowed for strategies that need no head.
    budget : int
    n_classes : int, optional
        Number of classes; inferred from the head when omitted.

    Returns
    -------
    z_unlabelled, z_labelled, y_labelled, n_classes, budget
        Tensors on the device of ``z_unlabelled`` (never modified in place).
    """
    zu = as_embedding(z_unlabelled, "z_unlabelled")
    zl = as_embedding(z_labelled, "z_labelled")
    if zu.shape[1] != zl.shape[1]:
        raise AlfavizInputError(
            f"z_unlabelled has {zu.shape[1]} features but z_labelled has {zl.shape[1]}; both "
            "must come from the same encoder."
        )
    if zl.device != zu.device:
        zl = zl.to(zu.device)
    if zl.dtype != zu.dtype:
        zl = zl.to(zu.dtype)
    yl = as_labels(y_labelled, zl.shape[0]).to(zu.device)
    budget = check_budget(budget, zu.shape[0])
    if head is not None:
        if not isinstance(head, nn.Module) and not callable(head):
            raise AlfavizInputError(
                f"head must be a torch nn.Module mapping embeddings to logits; got {type(head)}."
            )
        c_head = infer_n_classes(head, zu.shape[1], zu) if isinstance(head, nn.Module) else None
        if n_classes is None:
            n_classes = c_head
        elif c_head is not None and c_head != n_classes:
            raise AlfavizInputError(f"n_classes={n_classes} but the head produces {c_head} logits.")
    if n_classes is None:
        n_classes = int(yl.max()) + 1 if yl.numel() else 0
    n_classes = int(n_classes)
    if n_classes < 2:
        raise AlfavizInputError(f"need at least 2 classes; got n_classes={n_classes}.")
    if yl.numel():
        lo, hi = int(yl.min()), int(yl.max())
        if lo < 0 or hi >= n_classes:
            raise AlfavizInputError(
                f"y_labelled holds class ids in [{lo}, {hi}] but there are {n_classes} classes; "
                f"labels must lie in 0..{n_classes - 1}."
            )
    return zu, zl, yl, n_classes, budget
