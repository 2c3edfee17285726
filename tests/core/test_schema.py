"""One schema: every frame conforms to it, on every code path, and names live only there."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alfaviz import schema
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment
from alfaviz.strategies import STRATEGIES, ALFAMix, get_strategy

ROOT = Path(__file__).resolve().parents[2]


def _problem(seed: int = 0, relu: bool = False):
    g = torch.Generator().manual_seed(seed)
    zu = torch.randn(120, 8, generator=g)
    zl = torch.randn(15, 8, generator=g)
    if relu:
        zu, zl = zu.relu(), zl.relu()
    return zu, zl, torch.arange(15) % 3


def _assert_conforms(df: pd.DataFrame, frame: schema.Frame) -> None:
    for col in frame.columns:
        if col.name not in df.columns:
            assert not col.required, f"{frame.name} lacks required {col.name}"
            continue
        got = df[col.name].dtype
        if col.dtype == "str":
            assert got.kind in "OUT" or isinstance(got, pd.StringDtype), (col.name, got)
        else:
            assert got == np.dtype(col.dtype), f"{frame.name}.{col.name}: {got} != {col.dtype}"


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_returns_conformed_frames(name):
    zu, zl, yl = _problem()
    head = nn.Linear(8, 3)
    res = get_strategy(name, random_state=0).query(zu, zl, yl, head, 6)
    _assert_conforms(res.samples, schema.QUERY_SAMPLES)
    _assert_conforms(res.flips, schema.QUERY_FLIPS)
    assert list(res.samples.columns[: len(schema.QUERY_SAMPLES.names)]) == list(
        schema.QUERY_SAMPLES.names
    )
    if res.paths is not None:
        _assert_conforms(res.paths, schema.PATHS)


@pytest.mark.parametrize(
    ("path", "head", "params"),
    [
        ("linear", nn.Linear(8, 3), {}),
        ("linear-relu", nn.Linear(8, 3), {"relu": True}),
        ("generic", nn.Sequential(nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 3)), {}),
        ("learned", nn.Linear(8, 3), {"alpha": "learned"}),
    ],
)
def test_alfamix_frames_conform_on_every_code_path(path, head, params):
    relu = params.pop("relu", False)
    zu, zl, yl = _problem(relu=relu)
    res = ALFAMix(random_state=0, **params).query(zu, zl, yl, head, 6)
    _assert_conforms(res.samples, schema.QUERY_SAMPLES)
    _assert_conforms(res.flips, schema.QUERY_FLIPS)
    assert res.flips[schema.FLIP_TO].dtype == np.int32
    assert res.flips[schema.STEP_NORM].dtype == np.float32
    assert len(res.flips) == 120 * 3


def test_frames_read_back_from_a_run_conform(tmp_path):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=10, budget=5, projection="pca",
        train=TrainConfig(max_epochs=2, min_steps=2), out=tmp_path / "r",
    )  # fmt: skip
    exp.run(1)
    reopened = Experiment.open(exp.path)
    for exp_ in (exp, reopened):
        _assert_conforms(exp_.samples, schema.SAMPLES)
        _assert_conforms(exp_.flips, schema.FLIPS)
        _assert_conforms(exp_.rounds, schema.ROUNDS)
    raw = exp.store.read_samples()  # what the store holds is already conformed
    _assert_conforms(raw, schema.SAMPLES)
    assert raw[schema.X].dtype == np.float32
    _assert_conforms(exp.store.read_extra(0, "queried"), schema.QUERIED)
    _assert_conforms(exp.store.read_extra(0, "paths"), schema.PATHS)


def test_conform_fills_defaults_casts_and_orders():
    df = pd.DataFrame({schema.ANCHOR_CLASS: [1, 2], schema.SAMPLE_ID: [5, 6], "mine": ["a", "b"]})
    out = schema.conform(df, schema.QUERY_FLIPS)
    assert list(out.columns) == [*schema.QUERY_FLIPS.names, "mine"]
    assert out[schema.FLIP_TO].tolist() == [-1, -1]
    assert np.isinf(out[schema.CRITICAL_EPS]).all()
    assert out[schema.ANCHOR_CLASS].dtype == np.int32
    assert list(schema.conform(df, "query_flips", extra="drop").columns) == list(
        schema.QUERY_FLIPS.names
    )
    assert list(df.columns) == [schema.ANCHOR_CLASS, schema.SAMPLE_ID, "mine"]  # not modified


def test_conform_refuses_what_cannot_take_the_dtype():
    with pytest.raises(ValueError, match="needs a 'sample_id' column"):
        schema.conform(pd.DataFrame({schema.ANCHOR_CLASS: [1]}), schema.QUERY_FLIPS)
    with pytest.raises(ValueError, match="non-integer"):
        schema.conform(
            pd.DataFrame({schema.SAMPLE_ID: [1.5], schema.ANCHOR_CLASS: [0]}), schema.QUERY_FLIPS
        )


def test_time_columns_are_float64():
    out = schema.conform(
        pd.DataFrame({schema.ROUND: [0], schema.time_column("train"): [1]}), schema.ROUNDS
    )
    assert out[schema.time_column("train")].dtype == np.float64


def test_every_frame_is_documented():
    for frame in schema.FRAMES.values():
        assert frame.doc, frame.name
        for col in frame.columns:
            assert col.doc, f"{frame.name}.{col.name}"
            assert col.dtype in {
                "int64",
                "int32",
                "int8",
                "float64",
                "float32",
                "bool",
                "str",
                "Int64",
                "object",
            }


# ---------------------------------------------------------------------------------------------
# no column name outside schema.py
# ---------------------------------------------------------------------------------------------


def _column_names() -> set[str]:
    return {c.name for f in schema.FRAMES.values() for c in f.columns}


# mappings whose keys are settings or file-format fields, not columns
_NOT_FRAMES = {"config", "cfg", "meta", "mat", "kwargs", "kw", "state", "spec", "dspec"}


def _literal_column_uses(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        # df["col"], row["col"]
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in names
            and getattr(node.value, "id", None) not in _NOT_FRAMES
        ):
            found.append(f"{path.name}:{node.lineno} [{node.slice.value!r}]")
        # pd.DataFrame({"col": ...})
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname == "DataFrame" and node.args and isinstance(node.args[0], ast.Dict):
                for key in node.args[0].keys:
                    if isinstance(key, ast.Constant) and key.value in names:
                        found.append(f"{path.name}:{key.lineno} DataFrame({key.value!r})")
    return found


def test_no_column_name_is_a_string_literal_outside_schema():
    names = _column_names()
    hits = []
    for path in sorted((ROOT / "alfaviz").rglob("*.py")):
        if path.name != "schema.py":
            hits += _literal_column_uses(path, names)
    assert not hits, "use alfaviz.schema names instead of literals: " + ", ".join(hits)


def test_the_literal_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('import pandas as pd\ndf = pd.DataFrame({"sample_id": [1]})\nx = df["label"]\n')
    assert len(_literal_column_uses(bad, _column_names())) == 2
