"""Unit tests of brs/: the exact-IPD objectives, question answering, returns, probes and the MCTS planner."""

from __future__ import annotations

import torch

from brs.mcts import Policy, UCTPlanner, mcts_match
from brs.model import (
    CoinAgent,
    CoinDetective,
    IPDDetective,
    discounted_returns,
    ipd_answers,
    ipd_detective_loss,
    ipd_leader_objective,
    question_states,
)
from brs.probe import ipd_probe
from brs.rollouts import play
from common.envs.agents import coin_always_cooperate
from common.envs.coin_game import CoinGame

ALWAYS_COOPERATE = torch.full((5,), 10.0)
ALWAYS_DEFECT = torch.full((5,), -10.0)


def test_self_play_term_of_always_cooperate_is_the_sum_of_both_seats():
    terms = ipd_leader_objective(ALWAYS_COOPERATE, None, "brs_sp_no_detective", 0.96)
    assert set(terms) == {"self_play"}
    assert torch.allclose(terms["self_play"], torch.tensor(-2.0), atol=1e-3)


def test_variants_have_the_right_terms():
    detective = IPDDetective(8)
    theta = torch.zeros(5)
    assert set(ipd_leader_objective(theta, detective, "brs", 0.96)) == {"detective"}
    assert set(ipd_leader_objective(theta, detective, "brs_sp", 0.96)) == {"detective", "self_play"}
    assert set(ipd_leader_objective(theta, None, "naive", 0.96)) == {"naive"}


def test_brs_gradient_flows_through_the_detectives_conditioning():
    """d V1(theta, phi(C(theta))) / d theta = the direct part + the part through the answers (paper: the BRS update)."""
    torch.manual_seed(0)
    detective = IPDDetective(8)
    theta = torch.randn(5, requires_grad=True)
    (full,) = torch.autograd.grad(
        ipd_leader_objective(theta, detective, "brs", 0.96)["detective"], theta
    )
    frozen_reply = detective(ipd_answers(theta)).detach()
    from brs.model import ipd_values

    (direct,) = torch.autograd.grad(ipd_values(theta, frozen_reply, 0.96)[0], theta)
    assert not torch.allclose(full, direct, atol=1e-6)  # the detective term shapes the gradient
    # Finite differences agree with autograd on the full objective.
    eps = 1e-3
    for i in range(5):
        step = torch.zeros(5)
        step[i] = eps
        with torch.no_grad():
            up = ipd_leader_objective(theta + step, detective, "brs", 0.96)["detective"]
            down = ipd_leader_objective(theta - step, detective, "brs", 0.96)["detective"]
        assert abs(float((up - down) / (2 * eps)) - float(full[i])) < 1e-2


def test_detective_loss_does_not_reach_the_agents():
    detective = IPDDetective(8)
    agents = torch.randn(4, 5, requires_grad=True)
    ipd_detective_loss(detective, agents, 0.96, 1e-3).backward()
    assert agents.grad is None
    assert all(p.grad is not None for p in detective.parameters())


def test_question_states_flip_the_coins_owner():
    obs = CoinGame(seed=0).reset(3)[:, 0]
    asked = question_states(obs, 2)
    assert asked.shape == (6, 4, 3, 3)
    assert torch.equal(asked[:3], obs)
    assert torch.equal(asked[3:, 2], obs[:, 3]) and torch.equal(asked[3:, 3], obs[:, 2])
    assert torch.equal(question_states(obs, 1), obs)


def test_discounted_returns_match_a_loop():
    rewards = torch.randn(3, 7)
    expected = torch.zeros_like(rewards)
    running = torch.zeros(3)
    for t in reversed(range(7)):
        running = rewards[:, t] + 0.9 * running
        expected[:, t] = running
    assert torch.allclose(discounted_returns(rewards, 0.9), expected, atol=1e-5)


def test_probe_exploits_always_cooperate_and_cooperates_with_tit_for_tat():
    gen = torch.Generator().manual_seed(0)
    out = ipd_probe(
        ALWAYS_COOPERATE, seeds=3, iterations=100, lr=1.0, init_std=1.0, gamma=0.96, generator=gen
    )
    assert float(out["agent_value"].max()) <= -2.5
    tit_for_tat = torch.tensor([10.0, 10.0, -10.0, 10.0, -10.0])
    out = ipd_probe(
        tit_for_tat, seeds=3, iterations=300, lr=1.0, init_std=1.0, gamma=0.96, generator=gen
    )
    assert float(out["agent_value"].min()) >= -1.1


def test_detective_log_probs_depend_on_the_agent_through_the_answers():
    torch.manual_seed(0)
    env = CoinGame(episode_length=4, seed=0)
    agent, detective = CoinAgent(36, 8), CoinDetective(36, 8, 2)
    episode = play(env, agent, detective, 5, torch.Generator().manual_seed(0))
    assert episode["logp"].shape == (5, 4, 2) and episode["rewards"].shape == (5, 4, 2)
    grads = torch.autograd.grad(
        episode["logp"][..., 1].sum(), list(agent.parameters()), allow_unused=True
    )
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_self_play_and_bot_episodes_have_the_same_layout():
    env = CoinGame(episode_length=3, seed=0)
    agent = CoinAgent(36, 8)
    for opponent in (agent, coin_always_cooperate):
        episode = play(env, agent, opponent, 4, torch.Generator().manual_seed(0))
        assert {k: tuple(v.shape) for k, v in episode.items()} == {
            k: (4, 3, 2) for k in ("logp", "values", "rewards", "entropy", "own", "other")
        }


def test_planner_takes_an_adjacent_coin():
    game = CoinGame(seed=0)
    # Planner (seat 1) at (1, 1), the coin right of it at (1, 2); the bot far away at (0, 0).
    game.set_state(
        player_pos=torch.tensor([[[0, 0], [1, 1]]] * 4),
        coin_pos=torch.tensor([[1, 2]] * 4),
        coin_owner=torch.tensor([0, 1, 0, 1]),
    )
    planner = UCTPlanner(
        Policy(bot=coin_always_cooperate),
        3,
        simulations=16,
        depth=1,
        exploration=1.0,
        gamma=0.96,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(planner.plan(game, torch.zeros(4, 1), 50), torch.ones(4, dtype=torch.long))


def test_mcts_exploits_always_cooperate_in_a_short_match():
    out = mcts_match(
        Policy(bot=coin_always_cooperate),
        grid_size=3,
        episode_length=10,
        episodes=4,
        simulations=8,
        depth=3,
        exploration=1.5,
        gamma=0.96,
        seed=0,
    )
    assert out["steps"] == 10
    assert out["mcts_reward"] > out["agent_reward"]
