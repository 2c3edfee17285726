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

__all__ = ["ErrorArea", "View", "WorkerView", "count_views", "patch"]

log = logging.getLogger(__name__)


def count_views(figure: Any) -> Any:
    """Ask the front-end to count the views of ``figure`` (ipywidgets' ``_view_count``)."""
    figure._view_count = 0
    return figure


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
