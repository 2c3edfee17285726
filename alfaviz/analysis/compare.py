"""Compare active-learning strategies the way the ALFA-Mix paper does.

See docs/algorithm.md ("Evaluation"). :func:`run_comparison` runs every strategy with every
seed as an :class:`~alfaviz.session.Experiment` with the labelling oracle, one run directory
each (``<out>/<strategy>-seed<seed>/``). Runs with the same seed share the initial labelled
set and the model's initial weights (the experiment derives both from its seed), so the
comparison is *paired*: for a given seed and round, two strategies differ only in what they
queried.

Two summaries are computed from the learning curves (one row per strategy, seed and round):

* :func:`area_under_curve` -- the normalised area under accuracy against the number of labels;
* :func:`pairwise_wins` -- the BADGE-style pairwise matrix: for each ordered pair of strategies
  ``(i, j)`` and each round, a paired t-test over seeds of ``acc_i - acc_j``; entry ``[i, j]`` is
  the fraction of rounds in which ``i`` significantly beats ``j``.

The text report, the figure and the files are drawn by :mod:`alfaviz.analysis.report`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.data import DataSource
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies._base import Strategy

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure
    from torch import nn

    from alfaviz.learner.training import TrainConfig

__all__ = [
    "ComparisonResult",
    "area_under_curve",
    "critical_value",
    "load_comparison",
    "pairwise_tests",
    "pairwise_wins",
    "run_comparison",
    "summarise_auc",
]

log = logging.getLogger(__name__)

SEED = schema.SEED
AUC = schema.AUC
#: Columns of :attr:`ComparisonResult.curves`.
CURVE_COLUMNS: tuple[str, ...] = (
    schema.STRATEGY,
    SEED,
    schema.ROUND,
    schema.N_LABELLED,
    schema.ACCURACY,
)
_RUN_DIR = re.compile(r"^(?P<strategy>.+)-seed(?P<seed>\d+)$")


# --------------------------------------------------------------------------------------------
# Statistics on learning curves.
# --------------------------------------------------------------------------------------------


def _check_curves(curves: Any, needed: Sequence[str]) -> pd.DataFrame:
    if not isinstance(curves, pd.DataFrame):
        raise AlfavizInputError(f"curves must be a pandas DataFrame; got {type(curves).__name__}.")
    missing = [c for c in needed if c not in curves.columns]
    if missing:
        raise AlfavizInputError(
            f"curves lacks the column(s) {missing}; it needs {list(needed)} "
            f"(it has {list(curves.columns)})."
        )
    return curves


def _strategy_order(curves: pd.DataFrame) -> list[str]:
    """Strategies in order of first appearance (the order the user listed them in)."""
    return [str(s) for s in pd.unique(curves[schema.STRATEGY])]


def area_under_curve(curves: pd.DataFrame) -> pd.DataFrame:
    """Normalised area under the learning curve, per strategy and seed.

    The area is the trapezoid rule over ``n_labelled`` divided by the span of ``n_labelled``,
    i.e. the mean accuracy over the labelling range, on the accuracy's scale (0 to 1). A curve
    with a single point has that point's accuracy as its area.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``strategy``, ``seed``, ``n_labelled`` and ``accuracy`` (one row per round;
        other columns are ignored). Rows with a missing accuracy are dropped.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``seed``, ``auc``; one row per (strategy, seed), strategies in
        order of first appearance, seeds ascending.
    """
    cols = (schema.STRATEGY, SEED, schema.N_LABELLED, schema.ACCURACY)
    df = _check_curves(curves, cols)
    df = df.loc[df[schema.ACCURACY].notna(), list(cols)]
    rows: list[dict[str, Any]] = []
    for strategy in _strategy_order(df):
        part = df[df[schema.STRATEGY] == strategy]
        for seed, run in sorted(part.groupby(SEED, sort=False), key=lambda kv: kv[0]):
            run = run.sort_values(schema.N_LABELLED, kind="stable")
            x = run[schema.N_LABELLED].to_numpy(dtype=np.float64)
            y = run[schema.ACCURACY].to_numpy(dtype=np.float64)
            span = float(x[-1] - x[0]) if x.size else 0.0
            if x.size == 1 or span == 0.0:
                auc = float(y.mean())
            else:
                auc = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0 / span)
            rows.append({schema.STRATEGY: strategy, SEED: _as_seed(seed), AUC: auc})
    return pd.DataFrame(rows, columns=[schema.STRATEGY, SEED, AUC])


def summarise_auc(auc: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of the AUC over seeds, per strategy.

    Parameters
    ----------
    auc : pandas.DataFrame
        The output of :func:`area_under_curve`.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``mean``, ``std`` (sample standard deviation over seeds, ddof=1;
        NaN with a single seed) and ``n_seeds``.
    """
    df = _check_curves(auc, (schema.STRATEGY, AUC))
    rows = []
    for strategy in _strategy_order(df):
        v = df.loc[df[schema.STRATEGY] == strategy, AUC].to_numpy(dtype=np.float64)
        rows.append(
            {
                schema.STRATEGY: strategy,
                schema.MEAN: float(v.mean()) if v.size else math.nan,
                schema.STD: float(v.std(ddof=1)) if v.size > 1 else math.nan,
                schema.N_SEEDS: int(v.size),
            }
        )
    return pd.DataFrame(rows, columns=list(schema.AUC_SUMMARY.names))


def critical_value(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value with ``n - 1`` degrees of freedom.

    ``critical_value(5) == scipy.stats.t.ppf(0.975, 4) ≈ 2.776``, the threshold the BADGE and
    ALFA-Mix papers use with 5 seeds.

    Parameters
    ----------
    n : int
        Number of paired observations (seeds), at least 2.
    confidence : float
        Two-sided confidence level.
    """
    if n < 2:
        raise AlfavizInputError(f"a paired t-test needs at least 2 seeds; got {n}.")
    from scipy.stats import t as student_t  # scipy comes with scikit-learn; imported lazily

    return float(student_t.ppf(0.5 + confidence / 2.0, n - 1))


def pairwise_tests(curves: pd.DataFrame, *, critical: float | None = None) -> pd.DataFrame:
    """Every paired t-test behind :func:`pairwise_wins`, one row per ordered pair and round.

    For strategies ``i != j`` and a round present for both, take the seeds that have an
    accuracy for both, ``d = acc_i - acc_j`` per seed (``n`` of them), and
    ``t = sqrt(n) * mean(d) / std(d)`` with the *population* standard deviation (ddof=0), as in
    the BADGE paper's code. ``i`` wins when ``t > critical``. When ``std(d) == 0`` the t-value
    is ``+inf`` if ``mean(d) > 0`` (a win), ``-inf`` if ``mean(d) < 0`` and NaN if the curves
    are identical (no win either way). Rounds with fewer than 2 common seeds are not tested.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``strategy``, ``seed``, ``round``, ``accuracy``.
    critical : float, optional
        Threshold on t; by default the two-sided 95% Student-t quantile with ``n - 1`` degrees
        of freedom, ``scipy.stats.t.ppf(0.975, n - 1)`` (2.776 for 5 seeds), for each round's
        ``n``.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``other``, ``round``, ``n``, ``mean_diff``, ``std_diff``, ``t``,
        ``critical``, ``win``.
    """
    cols = (schema.STRATEGY, SEED, schema.ROUND, schema.ACCURACY)
    df = _check_curves(curves, cols)
    df = df.loc[df[schema.ACCURACY].notna(), list(cols)]
    dup = df.duplicated([schema.STRATEGY, SEED, schema.ROUND])
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise AlfavizInputError(
            "curves has several rows for strategy "
            f"{first[schema.STRATEGY]!r}, seed {first[SEED]}, round {first[schema.ROUND]}; "
            "give one accuracy per (strategy, seed, round)."
        )
    names = _strategy_order(df)
    # accuracy table: index (round, seed), one column per strategy
    wide = df.pivot(index=[schema.ROUND, SEED], columns=schema.STRATEGY, values=schema.ACCURACY)
    rows: list[dict[str, Any]] = []
    crit_cache: dict[int, float] = {}
    for a in names:
        for b in names:
            if a == b:
                continue
            pair = wide[[a, b]].dropna()
            for rnd, grp in pair.groupby(level=schema.ROUND, sort=True):
                n = len(grp)
                if n < 2:
                    continue
                d = grp[a].to_numpy(np.float64) - grp[b].to_numpy(np.float64)
                mean = float(d.mean())
                std = float(d.std(ddof=0))
                # tiny std from float rounding of identical differences counts as zero
                if std <= 1e-12 * max(1.0, abs(mean)):
                    t = math.inf if mean > 0 else (-math.inf if mean < 0 else math.nan)
                else:
                    t = math.sqrt(n) * mean / std
                if critical is None:
                    if n not in crit_cache:
                        crit_cache[n] = critical_value(n)
                    crit = crit_cache[n]
                else:
                    crit = float(critical)
                rows.append(
                    {
                        schema.STRATEGY: a,
                        schema.OTHER: b,
                        schema.ROUND: int(rnd),
                        schema.N_PAIRS: n,
                        schema.MEAN_DIFF: mean,
                        schema.STD_DIFF: std,
                        schema.T_STAT: t,
                        schema.CRITICAL: crit,
                        schema.WIN: bool(t > crit),  # NaN > crit is False
                    }
                )
    return pd.DataFrame(rows, columns=list(schema.TESTS.names))


def pairwise_wins(curves: pd.DataFrame, *, critical: float | None = None) -> pd.DataFrame:
    """The BADGE-style pairwise win matrix (docs/algorithm.md, "Protocol").

    Entry ``[i, j]`` is the number of rounds in which strategy ``i`` beats strategy ``j``
    (paired t-test over seeds, see :func:`pairwise_tests`) divided by the number of rounds
    compared for that pair, so it lies in [0, 1]. ``[i, j] + [j, i] <= 1``; a row with large
    entries is a strategy that is often significantly better than the others.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``strategy``, ``seed``, ``round``, ``accuracy``. Only rounds and seeds present
        for both strategies of a pair are compared.
    critical : float, optional
        Threshold on t (default: ``scipy.stats.t.ppf(0.975, n - 1)``, 2.776 for 5 seeds).

    Returns
    -------
    pandas.DataFrame
        Square, index and columns the strategy names in order of first appearance. The
        diagonal is NaN (a strategy is not compared with itself), and so is a pair with no
        round that has at least 2 common seeds.

    Notes
    -----
    With a zero standard deviation of the differences (every seed differs by the same
    amount), ``i`` wins when the mean difference is positive; identical curves give no win.
    """
    tests = pairwise_tests(curves, critical=critical)
    names = _strategy_order(_check_curves(curves, (schema.STRATEGY,)))
    mat = pd.DataFrame(np.nan, index=pd.Index(names, name=schema.STRATEGY), columns=names)
    mat.columns.name = schema.OTHER
    if len(tests):
        agg = tests.groupby([schema.STRATEGY, schema.OTHER], sort=False)[schema.WIN].agg(
            ["sum", "count"]
        )
        for (a, b), r in agg.iterrows():
            mat.loc[a, b] = float(r["sum"]) / float(r["count"])
    return mat


def _as_seed(seed: Any) -> Any:
    return int(seed) if isinstance(seed, (int, np.integer)) else seed


# --------------------------------------------------------------------------------------------
# The result.
# --------------------------------------------------------------------------------------------


@dataclass
class ComparisonResult:
    """Learning curves of several strategies over several seeds, and their summaries.

    Attributes
    ----------
    curves : pandas.DataFrame
        One row per (strategy, seed, round): ``strategy``, ``seed``, ``round``, ``n_labelled``,
        ``accuracy``.
    auc : pandas.DataFrame
        :func:`area_under_curve` of ``curves``: ``strategy``, ``seed``, ``auc``.
    auc_summary : pandas.DataFrame
        :func:`summarise_auc`: ``strategy``, ``mean``, ``std``, ``n_seeds``.
    wins : pandas.DataFrame
        :func:`pairwise_wins` of ``curves``.
    out : pathlib.Path or None
        The folder holding the runs (and where :meth:`write` writes by default).
    rounds : pandas.DataFrame
        Every run's full ``rounds`` frame (level, candidate and fill counts, timings, ...) with
        a ``seed`` column; empty when built from curves alone.
    critical : float or None
        The t threshold used for ``wins`` (None: the Student-t default per round).
    """

    curves: pd.DataFrame
    auc: pd.DataFrame
    auc_summary: pd.DataFrame
    wins: pd.DataFrame
    out: Path | None = None
    rounds: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    critical: float | None = None

    @classmethod
    def from_curves(
        cls,
        curves: pd.DataFrame,
        *,
        out: str | Path | None = None,
        rounds: pd.DataFrame | None = None,
        critical: float | None = None,
    ) -> ComparisonResult:
        """Compute every summary from a curves frame (see :data:`CURVE_COLUMNS`)."""
        curves = _check_curves(curves, CURVE_COLUMNS)
        curves = schema.conform(curves.loc[:, list(CURVE_COLUMNS)], schema.CURVES, extra="drop")
        auc = area_under_curve(curves)
        return cls(
            curves=curves,
            auc=auc,
            auc_summary=summarise_auc(auc),
            wins=pairwise_wins(curves, critical=critical),
            out=Path(out) if out is not None else None,
            rounds=rounds if rounds is not None else pd.DataFrame(),
            critical=critical,
        )

    @property
    def strategies(self) -> list[str]:
        """Strategy names in the order they were run."""
        return _strategy_order(self.curves)

    @property
    def seeds(self) -> list[Any]:
        """Seeds, ascending."""
        return sorted(pd.unique(self.curves[SEED]).tolist())

    def tests(self) -> pd.DataFrame:
        """The per-round paired t-tests behind :attr:`wins` (see :func:`pairwise_tests`)."""
        return pairwise_tests(self.curves, critical=self.critical)

    def mean_curves(self) -> pd.DataFrame:
        """Mean and std (ddof=1) over seeds of accuracy per strategy and round.

        Returns
        -------
        pandas.DataFrame
            Columns ``strategy``, ``round``, ``n_labelled`` (mean over seeds), ``mean``,
            ``std``, ``n_seeds``.
        """
        g = self.curves.groupby([schema.STRATEGY, schema.ROUND], sort=False)
        df = g.agg(
            n_labelled=(schema.N_LABELLED, "mean"),
            mean=(schema.ACCURACY, "mean"),
            std=(schema.ACCURACY, "std"),
            n_seeds=(schema.ACCURACY, "count"),
        ).reset_index()
        order = {s: k for k, s in enumerate(self.strategies)}
        df["_o"] = df[schema.STRATEGY].map(order)
        df = df.sort_values(["_o", schema.ROUND], kind="stable").drop(columns="_o")
        return df.reset_index(drop=True)

    def summary_text(self) -> str:
        """A plain-text report; see :func:`alfaviz.analysis.report.comparison_summary`."""
        from alfaviz.analysis.report import comparison_summary

        return comparison_summary(self)

    def figure(self, *, title: str | None = None) -> Figure:
        """The comparison figure; see :func:`alfaviz.analysis.report.comparison_figure`."""
        from alfaviz.analysis.report import comparison_figure

        return comparison_figure(self, title=title)

    def write(self, out: str | Path | None = None) -> dict[str, Path]:
        """Write CSVs and the PNG; see :func:`alfaviz.analysis.report.write_comparison`."""
        from alfaviz.analysis.report import write_comparison

        return write_comparison(self, out)


# --------------------------------------------------------------------------------------------
# Running a comparison.
# --------------------------------------------------------------------------------------------


def _default_out() -> Path:
    return Path("runs") / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"


def _strategy_label(strategy: str | Strategy) -> str:
    if isinstance(strategy, Strategy):
        return str(strategy.name)
    if not isinstance(strategy, str) or not strategy:
        raise AlfavizInputError(
            f"strategies must be names such as 'alfamix' or Strategy instances; got {strategy!r}."
        )
    return strategy


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = [int(seeds)]
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or int(s) < 0:
            raise AlfavizInputError(f"seeds must be non-negative integers; got {s!r}.")
        out.append(int(s))
    if not out:
        raise AlfavizInputError("give at least one seed.")
    if len(set(out)) != len(out):
        raise AlfavizInputError(f"seeds must be distinct; got {out}.")
    return out


def _curve_rows(rounds: pd.DataFrame, strategy: str, seed: int) -> pd.DataFrame:
    df = rounds.copy()
    df[schema.STRATEGY] = strategy
    df.insert(1, SEED, seed)
    return df


def run_comparison(
    data: str | DataSource = "digits",
    strategies: Sequence[str | Strategy] = ("alfamix", "random"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    rounds: int = 5,
    initial_size: int = 20,
    budget: int = 10,
    model: str | Callable[[int], nn.Module] = "auto",
    out: str | Path | None = None,
    projection: str = "none",
    train: TrainConfig | Mapping[str, Any] | None = None,
    data_kwargs: Mapping[str, Any] | None = None,
    progress: bool = False,
    critical: float | None = None,
    experiment_kwargs: Mapping[str, Any] | None = None,
    strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> ComparisonResult:
    """Run every strategy with every seed and compare the learning curves.

    Each (strategy, seed) is an :class:`~alfaviz.session.Experiment` with the labelling oracle,
    written to ``<out>/<strategy>-seed<seed>/``. The same seed gives every strategy the same
    initial labelled set and the same initial weights, so the comparison is paired.

    Parameters
    ----------
    data : str or DataSource
        A dataset spec for :func:`~alfaviz.data.load_dataset` (``"digits"``, a
        torchvision name, a folder, a CSV) or a ready :class:`DataSource` (e.g. from
        ``from_arrays``). A spec is recorded in each run's config so runs can be reopened.
    strategies : sequence of str or Strategy
        Registered names, or instances (used for every seed as given). Names must be distinct.
    seeds : sequence of int
        One run per strategy and seed; at least 2 seeds are needed for the win matrix.
    rounds : int
        Rounds per run (each round trains, evaluates and queries ``budget`` samples).
    initial_size, budget : int
        Initial labelled set and samples queried per round.
    model : str or callable
        A model name for :func:`~alfaviz.learner.models.build_model` (``"auto"``, ``"cnn"``,
        ``"mlp"``, ``"resnet18"``), or ``factory(seed) -> nn.Module`` building a fresh network
        for each run (its weights should depend on ``seed`` only, to keep the runs paired).
    out : path, optional
        Folder for the runs; default ``runs/compare-<timestamp>``. Must not hold runs with the
        same names already.
    projection : {"none", "pca", "umap", "auto"}
        2-D coordinates stored with each round ("none" is fastest; comparisons rarely need it).
    train : TrainConfig or dict, optional
        Training settings for every run (the release's protocol by default).
    data_kwargs : dict, optional
        Passed to the data loader when ``data`` is a spec.
    progress : bool
        Show a tqdm progress bar over the runs.
    critical : float, optional
        Threshold on t for the win matrix (default: Student-t 97.5% quantile, n - 1 df).
    experiment_kwargs : dict, optional
        Further :class:`~alfaviz.session.Experiment` arguments (``initial``, ``device``,
        ``model_kwargs``, ``callbacks``, ...).
    strategy_params : dict, optional
        Constructor parameters per strategy name, e.g. ``{"alfamix": {"alpha_cap": 0.1}}``.
        Every strategy is built once before any run starts, so an unknown name or a bad
        parameter fails before anything is written.

    Returns
    -------
    ComparisonResult
        Call :meth:`ComparisonResult.write` to save the CSVs and the figure.
    """
    from alfaviz.session.config import check_int
    from alfaviz.session.experiment import Experiment  # the loop pulls in torch and the store
    from alfaviz.strategies import get_strategy

    strategies = [strategies] if isinstance(strategies, (str, Strategy)) else list(strategies)
    if not strategies:
        raise AlfavizInputError("give at least one strategy.")
    labels = [_strategy_label(s) for s in strategies]
    if len({s.lower() for s in labels}) != len(labels):
        raise AlfavizInputError(f"strategies must be distinct; got {labels}.")
    rounds = check_int(rounds, "rounds", minimum=1)
    params = {str(k).lower(): dict(v) for k, v in dict(strategy_params or {}).items()}
    unknown_params = sorted(set(params) - {lab.lower() for lab in labels})
    if unknown_params:
        raise AlfavizInputError(
            f"strategy_params names {unknown_params}, which are not among the strategies "
            f"compared ({labels})."
        )
    for strat in strategies:  # unknown names and bad parameters fail before any run starts
        if isinstance(strat, str):
            get_strategy(strat, **params.get(strat.lower(), {}))
    seed_list = _check_seeds(seeds)
    if isinstance(model, str):
        make_model: Callable[[int], Any] | None = None
    elif callable(model) and not hasattr(model, "state_dict"):
        make_model = model
    else:
        raise AlfavizInputError(
            "model must be a name ('auto', 'cnn', 'mlp', 'resnet18') or a function "
            "seed -> nn.Module; one network instance cannot be shared by several runs."
        )
    folder = Path(out) if out is not None else _default_out()
    ekw = dict(experiment_kwargs or {})
    for reserved in ("labelling", "out", "seed", "strategy", "data", "model", "strategy_kwargs"):
        if reserved in ekw:
            raise AlfavizInputError(f"experiment_kwargs may not set {reserved!r}.")
    if len(seed_list) < 2:
        log.warning("one seed only: the win matrix needs at least 2 seeds and will be empty")

    data_spec = None
    if not isinstance(data, DataSource):  # load once; every run records the spec to reopen
        from alfaviz.data import load_dataset

        data_spec = {"spec": str(data), "kwargs": dict(data_kwargs or {})}
        data = load_dataset(data, **dict(data_kwargs or {}))
    jobs = [(s, lab, seed) for s, lab in zip(strategies, labels, strict=True) for seed in seed_list]
    it: Any = jobs
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(jobs, desc="runs", total=len(jobs))
        it = bar
    log.info(
        "comparing %s over seeds %s: %d runs of %d rounds into %s",
        labels, seed_list, len(jobs), rounds, folder,
    )  # fmt: skip
    frames: list[pd.DataFrame] = []
    for strategy, label, seed in it:
        if bar is not None:
            bar.set_postfix_str(f"{label} seed {seed}")
        exp = Experiment(
            data,
            make_model(seed) if make_model is not None else cast(str, model),
            strategy,
            initial_size=initial_size,
            budget=budget,
            seed=seed,
            out=folder / f"{_safe(label)}-seed{seed}",
            projection=projection,
            labelling="oracle",
            train=train,
            data_spec=data_spec,
            strategy_kwargs=params.get(label.lower()) if isinstance(strategy, str) else None,
            **ekw,
        )
        try:
            df = exp.run(rounds)
        finally:
            exp.store.close()
        frames.append(_curve_rows(df, label, seed))
        if len(df):
            log.info(
                "%s seed %d: accuracy %.3f -> %.3f over %d rounds",
                label, seed, df[schema.ACCURACY].iloc[0], df[schema.ACCURACY].iloc[-1], len(df),
            )  # fmt: skip
    all_rounds = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return ComparisonResult.from_curves(
        all_rounds.loc[:, list(CURVE_COLUMNS)], out=folder, rounds=all_rounds, critical=critical
    )


def _safe(name: str) -> str:
    """A file-name-safe version of a strategy name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "strategy"


def load_comparison(out: str | Path, *, critical: float | None = None) -> ComparisonResult:
    """Rebuild a :class:`ComparisonResult` from the run folders that :func:`run_comparison` wrote.

    Every sub-folder named ``<strategy>-seed<seed>`` holding a run is read (rounds written so
    far), so an interrupted comparison can still be summarised.
    """
    from alfaviz.store import RunStore

    folder = Path(out)
    if not folder.is_dir():
        raise AlfavizInputError(f"{folder} is not a folder of comparison runs.")
    frames = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        m = _RUN_DIR.match(sub.name)
        if not m or not (sub / "config.json").exists():
            continue
        store = RunStore.open(sub)
        try:
            rounds = store.read_rounds()
        finally:
            store.close()
        if len(rounds):
            frames.append(_curve_rows(rounds, m.group("strategy"), int(m.group("seed"))))
    if not frames:
        raise AlfavizInputError(f"{folder} holds no runs named <strategy>-seed<seed>.")
    all_rounds = pd.concat(frames, ignore_index=True)
    return ComparisonResult.from_curves(
        all_rounds.loc[:, list(CURVE_COLUMNS)], out=folder, rounds=all_rounds, critical=critical
    )
