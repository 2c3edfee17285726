"""The strategy registry: every built-in strategy listed by name, and :func:`get_strategy`."""

from __future__ import annotations

from typing import Any

from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._alfamix import ALFAMix
from alfaviz.strategies._badge import BADGE
from alfaviz.strategies._bald import BALD
from alfaviz.strategies._base import Strategy
from alfaviz.strategies._coreset import CoreSet
from alfaviz.strategies._random import Random
from alfaviz.strategies._uncertainty import Entropy, LeastConfidence, Margin

__all__ = ["STRATEGIES", "get_strategy", "register"]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (ALFAMix, Random, Entropy, Margin, LeastConfidence, BALD, CoreSet, BADGE)
}
"""The strategies by name (lower case): the built-in ones, listed here, and any registered."""


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add a user-defined strategy to :data:`STRATEGIES` under ``cls.name``.

    Raises
    ------
    AlfavizInputError
        When ``cls`` is not a :class:`Strategy` subclass, or its ``__init__`` does not list
        its parameters explicitly (``*args`` or ``**kwargs``), so ``get_params`` could not
        read them.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise AlfavizInputError(f"register expects a Strategy subclass; got {cls!r}.")
    cls._get_param_names()  # raises for *args / **kwargs
    STRATEGIES[cls.name.lower()] = cls
    return cls


def get_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """Build a registered strategy by name (case-insensitive), or pass an instance through.

    Raises
    ------
    AlfavizInputError
        For an unknown name (the message lists the known ones), an unknown parameter (the
        message lists the valid ones) or a bad parameter value (checked by the constructor).
    """
    if isinstance(name, Strategy):
        if params:
            raise AlfavizInputError("pass parameters to the strategy's constructor, not here.")
        return name
    key = str(name).lower().replace("-", "").replace("_", "")
    for reg, cls in STRATEGIES.items():
        if reg.replace("-", "").replace("_", "") == key:
            cls._check_param_names(params)
            return cls(**params)
    raise AlfavizInputError(
        f"unknown strategy {name!r}; choose one of: {', '.join(sorted(STRATEGIES))}."
    )
