"""Views only observe and render: no torch call and no frame written while a user looks around."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import torch
from torch.overrides import TorchFunctionMode

import alfaviz
from alfaviz import schema
from alfaviz.widgets import RunData, dashboard

WIDGETS = Path(alfaviz.__file__).parent / "widgets"


class _Record(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_no_widget_module_imports_torch():
    for path in sorted(WIDGETS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "torch" for n in names), path.name


def test_looking_around_calls_no_torch_and_writes_nothing(oracle_run):
    data = RunData(oracle_run)
    board = dashboard(data)
    board.wait(120)  # the hypothesis chart's first computation records Entropy with the run
    state = board.state
    store = oracle_run.store
    files = {p: p.stat().st_mtime_ns for p in Path(store.path).rglob("*") if p.is_file()}
    frames = {r: data.samples(r).copy(deep=True) for r in range(data.n_rounds)}
    batch = data.queried(state.round)[schema.SAMPLE_ID].tolist()
    with _Record() as rec:
        state.select(batch[:3])
        state.colour_by = "pseudo_label"
        state.colour_by = "critical_eps"
        state.hovered_id = int(batch[0])
        state.focus_id = int(batch[1])
        state.sweep_cap = 0.25
        state.round = 0
        state.round = data.n_rounds - 1
        state.select([])
    assert rec.calls == [], f"views called torch: {sorted(set(rec.calls))[:10]}"
    assert board.errors.messages == []
    for r, df in frames.items():
        pd.testing.assert_frame_equal(data.samples(r), df)
    after = {p: p.stat().st_mtime_ns for p in Path(store.path).rglob("*") if p.is_file()}
    changed = [p.name for p, t in after.items() if files.get(p) != t and p.suffix != ".sqlite-shm"]
    assert not [c for c in changed if not c.startswith("labels.sqlite")], changed
    assert len(oracle_run.label_log) == len(store.actions())  # no label written
    assert torch.is_tensor(torch.zeros(1))  # the recorder was a scoped mode
