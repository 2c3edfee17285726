"""Reports: text, figures and files, kept apart from the objects that compute.

Nothing here imports :mod:`matplotlib.pyplot`: :func:`comparison_figure` builds a figure with
the object-oriented API and the Agg canvas, imported when it is called.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alfaviz import schema
from alfaviz.errors import AlfavizInputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from alfaviz.analysis.compare import ComparisonResult

__all__ = ["comparison_figure", "comparison_summary", "describe_round", "write_comparison"]

log = logging.getLogger(__name__)

_PHASES = ("train", "eval", "embed", "query", "project", "store")


def describe_round(row: Mapping[str, Any]) -> str:
    """One line summarising a round, for logs and the command line.

    Parameters
    ----------
    row : Mapping
        A row of the ``rounds`` frame (:data:`~alfaviz.schema.ROUNDS`).

    Returns
    -------
    str
        For example ``round 2: 40 labelled, test accuracy 0.912, level=0.20 candidates=312
        picked 10 (fill 0), 3.1s``.
    """
    lvl = row.get(schema.LEVEL, math.nan)
    has_level = lvl is not None and math.isfinite(float(lvl))
    lvl_s = f" level={float(lvl):.2f}" if has_level else ""
    cand = f" candidates={row.get(schema.N_CANDIDATES, 0)}" if has_level else ""
    secs = sum(float(row.get(schema.time_column(p), 0.0) or 0.0) for p in _PHASES)
    return (
        f"round {row[schema.ROUND]}: {row[schema.N_LABELLED]} labelled, "
        f"test accuracy {float(row[schema.ACCURACY]):.3f},{lvl_s}{cand} "
        f"picked {row.get(schema.BUDGET, 0)} (fill {row.get(schema.N_FILL, 0)}), {secs:.1f}s"
    )


def comparison_summary(result: ComparisonResult) -> str:
    """A small plain-text report: AUC per strategy, final accuracy and the win matrix."""
    mc = result.mean_curves()
    names = result.strategies
    width = max([len("strategy"), *(len(s) for s in names)])
    lines = [
        f"{len(names)} strategies x {len(result.seeds)} seeds "
        f"(seeds {', '.join(map(str, result.seeds))})",
        "",
        f"{'strategy':<{width}}  {'AUC mean':>8}  {'± std':>7}  {'final acc':>9}",
    ]
    summ = result.auc_summary.set_index(schema.STRATEGY)
    for s in sorted(names, key=lambda s: -float(summ.loc[s, "mean"])):
        last = mc[mc[schema.STRATEGY] == s].iloc[-1]
        std = float(summ.loc[s, "std"])
        std_s = f"{std:7.4f}" if np.isfinite(std) else f"{'-':>7}"
        lines.append(
            f"{s:<{width}}  {float(summ.loc[s, 'mean']):8.4f}  {std_s}  {float(last['mean']):9.4f}"
        )
    lines += ["", "wins[row, column]: fraction of rounds where row significantly beats column"]
    cw = max(6, *(len(s) for s in names))
    lines.append(" " * width + "  " + "  ".join(f"{s:>{cw}}" for s in names))
    for a in names:
        cells = []
        for b in names:
            v = result.wins.loc[a, b]
            cells.append(f"{'-':>{cw}}" if not np.isfinite(v) else f"{v:>{cw}.2f}")
        lines.append(f"{a:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def comparison_figure(result: ComparisonResult, *, title: str | None = None) -> Figure:
    """Learning curves (mean ± std over seeds) and the win matrix as a heatmap.

    Uses :class:`matplotlib.figure.Figure` with the Agg canvas, so it never touches
    :mod:`matplotlib.pyplot` or the global backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = result.strategies
    fig = Figure(figsize=(12.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_c, ax_w = fig.subplots(1, 2, width_ratios=(1.25, 1.0))
    mc = result.mean_curves()
    colours = [f"C{k % 10}" for k in range(len(names))]
    for name, colour in zip(names, colours, strict=True):
        part = mc[mc[schema.STRATEGY] == name]
        x = part[schema.N_LABELLED].to_numpy(np.float64)
        m = part["mean"].to_numpy(np.float64)
        sd = np.nan_to_num(part["std"].to_numpy(np.float64))
        auc = float(result.auc_summary.set_index(schema.STRATEGY).loc[name, "mean"])
        ax_c.plot(x, m, marker="o", ms=3, color=colour, label=f"{name} (AUC {auc:.3f})")
        ax_c.fill_between(x, m - sd, m + sd, color=colour, alpha=0.18, linewidth=0)
    ax_c.set_xlabel("labelled samples")
    ax_c.set_ylabel("test accuracy")
    ax_c.set_title(f"learning curves, mean ± std over {len(result.seeds)} seeds")
    ax_c.grid(alpha=0.3)
    ax_c.legend(loc="lower right", fontsize="small")

    w = result.wins.loc[names, names].to_numpy(np.float64)
    im = ax_w.imshow(np.ma.masked_invalid(w), vmin=0.0, vmax=1.0, cmap="viridis")
    ax_w.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax_w.set_yticks(range(len(names)), names)
    ax_w.set_xlabel("loses (column)")
    ax_w.set_ylabel("wins (row)")
    ax_w.set_title("pairwise wins / rounds compared")
    for i in range(len(names)):
        for j in range(len(names)):
            v = w[i, j]
            txt = "–" if not np.isfinite(v) else f"{v:.2f}"
            colour = "black" if np.isfinite(v) and v > 0.6 else "white"
            if not np.isfinite(v):
                colour = "grey"
            ax_w.text(j, i, txt, ha="center", va="center", color=colour, fontsize=9)
    fig.colorbar(im, ax=ax_w, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    return fig


def write_comparison(result: ComparisonResult, out: str | Path | None = None) -> dict[str, Path]:
    """Write the summaries as CSV and the figure as PNG.

    Parameters
    ----------
    out : path, optional
        Folder to write to (created if needed); defaults to ``result.out``.

    Returns
    -------
    dict of str to pathlib.Path
        Keys ``curves``, ``auc``, ``auc_summary``, ``wins``, ``tests``, ``rounds`` (when
        known) and ``plot``.
    """
    folder = Path(out) if out is not None else result.out
    if folder is None:
        raise AlfavizInputError("this comparison has no output folder; pass out=<folder>.")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "curves": folder / "curves.csv",
        "auc": folder / "auc.csv",
        "auc_summary": folder / "auc_summary.csv",
        "wins": folder / "wins.csv",
        "tests": folder / "tests.csv",
    }
    result.curves.to_csv(paths["curves"], index=False)
    result.auc.to_csv(paths["auc"], index=False)
    result.auc_summary.to_csv(paths["auc_summary"], index=False)
    result.wins.to_csv(paths["wins"])
    result.tests().to_csv(paths["tests"], index=False)
    if len(result.rounds):
        paths["rounds"] = folder / "rounds.csv"
        result.rounds.to_csv(paths["rounds"], index=False)
    paths["plot"] = folder / "learning_curves.png"
    result.figure().savefig(paths["plot"], dpi=120)
    log.info("comparison written to %s", folder)
    return paths
