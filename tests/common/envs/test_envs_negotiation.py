"""Negotiation Game of Advantage Alignment (environments.md 4).

Semantics: 3 items, 1 unit each; per item one player values it at 5 and the other at 1, drawn afresh
each round; proposals in [0, 5]^3; player i gets p^i / max(p^0 + p^1, 5) of each item; reward =
value / 15. Always-Defect pairs (demand 5 everywhere) earn 0.30 each in expectation,
Always-Cooperate pairs 0.50.
"""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.envs import (
    NegotiationGame,
    ReferenceNegotiation,
    negotiation_always_cooperate,
    negotiation_always_defect,
    negotiation_random,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


ALL_UTILITY_DRAWS = torch.tensor(list(itertools.product([True, False], repeat=3)))  # [8, 3]


def _play_round(bot0, bot1, draws):
    env = NegotiationGame()
    obs = env.reset(draws.shape[0], utility_draws=draws)
    proposals = torch.stack([bot0(obs[:, 0]), bot1(obs[:, 1])], dim=1)
    return env.step(proposals)


def test_always_defect_pair_earns_exactly_0_30_in_expectation():
    """Averaging over all 8 equally likely utility draws gives the exact expectation."""
    _, rewards, _, info = _play_round(
        negotiation_always_defect, negotiation_always_defect, ALL_UTILITY_DRAWS
    )
    torch.testing.assert_close(rewards.mean(0), torch.tensor([0.30, 0.30]))
    torch.testing.assert_close(info["allocations"], torch.full((8, 2, 3), 0.5))


def test_always_cooperate_pair_earns_exactly_0_50_in_expectation_and_splits_everything():
    _, rewards, _, info = _play_round(
        negotiation_always_cooperate, negotiation_always_cooperate, ALL_UTILITY_DRAWS
    )
    torch.testing.assert_close(rewards.mean(0), torch.tensor([0.50, 0.50]))
    torch.testing.assert_close(rewards.sum(1), torch.ones(8), msg="maximal total 1.0 every round")
    torch.testing.assert_close(info["allocations"].sum(1), torch.ones(8, 3))


def test_sampled_utilities_average_to_the_reference_levels():
    env = NegotiationGame(episode_length=20, seed=1)
    obs = env.reset(1024)
    total = torch.zeros(2)
    for _ in range(20):
        proposals = torch.stack(
            [negotiation_always_defect(obs[:, 0]), negotiation_always_defect(obs[:, 1])], 1
        )
        obs, rewards, _, _ = env.step(proposals)
        total += rewards.mean(0)
    assert (total / 20 - 0.30).abs().max() < 0.01


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 4),
    steps=st.integers(1, 6),
    data=st.data(),
)
def test_batched_negotiation_equals_the_per_env_reference(batch, steps, data):
    values = st.floats(0.0, 5.0, allow_nan=False, width=32)
    proposals = data.draw(
        st.lists(
            st.lists(
                st.lists(values, min_size=3, max_size=3), min_size=2 * batch, max_size=2 * batch
            ),
            min_size=steps,
            max_size=steps,
        )
    )
    bools = st.lists(
        st.lists(st.booleans(), min_size=3, max_size=3), min_size=batch, max_size=batch
    )
    draws = data.draw(st.lists(bools, min_size=steps + 1, max_size=steps + 1))
    env = NegotiationGame(episode_length=steps)
    references = [ReferenceNegotiation(episode_length=steps) for _ in range(batch)]
    obs = env.reset(batch, utility_draws=torch.tensor(draws[0]))
    expected_obs = [ref.reset(draws[0][i]) for i, ref in enumerate(references)]
    torch.testing.assert_close(obs, torch.tensor(expected_obs))
    for t in range(steps):
        props = torch.tensor(proposals[t]).view(batch, 2, 3)
        obs, rewards, done, info = env.step(props, utility_draws=torch.tensor(draws[t + 1]))
        expected = [
            ref.step(props[i, 0].tolist(), props[i, 1].tolist(), draws[t + 1][i])
            for i, ref in enumerate(references)
        ]
        torch.testing.assert_close(rewards, torch.tensor([e[1] for e in expected]))
        torch.testing.assert_close(obs, torch.tensor([e[0] for e in expected]))
        torch.testing.assert_close(
            info["allocations"], torch.tensor([e[3]["allocations"] for e in expected])
        )
        assert done.tolist() == [e[2] for e in expected]


def test_allocations_are_feasible_and_rewards_in_unit_interval_for_random_proposals():
    env = NegotiationGame(seed=2)
    gen = torch.Generator().manual_seed(3)
    obs = env.reset(4096)
    for _ in range(5):
        proposals = torch.stack(
            [negotiation_random(obs[:, 0], gen), negotiation_random(obs[:, 1], gen)], 1
        )
        obs, rewards, _, info = env.step(proposals)
        allocations = info["allocations"]
        assert (allocations >= 0).all() and (allocations.sum(1) <= 1 + 1e-6).all()
        assert (rewards >= 0).all() and (rewards <= 1).all()


def test_swapping_seats_swaps_rewards_and_observations():
    env_a, env_b = NegotiationGame(), NegotiationGame()
    draws = ALL_UTILITY_DRAWS
    obs_a = env_a.reset(8, utility_draws=draws)
    obs_b = env_b.reset(8, utility_draws=~draws)  # player 0 of b values what player 1 of a values
    torch.testing.assert_close(obs_b, obs_a.flip(1))
    proposals = 5 * torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(4))
    obs_a, rewards_a, _, _ = env_a.step(proposals, utility_draws=draws)
    obs_b, rewards_b, _, _ = env_b.step(proposals.flip(1), utility_draws=~draws)
    torch.testing.assert_close(rewards_b, rewards_a.flip(1))
    torch.testing.assert_close(obs_b, obs_a.flip(1))


def test_observation_layout_pool_own_utilities_own_proposal_other_utilities_other_proposal():
    env = NegotiationGame()
    draws = torch.tensor([[True, False, True]])
    env.reset(1, utility_draws=draws)
    obs, _, _, _ = env.step(torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]]), utility_draws=draws)
    assert (obs[0, 0] * 10).round().tolist() == [1, 1, 1, 5, 1, 5, 1, 2, 3, 1, 5, 1, 4, 5, 0]


def test_bad_proposals_raise_one_line_errors_naming_shape_and_range():
    env = NegotiationGame()
    env.reset(2)
    with pytest.raises(ValueError, match=r"shape \[2, 2, 3\]"):
        env.step(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        env.step(torch.full((2, 2, 3), 6.0))
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        env.step(torch.full((2, 2, 3), float("nan")))
