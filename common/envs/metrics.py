"""Metrics the opponent-shaping papers report (environments.md 3.2; LOQA/AA figures).

- reward per step: mean reward per player per time step;
- own-coin fraction: pickups of one's own coins / all of one's pickups (1.0 = cooperative, ~0.5
  greedy);
- pickups per step; cooperation probabilities of a memory-1 IPD policy per state.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from common.envs.matrix_games import STATE_NAMES


def reward_per_step(rewards: Tensor) -> Tensor:
    """Mean reward per player per step: rewards [..., P] (e.g. [B, T, 2]) -> [P]."""
    if rewards.ndim < 1:
        raise ValueError("rewards must have a trailing player dimension, e.g. [B, T, 2]")
    return rewards.float().reshape(-1, rewards.shape[-1]).mean(dim=0)


def own_coin_fraction(own_pickups: Tensor, other_pickups: Tensor) -> float:
    """sum(own) / (sum(own) + sum(other)) over all entries given (slice a player for one seat).

    NaN-safe: returns float("nan") when there were no pickups at all, instead of dividing by zero or
    reporting 0 (which would read as "fully greedy").
    """
    if own_pickups.shape != other_pickups.shape:
        raise ValueError(
            f"own and other pickups must have the same shape, got {tuple(own_pickups.shape)} "
            f"and {tuple(other_pickups.shape)}"
        )
    own, other = float(own_pickups.float().sum()), float(other_pickups.float().sum())
    total = own + other
    return own / total if total > 0 else math.nan


def pickups_per_step(own_pickups: Tensor, other_pickups: Tensor) -> Tensor:
    """Coins taken per step by each player: [..., P] -> [P]."""
    return reward_per_step(own_pickups.float() + other_pickups.float())


def coin_game_summary(rewards: Tensor, own_pickups: Tensor, other_pickups: Tensor) -> dict:
    """Flat dict of the usual Coin Game statistics from [B, T, 2] episode tensors (per seat)."""
    per_step = reward_per_step(rewards)
    pickups = pickups_per_step(own_pickups, other_pickups)
    summary = {}
    for seat in (0, 1):
        summary[f"reward_per_step_{seat}"] = float(per_step[seat])
        summary[f"own_coin_fraction_{seat}"] = own_coin_fraction(
            own_pickups[..., seat], other_pickups[..., seat]
        )
        summary[f"pickups_per_step_{seat}"] = float(pickups[seat])
        summary[f"other_coin_pickups_per_step_{seat}"] = float(
            other_pickups[..., seat].float().mean()
        )
    return summary


def cooperation_probabilities(p: Tensor) -> dict:
    """P(C) per memory-1 state: p [5] -> {"start", "CC", "CD", "DC", "DD"} (floats; [B, 5]: [B])."""
    if p.shape[-1] != 5:
        raise ValueError(f"p must have shape [5] or [B, 5], got {tuple(p.shape)}")
    p = p.detach()
    if p.ndim == 1:
        return {name: float(p[i]) for i, name in enumerate(STATE_NAMES)}
    return {name: p[..., i] for i, name in enumerate(STATE_NAMES)}


def cooperation_probabilities_from_logits(theta: Tensor) -> dict:
    """cooperation_probabilities(sigmoid(theta))."""
    return cooperation_probabilities(torch.sigmoid(theta))
