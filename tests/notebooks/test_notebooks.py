"""The workshop course: every notebook runs headless, top to bottom, with small settings.

The notebooks read ``ALFAVIZ_QUICK=1`` themselves and pick fewer rounds, epochs and seeds; the
kernel inherits it from this process. Each execution is timed (printed, and kept under
:data:`LIMIT_S` on 2 CPU cores). The fast tests check the course's shape: no outputs committed,
learning goals at the top, exercises at the end with their answers hidden, and nothing that
downloads.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "notebooks"
NOTEBOOKS = sorted(COURSE.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((COURSE / "solutions").glob("*.ipynb"))
LIMIT_S = 180.0
TIMINGS = ROOT / ".pytest_cache" / "notebook-timings.json"


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_there_is_a_course():
    assert NOTEBOOKS, f"no notebooks in {COURSE}"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers[0] == 1, "the course starts with 01_..."
    assert len(set(numbers)) == len(numbers), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_goals_first_exercises_last_answers_hidden(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith("# "), "the first cell is the notebook's title"
    assert "learning goals" in first.source.lower()
    exercises = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and re.search(r"^#+ Exercises", c.source, re.M)
    ]
    assert exercises, "the notebook ends with an Exercises section"
    tail = nb.cells[exercises[-1] + 1 :]
    hidden = [c for c in tail if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
    in_solutions = any(path.stem in p.stem for p in SOLUTIONS)
    assert hidden or in_solutions, "answers sit in a collapsed cell or in notebooks/solutions/"
    for c in hidden:
        i = nb.cells.index(c)
        note = nb.cells[i - 1]
        assert note.cell_type == "markdown", "a collapsed answer follows a markdown note"
        assert "answer" in note.source.lower(), "the note says the answers are below"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_reads_quick_and_downloads_nothing(path):
    nb = _read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if path in NOTEBOOKS:
        assert 'os.environ.get("ALFAVIZ_QUICK") == "1"' in code
    for needle in ("download=True", "--download", "urlopen", "requests.", "urlretrieve", "!pip"):
        assert needle not in code, f"{path.name} must not download anything ({needle})"


def _record(name: str, seconds: float) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    try:
        times = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        times = {}
    times[name] = round(seconds, 1)
    TIMINGS.write_text(json.dumps(times, indent=1, sort_keys=True))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch, capsys):
    from nbclient import NotebookClient

    nb = _read(path)
    monkeypatch.setenv("ALFAVIZ_QUICK", "1")  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the course's own scratch folders (tempfile.mkdtemp) go into this test's folder
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()  # a failing cell (a broken widget's assert included) raises here
    seconds = time.perf_counter() - t0
    _record(path.name, seconds)
    with capsys.disabled():
        print(f"\n{path.name}: {seconds:.1f} s with ALFAVIZ_QUICK=1")
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {LIMIT_S:.0f} s)"
