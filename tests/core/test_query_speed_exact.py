"""Exactness of the fast paths of the query (benchmarks/query_speed.py): the cell-table
prefilter of the near-coordinate search, the in-place unit gradient and the block size."""

from __future__ import annotations

import math

import pytest
import torch

from alfaviz.alfamix import _linear
from alfaviz.alfamix._linear import NEAR, AnchorIndex
from alfaviz.alfamix.candidates import _chunk_rows, _flip_piece_rows
from alfaviz.alfamix.mixing import unit_gradient


def _brute_triples(anchors: torch.Tensor, z: torch.Tensor) -> list[tuple[int, int, int]]:
    """Every (dim, row, class) the definition asks for, by brute force in float64."""
    a = anchors.double()
    z64 = z.double()
    common = a.amin(dim=0) == a.amax(dim=0)
    diff = (a[None, :, :] - z64[:, None, :]).abs()  # (n, C, D)
    keep = (diff < NEAR) & ((z64[:, None, :] != 0) | (a[None, :, :] != 0))
    keep &= ~common[None, None, :]
    u, c, d = torch.nonzero(keep, as_tuple=True)
    return sorted(zip(d.tolist(), u.tolist(), c.tolist(), strict=True))


def _problem(seed: int, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    anchors = torch.randn(7, 24, generator=g)
    anchors[:, 3] = 0.5  # a common dimension
    anchors[2, 5] = 0.0  # an exact zero
    anchors[4, 6] = 3e-5  # near zero
    z = torch.randn(300, 24, generator=g)
    z[:40] = anchors[torch.arange(40) % 7] + torch.randn(40, 24, generator=g) * 1e-4
    z[40:60, 5] = 0.0
    z[60:80, 6] = 0.0
    z[80:90] = anchors[1]  # exactly on an anchor: Δ = 0
    if relu:
        z = z.relu()
        anchors = anchors.relu()
    return anchors, z


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("search", ["cell lists", "keys", "rows", "no table"])
def test_near_triples_match_brute_force(relu, search, monkeypatch):
    # every way of finding a coordinate's anchors gives the same answer: the per-cell lists,
    # one binary search in the shifted keys, one per row (values too spread for the keys),
    # and the fallback without a cell table
    if search != "cell lists":
        monkeypatch.setattr(_linear, "_CELL_LIST_MAX", 0)
    if search == "no table":
        monkeypatch.setattr(_linear, "_CELL_TABLE_MAX", 0)
    anchors, z = _problem(0, relu)
    index = AnchorIndex(anchors)
    if search == "rows":
        index._keys_exact = False
    t_d, t_u, t_c = index.near_triples(z)
    got = list(zip(t_d.tolist(), t_u.tolist(), t_c.tolist(), strict=True))
    assert sorted(got) == _brute_triples(anchors, z)
    assert len(got) > 40  # the planted coordinates are found
    keys = [(d, u) for d, u, _ in got]
    assert keys == sorted(keys)  # d-major order, as the corrections sum them


@pytest.mark.parametrize("relu", [False, True])
def test_a_memory_bound_widens_the_cells_then_drops_lists_and_table(relu):
    # the bound only changes how the coordinates are found, never which triples come back
    anchors, z = _problem(3, relu)
    free = AnchorIndex(anchors)
    want = free.near_triples(z)
    cells = free._table_cells
    total = free.dim * cells
    seen = []
    for bound in [10**9, total * _linear._LIST_BYTES_PER_CELL - 1, total, 0]:
        index = AnchorIndex(anchors, max_bytes=bound)
        got = index.near_triples(z)
        assert all(torch.equal(x, y) for x, y in zip(want, got, strict=True))
        lists = index._cell_start is not None
        seen.append((index._table is not None, lists, index._table_cells))
        if index._table is not None:  # what was built fits the bound
            per = _linear._LIST_BYTES_PER_CELL if lists else 1
            assert index.dim * index._table_cells * per <= bound
    assert seen[0] == (True, True, cells)
    assert seen[1][1]  # still listed
    assert seen[1][2] < cells  # in wider cells
    assert seen[2] == (True, False, cells)  # the narrow table alone
    assert seen[3] == (False, False, 0)  # no table: every coordinate is searched


def test_cell_table_is_rebuilt_for_a_wider_window():
    anchors, z = _problem(1, False)
    index = AnchorIndex(anchors)
    small = index.near_triples(z)
    big = index.near_triples(z * 1e4)  # max |z| widens the float32 window
    again = index.near_triples(z)
    assert all(torch.equal(x, y) for x, y in zip(small, again, strict=True))
    assert index._table_win >= 1.01 * NEAR + 2.0**-20 * float((z * 1e4).abs().max())
    assert sorted(zip(*(t.tolist() for t in big), strict=True)) == _brute_triples(anchors, z * 1e4)


def test_unit_gradient_matches_the_float64_reference_without_a_copy():
    g = torch.randn(200, 32, generator=torch.Generator().manual_seed(2))
    g[3] = 0
    g[7] *= 1e-39  # subnormal in float32: its float32 norm underflows
    before = g.clone()
    g_hat, ok = unit_gradient(g)
    ref = g.double()
    top = ref.abs().amax(dim=-1, keepdim=True)
    ref = ref / torch.where(top > 0, top, torch.ones_like(top))
    norm = ref.norm(dim=-1, keepdim=True)
    ref = ref / torch.where(norm > 0, norm, torch.ones_like(norm))
    assert g_hat.dtype == torch.float64
    assert torch.allclose(g_hat, ref, rtol=1e-14, atol=1e-15)
    assert torch.equal(ok, top.squeeze(1) > 0)
    assert not bool(ok[3])
    assert bool(ok[7])
    assert torch.allclose(g_hat[7].norm(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.equal(g, before)  # the input is not modified
    g64 = g.double()
    g64[5] *= 1e-300  # float64: scaled first, so its square does not underflow
    g_hat64, ok64 = unit_gradient(g64)
    assert torch.equal(ok64, ok)
    assert torch.allclose(g_hat64[5], ref[5], rtol=1e-12)


def test_exact_path_blocks_are_larger_but_bounded():
    n, d = 50_000, 512
    exact = _chunk_rows(n, d, 10, 5, 4, False, None)
    generic = _chunk_rows(n, d, 10, 5, 4, True, None)
    per_row = 8 * (5 * d + (8 + 15) * 10 + 80) + 4 * 10 * 10
    assert exact == (n * d * 4 // 2) // per_row
    assert exact * per_row <= n * d * 4 // 2 < 2 * n * d * 4
    assert generic < exact
    assert _chunk_rows(n, d, 10, 5, 4, False, 1 << 16) == max(8, (1 << 16) // per_row)
    assert math.isfinite(exact)
    # at C = 100 the second pass's pieces hold (row, C, C) float64 terms: they stay within the
    # same budget, with 12 C² bytes a row on top of a first-pass row
    rows = _chunk_rows(n, d, 100, 5, 4, False, None)
    first_row = 8 * (5 * d + (8 + 15) * 100 + 800) + 4 * 100 * 100
    assert rows == (n * d * 4 // 2) // first_row
    piece = _flip_piece_rows(rows, d, 100, 5)
    assert piece * (first_row + 12 * 100 * 100) <= n * d * 4 // 2
    assert piece < rows


def _linear_problem(seed: int, n: int):
    """ReLU features of 16 dimensions, 60 labelled in 5 classes, a random linear head."""
    g = torch.Generator().manual_seed(seed)
    zu = torch.randn(n, 16, generator=g).relu()
    zl = torch.randn(60, 16, generator=g).relu()
    yl = torch.arange(60) % 5
    head = torch.nn.Linear(16, 5)
    torch.nn.init.normal_(head.weight, generator=g)
    return zu, zl, yl, head


def test_exact_flip_labels_are_int32_and_minus_one_off_the_flips():
    from alfaviz.alfamix import find_candidates
    from alfaviz.alfamix.mixing import loss_gradients, plain_flip_labels

    zu, zl, yl, head = _linear_problem(3, 400)
    res = find_candidates(zu, zl, yl, head, 40)
    assert res.flip_to.dtype.name == "int32"
    assert ((res.flip_to >= 0) == res.flips).all()
    rows, classes = (torch.as_tensor(a) for a in res.flips.nonzero())
    with torch.no_grad():
        y_hat = head(zu).argmax(1)
    grad = loss_gradients(head, zu, y_hat)
    anchors = torch.as_tensor(res.anchors)
    eps = torch.full((rows.numel(),), res.level, dtype=torch.float64)
    lit = plain_flip_labels(head, zu, grad, anchors, rows, classes, eps)
    assert rows.numel() > 0
    assert (torch.as_tensor(res.flip_to[rows, classes]).long() == lit).all()


def test_the_flip_label_pass_reuses_the_scoring_index(monkeypatch):
    """One anchor index per query on the exact path; the second pass over the candidates
    reuses the first's, and builds its own only for anchors it was not built from."""
    from alfaviz.alfamix import candidates as cand_mod
    from alfaviz.alfamix import find_candidates
    from alfaviz.alfamix.mixing import compute_anchors

    built = []
    real = cand_mod.AnchorIndex

    class Counting(real):
        def __init__(self, *a, **k):
            built.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(cand_mod, "AnchorIndex", Counting)
    zu, zl, yl, head = _linear_problem(4, 500)
    res = find_candidates(zu, zl, yl, head, 40)
    assert res.mask.any()
    assert len(built) == 1
    # the same scores finalised against other anchors get an index of their own, and the
    # labels of the shared index are those of a fresh one
    anchors = compute_anchors(zl, yl, 5)
    levels = list(res.levels)
    scores = cand_mod.score_pool(zu, anchors, head, levels)
    assert scores.index is not None
    assert scores.index.indexes(anchors)
    assert not scores.index.indexes(anchors + 1e-3)
    shared = cand_mod.finalize_candidates(zu, anchors, head, levels, scores, res.level_index)
    fresh = cand_mod.finalize_candidates(
        zu, anchors, head, levels, cand_mod.replace(scores, index=None), res.level_index
    )
    assert (shared.flip_to == fresh.flip_to).all()
    assert (shared.flip_to == res.flip_to).all()


def test_exact_path_blocks_stop_at_a_cache_sized_float64_block():
    from alfaviz.alfamix.candidates import EXACT_BLOCK_F64_BYTES

    for n, d in ((200_000, 512), (1_000_000, 512), (1_000_000, 128), (1_000_000, 768)):
        rows = _chunk_rows(n, d, 10, 5, 4, False, None)
        assert rows == EXACT_BLOCK_F64_BYTES // (8 * d)
    assert _chunk_rows(50_000, 512, 10, 5, 4, False, None) < EXACT_BLOCK_F64_BYTES // (8 * 512)
    # the level-by-level paths keep their memory-derived blocks (256 MiB of (row, C, D) terms)
    assert _chunk_rows(1_000_000, 512, 2, 5, 4, True, None) == (256 << 20) // (8 * 4 * 2 * 512)


def test_host_transfers_and_syncs_do_not_grow_with_the_classes():
    """Nothing crosses between host and device per class: the calls that copy a tensor to the
    host or read a value from it (``cpu``, ``numpy``, ``item``, ``bool``, ``float`` ..., and
    ``to`` a device) are counted during one block of the search, and the count is the same
    for 4, 16 and 48 classes. On a GPU each of them is a copy or a synchronisation."""
    import collections

    from torch.overrides import TorchFunctionMode

    from alfaviz.alfamix import find_candidates

    host = {"cpu", "numpy", "item", "tolist", "__bool__", "__float__", "__int__", "__index__"}

    class Count(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.n: collections.Counter[str] = collections.Counter()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", str(func))
            moves = name == "to" and any(
                isinstance(a, (str, torch.device)) for a in [*args[1:], *kwargs.values()]
            )
            if name in host or moves:
                self.n[name] += 1
            return func(*args, **kwargs)

    counts = []
    for c in (4, 16, 48):
        g = torch.Generator().manual_seed(0)
        centers = torch.randn(c, 32, generator=g) * 3
        zu = centers[torch.randint(c, (600,), generator=g)] + torch.randn(600, 32, generator=g)
        yl = torch.arange(6 * c) % c
        zl = (centers[yl] + torch.randn(6 * c, 32, generator=g)).relu()
        head = torch.nn.Linear(32, c)
        with torch.no_grad():
            head.weight.copy_(centers.relu() * 0.3)
        mode = Count()
        with mode:  # one block: the block count would otherwise change with C
            res = find_candidates(zu.relu(), zl, yl, head, 20, max_chunk_bytes=1 << 30)
        assert res.mask.any()
        counts.append(dict(mode.n))
    assert counts[0]
    assert counts[1] == counts[0]
    assert counts[2] == counts[0]


def test_pair_thresholds_from_whole_rows_equal_the_entry_wise_ones(monkeypatch):
    """The corrected pairs' thresholds, taken over whole rows of the zero-part corrections
    with the near-coordinate terms added, are bit-identical to the entry-wise ones."""
    from alfaviz.alfamix.mixing import level_schedule

    anchors, z = _problem(5, relu=True)
    anchors[:, 8:12] = 0.0  # shared zeros with most samples
    z[:, 8:10] = 0.0
    torch.manual_seed(0)
    head = torch.nn.Linear(z.shape[1], anchors.shape[0])
    calls = {"pairs": 0, "near": 0}
    dense = _linear._pair_thresholds_dense

    def both(gap, base, y_hat, pu, pc, corr):
        got = dense(gap, base, y_hat, pu, pc, corr)
        reach = torch.zeros(corr.pos.shape, dtype=torch.bool)
        reach[corr.uk_u, corr.uk_k] = True
        reach[corr.uk_u, y_hat[corr.uk_u]] = False
        want = _linear._pair_thresholds_entries(gap, base, y_hat, pu, pc, reach, corr)
        assert torch.equal(got, want)
        calls["pairs"] += int(pu.numel())
        calls["near"] += int((corr.sparse_slot >= 0).sum())
        return got

    monkeypatch.setattr(_linear, "_pair_thresholds_dense", both)
    out = _linear.linear_thresholds(head, z * 3, anchors * 3, level_schedule(0.2))
    assert calls["pairs"] > 100  # corrected pairs with a reachable class
    assert calls["near"] > 10  # and near-coordinate terms among them
    assert bool(torch.isfinite(out.critical_eps).any())
