"""The Negotiation Game of Advantage Alignment (continuous proposals), batched (environments.md 4).

A social-dilemma version of Cao et al.'s negotiation game with public values and one-shot
simultaneous proposals. Every step is a complete round:
- the pool holds 1 unit of each of 3 item types;
- per item, player 0 values it at 5 or 1 (fair coin) and player 1 at 6 minus that, so exactly one of
  them values each item highly; utilities are drawn afresh every round and are public;
- each player proposes p^i in [0, 5]^3 (how much of each item it demands);
- "divide_when_above": player i gets the fraction p^i / max(p^0 + p^1, 5) of each item, so demands
  summing below 5 waste the rest and demands above 5 are scaled down proportionally;
- reward r^i = sum_items fraction^i * pool * u^i / 15 (u_max * n_items), in [0, 1].
Reference levels (derived): both demand everything ("Always-Defect") -> 0.30 each in expectation;
both take only their own high-value items ("Always-Cooperate") -> 0.50 each.

Observation of seat i (15 values, "raw" mode divided by 10): item pool (3), own utilities (3), own
previous proposal (3), other's utilities (3), other's previous proposal (3). The utilities shown are
the ones of the round about to be played; previous proposals are zeros in the first round.
"""

from __future__ import annotations

import torch
from torch import Tensor

NUM_ITEMS = 3
MAX_PROPOSAL = 5.0
REWARD_NORMALISER = 15.0  # u_max * n_items


class NegotiationGame:
    """Batched Negotiation Game. reset(B) -> obs [B, 2, 15]; step(proposals [B, 2, 3] in [0, 5]) ->
    obs, rewards [B, 2], done [B], info {"t", "allocations" [B, 2, 3], "utilities" [B, 2, 3]}."""

    obs_size = 15

    def __init__(
        self, *, episode_length: int = 50, device: str | torch.device = "cpu", seed: int = 0
    ) -> None:
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.batch_size = 0
        self.t = 0

    def sample_utility_draws(self, batch_size: int) -> Tensor:
        """[B, 3] bool: does player 0 value item j at 5 (player 1 then at 1)."""
        return torch.rand(batch_size, NUM_ITEMS, generator=self.generator, device=self.device) < 0.5

    def _set_utilities(self, first_values_high: Tensor) -> None:
        first = torch.where(first_values_high.to(self.device), 5.0, 1.0)
        self.utilities = torch.stack([first, 6.0 - first], dim=1)  # [B, 2, 3]

    def reset(self, batch_size: int, *, utility_draws: Tensor | None = None) -> Tensor:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.t = 0
        self.item_pool = torch.ones(batch_size, NUM_ITEMS, device=self.device)
        self.previous_proposals = torch.zeros(batch_size, 2, NUM_ITEMS, device=self.device)
        if utility_draws is None:
            utility_draws = self.sample_utility_draws(batch_size)
        self._set_utilities(utility_draws)
        return self.observation()

    def observation(self) -> Tensor:
        """[B, 2, 15]: per seat pool, own u, own last proposal, other's u and proposal, / 10."""
        pool = self.item_pool.unsqueeze(1).expand(-1, 2, -1)
        other_utilities = self.utilities.flip(1)
        other_proposals = self.previous_proposals.flip(1)
        parts = [pool, self.utilities, self.previous_proposals, other_utilities, other_proposals]
        return torch.cat(parts, dim=-1) / 10.0

    def step(
        self, proposals: Tensor, *, utility_draws: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, dict]:
        """Play one round; utility_draws [B, 3] bool (tests only) set the next round's utilities."""
        if self.batch_size == 0:
            raise RuntimeError("call reset(batch_size) before step")
        if self.t >= self.episode_length:
            raise RuntimeError(f"episode finished after {self.episode_length} steps; call reset")
        expected = (self.batch_size, 2, NUM_ITEMS)
        if not isinstance(proposals, Tensor) or proposals.shape != expected:
            shape = tuple(proposals.shape) if isinstance(proposals, Tensor) else type(proposals)
            raise ValueError(
                f"proposals must be a tensor of shape [{self.batch_size}, 2, 3], got {shape}"
            )
        if not torch.is_floating_point(proposals):
            raise ValueError(f"proposals must be a float tensor, got {proposals.dtype}")
        if not bool(((proposals >= 0) & (proposals <= MAX_PROPOSAL)).all()):
            raise ValueError("proposals must be in [0, 5] (and not NaN)")
        proposals = proposals.to(self.device)
        # divide_when_above: fractions p^i / max(p^0 + p^1, 5), feasible by construction.
        total_demand = proposals.sum(dim=1, keepdim=True).clamp(min=MAX_PROPOSAL)  # [B, 1, 3]
        allocations = proposals / total_demand  # [B, 2, 3]
        pool = self.item_pool.unsqueeze(1)
        rewards = (allocations * pool * self.utilities).sum(dim=-1) / REWARD_NORMALISER  # [B, 2]
        info = {"t": self.t, "allocations": allocations, "utilities": self.utilities}
        self.previous_proposals = proposals
        if utility_draws is None:
            utility_draws = self.sample_utility_draws(self.batch_size)
        self._set_utilities(utility_draws)
        self.t += 1
        done = torch.full((self.batch_size,), self.t >= self.episode_length, device=self.device)
        return self.observation(), rewards, done, info
