"""Killing ``alfaviz serve`` mid-batch (``kill -9`` of the server and its kernels) loses no label
the page acknowledged, and the next ``alfaviz serve`` resumes at the next unlabelled sample."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from tests.ui.conftest import ACK_MS, _descendants, dashboard_errors, served
from tests.ui.test_dashboard_served import (
    VIEWPORT,
    live_labels,
    open_dashboard,
    press_label,
    status_is,
    tally_done,
    wait_on_screen,
)

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def waiting_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-kill")
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=5, seed=2, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=root / "run", labelling="human",
    )  # fmt: skip
    exp.step()
    truth = exp.data.labels(exp.pending)
    return root, exp.path, [int(i) for i in exp.pending], [int(t) for t in truth]


def test_kill_9_mid_batch_loses_no_acknowledged_label_and_serve_resumes(browser, waiting_run):
    root, run, batch, truth = waiting_run
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACK_MS)
    try:
        with served(run, root / "serve1.log", preheat=False) as server:
            page = open_dashboard(context, server)
            for sid, label in zip(batch[:2], truth[:2], strict=True):
                wait_on_screen(page, sid)
                press_label(page, label)
                status_is(page, f"#{sid} labelled {label}.")  # acknowledged on the page
            # the server and every kernel below it die at once, without any cleanup
            below = _descendants(server.proc.pid)
            for pid in [server.proc.pid, *below]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.proc.wait(10)
            page.close()
        assert live_labels(run) == dict(zip(batch[:2], truth[:2], strict=True))
        time.sleep(0.5)
        with served(run, root / "serve2.log", preheat=False) as again:
            page = open_dashboard(context, again)
            tally_done(page, 2)
            wait_on_screen(page, batch[2])  # the next unlabelled sample of the batch
            press_label(page, truth[2])
            status_is(page, f"#{batch[2]} labelled {truth[2]}.")
            assert live_labels(run) == dict(zip(batch[:3], truth[:3], strict=True))
            assert dashboard_errors(page) == []
            assert page.errors == [], page.errors
    finally:
        context.close()
