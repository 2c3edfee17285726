"""ALFA-Mix against a literal implementation of docs/algorithm.md (closed form, schedule), and its
fixes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from alfaviz import schema
from alfaviz.alfamix import alfamix_query, find_candidates
from alfaviz.alfamix.candidates import finalize_candidates, score_pool, stopping_level
from alfaviz.alfamix.mixing import (
    alpha_per_eps,
    closed_form_alpha,
    compute_anchors,
    level_schedule,
    mix,
    plain_flip_labels,
    unit_gradient,
)
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies import ALFAMix


def plain_reference(zu, zl, yl, head, budget, alpha_cap=0.2):
    """One class and one level at a time, float32, exactly as the definition reads.

    Returns the candidate mask, the flips and the flip labels at the stopping level, and the level.
    """
    n_cls = head.out_features
    n, d = zu.shape
    with torch.no_grad():
        pred = head(zu).argmax(1)
    z = zu.clone().requires_grad_(True)
    grads = torch.autograd.grad(nn.functional.cross_entropy(head(z), pred), z)[0]
    ok = grads.norm(dim=1) > 0
    cand = torch.zeros(n, dtype=torch.bool)
    k, eps = 1, 0.0
    while eps < 1.0 - 1e-12:
        eps = k * alpha_cap
        k += 1
        e = eps / math.sqrt(d)
        flips = torch.zeros(n, n_cls, dtype=torch.bool)
        to = torch.full((n, n_cls), -1)
        for c in range(n_cls):
            emb = zl[yl == c]
            if emb.shape[0] == 0:
                emb = zl
            anchor = emb.mean(0).view(1, -1).repeat(n, 1)
            delta = anchor - zu
            scale = (e * delta.norm(dim=1) / grads.norm(dim=1)).unsqueeze(1).repeat(1, d)
            alpha = scale * grads / (delta + 1e-8)
            mixed = (1 - alpha) * zu + alpha * anchor
            with torch.no_grad():
                out = head(mixed).argmax(1)
            f = (out != pred) & ok
            flips[:, c] = f
            to[:, c] = torch.where(f, out, torch.full_like(out, -1))
        cand |= flips.any(1)
        if int(cand.sum()) > budget:
            break
    return cand.numpy(), flips.numpy(), to.numpy(), eps


def make_problem(seed, n, m, d, c, *, relu=True, spread=1.5, weight_scale=3.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * 2
    yl = torch.arange(m) % c
    yu = torch.randint(c, (n,), generator=g)
    zl = centers[yl] + torch.randn(m, d, generator=g) * spread
    zu = centers[yu] + torch.randn(n, d, generator=g) * spread
    if relu:
        zl, zu = zl.relu(), zu.relu()
    torch.manual_seed(seed)
    head = nn.Linear(d, c)
    with torch.no_grad():
        head.weight.mul_(weight_scale)
    return zu, zl, yl, head


CASES = [
    # (n, m, d, c, relu, budget): budgets chosen so that the search stops at different levels
    (1500, 200, 32, 10, True, 700),
    (1200, 300, 48, 100, True, 700),
    (1500, 100, 16, 5, False, 1100),
    (1500, 400, 64, 10, True, 1490),
    (800, 60, 8, 3, True, 10),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"n{c[0]}-d{c[2]}-c{c[3]}-relu{c[4]}")
def test_candidates_equal_literal_definition(seed, case):
    n, m, d, c, relu, budget = case
    zu, zl, yl, head = make_problem(seed, n, m, d, c, relu=relu)
    res = find_candidates(zu, zl, yl, head, budget)
    mask, flips, to, level = plain_reference(zu, zl, yl, head, budget)
    assert res.level == pytest.approx(level)
    np.testing.assert_array_equal(res.mask, mask)
    np.testing.assert_array_equal(res.flips, flips)
    np.testing.assert_array_equal(res.flip_to, to)


def test_levels_reached_cover_the_schedule():
    """The cases above really exercise stopping at the first level and at 1.0."""
    levels = set()
    for case in CASES:
        n, m, d, c, relu, budget = case
        zu, zl, yl, head = make_problem(0, n, m, d, c, relu=relu)
        levels.add(round(find_candidates(zu, zl, yl, head, budget).level, 6))
    assert 0.2 in levels
    assert 1.0 in levels
    assert len(levels) >= 3


def test_relu_zero_mask_matters():
    """With ReLU features the Δ = 0 coordinates must not move: ignoring them changes flips."""
    zu, zl, yl, head = make_problem(3, 1500, 300, 48, 100, relu=True)
    anchors = compute_anchors(zl, yl, 100)
    assert bool(((anchors == 0).any(0)).any())  # some coordinates are exactly shared zeros
    res = find_candidates(zu, zl, yl, head, 700)
    mask, _, _, _ = plain_reference(zu, zl, yl, head, 700)
    np.testing.assert_array_equal(res.mask, mask)


def test_critical_eps_is_the_exact_threshold():
    zu, zl, yl, head = make_problem(4, 600, 100, 24, 6, relu=True)
    res = find_candidates(zu, zl, yl, head, 599)
    anchors = compute_anchors(zl, yl, 6)
    with torch.no_grad():
        pred = head(zu).argmax(1)
    z = zu.clone().requires_grad_(True)
    grads = torch.autograd.grad(nn.functional.cross_entropy(head(z), pred, reduction="sum"), z)[0]
    finite = np.argwhere(np.isfinite(res.critical_eps))
    assert len(finite) > 50
    rng = np.random.default_rng(0)
    checked = 0
    for u, c in finite[rng.choice(len(finite), 60, replace=False)]:
        crit = res.critical_eps[u, c]
        for factor, expect in ((1 + 1e-4, True), (1 - 1e-4, False)):
            e = torch.tensor(crit * factor, dtype=torch.float64)
            a = closed_form_alpha(float(e), zu[u].double(), anchors[c].double(), grads[u].double())
            zt = mix(zu[u].double(), anchors[c].double(), a)
            with torch.no_grad():
                out = (zt @ head.weight.double().T + head.bias.double()).argmax()
            assert bool(out != pred[u]) == expect, (u, c, crit, factor)
        checked += 1
    assert checked == 60
    # consistency with the flags: flipped at the stopping level iff critical ε ≤ level
    np.testing.assert_array_equal(res.flips, res.critical_eps <= res.level)


def test_step_norm_is_length_of_step_taken():
    zu, zl, yl, head = make_problem(5, 300, 60, 16, 4, relu=True)
    res = find_candidates(zu, zl, yl, head, 100)
    anchors = compute_anchors(zl, yl, 4)
    with torch.no_grad():
        pred = head(zu).argmax(1)
    z = zu.clone().requires_grad_(True)
    grads = torch.autograd.grad(nn.functional.cross_entropy(head(z), pred), z)[0]
    for u in range(0, 300, 37):
        for c in range(4):
            a = closed_form_alpha(res.level, zu[u].double(), anchors[c].double(), grads[u].double())
            delta = anchors[c].double() - zu[u].double()
            assert res.step_norm[u, c] == pytest.approx(float((a * delta).norm()), rel=1e-5)


def test_saturated_softmax_is_never_flippable():
    """(fix) ‖g‖ = 0 gives NaN and a spurious flip in the release; here it never flips."""
    zu, zl, yl, head = make_problem(6, 400, 80, 8, 4, relu=False)
    zu = zu.clone()
    with torch.no_grad():
        zu[:50] = head.weight[0] * 1e4  # logits so large that the softmax is exactly one-hot
    pred_logits = head(zu[:50])
    p = torch.softmax(pred_logits, 1)
    assert bool((p.max(1).values == 1).all())
    z = zu[:50].clone().requires_grad_(True)
    g = torch.autograd.grad(nn.functional.cross_entropy(head(z), p.argmax(1)), z)[0]
    assert bool((g.norm(dim=1) == 0).all())
    res = find_candidates(zu, zl, yl, head, 399)
    assert not res.mask[:50].any()
    assert np.isinf(res.critical_eps[:50]).all()
    assert res.mask[50:].any()


def test_zero_candidates_all_fill_without_replacement():
    """(fix) zero candidates: the release crashes; here every pick is a unique random fill."""
    g = torch.Generator().manual_seed(0)
    zl = torch.randn(40, 6, generator=g)
    yl = torch.arange(40) % 2
    zu = torch.randn(200, 6, generator=g)
    head = nn.Linear(6, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 0.0]))  # constant logits: nothing ever flips
    out = alfamix_query(zu, zl, yl, head, 50, random_state=3)
    assert out.candidates.n_candidates == 0
    assert out.n_fill == 50
    assert out.n_kmeans == 0
    assert out.from_fill.all()
    assert len(np.unique(out.selected)) == 50
    again = alfamix_query(zu, zl, yl, head, 50, random_state=3)
    np.testing.assert_array_equal(out.selected, again.selected)


def test_fill_has_no_duplicates_and_reports_count():
    zu, zl, yl, head = make_problem(7, 500, 60, 16, 4)
    res = find_candidates(zu, zl, yl, head, 5)
    n_cand = res.n_candidates
    budget = min(499, n_cand + 150)
    out = alfamix_query(zu, zl, yl, head, budget)
    assert len(np.unique(out.selected)) == budget
    assert out.n_kmeans + out.n_fill == budget
    assert out.n_fill == int(out.from_fill.sum())
    assert out.candidates.mask[out.selected[~out.from_fill]].all()
    assert not out.candidates.mask[out.selected[out.from_fill]].any() or out.n_kmeans < n_cand


def test_empty_clusters_are_skipped_and_filled():
    """Candidates with duplicate embeddings leave k-means clusters empty; the fill covers them."""
    zu, zl, yl, head = make_problem(8, 300, 60, 12, 3, relu=False)
    zu = zu.clone()
    zu[100:300] = zu[100:110].repeat(20, 1)  # only 110 distinct points
    res = find_candidates(zu, zl, yl, head, 250)
    distinct = np.unique(zu[res.mask].numpy(), axis=0).shape[0]
    assert distinct < res.n_candidates
    out = alfamix_query(zu, zl, yl, head, 250)
    assert out.n_kmeans <= distinct
    assert len(np.unique(out.selected)) == 250
    assert out.n_fill == 250 - out.n_kmeans


class Wrapped(nn.Module):
    """A non-Linear head module that computes the same function (takes the batched path)."""

    def __init__(self, lin: nn.Linear) -> None:
        super().__init__()
        self.lin = lin

    def forward(self, z):
        return self.lin(z)


@pytest.mark.parametrize("seed", [0, 1])
def test_generic_head_path_agrees_with_linear_path(seed):
    zu, zl, yl, head = make_problem(seed, 600, 120, 24, 6, relu=True)
    fast = find_candidates(zu, zl, yl, head, 300)
    slow = find_candidates(zu, zl, yl, Wrapped(head), 300, max_chunk_bytes=1 << 16)
    np.testing.assert_array_equal(fast.mask, slow.mask)
    np.testing.assert_array_equal(fast.flips, slow.flips)
    np.testing.assert_array_equal(fast.flip_to, slow.flip_to)
    both = np.isfinite(fast.critical_eps) & np.isfinite(slow.critical_eps)
    np.testing.assert_allclose(slow.critical_eps[both], fast.critical_eps[both], rtol=0, atol=2e-4)


def test_nonlinear_head_works():
    zu, zl, yl, _ = make_problem(9, 300, 60, 16, 4)
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
    res = find_candidates(zu, zl, yl, head, 50)
    assert res.flips.shape == (300, 4)
    assert res.mask.any()
    flipped = res.flips
    with torch.no_grad():
        pred = head(zu).argmax(1).numpy()
    assert (res.flip_to[flipped] != np.repeat(pred[:, None], 4, 1)[flipped]).all()
    assert (res.flip_to[~flipped] == -1).all()


def test_learned_alpha_runs_and_is_deterministic():
    zu, zl, yl, head = make_problem(10, 300, 60, 16, 4)
    a = find_candidates(zu, zl, yl, head, 30, alpha="learned", alpha_cap=1 / 32)
    b = find_candidates(zu, zl, yl, head, 30, alpha="learned", alpha_cap=1 / 32)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.levels[0] == pytest.approx(1 / 32)
    assert a.mask.any()
    with torch.no_grad():
        pred = head(zu).argmax(1).numpy()
    fl = a.flips
    assert (a.flip_to[fl] != np.repeat(pred[:, None], 4, 1)[fl]).all()
    strat = ALFAMix(alpha="learned", random_state=0)
    r = strat.query(zu, zl, yl, head, 30)
    assert len(set(r.selected_ids.tolist())) == 30


def test_anchor_of_missing_class_is_mean_of_all_labelled():
    zl = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    yl = torch.tensor([0, 0, 2])
    a = compute_anchors(zl, yl, 4)
    np.testing.assert_allclose(a[0].numpy(), [1.0, 2.0])
    np.testing.assert_allclose(a[1].numpy(), [2.0, 3.0])
    np.testing.assert_allclose(a[2].numpy(), [4.0, 5.0])
    np.testing.assert_allclose(a[3].numpy(), [2.0, 3.0])


@given(st.floats(min_value=0.01, max_value=1.0))
@settings(max_examples=50, deadline=None)
def test_level_schedule(cap):
    lv = level_schedule(cap)
    assert lv[-1] >= 1.0 - 1e-9
    assert all(x < 1.0 - 1e-12 for x in lv[:-1])
    np.testing.assert_allclose(lv, [cap * (k + 1) for k in range(len(lv))])


def test_default_schedule():
    assert level_schedule(0.2) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    with pytest.raises(AlfavizInputError, match="alpha_cap"):
        level_schedule(0.0)


@given(st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_flags_grow_with_eps(seed):
    zu, zl, yl, head = make_problem(seed, 120, 30, 8, 3, relu=bool(seed % 2))
    res = find_candidates(zu, zl, yl, head, 119)  # runs to the last level
    counts = res.n_candidates_per_level
    assert list(counts) == sorted(counts)
    # first flip level is the smallest level at or above the sample's smallest critical ε
    crit = res.critical_eps.min(1)
    fin = np.isfinite(crit)
    lv = np.asarray(res.levels)
    expect = lv[np.searchsorted(lv, crit[fin] - 1e-12)]
    np.testing.assert_allclose(res.first_flip_eps[fin], expect)


def test_sharded_scoring_equals_whole_pool():
    """Per-sample scores of two shards combine into the same answer as the whole pool."""
    zu, zl, yl, head = make_problem(11, 900, 100, 24, 10, relu=True)
    budget = 300
    whole = find_candidates(zu, zl, yl, head, budget)
    anchors = compute_anchors(zl, yl, 10)
    levels = level_schedule(0.2)
    parts = [
        score_pool(zu[:400], anchors, head, levels),
        score_pool(zu[400:], anchors, head, levels),
    ]
    fmin = np.concatenate([p.first_level.min(1) for p in parts])
    j, _ = stopping_level(fmin, budget, len(levels))
    shards = [
        finalize_candidates(zu[:400], anchors, head, levels, parts[0], j),
        finalize_candidates(zu[400:], anchors, head, levels, parts[1], j),
    ]
    assert levels[j] == pytest.approx(whole.level)
    np.testing.assert_array_equal(np.concatenate([s.mask for s in shards]), whole.mask)
    np.testing.assert_array_equal(np.concatenate([s.flip_to for s in shards]), whole.flip_to)


def test_strategy_records_and_frames():
    zu, zl, yl, head = make_problem(12, 400, 80, 16, 4)
    ids = np.arange(5000, 5400)
    r = ALFAMix(random_state=1).query(zu, zl, yl, head, 40, unlabelled_ids=ids)
    s = r.samples
    assert list(s.columns) == list(schema.SAMPLES_COLUMNS)
    assert len(s) == 400
    np.testing.assert_array_equal(
        np.sort(s.loc[s[schema.SELECTED], schema.SAMPLE_ID]), np.sort(r.selected_ids)
    )
    assert set(r.selected_ids) <= set(ids)
    assert s.loc[s[schema.SELECTED] & ~s[schema.FILL], schema.CANDIDATE].all()
    f = r.flips
    assert list(f.columns) == list(schema.FLIPS_COLUMNS)
    assert len(f) == 400 * 4
    inc = f.groupby(schema.SAMPLE_ID)[schema.FLIPPED].sum()
    np.testing.assert_array_equal(
        inc.loc[s[schema.SAMPLE_ID]].to_numpy(), s[schema.INCONSISTENCY].to_numpy()
    )
    assert r.info["n_kmeans"] + r.info["n_fill"] == 40
    assert min(abs(r.info["level"] - x) for x in (0.2, 0.4, 0.6, 0.8, 1.0)) < 1e-9
    assert r.paths is not None
    assert set(r.paths[schema.SAMPLE_ID]) == set(r.selected_ids)
    # the path starts at the sample itself: its prediction there is the pseudo-label
    start = r.paths[r.paths[schema.PATH_T] == 0].groupby(schema.SAMPLE_ID)[schema.PATH_PRED].first()
    pl = s.set_index(schema.SAMPLE_ID)[schema.PSEUDO_LABEL]
    np.testing.assert_array_equal(start.to_numpy(), pl.loc[start.index].to_numpy())


def test_bad_alpha_mode():
    zu, zl, yl, head = make_problem(0, 50, 10, 4, 2)
    with pytest.raises(AlfavizInputError, match="closed_form"):
        find_candidates(zu, zl, yl, head, 5, alpha="magic")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    zu, zl, yl, head = make_problem(13, 2000, 200, 32, 10, relu=True)
    cpu = alfamix_query(zu, zl, yl, head, 300)
    gpu = alfamix_query(zu.cuda(), zl.cuda(), yl.cuda(), head.cuda(), 300)
    np.testing.assert_array_equal(cpu.candidates.mask, gpu.candidates.mask)
    assert len(np.unique(gpu.selected)) == 300


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_zero_test_is_one_function_in_every_dtype(dtype):
    """(fix) ‖g‖ = 0 is "every entry is 0": a float32 norm of tiny gradients underflows to 0,
    which used to make the literal path call such samples unflippable and the fast path not."""
    g = torch.zeros(5, 8, dtype=dtype)
    g[1] = 1e-30  # float32: the squares underflow, the norm is 0
    g[2, 3] = 1e-44 if dtype == torch.float32 else 1e-300  # subnormal / tiny
    g[3] = torch.linspace(-1, 1, 8, dtype=dtype)
    g[4, 0] = -2.5
    assert float(torch.full((8,), 1e-30).norm()) == 0.0  # the trap, in float32
    g_hat, ok = unit_gradient(g)
    assert ok.tolist() == [False, True, True, True, True]
    assert g_hat.dtype == torch.float64
    np.testing.assert_allclose(g_hat[1:].norm(dim=1).numpy(), 1.0, rtol=1e-12)
    assert float(g_hat[0].abs().sum()) == 0.0
    # the same answer from the other dtype
    other = torch.float64 if dtype == torch.float32 else torch.float32
    if dtype == torch.float32:
        assert unit_gradient(g.to(other))[1].tolist() == ok.tolist()
    # the literal path agrees: tiny nonzero gradients are flippable (a label), zero is not (-1)
    torch.manual_seed(0)
    head = nn.Linear(8, 3).to(dtype)
    z = torch.randn(5, 8, dtype=dtype)
    anchors = torch.randn(3, 8, dtype=dtype)
    rows = torch.arange(5).repeat_interleave(3)
    cls = torch.arange(3).repeat(5)
    labs = plain_flip_labels(head, z, g, anchors, rows, cls, torch.full((15,), 0.6))
    assert (labs[rows == 0] == -1).all()
    assert (labs[rows != 0] >= 0).all()
    # the fast path uses the same test: a nearly saturated softmax (gap 80: g ~ 1e-35, whose
    # float32 norm underflows) is flippable on both paths, an exactly saturated one on neither
    from alfaviz.alfamix._linear import _gradients

    lin = nn.Linear(2, 3, bias=False).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    zs = torch.tensor([[80.0, 0.0], [800.0, 0.0]], dtype=dtype)  # e^-800 is 0 in both
    gr = _gradients(lin, zs)
    if dtype == torch.float32:
        assert float(gr.grad[0].norm()) == 0.0 < float(gr.grad[0].abs().max())
    assert gr.flippable.tolist() == [True, False]
    lab = plain_flip_labels(
        lin, zs, gr.grad, torch.zeros(1, 2, dtype=dtype), torch.tensor([0, 1]),
        torch.tensor([0, 0]), torch.tensor([0.2, 0.2]),
    )  # fmt: skip
    assert lab.tolist()[1] == -1
    assert lab.tolist()[0] >= 0


def test_closed_form_alpha_is_the_definition():
    """``closed_form_alpha`` equals the formula as written in the paper and the release."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 10, generator=g, dtype=torch.float64)
    a = torch.randn(6, 10, generator=g, dtype=torch.float64)
    a[:, 2] = z[:, 2]  # Δ = 0 in one coordinate: that coordinate does not move
    grad = torch.randn(6, 10, generator=g, dtype=torch.float64)
    eps = 0.4
    delta = a - z
    literal = (
        (eps / math.sqrt(10) * delta.norm(dim=1) / grad.norm(dim=1))[:, None]
        * grad
        / (delta + 1e-8)
    )
    np.testing.assert_allclose(
        closed_form_alpha(eps, z, a, grad).numpy(), literal.numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        (eps * alpha_per_eps(delta, unit_gradient(grad)[0])).numpy(), literal.numpy(), rtol=1e-12
    )
    step = (closed_form_alpha(eps, z, a, grad) * delta)[:, 2]
    assert float(step.abs().max()) == 0.0


def _dense_float64_critical_eps(zu, zl, yl, head):
    """The threshold of the definition in float64 with the mask r = Δ ⊘ (Δ + 1e-8) everywhere."""
    n_cls = head.out_features
    a = compute_anchors(zl, yl, n_cls).double()
    z, w, b = zu.double(), head.weight.detach().double(), head.bias.detach().double()
    with torch.no_grad():
        y = head(zu).argmax(1)
    zz = zu.clone().requires_grad_(True)
    g = torch.autograd.grad(nn.functional.cross_entropy(head(zz), y, reduction="sum"), zz)[0]
    g_hat = g.double() / g.double().norm(dim=1, keepdim=True)
    logits = z @ w.T + b
    gap = (logits.gather(1, y[:, None]) - logits).clamp_min(0)
    out = np.full((z.shape[0], n_cls), np.inf)
    for c in range(n_cls):
        delta = a[c][None] - z
        wv = (g_hat * delta / (delta + 1e-8)) @ w.T
        rate = wv - wv.gather(1, y[:, None])
        t = torch.where(rate > 0, gap / rate, torch.full_like(rate, math.inf))
        t.scatter_(1, y[:, None], math.inf)
        out[:, c] = (t.amin(1) * math.sqrt(z.shape[1]) / delta.norm(dim=1)).numpy()
    return out


@pytest.mark.parametrize("case", [CASES[0], CASES[2]], ids=["c10-relu", "c5-norelu"])
def test_critical_eps_precision_is_as_documented(case):
    """Away from the levels the critical ε is the float64 threshold to within 2e-5 relative
    (linear_thresholds, "Precision"); near them it is consistent with the literal flips."""
    n, m, d, c, relu, budget = case
    zu, zl, yl, head = make_problem(0, n, m, d, c, relu=relu)
    res = find_candidates(zu, zl, yl, head, budget)
    ref = _dense_float64_critical_eps(zu, zl, yl, head)
    lv = np.asarray(res.levels)
    ref_in = np.where(ref <= lv[-1], ref, np.inf)
    away = ~(np.abs(ref[..., None] - lv) <= 1.1e-3 * lv).any(-1)
    np.testing.assert_array_equal(np.isfinite(res.critical_eps)[away], np.isfinite(ref_in)[away])
    fin = away & np.isfinite(ref_in)
    assert fin.sum() > 1000
    rel = np.abs(res.critical_eps[fin] - ref[fin]) / ref[fin]
    assert rel.max() < 2e-5
    assert np.median(rel) < 1e-7
