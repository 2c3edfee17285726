"""Browser fixtures for the ``ui`` tests: one headless Chromium per session, offline pages.

The browser is the system Chromium (``/usr/bin/chromium``, installed by ``.ci/run`` when
missing); Playwright's own browser downloads are never used. Tests are skipped, with the
reason, where Chromium or the Python ``playwright`` package is missing.

``offline_page`` gives a fresh page on which every request that is not a ``file:`` or
``data:`` URL is aborted and recorded (``page.blocked``), page errors and console errors are
recorded (``page.errors``), so that a test can assert that nothing left the machine.
``artefacts`` is a folder for screenshots: the test's ``tmp_path``, copied into
``$ALFAVIZ_ARTEFACTS/<test name>/`` when that variable is set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
