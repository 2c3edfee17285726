"""alfaviz: explore active learning with ALFA-Mix.

The GUI-free core lives in :mod:`alfaviz.core`; the notebook views (issue 4 onwards) live
outside it and are optional.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
