"""Simulated optimisation trajectories that MeVa's value is trained on (Algorithm 1's inner loop).

``Rollouts`` keeps ``batch`` joint policies moving under the current greedy meta-policy. Resets are
staggered (trajectory b starts at iterate b * length // batch), so every TD update sees early and late
iterates alike. The first ``explore_fraction`` of the rows explore: they move with noise on U's final
layer, re-drawn at each reset (Sec. 4.3). All state is in ``state_dict`` so a resumed run is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor

from meva.games import Game
from meva.model import MetaValue, meva_step, sample_head_noise


def random_logits(batch: int, n: int, generator: torch.Generator) -> Tensor:
    """Initial policies as in M-FOS: logits ~ N(0, 1), float64."""
    return torch.randn(batch, n, generator=generator, dtype=torch.float64)


class Rollouts:
    def __init__(
        self,
        game: Game,
        value: MetaValue,
        batch: int,
        length: int,
        explore_fraction: float,
        explore_std: float,
        generator: torch.Generator,
    ):
        self.game, self.value, self.length, self.generator = game, value, length, generator
        self.explore_std = explore_std
        self.x1 = random_logits(batch, game.n_params, generator)
        self.x2 = random_logits(batch, game.n_params, generator)
        self.t = torch.arange(batch) * length // batch  # staggered starts
        self.exploring = torch.arange(batch) < round(explore_fraction * batch)
        self.noise = self._draw_noise(batch)

    def _draw_noise(self, rows: int) -> list[Tensor]:
        (dw1, db1), (dw2, db2) = (
            sample_head_noise(self.value, rows, self.explore_std, self.generator) for _ in range(2)
        )
        return [dw1, db1, dw2, db2]

    def exploring_step(self, lr: float) -> tuple[Tensor, Tensor]:
        """The perturbed meta-policy's step for the exploring rows (their own noise per seat)."""
        rows = self.exploring
        dw1, db1, dw2, db2 = (n[rows] for n in self.noise)
        return meva_step(
            self.game, self.value, self.x1[rows], self.x2[rows], lr, ((dw1, db1), (dw2, db2))
        )

    def advance(self, x1_clean: Tensor, x2_clean: Tensor, x1_explore: Tensor, x2_explore: Tensor):
        """Move to the next iterate (exploring rows take the perturbed step); reset finished rows."""
        self.x1, self.x2 = x1_clean.clone(), x2_clean.clone()
        self.x1[self.exploring], self.x2[self.exploring] = x1_explore, x2_explore
        self.t += 1
        done = self.t >= self.length
        n_done = int(done.sum())
        if n_done:
            self.x1[done] = random_logits(n_done, self.game.n_params, self.generator)
            self.x2[done] = random_logits(n_done, self.game.n_params, self.generator)
            self.t[done] = 0
            for tensor, fresh in zip(self.noise, self._draw_noise(n_done)):
                tensor[done] = fresh

    def state_dict(self) -> dict[str, Tensor]:
        return {"x1": self.x1, "x2": self.x2, "t": self.t, "noise": list(self.noise)}

    def load_state_dict(self, state: dict) -> None:
        self.x1, self.x2, self.t = state["x1"], state["x2"], state["t"]
        self.noise = list(state["noise"])


def heldout_states(
    game: Game, pairs: int, length: int, every: int, lr: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Held-out joint policies for the TD error: naive-learning trajectories from N(0, 1) logits,
    every ``every``-th iterate, from a generator of their own (never seen in training)."""
    from common.learners import naive, play

    generator = torch.Generator().manual_seed(seed)
    x1 = random_logits(pairs, game.n_params, generator)
    x2 = random_logits(pairs, game.n_params, generator)
    states_1, states_2 = [], []
    for t in range(length):
        if t % every == 0:
            states_1.append(x1)
            states_2.append(x2)
        x1, x2, _, _ = play(naive, naive, x1, x2, game.returns, lr, 1)
    return torch.cat(states_1), torch.cat(states_2)
