"""The settings of a run, understood in one place.

:class:`RunConfig` is what ``config.json`` holds. Every reader of a run (the
:class:`~alfaviz.session.Experiment`, :func:`~alfaviz.session.open_run`, the comparison and the
command line) goes through :meth:`RunConfig.from_dict`, which checks every field. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from alfaviz._checks import MAX_SEED
from alfaviz.errors import AlfavizInputError

__all__ = [
    "INITIAL_CHOICES",
    "LABELLING_CHOICES",
    "MAX_SEED",
    "PROJECTION_CHOICES",
    "RunConfig",
    "check_int",
    "check_seed",
    "comparison_seed",
    "seed_for",
]

PROJECTION_CHOICES: tuple[str, ...] = ("auto", "umap", "pca", "none")
INITIAL_CHOICES: tuple[str, ...] = ("uniform", "per_class")
LABELLING_CHOICES: tuple[str, ...] = ("oracle", "human")


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """``value`` as an int, or an :class:`AlfavizInputError` naming ``name``.

    Bools and floats are refused, even when integral.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AlfavizInputError(f"{name} must be an integer; got {value!r}.")
    if minimum is not None and int(value) < minimum:
        raise AlfavizInputError(f"{name} must be at least {minimum}; got {value}.")
    return int(value)


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed in ``0..2**63-1``, or an :class:`AlfavizInputError` naming ``name``."""
    seed = check_int(value, name, minimum=0)
    if seed > MAX_SEED:
        raise AlfavizInputError(f"{name} must be at most 2**63-1; got {seed}.")
    return seed


def seed_for(seed: int, round: int) -> int:
    """The strategy seed of ``round`` in a run seeded with ``seed`` (stable across versions).

    Parameters
    ----------
    seed : int
        The strategy's base seed, in ``0..2**63-1``.
    round : int

    Returns
    -------
    int
        ``(seed * 7919 + round) mod 2**63``.
    """
    return (int(seed) * 7919 + int(round)) % (MAX_SEED + 1)


def comparison_seed(seed: int, round: int, strategy: str) -> int:
    """The seed of ``strategy``'s query on ``round`` in a strategy comparison of a run.

    Used by :meth:`~alfaviz.session.Experiment.compare_strategies`: each (round, strategy)
    gets its own seed, derived from the run's seed alone, so a comparison is reproducible and
    does not depend on which other strategies were asked for or in what order.

    Parameters
    ----------
    seed : int
        The run's seed, in ``0..2**63-1``.
    round : int
    strategy : str
        The strategy's registered name.

    Returns
    -------
    int
        The first 8 bytes of ``sha256("alfaviz-compare:<seed>:<round>:<strategy>")`` as a
        big-endian integer, masked to ``0..2**63-1`` (stable across versions and platforms).
    """
    text = f"alfaviz-compare:{int(seed)}:{int(round)}:{strategy}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise AlfavizInputError(f"{name} must be one of {options}; got {value!r}.")
    return value


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise AlfavizInputError(f"{name} must be a dict; got {type(value).__name__}.")
    return dict(value)


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run, as JSON-ready values.

    Attributes
    ----------
    data : dict
        ``{"spec": str, "kwargs": dict}`` for a dataset loaded by name, folder or file, or
        ``{"spec": None, "summary": dict}`` for in-memory data.
    model : dict
        ``{"name": str, "kwargs": dict}`` for a built-in model, or ``{"name": None,
        "class": str}`` for a user's module.
    strategy : dict
        ``{"name": str, "params": dict}``.
    initial_size, budget : int
        Size of the initial labelled set, and samples queried per round (both at least 1).
    seed : int
        In ``0..2**63-1``.
    projection : {"auto", "umap", "pca", "none"}
    initial : {"uniform", "per_class"}
    labelling : {"oracle", "human"}
    train : dict
        :class:`~alfaviz.learner.TrainConfig` fields.
    device : str
        The device the run was made on (informational; reopening may choose another).
    """

    data: Mapping[str, Any] = field(default_factory=lambda: {"spec": "digits", "kwargs": {}})
    model: Mapping[str, Any] = field(default_factory=lambda: {"name": "auto", "kwargs": {}})
    strategy: Mapping[str, Any] = field(default_factory=lambda: {"name": "alfamix", "params": {}})
    initial_size: int = 20
    budget: int = 10
    seed: int = 0
    projection: str = "auto"
    initial: str = "uniform"
    labelling: str = "oracle"
    train: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "data", _mapping(self.data, "data"))
        set_(self, "model", _mapping(self.model, "model"))
        set_(self, "strategy", _mapping(self.strategy, "strategy"))
        set_(self, "train", _mapping(self.train, "train"))
        set_(self, "initial_size", check_int(self.initial_size, "initial_size", minimum=1))
        set_(self, "budget", check_int(self.budget, "budget", minimum=1))
        set_(self, "seed", check_seed(self.seed))
        _choice(self.projection, "projection", PROJECTION_CHOICES)
        _choice(self.initial, "initial", INITIAL_CHOICES)
        _choice(self.labelling, "labelling", LABELLING_CHOICES)
        if not isinstance(self.device, str):
            raise AlfavizInputError(f"device must be a string; got {self.device!r}.")
        spec = self.data.get("spec")
        if spec is not None and not isinstance(spec, str):
            raise AlfavizInputError(f"data.spec must be a string or null; got {spec!r}.")
        if not isinstance(self.strategy.get("name"), str):
            raise AlfavizInputError("strategy.name must be a string naming a strategy.")

    # JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (what ``config.json`` stores)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """The config as JSON text, keys in a stable order."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Check and build a config from a dict (for example ``config.json``).

        Raises
        ------
        AlfavizInputError
            For an unknown key or a bad value; the message names the key.
        """
        d = _mapping(d, "config")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise AlfavizInputError(
                f"unknown run config keys {unknown}; a run config holds {sorted(known)}."
            )
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Check and build a config from JSON text."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise AlfavizInputError(f"the run config is not valid JSON: {exc}.") from None
        return cls.from_dict(d)

    def train_config(self) -> Any:
        """The :class:`~alfaviz.learner.TrainConfig` (imports torch)."""
        from alfaviz.learner.training import TrainConfig

        try:
            return TrainConfig(**dict(self.train))
        except TypeError as exc:
            raise AlfavizInputError(f"unknown training option: {exc}") from None


def _json_default(obj: Any) -> Any:
    """The store's JSON rules (numpy values, paths, sets), and text for anything else."""
    from alfaviz.store._io import _json_default as store_default

    if isinstance(obj, tuple):
        return list(obj)
    try:
        return store_default(obj)
    except TypeError:
        return str(obj)
