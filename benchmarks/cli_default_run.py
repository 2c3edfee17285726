"""Wall time of ``alfaviz run`` with no arguments (digits, ALFA-Mix, UMAP), in a fresh process.

The target is under 60 s on 2 CPU cores, UMAP's first-call numba compilation included.

Usage::

    python benchmarks/cli_default_run.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes to time")
    args = ap.parse_args(argv)
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            t0 = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-m", "alfaviz.cli", "run", "--out", str(out)],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - t0
            print(res.stdout.rstrip())
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return res.returncode
            info = subprocess.run(
                [sys.executable, "-m", "alfaviz.cli", "info", str(out)],
                capture_output=True,
                text=True,
                check=False,
            )
            print(info.stdout.rstrip())
            print(f"run {i + 1}: `alfaviz run` took {wall:.1f} s wall time (target < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
