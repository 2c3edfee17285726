"""2-D projection: PCA and UMAP layouts, Procrustes alignment, and clear errors."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alfaviz.analysis.projection import _umap_init, align_to, project_2d, warm_up_umap
from alfaviz.errors import AlfavizInputError


def blobs(n: int = 200, dim: int = 16, n_centers: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(n_centers, dim))
    return (centers[np.arange(n) % n_centers] + rng.normal(size=(n, dim))).astype(np.float32)


def rotate(coords: np.ndarray, angle: float, scale: float, shift, reflect: bool) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    if reflect:
        rot = rot @ np.diag([1.0, -1.0])
    return scale * coords @ rot + np.asarray(shift)


def mean_displacement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance a point moves from ``b`` to ``a``, relative to the spread of ``b``."""
    spread = np.sqrt(((b - b.mean(axis=0)) ** 2).sum(axis=1).mean())
    return float(np.linalg.norm(a - b, axis=1).mean() / spread)


@pytest.fixture
def no_umap(monkeypatch):
    """Make ``import umap`` fail as if umap-learn were not installed."""
    monkeypatch.setitem(sys.modules, "umap", None)


# ---------------------------------------------------------------- PCA


def test_pca_shape_dtype_and_determinism():
    x = blobs(50, 8)
    out = project_2d(x, method="pca")
    assert out.shape == (50, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, project_2d(x, method="pca"))
    np.testing.assert_array_equal(out, project_2d(x, method="pca", random_state=7))
    # a torch tensor gives the same layout, and the input is left alone
    t = torch.from_numpy(x.copy())
    np.testing.assert_allclose(project_2d(t, method="pca"), out, atol=1e-5)
    np.testing.assert_array_equal(t.numpy(), x)


def test_pca_captures_the_two_main_directions():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(100, 2)) * np.array([5.0, 2.0])
    basis = np.linalg.qr(rng.normal(size=(6, 6)))[0][:2]
    out = project_2d(latent @ basis, method="pca")
    # the projection is the latent layout up to a rotation or reflection and shift
    np.testing.assert_allclose(align_to(out, latent), latent, atol=1e-4)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 2))),  # one sample
        (np.ones((4, 3)), np.zeros((4, 2))),  # no spread at all
        (np.arange(5.0)[:, None], np.c_[np.arange(5.0) - 2.0, np.zeros(5)]),  # dim == 1
    ],
)
def test_pca_degenerate_inputs(x, expected):
    out = project_2d(x, method="pca")
    assert out.shape == expected.shape
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.abs(out), np.abs(expected), atol=1e-6)


def test_pca_with_previous_is_aligned():
    x = blobs(80, 10)
    prev = rotate(project_2d(x, method="pca"), 1.1, 3.0, [5.0, -2.0], reflect=True)
    x2 = x + np.random.default_rng(3).normal(scale=0.3, size=x.shape).astype(np.float32)
    fresh = project_2d(x2, method="pca")
    aligned = project_2d(x2, method="pca", previous=prev)
    assert aligned.dtype == np.float32
    assert mean_displacement(aligned, prev) < 0.1
    assert mean_displacement(aligned, prev) < 0.2 * mean_displacement(fresh, prev)


def test_auto_uses_pca_for_tiny_pools(caplog):
    x = blobs(10, 5)  # fewer than n_neighbors + 2 samples: UMAP cannot run
    with caplog.at_level(logging.INFO, logger="alfaviz.analysis.projection"):
        out = project_2d(x)
    np.testing.assert_array_equal(out, project_2d(x, method="pca"))
    assert "with pca" in caplog.text


def test_auto_uses_pca_without_umap(no_umap, caplog):
    x = blobs(60, 5)
    with caplog.at_level(logging.INFO, logger="alfaviz.analysis.projection"):
        out = project_2d(x)
    np.testing.assert_array_equal(out, project_2d(x, method="pca"))
    assert "umap-learn is not installed" in caplog.text


# ---------------------------------------------------------------- alignment


@settings(max_examples=50, deadline=None)
@given(
    angle=st.floats(-np.pi, np.pi),
    scale=st.floats(0.05, 20.0),
    shift=st.tuples(st.floats(-50, 50), st.floats(-50, 50)),
    reflect=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_align_to_recovers_a_similarity_transform(angle, scale, shift, reflect, seed):
    coords = np.random.default_rng(seed).normal(size=(30, 2))
    previous = rotate(coords, angle, scale, shift, reflect)
    out = align_to(coords, previous)
    assert out.dtype == np.float32
    tol = 1e-5 * max(1.0, float(np.abs(previous).max()))
    np.testing.assert_allclose(out, previous, atol=tol)


def test_align_to_reduces_movement_and_keeps_inputs():
    rng = np.random.default_rng(0)
    previous = rng.normal(size=(100, 2))
    coords = rotate(previous, 2.0, 0.3, [4.0, 4.0], reflect=True) + rng.normal(
        scale=0.05, size=(100, 2)
    )
    before = coords.copy()
    out = align_to(coords, previous)
    np.testing.assert_array_equal(coords, before)
    assert mean_displacement(out, previous) < 0.1 * mean_displacement(coords, previous)
    # only a similarity transform: the distances between points keep their ratios
    d_in = np.linalg.norm(coords[1:] - coords[:-1], axis=1)
    d_out = np.linalg.norm(out[1:] - out[:-1], axis=1)
    np.testing.assert_allclose(d_out / d_in, np.full_like(d_in, d_out[0] / d_in[0]), rtol=1e-4)


def test_align_to_single_point_and_coincident_points():
    np.testing.assert_allclose(align_to([[1.0, 1.0]], [[3.0, -2.0]]), [[3.0, -2.0]])
    out = align_to(np.zeros((3, 2)), [[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    np.testing.assert_allclose(out, np.tile([2.0, 0.0], (3, 1)))


def test_umap_start_is_an_undistorted_copy_in_the_unit_box():
    """UMAP rescales each axis of ``init`` to [0, 10]; the start is turned so that is uniform."""
    rng = np.random.default_rng(2)
    previous = rng.normal(size=(150, 2)) * np.array([8.0, 1.0]) + 3.0  # long and thin
    start = _umap_init(previous)
    assert start.dtype == np.float32
    assert start.flags.c_contiguous
    width, height = np.ptp(start, axis=0)
    assert max(width, height) == pytest.approx(10.0, rel=1e-5)
    assert width == pytest.approx(height, rel=0.05)
    # UMAP's own per-axis min-max rescaling then changes it (almost) not at all
    rescaled = 10.0 * (start - start.min(axis=0)) / np.ptp(start, axis=0)
    np.testing.assert_allclose(align_to(rescaled, previous), previous, atol=0.1)
    # points on a line still give a usable start; a single repeated point does not
    assert _umap_init(np.c_[np.arange(20.0), np.zeros(20)]) is not None
    assert _umap_init(np.ones((20, 2))) is None


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN or inf"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "NaN or inf"),
        (np.arange(5.0), "must be 2-D"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros((3, 0)), "0 features"),
    ],
)
def test_bad_embeddings(embeddings, match):
    with pytest.raises(AlfavizInputError, match=match):
        project_2d(embeddings, method="pca")


@pytest.mark.parametrize(
    ("previous", "match"),
    [
        (np.zeros((9, 2)), "has 9 rows but there are 10 samples"),
        (np.zeros((10, 3)), r"shape \(n_samples, 2\)"),
        (np.zeros(10), r"shape \(n_samples, 2\)"),
        (np.full((10, 2), np.nan), "previous contains NaN"),
    ],
)
def test_bad_previous(previous, match):
    with pytest.raises(AlfavizInputError, match=match):
        project_2d(blobs(10, 3), method="pca", previous=previous)


def test_bad_align_to_inputs():
    with pytest.raises(AlfavizInputError, match="has 4 rows but there are 3"):
        align_to(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(AlfavizInputError, match=r"coords must have shape \(n_samples, 2\)"):
        align_to(np.zeros((3, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "tsne"}, 'method must be "auto", "umap" or "pca"'),
        ({"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
        ({"n_epochs": 0}, "n_epochs must be a positive integer"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(AlfavizInputError, match=match):
        project_2d(blobs(30, 3), **kwargs)


def test_umap_requested_without_umap_names_the_extra(no_umap):
    with pytest.raises(AlfavizInputError, match=r'pip install "alfaviz\[widgets\]"'):
        project_2d(blobs(60, 5), method="umap")
    assert warm_up_umap() is False


def test_umap_requested_with_too_few_samples():
    with pytest.raises(AlfavizInputError, match="needs more than n_neighbors"):
        project_2d(blobs(10, 5), method="umap")


# ---------------------------------------------------------------- UMAP (slow: numba compiles)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Graph is not fully connected:UserWarning")  # separate blobs
def test_umap_previous_layout_keeps_points_in_place():
    pytest.importorskip("umap")
    assert warm_up_umap() is True
    x = blobs(200, 16, n_centers=8)  # eight clusters: a fresh fit is free to rearrange them
    first = project_2d(x, method="umap")
    assert first.shape == (200, 2)
    assert first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, project_2d(x))  # deterministic, and auto picks UMAP

    # the next round: the model moved the embeddings a little
    x2 = x + np.random.default_rng(5).normal(scale=0.5, size=x.shape).astype(np.float32)
    kept = project_2d(x2, method="umap", previous=first)
    assert np.isfinite(kept).all()
    moved_kept = mean_displacement(kept, first)
    moved_fresh = np.mean(
        [
            mean_displacement(align_to(project_2d(x2, method="umap", random_state=s), first), first)
            for s in (1, 2)
        ]
    )
    # measured: about 0.2-0.3 against 0.7-0.85 over six data seeds
    assert moved_kept < 0.6 * moved_fresh, (moved_kept, moved_fresh)


def test_place_points_puts_known_points_on_their_coordinates():
    from alfaviz.analysis.projection import place_points

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, 6)).astype(np.float32)
    coords = rng.normal(size=(200, 2)).astype(np.float32)
    out = place_points(ref[:5], ref, coords, k=5)
    np.testing.assert_allclose(out, coords[:5], atol=1e-4)  # a reference point lands on itself
    mid = place_points((ref[:1] + ref[1:2]) / 2, ref, coords, k=2)
    assert out.dtype == np.float32
    assert np.isfinite(mid).all()
    with pytest.raises(AlfavizInputError, match="same width"):
        place_points(ref[:, :3], ref, coords)


def test_rounds_store_paths_placed_on_the_map(tmp_path):
    from alfaviz import schema
    from alfaviz.learner import TrainConfig
    from alfaviz.session import Experiment

    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=5, projection="pca",
        train=TrainConfig(max_epochs=3, min_steps=3), out=tmp_path / "r",
    )  # fmt: skip
    exp.step()
    paths = exp.store.read_extra(0, "paths")
    coords = exp.store.read_coords(0).set_index(schema.SAMPLE_ID)
    assert np.isfinite(paths[[schema.X, schema.Y]].to_numpy()).all()
    start = paths[paths[schema.PATH_T] == 0].iloc[0]
    own = coords.loc[int(start[schema.SAMPLE_ID]), [schema.X, schema.Y]].to_numpy(np.float64)
    placed = np.array([start[schema.X], start[schema.Y]], dtype=np.float64)
    spread = np.ptp(coords[[schema.X, schema.Y]].to_numpy(), axis=0).max()
    assert np.linalg.norm(placed - own) < 0.1 * spread  # t = 0 is the sample itself


# ---------------------------------------------------------------- large pools: a UMAP subset
def test_place_near_equals_place_points():
    from alfaviz.analysis.projection import _place_near, place_points

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(500, 8)).astype(np.float32)
    xy = rng.normal(size=(500, 2))
    pts = rng.normal(size=(5000, 8)).astype(np.float32)
    np.testing.assert_allclose(_place_near(pts, ref, xy, 10), place_points(pts, ref, xy, k=10),
                               atol=1e-4)  # fmt: skip


@pytest.fixture
def fake_umap(monkeypatch):
    """UMAP stood in for by PCA (no numba), with a small subset size."""
    import types

    from alfaviz.analysis import projection

    calls = []

    def fit(umap, x, **kwargs):
        calls.append(x.shape[0])
        return projection._pca_2d(x, 0)

    monkeypatch.setattr(projection, "_import_umap", lambda: types.ModuleType("umap"))
    monkeypatch.setattr(projection, "_umap_2d", fit)
    monkeypatch.setattr(projection, "UMAP_FIT_MAX", 300)
    return calls


def test_a_large_pool_fits_umap_on_a_subset_and_places_the_rest(fake_umap):
    n_centers = 4
    x = blobs(3000, 16, n_centers=n_centers)
    coords, used = project_2d(x, method="umap", with_method=True)
    assert fake_umap == [300]  # UMAP saw the subset only
    assert coords.shape == (3000, 2)
    assert coords.dtype == np.float32
    assert np.isfinite(coords).all()
    assert "300-sample subset" in used
    assert "2,700 samples placed" in used
    # every placed sample lands among its own cluster's samples of the subset
    blob = np.arange(3000) % n_centers
    centres = np.stack([coords[blob == b].mean(0) for b in range(n_centers)])
    nearest = np.linalg.norm(coords[:, None, :] - centres[None], axis=2).argmin(1)
    assert (nearest == blob).mean() > 0.99
    again = project_2d(x, method="umap")
    np.testing.assert_array_equal(again, coords)  # seeded: the same subset each time
    other = project_2d(x, method="umap", random_state=1)
    assert not np.array_equal(other, coords)


def test_the_subset_starts_from_the_previous_layout_and_small_pools_use_all(fake_umap):
    x = blobs(3000, 16)
    first = project_2d(x, method="umap")
    kept = project_2d(x, method="umap", previous=first)
    assert mean_displacement(kept, first) < 0.05  # aligned to the previous round
    small = blobs(200, 16)
    _, used = project_2d(small, method="umap", with_method=True)
    assert used == "umap"
    assert fake_umap[-1] == 200
    _, used = project_2d(x, method="pca", with_method=True)
    assert used == "pca"  # PCA always uses every sample


def test_a_round_records_how_its_map_was_made(tmp_path):
    from alfaviz import schema
    from alfaviz.learner import TrainConfig
    from alfaviz.session import Experiment, open_run

    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=5, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=tmp_path / "r",
    )  # fmt: skip
    exp.step()
    assert exp.rounds[schema.PROJECTION].tolist() == ["pca"]
    assert open_run(exp.path).rounds[schema.PROJECTION].tolist() == ["pca"]
    none = Experiment(
        "digits", "auto", "random", initial_size=20, budget=5, projection="none",
        train=TrainConfig(max_epochs=2, min_steps=2), out=tmp_path / "n",
    )  # fmt: skip
    none.step()
    assert none.rounds[schema.PROJECTION].tolist() == [""]


@pytest.mark.slow
def test_real_umap_on_a_subset(monkeypatch):
    pytest.importorskip("umap")
    from alfaviz.analysis import projection

    monkeypatch.setattr(projection, "UMAP_FIT_MAX", 600)
    x = blobs(2500, 16)
    coords, used = project_2d(x, method="umap", with_method=True)
    assert coords.shape == (2500, 2)
    assert np.isfinite(coords).all()
    assert "600-sample subset" in used


def test_paths_on_a_large_pool_start_on_their_samples_and_end_near_the_anchor(monkeypatch):
    import pandas as pd

    from alfaviz import schema
    from alfaviz.session import round as round_mod

    monkeypatch.setattr(round_mod, "PATH_REFERENCE_MAX", 3000)  # a subset of the pool ...
    monkeypatch.setattr(round_mod, "PATH_EXACT_MAX", 1000)  # ... searched in a PCA space
    n_centers = 4
    z = blobs(6000, 64, n_centers=n_centers)
    coords = project_2d(z, method="pca")
    blob = np.arange(6000) % n_centers
    anchors = np.stack([z[blob == b].mean(0) for b in range(n_centers)])
    sids = np.array([5, 4001, 5998])  # not necessarily in the seeded subset
    ts = np.linspace(0, 1, 5, dtype=np.float32)
    paths = schema.conform(
        pd.DataFrame({
            schema.SAMPLE_ID: np.repeat(sids, ts.size),
            schema.ANCHOR_CLASS: np.full(sids.size * ts.size, 2),
            schema.PATH_T: np.tile(ts, sids.size),
        }),
        schema.PATHS,
    )  # fmt: skip
    out = round_mod.place_paths(paths, z, coords, anchors)
    xy = out[[schema.X, schema.Y]].to_numpy(np.float64)
    start = out[schema.PATH_T].to_numpy() == 0
    np.testing.assert_allclose(xy[start], coords[sids], atol=1e-4)  # t = 0: the sample itself
    end = xy[out[schema.PATH_T].to_numpy() == 1]
    anchor_xy = coords[blob == 2].mean(0)
    spread = np.ptp(coords, axis=0).max()
    assert (np.linalg.norm(end - anchor_xy, axis=1) < 0.15 * spread).all()  # t = 1: the anchor
