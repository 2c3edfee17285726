"""Comparison protocol: AUC, the BADGE-style pairwise win matrix, and run_comparison end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from alfaviz.analysis.compare import (
    ComparisonResult,
    area_under_curve,
    critical_value,
    load_comparison,
    pairwise_tests,
    pairwise_wins,
    run_comparison,
    summarise_auc,
)
from alfaviz.errors import AlfavizInputError
from alfaviz.learner.training import TrainConfig
from alfaviz.store import RunStore


def _curves(acc: dict[str, np.ndarray], n_labelled: np.ndarray | None = None) -> pd.DataFrame:
    """Curves from {strategy: array (n_seeds, n_rounds)}."""
    rows = []
    for strategy, a in acc.items():
        n_seeds, n_rounds = a.shape
        nl = n_labelled if n_labelled is not None else 20 + 10 * np.arange(n_rounds)
        for s in range(n_seeds):
            for r in range(n_rounds):
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": s,
                        "round": r,
                        "n_labelled": int(nl[r]),
                        "accuracy": float(a[s, r]),
                    }
                )
    return pd.DataFrame(rows)


# -- critical value ---------------------------------------------------------------------------


def test_critical_value_five_seeds_is_2_776():
    assert critical_value(5) == pytest.approx(2.776, abs=5e-4)
    assert critical_value(2) == pytest.approx(12.706, abs=1e-3)
    with pytest.raises(AlfavizInputError):
        critical_value(1)


# -- pairwise wins ----------------------------------------------------------------------------


def test_consistently_better_strategy_wins_every_round():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, size=(5, 6))
    noise = rng.normal(0.0, 0.005, size=(5, 6))
    curves = _curves({"A": base + 0.05 + noise, "B": base})
    wins = pairwise_wins(curves)
    assert list(wins.index) == ["A", "B"]
    assert list(wins.columns) == ["A", "B"]
    assert wins.loc["A", "B"] == 1.0
    assert wins.loc["B", "A"] == 0.0
    assert np.isnan(wins.loc["A", "A"])
    assert np.isnan(wins.loc["B", "B"])


def test_identical_curves_never_win():
    a = np.random.default_rng(1).uniform(0.5, 0.9, size=(5, 4))
    wins = pairwise_wins(_curves({"A": a, "B": a.copy()}))
    assert wins.loc["A", "B"] == 0.0
    assert wins.loc["B", "A"] == 0.0


def test_zero_std_positive_mean_counts_as_win():
    a = np.full((3, 2), 0.7)
    wins = pairwise_wins(_curves({"A": a + 0.01, "B": a}))
    assert wins.loc["A", "B"] == 1.0
    assert wins.loc["B", "A"] == 0.0
    t = pairwise_tests(_curves({"A": a + 0.01, "B": a}))
    assert np.isposinf(t.loc[t["strategy"] == "A", "t"]).all()


def test_population_std_decides():
    # d = (0, 1, 1, 1, 1) (scaled): mean 0.8, pop. std 0.4, sample std 0.447
    # t(ddof=0) = sqrt(5) * 2 = 4.47 -> win;  a threshold between the two t-values separates
    d = np.array([0.0, 0.01, 0.01, 0.01, 0.01])
    b = np.full((5, 1), 0.6)
    curves = _curves({"A": b + d[:, None], "B": b})
    t_pop = math.sqrt(5) * d.mean() / d.std(ddof=0)
    t_sample = math.sqrt(5) * d.mean() / d.std(ddof=1)
    assert t_sample < 4.2 < t_pop
    tests = pairwise_tests(curves)
    row = tests[(tests["strategy"] == "A") & (tests["other"] == "B")].iloc[0]
    assert row["t"] == pytest.approx(t_pop)
    assert row["n"] == 5
    assert row["critical"] == pytest.approx(2.776, abs=5e-4)
    assert pairwise_wins(curves, critical=4.2).loc["A", "B"] == 1.0  # would be 0 with ddof=1


def test_default_critical_is_student_t_for_the_number_of_seeds():
    # t = 2.5 with 5 seeds: below 2.776, a loss; above with critical=2.0
    d = np.array([-0.5, 0.0, 0.5, 1.0, 1.5])
    d = d - d.mean() + 2.5 * d.std() / math.sqrt(5)
    b = np.full((5, 1), 0.5)
    curves = _curves({"A": b + d[:, None] / 100, "B": b})
    tests = pairwise_tests(curves)
    assert tests.loc[tests["strategy"] == "A", "t"].iloc[0] == pytest.approx(2.5)
    assert pairwise_wins(curves).loc["A", "B"] == 0.0
    assert pairwise_wins(curves, critical=2.0).loc["A", "B"] == 1.0


def test_wins_are_divided_by_rounds_compared_and_use_common_seeds():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.5, 0.9, size=(5, 4))
    a = base.copy()
    a[:, :2] += 0.05 + rng.normal(0, 0.002, size=(5, 2))  # A wins rounds 0 and 1 only
    curves = _curves({"A": a, "B": base, "C": base})
    curves = curves[~((curves["strategy"] == "C") & (curves["round"] == 3))]  # C lacks round 3
    wins = pairwise_wins(curves)
    assert wins.loc["A", "B"] == 0.5
    assert wins.loc["A", "C"] == pytest.approx(2 / 3)
    tests = pairwise_tests(curves)
    assert set(tests.loc[tests["other"] == "C", "round"]) == {0, 1, 2}


def test_pairwise_rejects_duplicates_and_missing_columns():
    c = _curves({"A": np.ones((2, 2)), "B": np.ones((2, 2))})
    with pytest.raises(AlfavizInputError, match="several rows"):
        pairwise_wins(pd.concat([c, c.iloc[:1]]))
    with pytest.raises(AlfavizInputError, match="seed"):
        pairwise_wins(c.drop(columns="seed"))


# -- area under the curve ---------------------------------------------------------------------


def test_area_under_curve_by_hand():
    curves = pd.DataFrame(
        {
            "strategy": ["A", "A", "A", "B", "B"],
            "seed": [0, 0, 0, 0, 1],
            "round": [0, 1, 2, 0, 0],
            "n_labelled": [10, 20, 40, 10, 10],
            "accuracy": [0.5, 0.7, 0.8, 0.4, 0.6],
        }
    )
    auc = area_under_curve(curves.sample(frac=1.0, random_state=0))  # order must not matter
    # A: (0.5+0.7)/2*10 + (0.7+0.8)/2*20 = 6 + 15 = 21 over a span of 30 -> 0.7
    assert list(auc.columns) == ["strategy", "seed", "auc"]
    got = {(r.strategy, r.seed): r.auc for r in auc.itertuples()}
    assert got[("A", 0)] == pytest.approx(0.7)
    assert got[("B", 0)] == pytest.approx(0.4)  # one point: its accuracy
    assert got[("B", 1)] == pytest.approx(0.6)
    summ = summarise_auc(auc).set_index("strategy")
    assert summ.loc["B", "mean"] == pytest.approx(0.5)
    assert summ.loc["B", "std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert np.isnan(summ.loc["A", "std"])


def test_result_from_curves_summary_and_write(tmp_path):
    rng = np.random.default_rng(4)
    base = rng.uniform(0.5, 0.9, size=(3, 3))
    res = ComparisonResult.from_curves(_curves({"A": base + 0.1, "B": base}))
    text = res.summary_text()
    assert "A" in text
    assert "wins" in text
    with pytest.raises(AlfavizInputError):
        res.write()
    paths = res.write(tmp_path / "cmp")
    for key in ("curves", "auc", "auc_summary", "wins", "plot"):
        assert paths[key].exists()
        assert paths[key].stat().st_size > 0
    wins = pd.read_csv(paths["wins"], index_col=0)
    assert wins.loc["A", "B"] == 1.0


# -- run_comparison end to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "cmp"
    res = run_comparison(
        "digits",
        ("alfamix", "random"),
        seeds=(0, 1),
        rounds=2,
        initial_size=10,
        budget=5,
        out=out,
        projection="none",
        train=TrainConfig(max_epochs=5, min_steps=5),
        experiment_kwargs={"device": "cpu"},
    )
    return res


def test_run_comparison_end_to_end(tiny_comparison):
    res = tiny_comparison
    assert list(res.curves.columns) == ["strategy", "seed", "round", "n_labelled", "accuracy"]
    assert len(res.curves) == 2 * 2 * 2
    assert res.strategies == ["alfamix", "random"]
    assert res.seeds == [0, 1]
    assert set(res.curves["n_labelled"]) == {10, 15}
    assert res.curves["accuracy"].between(0, 1).all()
    assert len(res.auc) == 4
    assert list(res.auc_summary["strategy"]) == ["alfamix", "random"]
    assert res.wins.shape == (2, 2)
    assert {"n_candidates", "n_fill", "seed"} <= set(res.rounds.columns)
    for s in ("alfamix", "random"):
        for seed in (0, 1):
            assert (res.out / f"{s}-seed{seed}" / "config.json").exists()
    paths = res.write()
    for name in ("curves.csv", "auc.csv", "auc_summary.csv", "wins.csv", "learning_curves.png"):
        p = res.out / name
        assert p.exists()
        assert p.stat().st_size > 0
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "alfamix" in res.summary_text()
    again = load_comparison(res.out)
    pd.testing.assert_frame_equal(
        again.curves.sort_values(["strategy", "seed", "round"]).reset_index(drop=True),
        res.curves.sort_values(["strategy", "seed", "round"]).reset_index(drop=True),
    )


def test_same_seed_same_initial_set_across_strategies(tiny_comparison):
    res = tiny_comparison
    first = res.curves[res.curves["round"] == 0]
    for seed in (0, 1):
        a = _initial_ids(res.out / f"alfamix-seed{seed}")
        b = _initial_ids(res.out / f"random-seed{seed}")
        assert a == b
        assert len(a) == 10
        assert first.loc[first["seed"] == seed, "n_labelled"].nunique() == 1
        wa = torch.load(res.out / f"alfamix-seed{seed}" / "initial_state.pt", weights_only=True)
        wb = torch.load(res.out / f"random-seed{seed}" / "initial_state.pt", weights_only=True)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _initial_ids(res.out / "alfamix-seed0") != _initial_ids(res.out / "alfamix-seed1")


def _initial_ids(path) -> list[int]:
    store = RunStore.open(path)
    try:
        labels = store.labels()
    finally:
        store.close()
    return sorted(labels.loc[labels["round"] == 0, "sample_id"].tolist())


def test_run_comparison_rejects_bad_arguments(tmp_path):
    with pytest.raises(AlfavizInputError, match="distinct"):
        run_comparison(strategies=("random", "random"), out=tmp_path / "x")
    with pytest.raises(AlfavizInputError, match="seeds"):
        run_comparison(seeds=(0, -1), out=tmp_path / "x")
    with pytest.raises(AlfavizInputError, match="experiment_kwargs"):
        run_comparison(out=tmp_path / "x", experiment_kwargs={"seed": 3})
