"""Models with the ALFA-Mix split ``f = head ∘ embed`` (docs/algorithm.md, "Model split").

Every model alfaviz trains exposes

* ``embed(x) -> z``, shape (n, embed_dim): the input of the last layer. Callers put the model in
  eval mode and use ``torch.no_grad()`` (the learner does this);
* ``head``: one :class:`torch.nn.Linear` mapping z to (n, n_classes) logits;
* ``forward(x) = head(dropout(embed(x)))``: dropout acts on z only in training mode, exactly
  where the ALFA-Mix release's nets apply ``F.dropout`` (after the embedding, before the last
  layer). In eval mode ``forward(x) == head(embed(x))``. The ``dropout`` submodule is public so
  MC-dropout strategies (BALD) can switch it to train mode on its own;
* ``embed_dim`` and ``n_classes``.

Built in: :class:`SmallCNN` (images up to 32x32), :class:`ResNet18` (torchvision's, random init
or local weights), :class:`MLP` (tabular), :class:`LinearProbe` (an identity encoder and one
``nn.Linear``: a linear classifier on pre-computed features, the paper's frozen-feature
setting). A user's own network is wrapped with :class:`SplitModel` (encoder + head) or
:func:`split_model` (any network with a named final ``nn.Linear``). :func:`build_model` picks
one for a :class:`~alfaviz.data.DataSource`.

Dropout defaults mirror the release: its CNNs (``Net1``-``Net4``) use ``F.dropout`` with p=0.5
before the last layer, its ResNet classifier p=0.2, and its MLP none. Models hold no device:
move them with ``.to(device)``.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from alfaviz.errors import AlfavizInputError

if TYPE_CHECKING:
    from alfaviz.data import DataSource

__all__ = [
    "MLP",
    "MODELS",
    "EmbeddingModel",
    "HookedSplitModel",
    "LinearProbe",
    "ResNet18",
    "SmallCNN",
    "SplitModel",
    "build_model",
    "split_model",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class EmbeddingModel(Protocol):
    """What the learner and the strategies need from a model (every model here satisfies it)."""

    head: nn.Linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(n, *input_shape) -> (n, embed_dim)."""
        ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(n, *input_shape) -> (n, n_classes) logits."""
        ...


def _check_dropout(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) < 1.0:
        raise AlfavizInputError(f"dropout must be a probability in [0, 1); got {p!r}.")
    return float(p)


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AlfavizInputError(f"{name} must be a positive integer; got {value!r}.")
    return value


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n]


class SplitModel(nn.Module):
    """A classifier split into ``encoder`` and a linear ``head``.

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch (n, *input_shape) to embeddings (n, embed_dim); an output with more
        dimensions, e.g. (n, C, 1, 1), is flattened from dim 1.
    head : nn.Linear
        Maps (n, embed_dim) to (n, n_classes) logits.
    dropout : float
        Dropout on the embedding before the head, in training mode only.

    Examples
    --------
    >>> enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
    >>> model = SplitModel(enc, nn.Linear(32, 10))
    >>> model.embed(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 32])
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise AlfavizInputError(
                f"encoder must be a torch nn.Module; got {type(encoder).__name__}."
            )
        if not isinstance(head, nn.Linear):
            raise AlfavizInputError(
                f"head must be one nn.Linear (ALFA-Mix mixes the input of the last linear "
                f"layer); got {type(head).__name__}. Put any extra layers in the encoder."
            )
        self.encoder = encoder
        self.dropout = nn.Dropout(_check_dropout(dropout))
        self.head = head

    @property
    def embed_dim(self) -> int:
        """Dimension D of the embedding z (``head.in_features``)."""
        return int(self.head.in_features)

    @property
    def n_classes(self) -> int:
        """Number of logits (``head.out_features``)."""
        return int(self.head.out_features)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding z, the head's input, without dropout.

        Parameters
        ----------
        x : torch.Tensor, shape (n, *input_shape)

        Returns
        -------
        torch.Tensor, shape (n, embed_dim)
        """
        z = self.encoder(x)
        if z.dim() > 2:
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.embed_dim:
            raise AlfavizInputError(
                f"the encoder produced embeddings of shape {tuple(z.shape)} but the head expects "
                f"(n, {self.embed_dim}); make the encoder's output size match head.in_features."
            )
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``head(dropout(embed(x)))``, shape (n, n_classes)."""
        return self.head(self.dropout(self.embed(x)))


class SmallCNN(SplitModel):
    """A small CNN for images from 8x8 to 32x32 (digits, MNIST, CIFAR, SVHN).

    Two conv blocks (``width`` and ``2 * width`` channels, 3x3 kernels, ReLU, 2x2 max-pooling),
    adaptive average pooling to 2x2, then ``Linear -> ReLU`` to the embedding, as the release's
    nets end with ``relu(fc1(.))``. Adaptive pooling makes the same net work for any size.

    Parameters
    ----------
    in_channels : int
        1 for grey images, 3 for colour.
    n_classes : int
    image_size : int or (height, width)
        Input size; at least 4 pixels on each side.
    width : int
        Channels of the first block.
    embed_dim : int
        Dimension of z.
    dropout : float
        Dropout on z before the head in training (0.5, like the release's CNNs).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        image_size: int | Sequence[int] = 32,
        width: int = 32,
        embed_dim: int = 128,
        dropout: float = 0.5,
    ) -> None:
        in_channels = _check_positive(in_channels, "in_channels")
        n_classes = _check_positive(n_classes, "n_classes")
        width = _check_positive(width, "width")
        embed_dim = _check_positive(embed_dim, "embed_dim")
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) < 4:
            raise AlfavizInputError(
                f"SmallCNN needs images of at least 4x4 pixels; got image_size={image_size!r}."
            )
        if max(size) > 64:
            logger.info("SmallCNN on %s images: consider ResNet18 for images above 32 px", size)
        encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((2, 2)),
            nn.Flatten(),
            nn.Linear(2 * width * 4, embed_dim),
            nn.ReLU(inplace=True),
        )
        super().__init__(encoder, nn.Linear(embed_dim, n_classes), dropout)
        self.config: dict[str, Any] = {
            "name": "cnn",
            "in_channels": in_channels,
            "n_classes": n_classes,
            "image_size": list(size),
            "width": width,
            "embed_dim": embed_dim,
            "dropout": self.dropout.p,
        }


class MLP(SplitModel):
    """A multilayer perceptron for tabular data (inputs are flattened).

    Parameters
    ----------
    in_features : int
        Number of input features (``prod(input_shape)``).
    n_classes : int
    hidden : sequence of int
        Hidden layer sizes, each ``Linear -> ReLU``; z is the last hidden layer's output, so
        ``embed_dim = hidden[-1]`` (``in_features`` when ``hidden`` is empty: a linear model).
    dropout : float
        Dropout on z before the head in training (0.0, like the release's MLP).
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.0,
    ) -> None:
        in_features = _check_positive(in_features, "in_features")
        n_classes = _check_positive(n_classes, "n_classes")
        sizes = [_check_positive(h, "each hidden size") for h in hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in sizes:
            layers += [nn.Linear(prev, h), nn.ReLU(inplace=True)]
            prev = h
        super().__init__(nn.Sequential(*layers), nn.Linear(prev, n_classes), dropout)
        self.config = {
            "name": "mlp",
            "in_features": in_features,
            "n_classes": n_classes,
            "hidden": sizes,
            "dropout": self.dropout.p,
        }


class LinearProbe(SplitModel):
    """A linear classifier on pre-computed features: an identity encoder and one ``nn.Linear``.

    The embedding z is the input itself (flattened), so ALFA-Mix mixes the features as given,
    as in the paper's frozen-feature experiments, and only the head is trained.

    Parameters
    ----------
    in_features : int
        Number of features (``prod(input_shape)``); also ``embed_dim``.
    n_classes : int
    dropout : float
        Dropout on the features before the head in training (0.0 by default).

    Examples
    --------
    >>> model = LinearProbe(768, 10)
    >>> model.embed(torch.zeros(2, 768)).shape
    torch.Size([2, 768])
    """

    def __init__(self, in_features: int, n_classes: int, dropout: float = 0.0) -> None:
        in_features = _check_positive(in_features, "in_features")
        n_classes = _check_positive(n_classes, "n_classes")
        super().__init__(nn.Identity(), nn.Linear(in_features, n_classes), dropout)
        self.config: dict[str, Any] = {
            "name": "linear",
            "in_features": in_features,
            "n_classes": n_classes,
            "dropout": self.dropout.p,
        }


class ResNet18(SplitModel):
    """torchvision's ResNet-18 with its ``fc`` as the head; z is the 512-d pooled feature.

    Always built with ``weights=None`` (no downloads). For 1-channel input, ``conv1`` takes one
    channel; for small images (``image_size`` <= 64 px) it uses the CIFAR stem, a 3x3 stride-1
    ``conv1`` and no max-pool, so 32x32 inputs keep 4x4 maps at the last stage.

    Parameters
    ----------
    n_classes : int
    in_channels : int
        1 or 3 (any positive number works; only 3 matches ImageNet weights exactly).
    weights_path : path, optional
        A local ``state_dict`` file (``torch.save``) of a torchvision ResNet-18, of this class,
        or a checkpoint dict holding one under ``"state_dict"`` / ``"model"``. The backbone is
        loaded and the classifier (``fc.*`` / ``head.*``) ignored, since its class count may
        differ. 3-channel ``conv1`` weights are summed over channels for 1-channel input; a
        ``conv1`` of another kernel size (7x7 weights into the CIFAR stem) is left at random
        init, with a log warning.
    image_size : int or (height, width), optional
        Input size, used to choose the stem; None keeps torchvision's ImageNet stem.
    dropout : float
        Dropout on z before the head in training (0.2, like the release's ResNet classifier).
    """

    def __init__(
        self,
        n_classes: int,
        in_channels: int = 3,
        weights_path: str | os.PathLike[str] | None = None,
        image_size: int | Sequence[int] | None = None,
        dropout: float = 0.2,
    ) -> None:
        from torchvision.models import resnet18

        n_classes = _check_positive(n_classes, "n_classes")
        in_channels = _check_positive(in_channels, "in_channels")
        if image_size is None:
            small = False
            size: list[int] | None = None
        else:
            size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
            small = max(size) <= 64
        net = resnet18(weights=None)
        if small:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        head = nn.Linear(net.fc.in_features, n_classes)
        net.fc = nn.Identity()
        super().__init__(net, head, dropout)
        self.config = {
            "name": "resnet18",
            "n_classes": n_classes,
            "in_channels": in_channels,
            "weights_path": None if weights_path is None else str(weights_path),
            "image_size": size,
            "dropout": self.dropout.p,
        }
        if weights_path is not None:
            self.load_backbone(weights_path)

    def load_backbone(self, weights_path: str | os.PathLike[str]) -> None:
        """Load backbone weights from a local state_dict file (see the class docstring)."""
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise AlfavizInputError(
                f"weights_path {str(path)!r} does not exist. Pass a local file saved with "
                "torch.save(resnet18.state_dict(), path) (alfaviz never downloads weights)."
            )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AlfavizInputError(
                f"could not read {str(path)!r} as a PyTorch state_dict ({exc}). Save it with "
                "torch.save(model.state_dict(), path)."
            ) from exc
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        if not isinstance(obj, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
        ):
            raise AlfavizInputError(
                f"{str(path)!r} holds a {type(obj).__name__}, not a state_dict (a mapping of "
                "parameter names to tensors). Save model.state_dict(), not the model."
            )
        state = _backbone_state(obj)
        own = self.encoder.state_dict()
        if "conv1.weight" in state and state["conv1.weight"].shape != own["conv1.weight"].shape:
            w = state["conv1.weight"]
            if (
                w.shape[1] == 3
                and own["conv1.weight"].shape[1] == 1
                and (w.shape[2:] == own["conv1.weight"].shape[2:])
            ):
                state["conv1.weight"] = w.sum(dim=1, keepdim=True)
            else:
                logger.warning(
                    "conv1 weights of shape %s do not fit this model's conv1 %s (small-image "
                    "stem or other channels); conv1 keeps its random init",
                    tuple(w.shape),
                    tuple(own["conv1.weight"].shape),
                )
                del state["conv1.weight"]
        missing = [k for k in own if k not in state and k != "conv1.weight"]
        unexpected = [k for k in state if k not in own]
        wrong = [
            f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
            for k in state
            if k in own and state[k].shape != own[k].shape
        ]
        if missing or unexpected or wrong:
            raise AlfavizInputError(
                f"{str(path)!r} does not look like a ResNet-18 state_dict: "
                f"{len(missing)} missing key(s) {missing[:4]}, {len(unexpected)} unexpected "
                f"key(s) {unexpected[:4]}, {len(wrong)} shape mismatch(es) {wrong[:3]}. Use "
                "weights saved from torchvision.models.resnet18 or from alfaviz's ResNet18."
            )
        self.encoder.load_state_dict(state, strict=False)
        logger.info("loaded ResNet-18 backbone weights from %s", path)


def _backbone_state(obj: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Normalise key prefixes of a ResNet-18 state_dict and drop the classifier."""
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    for prefix in ("encoder.", "backbone.", "resnet."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    return {
        k: v.clone()
        for k, v in state.items()
        if not (k.startswith(("fc.", "head.", "dropout.")) or k == "fc" or k == "head")
    }


class _StopForward(BaseException):
    """Raised by the capture hook to skip the rest of a forward pass (never escapes)."""


class HookedSplitModel(nn.Module):
    """Wraps any network whose logits come from one named ``nn.Linear``.

    ``embed(x)`` runs the network up to that layer and returns its input (captured with a
    forward pre-hook, so arbitrary architectures work); ``forward(x)`` is the network's own
    forward. Built by :func:`split_model`.

    Parameters
    ----------
    model : nn.Module
    head_name : str
        Dotted name of the final ``nn.Linear`` inside ``model`` (e.g. ``"fc"``,
        ``"classifier.6"``). Its output must be the model's logits.
    """

    def __init__(self, model: nn.Module, head_name: str) -> None:
        super().__init__()
        self.model = model
        self.head_name = head_name

    @property
    def head(self) -> nn.Linear:
        """The wrapped model's final linear layer."""
        return self.model.get_submodule(self.head_name)  # type: ignore[return-value]

    @property
    def embed_dim(self) -> int:
        """``head.in_features``."""
        return int(self.head.in_features)

    @property
    def n_classes(self) -> int:
        """``head.out_features``."""
        return int(self.head.out_features)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input for ``x``, shape (n, embed_dim).

        The forward pass stops once the head is reached (its first call is captured).
        """
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            captured.append(args[0])
            raise _StopForward

        handle = self.head.register_forward_pre_hook(hook)
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if not captured:
            raise AlfavizInputError(
                f"the model's forward never called its {self.head_name!r} layer, so there is no "
                "embedding to capture; pass the head_name of the layer that makes the logits."
            )
        z = captured[0]
        if z.dim() != 2:
            raise AlfavizInputError(
                f"{self.head_name!r} receives input of shape {tuple(z.shape)}; ALFA-Mix needs one "
                "embedding vector per sample, shape (n, features)."
            )
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model's logits, shape (n, n_classes)."""
        return self.model(x)


def split_model(model: nn.Module, head_name: str | None = "fc") -> nn.Module:
    """Give a user's network the ALFA-Mix split (``embed`` and a linear ``head``).

    Parameters
    ----------
    model : nn.Module
        Any classifier whose logits are the output of one ``nn.Linear`` submodule.
    head_name : str or None
        Dotted name of that submodule (``"fc"`` for torchvision ResNets, ``"classifier.6"`` for
        VGG, ``"head"`` for many others). None picks the last ``nn.Linear`` registered.

    Returns
    -------
    nn.Module
        ``model`` itself when it already has ``embed`` and an ``nn.Linear`` ``head`` (e.g. a
        :class:`SplitModel`); otherwise a :class:`HookedSplitModel` wrapping it (sharing its
        parameters).
    """
    if not isinstance(model, nn.Module):
        raise AlfavizInputError(f"model must be a torch nn.Module; got {type(model).__name__}.")
    if callable(getattr(model, "embed", None)) and isinstance(
        getattr(model, "head", None), nn.Linear
    ):
        return model
    linears = _linear_names(model)
    if head_name is None:
        if not linears:
            raise AlfavizInputError(
                "model has no nn.Linear submodule to use as the head; ALFA-Mix needs a final "
                "linear layer (wrap yours with SplitModel(encoder, nn.Linear(...)))."
            )
        head_name = linears[-1]
        logger.info("split_model: using %r as the head", head_name)
    try:
        head = model.get_submodule(head_name)
    except AttributeError:
        head = None
    if not isinstance(head, nn.Linear):
        found = "none" if head is None else f"a {type(head).__name__}"
        raise AlfavizInputError(
            f"model has no nn.Linear named {head_name!r} (found {found}). Its nn.Linear "
            f"submodules are {linears or 'none'}; pass head_name= one of them, the layer that "
            "outputs the logits."
        )
    return HookedSplitModel(model, head_name)


MODELS: dict[str, str] = {
    "auto": "SmallCNN for images up to 32 px, ResNet18 for larger images, LinearProbe for "
    "pre-computed features, MLP for other tabular data",
    "cnn": "SmallCNN",
    "resnet18": "ResNet18",
    "mlp": "MLP",
    "linear": "LinearProbe (identity encoder + nn.Linear head, for pre-computed features)",
}
"""Names :func:`build_model` accepts, with what they build."""


def build_model(
    name: str, source: DataSource, *, seed: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build a built-in model sized for ``source``.

    Parameters
    ----------
    name : {"auto", "cnn", "resnet18", "mlp", "linear"}
        ``"auto"`` picks :class:`SmallCNN` for images whose sides are at most 32 px,
        :class:`ResNet18` for larger images, :class:`LinearProbe` for pre-computed features
        (:attr:`~alfaviz.data.DataSource.is_embeddings`, e.g. from
        :func:`~alfaviz.data.from_embeddings`), :class:`MLP` for other tabular data.
    source : DataSource
        Gives ``kind``, ``input_shape`` and ``n_classes``.
    seed : int, optional
        Seed for the weight initialisation (the global RNG is left untouched).
    **kwargs :
        Passed to the model (e.g. ``embed_dim``, ``dropout``, ``hidden``, ``weights_path``).

    Returns
    -------
    nn.Module
        A :class:`SplitModel` on the CPU, with a ``config`` dict that rebuilds it.
    """
    key = str(name).strip().lower()
    aliases = {
        "smallcnn": "cnn", "resnet": "resnet18", "resnet-18": "resnet18",
        "linearprobe": "linear", "linear_probe": "linear", "linear-probe": "linear",
    }  # fmt: skip
    key = aliases.get(key, key)
    if key not in MODELS:
        raise AlfavizInputError(
            f"unknown model {name!r}; choose one of {list(MODELS)} "
            "(or wrap your own network with split_model / SplitModel)."
        )
    shape = tuple(source.input_shape)
    is_image = source.kind == "image" and len(shape) == 3
    if key == "auto":
        if bool(getattr(source, "is_embeddings", False)):
            key = "linear"
        elif not is_image:
            key = "mlp"
        else:
            key = "cnn" if max(shape[1:]) <= 32 else "resnet18"
    if key in ("cnn", "resnet18") and not is_image:
        raise AlfavizInputError(
            f"model {key!r} needs image data of shape (C, H, W); {source.name} is {source.kind} "
            f"with input shape {shape}. Use 'mlp' (or 'auto')."
        )
    n_classes = int(source.n_classes)
    if key == "cnn":
        cls: type[SplitModel] = SmallCNN
        args: dict[str, Any] = {
            "in_channels": shape[0],
            "n_classes": n_classes,
            "image_size": shape[1:],
        }
    elif key == "resnet18":
        cls = ResNet18
        args = {"n_classes": n_classes, "in_channels": shape[0], "image_size": shape[1:]}
    elif key == "linear":
        cls = LinearProbe
        args = {"in_features": int(torch.Size(shape).numel()), "n_classes": n_classes}
    else:
        cls = MLP
        args = {"in_features": int(torch.Size(shape).numel()), "n_classes": n_classes}
    accepted = [p for p in inspect.signature(cls).parameters if p not in args]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise AlfavizInputError(
            f"model {key!r} ({cls.__name__}) got unknown option(s) {unknown}; it accepts "
            f"{accepted}."
        )
    args.update(kwargs)
    if seed is None:
        model = cls(**args)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(**args)
    logger.info(
        "built %s for %s: embed_dim=%d, %d parameters",
        cls.__name__,
        source.name,
        model.embed_dim,
        sum(p.numel() for p in model.parameters()),
    )
    return model
