"""Engines that map a function over shards of work.

An :class:`Engine` is anything with ``map(fn, shards) -> list``: it applies ``fn`` to every
shard and returns the results in shard order. :class:`LocalEngine` does it in this process,
one shard after the other. :func:`~alfaviz.alfamix.candidates.find_candidates` uses an engine
to score the pool shard by shard (the strategy does not know it is distributed); a remote
engine (for instance one built on Ray) only has to honour the same protocol.
"""

from __future__ import annotations

from alfaviz.engine._base import Engine, LocalEngine, row_shards

__all__ = ["Engine", "LocalEngine", "row_shards"]
