"""Fixtures shared by the core and widget tests."""

from __future__ import annotations

import pytest

from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """Three ALFA-Mix rounds on digits, labelled by the oracle, trained long enough that
    every round has candidates and k-means picks (not only the fill)."""
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=30, budget=15, seed=0, projection="pca",
        train=TrainConfig(max_epochs=30), out=tmp_path_factory.mktemp("trained") / "run",
        labelling="oracle",
    )  # fmt: skip
    exp.run(3)
    return exp


def pytest_collection_modifyitems(config, items):
    """Tests marked ``last`` run after all the others (they start and stop their own cluster
    of processes)."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
