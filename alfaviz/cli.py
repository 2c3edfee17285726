"""The ``alfaviz`` command line: ``run``, ``compare``, ``info``, ``report``, ``serve``, ``course``.

Every user error is one clear line on stderr (exit status 2), never a traceback; ``--debug``
shows the traceback when you need it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
alfaviz: explore active learning with ALFA-Mix.

  alfaviz run                 ALFA-Mix on the built-in digits data (offline, under a minute)
  alfaviz run --strategy entropy --rounds 10 --out runs/entropy
  alfaviz compare --strategies alfamix random entropy badge --seeds 0 1 2 3 4
  alfaviz info runs/<run-directory>
  alfaviz report runs/<run-directory> [--round 2] [--out report.html]
  alfaviz course workshop/    copy the course notebooks into a folder for a class
"""


def _add_setting_args(p: argparse.ArgumentParser, *, single_strategy: bool) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--dataset",
        "--data",
        dest="dataset",
        default="digits",
        help="'digits' (built in), mnist, fashionmnist, cifar10, cifar100, svhn (from --root), "
        "an image folder, a CSV/Parquet file, or a .npy/.npz file of pre-computed features "
        "(default: digits)",
    )
    g.add_argument("--root", default=None, help="folder holding torchvision datasets")
    g.add_argument(
        "--download", action="store_true", help="allow torchvision to download a dataset"
    )
    g.add_argument(
        "--target", default=None,
        help="label column of a CSV/Parquet file (or label array of an .npz file)",
    )  # fmt: skip
    g.add_argument(
        "--labels", default=None, metavar="FILE",
        help="a .npy file of labels, one per row of a .npy/.npz features file",
    )  # fmt: skip
    g.add_argument(
        "--embeddings", action="store_true",
        help="read a CSV/Parquet file as pre-computed features (an id/sample_id column, numeric "
        "features, no one-hot encoding or scaling); implied by --model linear",
    )  # fmt: skip
    g.add_argument(
        "--model", default="auto",
        help="auto, cnn, resnet18, mlp or linear (a linear classifier on pre-computed "
        "features; auto's choice for .npy/.npz files) (default: auto)",
    )  # fmt: skip
    g = p.add_argument_group("active learning")
    if single_strategy:
        g.add_argument(
            "--strategy",
            default="alfamix",
            help="alfamix, random, entropy, margin, leastconfidence, bald, coreset, badge "
            "(default: alfamix)",
        )
    g.add_argument("--initial-size", type=int, default=20, help="initial labelled set (20)")
    g.add_argument(
        "--initial", choices=("uniform", "per_class"), default="uniform",
        help="how the initial set is drawn (uniform)",
    )  # fmt: skip
    g.add_argument("--budget", type=int, default=10, help="samples queried per round (10)")
    g.add_argument("--rounds", type=int, default=5, help="active-learning rounds (5)")
    g.add_argument(
        "--alpha", choices=("closed_form", "learned"), default="closed_form",
        help="ALFA-Mix: closed-form or learned mixing ratio (closed_form)",
    )  # fmt: skip
    g.add_argument("--alpha-cap", type=float, default=None, help="ALFA-Mix ε step (0.2)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=200, help="epoch cap per round (200)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    g.add_argument("--batch-size", type=int, default=64, help="minibatch size (64)")
    g.add_argument(
        "--target-accuracy", type=float, default=0.99,
        help="stop training at this training accuracy (0.99)",
    )  # fmt: skip
    g.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``alfaviz`` command."""
    parser = argparse.ArgumentParser(
        prog="alfaviz",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run an active-learning experiment headless",
        description="Run active-learning rounds (train, embed, query, label with the known "
        "labels, retrain) and record every round in a run directory that `alfaviz info` "
        "and the dashboard can open later. With no arguments: ALFA-Mix on the built-in digits.",
    )
    _add_setting_args(run, single_strategy=True)
    run.add_argument(
        "--seed", type=int, nargs="+", default=[0],
        help="one or more seeds; several seeds give one run directory each (0)",
    )  # fmt: skip
    run.add_argument(
        "--projection", choices=("auto", "umap", "pca", "none"), default="auto",
        help="2-D coordinates stored with each round (auto: UMAP when installed, else PCA)",
    )  # fmt: skip
    run.add_argument("--out", default=None, help="run directory (default: runs/<name>-<time>)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the run directory")
    g = run.add_argument_group("engine (where the query scores the pool)")
    g.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="local: in this process (default); ray: Ray Core actors, one per GPU or CPU "
        "(pip install 'alfaviz[ray]'); the results are the same",
    )  # fmt: skip
    g.add_argument(
        "--address", default=None,
        help="with --engine ray: the cluster to join ('auto' for one started with `ray start "
        "--head`, or host:port); by default Ray starts on this machine",
    )  # fmt: skip
    g.add_argument(
        "--shard-size", type=int, default=None, metavar="N",
        help="rows per shard of the pool scoring (default: one shard per worker); rounded up "
        "to the computation's block size",
    )  # fmt: skip
    g.add_argument(
        "--sharded", action=argparse.BooleanOptionalAction, default=None,
        help="ALFA-Mix rounds in which the workers embed, score and write the pool's shards "
        "(into <run>/shards) and this process keeps only the candidates; the default with "
        "--engine ray. --no-sharded: this process embeds the pool and builds the records",
    )  # fmt: skip

    cmp_ = sub.add_parser(
        "compare",
        help="compare strategies over several seeds",
        description="Run several strategies × seeds on one setting and write learning curves, "
        "areas under the curves and the BADGE-style pairwise win matrix as CSV and PNG.",
    )
    _add_setting_args(cmp_, single_strategy=False)
    cmp_.add_argument(
        "--strategies", nargs="+", default=["alfamix", "random", "entropy", "badge"],
        help="strategies to compare (alfamix random entropy badge)",
    )  # fmt: skip
    cmp_.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="(0 1 2 3 4)")
    cmp_.add_argument("--out", default=None, help="output folder (default: runs/compare-<time>)")

    info = sub.add_parser("info", help="summarise a run directory", description="Summarise a run.")
    info.add_argument("run_dir", metavar="RUN", help="a run directory written by `alfaviz run`")

    rep = sub.add_parser(
        "report",
        help="write a round's selection as one offline HTML file",
        description="Write a self-contained HTML report of one round's selection: the batch "
        "with thumbnails and the reason for each pick, the inconsistency heatmap, the learning "
        "curve and the label outcomes. The file embeds everything it needs (plotly.js "
        "included), so it opens without a network connection and can be handed out. Prints "
        "the path written.",
    )
    rep.add_argument("run_dir", metavar="RUN", help="a run directory written by `alfaviz run`")
    rep.add_argument(
        "--round", type=int, default=None, help="a written round (default: the latest)"
    )
    rep.add_argument(
        "--out", default=None, metavar="FILE",
        help="the HTML file to write (default: RUN/report_round_<R>.html)",
    )  # fmt: skip
    rep.add_argument(
        "--baseline", default="entropy",
        help="strategy whose picks are compared in the label outcomes, or 'none' (entropy)",
    )  # fmt: skip
    srv = sub.add_parser(
        "serve",
        help="serve a run's dashboard in the browser, for annotators",
        description="Start Voila on the dashboard notebook that ships with alfaviz, for one "
        "run, and print its URL. Labels entered on the page go into the run's store at once. "
        "Binds 127.0.0.1 unless --ip and --allow-remote say otherwise. Ctrl-C stops it.",
    )
    srv.add_argument(
        "run_dir", metavar="RUN", nargs="?", default=None,
        help="a run directory written by `alfaviz run` (with --demo: where to make the demo)",
    )  # fmt: skip
    srv.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    srv.add_argument("--ip", default="127.0.0.1", help="address to bind (127.0.0.1)")
    srv.add_argument(
        "--allow-remote", action="store_true",
        help="allow a non-loopback --ip; the page can label the run, so the URL gets a token",
    )  # fmt: skip
    srv.add_argument(
        "--demo", action="store_true", help="serve a fresh digits run made on the spot"
    )
    srv.add_argument(
        "--no-preheat", action="store_true",
        help="start each page's kernel on request instead of keeping one ready",
    )  # fmt: skip
    crs = sub.add_parser(
        "course",
        help="copy the course notebooks into a folder for a workshop",
        description="Copy the course notebooks (quickstart, the anatomy of a selection, why mix "
        "features, comparing strategies, labelling, your own data) and their solutions into "
        "DIR, then print how to open them with JupyterLab or Voila. Existing files are never "
        "overwritten unless --force is given.",
    )
    crs.add_argument(
        "dest", metavar="DIR", nargs="?", default="alfaviz-course",
        help="folder to copy into (default: ./alfaviz-course)",
    )  # fmt: skip
    crs.add_argument("--force", action="store_true", help="overwrite course files already in DIR")
    return parser


def _cmd_course(args: argparse.Namespace) -> int:
    from alfaviz.course import copy_course

    written = copy_course(args.dest, force=args.force)
    dest = Path(args.dest)
    print(f"copied {len(written)} notebooks into {dest}:")
    for path in written:
        print(f"  {path}")
    first = next((p for p in written if p.parent == dest), written[0])
    print(f"open them with:  jupyter lab {dest}")
    print(f"or as pages:     voila {first}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from alfaviz.serve import serve

    status = serve(
        args.run_dir, port=args.port, ip=args.ip, allow_remote=args.allow_remote,
        demo=args.demo, preheat=not args.no_preheat,
    )  # fmt: skip
    return int(status) if isinstance(status, int) else 0


def _data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if args.root:
        kw["root"] = args.root
    if args.download:
        kw["download"] = True
    if args.target:
        kw["target"] = args.target
    if args.labels:
        kw["labels"] = args.labels
    name = str(args.dataset).lower()
    is_array = name.endswith((".npy", ".npz"))
    linear = str(args.model).strip().lower() in ("linear", "linearprobe", "linear_probe")
    if not is_array and (args.embeddings or (linear and name.endswith(_TABLE_SUFFIXES))):
        kw["embeddings"] = True
    return kw


_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".parquet")


def _train(args: argparse.Namespace) -> Any:
    from alfaviz.learner.training import TrainConfig

    return TrainConfig(
        lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs,
        target_accuracy=args.target_accuracy,
    )  # fmt: skip


def _strategy_kwargs(args: argparse.Namespace, name: str) -> dict[str, Any]:
    if name.lower().replace("-", "").replace("_", "") != "alfamix":
        return {}
    kw: dict[str, Any] = {"alpha": args.alpha}
    if args.alpha_cap is not None:
        kw["alpha_cap"] = args.alpha_cap
    return kw


def _cmd_run(args: argparse.Namespace) -> int:
    from alfaviz.analysis.report import describe_round
    from alfaviz.session.config import check_int
    from alfaviz.session.experiment import Callback, Experiment

    check_int(args.rounds, "--rounds", minimum=0)  # before a run folder is written

    class Printer(Callback):
        def on_round_end(self, exp: Experiment, round: int, row: Mapping[str, Any]) -> None:
            if not args.quiet:
                print(describe_round(row), flush=True)

    if args.projection in ("umap", "auto"):
        import threading

        from alfaviz.analysis.projection import warm_up_umap

        # compile UMAP's numba code while the first round trains
        threading.Thread(target=warm_up_umap, name="umap-warm-up", daemon=True).start()
    data_kwargs = _data_kwargs(args)
    engine = _engine(args)
    try:
        t0 = time.perf_counter()
        seeds = list(dict.fromkeys(args.seed))
        for seed in seeds:
            out = args.out
            if out is not None and len(seeds) > 1:
                out = str(Path(out) / f"seed{seed}")
            exp = Experiment(
                args.dataset, args.model, args.strategy, initial_size=args.initial_size,
                budget=args.budget, seed=seed, out=out, projection=args.projection,
                initial=args.initial, train=_train(args), device=args.device,
                callbacks=[Printer()], strategy_kwargs=_strategy_kwargs(args, args.strategy),
                data_kwargs=data_kwargs, engine=engine, shard_size=args.shard_size,
                sharded=args.sharded,
            )  # fmt: skip
            source = exp.data
            if args.quiet:
                print(exp.path)
            else:
                print(
                    f"run directory: {exp.path}  ({source.name}: {source.n_train} pool / "
                    f"{source.n_test} test, {exp.strategy.name}, seed {seed}, "
                    f"{args.rounds} rounds of {args.budget}, device {exp.device})",
                    flush=True,
                )
                if args.engine != "local" or exp.uses_sharded_rounds:
                    how = (
                        f"sharded rounds (workers write {exp.path / 'shards'})"
                        if exp.uses_sharded_rounds
                        else "whole-pool rounds"
                    )
                    print(f"engine: {engine!r}, {how}", flush=True)
            exp.run(args.rounds)
        if not args.quiet:
            print(f"done in {time.perf_counter() - t0:.1f}s; open it with: alfaviz info {exp.path}")
    finally:
        _close(engine)
    return 0


def _engine(args: argparse.Namespace) -> Any:
    """The engine of ``alfaviz run``, checked before a run folder is written."""
    from alfaviz.engine import check_shard_size, make_engine
    from alfaviz.errors import AlfavizInputError

    check_shard_size(args.shard_size)
    if args.engine == "local":
        if args.address is not None:
            raise AlfavizInputError("--address goes with --engine ray; add --engine ray.")
        return make_engine("local")
    engine = make_engine(args.engine, address=args.address, progress=not args.quiet)
    engine.parallelism  # noqa: B018 - joins the cluster now: a bad address fails here
    return engine


def _close(engine: Any) -> None:
    close = getattr(engine, "close", None)
    if callable(close):
        close()


def _cmd_compare(args: argparse.Namespace) -> int:
    from alfaviz.analysis.compare import run_comparison

    data_kwargs = _data_kwargs(args)
    strategy_params = {name.lower(): _strategy_kwargs(args, name) for name in args.strategies}
    res = run_comparison(
        args.dataset, strategies=tuple(args.strategies), seeds=tuple(args.seeds),
        rounds=args.rounds, initial_size=args.initial_size, budget=args.budget, model=args.model,
        out=args.out, projection="none", train=_train(args), data_kwargs=data_kwargs,
        progress=False, strategy_params={k: v for k, v in strategy_params.items() if v},
        experiment_kwargs={"device": args.device, "initial": args.initial},
    )  # fmt: skip
    files = res.write()
    print(res.summary_text())
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import pandas as pd

    from alfaviz import schema
    from alfaviz.errors import AlfavizInputError
    from alfaviz.session.config import RunConfig
    from alfaviz.store import RunStore

    # read-only and unchecked, so that a damaged run can still be inspected; verify() below
    # names every damaged file
    store = RunStore.open(args.run_dir, read_only=True, check=False)
    problems = store.verify()
    writable = _writable(store.path)
    print(f"run: {store.path}" + ("" if writable else "   (read-only: labelling is disabled)"))
    try:
        cfg = RunConfig.from_dict(store.config)
    except AlfavizInputError as exc:
        problems.append(f"{store.path / 'config.json'}: {exc}")
    else:
        data = cfg.data
        name = data.get("spec") or data.get("summary", {}).get("name", "?")
        model_name = cfg.model.get("name") or cfg.model.get("class")
        print(
            f"data: {name}   model: {model_name}   strategy: {cfg.strategy['name']}   "
            f"seed: {cfg.seed}"
        )
        print(
            f"initial set: {cfg.initial_size} ({cfg.initial})   budget: {cfg.budget}   "
            f"labelling: {cfg.labelling}   projection: {cfg.projection}"
        )
    rounds = store.read_rounds()
    if len(rounds):
        cols = [
            c
            for c in (
                schema.ROUND, schema.N_LABELLED, schema.ACCURACY, schema.LEVEL,
                schema.N_CANDIDATES, schema.N_KMEANS, schema.N_FILL, schema.time_column("train"),
                schema.time_column("query"),
            )
            if c in rounds
        ]  # fmt: skip
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            print(rounds[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    else:
        print("no rounds yet")
    labels = store.labels()
    if len(labels):
        by = labels.groupby(schema.SOURCE).size().to_dict()
        print("labels: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    else:
        print("labels: none")
    if problems:
        print(f"integrity: {len(problems)} problem(s)")
        for line in problems:
            print(f"  damaged: {line}")
        return 1
    print("integrity: every checksum matches")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from alfaviz.analysis.selection_report import export_report

    baseline = None if args.baseline.strip().lower() in ("", "none") else args.baseline
    path = export_report(args.run_dir, args.round, args.out, baseline=baseline)
    print(path)
    return 0


def _writable(path: Path) -> bool:
    """Whether this process may write the run (its folder and its label log)."""
    import os

    from alfaviz.store import LABELS_FILE

    return os.access(path, os.W_OK) and os.access(path / LABELS_FILE, os.W_OK)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alfaviz`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    handlers = {
        "run": _cmd_run,
        "compare": _cmd_compare,
        "info": _cmd_info,
        "report": _cmd_report,
        "serve": _cmd_serve,
        "course": _cmd_course,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("alfaviz: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        from alfaviz.errors import AlfavizInputError, RunStoreError

        if isinstance(exc, (AlfavizInputError, RunStoreError, FileNotFoundError)):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
        print(
            f"alfaviz: error: {msg.splitlines()[0] if msg else type(exc).__name__}", file=sys.stderr
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
