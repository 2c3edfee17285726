"""Browser fixtures for the ``ui`` tests: one headless Chromium per session, offline pages.

The browser is the system Chromium (``/usr/bin/chromium``, installed by ``.ci/run`` when
missing); Playwright's own browser downloads are never used. Tests are skipped, with the
reason, where Chromium or the Python ``playwright`` package is missing.

``offline_page`` gives a fresh page on which every request that is not a ``file:`` or
``data:`` URL is aborted and recorded (``page.blocked``), page errors and console errors are
recorded (``page.errors``), so that a test can assert that nothing left the machine.
``artefacts`` is a folder for screenshots: the test's ``tmp_path``, copied into
``$ALFAVIZ_ARTEFACTS/<test name>/`` when that variable is set.

:func:`served` runs ``python -m alfaviz serve RUN --port P`` (127.0.0.1, a free port) in a
session of its own, waits for it to answer HTTP, and stops its process group (and any kernel
left of it) at the end; the served-dashboard tests share one per module. Waits are bounded by
:data:`PAGE_LOAD_MS` (a kernel's start and first drawing) and :data:`ACK_MS` (the kernel's
answer to a click or a key).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alfaviz.serve import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless system Chromium, shared by the session's ui tests."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the ui tests need playwright (pip install playwright)"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def offline_page(browser: Any) -> Iterator[Any]:
    """A new page that may load only local (file:, data:) URLs; see the module docstring."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.blocked = []  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            page.blocked.append(url)
            r.abort()

    def console(msg: Any) -> None:
        if msg.type == "error":
            page.errors.append(f"console.error: {msg.text}")

    page.route("**/*", route)
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
    page.on("console", console)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for screenshots; copied to ``$ALFAVIZ_ARTEFACTS/<test>/`` after the test."""
    yield tmp_path
    root = os.environ.get("ALFAVIZ_ARTEFACTS")
    if root:
        dest = Path(root) / request.node.name.replace("/", "_")
        dest.mkdir(parents=True, exist_ok=True)
        for f in tmp_path.iterdir():
            if f.is_file():
                shutil.copy2(f, dest / f.name)


# --- a served dashboard: `alfaviz serve RUN` in a subprocess -------------------------------

SERVER_START_S = 90.0
"""Seconds for `alfaviz serve` to answer HTTP (Voila's start; the kernel comes later)."""
PAGE_LOAD_MS = 180_000
"""Milliseconds for a page to show the drawn map: a kernel starts, imports torch, numba and
plotly and builds every view (tens of seconds on two cores, more while another starts)."""
ACK_MS = 30_000
"""Milliseconds for the kernel to acknowledge a click or a key (a redraw of every view)."""


class Server:
    """A running ``alfaviz serve`` (see :func:`served`): its URL, process and log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path, run: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self.run = run

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; kernels run in sessions of their own)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@contextlib.contextmanager
def served(run: Path, log: Path, *, preheat: bool = True) -> Iterator[Server]:
    """``python -m alfaviz serve RUN --port P`` on 127.0.0.1, answering HTTP; stopped after.

    The server runs in a session of its own; at the end its process group gets SIGTERM (Voila
    shuts its kernels down), and anything of it still alive after a while gets SIGKILL.
    """
    port = free_port()
    argv = [sys.executable, "-m", "alfaviz", "serve", str(run), "--port", str(port)]
    if not preheat:
        argv.append("--no-preheat")
    url = f"http://127.0.0.1:{port}/"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, url, log, run)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"alfaviz serve exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"alfaviz serve did not answer in {SERVER_START_S} s:\n"
                            f"{server.log_tail()}")  # fmt: skip
            time.sleep(0.5)
        yield server
    finally:
        below = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        _kill([p for p in below if Path(f"/proc/{p}").exists()], signal.SIGKILL)


def watch_page(page: Any) -> Any:
    """Record the page's uncaught errors in ``page.errors`` (console noise is not kept) and
    the URLs it requests in ``page.requests``."""
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
    page.on("request", lambda req: page.requests.append(req.url))
    return page


def outside_requests(page: Any, base: str) -> list[str]:
    """What the page asked of anything but its own server (blob: and data: URLs are local)."""
    return [u for u in page.requests if not u.startswith((base, "blob:", "data:"))]


def dashboard_errors(page: Any) -> list[str]:
    """The lines of the dashboard's error area (views that failed in the kernel)."""
    return page.locator(".alfaviz-errors .alfaviz-error").all_inner_texts()
