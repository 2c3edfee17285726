"""Other strategies on the same round: what each would score and pick, recorded once.

``Experiment.compare_strategies`` runs each strategy's own ``query`` on the inputs a written
round's query saw (its stored embeddings, the labelled set and labels at the start of the
round, its stored head and budget), with a seed derived from the run's seed, the round and the
strategy's name; keeps the result as the round's derived ``scores`` frame; fires a ``scores``
event; and ``RunData.samples`` then carries a ``score:<strategy>`` column per strategy. These
tests use one small digits run (two ALFA-Mix rounds, oracle labels, PCA layout) and copies of
it; the contract is that the recorded rows equal a direct call of the strategy on inputs
rebuilt here from the store.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alfaviz import schema
from alfaviz.data import from_arrays
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import TrainConfig
from alfaviz.session import EVENT_KINDS, Event, Experiment, comparison_seed, open_run
from alfaviz.session import scores as scores_mod
from alfaviz.store import RunStore
from alfaviz.store import _run as run_mod
from alfaviz.strategies import STRATEGIES, Strategy, get_strategy

FAST = TrainConfig(max_epochs=2, min_steps=2)
OTHERS = [name for name in STRATEGIES if name != "alfamix"]  # the default for an ALFA-Mix run


def _make(path: Path, *, strategy: str = "alfamix", rounds: int = 2, **kw: Any) -> Experiment:
    args: dict[str, Any] = {
        "initial_size": 20, "budget": 8, "seed": 0, "projection": "pca", "train": FAST,
        "out": path,
    }  # fmt: skip
    args.update(kw)
    exp = Experiment("digits", "auto", strategy, **args)
    exp.run(rounds)
    return exp


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*-shm"))
    return dest


@dataclass(frozen=True)
class _Runs:
    live: Experiment
    pristine: Path
    compared: dict[int, pd.DataFrame]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    root = tmp_path_factory.mktemp("compare")
    exp = _make(root / "run")
    pristine = _copy(exp.path, root / "pristine")  # before anything is compared
    compared = {r: exp.compare_strategies(round=r) for r in (0, 1)}
    return _Runs(exp, pristine, compared)


@pytest.fixture
def reopened(runs: _Runs, tmp_path: Path) -> Experiment:
    """A copy of the run as written, reopened from its directory (a fresh, untrained learner)."""
    return open_run(_copy(runs.pristine, tmp_path / "copy"))


def _forbid_querying(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Strategy, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{self.name} was queried again")

    monkeypatch.setattr(Strategy, "query", refuse)


@dataclass(frozen=True)
class _Inputs:
    z_unlabelled: torch.Tensor
    z_labelled: torch.Tensor
    y_labelled: torch.Tensor
    head: nn.Linear
    budget: int
    unlabelled_ids: np.ndarray
    labelled_ids: np.ndarray


def _inputs_from_store(exp: Experiment, r: int) -> _Inputs:
    """What round ``r``'s query saw, rebuilt here from the run directory alone."""
    store = exp.store
    ids, z = store.read_embeddings(r)
    assert np.array_equal(ids, np.arange(exp.data.n_train))
    samples = store.read_samples(r).sort_values(schema.SAMPLE_ID)
    assert np.array_equal(samples[schema.SAMPLE_ID].to_numpy(), ids)
    lab_round = samples[schema.LABELLED_ROUND].to_numpy()
    lab = ids[lab_round >= 0]  # the round's training set, before its batch was labelled
    unl = ids[lab_round < 0]
    state = store.read_head(r)
    head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(state["weight"]))
        head.bias.copy_(torch.from_numpy(state["bias"]))
    budget = int(store.read_round_row(r)[schema.BUDGET])
    assert budget == len(store.read_extra(r, "queried"))
    labels = samples[schema.LABEL].to_numpy(np.int64)[lab_round >= 0]
    return _Inputs(
        torch.from_numpy(np.ascontiguousarray(z[unl], dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(z[lab], dtype=np.float32)),
        torch.from_numpy(labels), head.eval(), budget, unl, lab,
    )  # fmt: skip


def _rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame[schema.STRATEGY] == name].reset_index(drop=True)


def _picks(rows: pd.DataFrame) -> np.ndarray:
    picked = rows[rows[schema.PICKED]].sort_values(schema.ORDER)
    return picked[schema.SAMPLE_ID].to_numpy(np.int64)


# ---------------------------------------------------------------------------------------------
# the contract: the recorded rows are the strategy's own query on the round's stored inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("r", [0, 1])
def test_recorded_rows_equal_a_direct_query_on_the_stored_inputs(
    runs: _Runs, r: int, name: str
) -> None:
    exp = runs.live
    rows = _rows(runs.compared[r], name)
    seed = comparison_seed(exp.seed, r, name)
    assert set(rows[schema.RANDOM_STATE]) == {seed}
    x = _inputs_from_store(exp, r)
    want = get_strategy(name, random_state=seed).query(
        x.z_unlabelled, x.z_labelled, x.y_labelled, x.head, x.budget,
        unlabelled_ids=x.unlabelled_ids, labelled_ids=x.labelled_ids,
        n_classes=exp.data.n_classes,
    )  # fmt: skip
    assert want.info[schema.RANDOM_STATE] == seed
    np.testing.assert_array_equal(rows[schema.SAMPLE_ID].to_numpy(), x.unlabelled_ids)
    np.testing.assert_array_equal(
        rows[schema.SAMPLE_ID].to_numpy(), want.samples[schema.SAMPLE_ID].to_numpy()
    )
    assert rows[schema.SCORE].dtype == np.float32
    np.testing.assert_array_equal(
        rows[schema.SCORE].to_numpy(), want.samples[schema.SCORE].to_numpy(np.float32)
    )
    np.testing.assert_array_equal(_picks(rows), want.selected_ids)  # the same batch, in order
    assert rows[schema.ROUND].eq(r).all()


def test_the_frame_has_the_schema_and_every_default_strategy(runs: _Runs) -> None:
    frame = runs.compared[1]
    assert list(frame.columns) == list(schema.STRATEGY_SCORES.names)
    assert list(frame[schema.STRATEGY].unique()) == OTHERS  # registry order, not its own
    pd.testing.assert_frame_equal(frame, schema.conform(frame, schema.STRATEGY_SCORES))
    seeds = frame.groupby(schema.STRATEGY)[schema.RANDOM_STATE].nunique()
    assert (seeds == 1).all()
    # a seed per (round, strategy): all distinct across the two rounds
    both = pd.concat(runs.compared.values())
    assert both.groupby([schema.ROUND, schema.STRATEGY])[schema.RANDOM_STATE].first().is_unique


def test_a_real_run_of_the_strategy_picks_the_same_batch(runs: _Runs, tmp_path: Path) -> None:
    # Round 0 trains the same model whatever the strategy (same seed, initial set and
    # training), so an Entropy run's own round-0 query saw the inputs rebuilt from the ALFA-Mix
    # run: same scores, same batch.
    ent = _make(tmp_path / "entropy", strategy="entropy", rounds=1, projection="none")
    rows = _rows(runs.compared[0], "entropy")
    stored = ent.store.read_samples(0)
    stored = stored[stored[schema.LABELLED_ROUND] < 0].sort_values(schema.SAMPLE_ID)
    np.testing.assert_array_equal(
        rows[schema.SAMPLE_ID].to_numpy(), stored[schema.SAMPLE_ID].to_numpy()
    )
    np.testing.assert_array_equal(
        rows[schema.SCORE].to_numpy(), stored[schema.SCORE].to_numpy(np.float32)
    )
    queried = ent.store.read_extra(0, "queried")[schema.SAMPLE_ID].to_numpy(np.int64)
    np.testing.assert_array_equal(_picks(rows), queried)


@pytest.mark.parametrize("r", [0, 1])
def test_picks_fill_the_budget_and_never_a_labelled_sample(runs: _Runs, r: int) -> None:
    exp = runs.live
    samples = exp.store.read_samples(r)
    labelled = set(samples.loc[samples[schema.LABELLED_ROUND] >= 0, schema.SAMPLE_ID])
    pool = set(samples.loc[samples[schema.LABELLED_ROUND] < 0, schema.SAMPLE_ID])
    assert len(labelled) == 20 + 8 * r
    for name, rows in runs.compared[r].groupby(schema.STRATEGY):
        assert set(rows[schema.SAMPLE_ID]) == pool, name  # one row per pool sample
        assert not labelled & set(rows[schema.SAMPLE_ID]), name
        picked = rows[rows[schema.PICKED]]
        assert len(picked) == exp.budget, name
        assert sorted(picked[schema.ORDER]) == list(range(exp.budget)), name
        assert (rows.loc[~rows[schema.PICKED], schema.ORDER] == -1).all(), name


def test_a_pool_smaller_than_the_budget_is_picked_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.arange(40) % 2
    exp = Experiment(
        from_arrays(x, y, test_size=0.25), "auto", "alfamix", initial_size=20, budget=8,
        projection="none", train=FAST, out=tmp_path / "small",
    )  # fmt: skip
    exp.run(2)  # 30 in the pool: round 0 leaves 10 unlabelled, round 1 only 2
    frame = exp.compare_strategies(round=1)
    for name, rows in frame.groupby(schema.STRATEGY):
        assert len(rows) == 2, name
        assert rows[schema.PICKED].all(), name
        assert sorted(rows[schema.ORDER]) == [0, 1], name


def test_the_runs_own_strategy_is_the_rounds_own_record(runs: _Runs) -> None:
    exp = runs.live
    seen: list[Event] = []
    unsubscribe = exp.subscribe(seen.append)
    try:
        frame = exp.compare_strategies(["ALFA-Mix", "entropy"], round=1)
    finally:
        unsubscribe()
    assert not seen  # nothing new: entropy was recorded, alfamix is the round's own
    assert list(frame[schema.STRATEGY].unique()) == ["alfamix", "entropy"]
    own = _rows(frame, "alfamix")
    samples = exp.store.read_samples(1)
    pool = samples[samples[schema.LABELLED_ROUND] < 0].sort_values(schema.SAMPLE_ID)
    np.testing.assert_array_equal(own[schema.SAMPLE_ID], pool[schema.SAMPLE_ID])
    np.testing.assert_array_equal(own[schema.SCORE], pool[schema.SCORE].to_numpy(np.float32))
    queried = exp.store.read_extra(1, "queried")[schema.SAMPLE_ID].to_numpy(np.int64)
    np.testing.assert_array_equal(_picks(own), queried)
    assert set(own[schema.RANDOM_STATE]) == {exp.rounds[schema.RANDOM_STATE].iloc[1]}
    assert "alfamix" not in set(exp.round_scores(1)[schema.STRATEGY])  # not stored again


# ---------------------------------------------------------------------------------------------
# computed once: stored, read back, reopened; the seed depends on nothing else
# ---------------------------------------------------------------------------------------------


def test_a_second_call_reads_back_without_querying(
    runs: _Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = runs.live
    _forbid_querying(monkeypatch)
    for r in (0, 1):
        pd.testing.assert_frame_equal(exp.compare_strategies(round=r), runs.compared[r])
        pd.testing.assert_frame_equal(exp.round_scores(r), runs.compared[r])
    entropy = exp.compare_strategies("entropy", round=1)
    pd.testing.assert_frame_equal(entropy, _rows(runs.compared[1], "entropy"))


def test_a_reopened_run_reads_the_stored_scores(
    runs: _Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(runs.live.path, tmp_path / "after")
    exp = open_run(path)
    assert exp.store.derived_names(1) == ["scores"]
    assert exp.store.verify() == []
    _forbid_querying(monkeypatch)
    pd.testing.assert_frame_equal(exp.compare_strategies(round=1), runs.compared[1])
    pd.testing.assert_frame_equal(exp.compare_strategies(round=0), runs.compared[0])


def test_the_result_depends_on_nothing_but_the_run_round_and_strategy(
    runs: _Runs, reopened: Experiment, tmp_path: Path
) -> None:
    # another order, other company, a fresh copy of the run with an untrained learner
    got = reopened.compare_strategies(["badge", "random"], round=1)
    pd.testing.assert_frame_equal(_rows(got, "random"), _rows(runs.compared[1], "random"))
    pd.testing.assert_frame_equal(_rows(got, "badge"), _rows(runs.compared[1], "badge"))
    other = open_run(_copy(runs.pristine, tmp_path / "other"))
    single = other.compare_strategies("random", round=1)
    pd.testing.assert_frame_equal(single, _rows(runs.compared[1], "random"))


def test_strategies_are_queried_only_once_each(
    reopened: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    query = Strategy.query

    def counting(self: Strategy, *args: Any, **kwargs: Any) -> Any:
        asked.append(self.name)
        return query(self, *args, **kwargs)

    monkeypatch.setattr(Strategy, "query", counting)
    reopened.compare_strategies(["entropy", "margin"], round=1)
    reopened.compare_strategies(["margin", "coreset", "entropy", "coreset"], round=1)
    reopened.compare_strategies(["coreset"], round=0)
    assert asked == ["entropy", "margin", "coreset", "coreset"]
    recorded = reopened.round_scores(1)
    assert list(recorded[schema.STRATEGY].unique()) == ["entropy", "margin", "coreset"]


def test_names_are_matched_like_get_strategy(reopened: Experiment) -> None:
    frame = reopened.compare_strategies(["Least_Confidence", "core-set", "leastconfidence"], 0)
    assert list(frame[schema.STRATEGY].unique()) == ["leastconfidence", "coreset"]
    assert reopened.compare_strategies([], round=0).empty


def test_the_latest_round_by_default(runs: _Runs) -> None:
    got = runs.live.compare_strategies(["margin"])
    assert got[schema.ROUND].eq(1).all()


# ---------------------------------------------------------------------------------------------
# read-only runs, failed writes, damaged files
# ---------------------------------------------------------------------------------------------


def test_a_read_only_run_keeps_the_scores_in_memory(
    runs: _Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(runs.pristine, tmp_path / "ro")
    real = os.access

    def no_write(p: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(p) == path:
            return False
        return real(p, mode, *args, **kwargs)

    monkeypatch.setattr(run_mod.os, "access", no_write)
    exp = open_run(path)
    assert exp.store.read_only
    seen: list[Event] = []
    exp.subscribe(seen.append, kinds=["scores"])
    got = exp.compare_strategies(["entropy", "badge"], round=1)
    want = [_rows(runs.compared[1], "entropy"), _rows(runs.compared[1], "badge")]
    pd.testing.assert_frame_equal(got, pd.concat(want, ignore_index=True))
    assert [(e.round, e.payload["persisted"]) for e in seen] == [(1, False)]
    assert not (path / "derived").exists()  # nothing written
    _forbid_querying(monkeypatch)
    pd.testing.assert_frame_equal(exp.compare_strategies(["entropy", "badge"], round=1), got)
    pd.testing.assert_frame_equal(exp.round_scores(1), got)


def test_a_failed_write_keeps_the_scores_in_memory(
    reopened: Experiment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunStore, "write_derived", disk_full)
    seen: list[Event] = []
    reopened.subscribe(seen.append, kinds=["scores"])
    got = reopened.compare_strategies(["margin"], round=0)
    assert "keeping them in memory" in caplog.text
    assert seen[0].payload == {"strategies": ["margin"], "persisted": False}
    pd.testing.assert_frame_equal(reopened.round_scores(0), got)


def test_a_damaged_scores_file_is_computed_again(runs: _Runs, tmp_path: Path) -> None:
    path = _copy(runs.live.path, tmp_path / "damaged")
    (file,) = (path / "derived" / "round_0001").glob("scores.*.parquet")
    file.write_bytes(b"not parquet")
    exp = open_run(path)
    assert any("scores" in p for p in exp.store.verify())
    assert exp.round_scores(1).empty  # ignored, not trusted
    pd.testing.assert_frame_equal(exp.compare_strategies(round=1), runs.compared[1])
    assert exp.store.verify() == []


def test_a_round_without_its_head_runs_what_needs_no_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = RunStore.write_round

    def as_before(self: RunStore, *args: Any, head: Any = None, **kwargs: Any) -> Any:
        return write(self, *args, **kwargs)  # what an earlier alfaviz wrote: no head.npz

    monkeypatch.setattr(RunStore, "write_round", as_before)
    exp = _make(tmp_path / "old", rounds=1, projection="none")
    assert not exp.store.has_head(0)
    frame = exp.compare_strategies(["random", "coreset"], round=0)
    assert frame.groupby(schema.STRATEGY)[schema.PICKED].sum().eq(8).all()
    with pytest.raises(RunStoreError, match=r"did not store the round's classifier head") as info:
        exp.compare_strategies(["entropy"], round=0)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# events and the views' data
# ---------------------------------------------------------------------------------------------


def test_new_scores_fire_one_event_and_known_ones_none(reopened: Experiment) -> None:
    assert "scores" in EVENT_KINDS
    seen: list[Event] = []
    reopened.subscribe(seen.append)
    reopened.compare_strategies(["entropy", "random"], round=1)
    assert [(e.kind, e.round) for e in seen] == [("scores", 1)]
    assert seen[0].payload == {"strategies": ["entropy", "random"], "persisted": True}
    reopened.compare_strategies(["random", "entropy"], round=1)
    reopened.compare_strategies(["alfamix"], round=1)
    assert len(seen) == 1
    reopened.compare_strategies(["random", "bald"], round=1)
    assert [e.payload["strategies"] for e in seen] == [["entropy", "random"], ["bald"]]


def test_run_data_carries_a_score_column_per_recorded_strategy(
    runs: _Runs, reopened: Experiment
) -> None:
    pytest.importorskip("ipywidgets")
    from alfaviz.widgets import AppState, RunData
    from alfaviz.widgets._embedding import colour_options, colour_spec

    data = RunData(reopened)
    state = AppState()
    data.attach(state)
    before, other = data.samples(1), data.samples(0)
    assert not [c for c in before.columns if str(c).startswith(schema.SCORE_PREFIX)]
    version = state.data_version
    got = data.compare_strategies(1, ["entropy", "badge"])
    assert state.data_version > version  # views observing data_version redraw
    after = data.samples(1)
    assert data.samples(0) is other  # a scores event drops only that round's samples
    assert list(after.columns[: len(schema.SAMPLES.names)]) == list(schema.SAMPLES.names)
    pd.testing.assert_frame_equal(after[list(schema.SAMPLES.names)], before)
    for name in ("entropy", "badge"):
        col = schema.score_column(name)
        assert after[col].dtype == np.float32
        rows = _rows(got, name)
        by_id = after.set_index(schema.SAMPLE_ID)[col]
        np.testing.assert_array_equal(by_id.loc[rows[schema.SAMPLE_ID]], rows[schema.SCORE])
        labelled = after[schema.LABELLED_ROUND] >= 0
        assert after.loc[labelled, col].isna().all()
        assert after.loc[~labelled, col].notna().all()
    options = colour_options(after)
    assert {"score:entropy", "score:badge"} <= set(options)
    spec = colour_spec(after, "score:entropy", round=1, class_names=data.class_names)
    assert spec.values.shape == (len(after),)
    # a new RunData on the directory (a later session) finds them too
    fresh = RunData(reopened.path).samples(1)
    assert [c for c in fresh.columns if str(c).startswith(schema.SCORE_PREFIX)] == [
        "score:entropy",
        "score:badge",
    ]


def test_conform_keeps_score_columns_as_float32() -> None:
    df = pd.DataFrame(
        {schema.ROUND: [0, 0], schema.SAMPLE_ID: [0, 1], schema.score_column("bald"): [1, None]}
    )
    out = schema.conform(df, schema.SAMPLES)
    assert list(out.columns) == [*schema.SAMPLES.names, "score:bald"]
    assert out["score:bald"].dtype == np.float32
    assert np.isnan(out["score:bald"].iloc[1])


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"strategies": ["clever"]}, r"unknown strategy 'clever'; choose one of: alfamix, badge"),
        ({"strategies": ""}, r"unknown strategy ''"),
        ({"strategies": [3]}, r"strategies must be strategy names \(str\)"),
        ({"strategies": 3}, r"strategies must be a strategy name or a list of names"),
        ({"strategies": get_strategy("entropy")}, r"strategies must be a strategy name"),
        ({"round": 2}, r"round 2 has not been written yet; rounds 0\.\.1 exist"),
        ({"round": -1}, r"round -1 has not been written yet"),
        ({"round": 1.0}, r"round must be the integer"),
        ({"round": True}, r"round must be the integer"),
    ],
)
def test_bad_inputs_get_one_clear_line(runs: _Runs, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(AlfavizInputError, match=match) as info:
        runs.live.compare_strategies(**kw)
    assert "\n" not in str(info.value)


def test_before_any_round_there_is_nothing_to_compare(tmp_path: Path) -> None:
    exp = _make(tmp_path / "empty", rounds=0, projection="none")
    with pytest.raises(AlfavizInputError, match=r"no round has been written yet"):
        exp.compare_strategies()
    with pytest.raises(AlfavizInputError, match=r"no round has been written yet"):
        exp.round_scores()


def test_the_derived_frame_name_is_the_documented_one() -> None:
    assert scores_mod.COMPARE_SCORES == "scores"
