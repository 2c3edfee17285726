"""Wall time and memory of the ALFA-Mix query on the Ray engine against the local engine.

Usage::

    python benchmarks/distributed.py                      # 1M × 256, 10 classes, 1 and 2 workers
    python benchmarks/distributed.py --n 200000 --workers 2

The pool is synthetic: N × D ReLU features of a Gaussian mixture with a linear head fitted
to 1,000 labelled rows (the problem of ``query_speed.py``), so "embedding" is the identity
and the work is the scoring of the shards and the k-means of the candidates. One local Ray
cluster (``ray.init(num_cpus=2)`` by default) serves every row; each row builds its own
actors.

Columns:

* ``actors s``: starting the row's actors (a fresh Python process each, importing torch);
* ``query s``: the whole query (scoring, finish, k-means, fill), the best of ``--repeats``;
* ``driver added MB``: peak resident memory the first query adds to this process;
* ``worker peak MB``: each actor's peak resident set, and in brackets what the query added
  to it beyond its start (torch and Ray alone take several hundred MB);
* ``same``: whether the candidate set and the selection equal the local engine's.

The object store holds one copy of each shard while a map runs (the pool once, in shared
memory), which is not counted in any process above.

A second table runs :func:`~alfaviz.alfamix.sharded.sharded_query` on the same pool, written
to a memory-mapped ``.npy`` first: the workers read their rows from the file, score them and
write their records as Parquet; only the per-level counts and the candidates come back to the
driver (``records MB``: the Parquet the shards wrote; ``same``: the selection and the
candidates equal the local engine's ``alfamix_query``). Skip it with ``--no-sharded``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query_speed import _rss_mb, make_problem

__all__ = ["main"]


class _Peak:
    """Samples this process's resident set every millisecond while in the block."""

    def __enter__(self) -> _Peak:
        self.base = _rss_mb()
        self.peak = self.base
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._t.join()

    @property
    def added(self) -> float:
        return self.peak - self.base


def _query(problem, engine, budget: int, repeats: int):
    from alfaviz.alfamix import alfamix_query

    zu, zl, yl, head = problem
    times = []
    with _Peak() as peak:
        out = alfamix_query(zu, zl, yl, head, budget, random_state=0, engine=engine)
    times.append(out.timings.get("total", float("nan")))
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        alfamix_query(zu, zl, yl, head, budget, random_state=0, engine=engine)
        times.append(time.perf_counter() - t0)
    return out, min(times), peak.added


def _sharded_rows(args: argparse.Namespace, problem, local) -> None:
    """The sharded query on the same pool, written to a memory-mapped ``.npy``: the workers
    read their rows from the file and write their records; the driver gets the candidates."""
    import shutil
    import tempfile

    import numpy as np
    import torch

    from alfaviz.alfamix.sharded import sharded_query
    from alfaviz.data._features import FeatureRows
    from alfaviz.engine import LocalEngine, RayEngine
    from alfaviz.learner.models import LinearProbe

    zu, zl, yl, head = problem
    n, d = zu.shape
    root = Path(tempfile.mkdtemp(prefix="alfaviz-sharded-", dir=args.folder))
    t0 = time.perf_counter()
    mm = np.lib.format.open_memmap(root / "pool.npy", "w+", np.float32, (n + len(zl), d))
    mm[:n], mm[n:] = zu.numpy(), zl.numpy()
    mm.flush()
    del mm
    x = FeatureRows(np.load(root / "pool.npy", mmap_mode="r"), np.arange(n + len(zl)))
    model = LinearProbe(d, args.classes)
    model.head.load_state_dict(head.state_dict())
    unl, lab = np.arange(n), np.arange(n, n + len(zl))
    print(f"\nsharded query: the pool as a memory-mapped .npy ({time.perf_counter() - t0:.1f} s "
          f"to write), records to {root}\n")  # fmt: skip
    print("| engine | workers × threads | shards | query s | driver added MB | worker peak MB "
          "| records MB | same |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    want_sel = np.asarray(local.selected)
    want_cand = np.flatnonzero(local.candidates.mask)
    for w in [0, *args.workers]:
        eng = LocalEngine() if w == 0 else RayEngine(workers=w)
        start = eng.describe() if w else []
        best, mem = float("inf"), 0.0
        for r in range(args.repeats):
            folder = root / f"q{w}-{r}"
            with _Peak() as peak:
                t1 = time.perf_counter()
                q = sharded_query(x, unl, lab, yl, model, args.budget, folder=folder,
                                  engine=eng)  # fmt: skip
                best = min(best, time.perf_counter() - t1)
            mem = mem or peak.added
        same = bool(np.array_equal(q.selected_ids, want_sel)
                    and np.array_equal(q.candidate_ids, want_cand))  # fmt: skip
        size = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**20
        peaks = "-"
        if w:
            base = {i["pid"]: i["peak_rss_mb"] for i in start}
            peaks = ", ".join(
                f"{i['peak_rss_mb']:.0f} (+{i['peak_rss_mb'] - base.get(i['pid'], 0):.0f})"
                for i in eng.describe()
            )
            eng.close()
        name, threads = ("local", torch.get_num_threads()) if w == 0 else ("ray", "-")
        if w:
            threads = max(1, args.cpus // w)
        print(f"| {name} | {max(w, 1)} × {threads} | {len(q.manifest.score_shards)} | "
              f"{best:.2f} | {mem:.0f} | {peaks} | {size:.0f} | {same} |", flush=True)  # fmt: skip
    if args.folder is None:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--labelled", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (2)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-sharded", action="store_true", help="skip the sharded-query rows")
    ap.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="where the sharded rows write the pool and their records (a temp dir)",
    )
    args = ap.parse_args(argv)

    import numpy as np
    import ray
    import torch

    from alfaviz.engine import LocalEngine, RayEngine

    t0 = time.perf_counter()
    problem = make_problem(args.n, args.d, args.classes, args.labelled, seed=0, device="cpu")
    print(f"problem: {args.n} × {args.d} × {args.classes} ReLU features "
          f"({args.n * args.d * 4 / 2**30:.2f} GiB), built in {time.perf_counter() - t0:.1f} s; "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    from alfaviz.alfamix import alfamix_query

    zu, zl, yl, head = problem
    alfamix_query(zu[:2000], zl, yl, head, 100, random_state=0)  # warm-up
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - t0:.1f} s ({args.cpus} CPUs)\n")

    print("| engine | workers × threads | shards | actors s | query s | driver added MB "
          "| worker peak MB | candidates | same |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    local, t_local, mem_local = _query(problem, LocalEngine(), args.budget, args.repeats)
    print(f"| local | 1 × {torch.get_num_threads()} | 1 | - | {t_local:.2f} | {mem_local:.0f} "
          f"| - | {local.candidates.n_candidates} | - |", flush=True)  # fmt: skip
    for w in args.workers:
        eng = RayEngine(workers=w)
        t0 = time.perf_counter()
        start = eng.describe()
        t_actors = time.perf_counter() - t0
        calls: list[int] = []
        inner = eng.map

        def counted(fn, shards, inner=inner, calls=calls):
            calls.append(len(shards))
            return inner(fn, shards)

        eng.map = counted  # type: ignore[method-assign]
        out, t_q, mem = _query(problem, eng, args.budget, args.repeats)
        after = eng.describe()
        eng.close()
        same = bool(
            np.array_equal(out.candidates.mask, local.candidates.mask)
            and np.array_equal(out.selected, local.selected)
        )
        base = {d["pid"]: d["peak_rss_mb"] for d in start}
        peaks = ", ".join(
            f"{d['peak_rss_mb']:.0f} (+{d['peak_rss_mb'] - base.get(d['pid'], 0):.0f})"
            for d in after
        )
        print(f"| ray | {w} × {after[0]['threads']} | {calls[0]} | {t_actors:.1f} | {t_q:.2f} "
              f"| {mem:.0f} | {peaks} | {out.candidates.n_candidates} | {same} |",
              flush=True)  # fmt: skip
    if not args.no_sharded:
        _sharded_rows(args, problem, local)
    ray.shutdown()
    print(f"\nCPU cores on this machine: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
