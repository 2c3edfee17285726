"""Every column of every frame alfaviz produces: its name, dtype and default.

The core, the run store, the views and the tests share these names and nothing else, so a
rename happens in exactly one place. Each frame is a :class:`Frame` of typed
:class:`Column` objects, and :func:`conform` is the one way a frame leaves a module: it orders
the columns, fills missing ones with their defaults and casts every column to its dtype.
Importing this module loads neither torch nor pandas; :func:`conform` imports pandas when it
is called.

Dtypes are chosen for the views: coordinates are float32 and class codes int32 (plotly sends
int64 as JSON text); global sample ids stay int64.

Frames
------
``samples`` (:data:`SAMPLES`)
    One row per (round, sample_id) over the train pool.
``flips`` (:data:`FLIPS`)
    One row per (round, sample_id, anchor_class): the long form behind the inconsistency heatmap.
``rounds`` (:data:`ROUNDS`)
    One row per round: stopping level, candidate counts, accuracy and phase timings
    (``time_<phase>`` columns, float64).
``paths`` (:data:`PATHS`)
    Predictions along the interpolation from a selected sample toward each anchor.
``queried`` (:data:`QUERIED`)
    The batch a round asked for, in the order it was picked.
``labels`` (:data:`LABELS`)
    The latest live label of each labelled sample.
``curves`` (:data:`CURVES`)
    Learning curves of a strategy comparison: one row per (strategy, seed, round).
``query_samples`` and ``query_flips`` (:data:`QUERY_SAMPLES`, :data:`QUERY_FLIPS`)
    What a strategy's ``query`` returns, before the run adds rounds, labels and coordinates.
``strategy_scores`` (:data:`STRATEGY_SCORES`)
    What other strategies score and pick on a written round: one row per (round, strategy,
    sample_id) over the round's unlabelled pool (``Experiment.compare_strategies``).

A samples frame may carry one float32 column ``score:<strategy>`` per strategy compared on
its round (:func:`score_column`, the ``score:`` family of :data:`SAMPLES`).

``*_ids`` columns hold global sample ids; positions (``*_idx``) never appear in a frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ACCURACY",
    "ACTION",
    "ACTIONS",
    "ACTION_ID",
    "ANCHOR_CLASS",
    "AUC",
    "AUC_FRAME",
    "AUC_SUMMARY",
    "BATCH_DIVERSITY",
    "BUDGET",
    "CANDIDATE",
    "CANDIDATES_PER_LEVEL",
    "CLASSES_COVERED",
    "CLUSTER",
    "COORDS",
    "CRITICAL",
    "CRITICAL_EPS",
    "CURVES",
    "ENTROPY",
    "EPOCHS",
    "EVENTS",
    "EXPLAIN_ROUND",
    "FILL",
    "FIRST_FLIP_EPS",
    "FLIPPED",
    "FLIPS",
    "FLIPS_COLUMNS",
    "FLIP_TARGETS",
    "FLIP_TO",
    "FRAMES",
    "HYPOTHESIS",
    "INCONSISTENCY",
    "INFO_KEYS",
    "KIND",
    "LABEL",
    "LABELLED_ROUND",
    "LABELS",
    "LEVEL",
    "MEAN",
    "MEAN_DIFF",
    "MEAN_DISTANCE",
    "N_CANDIDATES",
    "N_FILL",
    "N_KMEANS",
    "N_LABELLED",
    "N_OUTCOME_PREFIX",
    "N_PAIRS",
    "N_PICKED",
    "N_SAMPLES",
    "N_SEEDS",
    "ORDER",
    "OTHER",
    "OUTCOME",
    "OUTCOMES",
    "PATHS",
    "PATH_PRED",
    "PATH_PROB",
    "PATH_T",
    "PAYLOAD",
    "PICKED",
    "PICKED_BY",
    "PROB_MAX",
    "PSEUDO_CLASSES_COVERED",
    "PSEUDO_LABEL",
    "QUERIED",
    "QUERY_FLIPS",
    "QUERY_SAMPLES",
    "RANDOM_STATE",
    "RATE_PREFIX",
    "ROUND",
    "ROUNDS",
    "ROUNDS_COLUMNS",
    "SAMPLES",
    "SAMPLES_COLUMNS",
    "SAMPLE_ID",
    "SCORE",
    "SCORE_PREFIX",
    "SEED",
    "SELECTED",
    "SESSION",
    "SKIPPED",
    "SOURCE",
    "STD",
    "STD_DIFF",
    "STEP_NORM",
    "STRATEGY",
    "STRATEGY_SCORES",
    "TESTS",
    "TIME_PREFIX",
    "TRAIN_ACCURACY",
    "TRUE_LABEL",
    "TS",
    "T_STAT",
    "UNDOES",
    "WIN",
    "Column",
    "Frame",
    "X",
    "Y",
    "conform",
    "score_column",
    "time_column",
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
LABELLED_ROUND = "labelled_round"
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
TRAIN_ACCURACY = "train_accuracy"
EPOCHS = "epochs"
BUDGET = "budget"
RANDOM_STATE = "random_state"
CANDIDATES_PER_LEVEL = "candidates_per_level"
PROJECTION = "projection"
TIME_PREFIX = "time_"

# per point along an interpolation path
PATH_T = "t"
PATH_PRED = "pred"
PATH_PROB = "prob"

# the queried batch
ORDER = "order"

# other strategies on the same round
PICKED = "picked"
SCORE_PREFIX = SCORE + ":"

# the label log
ACTION_ID = "id"
TS = "ts"
ACTION = "action"
SOURCE = "source"
UNDOES = "undoes"
SESSION = "session"

# the event log of a run
KIND = "kind"
PAYLOAD = "payload"

# strategy comparisons
SEED = "seed"
AUC = "auc"
MEAN = "mean"
STD = "std"
N_SEEDS = "n_seeds"
OTHER = "other"
N_PAIRS = "n"
MEAN_DIFF = "mean_diff"
STD_DIFF = "std_diff"
T_STAT = "t"
CRITICAL = "critical"
WIN = "win"

# why a round's picks were made, and what their labels say about the method's hypothesis
FLIP_TARGETS = "flip_targets"
PICKED_BY = "picked_by"
OUTCOME = "outcome"
N_PICKED = "n_picked"
N_OUTCOME_PREFIX = "n_"
RATE_PREFIX = "rate_"
OUTCOMES: tuple[str, ...] = ("pseudo_label", "flip_target", "neither")
"""How a label relates to the round's prediction: it equals the pseudo-label, it is one of
the classes mixing flips the sample to, or neither (``unlabelled`` when no label is known)."""

# strategy A/B on one round
N_SAMPLES = "batch_size"
MEAN_DISTANCE = "mean_distance"
CLASSES_COVERED = "classes_covered"
PSEUDO_CLASSES_COVERED = "pseudo_classes_covered"


def time_column(phase: str) -> str:
    """Name of the rounds column holding the seconds spent in ``phase`` (``time_<phase>``)."""
    return TIME_PREFIX + phase


def score_column(strategy: str) -> str:
    """Name of the samples column holding ``strategy``'s score (``score:<strategy>``)."""
    return SCORE_PREFIX + strategy


# --------------------------------------------------------------------------------------------
# typed frames

_REQUIRED = object()


@dataclass(frozen=True)
class Column:
    """One typed column of a frame.

    Attributes
    ----------
    name : str
    dtype : str
        A numpy dtype name (``"int64"``, ``"int32"``, ``"int8"``, ``"float64"``,
        ``"float32"``, ``"bool"``), ``"Int64"`` (pandas' nullable integer), ``"str"`` for
        text or ``"object"`` for Python objects.
    default : object
        Value of the column when a producer leaves it out; :data:`None` in ``required``
        columns means there is no default and :func:`conform` refuses a frame without it.
    doc : str
    required : bool
    """

    name: str
    dtype: str
    default: Any = None
    doc: str = ""
    required: bool = False


@dataclass(frozen=True)
class Frame:
    """A named frame: its columns in order, and dtypes for columns matched by prefix.

    Attributes
    ----------
    name : str
    columns : tuple of Column
    prefixed : tuple of (str, str)
        ``(prefix, dtype)`` pairs for families such as ``time_<phase>``.
    doc : str
    """

    name: str
    columns: tuple[Column, ...]
    prefixed: tuple[tuple[str, str], ...] = ()
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The :class:`Column` called ``name`` (KeyError if it is not in this frame)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{name!r} is not a column of the {self.name} frame")

    def dtypes(self) -> dict[str, str]:
        """``{name: dtype}`` for the named columns."""
        return {c.name: c.dtype for c in self.columns}


def _req(name: str, dtype: str, doc: str) -> Column:
    return Column(name, dtype, None, doc, required=True)


_INF = float("inf")
_NAN = float("nan")

_STRATEGY_SAMPLE_COLUMNS: tuple[Column, ...] = (
    _req(SAMPLE_ID, "int64", "global id of the sample"),
    Column(PSEUDO_LABEL, "int32", -1, "the model's predicted class (-1: not scored)"),
    Column(PROB_MAX, "float64", _NAN, "largest softmax probability"),
    Column(ENTROPY, "float64", _NAN, "entropy of the softmax (nats)"),
    Column(SCORE, "float64", _NAN, "the strategy's score; higher is picked first"),
    Column(CANDIDATE, "bool", False, "in ALFA-Mix's candidate set"),
    Column(SELECTED, "bool", False, "picked for labelling this round"),
    Column(FILL, "bool", False, "picked by the random fill rather than k-means"),
    Column(CLUSTER, "int32", -1, "k-means cluster of a candidate (-1: none)"),
    Column(FIRST_FLIP_EPS, "float64", _INF, "smallest schedule level that flips the sample"),
    Column(CRITICAL_EPS, "float64", _INF, "smallest critical ε over the anchors"),
    Column(INCONSISTENCY, "int32", 0, "anchors that flip the sample at the stopping level"),
)

QUERY_SAMPLES = Frame(
    "query_samples",
    _STRATEGY_SAMPLE_COLUMNS,
    doc="A strategy's per-sample frame over the unlabelled pool it was given.",
)

SAMPLES = Frame(
    "samples",
    (
        _req(ROUND, "int32", "the round"),
        *_STRATEGY_SAMPLE_COLUMNS,
        Column(TRUE_LABEL, "int32", -1, "the dataset's label, where known (-1: unknown)"),
        Column(LABEL, "int32", -1, "the label given by a person or the oracle (-1: none)"),
        Column(LABELLED_ROUND, "int32", -1, "round whose training first used the label"),
        Column(X, "float32", _NAN, "2-D coordinate (UMAP or PCA) of the round"),
        Column(Y, "float32", _NAN, "2-D coordinate (UMAP or PCA) of the round"),
    ),
    prefixed=((SCORE_PREFIX, "float32"),),
    doc="One row per (round, sample_id) over the train pool; other strategies' scores on the "
    "round may follow as score:<strategy> (float32, NaN where a strategy gave none).",
)

_FLIP_COLUMNS: tuple[Column, ...] = (
    _req(SAMPLE_ID, "int64", "global id of the sample"),
    _req(ANCHOR_CLASS, "int32", "class of the anchor mixed toward"),
    Column(FLIPPED, "bool", False, "the prediction flips at the stopping level"),
    Column(FLIP_TO, "int32", -1, "label after the flip (-1: no flip)"),
    Column(CRITICAL_EPS, "float64", _INF, "smallest ε that flips the pair"),
    Column(STEP_NORM, "float32", 0.0, "‖α ⊙ Δ‖, the step taken at the stopping level"),
)

QUERY_FLIPS = Frame("query_flips", _FLIP_COLUMNS, doc="A strategy's per-(sample, anchor) frame.")

FLIPS = Frame(
    "flips",
    (_req(ROUND, "int32", "the round"), *_FLIP_COLUMNS),
    doc=(
        "One row per (round, sample_id, anchor_class); above ALFAMix.full_flips_max_pairs "
        "pairs, the candidates' and selected samples' rows only (Experiment.critical_eps "
        "has every pair's critical ε)."
    ),
)

ROUNDS = Frame(
    "rounds",
    (
        _req(ROUND, "int32", "the round"),
        Column(STRATEGY, "str", "", "the strategy's registered name"),
        Column(N_LABELLED, "int32", 0, "labelled samples the model was trained on"),
        Column(LEVEL, "float64", _NAN, "ALFA-Mix's stopping level ε (NaN for others)"),
        Column(N_CANDIDATES, "int32", 0, "size of the candidate set"),
        Column(N_KMEANS, "int32", 0, "picks made by k-means"),
        Column(N_FILL, "int32", 0, "picks made by the random fill"),
        Column(ACCURACY, "float64", _NAN, "test accuracy after training"),
        Column(TRAIN_ACCURACY, "float64", _NAN, "accuracy on the labelled set"),
        Column(EPOCHS, "int32", 0, "training epochs run"),
        Column(BUDGET, "int32", 0, "samples queried this round"),
        Column(RANDOM_STATE, "int64", -1, "seed the strategy actually used"),
        Column(PROJECTION, "str", "", "how the 2-D coordinates were made ('' for none)"),
    ),
    prefixed=((TIME_PREFIX, "float64"),),
    doc="One row per round; phase timings follow as time_<phase> (seconds).",
)

PATHS = Frame(
    "paths",
    (
        _req(SAMPLE_ID, "int64", "global id of the selected sample"),
        _req(ANCHOR_CLASS, "int32", "class of the anchor"),
        _req(PATH_T, "float32", "position along z_u → z*_c, from 0 to 1"),
        Column(PATH_PRED, "int32", -1, "predicted class at that point"),
        Column(PATH_PROB, "float32", _NAN, "probability of the predicted class"),
        Column(X, "float32", _NAN, "the mixed point placed on the round's 2-D map"),
        Column(Y, "float32", _NAN, "the mixed point placed on the round's 2-D map"),
    ),
    doc="One row per (sample, anchor, t) for the selected batch.",
)

QUERIED = Frame(
    "queried",
    (
        _req(SAMPLE_ID, "int64", "global id of a queried sample"),
        _req(ORDER, "int32", "position in the batch (k-means picks first, then the fill)"),
        Column(FILL, "bool", False, "picked by the random fill"),
    ),
    doc="The batch a round queried, in order.",
)

STRATEGY_SCORES = Frame(
    "strategy_scores",
    (
        _req(ROUND, "int32", "the round whose stored inputs the strategy queried"),
        _req(STRATEGY, "str", "the strategy's registered name"),
        _req(SAMPLE_ID, "int64", "global id of a sample of the round's unlabelled pool"),
        Column(SCORE, "float32", _NAN, "the strategy's score (NaN: it gave none)"),
        Column(PICKED, "bool", False, "in the batch the strategy picked"),
        Column(ORDER, "int32", -1, "position in that batch (-1: not picked)"),
        Column(RANDOM_STATE, "int64", -1, "seed the strategy's query actually used"),
    ),
    doc="What each strategy scores and picks on a written round, from the round's stored "
    "inputs: one row per (round, strategy, sample_id) of the round's unlabelled pool.",
)

COORDS = Frame(
    "coords",
    (
        _req(SAMPLE_ID, "int64", "global id"),
        _req(X, "float32", "2-D coordinate"),
        _req(Y, "float32", "2-D coordinate"),
    ),
    doc="2-D coordinates of one round.",
)

LABELS = Frame(
    "labels",
    (
        _req(SAMPLE_ID, "int64", "global id"),
        _req(LABEL, "int32", "class id"),
        Column(ROUND, "int32", 0, "round whose training first uses the label"),
        Column(SOURCE, "str", "", "initial, oracle or human"),
        Column(TS, "float64", _NAN, "seconds since the epoch"),
    ),
    doc="The latest live label of each labelled sample.",
)

SKIPPED = Frame(
    "skipped",
    (
        _req(SAMPLE_ID, "int64", "global id"),
        Column(ROUND, "int32", 0, "round in which it was skipped"),
        Column(SOURCE, "str", "", "who skipped it"),
        Column(TS, "float64", _NAN, "seconds since the epoch"),
    ),
    doc="The samples with a live skip.",
)

ACTIONS = Frame(
    "actions",
    (
        _req(ACTION_ID, "int64", "row of the label log"),
        Column(TS, "float64", _NAN, "seconds since the epoch"),
        Column(ROUND, "int32", 0, "round of the action"),
        Column(SAMPLE_ID, "int64", -1, "global id"),
        Column(ACTION, "str", "", "label, skip or undo"),
        Column(LABEL, "Int64", None, "class id of a label (missing for skips and undos)"),
        Column(SOURCE, "str", "", "initial, oracle or human"),
        Column(UNDOES, "Int64", None, "the action an undo undid"),
        Column(SESSION, "str", "", "the session (tab or process) that acted"),
    ),
    doc="Every labelling action (label, skip, undo) in order.",
)

EVENTS = Frame(
    "events",
    (
        _req(ACTION_ID, "int64", "row of the event log"),
        Column(TS, "float64", _NAN, "seconds since the epoch"),
        Column(KIND, "str", "", "what happened"),
        Column(PAYLOAD, "object", None, "details (a dict)"),
    ),
    doc="Events a run logged besides labels.",
)

CURVES = Frame(
    "curves",
    (
        _req(STRATEGY, "str", "strategy name"),
        _req(SEED, "int64", "seed of the run"),
        _req(ROUND, "int32", "round"),
        Column(N_LABELLED, "int32", 0, "labelled samples"),
        Column(ACCURACY, "float64", _NAN, "test accuracy"),
    ),
    doc="Learning curves: one row per (strategy, seed, round).",
)

AUC_FRAME = Frame(
    "auc",
    (
        _req(STRATEGY, "str", "strategy name"),
        _req(SEED, "int64", "seed of the run"),
        Column(AUC, "float64", _NAN, "normalised area under the learning curve"),
    ),
    doc="Area under the learning curve per (strategy, seed).",
)

AUC_SUMMARY = Frame(
    "auc_summary",
    (
        _req(STRATEGY, "str", "strategy name"),
        Column(MEAN, "float64", _NAN, "mean AUC over seeds"),
        Column(STD, "float64", _NAN, "standard deviation of the AUC over seeds (ddof 1)"),
        Column(N_SEEDS, "int32", 0, "seeds"),
    ),
    doc="The AUC summarised over seeds, per strategy.",
)

TESTS = Frame(
    "tests",
    (
        _req(STRATEGY, "str", "the strategy tested"),
        _req(OTHER, "str", "the strategy it is compared with"),
        _req(ROUND, "int32", "round"),
        Column(N_PAIRS, "int32", 0, "seeds with both runs"),
        Column(MEAN_DIFF, "float64", _NAN, "mean accuracy difference"),
        Column(STD_DIFF, "float64", _NAN, "population standard deviation of the difference"),
        Column(T_STAT, "float64", _NAN, "paired t statistic"),
        Column(CRITICAL, "float64", _NAN, "the threshold a win must exceed"),
        Column(WIN, "bool", False, "t > critical"),
    ),
    doc="Every paired t-test behind the win matrix: one row per ordered pair and round.",
)

SAMPLES_COLUMNS: tuple[str, ...] = QUERY_SAMPLES.names
"""Columns of a strategy's per-sample frame (the run loop adds round, labels and x/y)."""

FLIPS_COLUMNS: tuple[str, ...] = QUERY_FLIPS.names
"""Columns of the long per-(sample, anchor) frame."""

ROUNDS_COLUMNS: tuple[str, ...] = ROUNDS.names[:8]
"""Leading columns of the per-round frame (round, strategy, n_labelled, level, the candidate
and pick counts, accuracy)."""

EXPLAIN_ROUND = Frame(
    "explain_round",
    (
        _req(ROUND, "int32", "the round"),
        _req(STRATEGY, "str", "the run's own strategy, or the baseline compared with it"),
        _req(SAMPLE_ID, "int64", "global id of a sample the strategy picked in the round"),
        Column(ORDER, "int32", -1, "position in the strategy's batch"),
        Column(PSEUDO_LABEL, "int32", -1, "the model's class for the sample in the round"),
        Column(INCONSISTENCY, "int32", 0, "anchors whose mixing flips it (stopping level)"),
        Column(FLIP_TARGETS, "str", "", "classes mixing flips it to, ascending, comma-joined"),
        Column(CRITICAL_EPS, "float64", _INF, "smallest critical ε over the anchors"),
        Column(PICKED_BY, "str", "", "k-means, fill, score (not ALFA-Mix), or '' (another's)"),
        Column(CLUSTER, "int32", -1, "its k-means cluster (-1: none)"),
        Column(LABEL, "int32", -1, "its label: a person's or the oracle's, else the dataset's"),
        Column(SOURCE, "str", "", "initial, oracle, human, dataset, or empty when unknown"),
        Column(OUTCOME, "str", "unlabelled", "pseudo_label, flip_target, neither or unlabelled"),
    ),
    doc="Each pick of a round (the run's strategy and a baseline), why it was made and how "
    "its label relates to the prediction (alfaviz.analysis.hypothesis.explain_round).",
)

HYPOTHESIS = Frame(
    "hypothesis",
    (
        _req(ROUND, "int32", "the round"),
        _req(STRATEGY, "str", "the run's own strategy, or the baseline"),
        Column(N_PICKED, "int32", 0, "samples the strategy picked"),
        Column(N_LABELLED, "int32", 0, "picks whose label is known"),
        *(Column(N_OUTCOME_PREFIX + o, "int32", 0, f"labels that are a {o}") for o in OUTCOMES),
        *(
            Column(RATE_PREFIX + o, "float64", _NAN, f"share of known labels that are a {o}")
            for o in OUTCOMES
        ),
    ),
    doc="Per round and strategy, how often a pick's label equals the pseudo-label, a flip "
    "target, or neither (alfaviz.analysis.hypothesis.hypothesis_rates).",
)

BATCH_DIVERSITY = Frame(
    "batch_diversity",
    (
        _req(STRATEGY, "str", "a strategy compared on the round"),
        Column(N_SAMPLES, "int32", 0, "size of its batch"),
        Column(MEAN_DISTANCE, "float64", _NAN, "mean pairwise Euclidean distance (embedding)"),
        Column(CLASSES_COVERED, "int32", 0, "distinct dataset labels in the batch"),
        Column(PSEUDO_CLASSES_COVERED, "int32", 0, "distinct pseudo-labels in the batch"),
    ),
    doc="How diverse each strategy's batch is on one round (alfaviz.analysis.ab).",
)

FRAMES: dict[str, Frame] = {
    f.name: f
    for f in (
        SAMPLES,
        FLIPS,
        ROUNDS,
        PATHS,
        QUERIED,
        COORDS,
        LABELS,
        CURVES,
        QUERY_SAMPLES,
        QUERY_FLIPS,
        STRATEGY_SCORES,
        EXPLAIN_ROUND,
        HYPOTHESIS,
        BATCH_DIVERSITY,
    )
}
"""Every frame by name."""

INFO_KEYS: dict[str, str] = {
    LEVEL: "ALFA-Mix's stopping level ε",
    N_CANDIDATES: "size of the candidate set",
    N_KMEANS: "picks made by k-means",
    N_FILL: "picks made by the random fill",
    CANDIDATES_PER_LEVEL: "candidate-set size after each level evaluated (list of int)",
    RANDOM_STATE: "seed the query actually used (int)",
    time_column("query"): "seconds spent in the whole query",
}
"""Keys a strategy's ``QueryResult.info`` may hold, with their meaning. Strategies may add
``time_<phase>`` keys (for instance ``time_alfamix_kmeans``)."""


def _cast(series: pd.Series, dtype: str, frame: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    if dtype == "str":
        return series.astype(pd.Series(["x"]).dtype)
    if dtype == "object":
        return series.astype(object)
    if dtype == "Int64":
        return series.astype("Int64")
    if dtype == "bool":
        if series.dtype.kind == "b":
            return series
        filled = series.fillna(False) if series.hasnans else series
        return filled.astype(bool)
    target = np.dtype(dtype)
    if target.kind in "iu" and series.dtype.kind == "f":
        values = series.to_numpy()
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise ValueError(
                f"column {series.name!r} of the {frame} frame holds non-integer values "
                f"(for example {values[bad][0]!r}); it must be {dtype}."
            )
    if series.dtype == target:
        return series
    return series.astype(target)


def conform(df: pd.DataFrame, frame: Frame | str, *, extra: str = "keep") -> pd.DataFrame:
    """Return ``df`` with ``frame``'s columns in order, defaults filled in and dtypes cast.

    Parameters
    ----------
    df : pandas.DataFrame
    frame : Frame or str
        The frame spec, or its name (a key of :data:`FRAMES`).
    extra : {"keep", "drop"}
        What to do with columns the frame does not name: keep them after the named ones
        (a strategy may add its own), or drop them.

    Returns
    -------
    pandas.DataFrame
        A new frame with a fresh ``RangeIndex``; ``df`` is not modified.

    Raises
    ------
    ValueError
        When a required column is missing, or a value cannot take the column's dtype.
    """
    import numpy as np
    import pandas as pd

    spec = FRAMES[frame] if isinstance(frame, str) else frame
    if extra not in ("keep", "drop"):
        raise ValueError(f"extra must be 'keep' or 'drop'; got {extra!r}.")
    n = len(df)
    out: dict[str, Any] = {}
    for col in spec.columns:
        if col.name in df.columns:
            out[col.name] = _cast(df[col.name].reset_index(drop=True), col.dtype, spec.name)
        elif col.required:
            raise ValueError(
                f"the {spec.name} frame needs a {col.name!r} column; got {list(df.columns)}."
            )
        elif col.dtype in ("str", "object", "Int64"):
            out[col.name] = _cast(pd.Series([col.default] * n, dtype=object), col.dtype, spec.name)
        else:
            out[col.name] = pd.Series(np.full(n, col.default, dtype=np.dtype(col.dtype)))
    for name in df.columns:
        if name in out:
            continue
        for prefix, dtype in spec.prefixed:
            if re.match(re.escape(prefix), str(name)):
                out[name] = _cast(df[name].reset_index(drop=True), dtype, spec.name)
                break
        else:
            if extra == "keep":
                out[name] = df[name].reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(n))
