"""export_report(): one self-contained, offline HTML file of a round's selection."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from alfaviz import schema
from alfaviz.analysis.explain import explain
from alfaviz.analysis.hypothesis import explain_round
from alfaviz.analysis.selection_report import (
    PICK_CLASS,
    default_report_path,
    export_report,
    png_data_uri,
)
from alfaviz.data import from_arrays
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import TrainConfig
from alfaviz.session import Experiment

FAST = TrainConfig(max_epochs=2, min_steps=2)  # an untrained model: no candidates, all fill
TRAINED = TrainConfig(max_epochs=30, min_steps=30, lr=1e-2)  # a real candidate set, in ~2 s


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="pca",
        train=TRAINED, out=tmp_path_factory.mktemp("report") / "run", labelling="oracle",
    )  # fmt: skip
    exp.step()
    exp.step()
    return exp


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    path = export_report(run, 1, tmp_path_factory.mktemp("out") / "report.html")
    return path, path.read_text(encoding="utf-8")


class _Scan(HTMLParser):
    """Every tag with its attributes, and the cards' ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.pick_ids: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if PICK_CLASS in a.get("class", "").split():
            self.pick_ids.append(int(a["data-sample-id"]))


def scan(text: str) -> _Scan:
    s = _Scan()
    s.feed(text)
    return s


def external_urls(text: str) -> list[str]:
    """src / href of script, link, img (and other loading tags) that point off the machine."""
    bad = []
    for tag, attrs in scan(text).tags:
        for key in ("src", "href", "srcset", "data"):
            v = attrs.get(key, "").strip().lower()
            if v.startswith(("http://", "https://", "//")):
                bad.append(f"<{tag} {key}={v}>")
    bad += re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", text)
    bad += re.findall(r"@import[^;]*(?:https?:)?//", text)
    return bad


def card_texts(text: str) -> dict[int, str]:
    """Each card's visible text (tags stripped, entities decoded), by sample id."""
    import html as html_mod

    out = {}
    for m in re.finditer(
        rf'<article class="{PICK_CLASS}" data-sample-id="(\d+)">(.*?)</article>', text, re.S
    ):
        plain = re.sub(r"<[^>]+>", " ", m.group(2))
        out[int(m.group(1))] = re.sub(r"\s+", " ", html_mod.unescape(plain))
    return out


def batch_ids(run, r) -> list[int]:
    s = run.samples
    s = s[(s[schema.ROUND] == r) & s[schema.SELECTED]]
    return sorted(s[schema.SAMPLE_ID].astype(int).tolist())


def test_the_file_holds_every_pick_of_the_round_once(run, report):
    path, text = report
    assert path.is_file()
    assert text.startswith("<!DOCTYPE html>")
    ids = scan(text).pick_ids
    assert sorted(ids) == batch_ids(run, 1)
    assert len(ids) == len(set(ids)) == 8


def test_cards_follow_the_pick_order(run, report):
    _, text = report
    why = explain_round(run, 1, baseline=None)
    assert scan(text).pick_ids == why[schema.SAMPLE_ID].astype(int).tolist()


def test_each_card_gives_its_reasons(run, report):
    _, text = report
    cards = card_texts(text)
    names = run.data.class_names
    why = explain_round(run, 1)
    why = why[why[schema.STRATEGY] == run.strategy.name].set_index(schema.SAMPLE_ID)
    seen = set()
    for sid in batch_ids(run, 1):
        e = explain(run, sid, 1)
        seen.add((e.picked_by, bool(e.flips)))
        card = cards[sid]
        assert f"sample {sid}" in card
        assert f"model says {names[e.pseudo_label]}" in card
        if e.picked_by == "k-means":
            assert f"representative of cluster {e.cluster} ({e.cluster_size} candidates)" in card
        else:
            assert e.picked_by == "fill"
            assert "random fill" in card
        if e.flips:
            assert f"Mixing toward {len(e.flips)} anchor class" in card
            for f in e.flips:
                assert f"{names[f.label_before]} → {names[f.label_after]}" in card
                assert f"{names[f.anchor_class]} ε {f.critical_eps:.2g}" in card
        else:
            assert "No anchor flips it" in card
        assert f"r1 {'fill' if e.picked_by == 'fill' else 'picked'}" in card  # its history
        for ev in e.labels:
            assert f"by {ev.source} (round {ev.round})" in card
        row = why.loc[sid]
        outcome = {"pseudo_label": "pseudo-label", "flip_target": "flip target"}.get(
            row[schema.OUTCOME], row[schema.OUTCOME]
        )
        assert outcome in card
        assert f"label {names[int(row[schema.LABEL])]}" in card
        # explain_round recorded Entropy's scores, so the card ranks the pick under Entropy
        assert "Other strategies' ranks: entropy #" in card
    assert ("k-means", True) in seen  # the fixture's round has candidates that flip


def test_header_names_the_round_and_its_numbers(run, report):
    _, text = report
    row = run.rounds.set_index(schema.ROUND).loc[1]
    head = text[text.index('<header class="alfaviz-report-header">') : text.index("</header>")]
    assert str(run.path) in head
    assert "Selection report · round 1" in head
    for needle in (
        "alfamix",
        f"<dd>{int(row[schema.BUDGET])} (8 picked)</dd>",
        f"{float(row[schema.LEVEL]):.3g}",
        f"{int(row[schema.N_CANDIDATES]):,} (k-means {int(row[schema.N_KMEANS])}",
        f"{float(row[schema.ACCURACY]):.3f}",
        "UTC",
    ):
        assert needle in head


def test_plotly_js_is_inlined_exactly_once(report):
    from plotly.offline import get_plotlyjs

    _, text = report
    bundle = get_plotlyjs()
    assert text.count(bundle[:400]) == 1
    assert bundle in text
    assert text.count("Plotly.newPlot(") == 3  # heatmap, learning curve, label outcomes
    for div in ("alfaviz-report-heatmap", "alfaviz-report-curve", "alfaviz-report-outcomes"):
        assert f'id="{div}"' in text


def test_nothing_is_loaded_from_the_network(report):
    _, text = report
    assert external_urls(text) == []
    tags = scan(text).tags
    assert not [a for t, a in tags if t == "script" and a.get("src")]
    assert not [t for t, _ in tags if t in ("link", "iframe")]
    imgs = [a["src"] for t, a in tags if t == "img"]
    assert len(imgs) == 8
    assert all(s.startswith("data:image/png;base64,") for s in imgs)
    from plotly.offline import get_plotlyjs

    assert "mathjax" not in text.replace(get_plotlyjs(), "").lower()  # no MathJax loader


def test_the_checks_can_fail():
    bad = (
        '<script src="https://cdn.plot.ly/plotly.min.js"></script>'
        '<link rel="stylesheet" href="http://fonts.example/x.css">'
        '<img src="//example.org/a.png"><style>@import url(https://x.org/f.css);</style>'
        f'<article class="{PICK_CLASS}" data-sample-id="3"></article>'
        f'<article class="{PICK_CLASS}" data-sample-id="3"></article>'
    )
    assert len(external_urls(bad)) >= 4
    assert scan(bad).pick_ids == [3, 3]


def test_thumbnails_are_the_round_pixels(run, report):
    from PIL import Image

    _, text = report
    ids = scan(text).pick_ids
    imgs = [a["src"] for t, a in scan(text).tags if t == "img"]
    pixels = run.data.images(np.asarray(ids))
    for uri, want in zip(imgs, pixels, strict=True):
        raw = base64.b64decode(uri.split(",", 1)[1])
        got = np.asarray(Image.open(io.BytesIO(raw)))
        np.testing.assert_array_equal(got, want)


def test_png_writer_handles_colour_and_large_images():
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_data_uri(rgb).split(",")[1]))))
    np.testing.assert_array_equal(got, rgb)
    big = rng.integers(0, 256, size=(300, 200), dtype=np.uint8)
    got = Image.open(io.BytesIO(base64.b64decode(png_data_uri(big).split(",")[1])))
    assert max(got.size) <= 128
    with pytest.raises(AlfavizInputError, match="shape"):
        png_data_uri(np.zeros((2, 2, 4), dtype=np.uint8))


def test_label_outcomes_and_their_meaning(run, report):
    _, text = report
    section = text[text.index('<section id="outcomes">') :]
    assert "features the model does not recognise yet" in section
    for word in ("flip target", "pseudo-label", "neither"):
        assert word in section
    rows = re.findall(r"<tr(?: class=\"this\")?><td>(\d+)</td><td>([^<]+)</td>", section)
    assert sorted(rows) == sorted([(str(r), s) for r in (0, 1) for s in ("alfamix", "entropy")])


def test_default_path_is_in_the_run_directory(run):
    path = export_report(run)  # the latest round
    assert path == default_report_path(run.path, 1) == run.path / "report_round_1.html"
    assert path.is_file()
    path.unlink()


def test_a_run_directory_is_opened(run, tmp_path):
    path = export_report(str(run.path), 0, tmp_path / "r0.html", baseline=None)
    text = path.read_text(encoding="utf-8")
    assert sorted(scan(text).pick_ids) == batch_ids(run, 0)
    assert "Selection report · round 0" in text
    assert "entropy" not in text.split('<section id="outcomes">')[1].split("</section>")[0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"round": 5}, "round=5: not written in run"),
        ({"round": "1"}, "round must be an integer"),
        ({"round": True}, "round must be an integer"),
        ({"round": 1.0}, "round must be an integer"),
        ({"path": "{tmp}"}, "is a directory"),
        ({"path": "{tmp}/missing/report.html"}, "does not exist"),
        ({"path": 3}, "path must be a file name"),
        ({"baseline": 3}, "baseline must be a strategy name"),
        ({"baseline": "nope"}, "unknown strategy"),
    ],
)
def test_bad_inputs_are_refused_clearly(run, tmp_path, kwargs, needle):
    kwargs = {
        k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) and k == "path" else v
        for k, v in kwargs.items()
    }
    kwargs.setdefault("path", tmp_path / "r.html")
    with pytest.raises(AlfavizInputError, match=re.escape(needle)):
        export_report(run, **kwargs)
    assert not (tmp_path / "r.html").exists()


def test_not_a_run_is_refused():
    with pytest.raises(AlfavizInputError, match="run must be an Experiment or a run directory"):
        export_report(42, None, "r.html")


def test_a_run_without_rounds_is_refused(tmp_path):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=8, seed=0, projection="none",
        train=FAST, out=tmp_path / "empty", labelling="oracle",
    )  # fmt: skip
    with pytest.raises(AlfavizInputError, match="no round has been written yet"):
        export_report(exp, None, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_tabular_data_gets_features_and_every_text_is_escaped(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 4)) * 3
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(size=(120, 4))
    classes = np.array(["<i>cat</i>", "dog & co", '"fish"'])
    source = from_arrays(
        x, classes[y], name="tab", feature_names=["<script>alert(1)</script>", "b", "c", "d"]
    )
    exp = Experiment(
        source, "auto", "alfamix", initial_size=10, budget=5, seed=0, projection="none",
        train=FAST, out=tmp_path / "tab", labelling="oracle",
    )  # fmt: skip
    exp.step()
    text = export_report(exp, 0, tmp_path / "tab.html").read_text(encoding="utf-8")
    s = scan(text)
    assert len(s.pick_ids) == 5
    assert not [t for t, _ in s.tags if t == "img"]
    assert text.count('<svg class="spark"') == 5
    assert "<script>alert(1)</script>" not in text
    assert "<i>cat</i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;i&gt;cat&lt;/i&gt;" in text
    assert external_urls(text) == []


def test_importing_the_module_loads_no_gui_library():
    import subprocess
    import sys

    code = (
        "import sys, alfaviz.analysis.selection_report\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'plotly', "
        "'IPython') or m.startswith('alfaviz.widgets')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_file_is_written_whole(run, tmp_path):
    target = tmp_path / "r.html"
    target.write_text("old")
    export_report(run, 1, target)
    assert target.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["r.html"]  # no temporary left


def test_a_baseline_run_says_what_picked_each_sample(tmp_path):
    exp = Experiment(
        "digits", "auto", "entropy", initial_size=20, budget=5, seed=0, projection="none",
        train=FAST, out=tmp_path / "ent", labelling="oracle",
    )  # fmt: skip
    exp.step()
    text = export_report(exp, 0, tmp_path / "ent.html").read_text(encoding="utf-8")
    cards = card_texts(text)
    assert sorted(cards) == batch_ids(exp, 0)
    for card in cards.values():
        assert "entropy picked for its score (#" in card
        assert "k-means" not in card
    assert "– (not ALFA-Mix)" in text
    assert "no inconsistency heatmap to draw" in text
    assert text.count("Plotly.newPlot(") == 2  # the learning curve and the label outcomes


def test_a_round_of_fill_picks(tmp_path):
    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=5, seed=0, projection="none",
        train=FAST, out=tmp_path / "fill", labelling="oracle",
    )  # fmt: skip
    exp.step()
    assert int(exp.rounds[schema.N_FILL].iloc[0]) == 5  # untrained: nothing flips
    text = export_report(exp, 0, tmp_path / "fill.html").read_text(encoding="utf-8")
    cards = card_texts(text)
    assert sorted(cards) == batch_ids(exp, 0)
    for card in cards.values():
        assert "random fill drawn at random: k-means gave fewer clusters" in card
        assert "No anchor flips it at any ε the round tried." in card
        assert "r0 fill" in card
    assert "5 of 5 picks came from the fill" in text
    assert "no inconsistency heatmap to draw" in text
