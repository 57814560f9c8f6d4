"""Sampled Iterated Prisoner's Dilemma with memory-1 observations, batched (environments.md 1.2).

Both players act simultaneously each step: 0 = Cooperate, 1 = Defect. Seat i observes the previous
joint action from its own perspective as a one-hot 4-vector

    [I cooperated, I defected, other cooperated, other defected]      (all zeros at t = 0, "start")

Episodes have a fixed length (50 in the papers' runs); `done` is True on the step that reaches it,
and stepping a finished episode is an error (call reset). The dynamics are deterministic; `seed` is
kept for the common environment signature. Any 2x2 game of `matrix_games.GAMES` can be played in
place of the PD.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.envs._checks import check_discrete_actions
from common.envs.matrix_games import payoffs

COOPERATE, DEFECT = 0, 1


def state_index(obs: Tensor) -> Tensor:
    """Memory-1 state of an own-view observation [B, 4] -> [B] in 0..4 (start, CC, CD, DC, DD)."""
    if obs.ndim < 1 or obs.shape[-1] != 4:
        raise ValueError(f"IPD observation must have shape [B, 4], got {tuple(obs.shape)}")
    started = obs[..., 0] + obs[..., 1]  # 1 after the first step, 0 at the start
    # my_defected * 2 + other_defected enumerates CC, CD, DC, DD as 0..3.
    joint = 2 * obs[..., 1] + obs[..., 3]
    return torch.where(started > 0, 1 + joint, torch.zeros_like(joint)).long()


class IteratedPrisonersDilemma:
    """Batched memory-1 IPD: reset(B) -> obs [B, 2, 4]; step(actions [B, 2]) -> obs, rewards, ..."""

    num_actions = 2
    obs_size = 4

    def __init__(
        self,
        *,
        episode_length: int = 50,
        game: str = "ipd",
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        self.device = torch.device(device)
        self.game = game
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        r1, r2 = payoffs(game, like=torch.empty(0, device=self.device))
        # payoff[a1, a2] -> [r1, r2]; joint index 2 * a1 + a2 matches the [CC, CD, DC, DD] order.
        self.payoff_table = torch.stack([r1, r2], dim=-1)  # [4, 2]
        self.batch_size = 0
        self.t = 0
        self.last_actions: Tensor | None = None  # [B, 2], None at the start

    def reset(self, batch_size: int) -> Tensor:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.t = 0
        self.last_actions = None
        return torch.zeros(batch_size, 2, 4, device=self.device)

    def observation(self) -> Tensor:
        """[B, 2, 4] own-perspective one-hot of the previous joint action (zeros at the start)."""
        if self.last_actions is None:
            return torch.zeros(self.batch_size, 2, 4, device=self.device)
        own = self.last_actions  # [B, 2]
        other = own.flip(-1)
        return torch.cat(
            [torch.nn.functional.one_hot(own, 2), torch.nn.functional.one_hot(other, 2)], dim=-1
        ).float()

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, dict]:
        if self.batch_size == 0:
            raise RuntimeError("call reset(batch_size) before step")
        if self.t >= self.episode_length:
            raise RuntimeError(f"episode finished after {self.episode_length} steps; call reset")
        check_discrete_actions(actions, self.batch_size, self.num_actions, "actions (0=C, 1=D)")
        actions = actions.to(self.device).long()
        rewards = self.payoff_table[2 * actions[:, 0] + actions[:, 1]]  # [B, 2]
        self.last_actions = actions
        info = {"t": self.t}
        self.t += 1
        done = torch.full((self.batch_size,), self.t >= self.episode_length, device=self.device)
        return self.observation(), rewards, done, info

    @staticmethod
    def state_index(obs: Tensor) -> Tensor:
        return state_index(obs)
