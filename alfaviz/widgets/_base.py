"""The base of every view: its state and data, its CSS class, and errors shown on screen."""

from __future__ import annotations

import contextlib
import copy
import html
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets

if TYPE_CHECKING:  # pragma: no cover - typing only
    from alfaviz.widgets._data import RunData
    from alfaviz.widgets._state import AppState

__all__ = [
    "ErrorArea",
    "FigureSlot",
    "View",
    "WorkerView",
    "count_views",
    "figure_widget",
    "patch",
]

log = logging.getLogger(__name__)


def count_views(figure: Any) -> Any:
    """Ask the front-end to count the views of ``figure`` (ipywidgets' ``_view_count``)."""
    figure._view_count = 0
    return figure


def figure_widget(figure: Any) -> Any:
    """A ``go.FigureWidget`` of ``figure`` whose views are counted (:func:`count_views`).

    Under ``alfaviz serve`` its front-end module is the page's shared copy of plotly's
    (:mod:`alfaviz.widgets._modules`), not a 5 MB copy of its own.

    Parameters
    ----------
    figure : plotly.graph_objects.Figure or dict
        What ``go.FigureWidget`` takes.

    Returns
    -------
    plotly.graph_objects.FigureWidget
    """
    import plotly.graph_objects as go

    from alfaviz.widgets._modules import shared_class

    cls = shared_class(go.FigureWidget, "plotly")
    return count_views(cls(figure))


LATE_FIGURE_DELAY_S = 1.0
"""Seconds between the page showing a :class:`FigureSlot` and the slot making its figure."""


def _kernel_loop() -> Any:
    """The running IPython kernel's tornado ``io_loop``, or ``None`` outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    loop = getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)
    return loop if callable(getattr(loop, "call_later", None)) else None


class FigureSlot:
    """The place of a view's FigureWidget; under ``alfaviz serve`` the figure comes late.

    anywidget gives a widget's model 2 s from its creation in the page to load its module and
    initialise, and a model that misses this never takes another message from the kernel (its
    figure is drawn once and then never redrawn). A Voila page creates every widget model of a
    dashboard at once, while it is busiest, and on 2 cores a FigureWidget created then can
    miss the limit. Under ``alfaviz serve`` (a kernel with shared modules, see
    :mod:`alfaviz.widgets._modules`) the slot therefore shows a placeholder, and makes the
    FigureWidget :data:`LATE_FIGURE_DELAY_S` after the page has drawn that placeholder, on a
    page that is quiet and already holds plotly's module. Anywhere else it makes the figure
    at once.

    Parameters
    ----------
    make : callable
        Returns the ``go.Figure`` to show; called when the widget is made, so that it shows
        the state of that moment.
    on_made : callable, optional
        Called with the new FigureWidget (to attach click handlers).
    late : bool, optional
        Force the late (True) or immediate (False) making; by default, late under
        ``alfaviz serve`` only.
    text : str
        What the placeholder says.

    Attributes
    ----------
    widget : ipywidgets.Box
        Holds the placeholder, then the figure.
    figure : plotly.graph_objects.FigureWidget or None
        ``None`` until made.
    """

    def __init__(
        self,
        make: Callable[[], Any],
        on_made: Callable[[Any], None] | None = None,
        *,
        late: bool | None = None,
        text: str = "drawing the figure …",
    ) -> None:
        self._make = make
        self._on_made = on_made
        self.figure: Any = None
        self._loop = _kernel_loop()
        self._scheduled = False
        if late is None:
            from alfaviz.widgets._modules import served_names

            late = bool(served_names())
        self.late = bool(late) and self._loop is not None
        self.placeholder = widgets.HTML(
            f'<div class="alfaviz-figure-pending-text">{html.escape(text)}</div>',
            layout=widgets.Layout(min_height="120px"),
        )
        self.placeholder.add_class("alfaviz-figure-pending")
        self.widget = widgets.Box([self.placeholder], layout=widgets.Layout(width="100%"))

    @property
    def requested(self) -> bool:
        """Whether the figure is made, or will be once the page shows the placeholder."""
        return self.figure is not None or self._scheduled

    def request(self) -> None:
        """Make the figure now, or (late) once the page has drawn the placeholder."""
        if self.figure is not None or self._scheduled:
            return
        if not self.late:
            self.make_now()
            return
        self._scheduled = True
        self.placeholder._view_count = 0  # the page reports the views it draws
        self.placeholder.observe(self._on_seen, names=["_view_count"])

    def _on_seen(self, change: dict[str, Any]) -> None:
        if change["new"] and self.figure is None and self._loop is not None:
            self.placeholder.unobserve(self._on_seen, names=["_view_count"])
            self._loop.call_later(LATE_FIGURE_DELAY_S, self._made_late)

    def _made_late(self) -> None:
        try:
            self.make_now()
        except Exception:  # pragma: no cover - shown by the view's own guard otherwise
            log.exception("making a figure failed")

    def make_now(self) -> Any:
        """The FigureWidget, made now if it was not yet."""
        if self.figure is None:
            fig = figure_widget(self._make())
            self.figure = fig
            if self._on_made is not None:
                self._on_made(fig)
            self.widget.children = (fig,)
        return self.figure


@contextlib.contextmanager
def patch(figure: Any) -> Iterator[Any]:
    """One ``batch_update()`` of a FigureWidget that no front-end loses.

    A FigureWidget syncs its data in full only when it is built; later edits travel as
    messages. Voila runs the whole notebook before the page connects, so edits made before any
    view exists would be lost: until a view is counted (see :func:`count_views`), the figure's
    whole state is assigned again after the batch.
    """
    with figure.batch_update():
        yield figure
    if not figure._view_count:
        figure._widget_data = copy.deepcopy(figure._data)
        figure._widget_layout = copy.deepcopy(figure._layout)


class ErrorArea:
    """Where failed view callbacks are shown, each line tagged with the view's name.

    ipywidgets swallows exceptions raised in observers and button handlers; every view
    wraps its callbacks so that a failure lands here instead (and in the log).

    Attributes
    ----------
    widget : ipywidgets.HTML
        Carries the CSS class ``alfaviz-errors``; empty (and hidden) when nothing failed.
    messages : list of str
        ``"<view>: <error>"``, oldest first.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.widget = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.widget.add_class("alfaviz-errors")

    def report(self, view: str, exc: BaseException) -> None:
        """Show that ``view`` failed with ``exc``."""
        line = f"{view}: {type(exc).__name__}: {exc}"
        log.error("view %s failed", view, exc_info=exc)
        self.messages.append(line)
        items = "".join(
            f'<div class="alfaviz-error" data-view="{html.escape(m.split(":", 1)[0])}">'
            f"{html.escape(m)}</div>"
            for m in self.messages[-5:]
        )
        self.widget.value = f'<div style="color:#b00020">{items}</div>'
        self.widget.layout.display = None

    def clear(self) -> None:
        """Forget every message."""
        self.messages.clear()
        self.widget.value = ""
        self.widget.layout.display = "none"


class View:
    """A view of one run: it observes :class:`AppState` traits and renders into :attr:`widget`.

    Subclasses set :attr:`name` and :attr:`css_class`, build their content in
    :meth:`_build`, and register callbacks with :meth:`_observe` (state changes) or
    :meth:`_guard` (widget events), so that every failure is shown in :attr:`errors`.

    Parameters
    ----------
    state : AppState
        Shared with every other view; the only thing views write to.
    data : RunData
        The run; read only, except for the labelling panel's actions.
    errors : ErrorArea, optional
        Shared by a dashboard; a view on its own shows its own.
    """

    name: ClassVar[str] = "view"
    css_class: ClassVar[str] = "alfaviz-view"

    def __init__(self, state: AppState, data: RunData, *, errors: ErrorArea | None = None):
        self.state = state
        self.data = data
        self._own_errors = errors is None
        self.errors = errors if errors is not None else ErrorArea()
        content = self._build()
        children = [content, self.errors.widget] if self._own_errors else [content]
        self.widget = widgets.VBox(children)
        self.widget.add_class(self.css_class)

    def _build(self) -> widgets.Widget:  # pragma: no cover - abstract
        raise NotImplementedError

    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped so that an exception is shown in :attr:`errors`, not swallowed."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                self.errors.report(self.name, exc)
                return None

        guarded.__name__ = getattr(fn, "__name__", "callback")
        return guarded

    def _observe(self, fn: Callable[[dict[str, Any]], Any], names: Sequence[str]) -> None:
        """Observe only ``names`` of the shared state (never all traits)."""
        self.state.observe(self._guard(fn), names=list(names))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class WorkerView(View):
    """A view that computes in one worker thread at a time (``self.thread``, ``None`` when
    idle, guarded by ``self._thread_lock``), with :meth:`wait` for tests and notebooks."""

    thread: threading.Thread | None = None
    _thread_lock: threading.Lock

    def wait(self, timeout: float | None = None) -> None:
        """Return when the worker (if any) is done, or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._thread_lock:
                t = self.thread
            if t is None:
                return
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            t.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                return
