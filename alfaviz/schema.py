"""Column names shared by the core, the run store, the views and the tests.

Every tidy frame alfaviz produces uses these names and nothing else, so a rename happens in
exactly one place.

Frames
------
``samples``
    One row per (round, sample_id): what a strategy saw and decided for each unlabelled sample.
``flips``
    One row per (round, sample_id, anchor_class): the long form behind the inconsistency heatmap.
``rounds``
    One row per round: stopping level, candidate counts, accuracy and phase timings.
"""

from __future__ import annotations

__all__ = [
    "ACCURACY",
    "ANCHOR_CLASS",
    "CANDIDATE",
    "CLUSTER",
    "CRITICAL_EPS",
    "ENTROPY",
    "FILL",
    "FIRST_FLIP_EPS",
    "FLIPPED",
    "FLIPS_COLUMNS",
    "FLIP_TO",
    "INCONSISTENCY",
    "LABEL",
    "LEVEL",
    "N_CANDIDATES",
    "N_FILL",
    "N_KMEANS",
    "N_LABELLED",
    "PROB_MAX",
    "PSEUDO_LABEL",
    "ROUND",
    "ROUNDS_COLUMNS",
    "SAMPLES_COLUMNS",
    "SAMPLE_ID",
    "SCORE",
    "SELECTED",
    "STEP_NORM",
    "STRATEGY",
    "TRUE_LABEL",
    "X",
    "Y",
]

# identifiers
ROUND = "round"
SAMPLE_ID = "sample_id"
ANCHOR_CLASS = "anchor_class"
STRATEGY = "strategy"

# per sample
PSEUDO_LABEL = "pseudo_label"
PROB_MAX = "prob_max"
ENTROPY = "entropy"
SCORE = "score"
CANDIDATE = "candidate"
SELECTED = "selected"
FILL = "fill"
CLUSTER = "cluster"
FIRST_FLIP_EPS = "first_flip_eps"
CRITICAL_EPS = "critical_eps"
INCONSISTENCY = "inconsistency"
TRUE_LABEL = "true_label"
LABEL = "label"
X = "x"
Y = "y"

# per (sample, anchor)
FLIPPED = "flipped"
FLIP_TO = "flip_to"
STEP_NORM = "step_norm"

# per round
LEVEL = "level"
N_CANDIDATES = "n_candidates"
N_KMEANS = "n_kmeans"
N_FILL = "n_fill"
N_LABELLED = "n_labelled"
ACCURACY = "accuracy"

SAMPLES_COLUMNS: tuple[str, ...] = (
    SAMPLE_ID,
    PSEUDO_LABEL,
    PROB_MAX,
    ENTROPY,
    SCORE,
    CANDIDATE,
    SELECTED,
    FILL,
    CLUSTER,
    FIRST_FLIP_EPS,
    CRITICAL_EPS,
    INCONSISTENCY,
)
"""Columns of a strategy's per-sample frame (the run loop adds round, labels and x/y)."""

FLIPS_COLUMNS: tuple[str, ...] = (
    SAMPLE_ID,
    ANCHOR_CLASS,
    FLIPPED,
    FLIP_TO,
    CRITICAL_EPS,
    STEP_NORM,
)
"""Columns of the long per-(sample, anchor) frame."""

ROUNDS_COLUMNS: tuple[str, ...] = (
    ROUND,
    STRATEGY,
    N_LABELLED,
    LEVEL,
    N_CANDIDATES,
    N_KMEANS,
    N_FILL,
    ACCURACY,
)
"""Leading columns of the per-round frame (phase timings follow as ``time_<phase>``)."""
