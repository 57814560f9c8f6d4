"""Scripted bots and metric helpers (environments.md 3.1, 3.2, 6)."""

import math

import pytest
import torch

from common.envs import (
    IPD_TIT_FOR_TAT,
    CoinGame,
    coin_always_cooperate,
    coin_always_defect,
    coin_random,
    cooperation_probabilities,
    cooperation_probabilities_from_logits,
    ipd_act,
    own_coin_fraction,
    reward_per_step,
)


def test_coin_defector_steps_onto_an_adjacent_coin_whoever_owns_it():
    env = CoinGame(grid_size=5)
    obs = env.set_state(player_pos=[[[2, 2], [0, 0]]], coin_pos=[[2, 3]], coin_owner=[1])
    assert coin_always_defect(obs[:, 0]).tolist() == [1], "right onto the other's coin"


def test_coin_cooperator_takes_its_own_coin_and_flees_the_others():
    env = CoinGame(grid_size=5)
    obs = env.set_state(player_pos=[[[2, 2], [0, 0]]], coin_pos=[[2, 3]], coin_owner=[0])
    assert coin_always_cooperate(obs[:, 0]).tolist() == [1], "right onto its own coin"
    obs = env.set_state(
        player_pos=[[[2, 2], [0, 0]]] * 200, coin_pos=[[2, 3]] * 200, coin_owner=[1] * 200
    )
    # Left, up and down all reach distance 2 from the other's coin; right would take it.
    actions = coin_always_cooperate(obs[:, 0], torch.Generator().manual_seed(0))
    assert set(actions.tolist()) == {0, 2, 3}, "steps away from the other's coin, ties at random"


def test_coin_bots_measure_distance_around_the_torus():
    env = CoinGame(grid_size=5)
    obs = env.set_state(player_pos=[[[0, 0], [2, 2]]], coin_pos=[[4, 0]], coin_owner=[0])
    assert coin_always_defect(obs[:, 0]).tolist() == [2], "up wraps from row 0 to row 4"


def test_coin_bots_break_ties_at_random():
    env = CoinGame(grid_size=3)
    obs = env.set_state(
        player_pos=[[[0, 0], [2, 2]]] * 400, coin_pos=[[1, 1]] * 400, coin_owner=[0] * 400
    )
    actions = coin_always_defect(obs[:, 0], torch.Generator().manual_seed(0))
    assert set(actions.tolist()) == {1, 3}, "right and down are equally short"
    assert set(coin_random(obs[:, 0], torch.Generator().manual_seed(0)).tolist()) == {0, 1, 2, 3}


def test_ipd_act_follows_the_probability_vector_per_state():
    obs = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.float32)
    assert ipd_act(IPD_TIT_FOR_TAT, obs).tolist() == [0, 1, 0], "start C; copy D; copy C"
    with pytest.raises(ValueError, match=r"\[B, 5\]"):
        ipd_act(torch.ones(4), obs)


def test_own_coin_fraction_is_nan_without_pickups_and_a_ratio_otherwise():
    assert math.isnan(own_coin_fraction(torch.zeros(3, 2), torch.zeros(3, 2)))
    assert own_coin_fraction(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 0.0, 0.0])) == 0.75
    with pytest.raises(ValueError, match="same shape"):
        own_coin_fraction(torch.zeros(3), torch.zeros(4))


def test_reward_per_step_averages_all_but_the_player_dimension():
    rewards = torch.tensor([[[1.0, 0.0], [0.0, -2.0]], [[1.0, 1.0], [0.0, 1.0]]])
    torch.testing.assert_close(reward_per_step(rewards), torch.tensor([0.5, 0.0]))


def test_cooperation_probabilities_name_the_five_states():
    probs = cooperation_probabilities(IPD_TIT_FOR_TAT)
    assert probs == {"start": 1.0, "CC": 1.0, "CD": 0.0, "DC": 1.0, "DD": 0.0}
    assert cooperation_probabilities_from_logits(torch.zeros(5))["CD"] == 0.5
