"""The contract every registered strategy must honour (a template test, as in scikit-activeml).

It is parametrised over ``sorted(STRATEGIES)`` so a newly registered strategy (ALFA-Mix included)
is checked without editing this file. Strategies are built with ``get_strategy(name,
random_state=0)`` unless a test is about ``random_state`` itself.

The estimator checks follow scikit-learn's ``check_estimator``: ``__init__`` stores exactly its
parameters, ``get_params`` reads the signature, ``clone`` and ``set_params`` round-trip, and a
bad parameter fails when the strategy is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alfaviz import schema
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies import RANDOM_STATE_KEY, STRATEGIES, Strategy, clone, get_strategy

N_U, N_L, D, C = 300, 60, 16, 4
BUDGET = 12
NAMES = sorted(STRATEGIES)


@dataclass(frozen=True)
class Problem:
    z_unlabelled: Any
    z_labelled: Any
    y_labelled: Any
    head: nn.Module | None
    budget: Any
    unlabelled_ids: Any
    labelled_ids: Any

    def query(self, name: str, **params: Any):
        return self.query_with(get_strategy(name, **{"random_state": 0, **params}))

    def query_with(self, strategy: Strategy):
        return strategy.query(
            self.z_unlabelled,
            self.z_labelled,
            self.y_labelled,
            self.head,
            self.budget,
            unlabelled_ids=self.unlabelled_ids,
            labelled_ids=self.labelled_ids,
        )


def make_problem(seed: int = 0, device: str = "cpu") -> Problem:
    """Four Gaussian blobs through a ReLU, a linear head roughly aligned with the blobs."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, D, generator=g) * 2.0
    y_u = torch.randint(0, C, (N_U,), generator=g)
    z_u = (centres[y_u] + torch.randn(N_U, D, generator=g)).relu()
    y_l = torch.arange(N_L) % C
    z_l = (centres[y_l] + torch.randn(N_L, D, generator=g)).relu()
    head = nn.Linear(D, C)
    with torch.no_grad():
        head.weight.copy_(centres.relu() * 0.5 + 0.1 * torch.randn(C, D, generator=g))
        head.bias.copy_(0.1 * torch.randn(C, generator=g))
    return Problem(
        z_unlabelled=z_u.to(device),
        z_labelled=z_l.to(device),
        y_labelled=y_l.to(device),
        head=head.to(device),
        budget=BUDGET,
        unlabelled_ids=np.arange(1000, 1000 + N_U),
        labelled_ids=np.arange(N_L),
    )


@pytest.fixture
def problem() -> Problem:
    return make_problem()


def test_registry_is_populated() -> None:
    for name in ("random", "entropy", "margin", "leastconfidence", "bald", "coreset", "badge"):
        assert name in STRATEGIES
    assert issubclass(AlfavizInputError, ValueError)


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_name(name: str) -> None:
    strategy = get_strategy(name, random_state=0)
    assert strategy.name == name
    assert STRATEGIES[name] is type(strategy)
    # __init__ only stores parameters: rebuilding from get_params gives the same estimator
    rebuilt = type(strategy)(**strategy.get_params())
    assert repr(rebuilt) == repr(strategy)


def _signature_names(cls: type) -> set[str]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # skip self
    for p in params:
        assert p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY, f"{cls}: {p}"
    return {p.name for p in params}


@pytest.mark.parametrize("name", NAMES)
def test_init_sets_only_its_parameters(name: str) -> None:
    cls = STRATEGIES[name]
    for strategy in (cls(), get_strategy(name, random_state=3)):
        assert set(vars(strategy)) == _signature_names(cls)


@pytest.mark.parametrize("name", NAMES)
def test_get_params_keys_equal_the_signature(name: str) -> None:
    cls = STRATEGIES[name]
    strategy = cls()
    params = strategy.get_params()
    assert set(params) == _signature_names(cls)
    assert strategy.get_params(deep=True) == params
    defaults = {
        k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"
    }
    assert params == defaults  # get_params reads the stored values, which are the defaults


@pytest.mark.parametrize("name", NAMES)
def test_clone_round_trips(name: str) -> None:
    strategy = get_strategy(name, random_state=11)
    copy = clone(strategy)
    assert copy is not strategy
    assert type(copy) is type(strategy)
    assert copy.get_params() == strategy.get_params()
    assert repr(copy) == repr(strategy)
    copy.set_params(random_state=12)
    assert strategy.random_state == 11  # the copy shares nothing with the original


@pytest.mark.parametrize("name", NAMES)
def test_set_params_round_trips(name: str) -> None:
    strategy = get_strategy(name, random_state=5)
    before = strategy.get_params()
    assert strategy.set_params(**strategy.get_params()) is strategy
    assert strategy.get_params() == before
    assert strategy.set_params(random_state=6).get_params() == {**before, "random_state": 6}


@pytest.mark.parametrize("name", NAMES)
def test_set_params_rejects_unknown_keys(name: str) -> None:
    strategy = get_strategy(name)
    before = strategy.get_params()
    with pytest.raises(AlfavizInputError, match=r"has no parameter 'nope'; valid parameters: .*"):
        strategy.set_params(nope=1)
    with pytest.raises(AlfavizInputError, match=r"random_state"):  # the valid ones are listed
        strategy.set_params(nope=1)
    assert strategy.get_params() == before


@pytest.mark.parametrize("name", NAMES)
def test_random_state_none_draws_and_records_a_fresh_seed(problem: Problem, name: str) -> None:
    strategy = get_strategy(name, random_state=None)
    first = problem.query_with(strategy)
    second = problem.query_with(strategy)
    seeds = [first.info[RANDOM_STATE_KEY], second.info[RANDOM_STATE_KEY]]
    for seed in seeds:
        assert type(seed) is int
        assert 0 <= seed <= 2**63 - 1
    assert seeds[0] != seeds[1]
    assert strategy.random_state is None  # the query does not store the seed it drew
    # the recorded seed is the one actually used: replaying it gives the same query
    replay = problem.query_with(clone(strategy).set_params(random_state=seeds[0]))
    np.testing.assert_array_equal(replay.selected_ids, first.selected_ids)
    pd.testing.assert_frame_equal(replay.samples, first.samples)


@pytest.mark.parametrize("name", NAMES)
def test_fixed_seed_is_recorded_and_deterministic(problem: Problem, name: str) -> None:
    strategy = get_strategy(name, random_state=2**63 - 1)
    first = problem.query_with(strategy)
    second = problem.query_with(clone(strategy))
    assert first.info[RANDOM_STATE_KEY] == 2**63 - 1
    assert second.info[RANDOM_STATE_KEY] == 2**63 - 1
    np.testing.assert_array_equal(first.selected_ids, second.selected_ids)
    pd.testing.assert_frame_equal(first.samples, second.samples)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result(problem: Problem, name: str) -> None:
    first = problem.query(name)
    second = make_problem().query(name)
    np.testing.assert_array_equal(first.selected_ids, second.selected_ids)
    pd.testing.assert_frame_equal(first.samples, second.samples)
    assert first.strategy == name


@pytest.mark.parametrize("name", NAMES)
def test_returns_budget_unique_unlabelled_ids(problem: Problem, name: str) -> None:
    result = problem.query(name)
    ids = result.selected_ids
    assert ids.dtype == np.int64
    assert ids.shape == (BUDGET,)
    assert np.unique(ids).size == BUDGET
    assert np.isin(ids, problem.unlabelled_ids).all()
    assert not np.isin(ids, problem.labelled_ids).any()
    assert result.budget == BUDGET


@pytest.mark.parametrize("name", NAMES)
def test_samples_frame(problem: Problem, name: str) -> None:
    result = problem.query(name)
    samples = result.samples
    assert list(samples.columns) == list(schema.SAMPLES_COLUMNS)
    assert len(samples) == N_U
    np.testing.assert_array_equal(np.sort(samples[schema.SAMPLE_ID]), problem.unlabelled_ids)
    assert samples[schema.SELECTED].dtype == bool
    marked = samples.loc[samples[schema.SELECTED], schema.SAMPLE_ID].to_numpy()
    np.testing.assert_array_equal(np.sort(marked), np.sort(result.selected_ids))
    assert np.issubdtype(samples[schema.SCORE].dtype, np.floating)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_mutated(problem: Problem, name: str) -> None:
    tensors = {
        "z_unlabelled": problem.z_unlabelled,
        "z_labelled": problem.z_labelled,
        "y_labelled": problem.y_labelled,
    }
    before = {k: t.clone() for k, t in tensors.items()}
    versions = {k: t._version for k, t in tensors.items()}  # bumped by any in-place op
    assert problem.head is not None
    problem.head.train()
    state = {k: v.clone() for k, v in problem.head.state_dict().items()}
    ids_before = problem.unlabelled_ids.copy()

    problem.query(name)

    for key, tensor in tensors.items():
        torch.testing.assert_close(tensor, before[key], rtol=0, atol=0, msg=key)
        assert tensor._version == versions[key], f"{key} was modified in place"
    for key, value in problem.head.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    assert problem.head.training, "the head's train/eval mode must be restored"
    np.testing.assert_array_equal(problem.unlabelled_ids, ids_before)


@pytest.mark.parametrize("name", NAMES)
def test_budget_equal_to_pool(problem: Problem, name: str) -> None:
    result = replace(problem, budget=N_U).query(name)
    np.testing.assert_array_equal(np.sort(result.selected_ids), problem.unlabelled_ids)
    assert bool(result.samples[schema.SELECTED].all())


@pytest.mark.parametrize("name", NAMES)
def test_budget_one(problem: Problem, name: str) -> None:
    result = replace(problem, budget=1).query(name)
    assert result.selected_ids.shape == (1,)


@pytest.mark.parametrize("name", NAMES)
def test_accepts_numpy_inputs(problem: Problem, name: str) -> None:
    as_numpy = replace(
        problem,
        z_unlabelled=problem.z_unlabelled.numpy(),
        z_labelled=problem.z_labelled.numpy(),
        y_labelled=problem.y_labelled.numpy(),
    )
    np.testing.assert_array_equal(
        as_numpy.query(name).selected_ids, problem.query(name).selected_ids
    )


@pytest.mark.parametrize("name", NAMES)
def test_head_requirement(problem: Problem, name: str) -> None:
    no_head = replace(problem, head=None)
    if STRATEGIES[name].needs_head:
        with pytest.raises(AlfavizInputError, match="needs the model head"):
            no_head.query(name)
    else:
        result = no_head.query(name)
        assert np.unique(result.selected_ids).size == BUDGET


def _set(t: torch.Tensor, index: tuple[int, ...], value: float) -> torch.Tensor:
    out = t.clone()
    out[index] = value
    return out


BadInput = Callable[[Problem], Problem]


def _same(p: Problem) -> Problem:
    return p


@dataclass(frozen=True)
class Bad:
    """One bad input: a change to the problem, or constructor parameters (then ``only`` names
    the strategies that take them; ``None`` means every registered strategy)."""

    case: str
    match: str
    make_bad: BadInput = _same
    params: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, ...] | None = None


def _query_row(case: str, make_bad: BadInput, match: str) -> Bad:
    """A bad query input, checked against every registered strategy."""
    return Bad(case, match, make_bad=make_bad)


INF, NAN = float("inf"), float("nan")
SEED_RULE = r"random_state must be None \(fresh entropy\) or an integer in 0\.\.2\*\*63-1"
CAP_RULE = r"ALFAMix alpha_cap must be a real number in \[0\.001, 1\].*at most 1000 levels"
BAD_PARAMS: list[Bad] = [
    # every strategy -------------------------------------------------------------------------
    Bad("seed_negative", rf"{SEED_RULE}; got -1\.", params={"random_state": -1}),
    Bad("seed_2_63", rf"{SEED_RULE}; got {2**63}\.", params={"random_state": 2**63}),
    Bad("seed_bool", rf"{SEED_RULE}; got True\.", params={"random_state": True}),
    Bad("seed_float", rf"{SEED_RULE}; got 1\.5\.", params={"random_state": 1.5}),
    Bad("seed_str", rf"{SEED_RULE}; got '0'\.", params={"random_state": "0"}),
    Bad("seed_numpy_bool", SEED_RULE, params={"random_state": np.bool_(False)}),
    Bad(
        "unknown_param",
        r"has no parameter 'alpha_kap'; valid parameters: .*random_state",
        params={"alpha_kap": 0.2},
    ),
    # ALFA-Mix --------------------------------------------------------------------------------
    *(
        Bad(case, CAP_RULE + rf".*got {re_value}\.", params={"alpha_cap": value}, only=("alfamix",))
        for case, value, re_value in [
            ("alpha_cap_zero", 0.0, r"0\.0"),
            ("alpha_cap_negative", -0.2, r"-0\.2"),
            ("alpha_cap_above_one", 1.5, r"1\.5"),
            ("alpha_cap_bool", True, "True"),
            ("alpha_cap_too_small", 1e-4, r"0\.0001"),  # 10 000 levels
            ("alpha_cap_just_too_small", 0.000999, r"0\.000999"),
            ("alpha_cap_nan", NAN, "nan"),
            ("alpha_cap_inf", INF, "inf"),
            ("alpha_cap_str", "0.2", "'0\\.2'"),
        ]
    ),
    *(
        Bad(case, match, params=params, only=("alfamix",))
        for case, params, match in [
            (
                "alpha_unknown",
                {"alpha": "learnt"},
                r"alpha must be one of 'closed_form', 'learned'",
            ),
            ("alpha_none", {"alpha": None}, r"alpha must be one of .*; got None\."),
            ("alpha_unhashable", {"alpha": ["learned"]}, r"alpha must be one of"),
            ("learn_steps_negative", {"learn_steps": -1}, r"learn_steps must be an integer >= 0"),
            ("learn_steps_float", {"learn_steps": 2.5}, r"learn_steps must be an integer >= 0"),
            ("learn_steps_bool", {"learn_steps": True}, r"learn_steps .*; got True\."),
            ("path_steps_negative", {"path_steps": -1}, r"path_steps must be an integer >= 0"),
            ("path_steps_one", {"path_steps": 1}, r"path_steps must be 0 \(no paths\) or in 2"),
            ("path_steps_huge", {"path_steps": 10**6}, r"path_steps .* 2\.\.1000"),
            ("path_steps_float", {"path_steps": 11.0}, r"path_steps must be an integer"),
            ("kmeans_n_init_zero", {"kmeans_n_init": 0}, r"kmeans_n_init must be a positive int"),
            ("kmeans_n_init_float", {"kmeans_n_init": 1.0}, r"kmeans_n_init must be a positive"),
            ("kmeans_n_init_bool", {"kmeans_n_init": True}, r"kmeans_n_init .*; got True\."),
            ("kmeans_max_iter_zero", {"kmeans_max_iter": 0}, r"kmeans_max_iter must be a positive"),
            ("kmeans_max_iter_str", {"kmeans_max_iter": "50"}, r"kmeans_max_iter must be"),
            ("kmeans_tol_negative", {"kmeans_tol": -1e-3}, r"kmeans_tol must be a number in \[0,"),
            ("kmeans_tol_inf", {"kmeans_tol": INF}, r"kmeans_tol must be a number in \[0, inf\)"),
            ("learn_lr_zero", {"learn_lr": 0}, r"learn_lr must be a number in \(0, inf\)"),
            ("learn_lr_nan", {"learn_lr": NAN}, r"learn_lr must be a number .*; got nan\."),
            ("learn_lr_bool", {"learn_lr": True}, r"learn_lr must be a number .*; got True\."),
        ]
    ),
    # BALD ------------------------------------------------------------------------------------
    *(
        Bad(case, match, params=params, only=("bald",))
        for case, params, match in [
            ("n_draws_zero", {"n_draws": 0}, r"BALD n_draws must be a positive integer"),
            ("n_draws_float", {"n_draws": 2.5}, r"BALD n_draws must be a positive integer"),
            ("n_draws_bool", {"n_draws": True}, r"BALD n_draws .*; got True\."),
            ("dropout_one", {"dropout": 1.0}, r"BALD dropout must be a probability in \[0, 1\)"),
            ("dropout_negative", {"dropout": -0.1}, r"BALD dropout must be a probability"),
            ("dropout_bool", {"dropout": True}, r"BALD dropout .*; got True\."),
            ("dropout_str", {"dropout": "0.5"}, r"BALD dropout must be a probability"),
        ]
    ),
]
"""Bad constructor parameters: each must fail when the strategy is built, and in set_params."""

BAD_INPUTS: list[Bad] = [
    *BAD_PARAMS,
    _query_row(
        "dim_mismatch",
        lambda p: replace(p, z_labelled=p.z_labelled[:, :8]),
        r"z_unlabelled has 16 features but z_labelled has 8",
    ),
    _query_row(
        "head_dim_mismatch",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:, :8], z_labelled=p.z_labelled[:, :8]),
        r"head expects 16-dimensional embeddings .* 8 features",
    ),
    _query_row(
        "not_2d",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:, None, :]),
        r"z_unlabelled must be 2-D",
    ),
    _query_row(
        "y_too_short",
        lambda p: replace(p, y_labelled=p.y_labelled[:-1]),
        rf"y_labelled must have shape \({N_L},\)",
    ),
    _query_row(
        "y_too_long",
        lambda p: replace(p, y_labelled=torch.cat([p.y_labelled, p.y_labelled[:3]])),
        rf"y_labelled must have shape \({N_L},\)",
    ),
    _query_row(
        "y_fractional",
        lambda p: replace(p, y_labelled=p.y_labelled.double() + 0.5),
        r"integer class ids",
    ),
    _query_row(
        "nan_unlabelled",
        lambda p: replace(p, z_unlabelled=_set(p.z_unlabelled, (5, 3), float("nan"))),
        r"z_unlabelled contains NaN or inf in 1 row",
    ),
    _query_row(
        "inf_unlabelled",
        lambda p: replace(p, z_unlabelled=_set(p.z_unlabelled, (0, 0), float("-inf"))),
        r"z_unlabelled contains NaN or inf",
    ),
    _query_row(
        "nan_labelled",
        lambda p: replace(p, z_labelled=_set(p.z_labelled, (2, 1), float("nan"))),
        r"z_labelled contains NaN or inf",
    ),
    _query_row(
        "inf_labelled",
        lambda p: replace(p, z_labelled=_set(p.z_labelled, (7, 15), float("inf"))),
        r"z_labelled contains NaN or inf",
    ),
    _query_row("budget_zero", lambda p: replace(p, budget=0), r"budget must be at least 1"),
    _query_row(
        "budget_negative", lambda p: replace(p, budget=-3), r"budget must be at least 1.*-3"
    ),
    _query_row(
        "budget_over_pool",
        lambda p: replace(p, budget=N_U + 1),
        rf"budget {N_U + 1} is larger than the unlabelled pool \({N_U} samples\)",
    ),
    _query_row(
        "budget_float", lambda p: replace(p, budget=2.5), r"budget must be a positive integer"
    ),
    _query_row(
        "budget_bool", lambda p: replace(p, budget=True), r"budget must be a positive integer"
    ),
    _query_row(
        "label_too_large",
        lambda p: replace(p, y_labelled=_set(p.y_labelled, (4,), 7)),
        rf"labels must lie in 0\.\.{C - 1}",
    ),
    _query_row(
        "label_negative",
        lambda p: replace(p, y_labelled=_set(p.y_labelled, (0,), -1)),
        rf"class ids in \[-1, .*labels must lie in 0\.\.{C - 1}",
    ),
    _query_row(
        "no_labelled",
        lambda p: replace(
            p,
            z_labelled=p.z_labelled[:0],
            y_labelled=p.y_labelled[:0],
            labelled_ids=p.labelled_ids[:0],
        ),
        r"z_labelled is empty .*Label at least one sample",
    ),
    _query_row(
        "empty_pool",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:0], unlabelled_ids=p.unlabelled_ids[:0]),
        r"z_unlabelled is empty .*nothing left to query",
    ),
    _query_row(
        "ids_overlap",
        lambda p: replace(p, labelled_ids=np.arange(1000, 1000 + N_L)),
        r"both labelled and unlabelled",
    ),
    _query_row(
        "ids_duplicate",
        lambda p: replace(p, unlabelled_ids=np.r_[p.unlabelled_ids[:-1], p.unlabelled_ids[0]]),
        r"unlabelled_ids contains duplicate",
    ),
    _query_row(
        "ids_wrong_length",
        lambda p: replace(p, unlabelled_ids=p.unlabelled_ids[:-1]),
        rf"unlabelled_ids must have shape \({N_U},\)",
    ),
]


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        pytest.param(name, bad, id=f"{bad.case}-{name}")
        for bad in BAD_INPUTS
        for name in (bad.only or NAMES)
    ],
)
def test_bad_input_raises_clear_error(problem: Problem, name: str, bad: Bad) -> None:
    if not bad.params:
        with pytest.raises(AlfavizInputError, match=bad.match):
            bad.make_bad(problem).query(name)
        return
    # a bad parameter fails when the strategy is built, before any data is seen ...
    with pytest.raises(AlfavizInputError, match=bad.match) as info:
        get_strategy(name, **{"random_state": 0, **bad.params})
    assert "\n" not in str(info.value)
    # ... and in set_params, which then leaves the strategy as it was
    strategy = get_strategy(name, random_state=0)
    before = repr(strategy)
    with pytest.raises(AlfavizInputError, match=bad.match):
        strategy.set_params(**bad.params)
    assert repr(strategy) == before
    # ... and at query time if it was assigned behind the estimator's back
    if set(bad.params) <= set(strategy.get_params()):
        for key, value in bad.params.items():
            setattr(strategy, key, value)
        with pytest.raises(AlfavizInputError, match=bad.match):
            problem.query_with(strategy)


def test_bad_inputs_table_is_large_enough() -> None:
    assert len(BAD_PARAMS) >= 25
    assert len({bad.case for bad in BAD_INPUTS}) == len(BAD_INPUTS)  # ids are unique
    assert {name for bad in BAD_PARAMS for name in (bad.only or ())} == {"alfamix", "bald"}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("alfamix", {"alpha_cap": 1 / 1000}),  # the smallest step: exactly 1000 levels
        ("alfamix", {"alpha_cap": 1}),
        ("alfamix", {"alpha_cap": np.float32(0.25)}),
        ("alfamix", {"alpha": "learned", "alpha_cap": None, "learn_steps": 0}),
        ("alfamix", {"path_steps": 0, "kmeans_tol": 0}),
        ("alfamix", {"path_steps": 2, "kmeans_n_init": np.int64(2)}),
        ("bald", {"n_draws": 1, "dropout": 0.0}),
        ("bald", {"n_draws": np.int32(3), "dropout": np.float64(0.99)}),
        ("random", {"random_state": 2**63 - 1}),
        ("random", {"random_state": np.uint64(2**63 - 1)}),
        ("badge", {"random_state": None}),
    ],
)
def test_boundary_parameters_are_accepted(problem: Problem, name: str, params: dict) -> None:
    strategy = get_strategy(name, **{"random_state": 0, **params})
    assert strategy.get_params() == {**strategy.get_params(), **params}
    result = problem.query_with(strategy)
    assert np.unique(result.selected_ids).size == BUDGET


def test_unknown_strategy_lists_known_ones() -> None:
    with pytest.raises(AlfavizInputError, match=r"unknown strategy 'nope'.*entropy"):
        get_strategy("nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda(name: str) -> None:
    on_gpu = make_problem(device="cuda")
    first = on_gpu.query(name)
    second = make_problem(device="cuda").query(name)
    np.testing.assert_array_equal(first.selected_ids, second.selected_ids)
    assert np.unique(first.selected_ids).size == BUDGET
    assert np.isin(first.selected_ids, on_gpu.unlabelled_ids).all()
    assert first.samples[schema.SCORE].notna().any()
