"""A large pool's flips frame: the candidates' rows only, and every pair's critical ε as float32.

Above ``ALFAMix.full_flips_max_pairs`` (sample, anchor) pairs the per-pair frame would be the
largest thing a round writes (1M × 100 pairs: about 4 GB), so it keeps the rows of the samples
that flip (the candidates) and of the batch, and the round stores the (N, C) critical ε as one
float32 matrix. These tests check that nothing a user reads is lost by the cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz import schema
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner.training import TrainConfig
from alfaviz.session import Experiment
from alfaviz.session.round import flips_critical_eps
from alfaviz.store import RunStore
from alfaviz.strategies import ALFAMix
from tests.core.test_strategy_contract import make_problem

TRAIN = TrainConfig(max_epochs=10, min_steps=4)  # enough that the round stops below ε = 1


def _pivot(flips: pd.DataFrame, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return flips_critical_eps(flips, n_classes)


def test_the_cut_frame_keeps_every_flipping_row_and_the_matrix_keeps_every_eps() -> None:
    p = make_problem(seed=3)
    full = p.query_with(ALFAMix(random_state=0))
    small = ALFAMix(random_state=0)
    small.full_flips_max_pairs = 10
    cut = p.query_with(small)
    assert full.critical_eps is None
    # the query itself is unchanged
    np.testing.assert_array_equal(cut.selected_ids, full.selected_ids)
    pd.testing.assert_frame_equal(cut.samples, full.samples)
    # the kept rows are the candidates' and the batch's, all anchors each, as in the full frame
    s = full.samples
    keep = s[schema.CANDIDATE].to_numpy(bool) | s[schema.SELECTED].to_numpy(bool)
    kept_ids = s[schema.SAMPLE_ID].to_numpy(np.int64)[keep]
    assert 0 < kept_ids.size < len(s)
    n_cls = int(full.flips[schema.ANCHOR_CLASS].max()) + 1
    assert len(cut.flips) == kept_ids.size * n_cls
    np.testing.assert_array_equal(np.unique(cut.flips[schema.SAMPLE_ID]), np.sort(kept_ids))
    want = full.flips[full.flips[schema.SAMPLE_ID].isin(kept_ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(cut.flips.reset_index(drop=True), want)
    # no flip is lost: every flipped pair of the full frame is in the cut one
    flipped = full.flips[full.flips[schema.FLIPPED]]
    assert len(flipped) > 0
    assert flipped[schema.SAMPLE_ID].isin(kept_ids).all()
    # the matrix: row i for samples' row i, the full frame's critical eps as float32
    crit = cut.critical_eps
    assert crit is not None
    assert crit.dtype == np.float32
    assert crit.shape == (len(s), n_cls)
    ids, want_m = _pivot(full.flips, n_cls)
    np.testing.assert_array_equal(ids, s[schema.SAMPLE_ID].to_numpy(np.int64))
    np.testing.assert_array_equal(crit, want_m)
    assert np.isinf(crit).any()
    assert np.isfinite(crit).any()
    assert not crit.flags.writeable


def test_the_threshold_counts_pairs() -> None:
    p = make_problem(seed=4)
    n_pairs = len(p.query("alfamix").flips)
    at = ALFAMix(random_state=0)
    at.full_flips_max_pairs = n_pairs
    assert (
        at.query(p.z_unlabelled, p.z_labelled, p.y_labelled, p.head, p.budget).critical_eps is None
    )
    at.full_flips_max_pairs = n_pairs - 1
    res = at.query(p.z_unlabelled, p.z_labelled, p.y_labelled, p.head, p.budget)
    assert res.critical_eps is not None
    assert len(res.flips) < n_pairs


def _run(tmp_path: Path, name: str) -> Experiment:
    return Experiment(
        "digits", "auto", "alfamix", initial_size=40, budget=5, seed=0, projection="pca",
        train=TRAIN, out=tmp_path / name,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Experiment, Experiment]:
    tmp = tmp_path_factory.mktemp("compact")
    full = _run(tmp, "full")
    full.run(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ALFAMix, "full_flips_max_pairs", 1000)
        cut = _run(tmp, "cut")
        cut.run(1)
    return full, cut


def test_a_round_stores_the_matrix_and_reads_it_back(runs) -> None:
    full, cut = runs
    assert not full.store.has_critical_eps(0)
    assert cut.store.has_critical_eps(0)
    # same seed, same round: the cut changes what is stored, not what was decided
    pd.testing.assert_frame_equal(full.samples, cut.samples)
    n = full.data.n_train
    assert full.rounds[schema.LEVEL].iloc[0] < 1
    assert len(full.flips) == (n - 40) * 10
    assert len(cut.flips) < len(full.flips)
    ids_f, m_f = full.critical_eps(0)
    ids_c, m_c = cut.critical_eps(0)
    np.testing.assert_array_equal(ids_f, ids_c)
    np.testing.assert_array_equal(m_f, m_c)
    assert m_c.dtype == np.float32
    assert m_c.shape == (n - 40, 10)
    # reopened from disk, it is still there
    again = Experiment.open(cut.path)
    np.testing.assert_array_equal(again.critical_eps()[1], m_c)
    assert again.store.verify() == []


def test_the_dashboard_data_fills_a_cut_sample_from_the_matrix(runs) -> None:
    from alfaviz.widgets._data import RunData

    full, cut = runs
    s = cut.samples
    s0 = s[s[schema.ROUND] == 0]
    unl = s0[s0[schema.LABELLED_ROUND].to_numpy() < 0]
    out = unl[~unl[schema.CANDIDATE].to_numpy(bool) & ~unl[schema.SELECTED].to_numpy(bool)]
    inside = unl[unl[schema.CANDIDATE].to_numpy(bool)]
    assert len(out)
    assert len(inside)
    ids = np.r_[out[schema.SAMPLE_ID].to_numpy()[:3], inside[schema.SAMPLE_ID].to_numpy()[:2]]
    labelled = int(cut.labelled_ids[0])
    data = RunData(cut)
    got = data.flips_for(0, np.r_[ids, labelled])
    assert set(got[schema.SAMPLE_ID]) == set(ids.tolist())  # the labelled sample has none
    ref = RunData(full).flips_for(0, ids)
    key = [schema.SAMPLE_ID, schema.ANCHOR_CLASS]
    got = got.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    for col in (
        schema.ROUND,
        schema.SAMPLE_ID,
        schema.ANCHOR_CLASS,
        schema.FLIPPED,
        schema.FLIP_TO,
    ):
        np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    np.testing.assert_array_equal(
        got[schema.CRITICAL_EPS].to_numpy(np.float32), ref[schema.CRITICAL_EPS].to_numpy(np.float32)
    )
    made = got[schema.SAMPLE_ID].isin(out[schema.SAMPLE_ID])
    assert got.loc[made, schema.STEP_NORM].isna().all()
    assert got.loc[~made, schema.STEP_NORM].notna().all()
    assert not got.loc[made, schema.FLIPPED].any()


def _store(tmp_path: Path) -> RunStore:
    return RunStore.create(tmp_path / "run", config={"x": 1}, initial_labels=[(0, 1)])


def _samples() -> pd.DataFrame:
    return pd.DataFrame({schema.SAMPLE_ID: np.arange(4, dtype=np.int64)})


def test_the_store_checks_the_matrix_and_its_ids(tmp_path: Path) -> None:
    st = _store(tmp_path)
    kw = {"samples": _samples(), "flips": pd.DataFrame({"a": [1]}), "rounds_row": {}}
    m = np.array([[0.1, np.inf], [0.5, 0.2]])
    with pytest.raises(AlfavizInputError, match="critical_eps and critical_eps_ids go together"):
        st.write_round(0, critical_eps=m, **kw)
    with pytest.raises(AlfavizInputError, match="critical_eps must be a float matrix"):
        st.write_round(0, critical_eps=np.array([[1, 2], [3, 4]]), critical_eps_ids=[1, 2], **kw)
    with pytest.raises(
        AlfavizInputError, match=r"critical_eps_ids must be integers of shape \(2,\)"
    ):
        st.write_round(0, critical_eps=m, critical_eps_ids=[1, 2, 3], **kw)
    with pytest.raises(AlfavizInputError, match="critical_eps_ids must be unique"):
        st.write_round(0, critical_eps=m, critical_eps_ids=[1, 1], **kw)
    assert st.rounds_written() == []
    st.write_round(0, critical_eps=m, critical_eps_ids=[3, 2], **kw)
    ids, got = st.read_critical_eps(0)
    np.testing.assert_array_equal(ids, [3, 2])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, m.astype(np.float32))
    st.write_round(1, **kw)
    assert not st.has_critical_eps(1)
    with pytest.raises(RunStoreError, match="has no critical-eps matrix"):
        st.read_critical_eps(1)
    # a damaged file is named, not half-read
    f = st.path / "rounds" / "round_0000" / "critical_eps.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(RunStoreError, match=r"critical_eps\.parquet"):
        RunStore.open(st.path).read_critical_eps(0)


def test_the_heatmap_of_a_cut_round_shows_the_same_cells(runs) -> None:
    pytest.importorskip("ipywidgets")
    from alfaviz.widgets import AppState, RunData
    from alfaviz.widgets._heatmap import Heatmap

    full, cut = runs
    s = cut.samples
    unl = s[s[schema.LABELLED_ROUND].to_numpy() < 0]
    non = unl[~unl[schema.CANDIDATE].to_numpy(bool)]
    non = non.sort_values(schema.CRITICAL_EPS, kind="stable")  # those that flip later first
    assert np.isfinite(non[schema.CRITICAL_EPS].iloc[0])
    pick = non[schema.SAMPLE_ID].to_numpy()[:6].tolist()
    pick += unl[unl[schema.CANDIDATE].to_numpy(bool)][schema.SAMPLE_ID].to_numpy()[:2].tolist()
    cells = []
    for run in (full, cut):
        state = AppState(round=0)
        h = Heatmap(state, RunData(run))
        state.select(pick)
        assert sorted(h.row_ids.tolist()) == sorted(pick)
        assert h.errors.messages == []
        cells.append(np.asarray(h.figure.data[0].z, dtype=np.float32))
    np.testing.assert_array_equal(cells[1], cells[0])
    assert np.isfinite(cells[1]).sum() > 2  # a non-candidate's critical ε is drawn
