"""Meta-Value Learning (MeVa; Cooijmans, Aghajohari, Courville, arXiv 2307.08863).

The meta-value of a joint policy x = (x_1, x_2) is the discounted sum of the game's returns along the
optimisation trajectory that follows when every player ascends its own meta-value (Sec. 3, eq. 2-3):

    V_i(x) = f_i(x) + gamma * V_i(x'),        x' = x + alpha * (grad_{x_1} V_1(x), grad_{x_2} V_2(x))

gamma (the *meta*-discount) -> 0 gives back naive gradient ascent. The network learns only the future
part, V_i = f_i + U_i (the "Bellman equation for U", Sec. 4.1), so the known immediate return keeps the
update grounded in the game, and U is fitted by TD learning on simulated optimisation (Algorithm 1):

    x'      = x + alpha * grad_own (f + U_theta)(x)                       (greedy meta-policy, Sec. 3.2)
    target  = gamma * (f(x') + U_target(x'))                              (stop-gradient, EMA target)
    loss    = (U_theta(x) - target)^2, for both seats (player symmetry: U_2(x_1, x_2) = U(x_2, x_1))

Exploration (Sec. 4.3): part of the simulated trajectories move with noise on U's final layer; the TD
targets always come from the unperturbed step. Reconstructed choices (the paper's details were not
available to us) are listed in README.md: the input is sigmoid(logits) of both players, the step is
taken on the unnormalised return so that U = 0 is exactly the naive learner with lr alpha.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.learners import Learner, Returns
from meva.games import Game


class MetaValue(nn.Module):
    """U_theta(x_me, x_other): the learned future part of the first player's per-step meta-value."""

    def __init__(self, n_params: int, hidden: int = 64, layers: int = 2):
        super().__init__()
        widths = [2 * n_params] + [hidden] * layers
        body: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            body += [nn.Linear(width_in, width_out), nn.SiLU()]  # smooth: U is differentiated in x
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(hidden, 1)  # the final layer, which exploration perturbs (Sec. 4.3)

    def forward(
        self, x_me: Tensor, x_other: Tensor, head_noise: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """U for each batch row, [B]. ``head_noise`` = (dw [B, hidden], db [B]) perturbs the final layer
        row by row (an exploring meta-policy)."""
        h = self.body(torch.cat([torch.sigmoid(x_me), torch.sigmoid(x_other)], dim=-1))
        weight, bias = self.head.weight[0], self.head.bias[0]
        if head_noise is None:
            return h @ weight + bias
        dw, db = head_noise
        return (h * (weight + dw)).sum(-1) + bias + db


def sample_head_noise(
    value: MetaValue, batch: int, std: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Gaussian perturbations of the final layer, one per batch row (exploration, Sec. 4.3)."""
    weight = value.head.weight
    dw = torch.randn(batch, weight.shape[1], generator=generator, dtype=weight.dtype) * std
    db = torch.randn(batch, generator=generator, dtype=weight.dtype) * std
    return dw, db


def meta_values(
    game: Game, value: MetaValue, x1: Tensor, x2: Tensor, noise=(None, None)
) -> tuple[Tensor, Tensor]:
    """Per-step meta-value estimates V_i = f_i + U(x_i, x_-i) of both players (Sec. 4.1)."""
    f1, f2 = game.per_step(x1, x2)
    return f1 + value(x1, x2, noise[0]), f2 + value(x2, x1, noise[1])


def meva_step(
    game: Game, value: MetaValue, x1: Tensor, x2: Tensor, lr: float, noise=(None, None)
) -> tuple[Tensor, Tensor]:
    """Both players' greedy meta-policy: a gradient step on their own meta-value (Sec. 3.2).

    The step is alpha * horizon * grad_own (f + U), i.e. lr alpha on the unnormalised return, so that
    with U = 0 this is exactly the naive learner. Returns detached (x1', x2').
    """
    x1 = x1.detach().requires_grad_(True)
    x2 = x2.detach().requires_grad_(True)
    with torch.enable_grad():
        v1, v2 = meta_values(game, value, x1, x2, noise)
        # each player differentiates its own meta-value w.r.t. its own block only
        g1 = torch.autograd.grad(v1.sum(), x1, retain_graph=True)[0]
        g2 = torch.autograd.grad(v2.sum(), x2)[0]
    step = lr * game.horizon
    return (x1 + step * g1).detach(), (x2 + step * g2).detach()


@torch.no_grad()
def td_targets(
    game: Game,
    value: MetaValue,
    target: MetaValue,
    x1: Tensor,
    x2: Tensor,
    lr: float,
    meta_gamma: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """TD targets gamma * (f(x') + U_target(x')) for both seats, with x' the unperturbed MeVa step
    (the U-Bellman equation, Sec. 4.1). Returns (y1, y2, x1', x2')."""
    x1_next, x2_next = meva_step(game, value, x1, x2, lr)
    f1, f2 = game.per_step(x1_next, x2_next)
    y1 = meta_gamma * (f1 + target(x1_next, x2_next))
    y2 = meta_gamma * (f2 + target(x2_next, x1_next))
    return y1, y2, x1_next, x2_next


def td_loss(value: MetaValue, x1: Tensor, x2: Tensor, y1: Tensor, y2: Tensor) -> Tensor:
    """Mean squared TD error over both seats (one network, player symmetry)."""
    return 0.5 * ((value(x1, x2) - y1).pow(2).mean() + (value(x2, x1) - y2).pow(2).mean())


@torch.no_grad()
def ema_update(target: MetaValue, value: MetaValue, rate: float) -> None:
    """theta_target <- (1 - rate) theta_target + rate theta (the slowly moving TD target)."""
    for p_target, p in zip(target.parameters(), value.parameters()):
        p_target.lerp_(p, rate)


def meva_learner(value: MetaValue, horizon: float) -> Learner:
    """MeVa as a ``common.learners`` learner: ascend returns_me + horizon * U(x_me, x_other).

    ``returns`` are unnormalised (per-step * horizon) as for the baseline learners, so one lr serves all.
    """

    def step(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float) -> Tensor:
        x_me = x_me.detach().requires_grad_(True)
        with torch.enable_grad():
            v_me = returns(x_me, x_other.detach())[0] + horizon * value(x_me, x_other.detach())
            grad = torch.autograd.grad(v_me.sum(), x_me)[0]
        return (x_me + lr * grad).detach()

    step.__name__ = "meva"
    return step
