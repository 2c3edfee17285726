"""The served dashboard in a real Chromium: what an annotator clicks, checked on the page and
in the run's store.

One ``alfaviz serve RUN --no-preheat`` serves the module (a kernel per page, started on
request; the preheated default has its own test in ``test_dashboard_preheat.py``); one tab
stays open across the tests, which run in file order as one user session: load, select,
move ε, label the batch, reload, run the next round, then label in two tabs at once. Each
test waits for the kernel's answer on the page (a status line, a count) before it reads the
store, so a label is checked only once it was acknowledged.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from alfaviz import schema
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from alfaviz.store import LABELS_FILE, LabelLog
from tests.ui.conftest import (
    ACK_MS,
    PAGE_LOAD_MS,
    dashboard_errors,
    outside_requests,
    served,
    watch_page,
)

pytestmark = pytest.mark.ui

TRAINED = TrainConfig(max_epochs=30, min_steps=30, lr=1e-2)  # real candidates, in ~2 s
SHOTS = Path("/tmp/ui_shots")
VIEWPORT = {"width": 1400, "height": 1000}


# --- the run, the server, the tab ------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits run labelled by a person, one round written, its batch waiting (PCA map)."""
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="pca",
        train=TRAINED, out=tmp_path_factory.mktemp("ui-served") / "run", labelling="human",
    )  # fmt: skip
    exp.step()
    s = exp.samples
    info = SimpleNamespace(
        path=exp.path,
        n_points=int((s[schema.ROUND] == 0).sum()),
        batch=[int(i) for i in exp.pending],
        truth=np.asarray(exp.data.labels(np.arange(exp.data.n_train))),
    )
    return info


@pytest.fixture(scope="module")
def server(run, tmp_path_factory):
    log = tmp_path_factory.mktemp("ui-served-log") / "serve.log"
    with served(run.path, log, preheat=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(ACK_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def tab(context, server):
    """The user's tab, opened once; the tests below act in it one after the other."""
    page = open_dashboard(context, server)
    yield page
    page.close()


def open_dashboard(context: Any, server: Any) -> Any:
    page = watch_page(context.new_page())
    page.goto(server.url, timeout=PAGE_LOAD_MS)
    wait_for_map(page, server)
    return page


def wait_for_map(page: Any, server: Any) -> None:
    try:
        page.wait_for_selector(".alfaviz-map-title[data-points]", timeout=PAGE_LOAD_MS)
        page.wait_for_selector(".alfaviz-scatter-canvas canvas", timeout=ACK_MS)
        page.wait_for_selector(".alfaviz-label-panel .alfaviz-class-button", timeout=ACK_MS)
    except Exception:  # the server's log says why a page never came
        print(server.log_tail())
        raise


# --- helpers -----------------------------------------------------------------------------------
def shoot(page: Any, artefacts: Path, name: str) -> Path:
    """A screenshot of the whole dashboard.

    Voila scrolls inside the page, and what lies below the viewport is not painted, so the
    viewport is made as tall as the dashboard for the shot and put back after.
    """
    path = artefacts / f"{name}.png"
    page.evaluate(  # back to the top of every scrolled box: the shot starts at the title
        "() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0 })"
    )
    board = page.locator(".alfaviz-dashboard")
    box = board.bounding_box()
    size = page.viewport_size
    height = int(box["y"] + box["height"]) + 40 if box else size["height"]
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    try:
        page.wait_for_timeout(500)  # plotly and the map canvas follow the resize
        board.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, SHOTS / path.name)
    return path


def live_labels(run_dir: Path) -> dict[int, int]:
    """The run's effective labels given by a person, read from its SQLite label log."""
    log = LabelLog(run_dir / LABELS_FILE, read_only=True)
    try:
        frame = log.labels()
    finally:
        log.close()
    frame = frame[frame[schema.SOURCE] == "human"] if schema.SOURCE in frame else frame
    return dict(
        zip(frame[schema.SAMPLE_ID].astype(int), frame[schema.LABEL].astype(int), strict=True)
    )


def actions(run_dir: Path) -> Any:
    log = LabelLog(run_dir / LABELS_FILE, read_only=True)
    try:
        a = log.actions()
    finally:
        log.close()
    return a[a[schema.SOURCE] != "initial"] if schema.SOURCE in a else a


def panel_text(page: Any, css: str) -> str:
    return page.locator(f".alfaviz-label-panel {css}").first.inner_text()


def status_is(page: Any, text: str) -> None:
    """Wait until the label panel's status line says ``text`` (the kernel acknowledged)."""
    page.wait_for_function(
        "t => [...document.querySelectorAll('.alfaviz-label-panel .alfaviz-status')]"
        ".some(e => e.textContent.trim() === t)",
        arg=text,
        timeout=ACK_MS,
    )


def status_of(page: Any) -> str:
    texts = page.locator(".alfaviz-label-panel .alfaviz-status").all_inner_texts()
    return texts[-1].strip() if texts else ""


def acked(page: Any, before: str) -> tuple[int, int]:
    """Wait for a new ``#id labelled c.`` status line (not ``before``); (id, class)."""
    page.wait_for_function(
        "b => [...document.querySelectorAll('.alfaviz-label-panel .alfaviz-status')]"
        ".some(e => e.textContent.trim() !== b && /^#\\d+ labelled /.test(e.textContent.trim()))",
        arg=before,
        timeout=ACK_MS,
    )
    m = re.match(r"#(\d+) labelled (\d+)\.", status_of(page))
    assert m, status_of(page)
    return int(m.group(1)), int(m.group(2))


def tally_done(page: Any, n: int) -> None:
    """Wait until the tally says ``n`` of the batch are labelled."""
    page.wait_for_function(
        "n => { const e = document.querySelector('.alfaviz-labels-tally');"
        " return e && new RegExp(`batch: ${n} of \\\\d+ labelled`).test(e.textContent) }",
        arg=n,
        timeout=ACK_MS,
    )


def on_screen(page: Any) -> int:
    """The sample the label panel shows (its ``sample #id`` line)."""
    text = panel_text(page, "")
    m = re.search(r"sample #(\d+)", text)
    assert m, f"the label panel shows no sample: {text!r}"
    return int(m.group(1))


def wait_on_screen(page: Any, sid: int) -> None:
    page.wait_for_function(
        "s => /sample #(\\d+)/.exec(document.querySelector('.alfaviz-label-panel')"
        "?.textContent || '')?.[1] === String(s)",
        arg=sid,
        timeout=ACK_MS,
    )


def keys_on(page: Any) -> None:
    """Put the pointer over the label panel, where its keys listen (ipyevents)."""
    page.mouse.move(1, 1)
    page.locator(".alfaviz-label-panel").hover(position={"x": 20, "y": 10})
    page.wait_for_selector(".alfaviz-label-panel .ipyevents-watched", timeout=ACK_MS)


def press_label(page: Any, label: int) -> None:
    keys_on(page)
    page.keyboard.press(str(label))  # digits: the key of class c is "c"


def click_label(page: Any, label: int) -> None:
    page.locator(".alfaviz-label-panel .alfaviz-class-button").nth(label).click()


def curve_points(page: Any) -> int:
    """Points of the run's learning curve (the longest trace of the curve's plotly graph; its
    ``data`` may hold binary-encoded arrays, ``_fullData`` the decoded traces)."""
    return page.evaluate(
        "() => { const g = document.querySelector('.alfaviz-curve .js-plotly-plot');"
        " return g && g._fullData ? Math.max(0, ...g._fullData.map(t => t._length || 0)) : -1 }"
    )


def inked_pixels(png: bytes) -> int:
    """Pixels of a screenshot that are neither white nor transparent."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(img - 255).sum(axis=2) > 60).sum())


# --- 1. load --------------------------------------------------------------------------------------
def test_the_page_draws_the_map_with_every_point(tab, run, server, artefacts):
    page = tab
    title = page.locator(".alfaviz-map-title")
    assert int(title.get_attribute("data-points")) == run.n_points
    assert title.inner_text().startswith("Round 0")
    # the points are really on the canvas, not just counted: the map is inked
    canvas = page.locator(".alfaviz-scatter-canvas canvas").first
    assert inked_pixels(canvas.screenshot()) > 500
    for css in ("alfaviz-round-controls", "alfaviz-embedding", "alfaviz-eps", "alfaviz-heatmap",
                "alfaviz-gallery", "alfaviz-label-panel", "alfaviz-why", "alfaviz-curve",
                "alfaviz-ab", "alfaviz-hypothesis"):  # fmt: skip
        assert page.locator(f".alfaviz-dashboard .{css}").count() == 1, css
    cards = page.locator(".alfaviz-gallery .alfaviz-card-info")
    cards.first.wait_for()
    shown = sorted(int(cards.nth(i).get_attribute("data-sample")) for i in range(cards.count()))
    assert shown == sorted(run.batch)
    assert on_screen(page) == run.batch[0]
    assert "0 of 8 labelled" in panel_text(page, ".alfaviz-labels-tally")
    assert curve_points(page) == 1
    # the heatmap's FigureWidget comes once the page is up (FigureSlot)
    page.wait_for_selector(".alfaviz-heatmap .js-plotly-plot", timeout=ACK_MS)
    shoot(page, artefacts, "01_loaded")
    assert dashboard_errors(page) == []
    # every widget initialised in time ("[anywidget] Failed to initialize model." otherwise)
    assert page.errors == [], page.errors
    # plotly's and jupyter-scatter's modules came once each, from the server (one copy for
    # all the page's widgets); nothing came from anywhere else
    for lib in ("plotly", "jscatter"):
        fetched = [u for u in page.requests if f"/voila/static/alfaviz-{lib}-" in u]
        assert len(fetched) == 1, (lib, page.requests)
    assert outside_requests(page, server.url) == []


# --- 2. select --------------------------------------------------------------------------------
def test_a_card_click_is_followed_by_the_gallery_heatmap_and_why_card(tab, run, artefacts):
    page = tab
    sid = run.batch[2]
    page.locator(f".alfaviz-card:has(.alfaviz-card-info[data-sample='{sid}'])").click()
    page.wait_for_selector(f".alfaviz-why-card[data-sample='{sid}']")
    # the views redraw one after another: wait for the gallery's outline, then read it
    page.wait_for_selector(f".alfaviz-card-selected .alfaviz-card-info[data-sample='{sid}']")
    selected = page.locator(".alfaviz-card-selected .alfaviz-card-info")
    assert [int(x) for x in selected.evaluate_all("es => es.map(e => e.dataset.sample)")] == [sid]
    assert "Why was this selected" not in page.locator(".alfaviz-why-card").inner_text()
    shoot(page, artefacts, "02_selected")
    # "select batch" selects the whole batch in every view
    page.locator(".alfaviz-embedding-batch").click()
    page.wait_for_function(
        "n => document.querySelectorAll('.alfaviz-card-selected').length === n",
        arg=len(run.batch),
    )
    page.locator(".alfaviz-embedding-clear").click()
    page.wait_for_function("() => !document.querySelector('.alfaviz-card-selected')")
    assert dashboard_errors(page) == []


def heatmap_outlines(page: Any, sid: int) -> None:
    """Wait until the heatmap's graph outlines sample ``sid`` (one frame, named in the title)."""
    page.wait_for_function(
        "s => { const g = document.querySelector('.alfaviz-heatmap .js-plotly-plot');"
        " return g && (g.layout.shapes || []).length === 1"
        " && (g.layout.title.text || '').includes('#' + s + ' outlined') }",
        arg=sid,
        timeout=ACK_MS,
    )


def test_the_heatmap_outlines_the_selected_sample(tab, run):
    page = tab
    sid = run.batch[3]
    page.locator(f".alfaviz-card:has(.alfaviz-card-info[data-sample='{sid}'])").click()
    page.wait_for_selector(f".alfaviz-why-card[data-sample='{sid}']")
    try:
        heatmap_outlines(page, sid)
    finally:
        page.locator(".alfaviz-embedding-clear").click()
        page.wait_for_function("() => !document.querySelector('.alfaviz-card-selected')")


# --- 3. ε --------------------------------------------------------------------------------------
def test_moving_the_eps_slider_changes_the_candidate_count(tab):
    page = tab
    count = page.locator(".alfaviz-eps-readout .alfaviz-eps-count")
    before = count.inner_text()
    readout = page.locator(".alfaviz-eps-readout").inner_text()
    assert "ε step 0.2," in readout
    handle = page.locator(".alfaviz-eps-slider [role=slider]").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "b => { const e = document.querySelector('.alfaviz-eps-readout .alfaviz-eps-count');"
        " return e && e.textContent !== b }",
        arg=before,
    )
    after = page.locator(".alfaviz-eps-readout").inner_text()
    assert "ε step 0.2," not in after  # the readout names the new step
    assert int(count.inner_text().replace(",", "")) != int(before.replace(",", ""))
    handle.focus()
    page.keyboard.press("ArrowLeft")  # back to the recorded step
    page.wait_for_function(
        "b => document.querySelector('.alfaviz-eps-readout .alfaviz-eps-count').textContent === b",
        arg=before,
    )
    assert dashboard_errors(page) == []


# --- 4. label ------------------------------------------------------------------------------
def test_label_the_batch_with_keys_and_clicks_undo_once_and_finish(tab, run, artefacts):
    page = tab
    b = run.batch
    truth = {sid: int(run.truth[sid]) for sid in b}
    assert live_labels(run.path) == {}
    press_label(page, truth[b[0]])
    status_is(page, f"#{b[0]} labelled {truth[b[0]]}.")
    assert live_labels(run.path) == {b[0]: truth[b[0]]}
    wait_on_screen(page, b[1])
    click_label(page, truth[b[1]])
    status_is(page, f"#{b[1]} labelled {truth[b[1]]}.")
    assert live_labels(run.path) == {b[0]: truth[b[0]], b[1]: truth[b[1]]}
    keys_on(page)
    page.keyboard.press("u")
    status_is(page, f"Undid the label of #{b[1]}.")
    assert live_labels(run.path) == {b[0]: truth[b[0]]}
    wait_on_screen(page, b[1])  # the undone sample is back on screen
    for k, sid in enumerate(b[1:]):
        wait_on_screen(page, sid)
        if k % 2:
            press_label(page, truth[sid])
        else:
            click_label(page, truth[sid])
        status_is(page, f"#{sid} labelled {truth[sid]}.")
        assert live_labels(run.path).get(sid) == truth[sid]
    assert live_labels(run.path) == truth
    tally_done(page, len(b))
    assert f"All {len(b)} samples of the batch are labelled" in panel_text(page, "")
    assert page.locator(".alfaviz-label-panel .alfaviz-class-button").first.is_disabled()
    log = actions(run.path)
    assert (log[schema.ACTION] == "undo").sum() == 1
    assert (log[schema.ACTION] == "label").sum() == len(b) + 1
    shoot(page, artefacts, "03_labelled")
    assert dashboard_errors(page) == []


# --- 6. reload (before the next round, so that the batch's labels are what is shown) ---------
def test_a_reload_shows_every_label(tab, run, server):
    page = tab
    page.reload(timeout=PAGE_LOAD_MS)
    wait_for_map(page, server)
    tally_done(page, len(run.batch))
    assert f"All {len(run.batch)} samples" in panel_text(page, "")
    sid = run.batch[1]  # the one labelled, undone and labelled again
    page.locator(f".alfaviz-card:has(.alfaviz-card-info[data-sample='{sid}'])").click()
    page.wait_for_selector(f".alfaviz-why-card[data-sample='{sid}']")
    labels = page.locator(".alfaviz-why-card .alfaviz-why-labels").inner_text()
    assert f"labelled {int(run.truth[sid])} by human" in labels
    assert dashboard_errors(page) == []


# --- 5. the next round -------------------------------------------------------------------------
def test_the_next_round_advances_the_counter_and_the_curve(tab, run, artefacts):
    page = tab
    controls = page.locator(".alfaviz-round-controls")
    assert "round 0 of 0–0" in controls.inner_text()
    controls.locator("button", has_text="Run next round").click()
    page.wait_for_function(
        "() => document.querySelector('.alfaviz-round-controls').textContent"
        ".includes('round 1 of 0–1')",
        timeout=PAGE_LOAD_MS,
    )
    page.wait_for_selector(".alfaviz-round-controls .alfaviz-status:has-text('round 1 written')")
    page.wait_for_function(
        "() => { const g = document.querySelector('.alfaviz-curve .js-plotly-plot');"
        " return g && g._fullData && Math.max(0, ...g._fullData.map(t => t._length || 0)) === 2 }"
    )
    page.wait_for_selector(".alfaviz-map-title:has-text('Round 1')")
    tally_done(page, 0)  # the new batch waits
    new_batch = [int(i) for i in _pending(run.path)]
    assert len(new_batch) == len(run.batch)
    assert not set(new_batch) & set(run.batch)
    wait_on_screen(page, new_batch[0])
    run.batch1 = new_batch
    shoot(page, artefacts, "04_next_round")
    assert dashboard_errors(page) == []


def _pending(run_dir: Path) -> list[int]:
    from alfaviz.session import open_run

    return [int(i) for i in open_run(run_dir).pending]


# --- 7. two tabs ---------------------------------------------------------------------------------
def _has_live_sync() -> bool:
    from alfaviz.widgets import RunData

    return hasattr(RunData, "watch")


def test_two_tabs_label_at_once_and_undo_only_their_own(tab, context, browser, run, server,
                                                        artefacts):  # fmt: skip
    a = tab
    batch = getattr(run, "batch1", None)
    if batch is None:
        pytest.skip("needs the round run by test_the_next_round_advances_the_counter_and_the_curve")
    truth = {sid: int(run.truth[sid]) for sid in batch}
    other = browser.new_context(viewport={"width": 1400, "height": 1000})  # tab B, own kernel
    other.set_default_timeout(ACK_MS)
    try:
        b = open_dashboard(other, server)
        live = _has_live_sync()
        before = live_labels(run.path)
        # A labels the first sample
        press_label(a, truth[batch[0]])
        status_is(a, f"#{batch[0]} labelled {truth[batch[0]]}.")
        assert live_labels(run.path) == {**before, batch[0]: truth[batch[0]]}
        if not live:
            pytest.skip(
                "live sync between tabs (RunData.watch) is missing: the store keeps A's label, "
                "but tab B shows it only after a reload"
            )
        # B sees A's label without a reload, and moves on to the next sample
        tally_done(b, 1)
        wait_on_screen(b, batch[1])
        # B labels the sample it shows
        sid_b = on_screen(b)
        click_label(b, truth[sid_b])
        status_is(b, f"#{sid_b} labelled {truth[sid_b]}.")
        assert live_labels(run.path) == {**before, batch[0]: truth[batch[0]], sid_b: truth[sid_b]}
        # A undoes: its own label goes, B's stays
        keys_on(a)
        a.keyboard.press("u")
        status_is(a, f"Undid the label of #{batch[0]}.")
        got = live_labels(run.path)
        assert batch[0] not in got
        assert got[sid_b] == truth[sid_b]
        # both see the undo; then both label at once, without waiting for each other
        tally_done(a, 1)
        tally_done(b, 1)
        n_log = len(actions(run.path))
        said_a, said_b = status_of(a), status_of(b)
        sid_a, sid_b2 = on_screen(a), on_screen(b)
        keys_on(a)
        a.keyboard.press(str(truth[sid_a]))
        click_label(b, truth[sid_b2])
        # each tab acknowledges a label of the sample it showed when it acted (B may have
        # moved on to the next one when A's label reached it first)
        got_a, got_b = acked(a, said_a), acked(b, said_b)
        assert got_a == (sid_a, truth[sid_a])
        assert got_b[1] == truth[sid_b2]
        new = actions(run.path).iloc[n_log:]
        assert (new[schema.ACTION] == "label").sum() == 2  # nothing lost
        assert new[schema.SESSION].nunique() == 2
        got = live_labels(run.path)
        assert got[sid_b] == truth[sid_b]
        if got_a[0] != got_b[0]:
            assert got[got_a[0]] == got_a[1]
            assert got[got_b[0]] == got_b[1]
        n_done = len({got_a[0], got_b[0], sid_b})
        tally_done(a, n_done)
        tally_done(b, n_done)
        shoot(b, artefacts, "05_two_tabs_b")
        assert dashboard_errors(a) == []
        assert dashboard_errors(b) == []
    finally:
        other.close()
