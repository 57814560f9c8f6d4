"""The MCTS opponent of the paper's Coin Game evaluation: an approximate best response with a simulator.

The planner sits in seat 1 and plans over its own four moves with UCT. The fixed agent in seat 0 is part
of the environment: in every simulation its moves are sampled from its policy, its recurrent state carried
along the simulated path from the real one at the root. Because both the agent and the coin respawns are
stochastic, the tree is open-loop: a node is a sequence of the planner's moves, and each simulation
re-plays the path from the root state. A simulation descends by UCT, adds one node, finishes the planning
horizon with random (or greedy) planner moves, and backs the planner's discounted return up the path.
Simulation counts, horizon, exploration constant and leaf evaluation are ours (the paper's are unknown).

Every evaluation episode has its own tree; all trees are stored as tensors [E, nodes, 4] and searched in
lockstep, so one simulation step is one batched agent forward and one batched environment step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from brs.model import CoinAgent
from common.envs.agents import coin_always_defect
from common.envs.coin_game import CoinGame


class Policy:
    """A fixed seat-0 player the planner simulates: act(own view [E, 4, H, W], carry) -> (actions, carry)."""

    def __init__(self, agent: CoinAgent | None = None, bot: Callable | None = None):
        if (agent is None) == (bot is None):
            raise ValueError("give exactly one of agent, bot")
        self.agent, self.bot = agent, bot

    def initial_carry(self, batch: int) -> Tensor:
        return self.agent.initial_carry(batch) if self.agent is not None else torch.zeros(batch, 1)

    @torch.no_grad()
    def act(self, obs: Tensor, carry: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.bot is not None:
            return self.bot(obs, generator), carry
        logits, _, carry = self.agent(obs.flatten(1), carry)
        actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        return actions, carry


class UCTPlanner:
    """Open-loop UCT for seat 1 against a fixed seat-0 policy, one tree per episode of a batch."""

    def __init__(
        self,
        policy: Policy,
        grid_size: int,
        *,
        simulations: int,
        depth: int,
        exploration: float,
        gamma: float,
        rollout: str = "random",
        generator: torch.Generator | None = None,
    ):
        self.policy, self.simulations, self.depth = policy, simulations, depth
        self.exploration, self.gamma, self.rollout = exploration, gamma, rollout
        self.generator = generator or torch.Generator().manual_seed(0)
        # The planning copy of the game; its own clock never ends an episode (we cap the horizon).
        self.sim = CoinGame(
            grid_size=grid_size,
            episode_length=2**62,
            check_actions=False,
            seed=int(torch.randint(0, 2**31, (1,), generator=self.generator)),
        )

    def plan(self, game: CoinGame, carry: Tensor, steps_left: int) -> Tensor:
        """The planner's move [E] in the current state of `game` (the agent's carry [E, H] at the root)."""
        batch, nodes = game.batch_size, self.simulations + 1
        visits = torch.zeros(batch, nodes, 4)
        value_sum = torch.zeros(batch, nodes, 4)
        children = torch.full((batch, nodes, 4), -1, dtype=torch.long)
        size = torch.ones(batch, dtype=torch.long)  # node 0 is the root
        rows = torch.arange(batch)
        horizon = min(self.depth, steps_left)
        for _ in range(self.simulations):
            obs = self.sim.set_state(
                player_pos=game.player_pos, coin_pos=game.coin_pos, coin_owner=game.coin_owner
            )
            agent_carry, node = carry, torch.zeros(batch, dtype=torch.long)
            in_tree = torch.ones(batch, dtype=torch.bool)
            path: list[tuple[Tensor, Tensor, Tensor]] = []
            rewards = []
            for _ in range(horizon):
                action = torch.where(
                    in_tree,
                    self._select(visits[rows, node], value_sum[rows, node]),
                    self._rollout(obs[:, 1]),
                )
                agent_action, agent_carry = self.policy.act(obs[:, 0], agent_carry, self.generator)
                obs, reward, _, _ = self.sim.step(torch.stack([agent_action, action], 1))
                rewards.append(reward[:, 1])
                path.append((node, action, in_tree))
                # Expansion: the first unseen child on the path becomes a node; below it we only roll out.
                child = children[rows, node, action]
                expand = in_tree & (child < 0)
                child = torch.where(expand, size, child)
                children[rows, node, action] = torch.where(
                    in_tree, child, children[rows, node, action]
                )
                size = size + expand.long()
                node = torch.where(in_tree, child, node)
                in_tree = in_tree & ~expand
            # Backup: the planner's discounted return from each depth, added to the in-tree edges.
            ret = torch.zeros(batch)
            for (node_d, action_d, in_tree_d), reward in zip(reversed(path), reversed(rewards)):
                ret = reward + self.gamma * ret
                visits[rows, node_d, action_d] += in_tree_d.float()
                value_sum[rows, node_d, action_d] += in_tree_d.float() * ret
        root_visits = visits[:, 0] + 1e-3 * torch.rand(
            batch, 4, generator=self.generator
        )  # random ties
        return root_visits.argmax(-1)

    def _select(self, visits: Tensor, value_sum: Tensor) -> Tensor:
        """UCB1: mean + c sqrt(ln N / n); unvisited moves first, ties at random. [E, 4] -> [E]."""
        mean = value_sum / visits.clamp(min=1)
        bonus = self.exploration * torch.sqrt(
            torch.log(visits.sum(-1, keepdim=True) + 1) / visits.clamp(min=1)
        )
        score = torch.where(visits > 0, mean + bonus, torch.full_like(mean, math.inf))
        return (score + 1e-6 * torch.rand(score.shape, generator=self.generator)).argmax(-1)

    def _rollout(self, planner_obs: Tensor) -> Tensor:
        if self.rollout == "greedy":
            return coin_always_defect(planner_obs, self.generator)
        return torch.randint(0, 4, (planner_obs.shape[0],), generator=self.generator)


def mcts_match(
    policy: Policy,
    *,
    grid_size: int,
    episode_length: int,
    episodes: int,
    simulations: int,
    depth: int,
    exploration: float,
    gamma: float,
    rollout: str = "random",
    time_limit_s: float = math.inf,
    seed: int = 0,
) -> dict[str, float]:
    """Play `episodes` episodes of the policy (seat 0) against the MCTS planner (seat 1), in parallel.

    Returns each side's reward per step, the agent's own-coin fraction and the steps played (fewer than
    episode_length when the time limit stopped the match; the rewards then cover the steps played).
    """
    generator = torch.Generator().manual_seed(seed)
    game = CoinGame(grid_size=grid_size, episode_length=episode_length, seed=seed)
    planner = UCTPlanner(
        policy,
        grid_size,
        simulations=simulations,
        depth=depth,
        exploration=exploration,
        gamma=gamma,
        rollout=rollout,
        generator=generator,
    )
    obs = game.reset(episodes)
    carry = policy.initial_carry(episodes)
    totals, own, other = torch.zeros(2), torch.zeros(()), torch.zeros(())
    start, steps = time.time(), 0
    for t in range(episode_length):
        if time.time() - start > time_limit_s:
            break
        planner_action = planner.plan(game, carry, episode_length - t)
        agent_action, carry = policy.act(obs[:, 0], carry, generator)
        obs, rewards, _, info = game.step(torch.stack([agent_action, planner_action], 1))
        totals += rewards.sum(0)
        own += info["own_coin_pickups"][:, 0].sum()
        other += info["other_coin_pickups"][:, 0].sum()
        steps += 1
    per_step = totals / max(steps * episodes, 1)
    return {
        "agent_reward": float(per_step[0]),
        "mcts_reward": float(per_step[1]),
        "agent_own_coin_fraction": float(own / (own + other).clamp(min=1)),
        "steps": float(steps),
        "seconds": time.time() - start,
    }
