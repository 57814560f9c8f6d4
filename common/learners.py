"""Gradient-based learners for differentiable two-player games: naive, LOLA, HOLA-n and SOS.

A game is a function ``returns(x_me, x_other) -> (f_me, f_other)``: each player's (differentiable) return
of the joint parameters, batched over leading dims, written from the point of view of the player whose
parameters come first. ``swap_seats(returns)`` gives the other player's view. Every learner here is
``step(x_me, x_other, returns, lr) -> x_me_next``: one update of the first player's parameters,
detached; both players update simultaneously from the same joint parameters.

    naive            x + lr * grad_x f_me(x, y)                                      (gradient ascent)
    lookahead order 1 = exact LOLA  (Foerster et al. 2018, arXiv 1709.04326, eq. 4 before its Taylor
                     expansion): x + lr * grad_x f_me(x, y + lr * grad_y f_other(x, y)), differentiated
                     through the opponent's naive step (second order, by autograd)
    lookahead order n = HOLA-n (higher-order LOLA, arXiv 1709.04326 sec. 3 / COLA arXiv 2210.06214):
                     the opponent's step is itself a look-ahead of order n - 1 at us
    sos              Stable Opponent Shaping (Letcher et al. 2019, arXiv 1811.08469, Algorithm 1):
                     first-order LOLA with the shaping term scaled by p so that it never opposes the
                     look-ahead gradient; a joint update, of which each SOS player takes its own block

COLA (arXiv 2210.06214) learns its update functions with a neural network over the whole parameter
space; it is not a closed-form step and is not provided here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Returns = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
Learner = Callable[[Tensor, Tensor, Returns, float], Tensor]


def swap_seats(returns: Returns) -> Returns:
    """The same game seen from the other player: ``(x_other, x_me) -> (f_other, f_me)``."""

    def swapped(x_me: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
        f_other, f_me = returns(x_other, x_me)
        return f_me, f_other

    return swapped


def _grad(value: Tensor, wrt: Tensor, create_graph: bool) -> Tensor:
    """d(sum of the batch of values)/d wrt: each batch row is its own game, so this is per row."""
    return torch.autograd.grad(value.sum(), wrt, create_graph=create_graph)[0]


def _leaves(x_me: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
    return x_me.detach().requires_grad_(True), x_other.detach().requires_grad_(True)


def naive(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float) -> Tensor:
    """Naive learner: one step of gradient ascent on its own return, the opponent held fixed."""
    x_me, x_other = _leaves(x_me, x_other)
    return (x_me + lr * _grad(returns(x_me, x_other)[0], x_me, False)).detach()


def _lookahead_step(
    x_me: Tensor, x_other: Tensor, returns: Returns, lr: float, order: int
) -> Tensor:
    """x_me's step of the given order, kept differentiable in both players' parameters."""
    if order == 0:
        other_next = x_other  # a naive learner assumes the opponent stands still
    else:
        # The opponent's own step of one order less, which looks ahead at us (HOLA recursion).
        other_next = _lookahead_step(x_other, x_me, swap_seats(returns), lr, order - 1)
    f_me = returns(x_me, other_next)[0]
    return x_me + lr * _grad(f_me, x_me, True)


def lookahead(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float, order: int = 1) -> Tensor:
    """Look-ahead learner: order 0 = naive, 1 = exact LOLA, n >= 2 = HOLA-n (see the module doc)."""
    if order < 0:
        raise ValueError(f"look-ahead order must be >= 0, got {order}")
    x_me, x_other = _leaves(x_me, x_other)
    return _lookahead_step(x_me, x_other, returns, lr, order).detach()


def lola(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float) -> Tensor:
    """Exact LOLA: ascend f_me(x, y + lr grad_y f_other(x, y)), differentiating through the opponent's step."""
    return lookahead(x_me, x_other, returns, lr, order=1)


def hola(order: int) -> Learner:
    """HOLA-``order`` as a learner (order 2 looks ahead through an opponent that is itself LOLA)."""

    def step(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float) -> Tensor:
        return lookahead(x_me, x_other, returns, lr, order=order)

    step.__name__ = f"hola{order}"
    return step


def sos_direction(
    x1: Tensor, x2: Tensor, returns: Returns, lr: float, a: float = 0.5, b: float = 0.1
) -> tuple[Tensor, dict[str, Tensor]]:
    """The joint SOS descent direction (arXiv 1811.08469, Algorithm 1) for two players maximising their
    returns, and its terms {xi, xi_0, chi, p} (per batch row; the players' blocks concatenated).

    With losses L_i = -f_i, xi = (grad_1 L1, grad_2 L2), the off-diagonal Hessian H_o and the shaping
    term chi = diag(H_o^T grad L):
        xi_0 = xi - lr H_o xi                      (look-ahead part of first-order LOLA)
        p    = min(p1, p2), p1 keeps <xi_0 - p lr chi, xi_0> >= (1 - a) |xi_0|^2, p2 = |xi|^2 if |xi| < b
        direction = xi_0 - p lr chi                (p = 1 is first-order LOLA for both players)
    """
    x1, x2 = _leaves(x1, x2)
    f1, f2 = returns(x1, x2)
    loss1, loss2 = -f1, -f2
    g11, g12 = torch.autograd.grad(loss1.sum(), (x1, x2), create_graph=True)
    g21, g22 = torch.autograd.grad(loss2.sum(), (x1, x2), create_graph=True)
    # H_o xi: player 1's row is grad_1 (grad_2 L1 . xi_2), with xi_2 = grad_2 L2 held constant.
    h_xi_1 = _grad((g12 * g22.detach()).sum(-1), x1, True)
    h_xi_2 = _grad((g21 * g11.detach()).sum(-1), x2, True)
    # chi: player 1's row is grad_1 (grad_2 L2 . grad_2 L1), the opponent-shaping term.
    chi_1 = _grad((g22 * g12.detach()).sum(-1), x1, True)
    chi_2 = _grad((g11 * g21.detach()).sum(-1), x2, True)
    xi = torch.cat([g11, g22], dim=-1).detach()
    xi_0 = xi - lr * torch.cat([h_xi_1, h_xi_2], dim=-1).detach()
    chi = torch.cat([chi_1, chi_2], dim=-1).detach()
    # p1: shrink the shaping term only where it points against xi_0.
    dot = (-lr * chi * xi_0).sum(-1)
    p1 = torch.where(
        dot >= 0,
        torch.ones_like(dot),
        torch.clamp(-a * (xi_0 * xi_0).sum(-1) / dot.clamp(max=-1e-30), max=1.0),
    )
    # p2: near a fixed point (|xi| < b) fade the shaping out so that SOS converges there.
    xi_norm2 = (xi * xi).sum(-1)
    p2 = torch.where(xi_norm2.sqrt() < b, xi_norm2, torch.ones_like(xi_norm2))
    p = torch.minimum(p1, p2)
    direction = xi_0 - p.unsqueeze(-1) * lr * chi
    return direction, {"xi": xi, "xi_0": xi_0, "chi": chi, "p": p}


def sos_joint_update(
    x1: Tensor, x2: Tensor, returns: Returns, lr: float, a: float = 0.5, b: float = 0.1
) -> tuple[Tensor, Tensor]:
    """Both players' next parameters under SOS: x <- x - lr * sos_direction."""
    direction = sos_direction(x1, x2, returns, lr, a, b)[0]
    n1 = x1.shape[-1]
    return (x1 - lr * direction[..., :n1]).detach(), (x2 - lr * direction[..., n1:]).detach()


def sos(x_me: Tensor, x_other: Tensor, returns: Returns, lr: float) -> Tensor:
    """An SOS player: its own block of the joint SOS step (as if both players used SOS)."""
    return sos_joint_update(x_me, x_other, returns, lr)[0]


LEARNERS: dict[str, Learner] = {
    "naive": naive,
    "lola": lola,
    "hola2": hola(2),
    "hola3": hola(3),
    "sos": sos,
}


def play(
    learner_1: Learner,
    learner_2: Learner,
    x1: Tensor,
    x2: Tensor,
    returns: Returns,
    lr: float,
    iterates: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Both players update simultaneously for ``iterates`` steps from (x1, x2).

    Returns the final parameters and each player's return at every iterate 0..iterates: f1, f2 of shape
    ``[iterates + 1, *batch]``.
    """
    if iterates < 0:
        raise ValueError(f"iterates must be >= 0, got {iterates}")
    other_view = swap_seats(returns)
    history_1, history_2 = [], []
    for _ in range(iterates):
        with torch.no_grad():
            f1, f2 = returns(x1, x2)
        history_1.append(f1)
        history_2.append(f2)
        x1, x2 = learner_1(x1, x2, returns, lr), learner_2(x2, x1, other_view, lr)
    with torch.no_grad():
        f1, f2 = returns(x1, x2)
    history_1.append(f1)
    history_2.append(f2)
    return x1, x2, torch.stack(history_1), torch.stack(history_2)
