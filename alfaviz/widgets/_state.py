"""The one state every view shares: what the user looks at, and what they have selected."""

from __future__ import annotations

from typing import Any

import traitlets

__all__ = ["COLOUR_BY", "AppState"]

COLOUR_BY: tuple[str, ...] = (
    "status",
    "pseudo_label",
    "true_label",
    "inconsistency",
    "critical_eps",
    "score",
)
"""The colourings of the embedding map. ``score:<strategy>`` colours by another strategy's
recorded score as well (for example ``score:entropy``)."""


class AppState(traitlets.HasTraits):
    """Shared, observable view state. Views observe it with ``observe(fn, names=[...])``.

    Views write only user intent into it (a selection, a hover, a round, a colouring); the
    run's data never lives here. :attr:`data_version` is bumped by the run's event stream
    (see :meth:`RunData.attach`), so views redraw when labels or rounds arrive.

    Traits
    ------
    round : int, default 0
        The round shown by every view (``0 .. n_rounds - 1``).
    selected_ids : tuple of int, default ()
        Global sample ids selected by a lasso, a box, a click or a heatmap row, in order.
    hovered_id : int or None, default None
        The global id under the pointer, if any.
    colour_by : str, default "status"
        One of :data:`COLOUR_BY`, or ``"score:<strategy>"``.
    data_version : int, default 0
        Incremented whenever the run changes (a label, a skip, an undo, a round written).
    focus_id : int or None, default None
        The sample whose "why was this selected?" explanation is shown: set by a click on a
        gallery card, on one point of the map or on a heatmap row.
    sweep_cap : float or None, default None
        The ε step (``alpha_cap``, in ``(0, 1]``) whose candidate set the map shows, replayed
        from the round's recorded critical ε by the ε slider; ``None``: no sweep shown.
    """

    round = traitlets.Int(0, help="The round shown by every view.")
    selected_ids = traitlets.Tuple(help="Selected global sample ids, in order.")
    hovered_id = traitlets.Int(None, allow_none=True, help="Global id under the pointer.")
    colour_by = traitlets.Unicode("status", help="How the embedding map is coloured.")
    data_version = traitlets.Int(0, help="Bumped by the run's event stream on every change.")
    focus_id = traitlets.Int(None, allow_none=True, help="Sample whose explanation is shown.")
    sweep_cap = traitlets.Float(
        None, allow_none=True, help="ε step whose replayed candidates the map shows (None: none)."
    )

    @traitlets.validate("round")
    def _valid_round(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if value < 0:
            raise traitlets.TraitError(f"round must be >= 0; got {value}.")
        return value

    @traitlets.validate("sweep_cap")
    def _valid_sweep_cap(self, proposal: dict[str, Any]) -> float | None:
        value = proposal["value"]
        if value is not None and not 0.0 < value <= 1.0:
            raise traitlets.TraitError(f"sweep_cap must lie in (0, 1] or be None; got {value}.")
        return value

    @traitlets.validate("selected_ids")
    def _valid_selection(self, proposal: dict[str, Any]) -> tuple[int, ...]:
        out = []
        for v in proposal["value"]:
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise traitlets.TraitError(f"selected_ids must hold integer ids; got {v!r}.")
            out.append(int(v))
        return tuple(dict.fromkeys(out))  # unique, order kept

    @traitlets.validate("colour_by")
    def _valid_colour(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value in COLOUR_BY or (value.startswith("score:") and len(value) > 6):
            return value
        raise traitlets.TraitError(
            f"colour_by must be one of {list(COLOUR_BY)} or 'score:<strategy>'; got {value!r}."
        )

    def select(self, ids: Any) -> None:
        """Replace the selection with ``ids`` (any iterable of ints)."""
        self.selected_ids = tuple(int(i) for i in ids)

    def bump(self) -> None:
        """Tell every view that the run's data changed."""
        self.data_version = self.data_version + 1
