"""Test helpers for child processes (no tests here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def kill_9_after(script: str, args: list[str], lines: int) -> list[str]:
    """Run ``python -c script *args``, read ``lines`` lines of its output (each one an
    acknowledgement it printed), then SIGKILL it mid-work; returns those lines.

    The child must keep running after its last acknowledgement (a ``time.sleep``), so that
    the kill lands while it is alive; a child that exits or dies otherwise fails the test.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out: list[str] = []
    try:
        assert proc.stdout is not None
        for _ in range(lines):
            out.append(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)  # right after the last acknowledgement
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the child ended with {proc.returncode}"
    return out
