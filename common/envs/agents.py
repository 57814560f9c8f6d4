"""Scripted opponents for the IPD, the Coin Game and the Negotiation Game (environments.md 6).

IPD bots are memory-1 probability vectors P(C | start, CC, CD, DC, DD) from the bot's own
perspective, played with `ipd_act`; Grim Trigger needs more than one step of memory and is a small
stateful class.
Coin Game bots read the egocentric observation of their own seat, so they play either seat:
Always-Defect walks to the coin whatever its owner; Always-Cooperate walks to its own coin and steps
away (maximising toroidal distance) from the other's; ties are broken uniformly at random each step.
(The authors' bots shuffle ties with one key for the whole episode; per-step ties change nothing in
expectation for the reference values and keep the bots stateless.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.envs.coin_game import MOVES
from common.envs.ipd import state_index

# ------------------------------------------------------------------------------------------ IPD
IPD_ALWAYS_COOPERATE = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
IPD_ALWAYS_DEFECT = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0])
IPD_TIT_FOR_TAT = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])  # copy the opponent's last action
IPD_RANDOM = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])


def ipd_act(p: Tensor, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Sample actions [B] (0 = C, 1 = D) of memory-1 policies p ([5] or [B, 5]) from obs [B, 4]."""
    if p.shape[-1] != 5 or p.ndim > 2:
        raise ValueError(f"p must have shape [5] or [B, 5], got {tuple(p.shape)}")
    states = state_index(obs)  # [B]
    p = p.to(obs.device, torch.float32).expand(states.shape[0], 5)
    prob_cooperate = p.gather(1, states.unsqueeze(1)).squeeze(1)
    uniform = torch.rand(states.shape[0], generator=generator, device=obs.device)
    return (uniform >= prob_cooperate).long()


class IPDGrimTrigger:
    """Cooperates until the opponent defects once, then defects for the rest of the episode."""

    def reset(self, batch_size: int, device: str | torch.device = "cpu") -> None:
        self.triggered = torch.zeros(batch_size, dtype=torch.bool, device=device)

    def act(self, obs: Tensor) -> Tensor:
        """obs [B, 4] of this bot's seat -> actions [B]."""
        self.triggered = self.triggered | (obs[:, 3] > 0)
        return self.triggered.long()


# ------------------------------------------------------------------------------------ Coin Game
def _coin_distances_after_moves(obs: Tensor) -> tuple[Tensor, Tensor]:
    """Toroidal L1 distance to the coin after each of the 4 moves [B, 4], and "coin is mine" [B]."""
    if obs.ndim != 4 or obs.shape[1] != 4:
        raise ValueError(f"coin bot obs must have shape [B, 4, H, W], got {tuple(obs.shape)}")
    batch, _, height, width = obs.shape
    flat = obs.reshape(batch, 4, height * width)
    my_cell = flat[:, 0].argmax(dim=1)
    coin_cell = (flat[:, 2] + flat[:, 3]).argmax(dim=1)
    coin_is_mine = flat[:, 2].amax(dim=1) > 0
    moves = torch.tensor(MOVES, device=obs.device)  # [4, 2]
    rows = (my_cell // width).unsqueeze(1) + moves[:, 0]  # [B, 4]
    cols = (my_cell % width).unsqueeze(1) + moves[:, 1]
    drow = (rows - (coin_cell // width).unsqueeze(1)).remainder(height)
    dcol = (cols - (coin_cell % width).unsqueeze(1)).remainder(width)
    distance = torch.minimum(drow, height - drow) + torch.minimum(dcol, width - dcol)
    return distance.float(), coin_is_mine


def _tie_noise(distance: Tensor, generator: torch.Generator | None) -> Tensor:
    # Distances are integers, so noise in [0, 0.5) only reorders ties, uniformly at random.
    return 0.5 * torch.rand(distance.shape, generator=generator, device=distance.device)


def coin_always_defect(obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Move to minimise the distance to the coin, whoever owns it. [B, 4, H, W] -> actions [B]."""
    distance, _ = _coin_distances_after_moves(obs)
    return (distance + _tie_noise(distance, generator)).argmin(dim=1)


def coin_always_cooperate(obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Approach the coin if it is mine, otherwise maximise the distance to it. -> actions [B]."""
    distance, coin_is_mine = _coin_distances_after_moves(obs)
    noisy = distance + _tie_noise(distance, generator)
    return torch.where(coin_is_mine, noisy.argmin(dim=1), noisy.argmax(dim=1))


def coin_random(obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform over the 4 moves. -> actions [B]."""
    return torch.randint(0, 4, (obs.shape[0],), generator=generator, device=obs.device)


# ---------------------------------------------------------------------------------- Negotiation
def negotiation_always_cooperate(obs: Tensor) -> Tensor:
    """Propose 5 on the items I value at 5 (the other at 1), 0 elsewhere. [B, 15] -> [B, 3]."""
    _check_negotiation_obs(obs)
    own_utilities, other_utilities = obs[:, 3:6], obs[:, 9:12]
    return torch.where(own_utilities > other_utilities, 5.0, 0.0)


def negotiation_always_defect(obs: Tensor) -> Tensor:
    """Demand 5 on every item. [B, 15] -> [B, 3]."""
    _check_negotiation_obs(obs)
    return torch.full((obs.shape[0], 3), 5.0, device=obs.device)


def negotiation_random(obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform proposals in [0, 5]. [B, 15] -> [B, 3]."""
    _check_negotiation_obs(obs)
    return 5.0 * torch.rand(obs.shape[0], 3, generator=generator, device=obs.device)


def _check_negotiation_obs(obs: Tensor) -> None:
    if obs.ndim != 2 or obs.shape[1] != 15:
        raise ValueError(f"negotiation obs must have shape [B, 15], got {tuple(obs.shape)}")
