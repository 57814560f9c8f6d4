"""Playing agents against each other: exact IPD pairings and sampled Coin Game matches, as leagues.

IPD: every agent is a memory-1 policy P(C | start, CC, CD, DC, DD), so a pairing is evaluated exactly
(a Markov chain over joint actions, no exploration noise) with ``common.envs.matrix_games``.
Coin Game: players act from their seat's egocentric observation; learned agents sample from their
policy (no epsilon), scripted bots come from ``common.envs.agents``. A league is a round robin in which
each unordered pair plays once (row player in seat 0) and the diagonal is self-play.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from common.envs.coin_game import CoinGame
from common.envs.matrix_games import average_reward_finite_horizon
from common.envs.metrics import own_coin_fraction
from loqa.networks import LoqaAgent, Params


# ----------------------------------------------------------------------------------------- IPD
def ipd_pair(p_row: Tensor, p_col: Tensor, horizon: int = 50) -> tuple[float, float]:
    """Exact expected reward per step of two memory-1 policies [5] over a `horizon`-step episode."""
    r_row, r_col = average_reward_finite_horizon(p_row.double(), p_col.double(), horizon=horizon)
    return float(r_row), float(r_col)


def ipd_league(policies: dict[str, Tensor], horizon: int = 50) -> np.ndarray:
    """reward[i, j] = reward per step of policy i playing policy j (exact)."""
    names = list(policies)
    reward = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            reward[i, j] = ipd_pair(policies[a], policies[b], horizon)[0]
    return reward


# ----------------------------------------------------------------------------------------- Coin Game
class LearnedPlayer:
    """A LOQA actor as a player: keeps its recurrent carry across the steps of an episode."""

    def __init__(self, agent: LoqaAgent, generator: torch.Generator, params: Params | None = None):
        self.agent, self.generator, self.params = agent, generator, params

    def reset(self, batch_size: int) -> None:
        self.carry, self.t = (None, None), 0

    @torch.no_grad()
    def act(self, obs: Tensor) -> Tensor:
        logits, self.carry = self.agent.act(obs.flatten(1), self.t, self.carry, self.params)
        self.t += 1
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)


class BotPlayer:
    """A scripted Coin Game bot (always-cooperate, always-defect, random) as a player."""

    def __init__(self, policy: Callable[..., Tensor], generator: torch.Generator):
        self.policy, self.generator = policy, generator

    def reset(self, batch_size: int) -> None:
        pass

    def act(self, obs: Tensor) -> Tensor:
        return self.policy(obs, self.generator)


@torch.no_grad()
def play_coin_match(env: CoinGame, player0, player1, episodes: int) -> dict[str, float]:
    """`episodes` parallel games; reward per step and own-coin fraction of each seat."""
    obs = env.reset(episodes)
    player0.reset(episodes)
    player1.reset(episodes)
    rewards, own, other = [], [], []
    for _ in range(env.episode_length):
        actions = torch.stack([player0.act(obs[:, 0]), player1.act(obs[:, 1])], dim=1)
        obs, reward, _, info = env.step(actions)
        rewards.append(reward)
        own.append(info["own_coin_pickups"])
        other.append(info["other_coin_pickups"])
    rewards, own, other = torch.stack(rewards, 1), torch.stack(own, 1), torch.stack(other, 1)
    return {
        "reward_0": float(rewards[..., 0].mean()),
        "reward_1": float(rewards[..., 1].mean()),
        "own_coin_fraction_0": own_coin_fraction(own[..., 0], other[..., 0]),
        "own_coin_fraction_1": own_coin_fraction(own[..., 1], other[..., 1]),
        "pickups_per_step_0": float((own + other)[..., 0].mean()),
    }


def coin_league(
    env: CoinGame, players: dict[str, Callable], episodes: int
) -> dict[str, np.ndarray]:
    """Round robin: reward[i, j] and own_coin[i, j] of player i against player j (i in seat 0).

    `players` maps a name to a factory of fresh players (a player keeps per-episode state, so self-play
    needs two). Each unordered pair plays one match of `episodes` games; the diagonal is an agent
    against a copy of itself (the mean of its two seats).
    """
    names = list(players)
    n = len(names)
    reward, own_coin = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            result = play_coin_match(env, players[names[i]](), players[names[j]](), episodes)
            if i == j:
                reward[i, i] = (result["reward_0"] + result["reward_1"]) / 2
                own_coin[i, i] = np.nanmean(
                    [result["own_coin_fraction_0"], result["own_coin_fraction_1"]]
                )
                continue
            reward[i, j], reward[j, i] = result["reward_0"], result["reward_1"]
            own_coin[i, j], own_coin[j, i] = (
                result["own_coin_fraction_0"],
                result["own_coin_fraction_1"],
            )
    return {"reward": reward, "own_coin_fraction": own_coin}
