"""Learning curves of ALFA-Mix against Random, Entropy and BADGE (docs/algorithm.md protocol).

Usage::

    python benchmarks/learning_curves.py           # full: 2 settings x 4 strategies x 5 seeds
    python benchmarks/learning_curves.py --quick   # smoke run (2 seeds, 2 rounds, few epochs)
    python benchmarks/learning_curves.py --settings digits --seeds 0 1 2 --max-epochs 50

Settings:

* ``digits`` -- scikit-learn's 8x8 digits (1347 pool / 450 test, 10 classes), the built-in
  ``"auto"`` model (a small CNN), 20 initial labels, 10 per round, 8 rounds;
* ``breast_cancer`` -- scikit-learn's Wisconsin breast cancer table (30 standardised features,
  2 classes, 426 pool / 143 test) through ``from_arrays``, an MLP, 10 initial labels, 5 per
  round, 8 rounds.

For each setting the script prints the normalised area under the learning curve (mean ± std over
seeds) per strategy, the BADGE-style pairwise win matrix, the mean accuracy per round, and
ALFA-Mix's own diagnostics per round (stopping level, candidates found, k-means picks and
random fills), then writes the CSVs and ``learning_curves.png`` into ``<out>/<setting>/``.
Every run uses the labelling oracle; the same seed gives every strategy the same initial set and
initial weights (a paired comparison).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from alfaviz.analysis.compare import ComparisonResult, run_comparison
from alfaviz.data import DataSource, from_arrays
from alfaviz.learner.training import TrainConfig

__all__ = ["SETTINGS", "main", "run_setting"]

STRATEGIES = ("alfamix", "random", "entropy", "badge")


def _breast_cancer() -> DataSource:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return from_arrays(
        d.data,
        d.target,
        class_names=list(d.target_names),
        name="breast_cancer",
        feature_names=list(d.feature_names),
    )


#: name -> (data, model, initial_size, budget)
SETTINGS: dict[str, tuple[Any, str, int, int]] = {
    "digits": ("digits", "auto", 20, 10),
    "breast_cancer": (_breast_cancer, "mlp", 10, 5),
}


def _per_round_table(res: ComparisonResult) -> pd.DataFrame:
    mc = res.mean_curves()
    acc = mc.pivot(index="round", columns="strategy", values="mean")[res.strategies]
    n_lab = mc.groupby("round")["n_labelled"].mean().astype(int)
    acc.insert(0, "n_labelled", n_lab)
    return acc


def _alfamix_diagnostics(res: ComparisonResult) -> pd.DataFrame | None:
    r = res.rounds
    if not len(r) or "alfamix" not in set(r["strategy"]):
        return None
    a = r[r["strategy"] == "alfamix"]
    cols = [c for c in ("level", "n_candidates", "n_kmeans", "n_fill", "epochs") if c in a]
    return a.groupby("round")[cols].mean()


def run_setting(
    name: str,
    *,
    seeds: list[int],
    rounds: int,
    strategies: tuple[str, ...],
    out: Path,
    train: TrainConfig | None,
    progress: bool,
    device: str | None,
) -> ComparisonResult:
    """Run one setting and print its summaries; returns the comparison."""
    data, model, initial_size, budget = SETTINGS[name]
    if callable(data):
        data = data()
    t0 = time.perf_counter()
    res = run_comparison(
        data,
        strategies,
        seeds,
        rounds=rounds,
        initial_size=initial_size,
        budget=budget,
        model=model,
        out=out / name,
        projection="none",
        train=train,
        progress=progress,
        experiment_kwargs={"device": device} if device else None,
    )
    secs = time.perf_counter() - t0
    paths = res.write()
    pd.set_option("display.width", 160)
    pd.set_option("display.precision", 4)
    print(f"\n=== {name}: model {model}, initial {initial_size}, budget {budget}, ")
    print(f"    {rounds} rounds, seeds {seeds}, {secs:.0f} s ===")
    print(res.summary_text())
    print("\nmean test accuracy per round:")
    print(_per_round_table(res).to_string())
    diag = _alfamix_diagnostics(res)
    if diag is not None:
        print("\nALFA-Mix per round (mean over seeds):")
        print(diag.to_string())
    if "alfamix" in res.strategies and "random" in res.strategies:
        auc = res.auc.pivot(index="seed", columns="strategy", values="auc")
        diff = auc["alfamix"] - auc["random"]
        print(
            f"\nALFA-Mix - Random AUC per seed: {', '.join(f'{v:+.4f}' for v in diff)} "
            f"(mean {diff.mean():+.4f}; ALFA-Mix higher in {int((diff > 0).sum())}/{len(diff)})"
        )
    print(f"\nwritten: {paths['plot'].parent}")
    return res


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the settings, print the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS))
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="epoch cap per round (default: the release's protocol, TrainConfig())",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for runs, CSVs and PNGs")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 rounds, 5 epochs")
    p.add_argument("--device", default=None, help="'cpu' or 'cuda' (default: CUDA if present)")
    p.add_argument("--progress", action="store_true", help="tqdm bar over the runs")
    p.add_argument("-v", "--verbose", action="store_true", help="log every run")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    train: TrainConfig | None = None
    if args.quick:
        args.seeds = args.seeds[:2]
        args.rounds = min(args.rounds, 2)
        train = TrainConfig(max_epochs=5, min_steps=5)
    elif args.max_epochs is not None:
        train = TrainConfig(max_epochs=args.max_epochs)
    out = args.out or Path("runs") / f"bench-learning-curves-{datetime.now():%Y%m%d-%H%M%S}"
    print(f"training: {(train or TrainConfig()).to_dict()}")
    for name in args.settings:
        run_setting(
            name,
            seeds=args.seeds,
            rounds=args.rounds,
            strategies=tuple(args.strategies),
            out=out,
            train=train,
            progress=args.progress,
            device=args.device,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
