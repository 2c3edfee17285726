"""The GUI-free core of alfaviz: tensors and arrays in, tidy frames out.

Nothing in this package imports ipywidgets, plotly or IPython (a test checks this in a
subprocess), so it runs headless on a GPU box.
"""

from __future__ import annotations

from alfaviz.core import schema
from alfaviz.core.alfamix import (
    ALFAMix,
    CandidateResult,
    QueryOutcome,
    alfamix_query,
    find_candidates,
)
from alfaviz.core.data import (
    DataSource,
    from_arrays,
    from_dataframe,
    from_image_folder,
    from_torch_dataset,
    load_dataset,
    load_digits,
    load_torchvision,
)
from alfaviz.core.experiment import Callback, Experiment, LoggingCallback
from alfaviz.core.models import MLP, ResNet18, SmallCNN, SplitModel, build_model, split_model
from alfaviz.core.result import QueryResult
from alfaviz.core.store import RunStore, RunStoreError
from alfaviz.core.strategies.base import STRATEGIES, Strategy, get_strategy, register
from alfaviz.core.strategies.baselines import (
    BADGE,
    BALD,
    CoreSet,
    Entropy,
    LeastConfidence,
    Margin,
    Random,
)
from alfaviz.core.training import TrainConfig
from alfaviz.core.validation import AlfavizInputError

__all__ = [
    "BADGE",
    "BALD",
    "MLP",
    "STRATEGIES",
    "ALFAMix",
    "AlfavizInputError",
    "Callback",
    "CandidateResult",
    "CoreSet",
    "DataSource",
    "Entropy",
    "Experiment",
    "LeastConfidence",
    "LoggingCallback",
    "Margin",
    "QueryOutcome",
    "QueryResult",
    "Random",
    "ResNet18",
    "RunStore",
    "RunStoreError",
    "SmallCNN",
    "SplitModel",
    "Strategy",
    "TrainConfig",
    "alfamix_query",
    "build_model",
    "find_candidates",
    "from_arrays",
    "from_dataframe",
    "from_image_folder",
    "from_torch_dataset",
    "get_strategy",
    "load_dataset",
    "load_digits",
    "load_torchvision",
    "register",
    "schema",
    "split_model",
]
