"""Behaviour of the baseline strategies: each test picks a case where a wrong strategy fails."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from alfaviz import schema
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies import (
    BADGE,
    BALD,
    CoreSet,
    Entropy,
    LeastConfidence,
    Margin,
    Random,
    bald_scores,
    get_strategy,
    gradient_embedding_factors,
    gradient_embedding_sq_dist,
    kcenter_greedy,
    kmeanspp_gradient,
    top_k_positions,
)


def identity_head(c: int, dtype: torch.dtype = torch.float32) -> nn.Linear:
    """A head whose logits are the embedding itself."""
    head = nn.Linear(c, c).to(dtype)
    with torch.no_grad():
        head.weight.copy_(torch.eye(c, dtype=dtype))
        head.bias.zero_()
    return head


def labelled_stub(c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One labelled sample per class (needed by validation, unused by uncertainty scores)."""
    return torch.eye(c) * 5.0, torch.arange(c)


# ------------------------------------------------------------------------------------------
# uncertainty sampling
# ------------------------------------------------------------------------------------------
# Three kinds of ambiguous rows, each the unique best under one criterion, among confident rows.
P_MARGIN = [0.49, 0.49, 0.02, 0.0]  # margin 0 (best margin); entropy 0.78, p_max 0.49
P_LEAST = [0.35, 0.34, 0.31, 0.0]  # p_max 0.35 (best least-confidence); entropy 1.10
P_ENTROPY = [0.36, 0.22, 0.21, 0.21]  # entropy 1.36 (best entropy); margin 0.14, p_max 0.36
P_CONFIDENT = [0.94, 0.02, 0.02, 0.02]


def _ambiguity_pool() -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    kinds = np.array(["confident"] * 40 + ["margin"] * 4 + ["least"] * 4 + ["entropy"] * 4)
    rng.shuffle(kinds)
    table = {"confident": P_CONFIDENT, "margin": P_MARGIN, "least": P_LEAST, "entropy": P_ENTROPY}
    p = np.array([table[k] for k in kinds]) + 1e-6
    p /= p.sum(axis=1, keepdims=True)
    perm = [rng.permutation(4) for _ in kinds]  # move the top class around
    p = np.stack([row[q] for row, q in zip(p, perm, strict=True)])
    logits = torch.tensor(np.log(p), dtype=torch.float32)
    return logits, {k: np.flatnonzero(kinds == k) for k in table}


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [(Entropy, "entropy"), (Margin, "margin"), (LeastConfidence, "least")],
)
def test_uncertainty_strategy_picks_its_own_kind(strategy: type, kind: str) -> None:
    logits, where = _ambiguity_pool()
    z_l, y_l = labelled_stub(4)
    result = strategy().query(logits, z_l, y_l, identity_head(4), 4)
    np.testing.assert_array_equal(np.sort(result.selected_ids), where[kind])


def test_entropy_matches_numpy_and_records_columns() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 5, generator=g) * 3
    z_l, y_l = labelled_stub(5)
    result = Entropy().query(logits, z_l, y_l, identity_head(5), 15)
    p = torch.softmax(logits.double(), 1).numpy()
    h = -(p * np.log(p)).sum(1)
    np.testing.assert_allclose(result.samples[schema.SCORE], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.samples[schema.ENTROPY], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.samples[schema.PSEUDO_LABEL], p.argmax(1))
    np.testing.assert_allclose(result.samples[schema.PROB_MAX], p.max(1), rtol=1e-5)
    np.testing.assert_array_equal(result.selected_ids, np.argsort(-h)[:15])  # highest first


def test_margin_and_least_confidence_scores() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.4, 0.35, 0.25], [0.8, 0.1, 0.1]]))
    z_l, y_l = labelled_stub(3)
    margin = Margin().query(logits, z_l, y_l, identity_head(3), 1).samples[schema.SCORE]
    least = LeastConfidence().query(logits, z_l, y_l, identity_head(3), 1).samples[schema.SCORE]
    np.testing.assert_allclose(margin, [0.7, 0.95, 0.3], atol=1e-6)
    np.testing.assert_allclose(least, [0.4, 0.6, 0.2], atol=1e-6)


@pytest.mark.parametrize("name", ["entropy", "margin", "leastconfidence"])
def test_ties_go_to_the_lower_position(name: str) -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0]]).repeat(30, 1)
    logits[[7, 21]] = 0.0  # two uniform rows, then ties among the rest
    z_l, y_l = labelled_stub(3)
    result = get_strategy(name).query(
        logits, z_l, y_l, identity_head(3), 5, unlabelled_ids=np.arange(100, 130)
    )
    np.testing.assert_array_equal(result.selected_ids, [107, 121, 100, 101, 102])


def test_top_k_positions_is_stable_and_puts_nan_last() -> None:
    scores = np.array([1.0, np.nan, 3.0, 3.0, 1.0])
    np.testing.assert_array_equal(top_k_positions(scores, 4), [2, 3, 0, 4])
    np.testing.assert_array_equal(top_k_positions(scores, 5)[-1], 1)


# ------------------------------------------------------------------------------------------
# random
# ------------------------------------------------------------------------------------------
def test_random_depends_on_seed_and_needs_no_head() -> None:
    z = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    z_l, y_l = z[:2] + 100, torch.tensor([0, 1])
    a = Random(random_state=1).query(z, z_l, y_l, None, 20)
    b = Random(random_state=1).query(z, z_l, y_l, None, 20)
    c = Random(random_state=2).query(z, z_l, y_l, None, 20)
    np.testing.assert_array_equal(a.selected_ids, b.selected_ids)
    assert set(a.selected_ids) != set(c.selected_ids)
    keys = a.samples[schema.SCORE].to_numpy()
    assert ((keys >= 0) & (keys < 1)).all()
    assert keys[a.selected_ids].min() >= np.delete(keys, a.selected_ids).max()
    assert (a.samples[schema.PSEUDO_LABEL] == -1).all()  # no head: default column


def test_random_is_roughly_uniform() -> None:
    z = torch.zeros(10, 2)
    z_l, y_l = torch.ones(2, 2), torch.tensor([0, 1])
    counts = np.zeros(10)
    for seed in range(300):
        counts[Random(random_state=seed).query(z, z_l, y_l, None, 3).selected_ids] += 1
    # each position is picked with probability 0.3: 90 expected, sd about 8
    assert counts.min() > 55
    assert counts.max() < 125


# ------------------------------------------------------------------------------------------
# BALD
# ------------------------------------------------------------------------------------------
def _bald_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, nn.Linear]:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(120, 8, generator=g).relu()
    head = nn.Linear(8, 3)
    with torch.no_grad():
        head.weight.copy_(torch.randn(3, 8, generator=g))
        head.bias.zero_()
    return z, z[:6] + 1.0, torch.tensor([0, 1, 2, 0, 1, 2]), head


def test_bald_without_dropout_has_no_disagreement() -> None:
    z, z_l, y_l, head = _bald_problem()
    result = BALD(dropout=0.0, n_draws=5).query(z, z_l, y_l, head, 10)
    assert np.abs(result.samples[schema.SCORE]).max() < 1e-6


def test_bald_ignores_dropout_inside_the_head() -> None:
    # the head is never switched to training mode: its own dropout stays off
    z, z_l, y_l, linear = _bald_problem()
    head = nn.Sequential(nn.Dropout(0.9), linear)
    head.train()
    result = BALD(dropout=0.0, n_draws=5).query(z, z_l, y_l, head, 10)
    assert np.abs(result.samples[schema.SCORE]).max() < 1e-6
    assert head.training


def test_bald_matches_a_direct_mc_estimate() -> None:
    z, z_l, y_l, head = _bald_problem()
    n_draws, dropout = 7, 0.3
    result = BALD(n_draws=n_draws, dropout=dropout, random_state=5).query(z, z_l, y_l, head, 10)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        probs = []
        for _ in range(n_draws):  # one chunk: all rows, one mask per draw
            mask = (torch.rand(z.shape, generator=g) < 1 - dropout).float()
            probs.append(torch.softmax(head(z * mask / (1 - dropout)).double(), 1))
        p = torch.stack(probs)  # (draws, n, classes)

        def h(q: torch.Tensor) -> torch.Tensor:
            return -(q * q.clamp_min(1e-12).log()).sum(-1)

        expected = (h(p.mean(0)) - h(p).mean(0)).clamp_min(0).numpy()
    scores = result.samples[schema.SCORE].to_numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores.max() > 1e-2  # there is disagreement with dropout
    np.testing.assert_array_equal(result.selected_ids, top_k_positions(scores, 10))


def test_bald_chunking_gives_valid_scores() -> None:
    z, _, _, head = _bald_problem()
    g = torch.Generator().manual_seed(0)
    scores = bald_scores(head, z, n_draws=4, dropout=0.5, generator=g, chunk_rows=7)
    assert scores.shape == (120,)
    assert bool(torch.isfinite(scores).all())
    assert bool((scores >= 0).all())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be a probability"),
        ({"n_draws": 0}, r"n_draws must be a positive integer"),
        ({"n_draws": 2.5}, r"n_draws must be a positive integer"),
    ],
)
def test_bald_rejects_bad_parameters_when_built(params: dict, match: str) -> None:
    with pytest.raises(AlfavizInputError, match=match):
        BALD(**params)  # at construction, before any query
    bald = BALD()
    with pytest.raises(AlfavizInputError, match=match):
        bald.set_params(**params)
    assert bald.get_params() == BALD().get_params()  # a failed set_params changes nothing


# ------------------------------------------------------------------------------------------
# CoreSet
# ------------------------------------------------------------------------------------------
def _naive_kcenter(
    z: np.ndarray, centres: np.ndarray, budget: int
) -> tuple[list[int], list[float]]:
    full = np.linalg.norm(z[:, None, :] - np.concatenate([centres, z])[None], axis=2)
    active = np.zeros(full.shape[1], dtype=bool)
    active[: len(centres)] = True
    picks, dists = [], []
    for _ in range(budget):
        d = full[:, active].min(axis=1)
        d[picks] = -np.inf
        i = int(np.argmax(d))
        picks.append(i)
        dists.append(float(d[i]))
        active[len(centres) + i] = True
    return picks, dists


def test_coreset_picks_far_clusters_first() -> None:
    g = torch.Generator().manual_seed(0)
    z_l = torch.randn(30, 2, generator=g)
    near = torch.randn(200, 2, generator=g)
    far_a = torch.randn(5, 2, generator=g) * 0.1 + torch.tensor([50.0, 0.0])
    far_b = torch.randn(5, 2, generator=g) * 0.1 + torch.tensor([0.0, -30.0])
    z = torch.cat([near, far_a, far_b])  # positions 200..204 are A, 205..209 are B
    result = CoreSet().query(z, z_l, torch.arange(30) % 2, None, 3)
    picked = result.selected_ids
    assert 200 <= picked[0] < 205  # the farthest cluster
    assert 205 <= picked[1] < 210  # then the other one, not a second point of A
    assert picked[2] < 200


def test_coreset_matches_naive_kcenter() -> None:
    g = torch.Generator().manual_seed(4)
    z = torch.randn(150, 5, generator=g, dtype=torch.float64)
    z_l = torch.randn(12, 5, generator=g, dtype=torch.float64)
    result = CoreSet().query(z, z_l, torch.arange(12) % 3, None, 20)
    picks, dists = _naive_kcenter(z.numpy(), z_l.numpy(), 20)
    np.testing.assert_array_equal(result.selected_ids, picks)
    scores = result.samples[schema.SCORE].to_numpy()
    np.testing.assert_allclose(scores[picks], dists, rtol=1e-10)
    assert np.all(np.diff(dists) <= 0)
    assert scores[picks].min() >= np.delete(scores, picks).max()


def test_kcenter_never_repicks_duplicates() -> None:
    z = torch.ones(8, 3)
    picked, picked_dist, final = kcenter_greedy(z, torch.ones(2, 3), 8)
    assert sorted(picked.tolist()) == list(range(8))
    assert float(picked_dist.abs().max()) == 0.0
    assert float(final.abs().max()) == 0.0


def test_coreset_with_head_records_probabilities() -> None:
    z, z_l, y_l, head = _bald_problem()
    samples = CoreSet().query(z, z_l, y_l, head, 4).samples
    assert (samples[schema.PSEUDO_LABEL] >= 0).all()
    assert samples[schema.ENTROPY].notna().all()


# ------------------------------------------------------------------------------------------
# BADGE
# ------------------------------------------------------------------------------------------
def _explicit_gradients(a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The (N, C*D) matrix BADGE must not form: row u is vec(a_u ⊗ z_u)."""
    return (a[:, :, None] * z[:, None, :]).reshape(len(a), -1)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    c=st.integers(2, 5),
    d=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_factorised_gradient_distance_equals_explicit(n: int, c: int, d: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n, c, generator=g, dtype=torch.float64) * 3, 1)
    z = torch.randn(n, d, generator=g, dtype=torch.float64).relu()
    a = gradient_embedding_factors(p)
    grads = _explicit_gradients(a, z)
    for v in range(n):
        explicit = ((grads - grads[v]) ** 2).sum(1)
        factorised = gradient_embedding_sq_dist(a, z, a[v], z[v])
        torch.testing.assert_close(factorised, explicit, rtol=1e-9, atol=1e-9)


def test_gradient_factors_are_the_linear_head_weight_gradient() -> None:
    g = torch.Generator().manual_seed(2)
    head = nn.Linear(4, 3).double()
    z = torch.randn(5, 4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        p = torch.softmax(head(z), 1)
    a = gradient_embedding_factors(p)
    for u in range(5):
        head.zero_grad()
        logits = head(z[u : u + 1])
        nn.functional.cross_entropy(logits, logits.argmax(1)).backward()
        torch.testing.assert_close(head.weight.grad, torch.outer(a[u], z[u]))


def _explicit_badge(a: torch.Tensor, z: torch.Tensor, budget: int, seed: int) -> list[int]:
    """Reference k-means++ on the explicit gradient matrix, same random stream."""
    gen = torch.Generator().manual_seed(seed)
    grads = _explicit_gradients(a, z)
    first = int(torch.argmax((grads**2).sum(1)))
    picks = [first]
    min_d2 = ((grads - grads[first]) ** 2).sum(1)
    for _ in range(1, budget):
        w = min_d2.clone()
        w[picks] = 0.0
        r = float(torch.rand((), generator=gen, dtype=torch.float64)) * float(w.sum())
        i = int(np.searchsorted(np.cumsum(w.numpy()), r, side="right"))
        assert w[i] > 0
        picks.append(i)
        min_d2 = torch.minimum(min_d2, ((grads - grads[i]) ** 2).sum(1))
    return picks


def test_badge_matches_explicit_kmeanspp() -> None:
    g = torch.Generator().manual_seed(7)
    head = nn.Linear(6, 4).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(4, 6, generator=g, dtype=torch.float64))
        head.bias.zero_()
    z = torch.randn(80, 6, generator=g, dtype=torch.float64).relu()
    z_l, y_l = z[:4] + 1.0, torch.arange(4)
    result = BADGE(random_state=3).query(z, z_l, y_l, head, 12)
    with torch.no_grad():
        a = gradient_embedding_factors(torch.softmax(head(z).float(), 1).double())
    np.testing.assert_array_equal(result.selected_ids, _explicit_badge(a, z, 12, seed=3))
    norms = _explicit_gradients(a, z).norm(dim=1).numpy()
    np.testing.assert_allclose(result.samples[schema.SCORE], norms, rtol=1e-6)
    assert result.selected_ids[0] == int(np.argmax(norms))


def test_badge_is_diverse_not_just_uncertain() -> None:
    # twenty copies of the most uncertain sample: BADGE takes one, Entropy takes many
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(100, 4, generator=g) * 2
    z = torch.cat([torch.zeros(20, 4) + 0.01, spread])
    z_l, y_l = labelled_stub(4)
    badge = BADGE().query(z, z_l, y_l, identity_head(4), 8).selected_ids
    entropy = Entropy().query(z, z_l, y_l, identity_head(4), 8).selected_ids
    assert (badge < 20).sum() <= 1
    assert (entropy < 20).sum() == 8


def test_kmeanspp_uniform_fallback_on_duplicates() -> None:
    a = torch.tensor([[0.5, -0.5]]).repeat(6, 1)
    z = torch.ones(6, 3)
    picked, norms = kmeanspp_gradient(a, z, 6, torch.Generator().manual_seed(0))
    assert sorted(picked.tolist()) == list(range(6))
    torch.testing.assert_close(norms, torch.full((6,), math.sqrt(0.5 * 3)))


def test_badge_rejects_non_linear_head() -> None:
    z, z_l, y_l, linear = _bald_problem()
    head = nn.Sequential(nn.ReLU(), linear)
    with pytest.raises(AlfavizInputError, match=r"BADGE needs the head to be a single nn.Linear"):
        BADGE().query(z, z_l, y_l, head, 3)
