"""Engines, and the sharded candidate search: 3 shards give exactly the whole pool's answer."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch
from torch import nn

from alfaviz.alfamix import alfamix_query, find_candidates
from alfaviz.engine import Engine, LocalEngine, row_shards
from alfaviz.errors import AlfavizInputError
from tests.core.test_alfamix import make_problem


class CountingEngine:
    """A LocalEngine that records how many shards each map call received, and runs them in
    reverse order (an engine may run shards in any order; results come back in shard order)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def map(self, fn, shards):
        self.calls.append(len(shards))
        out = [fn(s) for s in reversed(list(shards))]
        return out[::-1]


def _assert_identical(a, b) -> None:
    for f in fields(a):
        if f.name == "timings":
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype, f.name
            np.testing.assert_array_equal(va, vb, err_msg=f.name)  # bitwise for floats too
        else:
            assert va == vb, f.name


def _deep_head(d: int, c: int) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, c))


CASES = {
    # path: (head factory, alpha, alpha_cap, max_chunk_bytes)
    "linear": (None, "closed_form", 0.2, 1 << 15),
    "generic": (_deep_head, "closed_form", 0.2, 1 << 20),
    "learned": (None, "learned", 1 / 8, 1 << 20),
}


@pytest.mark.parametrize("path", list(CASES))
def test_four_shards_equal_the_whole_pool(path):
    factory, alpha, cap, chunk = CASES[path]
    zu, zl, yl, lin = make_problem(31, 900, 120, 24, 10, relu=True)
    head = lin if factory is None else factory(24, 10)
    kw = {"alpha": alpha, "alpha_cap": cap, "max_chunk_bytes": chunk, "learn_steps": 3}
    whole = find_candidates(zu, zl, yl, head, 150, **kw)
    eng = CountingEngine()
    sharded = find_candidates(zu, zl, yl, head, 150, engine=eng, shard_size=256, **kw)
    assert eng.calls == [4, 4]  # scoring and finishing, four shards each
    assert 0 < whole.n_candidates < 900
    assert whole.flips.any()
    _assert_identical(whole, sharded)
    # the stopping level is the global one, not a shard's
    assert sharded.n_candidates_per_level == whole.n_candidates_per_level


def test_stopping_level_is_global_across_shards():
    """Every shard alone stays under the budget at the level where the pool exceeds it."""
    zu, zl, yl, head = make_problem(32, 900, 120, 24, 10, relu=True)
    whole = find_candidates(zu, zl, yl, head, 200, max_chunk_bytes=1 << 16)
    j = whole.level_index
    per_shard = [int(whole.mask[s:e].sum()) for s, e in row_shards(900, 300, align=1)]
    assert sum(per_shard) == whole.n_candidates
    sharded = find_candidates(
        zu, zl, yl, head, 200, max_chunk_bytes=1 << 16, engine=LocalEngine(), shard_size=300
    )
    assert sharded.level_index == j
    np.testing.assert_array_equal(sharded.mask, whole.mask)


def test_query_accepts_an_engine():
    zu, zl, yl, head = make_problem(33, 600, 100, 16, 5)
    a = alfamix_query(zu, zl, yl, head, 50, max_chunk_bytes=1 << 15)
    b = alfamix_query(zu, zl, yl, head, 50, max_chunk_bytes=1 << 15, engine=LocalEngine(),
                      shard_size=100)  # fmt: skip
    np.testing.assert_array_equal(a.selected, b.selected)
    assert a.kmeans_inertia == b.kmeans_inertia


def test_local_engine_and_protocol():
    assert LocalEngine().map(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
    assert isinstance(LocalEngine(), Engine)
    assert isinstance(CountingEngine(), Engine)


def test_row_shards_align_to_blocks():
    assert row_shards(10, None) == [(0, 10)]
    assert row_shards(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert row_shards(10, 3, align=4) == [(0, 4), (4, 8), (8, 10)]
    assert row_shards(0, 5) == [(0, 0)]
    bounds = row_shards(1000, 300, align=14)
    assert all(s % 14 == 0 for s, _ in bounds)
    assert bounds[-1][1] == 1000


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_shard_size(bad):
    zu, zl, yl, head = make_problem(34, 50, 10, 4, 2)
    with pytest.raises(AlfavizInputError, match="shard_size"):
        find_candidates(zu, zl, yl, head, 5, shard_size=bad)


def test_bad_engine():
    zu, zl, yl, head = make_problem(34, 50, 10, 4, 2)
    with pytest.raises(AlfavizInputError, match="engine"):
        find_candidates(zu, zl, yl, head, 5, engine=object())
