"""End to end: ``ray start --head``, then ``alfaviz run --engine ray --address`` against it.

The run equals the same run on the local engine, frame for frame. The cluster is stopped by
the process id of its ``ray start --block`` process. This test runs last.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from alfaviz.session import open_run

pytestmark = [pytest.mark.ray, pytest.mark.last, pytest.mark.slow]

RUN_ARGS = ["--rounds", "2", "--budget", "12", "--epochs", "5", "--projection", "none", "-q"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_script() -> str:
    pytest.importorskip("ray", reason="the ray extra: pip install 'alfaviz[ray]'")
    here = Path(sys.executable).with_name("ray")
    found = str(here) if here.exists() else shutil.which("ray")
    if not found:
        pytest.fail("the `ray` command is not installed next to this Python")
    return found


def _wait_started(proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}:\n{log.read_text()}")
        if "will now block" in log.read_text():
            return
        time.sleep(0.5)
    pytest.fail(f"ray start did not come up in {timeout:.0f} s:\n{log.read_text()}")


def _alfaviz(args: list[str], env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "alfaviz", "run", *args], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_cli_against_a_started_cluster(tmp_path):
    ray = _ray_script()
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    log = tmp_path / "ray-start.log"
    # its own temp dir (short: Ray's socket paths must fit in 107 bytes), so that the cluster
    # leaves no /tmp/ray/ray_current_cluster behind for a later ray.init to find
    temp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [ray, "start", "--head", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
             "--block"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
    try:
        _wait_started(proc, log)
        remote = _alfaviz(
            [*RUN_ARGS, "--engine", "ray", "--address", f"127.0.0.1:{port}",
             "--out", str(tmp_path / "ray")], env, tmp_path,
        )  # fmt: skip
        local = _alfaviz([*RUN_ARGS, "--out", str(tmp_path / "local")], env, tmp_path)
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # ray start --block stops its processes on SIGTERM
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode is not None
    a, b = open_run(remote), open_run(local)
    assert a.round == b.round == 2
    pd.testing.assert_frame_equal(a.samples, b.samples, check_exact=True)
    pd.testing.assert_frame_equal(a.flips, b.flips, check_exact=True)
    assert (a.samples["selected"]).sum() == 24


def test_cli_bad_address_says_how_to_fix(tmp_path):
    pytest.importorskip("ray", reason="the ray extra: pip install 'alfaviz[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    out = subprocess.run(
        [sys.executable, "-m", "alfaviz", "run", *RUN_ARGS, "--engine", "ray", "--address",
         f"127.0.0.1:{_free_port()}", "--out", str(tmp_path / "never")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0
    assert "could not join the Ray cluster" in out.stderr
    assert "ray start --head" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "never").exists()  # checked before a run folder is written
