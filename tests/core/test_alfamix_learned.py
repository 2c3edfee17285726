"""Learned α against a plain reimplementation of the authors' release (docs/algorithm.md).

The reference below follows the release's ``find_candidate_set`` / ``learn_alpha`` line by
line: a loop over levels, a loop over classes with the anchor repeated per sample, and for
each class ``alpha_learning_iters`` iterations of "evaluate the head at the current α, then one
Adam step on −CE + 0.01·‖α‖₂, then clamp α to [1e-8, ε]", at ``lr`` for the first two thirds
of the iterations and ``lr / 10`` after. The √D scaling of ε is applied only for the closed
form (``if alpha_closed_form_approx: alpha_cap /= sqrt(D)``), so learned α is capped at ε.
Two documented changes: **one persistent Adam optimiser** (the release builds a new one at
every iteration), and α starts at exactly ε/2 (the release draws N(ε/2, ε/2), then clamps),
which makes the variant deterministic. Levels are ``k · alpha_cap`` (the schedule fix).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from alfaviz.alfamix import find_candidates
from tests.core.test_alfamix import make_problem


def release_learn_alpha(head, org_embed, labels, anchor_embed, alpha, alpha_cap, iters, lr):
    """The release's ``learn_alpha`` with one persistent optimiser; returns ``pred_changed``."""
    pred_changed = torch.zeros(labels.size(0), dtype=torch.bool)
    loss_func = torch.nn.CrossEntropyLoss(reduction="none")
    head.eval()
    l = alpha.clone().requires_grad_(True)  # noqa: E741 - the release's name
    opt = torch.optim.Adam([l], lr=lr)  # (fix) created once, not at every iteration
    for i in range(iters):
        for group in opt.param_groups:
            group["lr"] = lr / (1.0 if i < iters * 2 / 3 else 10.0)
        embedding_mix = (1 - l) * org_embed + l * anchor_embed
        out = head(embedding_mix)
        label_change = out.argmax(dim=1) != labels
        pred_changed |= label_change.detach()
        clf_loss = loss_func(out, labels)
        l2_nrm = torch.norm(l, dim=1)
        clf_loss = clf_loss * -1
        loss = 1.0 * clf_loss + 0.01 * l2_nrm
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            l.clamp_(min=1e-8, max=alpha_cap)
    return pred_changed


def release_learned_candidates(
    zu, zl, yl, head, budget, *, alpha_cap=1 / 32, iters=5, lr=0.1, cap_scale=1.0
):
    """The release's learned-α query loop (candidates only); ``cap_scale`` = 1/sqrt(D) gives
    the old, wrong cap."""
    head = copy.deepcopy(head)
    for p in head.parameters():
        p.requires_grad_(False)
    n, d = zu.shape
    n_cls = head.out_features
    with torch.no_grad():
        pred_1 = head(zu).argmax(dim=1)
    candidate = torch.zeros(n, dtype=torch.bool)
    k, eps = 1, 0.0
    while eps < 1.0 - 1e-12:
        eps = k * alpha_cap
        k += 1
        cap = eps * cap_scale
        pred_change = torch.zeros(n, dtype=torch.bool)
        for i in range(n_cls):
            emb = zl[yl == i]
            if emb.size(0) == 0:
                emb = zl
            anchor_i = emb.mean(dim=0).view(1, -1).repeat(n, 1)
            alpha = torch.clamp(torch.full((n, d), cap / 2.0, dtype=zu.dtype), min=1e-8, max=cap)
            pc = release_learn_alpha(head, zu, pred_1, anchor_i, alpha, cap, iters, lr)
            pred_change[pc] = True
        candidate |= pred_change
        if int(candidate.sum()) > budget:
            break
    return candidate.numpy(), eps


@pytest.mark.parametrize(("seed", "weight_scale"), [(41, 1.0), (43, 1.0), (42, 3.0)])
def test_learned_candidates_equal_the_release_variant(seed, weight_scale):
    zu, zl, yl, head = make_problem(seed, 300, 60, 16, 4, relu=True, weight_scale=weight_scale)
    zu, zl, head = zu.double(), zl.double(), copy.deepcopy(head).double()  # rounding: irrelevant
    budget = 60
    ref, level = release_learned_candidates(zu, zl, yl, head, budget)
    res = find_candidates(zu, zl, yl, head, budget, alpha="learned", alpha_cap=1 / 32)
    assert res.level == pytest.approx(level)
    assert 0 < res.n_candidates < 300
    np.testing.assert_array_equal(res.mask, ref)
    # the test tells the caps apart: ε/sqrt(D) stops later, with another candidate set
    old, old_level = release_learned_candidates(
        zu, zl, yl, head, budget, cap_scale=1 / math.sqrt(16)
    )
    assert old_level > level
    assert not np.array_equal(old, ref)


def test_learned_float32_agrees_with_float64_reference():
    zu, zl, yl, head = make_problem(45, 300, 60, 16, 4, relu=True, weight_scale=1.0)
    ref, _ = release_learned_candidates(
        zu.double(), zl.double(), yl, copy.deepcopy(head).double(), 60
    )
    res = find_candidates(zu, zl, yl, head, 60, alpha="learned", alpha_cap=1 / 32)
    assert (res.mask != ref).sum() <= 2  # float32 rounding may move a borderline sample


def test_learned_alpha_respects_the_cap():
    """With α capped at ε (not ε/√D) the step taken never exceeds ε·‖Δ‖ and often exceeds
    the closed form's ε/√D·‖Δ‖ bound."""
    zu, zl, yl, head = make_problem(46, 200, 60, 16, 4, relu=True, weight_scale=1.0)
    res = find_candidates(zu, zl, yl, head, 199, alpha="learned", alpha_cap=1 / 16)
    from alfaviz.alfamix.mixing import compute_anchors

    anchors = compute_anchors(zl, yl, 4)
    dn = torch.cdist(zu.double(), anchors.double()).numpy()
    first = np.where(np.isfinite(res.critical_eps), res.critical_eps, 0.0)
    fl = res.flips
    assert fl.any()
    assert (res.step_norm[fl] <= first[fl] * dn[fl] * (1 + 1e-5)).all()
    assert (res.step_norm[fl] > first[fl] * dn[fl] / math.sqrt(16) * (1 + 1e-3)).any()


def test_learned_steps_zero_flips_nothing():
    zu, zl, yl, head = make_problem(47, 100, 30, 8, 3)
    res = find_candidates(zu, zl, yl, head, 10, alpha="learned", alpha_cap=0.25, learn_steps=0)
    assert res.n_candidates == 0
