"""The :class:`Learner`: a split model, its initial weights, its training settings, its device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from alfaviz.errors import AlfavizInputError
from alfaviz.learner.models import split_model
from alfaviz.learner.training import (
    TrainConfig,
    TrainStats,
    embed,
    evaluate,
    resolve_device,
    train_model,
)

__all__ = ["Learner"]


class Learner:
    """A model that retrains from the same initial weights every round.

    Parameters
    ----------
    model : nn.Module
        A split model exposing ``embed(x)`` and an ``nn.Linear`` ``head`` (any module with
        a final ``nn.Linear`` is wrapped with :func:`~alfaviz.learner.split_model`).
    config : TrainConfig, optional
        Training settings (the release's protocol by default).
    device : str or torch.device, optional
        CUDA when available by default.
    n_classes : int, optional
        When given, the head must predict exactly this many classes.
    initial_state : mapping, optional
        The ``state_dict`` every round restarts from; the model's current weights by default.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        device: str | torch.device | None = None,
        n_classes: int | None = None,
        initial_state: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise AlfavizInputError(f"model must be a torch nn.Module; got {type(model).__name__}.")
        if config is not None and not isinstance(config, TrainConfig):
            raise AlfavizInputError(f"config must be a TrainConfig; got {config!r}.")
        self.model = model if hasattr(model, "embed") else split_model(model, head_name=None)
        head = getattr(self.model, "head", None)
        if not isinstance(head, nn.Linear):
            raise AlfavizInputError(
                "the model's head must be an nn.Linear (ALFA-Mix mixes the head's input); "
                "wrap your network with split_model(model, head_name=...)."
            )
        if n_classes is not None and head.out_features != n_classes:
            raise AlfavizInputError(
                f"the model predicts {head.out_features} classes but the data has {n_classes}."
            )
        self.config = config if config is not None else TrainConfig()
        self.device = resolve_device(device)
        self.model.to(self.device)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
            self.model.to(self.device)
        self.initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @property
    def head(self) -> nn.Linear:
        """The final linear layer (maps embeddings to logits)."""
        return self.model.head  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        """Number of classes the head predicts."""
        return int(self.head.out_features)

    def fit(self, x: torch.Tensor, y: torch.Tensor, *, seed: int) -> TrainStats:
        """Retrain from the initial weights on ``(x, y)``.

        Parameters
        ----------
        x : torch.Tensor, shape (n_labelled, *input_shape)
        y : torch.Tensor of int64, shape (n_labelled,)
        seed : int
            Seeds the minibatch order and dropout.

        Returns
        -------
        TrainStats
        """
        return train_model(
            self.model, x, y, self.config, initial_state=self.initial_state, seed=seed,
            device=self.device,
        )  # fmt: skip

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``x`` as float32, shape (n, embed_dim), on :attr:`device`."""
        return embed(self.model, x).float()

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | np.ndarray) -> float:
        """Accuracy on ``(x, y)`` (NaN for an empty set)."""
        return evaluate(self.model, x, y)

    def reset(self) -> None:
        """Put the initial weights back."""
        self.model.load_state_dict(self.initial_state)

    def __repr__(self) -> str:
        return f"Learner({type(self.model).__name__}, device={self.device}, {self.config})"

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts about the learner (model class, classes, device, training)."""
        return {
            "class": type(self.model).__name__,
            "n_classes": self.n_classes,
            "device": str(self.device),
            "train": self.config.to_dict(),
        }
