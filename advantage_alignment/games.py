"""Playing the games: batched rollouts of learned agents and scripted bots, and the IPD's exact metrics.

A player is a LearnedPlayer (an Agent run on stacked parameters [K, ...], each of the K parameter sets
playing one contiguous slice of B/K episodes) or a BotPlayer (a scripted policy of common.envs.agents).
Rollouts return batch-first tensors: obs [B, T+1, 2, D], samples [B, T, 2(, 3)], rewards [B, T, 2].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from advantage_alignment.networks import (
    Agent,
    Params,
    clamp_beta_sample,
    split_params,
    to_env_action,
)
from common.envs import CoinGame, IteratedPrisonersDilemma, NegotiationGame
from common.envs.agents import (
    coin_always_cooperate,
    coin_always_defect,
    coin_random,
    negotiation_always_cooperate,
    negotiation_always_defect,
    negotiation_random,
)
from common.envs.ipd import state_index
from common.envs.matrix_games import average_reward_finite_horizon

BOTS: dict[str, dict[str, Callable]] = {
    "coin": {
        "always_cooperate": coin_always_cooperate,
        "always_defect": coin_always_defect,
        "random": coin_random,
    },
    "negotiation": {
        "always_cooperate": lambda obs, gen: negotiation_always_cooperate(obs),
        "always_defect": lambda obs, gen: negotiation_always_defect(obs),
        "random": negotiation_random,
    },
}


def make_env(cfg, seed: int, device: torch.device | str = "cpu"):
    length = cfg.env.episode_length
    if cfg.env.game == "ipd":
        return IteratedPrisonersDilemma(episode_length=length, device=device, seed=seed)
    if cfg.env.game == "coin":
        return CoinGame(
            grid_size=cfg.env.grid_size, episode_length=length, device=device, seed=seed
        )
    return NegotiationGame(episode_length=length, device=device, seed=seed)


def obs_dim(cfg) -> int:
    return 4 * cfg.env.grid_size**2 if cfg.env.game == "coin" else NegotiationGame.obs_size


def make_agent(cfg) -> Agent:
    kind, action_dim = ("categorical", 4) if cfg.env.game == "coin" else ("beta", 3)
    return Agent(kind, obs_dim(cfg), action_dim, cfg.model.hidden, cfg.model.critic_hidden)


class LearnedPlayer:
    """An agent's policy on stacked parameters (None: its own, K = 1)."""

    def __init__(self, agent: Agent, params: Params | None, generator: torch.Generator):
        self.agent, self.generator = agent, generator
        self.params = split_params(params, "actor") if params is not None else agent.actor.params()
        self.k = next(iter(self.params.values())).shape[0]
        self.carry = None

    def act(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """obs [B, D] -> (env action, raw sample); the carry persists over the episode."""
        batch = obs.shape[0]
        x = obs.view(self.k, batch // self.k, -1)
        if self.carry is None:
            self.carry = self.agent.actor.initial_carry(self.k, batch // self.k, x)
        out, self.carry = self.agent.actor.step(x, self.carry, self.params)
        dist = self.agent.distribution(out.reshape(batch, -1))
        if self.agent.kind == "categorical":
            probs = dist.probs
            sample = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        else:  # torch's Gamma sampler takes no generator: the global RNG (seeded, checkpointed)
            sample = clamp_beta_sample(dist.sample())
        return to_env_action(self.agent.kind, sample), sample


class BotPlayer:
    def __init__(self, fn: Callable, generator: torch.Generator):
        self.fn, self.generator = fn, generator

    def act(self, obs: Tensor) -> tuple[Tensor, None]:
        return self.fn(obs, self.generator), None


@torch.no_grad()
def rollout(env, players: tuple, batch_size: int) -> dict[str, Tensor]:
    """Play one batch of episodes of the Coin Game or the Negotiation Game; players = (seat 0, seat 1)."""
    for player in players:
        if isinstance(player, LearnedPlayer):
            player.carry = None
    obs = env.reset(batch_size)
    coin = isinstance(env, CoinGame)
    spatial = obs  # bots of the Coin Game read the [B, 4, H, W] planes
    obs = obs.reshape(batch_size, 2, -1)
    record: dict[str, list] = {"obs": [obs], "samples": [], "rewards": [], "own": [], "other": []}
    for _ in range(env.episode_length):
        actions, samples = [], []
        for seat, player in enumerate(players):
            seat_obs = spatial[:, seat] if coin and isinstance(player, BotPlayer) else obs[:, seat]
            action, sample = player.act(seat_obs)
            actions.append(action)
            samples.append(action if sample is None else sample)
        spatial, rewards, _, info = env.step(torch.stack(actions, 1))
        obs = spatial.reshape(batch_size, 2, -1)
        record["obs"].append(obs)
        record["samples"].append(torch.stack(samples, 1))
        record["rewards"].append(rewards)
        if coin:
            record["own"].append(info["own_coin_pickups"])
            record["other"].append(info["other_coin_pickups"])
    return {k: torch.stack(v, 1) for k, v in record.items() if v}


def match_summary(batch: dict[str, Tensor]) -> dict[str, float]:
    """Reward per step of each seat and (Coin Game) own-coin fractions."""
    out = {}
    for seat in (0, 1):
        out[f"reward_{seat}"] = float(batch["rewards"][..., seat].mean())
        if "own" in batch:
            own, other = batch["own"][..., seat].sum(), batch["other"][..., seat].sum()
            out[f"own_coin_fraction_{seat}"] = (
                float(own / (own + other)) if own + other > 0 else 0.5
            )
    return out


def play_match(env, players: tuple, episodes: int) -> dict[str, float]:
    return match_summary(rollout(env, players, episodes))


# ------------------------------------------------------------------------------------------- IPD
IPD_BOTS = {
    "always_cooperate": torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0]),
    "always_defect": torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0]),
    "random": torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5]),
    "tit_for_tat": torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0]),
}


def ipd_exact_rewards(p1: Tensor, p2: Tensor, horizon: int) -> tuple[float, float]:
    """Exact expected reward per step over `horizon` steps of two memory-1 policies (P(C | state))."""
    r1, r2 = average_reward_finite_horizon(p1.double(), p2.double(), horizon=horizon)
    return float(r1), float(r2)


def ipd_sample_episodes(env, policies, batch_size: int, epsilon: float, generator) -> dict:
    """Sampled IPD episodes of two tabular policies: own-view states, actions, rewards [B, T, 2]."""
    obs = env.reset(batch_size)
    states, actions, rewards = [], [], []
    for _ in range(env.episode_length):
        s = state_index(obs)  # [B, 2] own-view memory-1 states
        p_defect = torch.stack(
            [torch.sigmoid(pol.logits.detach())[s[:, i]] for i, pol in enumerate(policies)], 1
        )
        a = (torch.rand(batch_size, 2, generator=generator) < p_defect).long()
        if epsilon > 0:
            explore = torch.rand(batch_size, 2, generator=generator) < epsilon
            a = torch.where(explore, torch.randint(0, 2, (batch_size, 2), generator=generator), a)
        obs, r, _, _ = env.step(a)
        states.append(s)
        actions.append(a)
        rewards.append(r)
    states.append(state_index(obs))
    return {
        "states": torch.stack(states, 1),  # [B, T+1, 2]
        "actions": torch.stack(actions, 1),
        "rewards": torch.stack(rewards, 1),
    }
