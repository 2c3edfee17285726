"""The selection report in a real Chromium, offline: every card shows, every graph draws."""

from __future__ import annotations

import pytest

from alfaviz import schema
from alfaviz.analysis.selection_report import PICK_CLASS, export_report
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment

pytestmark = pytest.mark.ui

TRAINED = TrainConfig(max_epochs=30, min_steps=30, lr=1e-2)  # real candidates, in ~2 s


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="pca",
        train=TRAINED, out=tmp_path_factory.mktemp("ui-report") / "run", labelling="oracle",
    )  # fmt: skip
    exp.step()
    exp.step()
    s = exp.samples
    ids = s[(s[schema.ROUND] == 1) & s[schema.SELECTED]][schema.SAMPLE_ID].astype(int).tolist()
    return export_report(exp, 1, exp.path / "report.html"), sorted(ids)


def test_report_renders_offline(report, offline_page, artefacts):
    path, ids = report
    page = offline_page
    page.goto(path.resolve().as_uri())
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30_000
    )
    cards = page.locator(f".{PICK_CLASS}")
    assert cards.count() == len(ids)
    shown = sorted(int(cards.nth(i).get_attribute("data-sample-id")) for i in range(len(ids)))
    assert shown == ids
    for i in range(len(ids)):
        card = cards.nth(i)
        card.scroll_into_view_if_needed()
        assert card.is_visible()
        img = card.locator("img.thumb")
        assert img.evaluate("el => el.complete && el.naturalWidth > 0")  # the PNG decoded
    # three graphs (heatmap, learning curve, label outcomes), each drawn with its data
    graphs = page.locator(".js-plotly-plot")
    assert graphs.count() == 3
    assert page.locator(".js-plotly-plot .main-svg").count() >= 3
    assert page.locator("#alfaviz-report-heatmap .heatmaplayer image, "
                        "#alfaviz-report-heatmap .hm").count() >= 1  # fmt: skip
    assert page.locator("#alfaviz-report-curve .scatterlayer .trace").count() >= 1
    assert page.locator("#alfaviz-report-outcomes .barlayer .trace").count() == 3
    for g in ("heatmap", "curve", "outcomes"):
        box = page.locator(f"#alfaviz-report-{g}").bounding_box()
        assert box is not None
        assert box["width"] > 400
        assert box["height"] > 200
    page.screenshot(path=str(artefacts / "selection_report.png"), full_page=True)
    assert (artefacts / "selection_report.png").stat().st_size > 10_000
    assert page.blocked == []  # no request left the machine
    assert page.errors == []


def test_the_offline_guard_catches_a_remote_request(offline_page, tmp_path):
    """The route really blocks and records: a page that asks the network is caught."""
    page = offline_page
    bad = tmp_path / "bad.html"
    bad.write_text('<img src="https://example.org/x.png"><p>hi</p>', encoding="utf-8")
    page.goto(bad.as_uri())
    page.wait_for_load_state("load")
    assert page.blocked == ["https://example.org/x.png"]
