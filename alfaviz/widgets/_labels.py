"""The labelling panel: one sample of the batch at a time, a button per class, keyboard keys.

Every action goes straight through :meth:`RunData.submit_label`, :meth:`RunData.skip` or
:meth:`RunData.undo`, which the Experiment commits to the run's SQLite label log before they
return. The panel keeps no queue of its own: after every action, and whenever
``state.data_version`` moves, it reads ``data.pending`` again (the last batch's ids that are
neither labelled nor skipped, in pick order). A kernel that dies therefore loses nothing, and
a panel opened on the reopened run starts at the next unlabelled sample.

Keys (through ``ipyevents``, while the pointer is over the panel): ``1``–``9`` and ``0``
label with the 1st–10th class, Enter confirms the highlighted class (the oracle's label in
teaching mode), ←/→ move the highlight, ``s`` skips and ``u`` undoes this session's last
label or skip. The handlers are public (:meth:`LabelPanel.on_class`, :meth:`~LabelPanel.on_key`,
:meth:`~LabelPanel.on_skip`, :meth:`~LabelPanel.on_undo`, :meth:`~LabelPanel.on_confirm`), so
tests drive the panel without a browser, the way superintendent and ipyannotations do.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import ipywidgets as widgets
import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.analysis.hypothesis import outcome_of
from alfaviz.widgets._base import View
from alfaviz.widgets._gallery import feature_bar_svg, features, flip_targets, thumbnails
from alfaviz.widgets._hypothesis import OUTCOME_COLOURS

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = [
    "KEYS",
    "TALLY",
    "LabelPanel",
    "Outcome",
    "batch_tally",
    "class_keys",
    "teaching_outcome",
]

KEYS: tuple[str, ...] = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")
"""Keys of the 1st to 10th class, in order (when class names are not the digits 0..9)."""


def class_keys(class_names: Sequence[str]) -> tuple[str, ...]:
    """The key of each class (at most 10): its own digit when the classes are named ``0..n-1``
    (so that 4 labels a "4" in digits or MNIST), else ``1..9, 0`` in class order."""
    names = tuple(str(n) for n in class_names)
    if 0 < len(names) <= 10 and names == tuple(str(i) for i in range(len(names))):
        return names
    return KEYS[: len(names)]


"""Keyboard key of class ``i`` (the 10th class is ``0``; later classes have buttons only)."""

Outcome = Literal["pseudo_label", "flip_target", "neither"]

_READ_ONLY = (
    "This run is open read-only, so it cannot be labelled here. Reopen it with "
    "RunData(run, read_only=False) (a run labelled by a person) to label its batch."
)


def teaching_outcome(label: int, pseudo_label: int, flip_to: tuple[int, ...]) -> Outcome:
    """How a person's label relates to what the model and ALFA-Mix expected.

    Parameters
    ----------
    label : int
        The class the person gave.
    pseudo_label : int
        The model's prediction for the sample.
    flip_to : tuple of int
        Classes the prediction flips to when mixed toward the anchors.

    Returns
    -------
    {"pseudo_label", "flip_target", "neither"}
    """
    if label == pseudo_label:
        return "pseudo_label"
    if label in flip_to:
        return "flip_target"
    return "neither"


UNLABELLED = "unlabelled"
TALLY: tuple[str, ...] = (*schema.OUTCOMES, UNLABELLED)
"""Keys of :func:`batch_tally`: the outcomes, then the batch's samples with no label yet."""

_TALLY_LABELS = {"pseudo_label": "pseudo-label", "flip_target": "flip target", "neither": "neither"}


def batch_tally(
    samples: pd.DataFrame, flips: pd.DataFrame, queried: pd.DataFrame, labels: np.ndarray
) -> dict[str, int]:
    """How the labels of a batch so far relate to the model's pseudo-label and flip targets.

    Parameters
    ----------
    samples : pandas.DataFrame
        The samples frame of the round the batch came from (its pseudo-labels).
    flips : pandas.DataFrame
        That round's :data:`~alfaviz.schema.FLIPS` frame (its flip targets).
    queried : pandas.DataFrame
        That round's batch (:data:`~alfaviz.schema.QUERIED`).
    labels : numpy.ndarray of int, shape (n_train,)
        The live label of every train sample (``-1``: none; a skipped sample has none).

    Returns
    -------
    dict of str to int
        A count per key of :data:`TALLY`, each the number of the batch's samples whose label
        has that :func:`~alfaviz.analysis.hypothesis.outcome_of`; they sum to the batch size.
    """
    ids = queried[schema.SAMPLE_ID].to_numpy(np.int64)
    out = dict.fromkeys(TALLY, 0)
    if ids.size == 0:
        return out
    pseudo = dict(
        zip(
            samples[schema.SAMPLE_ID].to_numpy(np.int64).tolist(),
            samples[schema.PSEUDO_LABEL].to_numpy(np.int64).tolist(),
            strict=True,
        )
    )
    targets = flip_targets(flips, ids.tolist())
    live = np.asarray(labels)
    for sid in ids.tolist():
        label = int(live[sid]) if 0 <= sid < live.size else -1
        out[outcome_of(label, pseudo.get(sid, -1), targets[sid])] += 1
    return out


class LabelPanel(View):
    """Label the waiting batch one sample at a time.

    Parameters
    ----------
    state : AppState
        Observed: ``data_version``. The panel writes nothing to it.
    data : RunData
        Labels go through its :meth:`~RunData.submit_label`, :meth:`~RunData.skip` and
        :meth:`~RunData.undo`.
    errors : ErrorArea, optional
    teaching : bool
        Start with the teaching toggle on.

    Attributes
    ----------
    queue : list of int
        The batch's ids still to label, in pick order; ``queue[0]`` is on screen.
    current : int or None
        The sample on screen.
    highlighted : int or None
        The class Enter would give.
    last_outcome : str or None
        With teaching on, :func:`teaching_outcome` of the last label.
    tally : dict of str to int
        :func:`batch_tally` of the last round's batch, read from the run's frames and live
        labels on every redraw (so a reloaded page or a second tab shows the same), shown in
        :attr:`tally_text` (CSS class ``alfaviz-labels-tally``).
    message : str
        The last status line (plain text).
    """

    name: ClassVar[str] = "label-panel"
    css_class: ClassVar[str] = "alfaviz-label-panel"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        teaching: bool = False,
    ) -> None:
        self.queue: list[int] = []
        self.highlighted: int | None = None
        self.last_outcome: Outcome | None = None
        self.tally: dict[str, int] = dict.fromkeys(TALLY, 0)
        self.message = ""
        self._teaching_default = bool(teaching)
        self.thumbs = thumbnails(data)
        super().__init__(state, data, errors=errors)

    # building ------------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        names = self.data.class_names
        self.title = widgets.HTML("<b>Label the batch</b>")
        self.progress_text = widgets.HTML()
        self.progress = widgets.IntProgress(value=0, min=0, max=1)
        self.image = widgets.Image(format="png", width=128, height=128)
        self.features = widgets.HTML()
        self.info = widgets.HTML()
        self.buttons: list[widgets.Button] = []
        self.class_keys = class_keys(names)
        for i, n in enumerate(names):
            k = self.class_keys[i] if i < len(self.class_keys) else None
            key = "" if k is None or k == str(n) else f"{k} · "  # digits: the key is the name
            b = widgets.Button(description=f"{key}{n}", tooltip=f"label as {n}")
            b.add_class("alfaviz-class-button")
            b.on_click(self._guard(lambda _b, i=i: self.on_class(i)))
            self.buttons.append(b)
        self.skip_button = widgets.Button(description="skip (s)", icon="forward")
        self.undo_button = widgets.Button(description="undo (u)", icon="undo")
        self.confirm_button = widgets.Button(description="confirm (Enter)", icon="check")
        self.skip_button.on_click(self._guard(lambda _b: self.on_skip()))
        self.undo_button.on_click(self._guard(lambda _b: self.on_undo()))
        self.confirm_button.on_click(self._guard(lambda _b: self.on_confirm()))
        self.teaching = widgets.ToggleButton(
            value=self._teaching_default,
            description="teaching",
            tooltip="pre-fill the oracle's label and compare each label with the flip targets",
        )
        self.teaching.observe(self._guard(lambda _c: self._show()), names="value")
        for w in (self.confirm_button, self.skip_button, self.undo_button, self.teaching):
            w.layout.width = "auto"  # their whole text ("confirm (Enter)"), never cut short
        self.feedback = widgets.HTML()
        self.tally_text = widgets.HTML()
        self.tally_text.add_class("alfaviz-labels-tally")
        self.status = widgets.HTML()
        self.notice = widgets.HTML()
        body = widgets.VBox(
            [
                widgets.HBox([self.title, self.progress_text, self.progress]),
                self.notice,
                widgets.HBox([self.image, self.features, self.info]),
                widgets.HBox(self.buttons, layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox(
                    [self.confirm_button, self.skip_button, self.undo_button, self.teaching],
                    layout=widgets.Layout(flex_flow="row wrap"),
                ),
                self.feedback,
                self.tally_text,
                self.status,
            ]
        )
        from ipyevents import Event

        self.keys = Event(source=body, watched_events=["keydown"])
        self.keys.on_dom_event(self._guard(self.on_key))
        self._observe(lambda _c: self.refresh(), names=["data_version"])
        self._body = body
        self.refresh()
        return body

    # the queue, read from the run --------------------------------------------------------
    @property
    def current(self) -> int | None:
        """The sample on screen (the first pending one), or None when the batch is done."""
        return self.queue[0] if self.queue else None

    @property
    def batch_size(self) -> int:
        """Size of the last round's batch (B)."""
        n = self.data.n_rounds
        return 0 if n == 0 else len(self.data.queried(n - 1))

    @property
    def n_done(self) -> int:
        """Samples of the batch labelled or skipped."""
        return self.batch_size - len(self.queue)

    def refresh(self) -> None:
        """Rebuild the queue from ``data.pending`` and redraw."""
        self.queue = [int(i) for i in self.data.pending]
        self.highlighted = None
        self._show()

    def _facts(self, sid: int) -> tuple[int, int, tuple[int, ...], float]:
        """(pseudo-label, true label, flip targets, critical ε) of ``sid`` at the last round."""
        r = self.data.n_rounds - 1
        s = self.data.samples(r)
        row = s[s[schema.SAMPLE_ID] == sid]
        if row.empty:
            return -1, -1, (), math.inf
        targets = flip_targets(self.data.flips(r), [sid])[sid]
        return (
            int(row[schema.PSEUDO_LABEL].iloc[0]),
            int(row[schema.TRUE_LABEL].iloc[0]),
            targets,
            float(row[schema.CRITICAL_EPS].iloc[0]),
        )

    def _name(self, c: int) -> str:
        names = self.data.class_names
        return names[c] if 0 <= c < len(names) else "?"

    def _show_tally(self) -> None:
        n = self.data.n_rounds
        if n == 0:
            self.tally = dict.fromkeys(TALLY, 0)
            self.tally_text.value = ""
            return
        r = n - 1
        self.tally = batch_tally(
            self.data.samples(r), self.data.flips(r), self.data.queried(r), self.data.labels()
        )
        done = sum(self.tally[o] for o in schema.OUTCOMES)
        chips = " · ".join(
            f'<span data-outcome="{o}" data-count="{self.tally[o]}" style="color:'
            f'{OUTCOME_COLOURS[o]};font-weight:bold">{self.tally[o]} {_TALLY_LABELS[o]}</span>'
            for o in schema.OUTCOMES
        )
        self.tally_text.value = (
            f'<div style="font-size:12px" title="How each label of the batch relates to the '
            f"model's pseudo-label and to the classes mixing flips it to (ALFA-Mix's "
            f'hypothesis: a flip target points at what the model does not know yet)">'
            f"Round {r}'s batch: {done} of {sum(self.tally.values())} labelled · {chips}</div>"
        )

    def _show(self) -> None:
        self._show_tally()
        ro = self.data.read_only
        sid = self.current
        b = self.batch_size
        self.progress.max = max(b, 1)
        self.progress.value = self.n_done
        self.progress_text.value = f"&nbsp;{self.n_done} of {b}&nbsp;"
        for w in (*self.buttons, self.skip_button, self.confirm_button):
            w.disabled = ro or sid is None
        self.undo_button.disabled = ro
        self.teaching.disabled = ro
        self.notice.value = (
            f'<div class="alfaviz-read-only" style="color:#8a6d3b">{html.escape(_READ_ONLY)}</div>'
            if ro
            else ""
        )
        if sid is None:
            self.image.layout.display = "none"
            self.features.value = ""
            self.info.value = (
                "No round written yet: run one first."
                if self.data.n_rounds == 0
                else f"All {b} samples of the batch are labelled or skipped: run the next round."
            )
            self._paint()
            return
        pseudo, truth, targets, eps = self._facts(sid)
        if self.teaching.value and self.highlighted is None and truth >= 0:
            self.highlighted = truth
        if self.data.is_image:
            self.image.value = self.thumbs.get([sid])[0]
            self.image.layout.display = None
            self.features.value = ""
        else:
            self.image.layout.display = "none"
            self.features.value = self._feature_view(sid)
        flips = ", ".join(html.escape(self._name(c)) for c in targets) or "none"
        eps_text = f"{eps:.3g}" if math.isfinite(eps) else "∞ (never flips)"
        teach = (
            f"<br>oracle: <b>{html.escape(self._name(truth))}</b>"
            if self.teaching.value and truth >= 0
            else ""
        )
        self.info.value = (
            f'<div style="font-size:13px;line-height:1.5">sample <b>#{sid}</b><br>'
            f"model says <b>{html.escape(self._name(pseudo))}</b><br>"
            f"flips to {flips}<br>critical ε {eps_text}{teach}</div>"
        )
        self._paint()

    def _feature_view(self, sid: int) -> str:
        x = features(self.data, [sid])
        if x is None:
            return ""
        row = x[0]
        meta = getattr(self.data.experiment.data, "meta", {}) or {}
        fnames = list(meta.get("feature_names") or [f"f{i}" for i in range(len(row))])
        top = np.argsort(-np.abs(row))[:5]
        items = "".join(
            f"<tr><td>{html.escape(str(fnames[i]))}</td><td>{row[i]:+.2f}</td></tr>" for i in top
        )
        return (
            feature_bar_svg(row, width=200, height=60)
            + f'<table style="font-size:11px">{items}</table>'
        )

    def _paint(self) -> None:
        for i, b in enumerate(self.buttons):
            b.button_style = "info" if i == self.highlighted else ""

    def _say(self, text: str) -> None:
        self.message = text
        self.status.value = f'<span class="alfaviz-status">{html.escape(text)}</span>'

    def _refuse(self) -> bool:
        if self.data.read_only:
            self._say(_READ_ONLY)
            return True
        return False

    # handlers ------------------------------------------------------------------------------
    def on_class(self, label: int | str) -> int | None:
        """Label the sample on screen with ``label`` (a class id or name).

        Returns
        -------
        int or None
            The id of the label-log row, or None when nothing was labelled (read-only run,
            batch done).
        """
        if self._refuse():
            return None
        sid = self.current
        if sid is None:
            self._say("The batch is done: nothing to label.")
            return None
        if isinstance(label, str):
            label = self.data.class_names.index(label)
        label = int(label)
        teaching = self.teaching.value
        pseudo, truth, targets, _ = self._facts(sid) if teaching else (-1, -1, (), 0.0)
        action = self.data.submit_label(sid, label)
        if teaching:
            self.last_outcome = teaching_outcome(label, pseudo, targets)
            self.feedback.value = self._outcome_text(label, pseudo, truth, targets)
        self._say(f"#{sid} labelled {self._name(label)}.")
        self.refresh()
        return action

    def _outcome_text(self, label: int, pseudo: int, truth: int, targets: tuple[int, ...]) -> str:
        n = self._name
        what = {
            "pseudo_label": f"the model's pseudo-label ({n(pseudo)}): the mix did not change "
            "your mind",
            "flip_target": f"a flip target: mixing toward {n(label)}'s anchor flips the model "
            "to it, which is why ALFA-Mix asked",
            "neither": "neither the pseudo-label nor a flip target",
        }[teaching_outcome(label, pseudo, targets)]
        oracle = "" if truth < 0 else (" · agrees with the oracle" if truth == label else
                                       f" · the oracle says {n(truth)}")  # fmt: skip
        return (
            f'<div class="alfaviz-teaching">You chose <b>{html.escape(n(label))}</b>: '
            f"{html.escape(what)}{html.escape(oracle)}.</div>"
        )

    def on_skip(self) -> int | None:
        """Skip the sample on screen (it stays unlabelled); returns the label-log row."""
        if self._refuse():
            return None
        sid = self.current
        if sid is None:
            self._say("The batch is done: nothing to skip.")
            return None
        action = self.data.skip(sid)
        self._say(f"#{sid} skipped.")
        self.refresh()
        return action

    def on_undo(self) -> dict[str, Any] | None:
        """Undo this session's last label or skip; returns the undone action, or None."""
        if self._refuse():
            return None
        row = self.data.undo()
        if row is None:
            self._say("Nothing of this session to undo.")
        else:
            self._say(f"Undid the {row.get(schema.ACTION, 'action')} of #{row[schema.SAMPLE_ID]}.")
        self.refresh()
        return row

    def on_confirm(self) -> int | None:
        """Label the sample on screen with the highlighted class (Enter)."""
        if self._refuse():
            return None
        if self.highlighted is None:
            self._say("No class highlighted: press a number key or click a class.")
            return None
        return self.on_class(self.highlighted)

    def on_key(self, event: dict[str, Any]) -> Any:
        """Handle one ipyevents ``keydown`` event dict (only its ``key`` is read)."""
        if event.get("ctrlKey") or event.get("altKey") or event.get("metaKey"):
            return None
        key = str(event.get("key", ""))
        if key in self.class_keys:
            return self.on_class(self.class_keys.index(key))
        if key in KEYS:  # a digit with no class
            return None
        if key == "Enter":
            return self.on_confirm()
        if key in ("s", "S"):
            return self.on_skip()
        if key in ("u", "U"):
            return self.on_undo()
        if key in ("ArrowRight", "ArrowLeft") and self.data.n_classes:
            step = 1 if key == "ArrowRight" else -1
            start = self.highlighted if self.highlighted is not None else (-1 if step > 0 else 0)
            self.highlighted = (start + step) % self.data.n_classes
            self._paint()
        return None
