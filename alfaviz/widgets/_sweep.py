"""The ε slider: the candidate set of any ε step, replayed from a round's recorded critical ε.

With the closed-form α a (sample, anchor) pair flips at every level at or above its critical
ε, whatever the schedule (:mod:`alfaviz.analysis.sweep`). So the slider needs no model and no
recomputation: per round it takes the pool's ``critical_eps`` column once
(:func:`sweep_inputs`, cached while the round's samples frame stays the same) and calls
:func:`~alfaviz.analysis.sweep.candidate_sweep` on every move (O(N log L)).

:class:`EpsilonSweep` is the view: a slider over the schedule step ``alpha_cap``, with the
candidate count, the stopping level, the candidates after each level and whether the replay
is exact, beside the round's recorded value. Moving it writes the user's intent,
``AppState.sweep_cap``; the embedding map observes that trait and colours the sweep's
candidates. Runs that record no schedule-free critical ε (another strategy, learned α) get a
disabled slider and the one-line reason.
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
import numpy as np

from alfaviz import schema
from alfaviz.analysis.sweep import Sweep, candidate_sweep
from alfaviz.errors import AlfavizInputError
from alfaviz.widgets._base import View

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = [
    "SWEEP_STEPS",
    "EpsilonSweep",
    "SweepInputs",
    "levels_svg",
    "recorded_alpha_cap",
    "sweep_inputs",
    "sweep_refusal",
    "sweep_steps",
]

SWEEP_STEPS: tuple[float, ...] = (
    0.02, 0.025, 0.04, 0.05, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0,
)  # fmt: skip
"""The slider's ε steps (the run's recorded one is added when it is not among them). Steps
that divide 1 end the schedule at 1.0; the others (0.15, 0.3, 0.4, 0.6, 0.75) stop above it
and may be inexact (:attr:`~alfaviz.analysis.sweep.Sweep.exact`)."""

_MEMO = 64
_BAR = "#ff7f0e"
_STOP = "#d62728"
_GHOST = "#d9d9d9"


def _strategy(data: Any) -> Any:
    exp = getattr(data, "experiment", None)
    return getattr(exp, "strategy", None)


def recorded_alpha_cap(data: Any) -> float | None:
    """The ε step the run's ALFA-Mix queries used (its default when unset), or None."""
    strategy = _strategy(data)
    if strategy is None or not hasattr(strategy, "alpha"):
        return None
    from alfaviz.analysis.sweep import sweep_params

    return sweep_params(_RunLike(strategy))[1]


class _RunLike:
    """What :mod:`alfaviz.analysis.sweep` reads of a run to check it, and nothing else: its
    strategy (its ``samples`` are never needed for the check)."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    @property
    def samples(self) -> Any:  # pragma: no cover - only reached by a replayable run
        raise LookupError("not read")


def sweep_refusal(data: Any) -> str | None:
    """Why the run's rounds cannot be replayed at another ε step, or None when they can.

    The reasons are :func:`~alfaviz.analysis.sweep.round_sweep`'s: a strategy other than
    ALFA-Mix records no critical ε, and learned α knows it only at the recorded levels.
    """
    from alfaviz.analysis.sweep import round_sweep, sweep_params

    strategy = _strategy(data)
    if strategy is None:
        return "this run has no query strategy to replay."
    run = _RunLike(strategy)
    try:
        mode, _cap = sweep_params(run)
    except AlfavizInputError as exc:
        return str(exc)
    if mode == "closed_form":
        return None
    try:
        round_sweep(run, 0, 0.1)
    except AlfavizInputError as exc:
        return str(exc)
    except LookupError:
        pass
    return f"this run's α mode is {mode!r}; only the closed form can be replayed."


@dataclass(frozen=True)
class SweepInputs:
    """What a round's sweeps need, taken once from its samples frame.

    Attributes
    ----------
    round : int
    rows : numpy.ndarray of int64, shape (n_pool,)
        Positions in the round's samples frame of its pool (not labelled at the round:
        ``labelled_round`` outside ``0..round``), by increasing sample id.
    sample_ids : numpy.ndarray of int64, shape (n_pool,)
    critical_eps : numpy.ndarray of float64, shape (n_pool,)
        Smallest critical ε over the anchors (inf: nothing flips it).
    recorded : numpy.ndarray of bool, shape (n_pool,)
        The round's own candidate flags.
    labelled : numpy.ndarray of bool, shape (n_rows,)
        Labelled at the round, for every row of the frame.
    budget : int
    alpha_cap : float
        The recorded schedule step.
    max_eps : float
        The recorded schedule's last level (critical ε above it are not known).
    """

    round: int
    rows: np.ndarray
    sample_ids: np.ndarray
    critical_eps: np.ndarray
    recorded: np.ndarray
    labelled: np.ndarray
    budget: int
    alpha_cap: float
    max_eps: float
    _memo: dict[float, Sweep] = field(default_factory=dict, compare=False, repr=False)

    def sweep(self, alpha_cap: float) -> Sweep:
        """:func:`~alfaviz.analysis.sweep.candidate_sweep` of the pool at ``alpha_cap``.

        Kept per step (the slider and the map ask for the same one on every move).
        """
        cap = float(alpha_cap)
        hit = self._memo.get(cap)
        if hit is None:
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            hit = self._memo[cap] = candidate_sweep(
                self.critical_eps,
                self.budget,
                cap,
                sample_ids=self.sample_ids,
                max_eps=self.max_eps,
            )
        return hit


_INPUTS: weakref.WeakKeyDictionary[Any, dict[int, tuple[Any, SweepInputs]]] = (
    weakref.WeakKeyDictionary()
)


def sweep_inputs(data: RunData, round: int) -> SweepInputs:
    """The :class:`SweepInputs` of ``round``, shared by every view of ``data``.

    Kept while ``data.samples(round)`` returns the same frame (RunData caches it until the
    run changes), so a slider move reads nothing.

    Raises
    ------
    AlfavizInputError
        When the run cannot be replayed (:func:`sweep_refusal`).
    """
    from alfaviz.alfamix.mixing import level_schedule

    r = int(round)
    samples = data.samples(r)
    per = _INPUTS.setdefault(data, {})
    hit = per.get(r)
    if hit is not None and hit[0] is samples:
        return hit[1]
    why = sweep_refusal(data)
    if why is not None:
        raise AlfavizInputError(why)
    cap = recorded_alpha_cap(data)
    assert cap is not None
    lr = samples[schema.LABELLED_ROUND].to_numpy()
    labelled = (lr >= 0) & (lr <= r)
    rows = np.flatnonzero(~labelled).astype(np.int64)
    ids = samples[schema.SAMPLE_ID].to_numpy(np.int64)[rows]
    if ids.size and not np.all(ids[1:] >= ids[:-1]):
        order = np.argsort(ids, kind="stable")
        rows, ids = rows[order], ids[order]
    out = SweepInputs(
        round=r,
        rows=rows,
        sample_ids=ids,
        critical_eps=samples[schema.CRITICAL_EPS].to_numpy(np.float64)[rows],
        recorded=samples[schema.CANDIDATE].to_numpy(bool)[rows],
        labelled=labelled,
        budget=int(data.budget),
        alpha_cap=float(cap),
        max_eps=float(level_schedule(cap)[-1]),
    )
    per[r] = (samples, out)
    return out


def sweep_steps(recorded: float | None, steps: Sequence[float] = SWEEP_STEPS) -> list[float]:
    """The slider's steps: ``steps`` with ``recorded`` added, increasing, each once."""
    out = {round(float(s), 6) for s in steps}
    if recorded is not None:
        out.add(round(float(recorded), 6))
    return sorted(out)


def _step_text(cap: float) -> str:
    return f"{cap:.4g}"


def levels_svg(sweep: Sweep, *, width: int = 260, height: int = 40) -> str:
    """The candidates after each level of ``sweep`` as a tiny column chart (inline SVG).

    One column per level of the schedule (at most 14 px wide, all within ``width``):
    evaluated levels are filled (the stopping one in red), the levels the search never
    reached are grey ticks; a dashed line marks the budget. Each column carries a
    ``<title>`` ("ε 0.3: 12 candidates").
    """
    n = len(sweep.levels)
    counts = list(sweep.counts)
    top = max([*counts, sweep.budget, 1])
    bw = min(width / max(n, 1), 14.0)
    width = max(math.ceil(bw * n), 24)
    base = height - 2
    parts = []
    for i, eps in enumerate(sweep.levels):
        x = i * bw
        w = max(bw - 1.5, 1.0)
        if i < len(counts):
            h = max(base * counts[i] / top, 1.0)
            colour = _STOP if i == sweep.level_index else _BAR
            tip = f"ε {eps:.3g}: {counts[i]:,} candidates"
        else:
            h, colour, tip = 2.0, _GHOST, f"ε {eps:.3g}: not evaluated"
        parts.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{html.escape(tip)}</title></rect>'
        )
    yb = base - base * sweep.budget / top
    parts.append(
        f'<line x1="0" y1="{yb:.1f}" x2="{width}" y2="{yb:.1f}" stroke="#444" '
        'stroke-width="1" stroke-dasharray="3,2"><title>budget</title></line>'
    )
    return (
        f'<svg class="alfaviz-eps-bars" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )


def _counts_text(sweep: Sweep, most: int = 12) -> str:
    pairs = [f"{e:.3g}: {c:,}" for e, c in zip(sweep.levels, sweep.counts, strict=False)]
    if len(pairs) > most:
        pairs = [*pairs[:2], "…", *pairs[-(most - 3) :]]
    return " · ".join(pairs)


class EpsilonSweep(View):
    """A slider over the ε step of the shown round's candidate search, replayed live.

    The slider is an ``ipywidgets.SelectionSlider`` over :data:`SWEEP_STEPS` (with the run's
    recorded step added): the useful steps from 0.02 to 1.0, rather than a float slider whose
    every hundredth would be offered. Moving it shows, with no recomputation, the candidate
    count, the stopping level, the candidates after each level and whether the replay is
    exact, and writes ``state.sweep_cap`` so that the map colours the candidates; "show on
    map" off writes ``None``.

    Observes ``round``, ``sweep_cap`` and ``data_version``; writes ``sweep_cap``.

    Parameters
    ----------
    state : AppState
    data : RunData
    errors : ErrorArea, optional
    steps : sequence of float
        The slider's steps, in ``(0, 1]`` (default :data:`SWEEP_STEPS`).

    Attributes
    ----------
    slider : ipywidgets.SelectionSlider
        CSS class ``alfaviz-eps-slider``; disabled when the run cannot be replayed.
    show : ipywidgets.ToggleButton
        "show on map" (CSS class ``alfaviz-eps-show``).
    readout : ipywidgets.HTML
        The count, the stopping level and exactness (``alfaviz-eps-readout``), the levels
        (``alfaviz-eps-levels``) and the recorded value (``alfaviz-eps-recorded``).
    sweep : Sweep or None
        The sweep at the slider's step for the shown round.
    refusal : str or None
        Why the run cannot be replayed.
    recorded : float or None
        The run's own ε step.
    """

    name: ClassVar[str] = "eps"
    css_class: ClassVar[str] = "alfaviz-eps"

    def __init__(
        self,
        state: AppState,
        data: RunData,
        *,
        errors: ErrorArea | None = None,
        steps: Sequence[float] = SWEEP_STEPS,
    ) -> None:
        self._steps = tuple(float(s) for s in steps)
        if not self._steps or not all(0.0 < s <= 1.0 for s in self._steps):
            raise ValueError(f"steps must be numbers in (0, 1]; got {list(steps)!r}.")
        self.sweep: Sweep | None = None
        self.refusal: str | None = sweep_refusal(data)
        self.recorded: float | None = None if self.refusal else recorded_alpha_cap(data)
        self._syncing = False
        super().__init__(state, data, errors=errors)

    # building ------------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        options = sweep_steps(self.recorded, self._steps)
        start = self.state.sweep_cap if self.state.sweep_cap is not None else self.recorded
        if start is None:
            start = 0.2 if 0.2 in options else options[len(options) // 2]
        if round(float(start), 6) not in options:
            options = sweep_steps(start, options)
        self.slider = widgets.SelectionSlider(
            options=[(_step_text(o), o) for o in options],
            value=round(float(start), 6),
            description="ε step",
            continuous_update=True,
            disabled=self.refusal is not None,
            layout=widgets.Layout(width="360px"),
        )
        self.slider.add_class("alfaviz-eps-slider")
        self.show = widgets.ToggleButton(
            value=self.state.sweep_cap is not None and self.refusal is None,
            description="show on map",
            tooltip="Colour the candidates of this ε step on the embedding map",
            disabled=self.refusal is not None,
            layout=widgets.Layout(width="150px"),
        )
        self.show.add_class("alfaviz-eps-show")
        self._label_show()
        self.readout = widgets.HTML("")
        self.readout.add_class("alfaviz-eps-readout")
        self.slider.observe(self._guard(self._on_slider), names=["value"])
        self.show.observe(self._guard(self._on_show), names=["value"])
        self._observe(self._on_state, ["round", "data_version"])
        self._observe(self._on_cap, ["sweep_cap"])
        self.render()
        return widgets.VBox([widgets.HBox([self.slider, self.show]), self.readout])

    def _round(self) -> int | None:
        n = self.data.n_rounds
        return None if n == 0 else min(int(self.state.round), n - 1)

    # rendering -----------------------------------------------------------------------------
    def render(self) -> None:
        """Recompute the sweep at the slider's step for the shown round and show it."""
        r = self._round()
        if self.refusal is not None:
            self.sweep = None
            self.readout.value = (
                '<div class="alfaviz-eps-note" style="font-size:12px;color:#666">'
                f"ε slider unavailable: {html.escape(self.refusal)}</div>"
            )
            return
        if r is None:
            self.sweep = None
            self.readout.value = (
                '<div class="alfaviz-eps-note" style="font-size:12px;color:#666">'
                "ε slider: no round has been written yet.</div>"
            )
            return
        inputs = sweep_inputs(self.data, r)
        cap = float(self.slider.value)
        sw = self.sweep = inputs.sweep(cap)
        own = inputs.sweep(inputs.alpha_cap)
        n_levels = len(sw.levels)
        exact = (
            '<span class="alfaviz-eps-exact" style="color:#2ca02c">exact</span>'
            if sw.exact
            else '<span class="alfaviz-eps-inexact" style="color:#b00020">not exact: the '
            f"schedule stops at ε {sw.level:.3g}, above ε {inputs.max_eps:.3g}, the last level "
            "the round recorded (pairs that flip only above it are not known)</span>"
        )
        shown = "shown on the map" if self.state.sweep_cap is not None else "not shown on the map"
        lines = [
            f"<div><b>ε step {_step_text(cap)}</b>, round {r}: "
            f'<b class="alfaviz-eps-count">{sw.n_candidates:,}</b> '
            f"candidate{'' if sw.n_candidates == 1 else 's'} · stops at "
            f'<span class="alfaviz-eps-level">ε {sw.level:.3g}</span> (level '
            f"{sw.level_index + 1} of {n_levels}) · budget {sw.budget:,} · {exact}</div>",
            f'<div class="alfaviz-eps-levels" style="display:flex;gap:8px;align-items:flex-end">'
            f'{levels_svg(sw)}<span style="color:#555">candidates per level: '
            f"{html.escape(_counts_text(sw))}</span></div>",
            f'<div class="alfaviz-eps-recorded" style="color:#555">recorded: ε step '
            f"{_step_text(inputs.alpha_cap)} → {own.n_candidates:,} "
            f"candidate{'' if own.n_candidates == 1 else 's'}, stopped at ε "
            f"{own.level:.3g} · {shown}</div>",
        ]
        self.readout.value = (
            '<div style="font-size:12px;line-height:1.5">' + "".join(lines) + "</div>"
        )

    # state and widget events ---------------------------------------------------------------
    def _on_state(self, _change: dict[str, Any]) -> None:
        self.render()

    def _on_cap(self, change: dict[str, Any]) -> None:
        new = change["new"]
        self._syncing = True
        try:
            if new is not None:
                value = round(float(new), 6)
                options = [o for _, o in self.slider.options]
                if value not in options:
                    self.slider.options = [(_step_text(o), o) for o in sweep_steps(value, options)]
                self.slider.value = value
            self.show.value = new is not None and self.refusal is None
        finally:
            self._syncing = False
        self.render()

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        before = self.state.sweep_cap
        if self.refusal is None:
            self.state.sweep_cap = float(change["new"])  # moving it is asking to see it
        if self.state.sweep_cap == before:  # no change of state, so no redraw from it
            self.render()

    def _label_show(self) -> None:
        on = bool(self.show.value)
        self.show.description = "shown on map" if on else "show on map"
        self.show.icon = "check" if on else ""
        self.show.button_style = "info" if on else ""

    def _on_show(self, change: dict[str, Any]) -> None:
        self._label_show()
        if self._syncing:
            return
        on = bool(change["new"]) and self.refusal is None
        self.state.sweep_cap = float(self.slider.value) if on else None
