"""ALFA-Mix, the method, as pure torch functions (docs/algorithm.md).

- :mod:`alfaviz.alfamix.mixing`: anchors, the closed-form α (written once), mixing and
  interpolation paths;
- :mod:`alfaviz.alfamix._linear`: the exact fast path for an ``nn.Linear`` head
  (:class:`~alfaviz.alfamix._linear.AnchorIndex`, ``linear_thresholds``);
- :mod:`alfaviz.alfamix.candidates`: the candidate search (:func:`find_candidates`), mapped
  over row shards by an :class:`~alfaviz.engine.Engine`;
- :mod:`alfaviz.alfamix.query`: the whole query (:func:`alfamix_query`): candidates, the
  k-means pick and the random fill;
- :mod:`alfaviz.alfamix.kmeans`: the k-means used by the pick (greedy k-means++ seeding).

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
