"""The estimator API of strategies, the scikit-learn way: get_params, set_params, clone, seeds.

The contract test checks every registered strategy; these tests check the mechanism itself
with small user-defined strategies, where a wrong implementation would show.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from alfaviz.errors import AlfavizInputError
from alfaviz.strategies import (
    RANDOM_STATE_KEY,
    STRATEGIES,
    ALFAMix,
    QueryInputs,
    Random,
    Selection,
    Strategy,
    clone,
    get_strategy,
    register,
    top_k_positions,
)


class Recorder(Strategy):
    """Picks the first ``budget`` positions and records the seed ``_select`` was handed."""

    name: ClassVar[str] = "recorder_for_tests"
    needs_head: ClassVar[bool] = False

    def __init__(self, weights: list[float] | None = None, random_state: int | None = 0) -> None:
        self.weights = weights
        self.random_state = random_state
        self._validate_params()

    def _select(self, inputs: QueryInputs) -> Selection:
        n = inputs.z_unlabelled.shape[0]
        return Selection(
            selected_idx=np.arange(inputs.budget),
            columns={},
            info={"seed_seen_by_select": inputs.random_state, "n": n},
        )


def _pool(n: int = 40, d: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randn(4, d, generator=g), torch.arange(4) % 2


def test_get_params_reads_the_signature_not_the_attributes() -> None:
    strategy = Recorder(weights=[1.0, 2.0], random_state=3)
    strategy.cache_ = "fitted state"  # not a parameter: must not show up
    assert strategy.get_params() == {"weights": [1.0, 2.0], "random_state": 3}
    assert list(strategy.get_params()) == ["weights", "random_state"]  # signature order
    assert strategy.get_params(deep=True) == strategy.get_params()
    assert "cache_" not in repr(strategy)


def test_get_params_names_an_unstored_parameter() -> None:
    class Forgetful(Strategy):
        def __init__(self, alpha: float = 1.0, random_state: int | None = 0) -> None:
            self.random_state = random_state

    with pytest.raises(AttributeError, match=r"must store its parameter 'alpha' as self\.alpha"):
        Forgetful().get_params()


class WithArgs(Strategy):
    name: ClassVar[str] = "with_args_for_tests"

    def __init__(self, *args: int) -> None:
        self.random_state = 0


class WithKwargs(Strategy):
    name: ClassVar[str] = "with_kwargs_for_tests"

    def __init__(self, random_state: int | None = 0, **kwargs: int) -> None:
        self.random_state = random_state


@pytest.mark.parametrize("vague", [WithArgs, WithKwargs])
def test_varargs_init_is_rejected(vague: type[Strategy]) -> None:
    with pytest.raises(AlfavizInputError, match=r"must list its parameters explicitly"):
        vague().get_params()
    with pytest.raises(AlfavizInputError, match=r"must list its parameters explicitly"):
        register(vague)
    assert vague.name not in STRATEGIES


def test_register_rejects_a_non_strategy() -> None:
    with pytest.raises(AlfavizInputError, match=r"register expects a Strategy subclass"):
        register(dict)  # type: ignore[arg-type]


def test_set_params_returns_self_and_validates() -> None:
    strategy = ALFAMix()
    assert strategy.set_params(alpha="learned", learn_steps=0) is strategy
    assert strategy.alpha == "learned"
    assert strategy.learn_steps == 0
    with pytest.raises(
        AlfavizInputError, match=r"alpha_cap must be a real number in \[0\.001, 1\]"
    ):
        strategy.set_params(alpha_cap=0.0)


def test_set_params_is_all_or_nothing() -> None:
    strategy = ALFAMix(alpha_cap=0.5, random_state=1)
    before = strategy.get_params()
    with pytest.raises(AlfavizInputError, match=r"learn_steps must be an integer >= 0"):
        strategy.set_params(alpha_cap=0.25, random_state=2, learn_steps=-1)  # last one bad
    assert strategy.get_params() == before
    with pytest.raises(AlfavizInputError, match=r"no parameter 'alpha_kap'.*valid parameters:"):
        strategy.set_params(alpha_cap=0.25, alpha_kap=0.25)
    assert strategy.get_params() == before


def test_unknown_parameter_lists_the_valid_ones() -> None:
    with pytest.raises(
        AlfavizInputError,
        match=r"ALFAMix has no parameter 'alpha_kap'; valid parameters: alpha_cap, alpha, "
        r"kmeans_n_init, kmeans_max_iter, kmeans_tol, learn_steps, learn_lr, path_steps, "
        r"random_state\.",
    ):
        ALFAMix().set_params(alpha_kap=0.2)
    with pytest.raises(AlfavizInputError, match=r"Random has no parameter 'seed'"):
        get_strategy("random", seed=3)  # not a TypeError from __init__


def test_clone_deep_copies_and_drops_other_state() -> None:
    weights = [1.0, 2.0]
    original = Recorder(weights=weights, random_state=5)
    original.cache_ = "fitted state"
    copy = clone(original)
    assert type(copy) is Recorder
    assert copy.get_params() == original.get_params()
    assert copy.weights is not weights  # deep-copied: no shared mutable parameter
    copy.weights.append(3.0)
    assert original.weights == [1.0, 2.0]
    assert not hasattr(copy, "cache_")
    clone(original).set_params(random_state=9)
    assert original.random_state == 5


def test_clone_rejects_a_non_strategy() -> None:
    with pytest.raises(AlfavizInputError, match=r"clone expects a Strategy instance"):
        clone("alfamix")  # type: ignore[arg-type]


def test_per_round_clone_and_seed() -> None:
    """The session's pattern: clone(strategy).set_params(random_state=seed) each round."""
    base = Random(random_state=None)
    z, z_l, y_l = _pool(200)
    picks = {}
    for seed in (0, 1, 0):
        result = clone(base).set_params(random_state=seed).query(z, z_l, y_l, None, 10)
        assert result.info[RANDOM_STATE_KEY] == seed
        picks.setdefault(seed, []).append(result.selected_ids)
    np.testing.assert_array_equal(picks[0][0], picks[0][1])
    assert set(picks[0][0]) != set(picks[1][0])
    assert base.random_state is None


def test_select_sees_the_recorded_seed() -> None:
    z, z_l, y_l = _pool()
    fixed = Recorder(random_state=123).query(z, z_l, y_l, None, 3)
    assert fixed.info["seed_seen_by_select"] == 123 == fixed.info[RANDOM_STATE_KEY]
    fresh = Recorder(random_state=None).query(z, z_l, y_l, None, 3)
    seed = fresh.info[RANDOM_STATE_KEY]
    assert type(seed) is int
    assert fresh.info["seed_seen_by_select"] == seed


def test_fresh_seeds_are_spread_over_the_range() -> None:
    z, z_l, y_l = _pool()
    strategy = Recorder(random_state=None)
    seeds = [strategy.query(z, z_l, y_l, None, 1).info[RANDOM_STATE_KEY] for _ in range(64)]
    assert len(set(seeds)) == 64
    assert all(0 <= s <= 2**63 - 1 for s in seeds)
    assert max(seeds) > 2**60  # not a small counter or a time stamp


def test_alfamix_none_seed_is_not_zero() -> None:
    """ALFA-Mix used to run ``int(random_state or 0)``: None silently meant 0."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(120, 4, generator=g)
    z_l, y_l = torch.randn(8, 4, generator=g), torch.arange(8) % 2
    head = nn.Linear(4, 2)
    seeds = set()
    for _ in range(3):
        result = ALFAMix(random_state=None, path_steps=0).query(z, z_l, y_l, head, 30)
        seeds.add(result.info[RANDOM_STATE_KEY])
    assert len(seeds) == 3
    assert 0 not in seeds


def test_default_alpha_cap_is_resolved_at_query_time_only() -> None:
    strategy = ALFAMix(alpha="learned")
    assert strategy.alpha_cap is None  # __init__ stores, it does not resolve
    strategy.set_params(alpha="closed_form")
    assert strategy.get_params()["alpha_cap"] is None


def test_attributes_assigned_directly_are_checked_at_query() -> None:
    z, z_l, y_l = _pool()
    strategy = Random()
    strategy.random_state = -5  # bypasses set_params
    with pytest.raises(AlfavizInputError, match=r"Random random_state must be None"):
        strategy.query(z, z_l, y_l, None, 3)


def test_top_k_positions_is_re_exported() -> None:
    np.testing.assert_array_equal(top_k_positions(np.array([0.1, 0.9, 0.5]), 2), [1, 2])
