"""Time and peak memory of one whole ALFA-Mix round on pre-computed embeddings, at scale.

Usage::

    python benchmarks/round_scale.py                        # N = 50k, 200k and 1M, D = 512
    python benchmarks/round_scale.py --sizes 50000 --d 256  # a quick look

For each N it writes a synthetic pool of frozen features to a ``.npy`` file (a Gaussian
mixture of C classes through ReLU, float32, as a foundation model's pooled features would be),
and then, in a fresh subprocess, opens it memory-mapped with :func:`alfaviz.from_embeddings`
and runs one round of ``Experiment(source, "linear", "alfamix", initial_size=1000,
budget=1000)``: train the linear head on 1,000 labels, evaluate, embed the pool, query,
project to 2-D (``--projection``, UMAP by default: fitted on a subset above
``alfaviz.analysis.projection.UMAP_FIT_MAX`` samples) and write the round.

It prints the time of each phase (from the round's ``time_*`` columns), the wall time of the
whole round, the peak resident memory of the process (``ru_maxrss``) and how much it rose
over the memory-mapped pool's size, the peak of its anonymous memory (``RssAnon``, sampled
every 5 ms: what the process allocated, without the pages of files it maps), the round
folder's size on disk, and the projection method the round records.

``--modes`` runs each N as a whole-pool round (``whole``, the default), a sharded round on
the in-process engine (``sharded``: the query's passes write the shards' records, the store
writes the round from them part by part) and a sharded round on a local Ray cluster
(``ray``: ``--workers`` actors, ``--cpus`` CPUs); ``worker peak MB`` is each Ray actor's peak
resident set. ``batch`` is a digest of the selected ids, so equal rounds show equal digests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query_speed import _rss_mb

__all__ = ["main"]

PHASES = ("train", "eval", "embed", "query", "project", "frames", "store")


class _AnonPeak:
    """Samples this process's anonymous resident memory every 5 ms while in the block."""

    def __enter__(self) -> _AnonPeak:
        import threading

        self.peak = _rss_mb("RssAnon")
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_mb("RssAnon"))
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._t.join()


def write_pool(path: Path, n: int, d: int, c: int, seed: int) -> None:
    """A ReLU Gaussian-mixture pool of ``n`` float32 rows to ``path`` (``.npy``) and its labels
    to ``path`` with ``.labels.npy``; written in blocks, never whole in memory."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)).astype(np.float32) * (6.0 / math.sqrt(d))
    y = rng.integers(0, c, size=n).astype(np.int64)
    z = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 65_536):
        part = y[s : s + 65_536]
        block = centers[part] + rng.standard_normal((part.size, d), dtype=np.float32)
        np.maximum(block, 0.0, out=block)
        z[s : s + part.size] = block
    z.flush()
    del z
    np.save(path.with_suffix(".labels.npy"), y)


def _child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from alfaviz import from_embeddings, schema
    from alfaviz.session import Experiment

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    path = Path(args.pool)
    before = _rss_mb()
    z = np.load(path, mmap_mode="r")
    y = np.load(path.with_suffix(".labels.npy"))
    source = from_embeddings(z, y, test_size=args.test_size, seed=0)
    engine: object = "local"
    if args.mode == "ray":
        import ray

        from alfaviz.engine import RayEngine

        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        engine = RayEngine(workers=args.workers)
    exp = Experiment(
        source, "linear", "alfamix", initial_size=args.labelled, budget=args.budget, seed=0,
        projection=args.projection, out=Path(args.out) / "run", engine=engine,
        sharded=args.mode != "whole",
    )  # fmt: skip
    start = engine.describe() if args.mode == "ray" else []  # type: ignore[attr-defined]
    opened = _rss_mb()
    t0 = time.perf_counter()
    with _AnonPeak() as anon:
        row = exp.step()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = []
    if args.mode == "ray":
        base = {i["pid"]: i["peak_rss_mb"] for i in start}
        workers = [
            [i["peak_rss_mb"], i["peak_rss_mb"] - base.get(i["pid"], 0)]
            for i in engine.describe()  # type: ignore[attr-defined]
        ]
        engine.close()  # type: ignore[attr-defined]
    import hashlib

    batch = hashlib.sha256(np.asarray(exp.store.read_extra(0, "queried")["sample_id"],
                                      dtype=np.int64).tobytes()).hexdigest()[:10]  # fmt: skip
    folder = exp.path / "rounds"
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    out = {
        "n": int(z.shape[0]), "d": int(z.shape[1]), "c": int(y.max()) + 1, "wall": wall,
        "phases": {p: float(row.get(schema.time_column(p), math.nan)) for p in PHASES},
        "rss_before": before, "rss_opened": opened, "peak": peak, "anon_peak": anon.peak,
        "workers": workers, "batch": batch,
        "pool_mb": z.nbytes / 2**20, "disk_mb": disk,
        "projection": str(row.get(schema.PROJECTION, "")),
        "candidates": int(row.get(schema.N_CANDIDATES, 0)),
        "accuracy": float(row.get(schema.ACCURACY, math.nan)),
    }  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Measure and print one row per N; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--labelled", type=int, default=1000)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--test-size", type=float, default=0.05)
    ap.add_argument("--projection", default="umap", choices=["umap", "pca", "none"])
    ap.add_argument(
        "--modes", nargs="+", default=["whole"], choices=["whole", "sharded", "ray"],
        help="whole-pool round, sharded round in-process, sharded round on Ray",
    )  # fmt: skip
    ap.add_argument("--workers", type=int, default=2, help="Ray actors (--modes ray)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--mode", default="whole", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pool", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    print(
        "| N | D | C | mode | train s | embed s | query s | project s | frames + paths s "
        "| write s | round s | peak RSS MB | peak − pool MB | peak anon MB | worker peak MB "
        "| on disk MB | batch | projection |",
        flush=True,
    )
    print("|---" * 18 + "|", flush=True)
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="alfaviz-scale-") as tmp:
            pool = Path(tmp) / "pool.npy"
            write_pool(pool, n, args.d, args.classes, seed=n)
            for mode in args.modes:
                out = Path(tmp) / mode
                out.mkdir()
                cmd = [
                    sys.executable, __file__, "--child", "--pool", str(pool), "--out", str(out),
                    "--labelled", str(args.labelled), "--budget", str(args.budget),
                    "--test-size", str(args.test_size), "--projection", args.projection,
                    "--mode", mode, "--workers", str(args.workers), "--cpus", str(args.cpus),
                ]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not lines:
                    print(f"| {n:,} | {mode} | failed (exit {proc.returncode}): "
                          f"{proc.stderr[-400:]!r} |")  # fmt: skip
                    continue
                r = json.loads(lines[-1][len("RESULT ") :])
                ph = r["phases"]
                label = mode if mode != "ray" else f"ray {args.workers} workers"
                workers = ", ".join(f"{a:,.0f} (+{b:,.0f})" for a, b in r["workers"]) or "-"
                print(
                    f"| {r['n']:,} | {r['d']} | {r['c']} | {label} | {ph['train']:.1f} "
                    f"| {ph['embed']:.1f} | {ph['query']:.1f} | {ph['project']:.1f} "
                    f"| {ph['frames']:.1f} | {ph['store']:.1f} | {r['wall']:.1f} "
                    f"| {r['peak']:,.0f} | {r['peak'] - r['pool_mb']:,.0f} "
                    f"| {r['anon_peak']:,.0f} | {workers} | {r['disk_mb']:,.0f} | {r['batch']} "
                    f"| {r['projection']} |",
                    flush=True,
                )
    print(
        "\npeak RSS counts the memory-mapped pool's pages once they are read; 'peak − pool' is "
        "what the round holds beyond them (the embedding matrix the query needs, the frames, "
        "the writer's row groups)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
