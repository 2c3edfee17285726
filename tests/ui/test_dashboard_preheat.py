"""The served dashboard with Voila's preheated kernel (``alfaviz serve``'s default).

A preheated kernel builds the dashboard before anyone opens the page, so what it read from
the run can be stale by the time a page takes it: it must catch up with labels given since
(``RunData.attach`` and the watcher). This module labels in one page, then opens a second one
(the kernel that was preheated meanwhile) and finds the label there.
"""

from __future__ import annotations

import pytest

from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from tests.ui.conftest import ACK_MS, dashboard_errors, served
from tests.ui.test_dashboard_served import (
    VIEWPORT,
    heatmap_outlines,
    live_labels,
    on_screen,
    open_dashboard,
    press_label,
    shoot,
    status_is,
    tally_done,
    wait_on_screen,
)

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def preheated(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-preheat")
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=4, seed=1, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=root / "run", labelling="human",
    )  # fmt: skip
    exp.step()
    batch = [int(i) for i in exp.pending]
    with served(exp.path, root / "serve.log") as srv:  # preheat: the default
        yield srv, batch


def test_a_preheated_page_labels_and_the_next_preheated_kernel_has_caught_up(
    browser, preheated, artefacts
):
    server, batch = preheated
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACK_MS)
    try:
        first = open_dashboard(context, server)
        assert on_screen(first) == batch[0]
        press_label(first, 3)
        status_is(first, f"#{batch[0]} labelled 3.")
        assert live_labels(server.run) == {batch[0]: 3}
        shoot(first, artefacts, "06_preheated")
        assert dashboard_errors(first) == []
        # a preheated page gets every widget at once: the heatmap still follows a selection
        first.locator(f".alfaviz-card:has(.alfaviz-card-info[data-sample='{batch[2]}'])").click()
        heatmap_outlines(first, batch[2])
        assert first.errors == [], first.errors
        # the pool's next kernel was preheated when the first page took its own, before the
        # label: the second page still starts at the next sample and counts the label
        second = open_dashboard(context, server)
        tally_done(second, 1)
        wait_on_screen(second, batch[1])
        assert dashboard_errors(second) == []
    finally:
        context.close()
