"""Active-learning runs end to end: train, embed, query, label, retrain.

:class:`Experiment` is the Python entry point (the ``alfaviz run`` command drives it). It is the
single writer of a run's state: it owns the data source, the model, the strategy and the
:class:`~alfaviz.store._store.RunStore`, and every label, human or oracle, goes through it into
the store's SQLite log before anything else sees it. Callbacks observe the loop through four
hooks and do the recording; nothing here prints.

Round ``r``: train on the labelled set from the same initial weights, measure test accuracy,
embed the whole train pool, query ``budget`` samples, compute 2-D coordinates, write the round,
then (with the oracle) label the queried samples. Labels requested in round ``r`` are first used
for training in round ``r + 1``; ``labelled_round`` records exactly that (``0`` for the initial
set, ``-1`` for unlabelled), the pattern baal uses, and so does the ``round`` column of the
label log.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from alfaviz import schema
from alfaviz.data import DataSource, load_dataset
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner.models import build_model, split_model
from alfaviz.learner.training import (
    TrainConfig,
    default_device,
    embed,
    evaluate,
    train_model,
)
from alfaviz.store import RunStore
from alfaviz.strategies import QueryResult, Strategy, get_strategy

__all__ = ["Callback", "Experiment", "LoggingCallback", "open_run"]

log = logging.getLogger(__name__)

INIT_STATE_FILE = "initial_state.pt"
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
        log.info("%s", exp.describe_round(row))


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
    initial_size : int
        Size of the initial labelled set.
    budget : int
        Samples queried per round.
    seed : int
        Seeds the initial set, the model's initial weights, training and the strategy.
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
        Allow ``out`` to exist already (only as an empty directory or the same config).
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
        _store: RunStore | None = None,
    ) -> None:
        self.seed = _check_int(seed, "seed", minimum=0)
        self.initial_size = _check_int(initial_size, "initial_size", minimum=1)
        self.budget = _check_int(budget, "budget", minimum=1)
        if projection not in ("auto", "umap", "pca", "none"):
            raise AlfavizInputError(
                f"projection must be 'auto', 'umap', 'pca' or 'none'; got {projection!r}."
            )
        if initial not in ("uniform", "per_class"):
            raise AlfavizInputError(f"initial must be 'uniform' or 'per_class'; got {initial!r}.")
        if labelling not in ("oracle", "human"):
            raise AlfavizInputError(f"labelling must be 'oracle' or 'human'; got {labelling!r}.")
        self.projection = projection
        self.initial = initial
        self.labelling: Labelling = labelling
        self.callbacks: list[Callback] = list(callbacks)
        self.device = torch.device(device) if device else default_device()
        if train is None:
            self.train_config = TrainConfig()
        elif isinstance(train, TrainConfig):
            self.train_config = train
        else:
            try:
                self.train_config = TrainConfig(**dict(train))
            except TypeError as exc:
                raise AlfavizInputError(f"unknown training option: {exc}") from exc

        # data ---------------------------------------------------------------------------
        self._data_spec: dict[str, Any] | None = None
        if isinstance(data, DataSource):
            self.data = data
        else:
            kw = dict(data_kwargs or {})
            self.data = load_dataset(data, **kw)
            self._data_spec = {"spec": str(data), "kwargs": _jsonable(kw)}
        if self.initial_size >= self.data.n_train:
            raise AlfavizInputError(
                f"initial_size {self.initial_size} leaves nothing to query in a pool of "
                f"{self.data.n_train}; choose a smaller initial set."
            )

        # model --------------------------------------------------------------------------
        self._model_spec: dict[str, Any] | None = None
        if isinstance(model, nn.Module):
            self.model = model if hasattr(model, "embed") else split_model(model, head_name=None)
        else:
            mkw = dict(model_kwargs or {})
            self.model = build_model(model, self.data, seed=self.seed, **mkw)
            self._model_spec = {"name": str(model), "kwargs": _jsonable(mkw)}
        head = getattr(self.model, "head", None)
        if not isinstance(head, nn.Linear):
            raise AlfavizInputError(
                "the model's head must be an nn.Linear (ALFA-Mix mixes the head's input); "
                "wrap your network with split_model(model, head_name=...)."
            )
        if head.out_features != self.data.n_classes:
            raise AlfavizInputError(
                f"the model predicts {head.out_features} classes but {self.data.name} has "
                f"{self.data.n_classes}."
            )
        self.model.to(self.device)
        self._initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

        # strategy -----------------------------------------------------------------------
        skw = dict(strategy_kwargs or {})
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            skw.setdefault("random_state", self.seed)
            self.strategy = get_strategy(strategy, **skw)

        # pool state ---------------------------------------------------------------------
        n = self.data.n_train
        self.labelled_round = np.full(n, -1, dtype=np.int64)
        self.labels = np.full(n, -1, dtype=np.int64)
        self._pending: np.ndarray = np.zeros(0, dtype=np.int64)
        self._prev_coords: np.ndarray | None = None
        self._rounds_done = 0

        # run store ----------------------------------------------------------------------
        if _store is not None:
            self.store = _store
            return
        out_path = (
            Path(out)
            if out is not None
            else _default_out(self.data.name, self.strategy.name, self.seed)
        )
        self.store = RunStore.create(out_path, self.config(), seed=self.seed, exist_ok=exist_ok)
        torch.save(self._initial_state, self.store.path / INIT_STATE_FILE)
        self._label_initial_set()

    # configuration ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The JSON-ready settings that :meth:`open` rebuilds the run from."""
        return {
            "data": self._data_spec or {"spec": None, "summary": self.data.summary()},
            "model": self._model_spec or {"name": None, "class": type(self.model).__name__},
            "strategy": {
                "name": self.strategy.name,
                "params": _jsonable(self.strategy.get_params()),
            },
            "initial_size": self.initial_size,
            "budget": self.budget,
            "seed": self.seed,
            "projection": self.projection,
            "initial": self.initial,
            "labelling": self.labelling,
            "train": self.train_config.to_dict(),
            "device": str(self.device),
        }

    @property
    def path(self) -> Path:
        """The run directory."""
        return self.store.path

    @property
    def round(self) -> int:
        """Number of rounds completed (the index of the next round)."""
        return self._rounds_done

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

    def _label_initial_set(self) -> None:
        ids = self._draw_initial()
        truth = self.data.labels(ids)
        for sid, lab in zip(ids.tolist(), truth.tolist(), strict=True):
            self.store.add_label(int(sid), int(lab), round=0, source="initial")
        self._sync_labels()

    # labels -------------------------------------------------------------------------------
    def _sync_labels(self) -> None:
        """Rebuild the label arrays from the store's SQLite log (the single source of truth)."""
        df = self.store.labels()
        self.labels[:] = -1
        self.labelled_round[:] = -1
        if len(df):
            ids = df[schema.SAMPLE_ID].to_numpy(dtype=np.int64)
            keep = ids < self.data.n_train
            ids = ids[keep]
            self.labels[ids] = df["label"].to_numpy(dtype=np.int64)[keep]
            self.labelled_round[ids] = df["round"].to_numpy(dtype=np.int64)[keep]

    @property
    def labelled_ids(self) -> np.ndarray:
        """Global ids of the labelled train samples, shape (n_labelled,)."""
        return np.flatnonzero(self.labelled_round >= 0).astype(np.int64)

    @property
    def unlabelled_ids(self) -> np.ndarray:
        """Global ids of the unlabelled train pool, shape (n_unlabelled,)."""
        return np.flatnonzero(self.labelled_round < 0).astype(np.int64)

    @property
    def pending(self) -> np.ndarray:
        """Ids queried in the last round that are neither labelled nor skipped yet."""
        if not self._pending.size:
            return self._pending
        skipped = set()
        sk = self.store.skipped()
        if len(sk):
            skipped = set(sk[schema.SAMPLE_ID].tolist())
        keep = [
            s for s in self._pending.tolist() if self.labelled_round[s] < 0 and s not in skipped
        ]
        return np.array(keep, dtype=np.int64)

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
        action = self.store.add_label(sid, lab, round=self._rounds_done, source=source)
        self._sync_labels()
        for cb in self.callbacks:
            cb.on_label(self, sid, lab, source)
        return int(action)

    def skip(self, sample_id: int) -> int:
        """Record that ``sample_id`` was skipped (it stays unlabelled)."""
        sid = self._check_sample(sample_id)
        return int(self.store.add_skip(sid, round=self._rounds_done))

    def undo(self) -> dict[str, Any] | None:
        """Undo the most recent label or skip; returns the undone action, or None."""
        row = self.store.undo()
        self._sync_labels()
        return row

    # the loop -----------------------------------------------------------------------------
    def _labelled_training_data(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        ids = self.labelled_ids
        x = self.data.x_train[torch.as_tensor(ids)]
        y = torch.as_tensor(self.labels[ids], dtype=torch.long)
        return x, y, ids

    def step(self) -> dict[str, Any]:
        """Run one round: train, evaluate, embed, query, project, record, label (oracle).

        Returns
        -------
        dict
            The round's row of the ``rounds`` frame.
        """
        r = self._rounds_done
        self._sync_labels()
        if self.labelling == "human" and self.pending.size:
            log.warning(
                "round %d starts with %d queried samples still unlabelled", r, self.pending.size
            )
        for cb in self.callbacks:
            cb.on_round_start(self, r)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        x_l, y_l, lab_ids = self._labelled_training_data()
        stats = train_model(
            self.model, x_l, y_l, self.train_config, initial_state=self._initial_state,
            seed=self.seed * 100_003 + r, device=self.device,
        )  # fmt: skip
        times["time_train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        acc = evaluate(self.model, self.data.x_test, self.data.y_test)
        times["time_eval"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        z = embed(self.model, self.data.x_train).float()
        times["time_embed"] = time.perf_counter() - t0

        unl = self.unlabelled_ids
        if unl.size == 0:
            raise AlfavizInputError("the unlabelled pool is exhausted: every sample is labelled.")
        budget = min(self.budget, int(unl.size))
        strat = self._round_strategy(r)
        result = strat.query(
            z[torch.as_tensor(unl, device=z.device)], z[torch.as_tensor(lab_ids, device=z.device)],
            y_l.to(z.device), self.model.head, budget, unlabelled_ids=unl,
            labelled_ids=lab_ids, n_classes=self.data.n_classes,
        )  # fmt: skip
        times["time_query"] = float(result.info.get("time_query", math.nan))
        for cb in self.callbacks:
            cb.on_query_end(self, r, result)

        t0 = time.perf_counter()
        coords = self._project(z.cpu().numpy())
        times["time_project"] = time.perf_counter() - t0

        row = {
            schema.ROUND: r,
            schema.STRATEGY: self.strategy.name,
            schema.N_LABELLED: int(lab_ids.size),
            schema.LEVEL: float(result.info.get("level", math.nan)),
            schema.N_CANDIDATES: int(result.info.get("n_candidates", 0)),
            schema.N_KMEANS: int(result.info.get("n_kmeans", 0)),
            schema.N_FILL: int(result.info.get("n_fill", 0)),
            schema.ACCURACY: acc,
            "train_accuracy": stats.train_accuracy,
            "epochs": stats.epochs,
            "budget": budget,
            **times,
        }
        for k, v in result.info.items():
            if k.startswith("time_") and k not in row and isinstance(v, (int, float)):
                row[k] = float(v)
        t0 = time.perf_counter()
        self._write_round(r, z, coords, result, row)
        row["time_store"] = time.perf_counter() - t0
        self._prev_coords = coords
        self._pending = np.asarray(result.selected_ids, dtype=np.int64)
        self._rounds_done = r + 1
        if self.labelling == "oracle":
            truth = self.data.labels(self._pending)
            for sid, lab in zip(self._pending.tolist(), truth.tolist(), strict=True):
                self.store.add_label(int(sid), int(lab), round=r + 1, source="oracle")
                for cb in self.callbacks:
                    cb.on_label(self, int(sid), int(lab), "oracle")
            self._sync_labels()
        for cb in self.callbacks:
            cb.on_round_end(self, r, row)
        return row

    def run(self, rounds: int, *, progress: bool = False) -> pd.DataFrame:
        """Run ``rounds`` rounds and return the ``rounds`` frame.

        With ``labelling="human"`` each round after the first needs the previous batch to be
        labelled through :meth:`submit_label`; run one round at a time then.
        """
        rounds = _check_int(rounds, "rounds", minimum=0)
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

    def _round_strategy(self, r: int) -> Strategy:
        params = self.strategy.get_params()
        if "random_state" in params:
            base = params["random_state"] if params["random_state"] is not None else self.seed
            params["random_state"] = int(base) * 7919 + r
            try:
                return type(self.strategy)(**params)
            except TypeError:
                return self.strategy
        return self.strategy

    def _project(self, z: np.ndarray) -> np.ndarray | None:
        if self.projection == "none":
            return None
        from alfaviz.analysis.projection import project_2d

        return project_2d(
            z, method=self.projection, previous=self._prev_coords, random_state=self.seed
        )

    def _write_round(
        self, r: int, z: torch.Tensor, coords: np.ndarray | None, result: QueryResult, row: dict
    ) -> None:
        n = self.data.n_train
        ids = np.arange(n, dtype=np.int64)
        samples = _full_samples(result.samples, n)
        samples.insert(0, schema.ROUND, r)
        samples[schema.TRUE_LABEL] = self.data.y_train
        samples[schema.LABEL] = self.labels.copy()
        samples["labelled_round"] = self.labelled_round.copy()
        coord_df = None
        if coords is not None:
            samples[schema.X] = coords[:, 0]
            samples[schema.Y] = coords[:, 1]
            coord_df = pd.DataFrame(
                {schema.SAMPLE_ID: ids, schema.X: coords[:, 0], schema.Y: coords[:, 1]}
            )
        flips = result.flips.copy()
        flips.insert(0, schema.ROUND, r)
        extra = {
            "queried": pd.DataFrame(
                {
                    schema.SAMPLE_ID: np.asarray(result.selected_ids, dtype=np.int64),
                    "order": np.arange(len(result.selected_ids), dtype=np.int64),
                    schema.FILL: samples.set_index(schema.SAMPLE_ID)
                    .loc[result.selected_ids, schema.FILL]
                    .to_numpy(),
                }
            )
        }
        if result.paths is not None and len(result.paths):
            extra["paths"] = result.paths.reset_index(drop=True)
        self.store.write_round(
            r, samples=samples, flips=flips, rounds_row=row, embeddings=z.cpu().numpy(),
            embedding_ids=ids, coords=coord_df, extra=extra,
        )  # fmt: skip

    # frames -------------------------------------------------------------------------------
    @property
    def samples(self) -> pd.DataFrame:
        """One row per (round, sample_id) over the train pool, all rounds."""
        return self.store.read_samples()

    @property
    def flips(self) -> pd.DataFrame:
        """One row per (round, sample_id, anchor_class): the inconsistency heatmap's data."""
        return self.store.read_flips()

    @property
    def rounds(self) -> pd.DataFrame:
        """One row per round: level, candidates, accuracy and phase timings."""
        return self.store.read_rounds()

    @property
    def label_log(self) -> pd.DataFrame:
        """Every labelling action (label, skip, undo) in order."""
        return self.store.actions()

    def describe_round(self, row: Mapping[str, Any]) -> str:
        """One line summarising a round, for logs and the CLI."""
        lvl = row.get(schema.LEVEL, math.nan)
        lvl_s = "" if lvl is None or not np.isfinite(lvl) else f" level={lvl:.2f}"
        cand = f" candidates={row.get(schema.N_CANDIDATES, 0)}" if lvl_s else ""
        phases = ("time_train", "time_eval", "time_embed", "time_query", "time_project")
        secs = sum(float(row.get(k, 0.0)) for k in (*phases, "time_store"))
        return (
            f"round {row[schema.ROUND]}: {row[schema.N_LABELLED]} labelled, "
            f"test accuracy {row[schema.ACCURACY]:.3f},{lvl_s}{cand} "
            f"picked {row.get('budget', 0)} (fill {row.get(schema.N_FILL, 0)}), {secs:.1f}s"
        )

    # reopening ----------------------------------------------------------------------------
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
    ) -> Experiment:
        """Reopen a run directory exactly (frames and labels) so that it can resume.

        Runs made from a named dataset, a built-in model and a registered strategy rebuild
        themselves from ``config.json``; otherwise pass ``data``, ``model`` or ``strategy``.
        """
        store = RunStore.open(path)
        cfg = store.config
        dspec = cfg.get("data", {})
        if data is None:
            if not dspec.get("spec"):
                raise AlfavizInputError(
                    f"run {path} was made from in-memory data; pass data=<the DataSource>."
                )
            data = load_dataset(dspec["spec"], **dspec.get("kwargs", {}))
        mspec = cfg.get("model", {})
        model_arg: str | nn.Module
        if model is None:
            if not mspec.get("name"):
                raise AlfavizInputError(f"run {path} used a custom model; pass model=<the module>.")
            model_arg = mspec["name"]
        else:
            model_arg = model
        sspec = cfg.get("strategy", {})
        strat_arg: str | Strategy = (
            strategy if strategy is not None else sspec.get("name", "alfamix")
        )
        exp = cls(
            data, model_arg, strat_arg, initial_size=cfg["initial_size"], budget=cfg["budget"],
            seed=cfg["seed"], projection=cfg.get("projection", "auto"),
            initial=cfg.get("initial", "uniform"), labelling=cfg.get("labelling", "oracle"),
            train=cfg.get("train"), device=device, callbacks=callbacks,
            model_kwargs=mspec.get("kwargs") if model is None else None,
            strategy_kwargs=sspec.get("params") if strategy is None else None, _store=store,
        )  # fmt: skip
        exp._data_spec = dspec if dspec.get("spec") else None
        init = store.path / INIT_STATE_FILE
        if init.exists():
            try:
                state = torch.load(init, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise RunStoreError(f"{init} is corrupt or truncated: {exc}") from exc
            exp.model.load_state_dict(state)
            exp.model.to(exp.device)
            exp._initial_state = {k: v.detach().clone() for k, v in exp.model.state_dict().items()}
        done = store.rounds_written()
        exp._rounds_done = (max(done) + 1) if done else 0
        exp._sync_labels()
        if done:
            last = max(done)
            if any("coords" in a for a in store.artefacts(last)):
                c = store.read_coords(last)
                exp._prev_coords = c[[schema.X, schema.Y]].to_numpy()
            q = store.read_extra(last, "queried")
            exp._pending = q[schema.SAMPLE_ID].to_numpy(dtype=np.int64)
        return exp


def _full_samples(unlabelled: pd.DataFrame, n: int) -> pd.DataFrame:
    """Expand a strategy's per-unlabelled-sample frame to every train sample id ``0..n-1``."""
    full = pd.DataFrame({schema.SAMPLE_ID: np.arange(n, dtype=np.int64)})
    full = full.merge(unlabelled, on=schema.SAMPLE_ID, how="left")
    for col in (schema.CANDIDATE, schema.SELECTED, schema.FILL):
        full[col] = full[col].fillna(False).astype(bool)
    for col in (schema.CLUSTER, schema.PSEUDO_LABEL, schema.INCONSISTENCY):
        full[col] = full[col].fillna(-1 if col != schema.INCONSISTENCY else 0).astype(np.int64)
    for col in (schema.FIRST_FLIP_EPS, schema.CRITICAL_EPS):
        full[col] = full[col].astype(np.float64).fillna(np.inf)
    for col in (schema.PROB_MAX, schema.ENTROPY, schema.SCORE):
        full[col] = full[col].astype(np.float64)
    return full


def _check_int(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AlfavizInputError(f"{name} must be an integer; got {value!r}.")
    if int(value) < minimum:
        raise AlfavizInputError(f"{name} must be at least {minimum}; got {value}.")
    return int(value)


def open_run(path: str | Path, **kwargs: Any) -> Experiment:
    """Reopen the run in directory ``path``; shorthand for :meth:`Experiment.open`.

    Parameters
    ----------
    path : str or Path
        A run directory written by :class:`Experiment` or ``alfaviz run``.
    **kwargs
        Passed to :meth:`Experiment.open` (``data``, ``model``, ``strategy``, ``callbacks``,
        ``device``).

    Returns
    -------
    Experiment
    """
    return Experiment.open(path, **kwargs)
