"""The batch gallery: one card per queried (or selected) sample, with why ALFA-Mix picked it.

Each card shows the sample (a thumbnail for image data, a compact feature bar for tabular
data), its pseudo-label, the classes it flips to at the round, its critical ε and whether
k-means or the random fill picked it. Beside the card sit a few labelled examples of the
class it flips to first, so a person can compare.

Thumbnails are decoded once per sample id and kept as PNG bytes in a cache shared by every
view of the same :class:`RunData` (:func:`thumbnails`); the label panel uses it too. Tabular
samples are drawn as a tiny inline SVG in an ``ipywidgets.HTML`` (no FigureWidget).

What the gallery shows
----------------------
``source="auto"`` (the default) shows the selection when it holds a sample outside the batch
(a lasso on the map, a heatmap row) and the batch of ``state.round`` otherwise; clicking a
card selects it (and sets ``focus_id``, so the "why?" card explains it), and a selected card
of the batch is outlined rather than shown alone.
``"batch"`` and ``"selection"`` pin one of the two.
"""

from __future__ import annotations

import html
import io
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
import numpy as np
import pandas as pd

from alfaviz import schema
from alfaviz.widgets._base import View

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = [
    "Card",
    "Gallery",
    "Thumbnails",
    "card_records",
    "feature_bar_svg",
    "features",
    "flip_targets",
    "labelled_examples",
    "picker_text",
    "png_bytes",
    "thumbnails",
]

MAX_CARDS = 24
"""Cards drawn at most; the gallery says how many it left out."""

N_EXAMPLES = 3
"""Labelled examples shown beside each card."""

_THUMB_PX = 96
_SMALL_PX = 40
_MAX_PICS = 512
_SELECTED_BORDER = "2px solid #1f77b4"
_PLAIN_BORDER = "1px solid #ddd"


# ------------------------------------------------------------------------------------------
# thumbnails and feature bars


def png_bytes(image: np.ndarray, *, size: int = _THUMB_PX) -> bytes:
    """Encode one uint8 image as PNG, enlarged (nearest neighbour) to about ``size`` pixels.

    Parameters
    ----------
    image : numpy.ndarray of uint8, shape (H, W) or (H, W, 3)
    size : int
        Target length of the longer side; small images (8×8 digits) are scaled up by an
        integer factor, large ones are left as they are.

    Returns
    -------
    bytes
        The PNG file.
    """
    from PIL import Image

    arr = np.ascontiguousarray(image, dtype=np.uint8)
    img = Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
    factor = max(1, size // max(arr.shape[0], arr.shape[1]))
    if factor > 1:
        img = img.resize((arr.shape[1] * factor, arr.shape[0] * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Thumbnails:
    """PNG thumbnails of a run's images, decoded once per sample id and cached.

    Parameters
    ----------
    data : RunData

    Attributes
    ----------
    n_decoded : int
        Images decoded so far (each id at most once).
    """

    def __init__(self, data: RunData) -> None:
        self._data = data
        self._png: dict[int, bytes] = {}
        self.n_decoded = 0

    def get(self, sample_ids: Sequence[int]) -> list[bytes]:
        """PNG bytes of ``sample_ids``, in order (empty bytes for tabular data)."""
        ids = [int(i) for i in sample_ids]
        missing = [i for i in dict.fromkeys(ids) if i not in self._png]
        if missing:
            pixels = self._data.images(np.asarray(missing, dtype=np.int64))
            if pixels is None:
                return [b"" for _ in ids]
            for sid, img in zip(missing, pixels, strict=True):
                self._png[sid] = png_bytes(img)
            self.n_decoded += len(missing)
        return [self._png[i] for i in ids]

    def __len__(self) -> int:
        return len(self._png)


_THUMBS: weakref.WeakKeyDictionary[Any, Thumbnails] = weakref.WeakKeyDictionary()
_FEATURES: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def thumbnails(data: RunData) -> Thumbnails:
    """The thumbnail cache shared by every view of ``data``."""
    cache = _THUMBS.get(data)
    if cache is None:
        cache = _THUMBS[data] = Thumbnails(data)
    return cache


def features(data: RunData, sample_ids: Sequence[int]) -> np.ndarray | None:
    """Features of tabular ``sample_ids`` as float32, shape (n, n_features); None for images.

    Uses ``RunData.features`` when the foundation provides it; otherwise the train pool is
    copied into NumPy once per run (the only place the views touch the data source's
    tensors) and served from that copy.
    """
    if data.is_image:
        return None
    ids = np.asarray(sample_ids, dtype=np.int64)
    own = getattr(data, "features", None)
    if callable(own):
        out = own(ids)
        return None if out is None else np.asarray(out, dtype=np.float32)
    table = _FEATURES.get(data)
    if table is None:
        x = data.experiment.data.x_train
        table = _FEATURES[data] = np.asarray(x.detach().cpu().numpy(), dtype=np.float32)
    return table[ids].reshape(len(ids), -1)


def feature_bar_svg(
    values: np.ndarray, *, width: int = 160, height: int = 40, clip: float = 3.0
) -> str:
    """A compact diverging bar chart of one sample's (standardised) features, as inline SVG.

    Parameters
    ----------
    values : numpy.ndarray, shape (n_features,)
        Feature values; bars are drawn up (positive) or down (negative) from the middle and
        clipped to ``±clip``.
    width, height : int
        Size in pixels.
    clip : float

    Returns
    -------
    str
        An ``<svg>`` element with one ``<rect>`` per feature (at most 64 features drawn).
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).ravel()[:64], nan=0.0)
    n = max(len(v), 1)
    bw = width / n
    mid = height / 2
    rects = []
    for i, val in enumerate(np.clip(v, -clip, clip)):
        h = abs(val) / clip * mid
        y = mid - h if val >= 0 else mid
        colour = "#1f77b4" if val >= 0 else "#d62728"
        rects.append(
            f'<rect x="{i * bw:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{colour}"/>'
        )
    return (
        f'<svg class="alfaviz-feature-bar" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#aaa" stroke-width="0.5"/>'
        + "".join(rects)
        + "</svg>"
    )


# ------------------------------------------------------------------------------------------
# what a card says (pure functions over frames)


@dataclass(frozen=True)
class Card:
    """What one gallery card shows.

    Attributes
    ----------
    sample_id : int
    pseudo_label : int
        The model's class (-1: not scored).
    flips_to : tuple of int
        Classes the prediction flips to at the round, smallest critical ε first.
    critical_eps : float
        Smallest critical ε over the anchors (inf: never flips).
    picker : str
        ``"k-means (cluster k)"``, ``"fill"``, ``"score"``, ``"candidate"`` or ``""``.
    """

    sample_id: int
    pseudo_label: int
    flips_to: tuple[int, ...]
    critical_eps: float
    picker: str


def picker_text(selected: bool, fill: bool, cluster: int, candidate: bool = False) -> str:
    """Who picked a sample: ``"k-means (cluster k)"``, ``"fill"``, ``"score"`` (a strategy
    other than ALFA-Mix, which has no clusters), ``"candidate"`` or ``""``."""
    if selected:
        if fill:
            return "fill"
        return f"k-means (cluster {int(cluster)})" if cluster >= 0 else "score"
    return "candidate" if candidate else ""


def flip_targets(flips: pd.DataFrame, sample_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Classes each sample flips to, smallest critical ε first.

    Parameters
    ----------
    flips : pandas.DataFrame
        A round's :data:`~alfaviz.schema.FLIPS` frame.
    sample_ids : sequence of int

    Returns
    -------
    dict
        ``{sample_id: (class, ...)}`` for every id (an empty tuple when it never flips).
    """
    ids = [int(i) for i in sample_ids]
    out: dict[int, tuple[int, ...]] = {i: () for i in ids}
    if not ids or flips.empty:
        return out
    f = flips[flips[schema.SAMPLE_ID].isin(ids) & flips[schema.FLIPPED]]
    f = f[f[schema.FLIP_TO] >= 0].sort_values([schema.SAMPLE_ID, schema.CRITICAL_EPS])
    for sid, group in f.groupby(schema.SAMPLE_ID, sort=False):
        out[int(sid)] = tuple(dict.fromkeys(int(c) for c in group[schema.FLIP_TO]))
    return out


def card_records(
    samples: pd.DataFrame, flips: pd.DataFrame, sample_ids: Sequence[int]
) -> list[Card]:
    """One :class:`Card` per id of ``sample_ids`` found in ``samples`` (others are left out).

    Parameters
    ----------
    samples : pandas.DataFrame
        A round's :data:`~alfaviz.schema.SAMPLES` frame.
    flips : pandas.DataFrame
        The same round's :data:`~alfaviz.schema.FLIPS` frame.
    sample_ids : sequence of int
        In the order the cards are drawn.
    """
    ids = [int(i) for i in sample_ids]
    rows = samples[samples[schema.SAMPLE_ID].isin(ids)].set_index(schema.SAMPLE_ID)
    targets = flip_targets(flips, ids)
    cards = []
    for sid in ids:
        if sid not in rows.index:
            continue
        row = rows.loc[sid]
        cards.append(
            Card(
                sample_id=sid,
                pseudo_label=int(row[schema.PSEUDO_LABEL]),
                flips_to=targets.get(sid, ()),
                critical_eps=float(row[schema.CRITICAL_EPS]),
                picker=picker_text(
                    bool(row[schema.SELECTED]),
                    bool(row[schema.FILL]),
                    int(row[schema.CLUSTER]),
                    bool(row[schema.CANDIDATE]),
                ),
            )
        )
    return cards


def labelled_examples(
    samples: pd.DataFrame, cls: int, *, round: int, n: int = N_EXAMPLES
) -> list[int]:
    """Ids of up to ``n`` samples labelled ``cls`` by ``round`` (lowest ids first)."""
    lr = samples[schema.LABELLED_ROUND]
    mask = (lr >= 0) & (lr <= round) & (samples[schema.LABEL] == cls)
    return [int(i) for i in samples.loc[mask, schema.SAMPLE_ID].head(n)]


def _eps_text(eps: float) -> str:
    return "never flips" if not math.isfinite(eps) else f"critical ε {eps:.3g}"


# ------------------------------------------------------------------------------------------
# the view


class Gallery(View):
    """Cards for the batch of ``state.round``, or for the selection.

    Parameters
    ----------
    state : AppState
        Observed: ``round``, ``selected_ids``, ``data_version``. Written: ``selected_ids``
        and ``focus_id`` (a click on a card selects it and explains it).
    data : RunData
    errors : ErrorArea, optional
    source : {"auto", "batch", "selection"}
        What the cards show (see the module notes).
    max_cards : int
        Cards drawn at most (the rest are counted in the header).

    Attributes
    ----------
    cards : list of Card
        What the drawn cards show, in order.
    thumbs : Thumbnails
        The shared PNG cache.
    """

    name: ClassVar[str] = "gallery"
    css_class: ClassVar[str] = "alfaviz-gallery"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        source: str = "auto",
        max_cards: int = MAX_CARDS,
    ) -> None:
        if source not in ("auto", "batch", "selection"):
            raise ValueError(f"source must be 'auto', 'batch' or 'selection'; got {source!r}.")
        self._source = source
        self.max_cards = int(max_cards)
        self.cards: list[Card] = []
        self._drawn: tuple[str, list[int]] | None = None
        self._boxes: dict[int, widgets.Box] = {}
        self._events: dict[int, Any] = {}
        self._pics: dict[tuple[int, bool], widgets.Widget] = {}
        # a drawn card per (round, sample), reused while the run's data stay the same
        self._made: dict[tuple[int, int], tuple[Card, tuple[int, ...], widgets.Box]] = {}
        self._made_version = -1
        self.thumbs = thumbnails(data)
        super().__init__(state, data, errors=errors)

    # building ------------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        self.header = widgets.HTML()
        self.source = widgets.ToggleButtons(
            options=[("auto", "auto"), ("batch", "batch"), ("selection", "selection")],
            value=self._source,
            style={"button_width": "80px"},
        )
        self.source.observe(self._guard(lambda _: self.render()), names="value")
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))", grid_gap="6px"
            )
        )
        self._observe(lambda _: self.render(), names=["round", "data_version"])
        self._observe(self._on_selection, names=["selected_ids"])
        self.render()
        return widgets.VBox([widgets.HBox([self.header, self.source]), self.grid])

    def _round(self) -> int | None:
        n = self.data.n_rounds
        return None if n == 0 else min(int(self.state.round), n - 1)

    def _batch(self, r: int) -> list[int]:
        q = self.data.queried(r).sort_values(schema.ORDER)
        return [int(i) for i in q[schema.SAMPLE_ID]]

    def _wanted(self, r: int) -> tuple[str, list[int]]:
        sel = [int(i) for i in self.state.selected_ids]
        mode = self.source.value
        if mode == "batch":
            return "batch", self._batch(r)
        if mode == "selection":
            return "selection", sel
        batch = self._batch(r)
        if sel and not set(sel) <= set(batch):
            return "selection", sel
        return "batch", batch

    @property
    def shown_ids(self) -> list[int]:
        """Ids of the drawn cards, in order."""
        return [c.sample_id for c in self.cards]

    def render(self) -> None:
        """Redraw the cards from the frames of the current round.

        A card already drawn for the same round and sample is reused as long as the run's
        data have not changed (``data_version``) and it would show the same thing, so going
        back and forth between the batch and a selection creates no widgets.
        """
        self._boxes = {}
        stale = self.state.data_version != self._made_version
        if stale or len(self._made) > _MAX_PICS:
            self._forget_cards()
            self._made_version = self.state.data_version
        if len(self._pics) > _MAX_PICS:  # the grid is replaced below: start afresh
            self.grid.children = ()
            self._forget_cards()
            for pic in self._pics.values():
                pic.close()
            self._pics = {}
        r = self._round()
        if r is None:
            self.cards = []
            self._drawn = None
            self.header.value = "<b>Gallery</b>: no round has been written yet."
            self.grid.children = ()
            return
        what, ids = self._drawn = self._wanted(r)
        samples = self.data.samples(r)
        self.cards = card_records(samples, self.data.flips(r), ids[: self.max_cards])
        total = len(ids)
        capped = ""
        if total > self.max_cards:
            capped = f" (showing the first {self.max_cards}; the cap is {self.max_cards})"
        label = "the batch of round" if what == "batch" else "the selection, round"
        noun = "sample" if total == 1 else "samples"
        self.header.value = f"<b>Gallery</b>: {total} {noun} from {label} {r}{capped}"
        thumbs = self._pictures([c.sample_id for c in self.cards])
        examples: dict[int, list[int]] = {}
        for c in self.cards:
            if c.flips_to and c.flips_to[0] not in examples:
                examples[c.flips_to[0]] = labelled_examples(samples, c.flips_to[0], round=r)
        ex_ids = sorted({i for ids_ in examples.values() for i in ids_})
        ex_pics = dict(zip(ex_ids, self._pictures(ex_ids, small=True), strict=True))
        boxes = []
        for card, pic in zip(self.cards, thumbs, strict=True):
            target = card.flips_to[0] if card.flips_to else None
            ex_ids_ = tuple(examples.get(target, [])) if target is not None else ()
            hit = self._made.get((r, card.sample_id))
            if hit is not None and hit[0] == card and hit[1] == ex_ids_:
                box = hit[2]
            else:
                if hit is not None:
                    self._drop_card(r, card.sample_id)
                box = self._card(card, pic, target, [ex_pics[i] for i in ex_ids_])
                self._made[(r, card.sample_id)] = (card, ex_ids_, box)
            self._boxes[card.sample_id] = box
            boxes.append(box)
        self.grid.children = tuple(boxes)
        self._outline()

    def _pictures(self, ids: list[int], *, small: bool = False) -> list[widgets.Widget]:
        """One picture widget per id, reused across redraws (its PNG is sent once)."""
        missing = [i for i in dict.fromkeys(ids) if (i, small) not in self._pics]
        if missing:
            px = _SMALL_PX if small else _THUMB_PX
            made: list[widgets.Widget]
            if self.data.is_image:
                made = [
                    widgets.Image(value=png, format="png", width=px, height=px)
                    for png in self.thumbs.get(missing)
                ]
            else:
                feats = features(self.data, missing)
                assert feats is not None
                w, h = (48, 24) if small else (140, 48)
                made = [widgets.HTML(feature_bar_svg(row, width=w, height=h)) for row in feats]
            for i, pic in zip(missing, made, strict=True):
                self._pics[(i, small)] = pic
        return [self._pics[(i, small)] for i in ids]

    def _card(
        self, card: Card, pic: widgets.Widget, target: int | None, examples: list[widgets.Widget]
    ) -> widgets.Box:
        names = self.data.class_names

        def name(c: int) -> str:
            return html.escape(names[c]) if 0 <= c < len(names) else "?"

        flips = ", ".join(name(c) for c in card.flips_to) or "none"
        info = widgets.HTML(
            f'<div class="alfaviz-card-info" data-sample="{card.sample_id}" '
            'style="font-size:12px;line-height:1.35">'
            f"<b>#{card.sample_id}</b><br>pseudo-label <b>{name(card.pseudo_label)}</b><br>"
            f"flips to {flips}<br>{_eps_text(card.critical_eps)}<br>"
            f"<i>{html.escape(card.picker or 'not picked')}</i></div>"
        )
        main = widgets.VBox([pic, info], layout=widgets.Layout(width="150px"))
        if target is not None:
            cap = f"labelled {name(target)}" if examples else f"no labelled {name(target)} yet"
            side = widgets.VBox(
                [widgets.HTML(f'<span style="font-size:11px">{cap}</span>'), *examples]
            )
        else:
            side = widgets.VBox([widgets.HTML('<span style="font-size:11px">no flip</span>')])
        box = widgets.HBox([main, side], layout=widgets.Layout(border=_PLAIN_BORDER, padding="4px"))
        box.add_class("alfaviz-card")
        self._listen(box, card.sample_id)
        return box

    def _listen(self, box: widgets.Box, sid: int) -> None:
        from ipyevents import Event

        ev = Event(source=box, watched_events=["click"])
        ev.on_dom_event(self._guard(lambda _event, sid=sid: self.select(sid)))
        self._events[id(box)] = ev

    def _drop_card(self, r: int, sid: int) -> None:
        _, _, box = self._made.pop((r, sid))
        ev = self._events.pop(id(box), None)
        if ev is not None:
            ev.close()

    def _forget_cards(self) -> None:
        """Forget the drawn cards (those still in the grid stay until it is replaced)."""
        for ev in self._events.values():
            ev.close()
        self._events = {}
        self._made = {}

    # interaction ---------------------------------------------------------------------------
    def select(self, sample_id: int) -> None:
        """What a click on a card does: select that sample alone, and explain it
        (``focus_id``, the "why was this selected?" card)."""
        self.state.selected_ids = (int(sample_id),)
        self.state.focus_id = int(sample_id)

    def _on_selection(self, _change: dict[str, Any]) -> None:
        r = self._round()
        if r is None:
            return
        if self._wanted(r) != self._drawn:
            self.render()
        else:
            self._outline()

    def _outline(self) -> None:
        sel = set(self.state.selected_ids)
        for sid, box in self._boxes.items():
            on = sid in sel
            box.layout.border = _SELECTED_BORDER if on else _PLAIN_BORDER
            if on:
                box.add_class("alfaviz-card-selected")
            else:
                box.remove_class("alfaviz-card-selected")
