"""The candidate search never mutates what it is given (docs/algorithm.md, design notes)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from alfaviz._tensor import eval_mode, frozen_parameters
from alfaviz.alfamix import find_candidates
from alfaviz.alfamix.candidates import finalize_candidates, score_pool, stopping_level
from alfaviz.alfamix.mixing import compute_anchors, level_schedule
from tests.core.test_alfamix import make_problem


def _heads(d: int, c: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    lin = nn.Linear(d, c)
    with torch.no_grad():
        lin.weight.mul_(3)
    deep = nn.Sequential(
        nn.Linear(d, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, c)
    )
    return {"linear": lin, "generic": deep, "learned": copy.deepcopy(lin)}


def _module_state(head: nn.Module) -> list[tuple[str, bool]]:
    return [(name, m.training) for name, m in head.named_modules()]


def _param_state(head: nn.Module) -> list[tuple[str, bool, torch.Tensor]]:
    params = [(n, p.requires_grad, p.detach().clone()) for n, p in head.named_parameters()]
    return params + [(n, False, b.clone()) for n, b in head.named_buffers()]


def _snapshot_scores(sc) -> dict[str, np.ndarray | None]:
    return {
        k: (None if getattr(sc, k) is None else np.array(getattr(sc, k), copy=True))
        for k in ("first_level", "critical_eps", "step_unit", "pseudo_labels", "flip_to_levels")
    }


@pytest.mark.parametrize("path", ["linear", "generic", "learned"])
def test_nothing_is_mutated(path):
    zu, zl, yl, _ = make_problem(21, 240, 60, 12, 4, relu=True)
    head = _heads(12, 4)[path]
    alpha = "learned" if path == "learned" else "closed_form"
    cap = 1 / 8 if path == "learned" else 0.2
    # mixed modes and flags: the head in train mode with one part in eval, one frozen weight
    head.train()
    if isinstance(head, nn.Sequential):
        head[3].eval()
    first_param = next(head.parameters())
    first_param.requires_grad_(False)
    modes, params = _module_state(head), _param_state(head)
    inputs = [zu, zl, yl]
    copies = [t.clone() for t in inputs]
    versions = [t._version for t in inputs]

    res = find_candidates(zu, zl, yl, head, 60, alpha=alpha, alpha_cap=cap, learn_steps=3)
    assert res.mask.any()

    for t, c, v in zip(inputs, copies, versions, strict=True):
        assert torch.equal(t, c)
        assert t._version == v  # not even written in place with the same values
    assert _module_state(head) == modes
    for (n0, rg0, p0), (n1, rg1, p1) in zip(params, _param_state(head), strict=True):
        assert (n0, rg0) == (n1, rg1)
        assert torch.equal(p0, p1)
    assert all(p.grad is None for p in head.parameters())

    # the three steps on their own: the scores survive finalising, twice, unchanged
    anchors = compute_anchors(zl, yl, 4)
    a_copy = anchors.clone()
    levels = level_schedule(cap)
    lv_copy = list(levels)
    sc = score_pool(zu, anchors, head, levels, alpha=alpha, learn_steps=3)
    assert _module_state(head) == modes
    snap = _snapshot_scores(sc)
    fmin = sc.first_level.min(axis=1)
    fmin_copy = fmin.copy()
    j, _ = stopping_level(fmin, 60, len(levels))
    np.testing.assert_array_equal(fmin, fmin_copy)
    one = finalize_candidates(zu, anchors, head, levels, sc, j, alpha=alpha)
    two = finalize_candidates(zu, anchors, head, levels, sc, j, alpha=alpha)
    for k, v in _snapshot_scores(sc).items():
        if v is None:
            assert snap[k] is None
        else:
            np.testing.assert_array_equal(v, snap[k])
    np.testing.assert_array_equal(one.step_norm, two.step_norm)
    np.testing.assert_array_equal(one.flip_to, two.flip_to)
    assert torch.equal(anchors, a_copy)
    assert levels == lv_copy
    assert _module_state(head) == modes
    np.testing.assert_array_equal(one.mask, res.mask)
    # results share the scores' large arrays without a copy, read-only: nobody can write
    # through a result into the scores
    with pytest.raises(ValueError, match="read-only"):
        one.critical_eps[...] = -1.0
    with pytest.raises(ValueError, match="read-only"):
        one.pseudo_labels[0] = 7
    assert not (sc.critical_eps == -1.0).any()


def test_scores_are_frozen():
    zu, zl, yl, head = make_problem(22, 50, 20, 6, 3)
    sc = score_pool(zu, compute_anchors(zl, yl, 3), head, level_schedule(0.2))
    with pytest.raises(AttributeError):
        sc.first_level = None  # type: ignore[misc]


def test_mode_helpers_restore_exactly_even_on_error():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    net.train()
    net[1].eval()
    net[2].weight.requires_grad_(False)
    seen: list[tuple[bool, bool]] = []

    def fail() -> None:
        with eval_mode(net), frozen_parameters(net):
            seen.append(
                (
                    any(m.training for m in net.modules()),
                    any(p.requires_grad for p in net.parameters()),
                )
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert seen == [(False, False)]
    assert [m.training for m in net.modules()] == [True, True, False, True]
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, True, False, True]
    with eval_mode(None), frozen_parameters(None):
        pass
