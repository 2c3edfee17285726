"""Served pages share one copy of each widget library's front-end module, and make the heatmap's
FigureWidget once the page is up (``alfaviz.widgets._modules``, ``FigureSlot``)."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import pytest

from alfaviz.serve import TEMPLATE, voila_argv, write_voila_template
from alfaviz.widgets import _base
from alfaviz.widgets._base import LATE_FIGURE_DELAY_S, FigureSlot, figure_widget
from alfaviz.widgets._modules import (
    MODULES,
    SHARED_MODULES_ENV,
    served_names,
    share_module_of,
    shim,
)


@pytest.fixture
def served_env(tmp_path, monkeypatch):
    """A kernel of ``alfaviz serve``: the template written, its module names in the env."""
    names = write_voila_template(tmp_path)
    monkeypatch.setenv(SHARED_MODULES_ENV, json.dumps(names))
    return tmp_path, names


def test_the_template_serves_each_module_once_and_asks_no_cdn(served_env):
    root, names = served_env
    folder = root / "voila" / "templates" / TEMPLATE
    assert set(names) == {"plotly", "jscatter"}  # both libraries are installed here
    for module in MODULES:
        copy = folder / "static" / names[module.key]
        assert copy.read_bytes() == module.source().read_bytes()
    index = (folder / "index.html.j2").read_text()
    assert index.startswith("{%- extends 'lab/index.html.j2' -%}")
    for name in names.values():  # each module is loaded by the page's head, from the server
        tag = f'src="{{{{ resources.base_url }}}}voila/static/{name}"'
        assert index.count(tag) == 1
    # anywidget's 2 s for a model to initialise is raised on the page, before any module loads
    limit = index.index("AbortSignal.timeout = (ms) => timeout(ms === 2000 ? 20000 : ms)")
    assert limit < min(index.index(n) for n in names.values())
    # the lab template's two CDN style sheets are dropped from what it renders
    assert index.count("| replace(") == 2
    assert "fontawesome-free" in index
    assert json.loads((folder / "conf.json").read_text()) == {"base_template": "lab"}


def test_the_file_names_change_with_the_module(tmp_path):
    module = MODULES[0]
    a, b = tmp_path / "a.js", tmp_path / "b.js"
    a.write_text("export default {};")
    b.write_text("export default {render() {}};")
    assert module.file_name(a) != module.file_name(b)
    assert module.file_name(a) == module.file_name(a)
    assert module.file_name(a).startswith(f"alfaviz-{module.key}-")


def test_serve_uses_the_template_and_the_bare_voila_does_not(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    from alfaviz.serve import serve

    assert f"--template={TEMPLATE}" in serve(tmp_path, port=8123, argv_only=True)
    bare = voila_argv(Path("nb.ipynb"), 8123, "127.0.0.1", preheat=False)
    assert not any(a.startswith("--template") for a in bare)


def test_a_served_figurewidget_carries_a_shim_not_plotly(served_env):
    _, names = served_env
    fig = figure_widget(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
    assert isinstance(fig, go.FigureWidget)
    assert fig._esm == shim(names["plotly"])
    assert len(fig._esm) < 1000  # not plotly's 5 MB
    assert f'"{names["plotly"]}"' in fig._esm
    assert "await import(" in fig._esm
    assert "export default" in fig._esm
    assert fig._view_count == 0  # views are counted, as before


def test_elsewhere_a_figurewidget_keeps_plotly(monkeypatch):
    monkeypatch.delenv(SHARED_MODULES_ENV, raising=False)
    fig = figure_widget(go.Figure())
    assert len(fig._esm) > 1_000_000  # plotly's own module


@pytest.mark.parametrize(
    "value",
    ["not json", '{"plotly": "../../etc/passwd.js"}', '{"other": "alfaviz-other-0123456789ab.js"}',
     '["alfaviz-plotly-0123456789ab.js"]'],
)  # fmt: skip
def test_a_bad_environment_leaves_the_widgets_their_own_modules(monkeypatch, value):
    monkeypatch.setenv(SHARED_MODULES_ENV, value)
    assert served_names() == {}
    assert len(figure_widget(go.Figure())._esm) > 1_000_000
    with pytest.raises(ValueError, match="file name"):
        shim("../x.js")


def test_jupyter_scatter_widgets_share_the_module_under_serve(served_env, monkeypatch):
    from jscatter.widget import JupyterScatter

    _, names = served_env
    monkeypatch.setattr(JupyterScatter, "_esm", JupyterScatter._esm)  # put back after
    share_module_of(JupyterScatter, "jscatter")
    assert JupyterScatter._esm == shim(names["jscatter"])


class FakeLoop:
    """The kernel's io_loop: records ``call_later`` instead of waiting."""

    def __init__(self) -> None:
        self.later: list[tuple[float, object]] = []

    def call_later(self, delay, fn):
        self.later.append((delay, fn))


def test_a_slot_outside_serve_makes_its_figure_at_once(monkeypatch):
    monkeypatch.delenv(SHARED_MODULES_ENV, raising=False)
    made = []
    slot = FigureSlot(lambda: go.Figure(go.Bar(y=[1])), made.append)
    assert not slot.late
    slot.request()
    assert slot.figure is not None
    assert made == [slot.figure]
    assert slot.widget.children == (slot.figure,)


def test_a_served_slot_makes_its_figure_after_the_page_shows_it(served_env, monkeypatch):
    loop = FakeLoop()
    monkeypatch.setattr(_base, "_kernel_loop", lambda: loop)
    state = {"n": 1}
    made = []
    slot = FigureSlot(lambda: go.Figure(go.Bar(y=[state["n"]])), made.append)
    assert slot.late
    slot.request()
    assert slot.requested
    assert slot.figure is None
    assert slot.widget.children == (slot.placeholder,)
    assert "alfaviz-figure-pending" in slot.placeholder._dom_classes
    assert loop.later == []  # no page yet
    state["n"] = 7  # the state moves on before the page comes
    slot.placeholder._view_count = 1  # the page drew the placeholder
    assert [d for d, _ in loop.later] == [LATE_FIGURE_DELAY_S]
    loop.later[0][1]()
    assert slot.figure is not None
    assert made == [slot.figure]
    assert slot.widget.children == (slot.figure,)
    assert tuple(slot.figure.data[0].y) == (7,)  # made from the state of then
    assert slot.figure._esm == shim(
        json.loads(__import__("os").environ[SHARED_MODULES_ENV])["plotly"]
    )
    slot.placeholder._view_count = 2  # a second view does not make another figure
    assert len(loop.later) == 1


def test_the_served_heatmap_waits_for_the_page_then_follows_the_state(
    served_env, monkeypatch, tmp_path
):
    from alfaviz import schema
    from alfaviz.widgets import AppState, Heatmap, RunData
    from tests.widgets.conftest import make_run

    loop = FakeLoop()
    monkeypatch.setattr(_base, "_kernel_loop", lambda: loop)
    run = make_run(tmp_path / "run", rounds=1)
    data = RunData(run)
    try:
        state = AppState()
        view = Heatmap(state, data)
        assert view.slot.figure is None
        sid = int(data.queried(0)[schema.SAMPLE_ID].iloc[0])
        state.select([sid])  # before the page: nothing to patch, no error
        assert view.errors.widget.value == ""
        view.slot.placeholder._view_count = 1
        loop.later[0][1]()
        fig = view.slot.figure
        assert fig is not None
        assert f"#{sid} outlined" in fig.layout.title.text  # made from the selection of then
        assert len(fig.layout.shapes) == 1
        state.select([])
        assert len(fig.layout.shapes) == 0  # and follows the state after
    finally:
        data.close()
