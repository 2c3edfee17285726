"""Analysis on top of runs: the 2-D projection, strategy comparison and reports.

Submodules are imported on use: :mod:`alfaviz.analysis.projection` and
:mod:`alfaviz.analysis.compare`.
"""

from __future__ import annotations

__all__: list[str] = []
