"""Training, embedding and evaluation with the protocol of docs/algorithm.md ("Protocol").

Every round retrains from the same initial weights with Adam (lr 1e-3, batch 64) and stops
when the training accuracy reaches 0.99 or at the epoch cap. All of these are parameters of
:class:`TrainConfig`. Work happens on the configured device (CUDA when available by default).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alfaviz.errors import AlfavizInputError

__all__ = [
    "TrainConfig",
    "TrainStats",
    "default_device",
    "embed",
    "evaluate",
    "predict_logits",
    "resolve_device",
    "train_model",
]

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device` that exists here; ``None`` means the default.

    Raises
    ------
    AlfavizInputError
        For a malformed name, a CUDA device without a GPU or beyond the GPUs present, or an
        MPS device where there is none.
    """
    if device is None:
        return default_device()
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise AlfavizInputError(
                f"device {device!r} is not a device name; use 'cpu', 'cuda' or 'cuda:0'."
            ) from None
    else:
        raise AlfavizInputError(f"device must be a string such as 'cpu'; got {device!r}.")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise AlfavizInputError(
                f"device {device!r} asks for a GPU, but CUDA is not available here; "
                "use device='cpu' (or leave it out)."
            )
        if dev.index is not None and dev.index >= n:
            raise AlfavizInputError(
                f"device {device!r} does not exist: this machine has {n} GPU(s), "
                f"cuda:0..cuda:{n - 1}."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise AlfavizInputError(f"device {device!r} (Apple MPS) is not available here.")
    elif dev.type != "cpu":
        raise AlfavizInputError(f"device {device!r} is not supported; use 'cpu' or 'cuda'.")
    return dev


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one round's training.

    Parameters
    ----------
    lr : float
        Adam learning rate (the release's example uses 1e-3).
    batch_size : int
        Minibatch size (64 in the release).
    max_epochs : int
        Epoch cap.
    target_accuracy : float
        Stop once the accuracy on the labelled set reaches this (0.99 in the release).
    weight_decay : float
        Adam weight decay.
    min_steps : int
        Optimiser steps to take at least, so that tiny labelled sets still train.
    """

    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 200
    target_accuracy: float = 0.99
    weight_decay: float = 0.0
    min_steps: int = 50

    def __post_init__(self) -> None:
        for name in ("lr", "target_accuracy", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise AlfavizInputError(f"{name} must be a number; got {v!r}.")
        for name in ("batch_size", "max_epochs", "min_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise AlfavizInputError(f"{name} must be an integer; got {v!r}.")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise AlfavizInputError(
                f"weight_decay must be a non-negative number; got {self.weight_decay!r}."
            )
        if int(self.min_steps) < 0:
            raise AlfavizInputError(f"min_steps must be at least 0; got {self.min_steps!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise AlfavizInputError(f"lr must be a positive number; got {self.lr!r}.")
        if int(self.batch_size) < 1:
            raise AlfavizInputError(f"batch_size must be at least 1; got {self.batch_size!r}.")
        if int(self.max_epochs) < 1:
            raise AlfavizInputError(f"max_epochs must be at least 1; got {self.max_epochs!r}.")
        if not 0 < self.target_accuracy <= 1:
            raise AlfavizInputError(
                f"target_accuracy must be in (0, 1]; got {self.target_accuracy!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return asdict(self)


@dataclass(frozen=True)
class TrainStats:
    """What one training run did: epochs, steps, final training accuracy and seconds."""

    epochs: int
    steps: int
    train_accuracy: float
    seconds: float


def _batches(n: int, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    parts = list(perm.split(size))
    if len(parts) > 1 and parts[-1].numel() == 1:  # BatchNorm cannot train on one sample
        parts[-2] = torch.cat([parts[-2], parts[-1]])
        parts.pop()
    return parts


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> TrainStats:
    """Train ``model`` on ``(x, y)`` from ``initial_state`` (in place).

    Parameters
    ----------
    model : nn.Module
        Maps inputs to logits.
    x : torch.Tensor, shape (n_labelled, *input_shape)
    y : torch.Tensor of int64, shape (n_labelled,)
    config : TrainConfig
    initial_state : mapping, optional
        ``state_dict`` to restart from (the same initial weights every round).
    seed : int
        Seeds the minibatch order.
    device : optional
        Where to train; defaults to the model's device.

    Returns
    -------
    TrainStats
    """
    if x.shape[0] == 0:
        raise AlfavizInputError("cannot train on an empty labelled set; label some samples first.")
    if x.shape[0] != y.shape[0]:
        raise AlfavizInputError(f"{x.shape[0]} inputs but {y.shape[0]} labels.")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    devices = [dev] if dev.type == "cuda" else []
    # dropout draws from the global RNG: seed it locally so rounds are reproducible and the
    # caller's random state is left untouched
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        return _train(model, x, y, config, initial_state, seed, dev)


def _train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    initial_state: Mapping[str, torch.Tensor] | None,
    seed: int,
    dev: torch.device,
) -> TrainStats:
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    t0 = time.perf_counter()
    steps = 0
    acc = 0.0
    epoch = 0
    n = x.shape[0]
    for epoch in range(1, int(config.max_epochs) + 1):  # noqa: B007 - reported
        model.train()
        correct = 0
        for idx in _batches(n, int(config.batch_size), gen):
            xb = x[idx].to(dev, non_blocking=True)
            yb = y[idx].to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            steps += 1
            correct += int((out.argmax(1) == yb).sum())
        acc = correct / n
        if acc >= config.target_accuracy and steps >= config.min_steps:
            break
    model.eval()
    return TrainStats(epoch, steps, acc, time.perf_counter() - t0)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` in eval mode, shape (n, n_classes), on the CPU."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Embeddings ``model.embed(x)`` (the input of the last layer), eval mode, no gradients.

    Returns
    -------
    torch.Tensor, shape (n, embed_dim), on the model's device
    """
    if not hasattr(model, "embed"):
        raise AlfavizInputError(
            "the model has no embed(x) method; wrap it with alfaviz.learner.models.split_model("
            "model, head_name=...) or SplitModel(encoder, head)."
        )
    model.eval()
    dev = next(model.parameters()).device
    parts = [model.embed(x[i : i + batch_size].to(dev)) for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, device=dev)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor | np.ndarray) -> float:
    """Accuracy of ``model`` on ``(x, y)``."""
    if len(x) == 0:
        return float("nan")
    pred = predict_logits(model, x).argmax(1).numpy()
    return float((pred == np.asarray(y)).mean())
