"""Round controls: run the next round in a worker thread, pick the round every view shows.

"Run next round" calls ``data.experiment.step()`` in a :class:`threading.Thread`, so the
other views stay usable while the model trains. The button is disabled from the click until
the thread ends (it cannot start twice), and an ``IntProgress`` bar is fed by the
Experiment's event stream: ``round_started`` sets it to 1 of 2 (training, querying,
projecting), ``round_written`` to 2 of 2. A failure in the worker is shown in the view's
error area and the button comes back.

A human-labelled run refuses to start a round while its batch still waits for labels (the
labels would not be used); pass ``force=True`` to :meth:`RoundControls.run_next_round` to
start anyway. Read-only runs show the button disabled.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets

from alfaviz import schema
from alfaviz.widgets._base import View

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._base import ErrorArea
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = ["RoundControls"]

_STARTED = "round_started"
_WRITTEN = "round_written"


class RoundControls(View):
    """A "Run next round" button with progress, and the round selector.

    Parameters
    ----------
    state : AppState
        Observed: ``round``, ``data_version``. Written: ``round`` (the slider, and the new
        round once it is written).
    data : RunData
        Its ``experiment.step()`` is run in a worker thread.
    errors : ErrorArea, optional

    Attributes
    ----------
    thread : threading.Thread or None
        The worker of the last run.
    running : bool
        Whether a round is being run now.
    """

    name: ClassVar[str] = "round-controls"
    css_class: ClassVar[str] = "alfaviz-round-controls"

    def __init__(self, state: AppState, data: RunData, *, errors: ErrorArea | None = None) -> None:
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._running = False
        super().__init__(state, data, errors=errors)

    def _build(self) -> widgets.Widget:
        self.run_button = widgets.Button(
            description="Run next round", icon="play", button_style="primary"
        )
        self.run_button.on_click(self._guard(lambda _b: self.run_next_round()))
        self.progress = widgets.IntProgress(value=0, min=0, max=2, description="")
        self.status = widgets.HTML()
        self.slider = widgets.IntSlider(
            value=0, min=0, max=0, description="round", readout=False, continuous_update=False
        )
        self.slider.observe(self._guard(self._on_slider), names="value")
        self.counter = widgets.HTML()
        self._unsubscribe = self.data.experiment.subscribe(
            self._guard(self._on_event), kinds=[_STARTED, _WRITTEN]
        )
        self._observe(lambda _c: self._sync(), names=["round", "data_version"])
        self._sync()
        self._say("idle" if self.data.n_rounds else "no round yet: run the first one")
        return widgets.VBox(
            [
                widgets.HBox([self.run_button, self.progress, self.status]),
                widgets.HBox([self.slider, self.counter]),
            ]
        )

    @property
    def running(self) -> bool:
        """Whether a round is being run now."""
        return self._running

    # the round selector ------------------------------------------------------------------
    def _sync(self) -> None:
        n = self.data.n_rounds
        r = min(int(self.state.round), max(n - 1, 0))
        with self.slider.hold_trait_notifications():
            self.slider.max = max(n - 1, 0)
            self.slider.value = r
        self.slider.disabled = n <= 1
        # rounds are numbered from 0, as in the frames and the command line
        self.counter.value = f"round {r} of 0–{n - 1}" if n else "no round written yet"
        self.run_button.disabled = self._running or self.data.read_only
        if self.data.read_only:
            self.run_button.tooltip = "this run is open read-only"

    def _on_slider(self, change: dict[str, Any]) -> None:
        if int(change["new"]) != self.state.round:
            self.state.round = int(change["new"])

    # running a round ---------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.value = f'<span class="alfaviz-status">{text}</span>'

    def _on_event(self, event: Any) -> None:
        if event.kind == _STARTED:
            self.progress.value = 1
            self.progress.bar_style = "info"
            self._say(f"running round {event.round}: training, querying, projecting…")
        elif event.kind == _WRITTEN:
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            acc = dict(event.payload).get(schema.ACCURACY, math.nan)
            acc_text = f" (test accuracy {acc:.3f})" if math.isfinite(float(acc)) else ""
            self._say(f"round {event.round} written{acc_text}")

    def run_next_round(self, wait: bool = False, *, force: bool = False) -> bool:
        """Start ``data.experiment.step()`` in a worker thread.

        Parameters
        ----------
        wait : bool
            Join the thread before returning (tests, scripts).
        force : bool
            Start even though a human-labelled batch is still waiting for labels.

        Returns
        -------
        bool
            Whether a round was started (False when one is running already, the run is
            read-only, or the batch still waits for labels).
        """
        if self.data.read_only:
            self._say("this run is open read-only: rounds cannot be run from here")
            return False
        exp = self.data.experiment
        left = int(self.data.pending.size) if exp.labelling == "human" else 0
        if left and not force:
            self._say(f"label the batch first: {left} of its samples are still waiting")
            return False
        with self._lock:
            if self._running:
                return False
            self._running = True
        self.run_button.disabled = True
        self.progress.value = 0
        self.progress.bar_style = ""
        self._say("starting…")
        self.thread = threading.Thread(target=self._work, name="alfaviz-round", daemon=True)
        self.thread.start()
        if wait:
            self.thread.join()
        return True

    def _work(self) -> None:
        try:
            self.data.experiment.step()
            n = self.data.n_rounds
            if n and self.state.round != n - 1:
                self.state.round = n - 1
        except Exception as exc:
            self.errors.report(self.name, exc)
            self.progress.bar_style = "danger"
            self._say("the round failed (see the error below)")
        finally:
            with self._lock:
                self._running = False
            self._guard(self._sync)()

    def close(self) -> None:
        """Stop listening to the run's events."""
        self._unsubscribe()
