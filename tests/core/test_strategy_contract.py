"""The contract every registered strategy must honour (a template test, as in scikit-activeml).

It is parametrised over ``sorted(STRATEGIES)`` so a newly registered strategy (ALFA-Mix included)
is checked without editing this file. Strategies are built with ``get_strategy(name,
random_state=0)`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alfaviz import schema
from alfaviz.errors import AlfavizInputError
from alfaviz.strategies import STRATEGIES, get_strategy

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
        strategy = get_strategy(name, random_state=0, **params)
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
    clone = type(strategy)(**strategy.get_params())
    assert repr(clone) == repr(strategy)


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
BAD_INPUTS: list[tuple[str, BadInput, str]] = [
    (
        "dim_mismatch",
        lambda p: replace(p, z_labelled=p.z_labelled[:, :8]),
        r"z_unlabelled has 16 features but z_labelled has 8",
    ),
    (
        "head_dim_mismatch",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:, :8], z_labelled=p.z_labelled[:, :8]),
        r"head expects 16-dimensional embeddings .* 8 features",
    ),
    (
        "not_2d",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:, None, :]),
        r"z_unlabelled must be 2-D",
    ),
    (
        "y_too_short",
        lambda p: replace(p, y_labelled=p.y_labelled[:-1]),
        rf"y_labelled must have shape \({N_L},\)",
    ),
    (
        "y_too_long",
        lambda p: replace(p, y_labelled=torch.cat([p.y_labelled, p.y_labelled[:3]])),
        rf"y_labelled must have shape \({N_L},\)",
    ),
    (
        "y_fractional",
        lambda p: replace(p, y_labelled=p.y_labelled.double() + 0.5),
        r"integer class ids",
    ),
    (
        "nan_unlabelled",
        lambda p: replace(p, z_unlabelled=_set(p.z_unlabelled, (5, 3), float("nan"))),
        r"z_unlabelled contains NaN or inf in 1 row",
    ),
    (
        "inf_unlabelled",
        lambda p: replace(p, z_unlabelled=_set(p.z_unlabelled, (0, 0), float("-inf"))),
        r"z_unlabelled contains NaN or inf",
    ),
    (
        "nan_labelled",
        lambda p: replace(p, z_labelled=_set(p.z_labelled, (2, 1), float("nan"))),
        r"z_labelled contains NaN or inf",
    ),
    (
        "inf_labelled",
        lambda p: replace(p, z_labelled=_set(p.z_labelled, (7, 15), float("inf"))),
        r"z_labelled contains NaN or inf",
    ),
    ("budget_zero", lambda p: replace(p, budget=0), r"budget must be at least 1"),
    ("budget_negative", lambda p: replace(p, budget=-3), r"budget must be at least 1.*-3"),
    (
        "budget_over_pool",
        lambda p: replace(p, budget=N_U + 1),
        rf"budget {N_U + 1} is larger than the unlabelled pool \({N_U} samples\)",
    ),
    ("budget_float", lambda p: replace(p, budget=2.5), r"budget must be a positive integer"),
    ("budget_bool", lambda p: replace(p, budget=True), r"budget must be a positive integer"),
    (
        "label_too_large",
        lambda p: replace(p, y_labelled=_set(p.y_labelled, (4,), 7)),
        rf"labels must lie in 0\.\.{C - 1}",
    ),
    (
        "label_negative",
        lambda p: replace(p, y_labelled=_set(p.y_labelled, (0,), -1)),
        rf"class ids in \[-1, .*labels must lie in 0\.\.{C - 1}",
    ),
    (
        "no_labelled",
        lambda p: replace(
            p,
            z_labelled=p.z_labelled[:0],
            y_labelled=p.y_labelled[:0],
            labelled_ids=p.labelled_ids[:0],
        ),
        r"z_labelled is empty .*Label at least one sample",
    ),
    (
        "empty_pool",
        lambda p: replace(p, z_unlabelled=p.z_unlabelled[:0], unlabelled_ids=p.unlabelled_ids[:0]),
        r"z_unlabelled is empty .*nothing left to query",
    ),
    (
        "ids_overlap",
        lambda p: replace(p, labelled_ids=np.arange(1000, 1000 + N_L)),
        r"both labelled and unlabelled",
    ),
    (
        "ids_duplicate",
        lambda p: replace(p, unlabelled_ids=np.r_[p.unlabelled_ids[:-1], p.unlabelled_ids[0]]),
        r"unlabelled_ids contains duplicate",
    ),
    (
        "ids_wrong_length",
        lambda p: replace(p, unlabelled_ids=p.unlabelled_ids[:-1]),
        rf"unlabelled_ids must have shape \({N_U},\)",
    ),
]


@pytest.mark.parametrize(
    ("make_bad", "match"),
    [pytest.param(f, m, id=case) for case, f, m in BAD_INPUTS],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_clear_error(
    problem: Problem, name: str, make_bad: BadInput, match: str
) -> None:
    with pytest.raises(AlfavizInputError, match=match):
        make_bad(problem).query(name)


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
