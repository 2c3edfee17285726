"""``alfaviz report RUN``: writes the round's offline HTML report and prints its path."""

from __future__ import annotations

import pytest

from alfaviz.analysis.selection_report import PICK_CLASS
from alfaviz.cli import main

FAST = ["--epochs", "3", "--initial-size", "10", "--budget", "5", "--projection", "pca"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-report") / "r"
    assert main(["run", "--rounds", "2", "--out", str(out), "-q", *FAST]) == 0
    return out


def test_report_defaults_to_the_latest_round_in_the_run_directory(run_dir, capsys):
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    want = run_dir / "report_round_1.html"
    assert out == [str(want)]
    text = want.read_text(encoding="utf-8")
    assert "Selection report · round 1" in text
    assert text.count(f'class="{PICK_CLASS}"') == 5


def test_report_round_and_out(run_dir, tmp_path, capsys):
    target = tmp_path / "handout.html"
    assert main(["report", str(run_dir), "--round", "0", "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    text = target.read_text(encoding="utf-8")
    assert "Selection report · round 0" in text
    assert text.count(f'class="{PICK_CLASS}"') == 5


def test_report_without_baseline(run_dir, tmp_path, capsys):
    target = tmp_path / "own.html"
    assert main(["report", str(run_dir), "--out", str(target), "--baseline", "none"]) == 0
    outcomes = target.read_text(encoding="utf-8").split('<section id="outcomes">')[1]
    assert "<td>entropy</td>" not in outcomes
    assert "<td>alfamix</td>" in outcomes


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--round", "9"], "round=9: not written"),
        (["--out", "{tmp}"], "is a directory"),
        (["--out", "{tmp}/no/such/folder.html"], "does not exist"),
        (["--baseline", "nope"], "unknown strategy"),
    ],
)
def test_errors_are_one_line(run_dir, tmp_path, capsys, extra, needle):
    argv = ["report", str(run_dir), *[a.replace("{tmp}", str(tmp_path)) for a in extra]]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "r.html")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("alfaviz: error: ")
    assert len(err.splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err
    assert captured.out == ""


def test_a_missing_run_and_a_run_without_rounds(tmp_path, capsys):
    assert main(["report", str(tmp_path / "not-a-run")]) == 2
    assert "not-a-run" in capsys.readouterr().err
    empty = tmp_path / "empty"
    assert main(["run", "--rounds", "0", "--out", str(empty), "-q", *FAST]) == 0
    capsys.readouterr()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no round has been written yet" in err
    assert not list(empty.glob("*.html"))


def test_help_is_useful(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: alfaviz report" in text
    for needle in ("RUN", "--round", "--out", "report_round_", "network"):
        assert needle in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "alfaviz report" in capsys.readouterr().out
