"""The ``alfaviz`` command line: useful help, one-line errors, runs that can be inspected."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alfaviz.cli import main

FAST = ["--epochs", "3", "--initial-size", "10", "--budget", "5", "--projection", "pca"]


def test_run_then_info(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--rounds", "2", "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert f"run directory: {out}" in text
    assert "round 0: 10 labelled" in text
    assert "round 1: 15 labelled" in text
    assert (out / "config.json").exists()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "strategy: alfamix" in info
    assert "labels: initial 10, oracle 10" in info
    assert len([ln for ln in info.splitlines() if ln.strip().startswith(("0 ", "1 "))]) == 2


def test_sharded_rounds_record_the_same_run(tmp_path, capfd):
    """``--sharded`` on the local engine: the shards' records make the same run."""
    import pandas as pd

    from alfaviz.session import open_run

    for name, extra in (("whole", []), ("sharded", ["--sharded"])):
        assert main(["run", "--rounds", "2", "--out", str(tmp_path / name), *FAST, *extra]) == 0
    text = capfd.readouterr().out
    assert f"sharded rounds (workers write {tmp_path / 'sharded' / 'shards'})" in text
    whole, sharded = open_run(tmp_path / "whole"), open_run(tmp_path / "sharded")
    pd.testing.assert_frame_equal(whole.samples, sharded.samples, check_exact=True)
    pd.testing.assert_frame_equal(whole.flips, sharded.flips, check_exact=True)
    assert main(["run", "--rounds", "1", "--out", str(tmp_path / "x"), "--strategy", "random",
                 "--sharded", *FAST]) == 2  # fmt: skip
    assert "sharded ALFA-Mix query" in capfd.readouterr().err


def test_several_seeds_give_one_directory_each(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["run", "--rounds", "1", "--seed", "0", "1", "--strategy", "random", "--out", str(out)]
    assert main([*args, *FAST]) == 0
    assert (out / "seed0" / "config.json").exists()
    assert (out / "seed1" / "config.json").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--dataset", "mnist", "--root", "{tmp}"], "MNIST"),
        (["run", "--strategy", "nope", "--out", "{tmp}/x"], "unknown strategy"),
        (["run", "--budget", "0", "--out", "{tmp}/x"], "budget"),
        (["run", "--dataset", "{tmp}/missing.csv"], "missing.csv"),
        (["info", "{tmp}/not-a-run"], "not-a-run"),
        (["run", "--model", "transformer", "--out", "{tmp}/x"], "unknown model"),
        (["run", "--shard-size", "0", "--out", "{tmp}/x"], "shard_size"),
        (["run", "--address", "auto", "--out", "{tmp}/x"], "--engine ray"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alfaviz: error: ")
    assert len(err.splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()  # checked before a run folder is written


@pytest.mark.parametrize("cmd", ["run", "compare", "info"])
def test_help_is_useful(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: alfaviz" in text
    if cmd != "info":
        for opt in ("--dataset", "--budget", "--rounds", "--model"):
            assert opt in text


def test_console_script_installed():
    res = subprocess.run(
        [sys.executable, "-m", "alfaviz.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0
    assert "alfaviz run" in res.stdout


@pytest.mark.slow
def test_compare_writes_curves_and_matrix(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = [
        "compare", "--strategies", "alfamix", "random", "--seeds", "0", "1", "--rounds", "2",
        "--initial-size", "10", "--budget", "5", "--epochs", "3", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "alfamix" in text
    assert "random" in text
    for name in ("curves.csv", "auc.csv", "wins.csv", "learning_curves.png"):
        assert (out / name).exists(), name
    assert (out / "learning_curves.png").stat().st_size > 1000


def test_info_verifies_checksums_and_names_the_damaged_file(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--rounds", "1", "--out", str(out), "--strategy", "random", *FAST]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "every checksum matches" in capsys.readouterr().out
    victim = next((out / "rounds").glob("round_*/samples.parquet"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert main(["info", str(out)]) == 1
    text = capsys.readouterr().out
    assert "damaged" in text
    assert "samples.parquet" in text


@pytest.mark.slow
def test_compare_passes_settings_through_and_its_runs_reopen(tmp_path, capsys):
    from alfaviz import open_run
    from alfaviz.analysis.compare import load_comparison

    out = tmp_path / "cmp"
    argv = [
        "compare", "--strategies", "alfamix", "random", "--seeds", "0", "1", "--rounds", "1",
        "--initial-size", "12", "--initial", "per_class", "--budget", "5", "--epochs", "2",
        "--alpha-cap", "0.1", "--alpha", "learned", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    run = open_run(out / "alfamix-seed1")
    cfg = run.run_config
    assert cfg.strategy["params"]["alpha_cap"] == 0.1
    assert cfg.strategy["params"]["alpha"] == "learned"
    assert cfg.initial == "per_class"
    assert cfg.initial_size == 12
    assert cfg.device == "cpu"
    assert cfg.data["spec"] == "digits"
    assert open_run(out / "random-seed0").run_config.strategy["params"] == {"random_state": 0}
    assert len(load_comparison(out).curves) == 4


def test_info_reports_a_read_only_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert main(["run", "--rounds", "0", "--out", str(out), "--strategy", "random", *FAST]) == 0
    capsys.readouterr()
    import os

    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if mode == os.W_OK else real(p, mode)
    )
    assert main(["info", str(out)]) == 0
    assert "read-only" in capsys.readouterr().out.splitlines()[0]
