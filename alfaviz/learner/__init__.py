"""Models and training: split models (features ▸ head), the training protocol, embedding."""

from __future__ import annotations

from alfaviz.learner.models import (
    MLP,
    MODELS,
    HookedSplitModel,
    ResNet18,
    SmallCNN,
    SplitModel,
    build_model,
    split_model,
)
from alfaviz.learner.training import (
    TrainConfig,
    TrainStats,
    default_device,
    embed,
    evaluate,
    predict_logits,
    train_model,
)

__all__ = [
    "MLP",
    "MODELS",
    "HookedSplitModel",
    "ResNet18",
    "SmallCNN",
    "SplitModel",
    "TrainConfig",
    "TrainStats",
    "build_model",
    "default_device",
    "embed",
    "evaluate",
    "predict_logits",
    "split_model",
    "train_model",
]
