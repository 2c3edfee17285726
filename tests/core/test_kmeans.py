"""k-means with greedy k-means++ seeding, and the shared distance and D² helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alfaviz._tensor import d2_draw, nearest_sq_dists, sq_dists
from alfaviz.alfamix.kmeans import greedy_kmeanspp, kmeans, nearest_to_centroids


def _blobs(seed: int, n: int = 1200, k: int = 30, d: int = 24, spread: float = 0.6):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g)
    x = centres[torch.randint(k, (n,), generator=g)] + spread * torch.randn(n, d, generator=g)
    return x / x.norm(dim=1, keepdim=True)  # as the pick does: L2-normalised rows


def test_inertia_close_to_scikit_learn_with_the_same_settings():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    ratios = []
    for seed in range(4):
        x = _blobs(seed)
        ours = kmeans(x, 45, n_init=1, max_iter=50, tol=1e-4, random_state=seed)
        ref = sklearn_cluster.KMeans(
            n_clusters=45, init="k-means++", n_init=1, max_iter=50, tol=1e-4,
            random_state=seed, algorithm="lloyd",
        ).fit(x.numpy())  # fmt: skip
        ratios.append(ours.inertia / ref.inertia_)
    assert np.mean(ratios) < 1.02, ratios
    assert max(ratios) < 1.04, ratios


def test_greedy_seeding_beats_one_draw_per_centre():
    """2 + ln k local trials pick lower-potential seeds than plain k-means++ (1 trial)."""
    x = _blobs(7, n=1500, k=40)
    x_sq = (x * x).sum(1)

    def potential(idx):
        return float(nearest_sq_dists(x, x[idx], x_sq=x_sq)[0].sum())

    greedy, plain = [], []
    for seed in range(5):
        greedy.append(potential(greedy_kmeanspp(x, 60, torch.Generator().manual_seed(seed))))
        g = torch.Generator().manual_seed(seed)
        plain.append(potential(greedy_kmeanspp(x, 60, g, n_local_trials=1)))
    assert np.mean(greedy) < 0.97 * np.mean(plain)


def test_kmeans_is_deterministic_and_labels_are_nearest_centres():
    x = _blobs(3, n=400, k=10)
    a = kmeans(x, 12, random_state=5)
    b = kmeans(x, 12, random_state=5)
    assert torch.equal(a.labels, b.labels)
    assert a.inertia == b.inertia
    d = ((x[:, None, :] - a.centers[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d.min(1).values.sum().item(), a.inertia, rtol=1e-4)
    seeds = greedy_kmeanspp(x, 12, torch.Generator().manual_seed(0))
    assert len(set(seeds.tolist())) == 12


def test_seeding_with_duplicate_points_picks_distinct_ones_first():
    x = torch.zeros(6, 3)
    x[3:] = 1.0  # two distinct points, three copies each
    seeds = greedy_kmeanspp(x, 4, torch.Generator().manual_seed(0))
    assert len(set(seeds.tolist())) == 4
    km = kmeans(x, 4, random_state=0)
    assert km.inertia == pytest.approx(0.0, abs=1e-9)
    picked = nearest_to_centroids(x, km.labels, km.centers)
    assert len(picked) == len(torch.unique(km.labels))


def test_sq_dists_and_nearest_match_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 7, generator=g, dtype=torch.float64)
    c = torch.randn(11, 7, generator=g, dtype=torch.float64)
    brute = ((x[:, None] - c[None]) ** 2).sum(-1)
    np.testing.assert_allclose(sq_dists(x, c).numpy(), brute.numpy(), atol=1e-10)
    d2, idx = nearest_sq_dists(x, c, chunk_elems=50)  # several blocks
    np.testing.assert_allclose(d2.numpy(), brute.min(1).values.numpy(), atol=1e-10)
    np.testing.assert_array_equal(idx.numpy(), brute.argmin(1).numpy())


def test_d2_draw_follows_the_weights_and_never_draws_zero_weight():
    w = torch.tensor([0.0, 1.0, 0.0, 3.0, 0.0])
    draws = d2_draw(w, 40_000, torch.Generator().manual_seed(1))
    counts = torch.bincount(draws, minlength=5).double() / draws.numel()
    assert counts[0] == counts[2] == counts[4] == 0
    assert counts[3].item() == pytest.approx(0.75, abs=0.01)
    # all weights zero: uniform over the fallback mask
    fb = torch.tensor([False, True, True, False, False])
    draws = d2_draw(torch.zeros(5), 2000, torch.Generator().manual_seed(2), fallback=fb)
    assert set(draws.tolist()) == {1, 2}
    # u·total rounding up to the total still lands on a positive weight
    w = torch.tensor([1.0, 0.0, 0.0])
    assert set(d2_draw(w, 100, torch.Generator().manual_seed(3)).tolist()) == {0}
    assert math.isfinite(float(d2_draw(torch.tensor([math.inf, 1.0]), 1, torch.Generator())[0]))


@pytest.mark.parametrize("gram", [True, False])
def test_the_host_seeding_loop_makes_the_device_loops_choices(monkeypatch, gram):
    """On the CPU the seeding runs in NumPy; it must draw and choose exactly as the tensor loop
    that runs on a GPU (here run on CPU tensors), with and without the all-pairs matrix."""
    from alfaviz.alfamix import kmeans as km

    if not gram:
        monkeypatch.setattr(km, "_GRAM_MAX_BYTES", 0)
    for seed in range(3):
        x = _blobs(seed, n=700, k=25)
        x[5] = x[4]  # a duplicate: a zero D² that must never be drawn again
        x_sq = (x * x).sum(1)
        host = km.greedy_kmeanspp(x, 60, torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed)
        first = torch.randint(x.shape[0], (1,), generator=g)
        device = km._greedy_device(x, x_sq, first, 60, 2 + int(math.log(60)), g)
        assert host.dtype == torch.int64
        torch.testing.assert_close(host, device, rtol=0, atol=0)
        assert host.unique().numel() == 60


def test_the_host_seeding_loop_falls_back_to_the_unchosen_when_every_point_is_a_centre():
    x = torch.zeros(6, 3)
    x[:3] = torch.eye(3)  # three distinct points and three copies of the origin
    seeds = greedy_kmeanspp(x, 5, torch.Generator().manual_seed(0))
    assert seeds.unique().numel() == 5
