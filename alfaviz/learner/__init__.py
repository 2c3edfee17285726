"""Models and training: split models (features ▸ head), the training protocol, and the
:class:`Learner` that owns a model, its initial weights, its training settings and its device.
"""

from __future__ import annotations

from alfaviz.learner._learner import Learner
from alfaviz.learner.models import (
    MLP,
    MODELS,
    HookedSplitModel,
    LinearProbe,
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
    resolve_device,
    train_model,
)

__all__ = [
    "MLP",
    "MODELS",
    "HookedSplitModel",
    "Learner",
    "LinearProbe",
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
    "resolve_device",
    "split_model",
    "train_model",
]
