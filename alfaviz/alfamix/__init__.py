"""ALFA-Mix, the method, as pure torch functions (docs/algorithm.md).

- :mod:`alfaviz.alfamix.mixing`: anchors, the closed-form α, mixing and interpolation paths;
- :mod:`alfaviz.alfamix.candidates`: the candidate search (:func:`find_candidates`);
- :mod:`alfaviz.alfamix.query`: the whole query (:func:`alfamix_query`): candidates, the
  k-means pick and the random fill;
- :mod:`alfaviz.alfamix.kmeans`: the k-means used by the pick.

The estimator that wraps these for an active-learning loop is
:class:`alfaviz.strategies.ALFAMix`.
"""

from __future__ import annotations

from alfaviz.alfamix.candidates import find_candidates
from alfaviz.alfamix.mixing import closed_form_alpha, compute_anchors, level_schedule, mix
from alfaviz.alfamix.query import alfamix_query

__all__ = [
    "alfamix_query",
    "closed_form_alpha",
    "compute_anchors",
    "find_candidates",
    "level_schedule",
    "mix",
]
