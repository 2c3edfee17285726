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
    ray.shutdown()
    print(f"\nCPU cores on this machine: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
