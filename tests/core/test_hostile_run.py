"""Opening a run directory someone else prepared executes nothing and downloads nothing.

The attacker here controls the whole run folder: they rewrite ``config.json`` and recompute its
checksums (in the file and in ``labels.sqlite``) exactly as alfaviz would, so only the
allow-lists and the plain-tensor loaders stand between them and code execution.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from pathlib import Path

import pytest

from alfaviz import open_run
from alfaviz.errors import AlfavizInputError, RunStoreError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from alfaviz.store._io import canonical, sha256


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _make_run(tmp_path: Path) -> Path:
    exp = Experiment(
        "digits", "auto", "random", initial_size=10, budget=5, projection="none",
        train=TrainConfig(max_epochs=2, min_steps=2), out=tmp_path / "run",
    )  # fmt: skip
    exp.run(1)
    exp.store.close()
    return exp.path


def _forge(run: Path, edit) -> None:
    """Edit the config and re-sign it everywhere, as alfaviz itself would."""
    path = run / "config.json"
    meta = json.loads(path.read_text())
    edit(meta)
    body = {k: v for k, v in meta.items() if k != "checksum"}
    meta["checksum"] = sha256(canonical(body).encode())
    path.write_text(json.dumps(meta))
    with sqlite3.connect(run / "labels.sqlite") as conn:
        conn.execute(
            "UPDATE run_meta SET value = ? WHERE key = 'config_sha256'", (meta["checksum"],)
        )


def test_the_payload_really_runs_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pkl", ".pt", ".npy", ".csv"])
def test_a_config_pointing_at_a_pickle_runs_nothing(tmp_path, suffix):
    run = _make_run(tmp_path)
    marker = tmp_path / "ran"
    evil = tmp_path / f"data{suffix}"
    evil.write_bytes(pickle.dumps(_Payload(marker)))

    def edit(meta):
        meta["config"]["data"] = {"spec": str(evil), "kwargs": {}}

    _forge(run, edit)
    with pytest.raises((AlfavizInputError, RunStoreError)):
        open_run(run)
    assert not marker.exists()


def test_a_config_asking_for_a_download_or_no_integrity_check_is_refused(tmp_path):
    run = _make_run(tmp_path)
    for kwargs in ({"download": True, "root": str(tmp_path)}, {"verify": False}):

        def edit(meta, kwargs=kwargs):
            meta["config"]["data"] = {"spec": "cifar10", "kwargs": kwargs}

        _forge(run, edit)
        with pytest.raises(AlfavizInputError, match=r"download|verify"):
            open_run(run)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickled_initial_weights_run_nothing(tmp_path):
    run = _make_run(tmp_path)
    marker = tmp_path / "ran"
    blob = pickle.dumps({"weight": _Payload(marker)})
    (run / "initial_state.pt").write_bytes(blob)

    def edit(meta):
        meta["files"]["initial_state.pt"] = {"bytes": len(blob), "sha256": sha256(blob)}

    _forge(run, edit)
    with pytest.raises(RunStoreError, match="plain state dict"):
        open_run(run)
    assert not marker.exists()


def test_an_honest_run_still_opens(tmp_path):
    run = _make_run(tmp_path)
    _forge(run, lambda meta: None)  # re-signing without changes is harmless
    assert open_run(run).round == 1
