"""Every bad input gets one clear line, raised at the boundary, before anything is written.

One table of bad inputs across the public API, the strategies, the data loaders, the
Experiment, the run store and the command line. Each row says what a user got wrong and a
pattern the message must match; the test also checks that the message is a single line, that
it is one of alfaviz's own error types (never a torch, numpy or pandas internal), and that no
run folder was written.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alfaviz import alfamix_query, find_candidates
from alfaviz.cli import main
from alfaviz.data import from_arrays, from_dataframe, load_dataset, load_digits
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment, RunConfig, open_run
from alfaviz.store import RunStore
from alfaviz.strategies import BALD, ALFAMix, Entropy, Random, get_strategy

FAST = TrainConfig(max_epochs=2, min_steps=2)
ERRORS = (AlfavizInputError, RunStoreError)


# ---------------------------------------------------------------------------------------------
# a small, valid query problem; each row breaks one thing
# ---------------------------------------------------------------------------------------------


def _problem() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    head = nn.Linear(6, 3)
    return {
        "z_unlabelled": torch.randn(40, 6, generator=g),
        "z_labelled": torch.randn(9, 6, generator=g),
        "y_labelled": torch.arange(9) % 3,
        "head": head,
        "budget": 5,
    }


class _Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.lin(z).detach()


class _OneD(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.sum(dim=1)


def _fc(**change: Any) -> Callable[[Path], Any]:
    def call(_: Path) -> Any:
        args = _problem()
        kw = {k: change.pop(k) for k in list(change) if k not in args}
        args.update(change)
        return find_candidates(**args, **kw)

    return call


def _aq(**change: Any) -> Callable[[Path], Any]:
    def call(_: Path) -> Any:
        args = _problem()
        kw = {k: change.pop(k) for k in list(change) if k not in args}
        args.update(change)
        return alfamix_query(**args, **kw)

    return call


def _strategy_query(strategy: Any, **change: Any) -> Callable[[Path], Any]:
    def call(_: Path) -> Any:
        args = _problem()
        args.update(change)
        return strategy.query(**args)

    return call


# ---------------------------------------------------------------------------------------------
# helpers for the data, Experiment, store and CLI rows
# ---------------------------------------------------------------------------------------------


def _exp(**kw: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        args: dict[str, Any] = {
            "initial_size": 10, "budget": 5, "projection": "none", "train": FAST,
            "out": tmp / "run",
        }  # fmt: skip
        data = kw.pop("data", "digits")
        model = kw.pop("model", "auto")
        strategy = kw.pop("strategy", "random")
        args.update(kw)
        return Experiment(data, model, strategy, **args)

    return call


def _made_run(tmp: Path, labelling: str = "human") -> Experiment:
    out = tmp / "made"
    return Experiment(
        "digits", "auto", "random", initial_size=10, budget=5, projection="none", train=FAST,
        out=out, labelling=labelling,
    )  # fmt: skip


def _on_run(action: Callable[[Experiment], Any]) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        return action(_made_run(tmp))

    return call


def _after_round(action: Callable[[Experiment], Any]) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        exp = _made_run(tmp)
        exp.step()
        return action(exp)

    return call


def _df(**cols: Any) -> pd.DataFrame:
    return pd.DataFrame(cols)


def _dup_columns(_: Path) -> Any:
    df = pd.DataFrame(np.arange(12).reshape(4, 3), columns=["a", "a", "label"])
    return from_dataframe(df, target="label")


def _list_column(_: Path) -> Any:
    df = pd.DataFrame({"a": [[1, 2], [3, 4], [5, 6], [7, 8]], "label": [0, 1, 0, 1]})
    return from_dataframe(df, target="label")


def _truncated_image_folder(tmp: Path) -> Any:
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp / "imgs" / cls / f"{i}.png")
    bad = tmp / "imgs" / "dog" / "1.png"
    bad.write_bytes(bad.read_bytes()[:20])
    return load_dataset(str(tmp / "imgs"))


def _store_open_missing(tmp: Path) -> Any:
    return RunStore.open(tmp / "nowhere")


def _store_open_file(tmp: Path) -> Any:
    f = tmp / "file.txt"
    f.write_text("not a run")
    return RunStore.open(f)


def _store_open_no_config(tmp: Path) -> Any:
    (tmp / "empty").mkdir()
    return RunStore.open(tmp / "empty")


def _store_bad_config_json(tmp: Path) -> Any:
    exp = _made_run(tmp)
    (exp.path / "config.json").write_text("{ not json")
    return RunStore.open(exp.path)


def _store_labels_missing(tmp: Path) -> Any:
    exp = _made_run(tmp)
    exp.store.close()
    for p in exp.path.glob("labels.sqlite*"):
        p.unlink()
    return RunStore.open(exp.path)


def _store_labels_empty(tmp: Path) -> Any:
    exp = _made_run(tmp)
    exp.store.close()
    for p in exp.path.glob("labels.sqlite*"):
        p.unlink()
    sqlite3.connect(exp.path / "labels.sqlite").close()
    return RunStore.open(exp.path)


def _store_create(config: Any) -> Callable[[Path], Any]:
    return lambda tmp: RunStore.create(tmp / "new", config)


def _store_create_nonempty(tmp: Path) -> Any:
    (tmp / "busy").mkdir()
    (tmp / "busy" / "notes.txt").write_text("mine")
    return RunStore.create(tmp / "busy", {"seed": 0})


def _store_write(**change: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        store = RunStore.create(tmp / "s", {"seed": 0})
        args: dict[str, Any] = {
            "samples": pd.DataFrame({"sample_id": [0, 1]}),
            "flips": pd.DataFrame({"sample_id": [0]}),
            "rounds_row": {"accuracy": 0.5},
        }
        r = change.pop("round", 0)
        args.update(change)
        return store.write_round(r, **args)

    return call


def _store_label(*args: Any, **kw: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        store = RunStore.create(tmp / "s", {"seed": 0})
        return store.add_label(*args, **kw)

    return call


def _open_in_memory_run(tmp: Path) -> Any:
    src = load_digits()
    exp = Experiment(
        src, "auto", "random", initial_size=10, budget=5, projection="none", train=FAST,
        out=tmp / "mem",
    )  # fmt: skip
    exp.store.close()
    return open_run(exp.path)


def _open_hand_edited(key: str, value: Any) -> Callable[[Path], Any]:
    def call(tmp: Path) -> Any:
        exp = _made_run(tmp)
        exp.store.close()
        path = exp.path / "config.json"
        meta = json.loads(path.read_text())
        meta["config"][key] = value
        path.write_text(json.dumps(meta))
        return open_run(exp.path)

    return call


def _exist_ok_other_config(tmp: Path) -> Any:
    _made_run(tmp).store.close()
    return Experiment(
        "digits", "auto", "random", initial_size=10, budget=7, projection="none", train=FAST,
        out=tmp / "made", labelling="human", exist_ok=True,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    area: str
    what: str
    call: Callable[[Path], Any]
    match: str


P = _problem
BAD: list[Bad] = [
    # -- the method's functions -------------------------------------------------------------
    Bad("api", "embeddings as a Python list", _fc(z_unlabelled=[[0.0] * 6] * 40), r"Python list"),
    Bad("api", "labelled embeddings as a list", _fc(z_labelled=[[0.0] * 6] * 9), r"Python list"),
    Bad("api", "float16 vs float32 head", _fc(z_unlabelled=P()["z_unlabelled"].half()), "float16"),
    Bad(
        "api", "float64 vs float32 head", _fc(z_unlabelled=P()["z_unlabelled"].double()), "float64"
    ),
    Bad(
        "api",
        "bfloat16 vs float32 head",
        _fc(z_unlabelled=P()["z_unlabelled"].bfloat16()),
        "bfloat16",
    ),
    Bad("api", "1-D embeddings", _fc(z_unlabelled=torch.randn(40)), r"2-D"),
    Bad("api", "3-D embeddings", _fc(z_unlabelled=torch.randn(40, 2, 3)), r"2-D"),
    Bad(
        "api",
        "NaN in the pool",
        _fc(z_unlabelled=torch.full((40, 6), float("nan"))),
        r"NaN or inf",
    ),
    Bad(
        "api",
        "inf in the labelled set",
        _fc(z_labelled=torch.full((9, 6), float("inf"))),
        r"NaN or inf",
    ),
    Bad("api", "empty pool", _fc(z_unlabelled=torch.zeros(0, 6)), r"empty"),
    Bad("api", "empty labelled set", _fc(z_labelled=torch.zeros(0, 6), y_labelled=[]), r"empty"),
    Bad("api", "zero features", _fc(z_unlabelled=torch.zeros(40, 0)), r"0 features"),
    Bad("api", "feature mismatch", _fc(z_labelled=torch.randn(9, 5)), r"features"),
    Bad("api", "labels too short", _fc(y_labelled=torch.arange(8) % 3), r"shape \(9,\)"),
    Bad("api", "fractional labels", _fc(y_labelled=np.linspace(0, 2, 9)), r"integer class ids"),
    Bad("api", "label out of range", _fc(y_labelled=torch.full((9,), 7)), r"0\.\.2"),
    Bad("api", "negative label", _fc(y_labelled=torch.full((9,), -1)), r"0\.\.2"),
    Bad("api", "string labels", _fc(y_labelled=np.array(["a"] * 9)), r"integer class ids"),
    Bad("api", "head is None", _fc(head=None), r"head"),
    Bad("api", "head is a plain function", _fc(head=lambda z: z), r"plain function"),
    Bad("api", "head is not differentiable", _fc(head=_Detached()), r"not differentiable"),
    Bad("api", "head of the wrong width", _fc(head=nn.Linear(5, 3)), r"5-dimensional"),
    Bad("api", "head giving 1-D output", _fc(head=_OneD()), r"n_classes"),
    Bad("api", "budget 0", _fc(budget=0), r"budget"),
    Bad("api", "negative budget", _fc(budget=-3), r"budget"),
    Bad("api", "fractional budget", _fc(budget=2.5), r"budget"),
    Bad("api", "bool budget", _fc(budget=True), r"budget"),
    Bad("api", "string budget", _fc(budget="5"), r"budget"),
    Bad("api", "budget beyond the pool", _fc(budget=41), r"larger than the unlabelled pool"),
    Bad("api", "alpha_cap 0", _fc(alpha_cap=0.0), r"alpha_cap"),
    Bad("api", "negative alpha_cap", _fc(alpha_cap=-0.2), r"alpha_cap"),
    Bad("api", "bool alpha_cap", _fc(alpha_cap=True), r"alpha_cap"),
    Bad("api", "alpha_cap with 10000 levels", _fc(alpha_cap=1e-4), r"alpha_cap"),
    Bad("api", "string alpha_cap", _fc(alpha_cap="0.2"), r"alpha_cap"),
    Bad("api", "NaN alpha_cap", _fc(alpha_cap=float("nan")), r"alpha_cap"),
    Bad("api", "unknown alpha mode", _fc(alpha="optimal"), r"alpha"),
    Bad("api", "n_classes 1", _fc(n_classes=1), r"n_classes|2 classes"),
    Bad("api", "n_classes disagreeing with head", _fc(n_classes=4), r"n_classes"),
    Bad("api", "negative learn_steps", _aq(alpha="learned", learn_steps=-1), r"learn_steps"),
    Bad("api", "fractional learn_steps", _aq(alpha="learned", learn_steps=2.5), r"learn_steps"),
    Bad("api", "kmeans_n_init 0", _aq(kmeans_n_init=0), r"kmeans_n_init"),
    Bad("api", "fractional kmeans_n_init", _aq(kmeans_n_init=1.5), r"kmeans_n_init"),
    Bad("api", "negative random_state", _aq(random_state=-1), r"random_state"),
    Bad("api", "random_state beyond 2**63", _aq(random_state=2**63), r"random_state"),
    Bad("api", "bool random_state", _aq(random_state=True), r"random_state"),
    # -- strategies -------------------------------------------------------------------------
    Bad("strategy", "unknown name", lambda _: get_strategy("clever"), r"unknown strategy"),
    Bad("strategy", "empty name", lambda _: get_strategy(""), r"unknown strategy"),
    Bad("strategy", "bool alpha_cap", lambda _: ALFAMix(alpha_cap=True), r"alpha_cap"),
    Bad("strategy", "alpha_cap 0", lambda _: ALFAMix(alpha_cap=0), r"alpha_cap"),
    Bad("strategy", "alpha_cap 1e-5", lambda _: ALFAMix(alpha_cap=1e-5), r"alpha_cap"),
    Bad("strategy", "alpha_cap above 1", lambda _: ALFAMix(alpha_cap=1.5), r"alpha_cap"),
    Bad("strategy", "unknown alpha", lambda _: ALFAMix(alpha="magic"), r"alpha"),
    Bad("strategy", "negative learn_steps", lambda _: ALFAMix(learn_steps=-1), r"learn_steps"),
    Bad("strategy", "float path_steps", lambda _: ALFAMix(path_steps=1.5), r"path_steps"),
    Bad("strategy", "kmeans_n_init 0", lambda _: ALFAMix(kmeans_n_init=0), r"kmeans_n_init"),
    Bad("strategy", "n_draws 0", lambda _: BALD(n_draws=0), r"n_draws"),
    Bad("strategy", "dropout 1.5", lambda _: BALD(dropout=1.5), r"dropout"),
    Bad("strategy", "negative seed", lambda _: Random(random_state=-1), r"random_state"),
    Bad("strategy", "seed 2**63", lambda _: Random(random_state=2**63), r"random_state"),
    Bad("strategy", "bool seed", lambda _: Entropy(random_state=True), r"random_state"),
    Bad("strategy", "string seed", lambda _: Entropy(random_state="0"), r"random_state"),
    Bad(
        "strategy",
        "unknown parameter in set_params",
        lambda _: Random().set_params(speed=3),
        r"speed",
    ),
    Bad(
        "strategy",
        "parameters with an instance",
        lambda _: get_strategy(Random(), random_state=1),
        r"constructor",
    ),
    Bad(
        "strategy",
        "query with a list pool",
        _strategy_query(Entropy(), z_unlabelled=[[0] * 6]),
        r"Python list",
    ),
    Bad(
        "strategy",
        "entropy with a function head",
        _strategy_query(Entropy(), head=abs),
        r"plain function",
    ),
    # -- data ---------------------------------------------------------------------------------
    Bad("data", "dataset None", lambda _: load_dataset(None), r"dataset"),
    Bad("data", "dataset ''", lambda _: load_dataset(""), r"dataset"),
    Bad("data", "dataset of spaces", lambda _: load_dataset("   "), r"dataset"),
    Bad("data", "unknown dataset", lambda _: load_dataset("imagenet-9000"), r"imagenet-9000"),
    Bad("data", "missing CSV", lambda t: load_dataset(str(t / "nope.csv")), r"nope\.csv"),
    Bad("data", "digits with a negative seed", lambda _: load_digits(seed=-1), r"seed"),
    Bad("data", "digits with test_size 1.5", lambda _: load_digits(test_size=1.5), r"test_size"),
    Bad("data", "digits with test_size 0", lambda _: load_digits(test_size=0.0), r"test_size"),
    Bad(
        "data",
        "arrays of different lengths",
        lambda _: from_arrays(np.zeros((5, 2)), np.zeros(4)),
        r"5|4",
    ),
    Bad(
        "data",
        "NaN features",
        lambda _: from_arrays(np.full((6, 2), np.nan), np.arange(6) % 2),
        r"NaN|finite",
    ),
    Bad("data", "duplicate DataFrame columns", _dup_columns, r"duplicate"),
    Bad("data", "list-valued DataFrame column", _list_column, r"list|array"),
    Bad(
        "data",
        "missing target column",
        lambda _: from_dataframe(_df(a=[1, 2, 3, 4], b=[0, 1, 0, 1]), target="label"),
        r"label",
    ),
    Bad("data", "truncated image file", _truncated_image_folder, r"1\.png"),
    Bad(
        "data",
        "torchvision data not in root",
        lambda t: load_dataset("mnist", root=str(t / "none")),
        r"MNIST|mnist",
    ),
    # -- the Experiment -------------------------------------------------------------------------
    Bad("experiment", "seed -1", _exp(seed=-1), r"seed"),
    Bad("experiment", "seed 2**63", _exp(seed=2**63), r"seed"),
    Bad("experiment", "fractional seed", _exp(seed=1.5), r"seed"),
    Bad("experiment", "bool seed", _exp(seed=True), r"seed"),
    Bad("experiment", "initial_size 0", _exp(initial_size=0), r"initial_size"),
    Bad("experiment", "initial_size too big", _exp(initial_size=5000), r"initial_size"),
    Bad("experiment", "fractional initial_size", _exp(initial_size=2.5), r"initial_size"),
    Bad("experiment", "budget 0", _exp(budget=0), r"budget"),
    Bad("experiment", "string budget", _exp(budget="10"), r"budget"),
    Bad("experiment", "unknown projection", _exp(projection="tsne"), r"projection"),
    Bad("experiment", "unknown initial", _exp(initial="stratified"), r"initial"),
    Bad("experiment", "unknown labelling", _exp(labelling="robot"), r"labelling"),
    Bad("experiment", "negative lr", _exp(train={"lr": -1.0}), r"lr"),
    Bad("experiment", "string lr", _exp(train={"lr": "fast"}), r"lr"),
    Bad("experiment", "unknown train option", _exp(train={"speed": 2}), r"training option"),
    Bad("experiment", "train as a string", _exp(train="fast"), r"train"),
    Bad("experiment", "batch_size 0", _exp(train={"batch_size": 0}), r"batch_size"),
    Bad("experiment", "CUDA without a GPU", _exp(device="cuda:7"), r"device"),
    Bad("experiment", "unknown device", _exp(device="tpu"), r"device"),
    Bad("experiment", "device as a number", _exp(device=3), r"device"),
    Bad("experiment", "unknown strategy", _exp(strategy="clever"), r"unknown strategy"),
    Bad(
        "experiment",
        "bad strategy parameter",
        _exp(strategy="alfamix", strategy_kwargs={"alpha_cap": 0}),
        r"alpha_cap",
    ),
    Bad("experiment", "unknown model", _exp(model="vit-h"), r"vit-h"),
    Bad(
        "experiment",
        "model without a linear head",
        _exp(model=nn.Sequential(nn.ReLU())),
        r"nn\.Linear|head",
    ),
    Bad("experiment", "callback of the wrong type", _exp(callbacks=[object()]), r"callbacks"),
    Bad(
        "experiment",
        "strategy_kwargs with an instance",
        _exp(strategy=Random(), strategy_kwargs={"random_state": 1}),
        r"strategy_kwargs",
    ),
    Bad("experiment", "exist_ok with another config", _exist_ok_other_config, r"different"),
    Bad("label", "negative sample id", _on_run(lambda e: e.submit_label(-1, 0)), r"sample_id"),
    Bad("label", "id beyond the pool", _on_run(lambda e: e.submit_label(10**9, 0)), r"sample_id"),
    Bad("label", "string sample id", _on_run(lambda e: e.submit_label("3", 0)), r"sample_id"),
    Bad("label", "label out of range", _on_run(lambda e: e.submit_label(0, 99)), r"label 99"),
    Bad("label", "unknown class name", _on_run(lambda e: e.submit_label(0, "cat")), r"cat"),
    Bad("label", "bool label", _on_run(lambda e: e.submit_label(0, True)), r"label"),
    Bad("label", "empty source", _on_run(lambda e: e.submit_label(0, 1, source="")), r"source"),
    Bad("label", "fractional skip id", _on_run(lambda e: e.skip(1.5)), r"sample_id"),
    Bad("label", "run -1 rounds", _on_run(lambda e: e.run(-1)), r"rounds"),
    Bad("label", "run 1.5 rounds", _on_run(lambda e: e.run(1.5)), r"rounds"),
    Bad(
        "label",
        "unknown event kind",
        _on_run(lambda e: e.subscribe(print, kinds=["explode"])),
        r"explode",
    ),
    Bad("label", "observer not callable", _on_run(lambda e: e.subscribe(42)), r"callable"),
    # -- interpolation paths on demand ----------------------------------------------------------
    Bad("paths", "paths before any round", _on_run(lambda e: e.project_paths([1])), r"no round"),
    Bad(
        "paths",
        "paths of an id beyond the pool",
        _after_round(lambda e: e.project_paths([10**9])),
        r"sample_ids 1000000000 is not in the train pool",
    ),
    Bad(
        "paths",
        "paths of too many samples",
        _after_round(lambda e: e.project_paths(range(300))),
        r"at most 256 per call",
    ),
    Bad(
        "paths",
        "paths of a round not written",
        _after_round(lambda e: e.project_paths([1], round=3)),
        r"round 3 has not been written",
    ),
    Bad(
        "paths",
        "paths of string ids",
        _after_round(lambda e: e.project_paths(["7"])),
        r"integer sample ids",
    ),
    # -- other strategies on the same round -----------------------------------------------------
    Bad(
        "compare",
        "compare before any round",
        _on_run(lambda e: e.compare_strategies()),
        r"no round has been written yet",
    ),
    Bad(
        "compare",
        "compare with an unknown strategy",
        _after_round(lambda e: e.compare_strategies(["entropy", "clever"])),
        r"unknown strategy 'clever'; choose one of",
    ),
    Bad(
        "compare",
        "compare on a round not written",
        _after_round(lambda e: e.compare_strategies(round=3)),
        r"round 3 has not been written",
    ),
    Bad(
        "compare",
        "compare with a number for a name",
        _after_round(lambda e: e.compare_strategies([1])),
        r"strategies must be strategy names",
    ),
    Bad(
        "compare",
        "compare with a strategy instance",
        _after_round(lambda e: e.compare_strategies(Entropy())),
        r"strategies must be a strategy name or a list",
    ),
    # -- configs and reopening ----------------------------------------------------------------
    Bad("config", "unknown config key", lambda _: RunConfig.from_dict({"speed": 1}), r"speed"),
    Bad("config", "config not a dict", lambda _: RunConfig.from_dict([1, 2]), r"dict"),
    Bad("config", "config not JSON", lambda _: RunConfig.from_json("{oops"), r"JSON"),
    Bad("config", "budget in config", lambda _: RunConfig(budget=0), r"budget"),
    Bad("config", "data spec not a string", lambda _: RunConfig(data={"spec": 3}), r"data.spec"),
    Bad("config", "in-memory data reopened without data", _open_in_memory_run, r"data="),
    Bad(
        "config",
        "hand-edited config with a download",
        _open_hand_edited("data", {"spec": "digits", "kwargs": {"download": True}}),
        r"download|edited by hand",
    ),
    Bad(
        "config",
        "hand-edited config with an unknown key",
        _open_hand_edited("exploit", "rm -rf"),
        r"exploit|edited",
    ),
    # -- the run store -------------------------------------------------------------------------
    Bad("store", "open a missing folder", _store_open_missing, r"nowhere"),
    Bad("store", "open a file", _store_open_file, r"file\.txt"),
    Bad("store", "open a folder without config", _store_open_no_config, r"config\.json"),
    Bad("store", "open a corrupt config", _store_bad_config_json, r"config\.json"),
    Bad("store", "open without labels.sqlite", _store_labels_missing, r"labels\.sqlite"),
    Bad("store", "open with an empty labels.sqlite", _store_labels_empty, r"labels\.sqlite"),
    Bad("store", "create with a string config", _store_create("seed=0"), r"config"),
    Bad("store", "create in a busy folder", _store_create_nonempty, r"not empty"),
    Bad("store", "write round -1", _store_write(round=-1), r"round"),
    Bad("store", "write round 1.5", _store_write(round=1.5), r"round"),
    Bad("store", "write samples as a string", _store_write(samples="frame"), r"samples"),
    Bad(
        "store",
        "write an unsafe extra name",
        _store_write(extra={"../x": pd.DataFrame()}),
        r"\.\./x|name",
    ),
    Bad("store", "label a negative id", _store_label(-1, 0, round=0), r"sample_id"),
    Bad("store", "label with a string label", _store_label(1, "x", round=0), r"label"),
]

CLI: list[tuple[str, list[str], str]] = [
    ("run with budget 0", ["run", "--budget", "0"], r"budget"),
    ("run with rounds -1", ["run", "--rounds", "-1"], r"rounds"),
    ("run with a negative seed", ["run", "--seed", "-1"], r"seed"),
    ("run with an unknown dataset", ["run", "--dataset", "nope-set"], r"nope-set"),
    ("run with an unknown strategy", ["run", "--strategy", "clever"], r"unknown strategy"),
    ("run with an unknown model", ["run", "--model", "vit-h"], r"vit-h"),
    ("run with an unknown device", ["run", "--device", "tpu"], r"device"),
    ("run with a missing GPU", ["run", "--device", "cuda:9"], r"device"),
    ("run with alpha-cap 0", ["run", "--alpha-cap", "0"], r"alpha_cap"),
    ("run with a tiny alpha-cap", ["run", "--alpha-cap", "0.00001"], r"alpha_cap"),
    ("run with initial size 0", ["run", "--initial-size", "0"], r"initial_size"),
    ("run with a negative lr", ["run", "--lr", "-1"], r"lr"),
    ("run with 0 epochs", ["run", "--epochs", "0"], r"max_epochs"),
    ("run with batch size 0", ["run", "--batch-size", "0"], r"batch_size"),
    ("compare with 0 rounds", ["compare", "--rounds", "0", "--seeds", "0"], r"rounds"),
    (
        "compare with an unknown strategy",
        ["compare", "--strategies", "alfamix", "clever", "--seeds", "0"],
        r"clever",
    ),
    ("compare with a negative seed", ["compare", "--seeds", "-1", "2"], r"seed"),
    (
        "compare with a bad alpha-cap",
        ["compare", "--strategies", "alfamix", "--alpha-cap", "0", "--seeds", "0"],
        r"alpha_cap",
    ),
    ("info on a missing folder", ["info", "/nonexistent/run"], r"nonexistent"),
]


def test_the_table_is_large_enough():
    """At least 120 bad inputs across every area."""
    assert len(BAD) + len(CLI) >= 120
    areas = {b.area for b in BAD} | {"cli"}
    assert {"api", "strategy", "data", "experiment", "store", "cli", "config"} <= areas


@pytest.mark.parametrize("bad", BAD, ids=[f"{b.area}: {b.what}" for b in BAD])
def test_bad_input_gets_one_clear_line(bad: Bad, tmp_path: Path) -> None:
    with pytest.raises(ERRORS) as info:
        bad.call(tmp_path)
    msg = str(info.value)
    assert msg, "an error needs a message"
    assert "\n" not in msg.strip(), msg
    assert re.search(bad.match, msg), msg
    assert not (tmp_path / "run").exists(), "an error must come before anything is written"


@pytest.mark.parametrize(("what", "argv", "match"), CLI, ids=[c[0] for c in CLI])
def test_cli_bad_input_gets_one_clear_line(what, argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*argv, "--out", str(out)] if argv[0] != "info" else argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, what
    assert len(err) == 1, err
    assert err[0].startswith("alfaviz: error: "), err
    assert "--debug" not in err[0], "the CLI's fallback must not be what a user sees"
    assert re.search(match, err[0]), err[0]
    assert not out.exists(), "nothing may be written before the input is checked"
