"""``alfaviz course [DIR]``: the notebooks copied for a workshop, from a checkout or a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from setuptools import find_packages

from alfaviz.cli import main
from alfaviz.course import copy_course, course_dir, course_files

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "notebooks"


def _expected() -> list[str]:
    names = [p.name for p in COURSE.glob("*.ipynb")]
    names += [f"solutions/{p.name}" for p in (COURSE / "solutions").glob("*.ipynb")]
    return sorted(names)


def test_a_checkout_reads_its_notebooks_folder():
    assert course_dir() == COURSE
    assert sorted(p.as_posix() for p in course_files()) == _expected()
    assert course_files()[0].name.startswith("01_")


def test_course_copies_the_notebooks(tmp_path, capsys):
    dest = tmp_path / "workshop"
    assert main(["course", str(dest)]) == 0
    out = capsys.readouterr().out
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.ipynb"))
    assert copied == _expected()
    for rel in copied:
        assert (dest / rel).read_bytes() == (COURSE / rel).read_bytes()
    assert f"jupyter lab {dest}" in out
    assert "voila " in out


def test_course_refuses_to_overwrite_without_force(tmp_path, capsys):
    dest = tmp_path / "workshop"
    copy_course(dest)
    first = dest / _expected()[0]
    first.write_text("my notes")
    (dest / "mine.txt").write_text("keep me")
    assert main(["course", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alfaviz: error: ")
    assert len(err.splitlines()) == 1
    assert "--force" in err
    assert first.name in err
    assert first.read_text() == "my notes"  # nothing was touched
    assert main(["course", str(dest), "--force"]) == 0
    assert first.read_bytes() == (COURSE / first.name).read_bytes()
    assert (dest / "mine.txt").read_text() == "keep me"  # other files are left alone


def test_course_refuses_a_file(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["course", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_course_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["course"]) == 0
    assert (tmp_path / "alfaviz-course" / _expected()[0]).exists()


def test_package_list_is_complete():
    """The packages are listed (so that notebooks/ can ship as alfaviz._course): none missed."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = set(find_packages(str(ROOT), include=["alfaviz*"]))
    assert listed == found | {"alfaviz._course"}, (
        f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    )
    assert cfg["package-dir"]["alfaviz._course"] == "notebooks"


@pytest.mark.slow
def test_a_wheel_ships_the_course(tmp_path):
    """A pip-installed alfaviz (no checkout) still finds the notebooks and copies them."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "alfaviz", src / "alfaviz", ignore=ignore)
    shutil.copytree(COURSE, src / "notebooks", ignore=ignore)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         str(src), "-w", str(dist)],
        check=True, capture_output=True, cwd=src,
    )  # fmt: skip
    (wheel,) = dist.glob("alfaviz-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(site)
    for rel in _expected():
        assert f"alfaviz/_course/{rel}" in names
    assert not any(n.startswith("notebooks/") for n in names)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import alfaviz.course as c; "
        "assert c.__file__.startswith(sys.argv[1]), c.__file__; "
        "print(c.course_dir()); c.copy_course(sys.argv[2])"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(site), str(tmp_path / "copy")],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(site / "alfaviz" / "_course")
    copied = sorted(p.relative_to(tmp_path / "copy").as_posix()
                    for p in (tmp_path / "copy").rglob("*.ipynb"))  # fmt: skip
    assert copied == _expected()


def test_course_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["course", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--force" in text
    assert "DIR" in text
    assert main([]) == 0
    assert "alfaviz course" in capsys.readouterr().out
