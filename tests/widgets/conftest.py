"""A small digits run, shared by the widget tests (no browser)."""

from __future__ import annotations

import pytest

from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment

FAST = TrainConfig(max_epochs=2, min_steps=2)


def make_run(path, *, labelling="human", rounds=2, strategy="alfamix", projection="pca"):
    exp = Experiment(
        "digits", "auto", strategy, initial_size=20, budget=8, seed=0, projection=projection,
        train=FAST, out=path, labelling=labelling,
    )  # fmt: skip
    for r in range(rounds):
        exp.step()
        if labelling == "human" and r < rounds - 1:  # the last batch waits for a person
            for sid in exp.pending.tolist():
                exp.submit_label(sid, int(exp.data.labels([sid])[0]))
    return exp


@pytest.fixture(scope="session")
def oracle_run(tmp_path_factory):
    """Two ALFA-Mix rounds labelled by the oracle (read-only for the views)."""
    return make_run(tmp_path_factory.mktemp("runs") / "oracle", labelling="oracle", rounds=2)


@pytest.fixture
def human_run(tmp_path):
    """One ALFA-Mix round waiting for a person's labels."""
    return make_run(tmp_path / "human", labelling="human", rounds=1)
