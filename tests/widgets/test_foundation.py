"""The shared state, the run data the views read, errors on screen, and the optional extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import traitlets

from alfaviz import schema
from alfaviz.errors import AlfavizInputError
from alfaviz.widgets import AppState, ErrorArea, RunData, View


def test_state_traits_validate_and_notify():
    s = AppState()
    seen = []
    s.observe(lambda ch: seen.append(ch["name"]), names=["selected_ids"])
    s.select(np.array([5, 2, 5]))
    assert s.selected_ids == (5, 2)
    s.round = 1  # not observed
    assert seen == ["selected_ids"]
    with pytest.raises(traitlets.TraitError, match="colour_by"):
        s.colour_by = "rainbow"
    with pytest.raises(traitlets.TraitError, match="round"):
        s.round = -1
    with pytest.raises(traitlets.TraitError, match="integer ids"):
        s.selected_ids = ("a",)
    s.colour_by = "score:entropy"
    v = s.data_version
    s.bump()
    assert s.data_version == v + 1


def test_run_data_reads_conformed_frames(oracle_run):
    data = RunData(oracle_run)
    assert data.read_only  # an oracle run is only looked at
    assert data.n_rounds == 2
    s = data.samples(1)
    assert s[schema.X].dtype == np.float32
    assert s[schema.PSEUDO_LABEL].dtype == np.int32
    assert len(s) == oracle_run.data.n_train
    assert data.samples(1) is s  # cached
    f = data.flips(0)
    assert f[schema.FLIP_TO].dtype == np.int32
    q = data.queried(0)
    assert len(q) == 8
    assert data.paths(0)[schema.PATH_T].dtype == np.float32
    anchors = data.anchor_points(1)
    assert set(anchors[schema.ANCHOR_CLASS]) <= set(range(10))
    assert anchors[schema.X].dtype == np.float32
    with pytest.raises(AlfavizInputError, match="has not been written"):
        data.samples(5)
    with pytest.raises(AlfavizInputError, match="read-only"):
        data.submit_label(0, 1)


def test_run_data_events_bump_the_state_and_drop_the_cache(human_run):
    data = RunData(human_run)
    assert not data.read_only
    state = AppState()
    data.attach(state)
    before = data.samples(0)
    v = state.data_version
    sid = int(data.pending[0])
    data.submit_label(sid, 3)
    assert state.data_version == v + 1
    assert data.labels()[sid] == 3
    assert data.samples(0) is not before  # re-read after the change
    human_run.step()
    assert state.round == 1  # a new round moves the views to it


def test_errors_are_shown_with_the_view_name(oracle_run):
    import ipywidgets as widgets

    class Broken(View):
        name = "broken"
        css_class = "alfaviz-broken"

        def _build(self):
            self._observe(self._on_round, ["round"])
            return widgets.HTML("ok")

        def _on_round(self, change):
            raise RuntimeError("cannot draw")

    state = AppState()
    view = Broken(state, RunData(oracle_run))
    assert "alfaviz-broken" in view.widget._dom_classes
    state.round = 1
    assert view.errors.messages == ["broken: RuntimeError: cannot draw"]
    assert "cannot draw" in view.errors.widget.value
    assert view.errors.widget.layout.display is None
    shared = ErrorArea()
    other = Broken(state, RunData(oracle_run), errors=shared)
    assert shared.widget not in other.widget.children


def test_without_the_extra_the_import_names_it():
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('ipywidgets', 'plotly'):
                    raise ImportError('no ' + name)
        sys.meta_path.insert(0, Block())
        try:
            import alfaviz.widgets
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'alfaviz[widgets]'" in out.stdout


def test_patches_before_any_view_are_not_lost():
    """Voila runs the notebook before the page connects: edits made then must reach it."""
    import numpy as np
    import plotly.graph_objects as go

    from alfaviz.widgets._base import count_views, patch

    fig = count_views(go.FigureWidget(go.Figure(go.Scattergl(x=[0.0, 1.0], y=[0.0, 1.0]))))
    with patch(fig):
        fig.data[0].marker.color = np.array([1.0, 2.0], dtype=np.float32)
    synced = fig._widget_data[0]["marker"]["color"]
    assert list(np.asarray(synced)) == [1.0, 2.0]  # the state a late front-end loads
    fig._view_count = 1  # a view exists: edits travel as messages, no full resend
    before = fig._widget_data
    with patch(fig):
        fig.data[0].marker.color = np.array([3.0, 4.0], dtype=np.float32)
    assert fig._widget_data is before
