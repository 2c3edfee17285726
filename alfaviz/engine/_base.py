"""The :class:`Engine` protocol and the in-process :class:`LocalEngine`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from alfaviz.errors import AlfavizInputError

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "LocalEngine",
    "check_engine",
    "check_shard_size",
    "make_engine",
    "row_shards",
]

ENGINE_NAMES = ("local", "ray")
"""The engines :func:`make_engine` builds by name."""

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

    An engine may also say how many shards it runs at once, as an int attribute
    ``parallelism``; work that is cut into shards by row count then makes at least that many
    when the caller gives no shard size.
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
    shard_size = check_shard_size(shard_size)
    if shard_size is None:
        return [(0, n_rows)]
    align = max(1, int(align))
    size = -(-shard_size // align) * align
    bounds = [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]
    return bounds or [(0, 0)]


def check_shard_size(shard_size: object) -> int | None:
    """``shard_size`` as an int, or None; a clear error for anything else.

    Raises
    ------
    AlfavizInputError
        If ``shard_size`` is not None or a positive integer.
    """
    if shard_size is None:
        return None
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise AlfavizInputError(
            f"shard_size must be a positive integer (rows per shard) or None; got {shard_size!r}."
        )
    return int(shard_size)


def check_engine(engine: object) -> Engine | None:
    """``engine`` if it can map work over shards (or None); a clear error otherwise.

    Raises
    ------
    AlfavizInputError
        If ``engine`` has no callable ``map``; a name such as ``"ray"`` gets a hint to
        :func:`make_engine`.
    """
    if engine is None or callable(getattr(engine, "map", None)):
        return engine  # type: ignore[return-value]
    hint = ""
    if isinstance(engine, str):
        hint = f" To build one by name, use alfaviz.engine.make_engine({engine!r})."
    raise AlfavizInputError(
        f"engine must have a map(fn, shards) method (an alfaviz.engine.Engine); got "
        f"{type(engine).__name__}.{hint}"
    )


def make_engine(name: str | Engine | None = "local", **kwargs: object) -> Engine:
    """An engine by name: ``"local"`` (in-process) or ``"ray"`` (Ray Core actors).

    Parameters
    ----------
    name : {"local", "ray"} or Engine or None
        None means ``"local"``; an engine is returned as it is.
    **kwargs
        Passed to the engine, e.g. ``address="auto"`` for
        :class:`~alfaviz.engine.RayEngine`.

    Returns
    -------
    Engine

    Raises
    ------
    AlfavizInputError
        For an unknown name, or ``"ray"`` without Ray installed.
    """
    if name is None:
        name = "local"
    if not isinstance(name, str):
        engine = check_engine(name)
        assert engine is not None
        return engine
    key = name.strip().lower()
    if key == "local":
        if kwargs:
            raise AlfavizInputError(
                f"the local engine takes no options; got {', '.join(sorted(kwargs))}."
            )
        return LocalEngine()
    if key == "ray":
        from alfaviz.engine._ray import RayEngine

        return RayEngine(**kwargs)  # type: ignore[arg-type]
    raise AlfavizInputError(
        f"unknown engine {name!r}; choose one of {', '.join(map(repr, ENGINE_NAMES))}."
    )
