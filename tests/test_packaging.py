"""Packaging contracts: a GUI-free core, and conda and pip naming the same dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
GUI = ("ipywidgets", "plotly", "IPython", "anywidget", "voila", "umap", "matplotlib.pyplot")


def test_core_imports_no_gui_library():
    """Importing every core module pulls in no widget, plotting or IPython package."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import alfaviz\n"
        "def walk(path, prefix):\n"
        "    for m in pkgutil.iter_modules(path, prefix):\n"
        "        if m.name.startswith('alfaviz.widgets'):\n"
        "            continue\n"
        "        mod = importlib.import_module(m.name)\n"
        "        if m.ispkg:\n"
        "            walk(mod.__path__, m.name + '.')\n"
        "walk(alfaviz.__path__, 'alfaviz.')\n"
        "assert 'alfaviz.session.experiment' in sys.modules\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {GUI!r} or m in {GUI!r}]\n"
        "print('LOADED', sorted(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def _norm(req: str) -> tuple[str, str]:
    req = req.strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for name, extra in data["project"]["optional-dependencies"].items():
        if name != "all":
            reqs += extra
    return dict(_norm(r) for r in reqs)


def _environment_requirements() -> dict[str, str]:
    out: dict[str, str] = {}
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        line = line.split("#", 1)[0].rstrip()
        if re.match(r"^\S", line):  # a top-level key: only `dependencies:` lists packages
            in_deps = line.startswith("dependencies:")
            continue
        m = re.match(r"^\s*-\s+(.+)$", line)
        if not in_deps:
            continue
        if not m:
            continue
        item = m.group(1).strip()
        if item in ("pip", "pip:") or item.startswith(("python=", "-e")):
            continue
        name, spec = _norm(item)
        out[name] = spec.replace("=", "==", 1) if re.match(r"^=[^=]", spec) else spec
    return out


def test_environment_yml_matches_pyproject():
    py = _pyproject_requirements()
    env = _environment_requirements()
    assert set(py) == set(env), (
        f"only in pyproject: {sorted(set(py) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(py))}"
    )
    for name, spec in py.items():
        assert env[name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {env[name]!r}"


def test_torch_pins():
    py = _pyproject_requirements()
    assert py["torch"] == "==2.14.1"
    assert py["torchvision"] == "==0.29.1"


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2, "the README opens with the run command and the test command"
    test_cmd = blocks[1].strip()
    assert test_cmd in ci, f"the CI script must run the README's test command: {test_cmd!r}"


@pytest.mark.parametrize("extra", ["widgets", "test", "lint"])
def test_extras_declared(extra):
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["optional-dependencies"][extra]


@pytest.mark.parametrize(
    "module",
    [
        "alfaviz",
        "alfaviz.schema",
        "alfaviz.store",
        "alfaviz.errors",
        "alfaviz.engine",
        "alfaviz.session.config",
        "alfaviz.analysis",
    ],
)
def test_light_imports_do_not_load_torch(module):
    """The package, its schema and its run store import without torch (or any GUI library)."""
    code = (
        "import sys\n"
        f"import {module}\n"
        f"heavy = [m for m in ('torch', 'torchvision', 'sklearn', *{GUI!r}) if m in sys.modules]\n"
        "print('LOADED', heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_import_alfaviz_is_fast():
    """``import alfaviz`` costs under 0.3 s (best of three fresh interpreters)."""
    code = "import time; t = time.perf_counter(); import alfaviz; print(time.perf_counter() - t)"
    times = []
    for _ in range(3):
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(float(res.stdout.strip()))
    assert min(times) < 0.3, times


def test_public_api_is_lazy_and_complete():
    """Every name in ``alfaviz.__all__`` resolves, and unknown names raise AttributeError."""
    import alfaviz

    for name in alfaviz.__all__:
        assert getattr(alfaviz, name) is not None, name
    assert "Experiment" in dir(alfaviz)
    with pytest.raises(AttributeError, match="no attribute"):
        alfaviz.CandidateResult  # noqa: B018 - internals stay in their subpackage
