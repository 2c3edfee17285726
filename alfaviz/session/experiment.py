"""Active-learning runs end to end: train, embed, query, label, retrain.

:class:`Experiment` is the Python entry point (``alfaviz run`` drives it) and the single writer
of a run. It owns a :class:`~alfaviz.session.Pool` (rebuilt from the label log and swapped in
whole after every change), a :class:`~alfaviz.learner.Learner`, the strategy and the
:class:`~alfaviz.store.RunStore`. Every label, human or oracle, goes into the store's SQLite log
before anything else sees it, and every change fires one :class:`~alfaviz.session.Event` on
the experiment's stream (``label``, ``skip``, ``undo``, ``round_started``, ``round_written``,
``paths``, ``scores``), which views observe. Nothing here prints.

Several experiments may have one run open at once (two dashboard tabs, a notebook and a
served page): each is its own session of the label log, so an undo only ever undoes its own
actions. :meth:`Experiment.sync` absorbs what the others committed (labels, rounds, derived
frames) and fires ``synced`` / ``round_written`` events for it; :meth:`Experiment.step`
runs one round of a run at a time and refuses, after catching up, when another session
wrote a round it has not seen.

Round ``r`` (:func:`~alfaviz.session.run_round`): train on the labelled set from the same
initial weights, measure test accuracy, embed the whole train pool, query ``budget`` samples,
compute 2-D coordinates; then the experiment writes the round (with the classifier head it
was queried with, so that :meth:`Experiment.project_paths` can later compute the interpolation
paths of any sample of that round, and :meth:`Experiment.compare_strategies` what any other
strategy would score and pick on it) and (with the oracle) labels the queried samples. Labels
requested in round ``r`` are first used for training in round ``r + 1``; ``labelled_round``
records exactly that (``0`` for the initial set, ``-1`` for unlabelled), the pattern baal
uses, and so does the ``round`` column of the label log.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz._checks import fresh_seed
from alfaviz.analysis.report import describe_round
from alfaviz.data import (
    DataSource,
    check_fingerprint,
    data_config,
    load_dataset,
    load_dataset_from_config,
)
from alfaviz.engine import Engine, LocalEngine, check_shard_size, make_engine
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import Learner, TrainConfig, build_model
from alfaviz.session.config import RunConfig, check_int, check_seed, seed_for
from alfaviz.session.events import Event, EventStream
from alfaviz.session.paths import BATCH_PATHS, ON_DEMAND_PATHS, PathProjector
from alfaviz.session.pool import Pool
from alfaviz.session.round import QUERIED_EXTRA, RoundOutcome, flips_critical_eps, run_round
from alfaviz.session.scores import COMPARE_SCORES, ScoreRecorder
from alfaviz.session.sharded_round import SHARDS_DIR, clear_round_files, run_sharded_round
from alfaviz.store import Parts, RunStore
from alfaviz.strategies import ALFAMix, QueryResult, Strategy, clone, get_strategy

__all__ = ["Callback", "Experiment", "LoggingCallback", "open_run"]

log = logging.getLogger(__name__)

INIT_STATE_FILE = "initial_state.pt"
STEP_LOCK_FILE = ".alfaviz-step.lock"
"""File in the run directory that :meth:`Experiment.step` holds an exclusive ``flock`` on
while it runs a round, so that two tabs or processes never run a round of one run at once.
It is never removed (removing a lock file races with the next writer); it holds no data."""
_DERIVED_EVENTS = {ON_DEMAND_PATHS: "paths", COMPARE_SCORES: "scores"}
PATHS_EXTRA = BATCH_PATHS
Labelling = Literal["oracle", "human"]


class Callback:
    """Observer of an :class:`Experiment`'s loop. Override any hook; all default to no-ops."""

    def on_round_start(self, exp: Experiment, round: int) -> None:
        """Called before training in ``round``."""

    def on_query_end(self, exp: Experiment, round: int, result: QueryResult) -> None:
        """Called once the strategy has picked the batch of ``round``."""

    def on_label(self, exp: Experiment, sample_id: int, label: int, source: str) -> None:
        """Called after a label is committed to the run store."""

    def on_round_end(self, exp: Experiment, round: int, row: Mapping[str, Any]) -> None:
        """Called after the round's artefacts are written; ``row`` is its ``rounds`` row."""


class LoggingCallback(Callback):
    """Logs one line per round through :mod:`logging` (level INFO)."""

    def on_round_end(self, exp: Experiment, round: int, row: Mapping[str, Any]) -> None:
        log.info("%s", describe_round(row))


def _default_out(data_name: str, strategy: str, seed: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / f"{data_name}-{strategy}-seed{seed}-{stamp}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


class Experiment:
    """An active-learning run with a run directory that loses nothing.

    Parameters
    ----------
    data : str or DataSource
        ``"digits"`` (built in, offline), a torchvision name, an image folder, a CSV path, or a
        :class:`~alfaviz.data.DataSource` (e.g. from ``from_arrays``).
    model : str or nn.Module
        ``"auto"``, ``"cnn"``, ``"resnet18"``, ``"mlp"``, or your own network exposing
        ``embed(x)`` and an ``nn.Linear`` ``head`` (see ``split_model``).
    strategy : str or Strategy
        A registered name (``"alfamix"``, ``"random"``, ``"entropy"``, ...) or an instance.
        Each round queries with a clone seeded by :func:`~alfaviz.session.seed_for`; an
        instance with ``random_state=None`` draws fresh entropy every round, and the seed
        actually used is recorded in the ``rounds`` frame (``random_state``).
    initial_size : int
        Size of the initial labelled set.
    budget : int
        Samples queried per round.
    seed : int
        Seeds the initial set, the model's initial weights, training and the strategy
        (0..2**63-1).
    out : path, optional
        Run directory (default ``runs/<data>-<strategy>-seed<seed>-<time>``).
    projection : {"auto", "umap", "pca", "none"}
        How the 2-D coordinates stored with each round are computed.
    initial : {"uniform", "per_class"}
        How the initial set is drawn.
    labelling : {"oracle", "human"}
        ``"oracle"`` labels queried samples with the known labels (simulation, teaching);
        ``"human"`` waits for :meth:`submit_label`.
    train : TrainConfig or dict, optional
        Training settings (the release's protocol by default).
    device : str, optional
        ``"cuda"`` or ``"cpu"``; CUDA when available by default.
    callbacks : iterable of Callback
    data_kwargs, model_kwargs, strategy_kwargs : dict, optional
        Passed to the data loader, ``build_model`` and the strategy's constructor.
    exist_ok : bool
        Allow ``out`` to exist already: an empty directory, or a run with the same config,
        which is then resumed (its initial set is not labelled again).
    data_spec : dict, optional
        With a ready ``DataSource``: the ``{"spec": ..., "kwargs": ...}`` it was loaded from,
        recorded so that :meth:`open` can load it again (checked against the data's
        fingerprint when the run is reopened).
    engine : str or Engine, optional
        Where each round's query maps its pool scoring over row shards: ``"local"`` (in this
        process, the default), ``"ray"`` (Ray Core actors, ``pip install 'alfaviz[ray]'``)
        or an :class:`~alfaviz.engine.Engine`. Results do not depend on it, so it is not part
        of the run's config; set :attr:`engine` to change it for later rounds.
    shard_size : int, optional
        Rows per shard for the engine (one shard per worker by default).
    sharded : bool, optional
        Run ALFA-Mix rounds as sharded rounds
        (:func:`~alfaviz.session.sharded_round.run_sharded_round`): the engine's workers
        embed and score the pool and write their shards' records into the run's ``shards/``
        folder, and this process keeps the candidates, never an (N, dim) or (N, n_classes)
        array. The records are the same either way. None (the default) means sharded
        rounds with any engine but the in-process one (``engine="ray"``), for the ALFA-Mix
        strategy; other strategies always run whole-pool rounds.
    """

    def __init__(
        self,
        data: str | DataSource = "digits",
        model: str | nn.Module = "auto",
        strategy: str | Strategy = "alfamix",
        *,
        initial_size: int = 20,
        budget: int = 10,
        seed: int = 0,
        out: str | Path | None = None,
        projection: str = "auto",
        initial: str = "uniform",
        labelling: Labelling = "oracle",
        train: TrainConfig | Mapping[str, Any] | None = None,
        device: str | None = None,
        callbacks: Iterable[Callback] = (),
        data_kwargs: Mapping[str, Any] | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        strategy_kwargs: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        data_spec: Mapping[str, Any] | None = None,
        engine: str | Engine | None = None,
        shard_size: int | None = None,
        sharded: bool | None = None,
        _store: RunStore | None = None,
    ) -> None:
        # settings: checked before anything is loaded or written -----------------------
        seed = check_seed(seed)
        self.shard_size = check_shard_size(shard_size)
        self.engine: Engine = make_engine(engine)
        if sharded is not None and not isinstance(sharded, bool):
            raise AlfavizInputError(f"sharded must be True, False or None; got {sharded!r}.")
        self.sharded = sharded
        if train is None:
            train_config = TrainConfig()
        elif isinstance(train, TrainConfig):
            train_config = train
        elif isinstance(train, Mapping):
            train_config = RunConfig(train=train).train_config()
        else:
            raise AlfavizInputError(f"train must be a TrainConfig or a dict; got {train!r}.")
        self._draft = RunConfig(
            initial_size=initial_size, budget=budget, seed=seed, projection=projection,
            initial=initial, labelling=labelling, train=train_config.to_dict(),
        )  # fmt: skip
        self.callbacks: list[Callback] = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise AlfavizInputError(
                    f"callbacks must be Callback instances; got {type(cb).__name__}."
                )
        self.events = EventStream()
        self._session = uuid.uuid4().hex

        # strategy (its parameters are checked when it is built) ------------------------
        skw = dict(strategy_kwargs or {})
        if isinstance(strategy, Strategy):
            if skw:
                raise AlfavizInputError(
                    "strategy_kwargs only apply to a strategy given by name; set the "
                    "parameters on the instance instead."
                )
            self.strategy = strategy
        else:
            skw.setdefault(schema.RANDOM_STATE, seed)
            self.strategy = get_strategy(strategy, **skw)
        if sharded and not isinstance(self.strategy, ALFAMix):
            raise AlfavizInputError(
                f"sharded rounds (sharded=True, or --sharded) run the sharded ALFA-Mix query; "
                f"the strategy is {self.strategy.name!r}. Use the strategy 'alfamix', or leave "
                "sharded unset."
            )

        # data -------------------------------------------------------------------------
        self._data_spec: dict[str, Any] | None = None
        if isinstance(data, DataSource):
            self.data = data
            if data_spec is not None:
                if not isinstance(data_spec, Mapping) or "spec" not in data_spec:
                    raise AlfavizInputError(
                        "data_spec must be a dict like {'spec': 'digits', 'kwargs': {}}; "
                        f"got {data_spec!r}."
                    )
                self._data_spec = data_config(
                    data_spec["spec"], data_spec.get("kwargs"), source=self.data
                )
        elif data_spec is not None:
            raise AlfavizInputError("data_spec goes with a DataSource; got a spec as data too.")
        else:
            kw = dict(data_kwargs or {})
            self.data = load_dataset(data, **kw)
            self._data_spec = data_config(data, kw, source=self.data)
        if self._draft.initial_size >= self.data.n_train:
            raise AlfavizInputError(
                f"initial_size {self._draft.initial_size} leaves nothing to query in a pool "
                f"of {self.data.n_train}; choose a smaller initial set."
            )

        # learner ----------------------------------------------------------------------
        self._model_spec: dict[str, Any] | None = None
        if isinstance(model, nn.Module):
            net = model
        else:
            mkw = dict(model_kwargs or {})
            net = build_model(model, self.data, seed=seed, **mkw)
            self._model_spec = {"name": str(model), "kwargs": _jsonable(mkw)}
        self.learner = Learner(net, train_config, device=device, n_classes=self.data.n_classes)

        # pool state and store ---------------------------------------------------------
        self._pool = Pool.empty(self.data.n_train)
        self._queried: np.ndarray = np.zeros(0, dtype=np.int64)
        self._prev_coords: np.ndarray | None = None
        self._projection_used = ""  # how the last round's coordinates were made
        self._rounds_done = 0
        self._projector: PathProjector | None = None
        self._projector_lock = threading.Lock()
        self._scorer: ScoreRecorder | None = None
        # what this object has absorbed of the run directory (see sync) ---------------------
        self._sync_lock = threading.RLock()
        self._stamp: tuple[Any, ...] | None = None
        self._seen_action = 0
        self._seen_derived: dict[tuple[int, str], str] = {}
        if _store is not None:
            self.store = _store
            return
        out_path = (
            Path(out) if out is not None else _default_out(self.data.name, self.strategy.name, seed)
        )
        ids = self._draw_initial()
        initial_labels = list(zip(ids.tolist(), self.data.labels(ids).tolist(), strict=True))
        buf = io.BytesIO()
        torch.save(self.learner.initial_state, buf)
        # one step: the config, the fingerprint, the initial weights and the initial labels
        # exist together or not at all; an existing run with the same config is resumed
        self.store = RunStore.create(
            out_path, self.config(), seed=seed, exist_ok=exist_ok,
            fingerprint=self.data.fingerprint(), initial_labels=initial_labels,
            files={INIT_STATE_FILE: buf.getvalue()}, session=self._session,
        )  # fmt: skip
        self._resume()

    # configuration ------------------------------------------------------------------------
    @property
    def run_config(self) -> RunConfig:
        """The settings :meth:`open` rebuilds the run from, as a :class:`RunConfig`."""
        return RunConfig(
            data=self._data_spec
            or {
                "spec": None,
                "summary": self.data.summary(),
                "fingerprint": self.data.fingerprint(),
            },
            model=self._model_spec or {"name": None, "class": type(self.model).__name__},
            strategy={
                "name": self.strategy.name,
                "params": _jsonable(self.strategy.get_params()),
            },
            initial_size=self._draft.initial_size,
            budget=self._draft.budget,
            seed=self._draft.seed,
            projection=self._draft.projection,
            initial=self._draft.initial,
            labelling=self._draft.labelling,
            train=self.learner.config.to_dict(),
            device=str(self.device),
        )

    def config(self) -> dict[str, Any]:
        """The JSON-ready settings that :meth:`open` rebuilds the run from."""
        return self.run_config.to_dict()

    seed = property(lambda self: self._draft.seed, doc="The run's seed.")
    initial_size = property(lambda self: self._draft.initial_size, doc="Initial set size.")
    budget = property(lambda self: self._draft.budget, doc="Samples queried per round.")
    projection = property(lambda self: self._draft.projection, doc="The 2-D projection.")
    initial = property(lambda self: self._draft.initial, doc="How the initial set is drawn.")
    labelling = property(lambda self: self._draft.labelling, doc="'oracle' or 'human'.")

    @property
    def model(self) -> nn.Module:
        """The split model (owned by :attr:`learner`)."""
        return self.learner.model

    @property
    def device(self) -> torch.device:
        """Where training, embedding and the query run."""
        return self.learner.device

    @property
    def train_config(self) -> TrainConfig:
        """The training settings (owned by :attr:`learner`)."""
        return self.learner.config

    @property
    def path(self) -> Path:
        """The run directory."""
        return self.store.path

    @property
    def round(self) -> int:
        """Number of rounds completed (the index of the next round)."""
        return self._rounds_done

    # events -------------------------------------------------------------------------------
    def subscribe(
        self, observer: Callable[[Event], None], kinds: Collection[str] | None = None
    ) -> Callable[[], None]:
        """Observe every change to the run; returns a function that unsubscribes.

        See :class:`~alfaviz.session.EventStream`. Observers run in the writer's thread and
        must be quick; one that raises is logged and skipped.
        """
        try:
            return self.events.subscribe(observer, kinds)
        except ValueError as exc:
            raise AlfavizInputError(str(exc)) from None

    def _emit(self, kind: Any, round: int, **fields: Any) -> None:
        self.events.emit(Event(kind, round, **fields))

    # initial set --------------------------------------------------------------------------
    def _draw_initial(self) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 17]))
        n = self.data.n_train
        k = self.initial_size
        if self.initial == "uniform":
            return np.sort(rng.choice(n, size=k, replace=False))
        y = self.data.y_train
        classes = np.unique(y)
        per = max(1, k // len(classes))
        chosen: list[int] = []
        for c in classes:
            members = np.flatnonzero(y == c)
            chosen.extend(rng.choice(members, size=min(per, members.size), replace=False).tolist())
        chosen_arr = np.array(chosen[:k], dtype=np.int64)
        if chosen_arr.size < k:
            rest = np.setdiff1d(np.arange(n), chosen_arr)
            extra = rng.choice(rest, size=k - chosen_arr.size, replace=False)
            chosen_arr = np.concatenate([chosen_arr, extra])
        return np.sort(chosen_arr)

    def _add_labels(self, ids: np.ndarray, labels: np.ndarray, *, round: int, source: str) -> None:
        """Commit many labels in one transaction (one fsync)."""
        pairs = [(int(s), int(lab)) for s, lab in zip(ids.tolist(), labels.tolist(), strict=True)]
        self._store_call("add_labels", pairs, round=round, source=source)

    # pool state ---------------------------------------------------------------------------
    def _refresh(self) -> Pool:
        """Rebuild the pool from the store's label log and swap it in whole.

        Reading and swapping happen under one lock, so a rebuild that read the log earlier
        never replaces one that read it later (the watcher thread and the UI thread both
        refresh).
        """
        with self._sync_lock:
            self._pool = Pool.from_log(
                self.data.n_train, self.store.labels(), self.store.skipped(), self._queried
            )
            return self._pool

    @property
    def pool(self) -> Pool:
        """The current :class:`~alfaviz.session.Pool` snapshot (immutable)."""
        return self._pool

    @property
    def labels(self) -> np.ndarray:
        """Live label of every train sample, ``-1`` for unlabelled, shape (n_train,)."""
        return self._pool.labels

    @property
    def labelled_round(self) -> np.ndarray:
        """Round whose training first used each label, ``-1`` for unlabelled (n_train,)."""
        return self._pool.labelled_round

    @property
    def labelled_ids(self) -> np.ndarray:
        """Global ids of the labelled train samples, shape (n_labelled,)."""
        return self._pool.labelled_ids

    @property
    def unlabelled_ids(self) -> np.ndarray:
        """Global ids of the unlabelled train pool, shape (n_unlabelled,)."""
        return self._pool.unlabelled_ids

    @property
    def pending(self) -> np.ndarray:
        """Ids queried in the last round that are neither labelled nor skipped yet."""
        return self._refresh().pending

    # other writers of the same run ----------------------------------------------------------
    def needs_sync(self) -> bool:
        """Whether anything was committed to the run since the last :meth:`sync` looked.

        One small SQL query (:meth:`~alfaviz.store.RunStore.change_stamp`); nothing is read
        or absorbed. It is also true after this session's own actions, until :meth:`sync`
        has looked (and found nothing new).
        """
        with self._sync_lock:
            return self.store.change_stamp() != self._stamp

    def sync(self) -> bool:
        """Absorb what other tabs or processes committed to the run directory since.

        Each dashboard page, notebook or ``alfaviz`` process has its own ``Experiment`` on the
        run, and each is a session of the label log. This reads the store's
        :meth:`~alfaviz.store.RunStore.change_stamp` (one small SQL query, well under a
        millisecond) and returns at once when nothing changed, so it can be polled about once
        a second (``RunData.watch`` does). Otherwise it catches up:

        * rounds another writer wrote: :attr:`round`, the pending batch and the frames move
          to them, and one ``round_written`` event per new round is fired (``payload``: the
          round's row of :attr:`rounds`, with ``synced: True``);
        * labels, skips and undos of other sessions: the pool is rebuilt from the log and one
          ``synced`` event is fired for all of them (``payload``: ``actions``, their number,
          ``sample_ids`` and ``synced: True``; ``action_id`` is the last one);
        * derived frames another writer replaced (interpolation paths projected or strategies
          compared elsewhere): one ``paths`` or ``scores`` event per round and frame
          (``payload``: ``persisted: True``, ``synced: True`` and empty ``sample_ids`` or
          ``strategies``).

        This session's own actions are never reported again, and callbacks are not called for
        other sessions' labels (they observe this object's own loop). Safe to call from any
        thread; events are fired in the calling thread.

        Returns
        -------
        bool
            Whether anything another writer committed was absorbed.
        """
        with self._sync_lock:
            stamp = self.store.change_stamp()
            if stamp == self._stamp:
                return False
            actions = self.store.actions_since(self._seen_action)
            derived = self.store.derived_versions()
            done = self.store.rounds_written()
            n_done = (max(done) + 1) if done else 0
            new_rounds = list(range(self._rounds_done, n_done))
            if new_rounds:
                self._load_rounds(done)
            foreign = [a for a in actions if a[schema.SESSION] != self._session]
            if foreign or new_rounds:
                self._refresh()
            changed = sorted(
                key for key, sha in derived.items()
                if self._seen_derived.get(key) != sha and key[0] < self._rounds_done
                and key[1] in _DERIVED_EVENTS
            )  # fmt: skip
            self._stamp = stamp
            if actions:
                self._seen_action = max(self._seen_action, int(actions[-1][schema.ACTION_ID]))
            self._seen_derived = derived
            rows: dict[int, dict[str, Any]] = {}
            if new_rounds:
                frame = self.rounds
                for rec in frame[frame[schema.ROUND].isin(new_rounds)].to_dict("records"):
                    rows[int(rec[schema.ROUND])] = _jsonable(rec)
        for r in new_rounds:
            log.info("%s: round %d was written by another session", self.path, r)
            self._emit("round_written", r, payload={**rows.get(r, {}), "synced": True})
        if foreign:
            ids = sorted({int(a[schema.SAMPLE_ID]) for a in foreign})
            self._emit(
                "synced", self._rounds_done, action_id=int(foreign[-1][schema.ACTION_ID]),
                payload={"actions": len(foreign), "sample_ids": ids, "synced": True},
            )  # fmt: skip
        for r, name in changed:
            kind = _DERIVED_EVENTS[name]
            what = "sample_ids" if kind == "paths" else "strategies"
            self._emit(kind, r, payload={what: [], "persisted": True, "synced": True})
        return bool(new_rounds or foreign or changed)

    def _note_own_derived(self, round: int, name: str) -> None:
        """Count this session's own new version of a derived frame as seen by :meth:`sync`."""
        with self._sync_lock:
            current = self.store.derived_versions().get((int(round), name))
            if current is not None:
                self._seen_derived[(int(round), name)] = current

    @contextlib.contextmanager
    def _exclusive_round(self) -> Iterator[None]:
        """Hold the run's :data:`STEP_LOCK_FILE` (``flock``) or refuse: one round at a time."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: write_round still refuses duplicates
            yield
            return
        try:
            fd = os.open(self.path / STEP_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only run: write_round says so
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunStoreError(
                    f"another session (a tab, notebook or process) is running a round of "
                    f"{self.path} right now; wait for it to finish, then look at its round "
                    "before running the next one."
                ) from None
            yield
        finally:
            os.close(fd)  # releases the lock

    # labels -------------------------------------------------------------------------------
    def _check_sample(self, sample_id: Any) -> int:
        if isinstance(sample_id, bool) or not isinstance(sample_id, (int, np.integer)):
            raise AlfavizInputError(f"sample_id must be an integer id; got {sample_id!r}.")
        sid = int(sample_id)
        if not 0 <= sid < self.data.n_train:
            raise AlfavizInputError(
                f"sample_id {sid} is not in the train pool (ids 0..{self.data.n_train - 1})."
            )
        return sid

    def _check_label(self, label: Any) -> int:
        names = list(self.data.class_names)
        if isinstance(label, str):
            if label in names:
                return names.index(label)
            raise AlfavizInputError(f"unknown class name {label!r}; classes are {names}.")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise AlfavizInputError(f"label must be a class id or name; got {label!r}.")
        if not 0 <= int(label) < self.data.n_classes:
            raise AlfavizInputError(
                f"label {int(label)} is out of range; class ids are 0..{self.data.n_classes - 1}."
            )
        return int(label)

    def submit_label(self, sample_id: int, label: int | str, *, source: str = "human") -> int:
        """Record a label for ``sample_id``, committed to disk before this returns.

        Parameters
        ----------
        sample_id : int
            Global id in the train pool.
        label : int or str
            Class id or class name.
        source : str
            Who labelled it (``"human"``, ``"oracle"``).

        Returns
        -------
        int
            The id of the action row in the label log.
        """
        sid = self._check_sample(sample_id)
        lab = self._check_label(label)
        if not isinstance(source, str) or not source:
            raise AlfavizInputError(f"source must be a non-empty string; got {source!r}.")
        action = int(
            self._store_call("add_label", sid, lab, round=self._rounds_done, source=source)
        )
        self._refresh()
        for cb in self.callbacks:
            cb.on_label(self, sid, lab, source)
        self._emit(
            "label", self._rounds_done, sample_id=sid, label=lab, source=source, action_id=action
        )
        return action

    def skip(self, sample_id: int) -> int:
        """Record that ``sample_id`` was skipped (it stays unlabelled)."""
        sid = self._check_sample(sample_id)
        action = int(self._store_call("add_skip", sid, round=self._rounds_done))
        self._refresh()
        self._emit("skip", self._rounds_done, sample_id=sid, source="human", action_id=action)
        return action

    def undo(self) -> dict[str, Any] | None:
        """Undo this session's most recent human label or skip; returns it, or None.

        Never undoes the initial set, an oracle label, or a label made by another session
        (another tab or process) on the same run.
        """
        row = self._store_call("undo", source="human")
        self._refresh()
        if row is not None:
            self._emit(
                "undo", self._rounds_done, sample_id=int(row[schema.SAMPLE_ID]),
                source=row.get(schema.SOURCE), action_id=int(row[schema.ACTION_ID]),
                payload=dict(row),
            )  # fmt: skip
        return row

    def _store_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a label-log method of the store as this session."""
        return getattr(self.store, name)(*args, session=self._session, **kwargs)

    # the loop -----------------------------------------------------------------------------
    def _round_strategy(self, r: int) -> Strategy:
        """A clone of the strategy, seeded for round ``r``."""
        strat = clone(self.strategy)
        if schema.RANDOM_STATE in strat.get_params():
            base = self.strategy.get_params()[schema.RANDOM_STATE]
            seed = fresh_seed() if base is None else seed_for(base, r)
            strat.set_params(**{schema.RANDOM_STATE: seed})
        return strat

    def _project(self, z: np.ndarray) -> np.ndarray | None:
        if self.projection == "none":
            return None
        from alfaviz.analysis.projection import project_2d

        coords, self._projection_used = project_2d(
            z,
            method=self.projection,
            previous=self._prev_coords,
            random_state=self.seed,
            with_method=True,
        )
        return coords

    def step(self) -> dict[str, Any]:
        """Run one round: train, evaluate, embed, query, project, record, label (oracle).

        One round of a run runs at a time, whichever tab or process asks: the round holds an
        exclusive lock on the run (:data:`STEP_LOCK_FILE`), and first catches up with
        :meth:`sync`. A stale experiment (another session wrote a round since it last looked)
        therefore never writes a duplicate round: it catches up and refuses, so that the
        next round is run only by someone who has seen the last one.

        Returns
        -------
        dict
            The round's row of the ``rounds`` frame.

        Raises
        ------
        RunStoreError
            If another session is running a round of this run now, or wrote one since this
            experiment last synced (it has caught up when this is raised: call ``step()``
            again to run the next round), or the run is read-only.
        """
        with self._exclusive_round():
            before = self._rounds_done
            self.sync()
            if self._rounds_done != before:
                raise RunStoreError(
                    f"round {before} of {self.path} was written meanwhile by another session "
                    f"(a tab, notebook or process); this experiment has caught up and is now at "
                    f"round {self._rounds_done}. Look at it, then call step() again to run "
                    f"round {self._rounds_done}."
                )
            return self._step()

    def _step(self) -> dict[str, Any]:
        r = self._rounds_done
        pool = self._refresh()
        if self.labelling == "human" and pool.pending.size:
            log.warning(
                "round %d starts with %d queried samples still unlabelled", r, pool.pending.size
            )
        for cb in self.callbacks:
            cb.on_round_start(self, r)
        self._emit("round_started", r)

        def on_query(result: QueryResult) -> None:
            for cb in self.callbacks:
                cb.on_query_end(self, r, result)

        self._projection_used = ""
        strategy = self._round_strategy(r)
        args: dict[str, Any] = dict(
            learner=self.learner, data=self.data, pool=pool, strategy=strategy,
            budget=self.budget, train_seed=self.seed * 100_003 + r, project=self._project,
            on_query=on_query if self.callbacks else None, engine=self.engine,
            shard_size=self.shard_size,
        )  # fmt: skip
        shards = self.path / SHARDS_DIR
        sharded = self.uses_sharded_rounds
        out = run_sharded_round(r, folder=shards, **args) if sharded else run_round(r, **args)
        out.row[schema.PROJECTION] = self._projection_used if out.coords is not None else ""
        row = self._commit_round(out)
        if sharded:  # the round's files now hold the records
            clear_round_files(shards, r, keep_manifest=True)
        for cb in self.callbacks:
            cb.on_round_end(self, r, row)
        self._emit("round_written", r, payload=row)
        return row

    @property
    def uses_sharded_rounds(self) -> bool:
        """Whether the next round is a sharded round (see ``sharded``)."""
        if not isinstance(self.strategy, ALFAMix):
            return False
        if self.sharded is None:
            return not isinstance(self.engine, LocalEngine)
        return self.sharded

    def _commit_round(self, out: RoundOutcome) -> dict[str, Any]:
        """Write the round and (with the oracle) the labels of its batch, as one unit."""
        import time

        r = out.round
        t0 = time.perf_counter()
        extra = {QUERIED_EXTRA: out.queried}
        if out.paths is not None:
            extra[PATHS_EXTRA] = out.paths
        ids = out.selected_ids
        truth = self.data.labels(ids) if self.labelling == "oracle" else None
        labels = None
        if truth is not None:
            pairs = zip(ids.tolist(), truth.tolist(), strict=True)
            labels = [(int(s), int(lab), "oracle") for s, lab in pairs]
        with self._sync_lock:  # sync() sees the round before it is written or after this
            try:
                emb_ids = None
                if not isinstance(out.embeddings, Parts):
                    emb_ids = np.arange(self.data.n_train, dtype=np.int64)
                crit: Any = out.critical_eps
                crit_ids = None
                if isinstance(crit, tuple):
                    crit_ids, crit = crit
                self.store.write_round(
                    r, samples=out.samples, flips=out.flips, rounds_row=out.row,
                    embeddings=out.embeddings, embedding_ids=emb_ids, coords=out.coords,
                    extra=extra, head=_head_state(self.learner.head), critical_eps=crit,
                    critical_eps_ids=crit_ids, labels=labels, label_round=r + 1,
                    session=self._session,
                )  # fmt: skip
            except RunStoreError as exc:
                if r not in self.store.rounds_written():
                    raise
                raise RunStoreError(
                    f"round {r} of {self.path} was written meanwhile by another session; this "
                    "round was not recorded. Call sync() to catch up, look at that round, then "
                    "run the next one."
                ) from exc
            row = dict(out.row)
            row[schema.time_column("store")] = time.perf_counter() - t0
            if out.coords is not None:
                self._prev_coords = out.coords[[schema.X, schema.Y]].to_numpy(dtype=np.float64)
            self._queried = ids
            self._rounds_done = r + 1
            self._refresh()
        if truth is not None:
            for sid, lab in zip(ids.tolist(), truth.tolist(), strict=True):
                for cb in self.callbacks:
                    cb.on_label(self, int(sid), int(lab), "oracle")
                self._emit("label", r + 1, sample_id=int(sid), label=int(lab), source="oracle")
        return row

    def run(self, rounds: int, *, progress: bool = False) -> pd.DataFrame:
        """Run ``rounds`` rounds and return the ``rounds`` frame.

        With ``labelling="human"`` each round after the first needs the previous batch to be
        labelled through :meth:`submit_label`; run one round at a time then.
        """
        rounds = check_int(rounds, "rounds", minimum=0)
        it: Iterable[int] = range(rounds)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="rounds", total=rounds)
        for _ in it:
            if self.unlabelled_ids.size == 0:
                log.info("pool exhausted after %d rounds", self._rounds_done)
                break
            self.step()
        return self.rounds

    # frames -------------------------------------------------------------------------------
    @property
    def samples(self) -> pd.DataFrame:
        """One row per (round, sample_id) over the train pool, all rounds."""
        return schema.conform(self.store.read_samples(), schema.SAMPLES)

    @property
    def flips(self) -> pd.DataFrame:
        """One row per (round, sample_id, anchor_class): the inconsistency heatmap's data.

        A large pool's round keeps only its candidates' and selected samples' rows (the only
        samples that flip); :meth:`critical_eps` gives the critical ε of every pair.
        """
        return schema.conform(self.store.read_flips(), schema.FLIPS)

    def critical_eps(self, round: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The critical ε of every (sample, anchor) pair the round's query scored.

        A large pool's round (more than ``ALFAMix.full_flips_max_pairs`` pairs) keeps only
        the candidates' and selected samples' rows in :attr:`flips` and stores this matrix
        instead; for a smaller one it is read off the flips frame. Either way the values are
        the same, as float32.

        Parameters
        ----------
        round : int, optional
            A written round; the latest by default.

        Returns
        -------
        ids : numpy.ndarray of int64, shape (n,)
            The sample ids the query scored (the round's unlabelled pool); empty for a
            strategy that records no flips.
        matrix : numpy.ndarray of float32, shape (n, n_classes)
            Row ``i`` for ``ids[i]``, column ``c`` for anchor class ``c``; inf where the pair
            never flips.
        """
        r = self._paths.check_round(round)
        if self.store.has_critical_eps(r):
            return self.store.read_critical_eps(r)
        return flips_critical_eps(self.store.read_flips(r), self.data.n_classes)

    @property
    def rounds(self) -> pd.DataFrame:
        """One row per round: level, candidates, accuracy and phase timings."""
        return schema.conform(self.store.read_rounds(), schema.ROUNDS)

    @property
    def label_log(self) -> pd.DataFrame:
        """Every labelling action (label, skip, undo) in order."""
        return self.store.actions()

    # interpolation paths ------------------------------------------------------------------
    @property
    def _paths(self) -> PathProjector:
        with self._projector_lock:
            if self._projector is None:
                self._projector = PathProjector(
                    self.store,
                    self.data.n_train,
                    self.data.n_classes,
                    lambda: getattr(self.strategy, "path_steps", None),
                )
            return self._projector

    def project_paths(self, sample_ids: Any, round: int | None = None) -> pd.DataFrame:
        """The interpolation paths of any samples in a written round, computed once.

        For each sample and each class anchor, the head's prediction at ``path_steps``
        points ``t`` from 0 (the sample's embedding, so the first point predicts its
        pseudo-label) to 1 (the anchor), each placed on the round's stored 2-D layout: the
        same computation as the batch's paths stored with the round
        (:func:`~alfaviz.session.round.interpolation_paths`), from what the round stored (its
        embeddings, layout, training labels and classifier head). A batch sample's paths
        therefore equal the stored ones up to float rounding.

        Paths are computed only for samples not projected before in that round; the others
        are read back. The round's projected paths are stored with the run (the round's
        derived ``paths`` frame, see :meth:`~alfaviz.store.RunStore.write_derived`), so that
        a later call, a reopened run and the dashboard find them (:meth:`round_paths`). A run
        open read-only keeps them in memory instead, for the life of this object. When new
        paths were added, one ``paths`` event is fired (``payload``: ``sample_ids``, the
        new ones, and ``persisted``).

        Parameters
        ----------
        sample_ids : int or array-like of int
            Global ids in the train pool, at most
            :data:`~alfaviz.session.MAX_PATH_SAMPLES` (256) distinct ones per call;
            duplicates are dropped and an empty list gives an empty frame.
        round : int, optional
            A written round; the latest by default.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.PATHS`: one row per (sample, anchor, t), the
            samples in the order asked for, then by anchor class and ``t``. ``x`` and ``y``
            are NaN when the run stores no 2-D layout (``projection="none"``).

        Raises
        ------
        AlfavizInputError
            For an id outside the train pool, more than 256 samples, a round not written yet,
            or ids that are not integers.
        RunStoreError
            If the round was written by an earlier alfaviz that did not store its classifier
            head (its batch's paths are still in :meth:`round_paths`), or is damaged.
        """
        result = self._paths.project(sample_ids, round)
        if result.new_ids.size:
            self._note_own_derived(result.round, ON_DEMAND_PATHS)
            self._emit(
                "paths", result.round,
                payload={"sample_ids": result.new_ids.tolist(), "persisted": result.persisted},
            )  # fmt: skip
        return result.paths

    def round_paths(self, round: int | None = None) -> pd.DataFrame:
        """The interpolation paths known for ``round``: its batch's, then any projected since.

        The paths stored with the round for its batch come first; those that
        :meth:`project_paths` added for other samples follow (a batch sample appears once,
        with its stored paths).

        Parameters
        ----------
        round : int, optional
            A written round; the latest by default.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.PATHS`.
        """
        return self._paths.round_paths(self._paths.check_round(round))

    # other strategies on the same round ----------------------------------------------------
    @property
    def _scores(self) -> ScoreRecorder:
        with self._projector_lock:
            if self._scorer is None:
                self._scorer = ScoreRecorder(
                    self.store,
                    self.data.n_train,
                    self.data.n_classes,
                    self.seed,
                    lambda: self.strategy.name,
                )
            return self._scorer

    def compare_strategies(
        self, strategies: str | Sequence[str] | None = None, round: int | None = None
    ) -> pd.DataFrame:
        """What other strategies would score and pick on a written round, computed once.

        Each strategy's own :meth:`~alfaviz.strategies.Strategy.query` (built by
        :func:`~alfaviz.strategies.get_strategy` with its default parameters) runs on exactly
        the inputs the round's query saw, read back from what the round stored: its
        embeddings, the samples labelled at the start of the round with their labels then
        (before its batch was labelled), its classifier head and its budget. Its seed
        (``random_state``) is :func:`~alfaviz.session.config.comparison_seed` of the run's
        seed, the round and the strategy's name, so the result depends on nothing else (not
        on which other strategies are asked for, nor on the order). Every built-in strategy
        runs from these alone, BALD included: its MC dropout masks the embedding before the
        head, as it does in a BALD run.

        Each (round, strategy) is queried once: the round's results are stored with the run
        (its derived ``scores`` frame, see :meth:`~alfaviz.store.RunStore.write_derived`) and
        read back by later calls, a reopened run and the dashboard (:meth:`round_scores`,
        ``RunData.samples``, which carries them as ``score:<strategy>`` columns). A run open
        read-only keeps them in memory instead, for the life of this object. When some were
        added, one ``scores`` event is fired (``payload``: ``strategies``, the new names, and
        ``persisted``).

        The run's own strategy may be asked for by name: its rows are the round's own
        records (the ``score`` column of its samples frame, its queried batch and the seed in
        its ``rounds`` row), not a new query, and are not stored again.

        Parameters
        ----------
        strategies : str or sequence of str, optional
            Registered names (case, ``-`` and ``_`` do not matter; duplicates are dropped).
            By default every registered strategy other than the run's own, in registry order.
        round : int, optional
            A written round; the latest by default.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.STRATEGY_SCORES`: one row per (strategy,
            sample) of the round's unlabelled pool, the strategies in the order asked for, the
            samples by id. ``score`` is float32 (NaN where a strategy gives none, ``-inf``
            for ALFA-Mix's never-flipping samples), ``picked`` marks the strategy's batch
            (``budget`` samples, or the whole pool if smaller), ``order`` its pick order
            (``-1`` if not picked) and ``random_state`` the seed its query used (the same on
            every row of a strategy).

        Raises
        ------
        AlfavizInputError
            For an unknown strategy name, names that are not strings, no round written yet,
            or a round not written.
        RunStoreError
            If the round is damaged, or was written by an earlier alfaviz without its
            classifier head and a strategy needs it (random and coreset do not).
        """
        result = self._scores.compare(strategies, round)
        if result.new:
            self._note_own_derived(result.round, COMPARE_SCORES)
            self._emit(
                "scores", result.round,
                payload={"strategies": list(result.new), "persisted": result.persisted},
            )  # fmt: skip
        return result.scores

    def round_scores(self, round: int | None = None) -> pd.DataFrame:
        """Every strategy :meth:`compare_strategies` recorded for ``round`` so far.

        Nothing is computed. The run's own strategy is not among them (its scores are the
        round's ``score`` column).

        Parameters
        ----------
        round : int, optional
            A written round; the latest by default.

        Returns
        -------
        pandas.DataFrame
            Conformed to :data:`~alfaviz.schema.STRATEGY_SCORES`, empty if none was recorded.
        """
        return self._scores.recorded(self._scores.check_round(round))

    # reopening ----------------------------------------------------------------------------
    def _resume(self) -> None:
        """Load the initial weights, the rounds done and the pending batch from the store."""
        if INIT_STATE_FILE in self.store.meta.get("files", {}):
            state = _load_state(self.store.read_file(INIT_STATE_FILE), self.store.path)
        elif (self.store.path / INIT_STATE_FILE).exists():  # runs written before files=
            state = _load_state((self.store.path / INIT_STATE_FILE).read_bytes(), self.store.path)
        else:
            state = None
        if state is not None:
            self.learner = Learner(
                self.learner.model, self.learner.config, device=self.learner.device,
                initial_state=state,
            )  # fmt: skip
        with self._sync_lock:
            self._mark_seen()  # before reading: anything committed later is new to sync()
            self._load_rounds(self.store.rounds_written())
            self._refresh()

    def _load_rounds(self, done: Sequence[int]) -> None:
        """Take the round count, last layout and pending batch from the written rounds."""
        self._rounds_done = (max(done) + 1) if done else 0
        if done:
            last = max(done)
            if any("coords" in a for a in self.store.artefacts(last)):
                c = self.store.read_coords(last)
                self._prev_coords = c[[schema.X, schema.Y]].to_numpy(dtype=np.float64)
            q = self.store.read_extra(last, QUERIED_EXTRA)
            self._queried = q[schema.SAMPLE_ID].to_numpy(dtype=np.int64)

    def _mark_seen(self) -> None:
        """Record the run directory as absorbed up to now (the baseline of :meth:`sync`)."""
        self._stamp = self.store.change_stamp()
        self._seen_action = int(self._stamp[0])
        self._seen_derived = self.store.derived_versions()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        data: DataSource | None = None,
        model: nn.Module | None = None,
        strategy: Strategy | None = None,
        callbacks: Sequence[Callback] = (),
        device: str | None = None,
        engine: str | Engine | None = None,
        shard_size: int | None = None,
        sharded: bool | None = None,
    ) -> Experiment:
        """Reopen a run directory exactly (frames and labels) so that it can resume.

        Runs made from a named dataset, a built-in model and a registered strategy rebuild
        themselves from ``config.json``; otherwise pass ``data``, ``model`` or ``strategy``.
        Opening executes nothing from the run directory: the config is checked field by
        field, and the initial weights are loaded as plain tensors.
        """
        session = uuid.uuid4().hex
        store = RunStore.open(path, session=session)
        cfg = RunConfig.from_dict(store.config)
        dspec = dict(cfg.data)
        if data is None:
            if not dspec.get("spec"):
                raise AlfavizInputError(
                    f"run {path} was made from in-memory data; pass data=<the DataSource>."
                )
            data = load_dataset_from_config(dspec, what=str(path))
        elif dspec.get("fingerprint") is not None:
            check_fingerprint(data, dspec["fingerprint"], what=f"the data passed to open {path}")
        store.check_fingerprint(data.fingerprint())
        mspec = dict(cfg.model)
        model_arg: str | nn.Module
        if model is None:
            if not mspec.get("name"):
                raise AlfavizInputError(f"run {path} used a custom model; pass model=<the module>.")
            model_arg = mspec["name"]
        else:
            model_arg = model
        sspec = dict(cfg.strategy)
        strat_arg: str | Strategy = strategy if strategy is not None else sspec["name"]
        exp = cls(
            data, model_arg, strat_arg, initial_size=cfg.initial_size, budget=cfg.budget,
            seed=cfg.seed, projection=cfg.projection, initial=cfg.initial,
            labelling=cast(Labelling, cfg.labelling), train=cfg.train, device=device,
            callbacks=callbacks,
            model_kwargs=mspec.get("kwargs") if model is None else None,
            strategy_kwargs=sspec.get("params") if strategy is None else None, _store=store,
            engine=engine, shard_size=shard_size, sharded=sharded,
        )  # fmt: skip
        exp._data_spec = dspec if dspec.get("spec") else None
        exp._session = session
        exp._resume()
        return exp


def _load_state(data: bytes, run: Path) -> dict[str, torch.Tensor]:
    """The initial weights, as plain tensors (``weights_only``: nothing in the file runs)."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunStoreError(
            f"{run / INIT_STATE_FILE} is corrupt or not a plain state dict "
            f"({type(exc).__name__}); restore it from a copy of the run."
        ) from None


def _head_state(head: nn.Module) -> dict[str, np.ndarray]:
    """The head's ``state_dict`` as float32 numpy arrays, for ``write_round(head=...)``."""
    return {
        k: v.detach().to("cpu", torch.float32).numpy().copy() for k, v in head.state_dict().items()
    }


def open_run(path: str | Path, **kwargs: Any) -> Experiment:
    """Reopen the run in directory ``path``; shorthand for :meth:`Experiment.open`.

    Parameters
    ----------
    path : str or Path
        A run directory written by :class:`Experiment` or ``alfaviz run``.
    **kwargs
        Passed to :meth:`Experiment.open` (``data``, ``model``, ``strategy``, ``callbacks``,
        ``device``, ``engine``, ``shard_size``, ``sharded``).

    Returns
    -------
    Experiment
    """
    return Experiment.open(path, **kwargs)
