"""Speed and memory of the ALFA-Mix query: alfaviz against the release's per-class loop.

Usage::

    python benchmarks/query_speed.py                 # the full table (10k ... 1M, both problems)
    python benchmarks/query_speed.py --sizes 10000 --problems relu   # a quick look
    python benchmarks/query_speed.py --device cuda   # on a GPU

Rows above ``--plain-max`` (200k by default) skip the release loop, which would take minutes
and several GB there; the table then shows ``-`` for its columns and ``n/a`` for the check.

Each row runs in a fresh subprocess. A thread samples the resident set size every millisecond
while the query runs, so "added MB" is the peak memory a query adds beyond its inputs (on a
GPU: the peak CUDA memory allocated), measured after one warm-up query on 2,000 rows. The plain
loop below follows the structure of the authors' release: a Python loop over levels and, inside
it, over classes, recomputing each anchor and materialising N×D temporaries per class, then
scikit-learn's ``KMeans(n_clusters=B)`` with its defaults on the normalised candidates. Both
see the same float32 problem, and the table says whether their candidate sets are identical.

The k-means columns compare alfaviz's clustering of the candidates with scikit-learn's
``KMeans`` run with the same settings (greedy k-means++ init, ``n_init=1``, ``max_iter=50``,
``tol=1e-4``, Lloyd, same seed) on the same L2-normalised candidates: inertia of each and
their ratio (the mean ratio is printed below the table).

Two workloads, each a Gaussian mixture in D dimensions with a linear head fitted to the
labelled set: ``relu`` passes it through ReLU (so anchors and samples share exact zeros, as with
real CNN features, and the sparse near-zero corrections matter), ``dense`` does not (no exact
zeros: the threshold path is essentially one N × D × C matrix product).

Columns: the α search alone (release: the level/class loop; alfaviz: ``find_candidates``) and
the whole query of each side, their ratios, the peak memory a query adds as a multiple of the
unlabelled matrix, whether the candidate sets are identical (every row of the mask), and the
k-means inertia against scikit-learn's with the same settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "plain_release_query"]

SEPARATION = {10: 6.0, 100: 10.0}
"""Distance scale of the class centres per C: the fitted head is 90-99% accurate, and the
search stops at an intermediate level with a few thousand candidates at N = 50k."""


def _rss_mb(field: str = "VmRSS") -> float:
    """A memory figure of this process in MB from ``/proc/self/status`` (the resident set by
    default; ``"RssAnon"``: its anonymous part)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_problem(n: int, d: int, c: int, n_lab: int, seed: int, device: str, problem: str = "relu"):
    """A Gaussian-mixture pool (through ReLU for ``"relu"``), a labelled set and a linear head.

    The pool is generated in row blocks, so a 1M-row problem needs no temporaries beyond it.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * (SEPARATION.get(c, 8.0) / math.sqrt(d))
    yu = torch.randint(c, (n,), generator=g)
    yl = torch.arange(n_lab) % c
    zu = torch.empty(n, d)
    for s in range(0, n, 65536):
        zu[s : s + 65536] = centers[yu[s : s + 65536]] + torch.randn(
            min(65536, n - s), d, generator=g
        )
    zl = centers[yl] + torch.randn(n_lab, d, generator=g)
    if problem == "relu":
        zu.relu_()
        zl.relu_()
    elif problem != "dense":
        raise ValueError(f"problem must be 'relu' or 'dense'; got {problem!r}")
    torch.manual_seed(seed)
    head = torch.nn.Linear(d, c)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(zl), yl).backward()
        opt.step()
    head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return zu.to(device), zl.to(device), yl.to(device), head.to(device)


def plain_release_query(zu, zl, yl, head, budget: int, alpha_cap: float = 0.2, seed: int = 0):
    """The release's structure: loops over levels and classes, then sklearn k-means.

    Returns the candidate mask (numpy), the selected positions and the phase timings.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    n, d = zu.shape
    c = head.out_features
    with torch.no_grad():
        pred = head(zu).argmax(1)
    var = zu.clone().requires_grad_(True)
    loss = F.cross_entropy(head(var), pred)
    grads = torch.autograd.grad(loss, var)[0]
    candidate = torch.zeros(n, dtype=torch.bool)
    k = 1
    eps = 0.0
    while eps < 1.0 - 1e-12:
        eps = k * alpha_cap
        k += 1
        e = eps / math.sqrt(d)
        pred_change = torch.zeros(n, dtype=torch.bool)
        for i in range(c):
            emb = zl[yl == i]
            if emb.size(0) == 0:
                emb = zl
            anchor = emb.mean(dim=0).view(1, -1).repeat(n, 1)
            z = anchor - zu
            alpha = (
                (e * z.norm(dim=1) / grads.norm(dim=1)).unsqueeze(1).repeat(1, d)
                * grads
                / (z + 1e-8)
            )
            mixed = (1 - alpha) * zu + alpha * anchor
            with torch.no_grad():
                out = head(mixed).detach().cpu()
            pc = out.argmax(dim=1) != pred.cpu()
            pc &= (grads.norm(dim=1) > 0).cpu()
            pred_change[pc] = True
        candidate |= pred_change
        if int(candidate.sum()) > budget:
            break
    t1 = time.perf_counter()
    feats = F.normalize(zu[candidate.to(zu.device)], dim=1).cpu().numpy()
    m = min(budget, feats.shape[0])
    picked = np.zeros(0, dtype=np.int64)
    if m:
        km = KMeans(n_clusters=m, random_state=seed).fit(feats)
        lab = km.predict(feats)
        dis = ((feats - km.cluster_centers_[lab]) ** 2).sum(1)
        cand_idx = np.nonzero(candidate.numpy())[0]
        picked = np.array(
            [cand_idx[lab == i][dis[lab == i].argmin()] for i in range(m) if (lab == i).any()]
        )
    t2 = time.perf_counter()
    return candidate.numpy(), picked, {"alpha": t1 - t0, "kmeans": t2 - t1, "total": t2 - t0}


KMEANS = {"kmeans_n_init": 1, "kmeans_max_iter": 50, "kmeans_tol": 1e-4}
"""The k-means settings of both clusterings (alfaviz's defaults, written out)."""


def sklearn_inertia(zu, mask, budget: int, seed: int = 0) -> float:
    """Inertia of scikit-learn's ``KMeans`` with alfaviz's settings on the same candidates."""
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    idx = torch.as_tensor(np.nonzero(mask)[0], device=zu.device)
    x = zu[idx].float()
    x = (x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)).cpu().numpy()
    km = KMeans(
        n_clusters=min(budget, x.shape[0]), init="k-means++", n_init=KMEANS["kmeans_n_init"],
        max_iter=KMEANS["kmeans_max_iter"], tol=KMEANS["kmeans_tol"], algorithm="lloyd",
        random_state=seed,
    ).fit(x)  # fmt: skip
    return float(km.inertia_)


REPEATS = int(os.environ.get("ALFAVIZ_BENCH_REPEATS", "3"))
"""alfaviz rows report the best of this many calls (memory: the first call)."""


def run_one(
    method: str, n: int, d: int, c: int, budget: int, n_lab: int, device: str, problem: str
) -> dict:
    """One row of the table, measured in this process."""
    import numpy as np
    import torch

    torch.set_num_threads(int(os.environ.get("ALFAVIZ_BENCH_THREADS", torch.get_num_threads())))
    zu, zl, yl, head = make_problem(n, d, c, n_lab, seed=0, device=device, problem=problem)
    input_mb = zu.numel() * zu.element_size() / 2**20
    base_cuda = 0
    from sklearn.cluster import KMeans  # noqa: F401 - imported before measuring memory

    from alfaviz.alfamix import alfamix_query

    inertia = [float("nan")]

    def query() -> tuple:
        if method == "alfaviz":
            t0 = time.perf_counter()
            out = alfamix_query(zu, zl, yl, head, budget, random_state=0, **KMEANS)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter() - t0
            times = {
                "alpha": out.timings["candidates"],  # the whole search, flip labels too
                "kmeans": out.timings["kmeans"],
                "total": t,
            }
            inertia[0] = out.kmeans_inertia
            return out.candidates.mask, times, out.candidates.level
        mask, _, times = plain_release_query(zu, zl, yl, head, budget)
        return mask, times, float("nan")

    # one call on a small slice first: the one-time set-up of the libraries (thread pools,
    # lazy imports, allocator arenas) is not memory the query adds
    if method == "alfaviz":
        warm = min(n, 2000)
        alfamix_query(zu[:warm], zl, yl, head, min(budget, warm // 4), random_state=0, **KMEANS)
    # peak memory: a thread samples the resident set every millisecond while the query runs
    # (resetting the kernel's high-water mark instead slows the next call down)
    rss0 = _rss_mb()
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    mask, times, level = query()
    done.set()
    sampler.join()
    added = peak[0] - rss0
    # timings: the best of REPEATS calls (single calls vary by ±30% on a shared 2-core box);
    # the release loop is far slower and is timed once
    if method == "alfaviz":
        for _ in range(REPEATS - 1):
            _, more, _ = query()
            times = {k: min(v, more[k]) for k, v in times.items()}
    if device == "cuda":
        added = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
    sk_inertia = float("nan")
    if method == "alfaviz" and mask.any():  # after the measurement: not timed
        sk_inertia = sklearn_inertia(zu, mask, budget, seed=0)
    return {
        "method": method,
        "problem": problem,
        "n": n,
        "d": d,
        "c": c,
        "device": device,
        "input_mb": input_mb,
        "added_mb": added,
        "n_candidates": int(mask.sum()),
        "level": level,
        "mask_hash": int(np.packbits(mask).astype(np.uint64).sum() * 1000003 + mask.sum()),
        "mask": np.nonzero(mask)[0].tolist() if mask.sum() < 300000 else [],
        "inertia": inertia[0],
        "sk_inertia": sk_inertia,
        **{f"t_{k}": v for k, v in times.items()},
    }


def _child(args: argparse.Namespace) -> None:
    row = run_one(
        args.method, args.n, args.d, args.c, args.budget, args.labelled, args.device,
        args.problem,
    )  # fmt: skip
    print("ROW " + json.dumps(row))


def _spawn(
    method: str,
    n: int,
    d: int,
    c: int,
    budget: int,
    n_lab: int,
    device: str,
    problem: str,
    cache: Path | None = None,
) -> dict:
    key = f"{method}-{problem}-n{n}-d{d}-c{c}-b{budget}-l{n_lab}-{device}.json"
    if cache is not None and method == "plain" and (cache / key).exists():
        return json.loads((cache / key).read_text())  # the release loop does not change
    cmd = [
        sys.executable, __file__, "--child", "--method", method, "--n", str(n), "--d", str(d),
        "--c", str(c), "--budget", str(budget), "--labelled", str(n_lab), "--device", device,
        "--problem", problem,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in res.stdout.splitlines():
        if line.startswith("ROW "):
            row = json.loads(line[4:])
            if cache is not None and method == "plain":
                cache.mkdir(parents=True, exist_ok=True)
                (cache / key).write_text(json.dumps(row))
            return row
    raise RuntimeError(f"benchmark child failed:\n{res.stderr[-3000:]}")


def _table_row(args: argparse.Namespace, problem: str, n: int, c: int) -> tuple[str, float]:
    """One printed row (both sides at one size) and its k-means inertia ratio."""
    ours = _spawn("alfaviz", n, args.d, c, args.budget, args.labelled, args.device, problem)
    plain = None
    if not args.no_plain and n <= args.plain_max:
        plain = _spawn(
            "plain", n, args.d, c, args.budget, args.labelled, args.device, problem, args.cache
        )
    if plain is None:
        same = "n/a (release skipped)"
    elif len(ours["mask"]) != ours["n_candidates"]:
        same = "n/a (mask too large to compare)"
    else:
        same = str(plain["mask"] == ours["mask"]).lower()
    p_alpha = f"{plain['t_alpha']:.2f}" if plain else "-"
    p_total = f"{plain['t_total']:.2f}" if plain else "-"
    p_mem = f"{plain['added_mb']:.0f}" if plain else "-"
    sp_alpha = f"{plain['t_alpha'] / ours['t_alpha']:.1f}×" if plain else "-"
    sp_total = f"{plain['t_total'] / ours['t_total']:.1f}×" if plain else "-"
    # k = |candidates| (no more candidates than the budget): every candidate is its own
    # cluster, both inertias are 0 up to rounding, and there is nothing to compare
    sk = ours["sk_inertia"]
    own = ours["n_candidates"] <= args.budget
    ratio = math.nan if own or not sk > 0 else ours["inertia"] / sk
    shown = "— (each candidate its own cluster)" if own else f"{ratio:.4f}"
    line = (
        f"| {problem} | {n} | {args.d} | {c} | {args.device} | {p_alpha} | {p_total} "
        f"| {ours['t_alpha']:.2f} | {ours['t_kmeans']:.2f} | {ours['t_total']:.2f} "
        f"| {sp_alpha} | {sp_total} | {p_mem} | {ours['added_mb']:.0f} "
        f"| {ours['added_mb'] / ours['input_mb']:.2f} | {ours['n_candidates']} | {same} "
        f"| {ours['inertia']:.2f} | {ours['sk_inertia']:.2f} | {shown} |"
    )
    return line, ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000, 1_000_000])
    ap.add_argument("--problems", nargs="+", default=["dense", "relu"], choices=["dense", "relu"])
    ap.add_argument(
        "--plain-max", type=int, default=200_000,
        help="largest N at which the release loop runs (it takes minutes and GBs beyond)",
    )  # fmt: skip
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--labelled", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-plain", action="store_true", help="skip the release loop")
    ap.add_argument(
        "--cache", type=Path, default=None,
        help="reuse the release loop's rows (timings, memory, candidates) stored in this folder",
    )  # fmt: skip
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="alfaviz", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=10_000, help=argparse.SUPPRESS)
    ap.add_argument("--c", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--problem", default="relu", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    hdr = (
        "| problem | N | D | C | device | release α search s | release query s "
        "| alfaviz α search s | alfaviz k-means s | alfaviz query s | speed-up α search "
        "| speed-up query | release added MB | alfaviz added MB | added / unlabelled matrix "
        "| candidates | same candidates | k-means inertia alfaviz | k-means inertia sklearn "
        "| inertia ratio |"
    )
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    ratios: list[float] = []
    for problem in args.problems:
        for n in args.sizes:
            for c in args.classes:
                row = _table_row(args, problem, n, c)
                if math.isfinite(row[1]):
                    ratios.append(row[1])
                print(row[0], flush=True)
    if ratios:
        print(
            f"\nk-means inertia, alfaviz / scikit-learn (same settings, same candidates): mean "
            f"{sum(ratios) / len(ratios):.4f} over {len(ratios)} row(s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
