"""The :class:`Engine` protocol and the in-process :class:`LocalEngine`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from alfaviz.errors import AlfavizInputError

__all__ = ["Engine", "LocalEngine", "row_shards"]

S = TypeVar("S")
R = TypeVar("R")


@runtime_checkable
class Engine(Protocol):
    """Maps a function over shards of work.

    Contract:

    * ``map(fn, shards)`` returns ``[fn(s) for s in shards]``: one result per shard, **in the
      order of** ``shards``, whatever order the work actually ran in;
    * ``fn`` is a pure function of its shard (it must not rely on state shared between
      shards), so shards may run in any order, in other processes or on other machines;
      ``fn`` and the shards must then be picklable (use module-level functions and
      :func:`functools.partial`, not lambdas);
    * an exception raised by ``fn`` for any shard propagates out of ``map``.
    """

    def map(self, fn: Callable[[S], R], shards: Sequence[S]) -> list[R]:
        """Apply ``fn`` to every shard; results in shard order."""
        ...


class LocalEngine:
    """The in-process engine: the shards run one after the other, in order."""

    def map(self, fn: Callable[[S], R], shards: Sequence[S]) -> list[R]:
        """Apply ``fn`` to every shard in order, in this process.

        Parameters
        ----------
        fn : callable
            Applied to each shard.
        shards : sequence
            The units of work.

        Returns
        -------
        list
            ``[fn(s) for s in shards]``.
        """
        return [fn(s) for s in shards]

    def __repr__(self) -> str:
        return "LocalEngine()"


def row_shards(n_rows: int, shard_size: int | None, *, align: int = 1) -> list[tuple[int, int]]:
    """Split ``range(n_rows)`` into contiguous ``(start, stop)`` shards.

    Parameters
    ----------
    n_rows : int
    shard_size : int or None
        Rows per shard; ``None`` gives one shard. Rounded up to a multiple of ``align``.
    align : int
        Every shard boundary is a multiple of ``align`` (the block size of the computation),
        so a shard computes exactly the blocks the whole pool would.

    Returns
    -------
    list of (int, int)
        At least one shard (``[(0, 0)]`` for an empty range).

    Raises
    ------
    AlfavizInputError
        If ``shard_size`` is not a positive integer.
    """
    if shard_size is None:
        return [(0, n_rows)]
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise AlfavizInputError(
            f"shard_size must be a positive integer (rows per shard) or None; got {shard_size!r}."
        )
    align = max(1, int(align))
    size = -(-shard_size // align) * align
    bounds = [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]
    return bounds or [(0, 0)]
