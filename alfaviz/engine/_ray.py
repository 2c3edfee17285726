"""The Ray Core engine: shards run on actors, one per GPU or per CPU slot.

:class:`RayEngine` honours the :class:`~alfaviz.engine.Engine` protocol, so
:func:`~alfaviz.alfamix.candidates.find_candidates` (and through it the ALFA-Mix strategy, an
:class:`~alfaviz.session.Experiment` and ``alfaviz run --engine ray``) scores the pool on a
Ray cluster without knowing it. What travels:

* the function of a map (for the query: the anchors, the head and the level schedule) is put
  in the object store **once** per map, and every task refers to it;
* the tensors of each shard go in on their own, as NumPy arrays that the workers map without
  a copy; a later map of the very same tensor object, unchanged since, reuses the reference
  (the query's finishing pass does not send the pool again); a view of a larger tensor is
  copied first, so that only its own rows travel;
* each task returns its shard's result, moved to the CPU; read-only arrays out of the object
  store are copied, so the caller owns what it gets, as with the local engine.

A new engine waits for its actors to start, and says so clearly when the cluster has no room
for them (another engine holding its CPUs, for instance) instead of waiting forever.

Actors pin torch to their share of the cores (``torch.set_num_threads``): two processes that
each use every core run several times slower than one. An actor that dies mid-task (its
process killed, its node lost) is restarted and the task runs again; every result is taken
from exactly one successful run of its shard, by shard index, so nothing is counted twice.

Ray is an optional extra: ``pip install 'alfaviz[ray]'``. It is imported when an engine first
connects, never by ``import alfaviz``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from alfaviz.errors import AlfavizInputError

__all__ = ["RayEngine"]

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

RAY_MISSING = (
    "the ray engine needs Ray, which is not installed; install it with "
    "pip install 'alfaviz[ray]' (or pip install ray), or use the local engine."
)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AlfavizInputError(RAY_MISSING) from None
    return ray


def _walk(obj: Any, leaf: Callable[[Any], Any]) -> Any:
    """``obj`` rebuilt with ``leaf`` applied to everything that is not a container.

    Containers are :func:`functools.partial`, tuples (not named ones), lists, dicts and
    dataclass instances; ``leaf`` returns its argument unchanged for what it leaves alone.
    """
    if isinstance(obj, partial):
        return partial(
            _walk(obj.func, leaf),
            *(_walk(a, leaf) for a in obj.args),
            **{k: _walk(v, leaf) for k, v in obj.keywords.items()},
        )
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_walk(v, leaf) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, leaf) for v in obj]
    if isinstance(obj, dict):
        return {k: _walk(v, leaf) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name), leaf) for f in dataclasses.fields(obj)
                   if f.init}  # fmt: skip
        return dataclasses.replace(obj, **changes)
    return leaf(obj)


def _move(obj: Any, device: torch.device, *, copy_modules: bool) -> Any:
    """``obj`` with its tensors and modules on ``device``.

    A module is deep-copied first when ``copy_modules`` (the caller's own object is never
    moved in place); a tensor that is a view of a larger one is copied, so that only its own
    elements travel.
    """

    def leaf(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            out = x.detach().to(device)
            if out.data_ptr() == x.data_ptr() and _is_view(out):
                out = out.clone()
            return out
        if isinstance(x, nn.Module):
            if all(t.device == device for t in (*x.parameters(), *x.buffers())):
                return x
            return (copy.deepcopy(x) if copy_modules else x).to(device)
        return x

    return _walk(obj, leaf)


def _writable(obj: Any) -> Any:
    """``obj`` with its read-only NumPy arrays copied (Ray hands arrays out of its object
    store read-only, zero-copy; the caller owns what a map returns, as with the local
    engine)."""
    return _walk(obj, lambda x: x.copy() if _read_only(x) else x)


def _read_only(x: Any) -> bool:
    return isinstance(x, np.ndarray) and not x.flags.writeable


def _is_view(t: torch.Tensor) -> bool:
    return t.untyped_storage().nbytes() > t.numel() * t.element_size()


class _TensorRef:
    """A CPU tensor put in the object store on its own, as a NumPy array: workers map it
    without a copy, and a later map of the same tensor object sends the same reference.
    (Not a dataclass: :func:`_walk` must hand it to its leaf function whole.)"""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref


class _TensorRefs:
    """The object-store references of the shard tensors of the last map.

    A tensor is reused only if it is the very same object (a weak reference says so) and has
    not been changed in place since (its version counter); anything else is put again.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[weakref.ref[torch.Tensor], int, Any]] = {}
        self._now: dict[int, tuple[weakref.ref[torch.Tensor], int, Any]] = {}

    def pack(self, ray: Any, obj: Any) -> Any:
        """``obj`` with its CPU tensors replaced by :class:`_TensorRef` (others moved to the
        CPU as they are)."""

        def leaf(x: Any) -> Any:
            if not isinstance(x, torch.Tensor) or x.requires_grad:
                return _move(x, torch.device("cpu"), copy_modules=True)
            try:
                version = x._version
                hit = self._last.get(id(x)) or self._now.get(id(x))
                if hit is not None and hit[0]() is x and hit[1] == version:
                    ref = hit[2]
                else:
                    ref = ray.put(_move(x, torch.device("cpu"), copy_modules=True).numpy())
                self._now[id(x)] = (weakref.ref(x), version, ref)
                return _TensorRef(ref)
            except (TypeError, RuntimeError):  # no NumPy dtype (bfloat16, ...): as it is
                return _move(x, torch.device("cpu"), copy_modules=True)

        return _walk(obj, leaf)

    def rotate(self) -> None:
        """End of a map: its references are the ones the next map may reuse."""
        self._last, self._now = self._now, {}

    def clear(self) -> None:
        self._last, self._now = {}, {}


def _unpack(obj: Any) -> Any:
    """A shard with its :class:`_TensorRef` leaves read from the object store, without a
    copy (the tensors are read-only views of shared memory)."""
    import ray

    def leaf(x: Any) -> Any:
        if not isinstance(x, _TensorRef):
            return x
        arr = ray.get(x.ref)
        with warnings.catch_warnings():  # read-only: the shard functions never write to it
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr)

    return _walk(obj, leaf)


class _ShardWorker:
    """The actor: holds a device and a thread count, and runs functions on shards."""

    def __init__(self, threads: int, use_gpu: bool) -> None:
        torch.set_num_threads(threads)
        self.threads = threads
        cuda = use_gpu and torch.cuda.is_available()
        self.device = torch.device("cuda") if cuda else torch.device("cpu")

    def run(self, fn: Callable[[Any], Any], shard: Any) -> Any:
        shard = _unpack(shard)
        if self.device.type != "cpu":
            fn = _move(fn, self.device, copy_modules=False)
            shard = _move(shard, self.device, copy_modules=False)
        return _move(fn(shard), torch.device("cpu"), copy_modules=False)

    def describe(self) -> dict[str, Any]:
        import resource

        return {
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "device": str(self.device),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


class RayEngine:
    """Maps a function over shards on Ray Core actors; results in shard order.

    Parameters
    ----------
    address : str, optional
        The cluster to join: ``"auto"`` for one started with ``ray start --head`` on this
        machine, ``"host:port"`` for another, or None to use the Ray of this process (a new
        local one when there is none: never a cluster that happens to run here). Ignored when
        Ray is already initialised.
    workers : int, optional
        Number of actors. By default one per GPU of the cluster when it has GPUs (and
        ``gpus`` is not False), else one per CPU.
    gpus : bool, optional
        Put one actor on each GPU (``num_gpus=1``). By default: when the cluster has GPUs.
        A GPU actor works on CUDA when torch sees it, and on the CPU otherwise.
    threads : int, optional
        Torch threads per actor; by default the cluster's CPUs divided among the actors
        (at least 1). CPU actors reserve that many CPUs.
    max_retries : int
        How often an actor that died is restarted, and its task run again (3).
    progress : bool
        Show a ``tqdm`` bar over the shards of each map.
    init_kwargs : dict, optional
        Passed to ``ray.init`` when this engine starts or joins Ray (e.g. ``num_cpus``).

    Attributes
    ----------
    parallelism : int
        The number of actors (connects to Ray on first use).

    Notes
    -----
    Use it as a context manager, or call :meth:`close`, to stop the actors (and the Ray this
    engine started). Shards and results must be picklable; the function is sent once per
    :meth:`map`.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        gpus: bool | None = None,
        threads: int | None = None,
        max_retries: int = 3,
        progress: bool = False,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise AlfavizInputError(
                f"address must be 'auto', 'host:port' or None; got {address!r}."
            )
        for name, value in (("workers", workers), ("threads", threads)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise AlfavizInputError(
                    f"{name} must be a positive integer or None; got {value!r}."
                )
        if gpus is not None and not isinstance(gpus, bool):
            raise AlfavizInputError(f"gpus must be True, False or None; got {gpus!r}.")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise AlfavizInputError(f"max_retries must be an integer >= 0; got {max_retries!r}.")
        if init_kwargs is not None and not isinstance(init_kwargs, Mapping):
            raise AlfavizInputError(f"init_kwargs must be a dict; got {init_kwargs!r}.")
        self.address = address
        self.workers = workers
        self.gpus = gpus
        self.threads = threads
        self.max_retries = max_retries
        self.progress = bool(progress)
        self.init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None
        self._owns_ray = False
        self._actors: list[Any] = []
        self._layout: dict[str, Any] = {}
        self._refs = _TensorRefs()

    # connection and actors ------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._actors:
            return self._ray
        ray = _import_ray()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            kw.update(self.init_kwargs)
            _check_reachable(self.address)
            try:
                # None starts a new local Ray ("local"): never a cluster found by chance
                ray.init(address=self.address or "local", **kw)
            except (ConnectionError, TimeoutError, ray.exceptions.AuthenticationError) as exc:
                raise AlfavizInputError(_join_failed(self.address, exc)) from None
            self._owns_ray = True
        res = ray.cluster_resources()
        n_cpu = max(1, int(res.get("CPU", 1)))
        n_gpu = int(res.get("GPU", 0))
        use_gpu = bool(n_gpu) if self.gpus is None else self.gpus
        if use_gpu and not n_gpu:
            raise AlfavizInputError(
                "gpus=True, but the Ray cluster has no GPUs; leave gpus unset to use its CPUs."
            )
        n = self.workers or (n_gpu if use_gpu else n_cpu)
        threads = self.threads or max(1, n_cpu // n)
        opts: dict[str, Any] = {
            "max_restarts": self.max_retries,
            "max_task_retries": self.max_retries,
        }
        if use_gpu:
            opts.update(num_gpus=1, num_cpus=min(threads, max(1, n_cpu // n)))
        else:
            opts.update(num_cpus=threads)
        _check_free(ray, n, opts)
        actor = ray.remote(**opts)(_ShardWorker)
        actors = [actor.remote(threads, use_gpu) for _ in range(n)]
        try:  # each actor up and holding its share, so that the next engine sees it taken
            ray.get([a.describe.remote() for a in actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            for a in actors:
                ray.kill(a)
            raise AlfavizInputError(
                f"the {n} Ray workers did not start within {START_TIMEOUT_S:g} s: the cluster "
                f"has no room for them (free: {ray.available_resources()}). Close other "
                f"engines, or ask for fewer workers (workers=, threads=)."
            ) from None
        self._actors = actors
        self._layout = {"workers": n, "threads": threads, "gpus": use_gpu}
        self._ray = ray
        log.info("ray engine: %d %s workers, %d threads each", n, "GPU" if use_gpu else "CPU",
                 threads)  # fmt: skip
        return ray

    @property
    def parallelism(self) -> int:
        """The number of actors (shards that run at once)."""
        self._connect()
        return len(self._actors)

    def describe(self) -> list[dict[str, Any]]:
        """One dict per actor: its process id, threads, device and peak resident memory (MB)."""
        ray = self._connect()
        return list(ray.get([a.describe.remote() for a in self._actors]))

    def map(self, fn: Callable[[S], R], shards: Sequence[S]) -> list[R]:
        """Apply ``fn`` to every shard on the actors; results in shard order.

        Parameters
        ----------
        fn : callable
            A picklable function of one shard (a module-level function or a
            :func:`functools.partial` of one); sent to the object store once.
        shards : sequence
            The units of work; tensors travel as CPU copies of their own rows.

        Returns
        -------
        list
            ``[fn(s) for s in shards]``.

        Raises
        ------
        Exception
            The exception ``fn`` raised for a shard, as it was raised.
        """
        shards = list(shards)
        if not shards:
            return []
        ray = self._connect()
        cpu = torch.device("cpu")
        fn_ref = ray.put(_move(fn, cpu, copy_modules=True))
        refs: dict[int, Any] = {}

        def put(i: int) -> Any:  # a shard goes in when it is next, not all of them up front
            if i not in refs:
                refs[i] = ray.put(self._refs.pack(ray, shards[i]))
            return refs[i]

        results: list[Any] = [None] * len(shards)
        pending: dict[Any, tuple[int, Any]] = {}
        todo = list(range(len(shards)))[::-1]
        idle = list(self._actors)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(shards), desc=_task_name(fn), unit="shard", leave=False)
        try:
            while todo or pending:
                while todo and idle:
                    i, actor = todo.pop(), idle.pop()
                    pending[actor.run.remote(fn_ref, put(i))] = (i, actor)
                if todo:  # the next shard goes in while the workers compute
                    put(todo[-1])
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i, actor = pending.pop(ref)
                    results[i] = _get(ray, ref)
                    idle.append(actor)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            for ref in pending:
                ray.cancel(ref)
            self._refs.rotate()
        return results

    def close(self) -> None:
        """Stop the actors, and Ray itself when this engine started it."""
        ray, self._ray = self._ray, None
        actors, self._actors = self._actors, []
        self._refs.clear()
        if ray is None:
            return
        for a in actors:
            ray.kill(a)
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.address or "this machine"
        if not self._layout:
            return f"RayEngine({where})"
        lay = self._layout
        kind = "GPU" if lay["gpus"] else "CPU"
        threads = f"{lay['threads']} thread" + ("s" if lay["threads"] != 1 else "")
        return f"RayEngine({where}: {lay['workers']} {kind} workers × {threads})"


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast, with a clear error, when nothing listens at a ``host:port`` address (Ray
    itself retries for minutes)."""
    if address is None or address == "auto":
        return
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return  # not host:port; Ray parses it
    import socket

    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout):
            pass
    except OSError as exc:
        raise AlfavizInputError(_join_failed(address, exc, listening=False)) from None


def _join_failed(address: str | None, exc: BaseException, *, listening: bool = True) -> str:
    msg = (
        f"could not join the Ray cluster at {address!r} ({type(exc).__name__}: {exc}). Check "
        f"that it runs (`ray status`), or start one with `ray start --head`; leave the address "
        f"out to run Ray on this machine."
    )
    if listening and address not in (None, "auto") and os.environ.get("RAY_AUTH_MODE") is None:
        msg += (
            " Ray clusters use token authentication by default, and Ray sends the token only "
            "to an explicit address when RAY_AUTH_MODE=token is set: export RAY_AUTH_MODE=token "
            "(the token is read from ~/.ray/auth_token or RAY_AUTH_TOKEN), or use --address auto "
            "for a cluster on this machine."
        )
    return msg


START_TIMEOUT_S = 300.0
"""How long a new engine waits for its actors to start (a process each, importing torch)."""

FREE_WAIT_S = 10.0
"""How long a new engine waits for CPUs and GPUs just released (killed actors free them a
moment later) before it says the cluster is full."""


def _check_free(ray: Any, n: int, opts: Mapping[str, Any]) -> None:
    """A clear error, instead of actors that wait forever, when the cluster's free CPUs or GPUs
    cannot hold ``n`` workers (another engine, or other work, holds them)."""
    import time

    need = {what: n * float(opts.get(key, 0)) for key, what in (("num_cpus", "CPU"),
                                                                 ("num_gpus", "GPU"))}  # fmt: skip
    deadline = time.monotonic() + FREE_WAIT_S  # killed actors free their share a moment later
    while True:
        free = ray.available_resources()
        short = [w for w, k in need.items() if k > float(free.get(w, 0.0)) + 1e-9]
        if not short:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    what = short[0]
    raise AlfavizInputError(
        f"the Ray cluster has {float(free.get(what, 0.0)):g} free {what}s, and {n} workers need "
        f"{need[what]:g}: another engine or job holds the rest. Close it (engine.close()), or "
        f"ask for fewer workers (workers=, threads=)."
    )


def _task_name(fn: Any) -> str:
    """``"score shards"`` for ``_score_shard`` (a progress bar's label)."""
    while isinstance(fn, partial):
        fn = fn.func
    name = getattr(fn, "__name__", "shards").strip("_").replace("_", " ")
    return name if name.endswith("shards") else name.removesuffix(" shard") + " shards"


def _get(ray: Any, ref: Any) -> Any:
    """The result of a task; the function's own exception when it raised one."""
    try:
        return _writable(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
