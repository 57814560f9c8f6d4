"""The differentiable games MeVa is trained and evaluated on, as (x1, x2) -> per-step returns.

Each player's parameters are logits in its own perspective (common.envs.matrix_games), so one network
serves both seats by swapping the two blocks (no CD/DC remapping is needed).

    ipd      exact iterated Prisoner's Dilemma, 5 logits each, inner discount 0.96 (M-FOS setup)
    imp      exact iterated Matching Pennies, 5 logits each, zero-sum
    chicken  ONE-SHOT Chicken with a -100 crash, 1 logit each (M-FOS / MeVa, not pax's mild version)
    toy      OUR STAND-IN for the paper's Logistic Game (whose payoffs we do not have): a one-shot stag
             hunt with 1 logit each, payoffs CC 4, CD 0, DC 3, DD 2 (row player's). Defecting pays
             unless the other cooperates with probability > 2/3, so naive learners from p ~ 0.5 slide
             to the poor equilibrium DD while CC pays both more.

Learners step on the *unnormalised* return (``per_step * horizon``, horizon = 1 / (1 - gamma) for the
repeated games, 1 for one-shot ones) with lr alpha = 1, the M-FOS convention (its environments.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from common.envs.matrix_games import exact_return_from_logits, one_shot_expected_reward

TOY_PAYOFFS = (torch.tensor([4.0, 0.0, 3.0, 2.0]), torch.tensor([4.0, 3.0, 0.0, 2.0]))
GAME_NAMES = ("ipd", "imp", "chicken", "toy")


@dataclass(frozen=True)
class Game:
    name: str
    n_params: int  # logits per player
    inner_gamma: float  # discount of the repeated game (0 for one-shot games)

    @property
    def horizon(self) -> float:
        """Unnormalised return / per-step return: 1 / (1 - gamma), or 1 for a one-shot game."""
        return 1.0 / (1.0 - self.inner_gamma)

    def per_step(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Each player's expected reward per step, (f1 [B], f2 [B]), differentiable in x1, x2 [B, n]."""
        if x1.shape[-1] != self.n_params or x2.shape[-1] != self.n_params:
            raise ValueError(
                f"{self.name} takes [B, {self.n_params}] logits per player, "
                f"got {tuple(x1.shape)} and {tuple(x2.shape)}"
            )
        if self.name in ("ipd", "imp"):
            return exact_return_from_logits(x1, x2, game=self.name, gamma=self.inner_gamma)
        payoffs = "chicken_mfos" if self.name == "chicken" else TOY_PAYOFFS
        return one_shot_expected_reward(
            torch.sigmoid(x1[..., 0]), torch.sigmoid(x2[..., 0]), game=payoffs
        )

    def returns(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Unnormalised returns: what the learners (lr 1) ascend."""
        f1, f2 = self.per_step(x1, x2)
        return self.horizon * f1, self.horizon * f2


def make_game(name: str, inner_gamma: float = 0.96) -> Game:
    if name not in GAME_NAMES:
        raise ValueError(f"unknown game {name!r}; expected one of {', '.join(GAME_NAMES)}")
    if name in ("ipd", "imp"):
        return Game(name, 5, inner_gamma)
    return Game(name, 1, 0.0)
