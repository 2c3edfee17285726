"""Engines that map a function over shards of work.

An :class:`Engine` is anything with ``map(fn, shards) -> list``: it applies ``fn`` to every
shard and returns the results in shard order. :class:`LocalEngine` does it in this process,
one shard after the other. :func:`~alfaviz.alfamix.candidates.find_candidates` uses an engine
to score the pool shard by shard (the strategy does not know it is distributed); a remote
engine only has to honour the same protocol: :class:`RayEngine` runs the shards on Ray Core
actors (the optional extra ``alfaviz[ray]``), with results identical to the local engine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alfaviz.engine._base import (
    ENGINE_NAMES,
    Engine,
    LocalEngine,
    check_engine,
    check_shard_size,
    make_engine,
    row_shards,
)

if TYPE_CHECKING:
    from alfaviz.engine._ray import RayEngine

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "LocalEngine",
    "RayEngine",
    "check_engine",
    "check_shard_size",
    "make_engine",
    "row_shards",
]


def __getattr__(name: str) -> Any:
    if name == "RayEngine":  # Ray is an optional extra, imported only when asked for
        from alfaviz.engine._ray import RayEngine

        return RayEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
