"""Input checks at the boundary of the method and the strategies.

Every public query entry point calls these first, so that bad input gets one
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
    "as_embedding",
    "as_labels",
    "check_budget",
    "check_head",
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


def _all_finite(x: torch.Tensor) -> bool:
    """``isfinite(x).all()`` for a non-empty float tensor, in one pass and without a copy.

    ``aminmax`` propagates NaN and an inf is a minimum or a maximum, so both are finite exactly
    when every entry is (measured: 10× faster than blocks of ``isfinite``, 8 ms at 50k × 512).
    """
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


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


def _head_dtype(head: nn.Module) -> torch.dtype | None:
    """dtype of the head's first floating parameter (None for a parameter-free head)."""
    for p in head.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _reject_sequence(x: Any, name: str) -> None:
    if isinstance(x, (list, tuple)):
        raise AlfavizInputError(
            f"{name} must be a torch tensor or numpy array of shape (n_samples, n_features); "
            f"got a Python {type(x).__name__}. Convert it with torch.tensor(x, "
            "dtype=torch.float32)."
        )


def check_head(head: Any, dim: int, like: torch.Tensor, *, differentiable: bool = False) -> int:
    """Check that ``head`` is a module mapping ``dim``-dimensional embeddings to logits.

    Parameters
    ----------
    head : nn.Module
    dim : int
        Embedding width.
    like : torch.Tensor, shape (n, dim)
        Embeddings with the dtype and device the head will see (one row is used).
    differentiable : bool
        Also require gradients to flow from the logits back to the embedding.

    Returns
    -------
    int
        The number of classes (logits).
    """
    if head is None:
        raise AlfavizInputError(
            "head is None, but this query needs the model's head (the nn.Linear that maps "
            "embeddings to logits); pass model.head."
        )
    if not isinstance(head, nn.Module):
        kind = "a plain function" if callable(head) else type(head).__name__
        raise AlfavizInputError(
            f"head must be a torch nn.Module mapping embeddings to logits; got {kind}. Wrap a "
            "function in an nn.Module, or pass the model's nn.Linear head."
        )
    dtype = _head_dtype(head)
    if dtype is not None and like.dtype != dtype:
        raise AlfavizInputError(
            f"the embeddings are {str(like.dtype).replace('torch.', '')} but the head computes "
            f"in {str(dtype).replace('torch.', '')}; convert one to match, e.g. z.to({dtype}) "
            "or head.to(z.dtype)."
        )
    n_cls = infer_n_classes(head, dim, like)
    if differentiable and not isinstance(head, nn.Linear):
        z = like[:1].detach().clone().requires_grad_(True)
        try:
            with torch.enable_grad():
                out = head(z)
        except Exception as exc:
            raise AlfavizInputError(f"head could not be applied to the embeddings: {exc}") from None
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise AlfavizInputError(
                "head is not differentiable with respect to its input (its output carries no "
                "gradient); ALFA-Mix needs d(loss)/d(embedding). Remove torch.no_grad, detach "
                "or argmax from the head."
            )
    return n_cls


def check_query_inputs(
    z_unlabelled: Any,
    z_labelled: Any,
    y_labelled: Any,
    head: nn.Module | None,
    budget: Any,
    n_classes: int | None = None,
    *,
    differentiable: bool = False,
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
    differentiable : bool
        Require a head through which gradients flow (ALFA-Mix).

    Returns
    -------
    z_unlabelled, z_labelled, y_labelled, n_classes, budget
        Tensors on the device of ``z_unlabelled`` (never modified in place).
    """
    _reject_sequence(z_unlabelled, "z_unlabelled")
    _reject_sequence(z_labelled, "z_labelled")
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
        c_head = check_head(head, zu.shape[1], zu, differentiable=differentiable)
        if n_classes is None:
            n_classes = c_head
        elif c_head is not None and c_head != n_classes:
            raise AlfavizInputError(f"n_classes={n_classes} but the head produces {c_head} logits.")
    if n_classes is None:
        n_classes = int(yl.max()) + 1 if yl.numel() else 0
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral):
        raise AlfavizInputError(f"n_classes must be an integer; got {n_classes!r}.")
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


def check_disjoint(unlabelled_ids: np.ndarray, labelled_ids: np.ndarray) -> None:
    """A clear error when a sample id is both in the pool and in the labelled set.

    Raises
    ------
    AlfavizInputError
        Naming how many ids are shared, and a few of them.
    """
    overlap = np.intersect1d(unlabelled_ids, labelled_ids)
    if overlap.size:
        raise AlfavizInputError(
            f"{overlap.size} sample id(s) are both labelled and unlabelled "
            f"(e.g. {overlap[:5].tolist()}); the pool must exclude labelled samples."
        )
