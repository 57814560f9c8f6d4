"""Repeated 2x2 matrix games in exact, differentiable form (M-FOS / MeVa / LOLA setup).

Each player has a memory-1 policy: five probabilities of cooperating, in the start state and after
each previous joint action, *from its own perspective* (first letter = my last action):

    p = [P(C | start), P(C | CC), P(C | CD), P(C | DC), P(C | DD)]

Joint actions are ordered [CC, CD, DC, DD] with player 1's action first (environments.md section
1.3). For player 2 the global state CD ("player 1 cooperated, player 2 defected") is its own DC, so
its CD and DC entries are swapped when the chain is built.

The repeated game is a Markov chain over the four joint actions:

    p0[s]   = P(first joint action = s)                            (initial distribution)
    P[s, s'] = P(next joint action = s' | last joint action = s)     (transition matrix)
    V^i     = p0^T (I - gamma P)^{-1} r^i                          (exact discounted return)

Everything is batched over policy pairs (leading dims broadcast) and differentiable twice with
autograd, so LOLA-style look-ahead can differentiate through an opponent's gradient step.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Payoffs over joint actions [CC, CD, DC, DD] (player 1's action first); environments.md 1-2.
GAMES: dict[str, tuple[Tensor, Tensor]] = {
    # Prisoner's Dilemma, rewards = minus years in prison (LOLA/POLA/LOQA/AA/M-FOS/MeVa).
    "ipd": (torch.tensor([-1.0, -3.0, 0.0, -2.0]), torch.tensor([-1.0, 0.0, -3.0, -2.0])),
    # Iterated Matching Pennies (M-FOS/MeVa): player 1 gets -1 on a match, zero-sum.
    "imp": (torch.tensor([-1.0, 1.0, 1.0, -1.0]), torch.tensor([1.0, -1.0, -1.0, 1.0])),
    # pax presets (memory-1, iterated).
    "stag_hunt": (torch.tensor([4.0, 1.0, 3.0, 2.0]), torch.tensor([4.0, 3.0, 1.0, 2.0])),
    "chicken_pax": (torch.tensor([0.0, -1.0, 1.0, -2.0]), torch.tensor([0.0, 1.0, -1.0, -2.0])),
    # M-FOS/MeVa Chicken: ONE-SHOT (one_shot_expected_reward), C = swerve, D = straight, crash -100.
    "chicken_mfos": (
        torch.tensor([0.0, -1.0, 1.0, -100.0]),
        torch.tensor([0.0, 1.0, -1.0, -100.0]),
    ),
}
ONE_SHOT_GAMES = ("chicken_mfos",)
STATE_NAMES = ("start", "CC", "CD", "DC", "DD")
# Player 2's own-perspective index for each global joint state [CC, CD, DC, DD].
_SWAP_PERSPECTIVE = torch.tensor([0, 2, 1, 3])


def payoffs(game: str | tuple[Tensor, Tensor], *, like: Tensor) -> tuple[Tensor, Tensor]:
    """(r1 [4], r2 [4]) for a game name or an explicit pair, with the dtype/device of `like`."""
    if isinstance(game, str):
        if game not in GAMES:
            raise ValueError(f"unknown game {game!r}; expected one of {sorted(GAMES)}")
        r1, r2 = GAMES[game]
    else:
        r1, r2 = (torch.as_tensor(r) for r in game)
        if r1.shape != (4,) or r2.shape != (4,):
            raise ValueError(
                f"payoffs must be two tensors of shape [4], got {r1.shape}, {r2.shape}"
            )
    return r1.to(like), r2.to(like)


def _check_policy(p: Tensor, name: str, width: int = 5) -> None:
    if p.ndim == 0 or p.shape[-1] != width:
        raise ValueError(
            f"{name} must have shape [B, {width}] (or [{width}]), got {tuple(p.shape)}"
        )
    if not torch.is_floating_point(p):
        raise ValueError(f"{name} must be a float tensor of probabilities, got {p.dtype}")
    if not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")


def markov_chain(p1: Tensor, p2: Tensor) -> tuple[Tensor, Tensor]:
    """Initial distribution p0 [..., 4] and transition matrix P [..., 4, 4] over joint actions."""
    _check_policy(p1, "p1")
    _check_policy(p2, "p2")
    p1, p2 = torch.broadcast_tensors(p1, p2)
    # Initial joint action: both act from their start state (environments.md 1.3).
    a1, a2 = p1[..., 0], p2[..., 0]
    p0 = torch.stack([a1 * a2, a1 * (1 - a2), (1 - a1) * a2, (1 - a1) * (1 - a2)], dim=-1)
    # Row s: q1 = p1 in state s, q2 = p2 in its own view of s (CD <-> DC swapped).
    q1 = p1[..., 1:]  # [..., 4]
    q2 = p2[..., 1:][..., _SWAP_PERSPECTIVE.to(p2.device)]  # [..., 4]
    q1, q2 = q1.unsqueeze(-1), q2.unsqueeze(-1)
    transition = torch.cat([q1 * q2, q1 * (1 - q2), (1 - q1) * q2, (1 - q1) * (1 - q2)], dim=-1)
    return p0, transition


def exact_discounted_return(
    p1: Tensor,
    p2: Tensor,
    *,
    game: str | tuple[Tensor, Tensor] = "ipd",
    gamma: float = 0.96,
    per_step: bool = True,
) -> tuple[Tensor, Tensor]:
    """Exact discounted return of two memory-1 policies; (v1 [B], v2 [B]).

    p1, p2: [B, 5] (or [5]; leading dims broadcast) probabilities of cooperating in (start, CC, CD,
    DC, DD), each from its own perspective. per_step=True returns (1 - gamma) V, the per-step scale
    of the rewards.
    """
    if isinstance(game, str) and game in ONE_SHOT_GAMES:
        raise ValueError(f"{game} is one-shot; use one_shot_expected_reward")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    p0, transition = markov_chain(p1, p2)
    r1, r2 = payoffs(game, like=p0)
    # V^i = p0^T (I - gamma P)^{-1} r^i, solved as (I - gamma P) x = r (a 4x4 solve, no inverse).
    eye = torch.eye(4, dtype=p0.dtype, device=p0.device)
    rewards = torch.stack([r1, r2], dim=-1)  # [4, 2]
    system = eye - gamma * transition  # [..., 4, 4]
    values_per_state = torch.linalg.solve(system, rewards.expand(*system.shape[:-2], 4, 2))
    values = (p0.unsqueeze(-2) @ values_per_state).squeeze(-2)  # [..., 2]
    if per_step:
        values = (1 - gamma) * values
    return values[..., 0], values[..., 1]


def exact_return_from_logits(theta1: Tensor, theta2: Tensor, **kwargs) -> tuple[Tensor, Tensor]:
    """exact_discounted_return of sigmoid(theta1), sigmoid(theta2); theta [B, 5] logits."""
    return exact_discounted_return(torch.sigmoid(theta1), torch.sigmoid(theta2), **kwargs)


def average_reward_finite_horizon(
    p1: Tensor, p2: Tensor, *, game: str | tuple[Tensor, Tensor] = "ipd", horizon: int = 50
) -> tuple[Tensor, Tensor]:
    """Exact expected undiscounted reward per step over `horizon` steps; (r1 [B], r2 [B]).

    This is what a sampled IPD episode of length `horizon` averages to (environments.md 1.2 table).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    distribution, transition = markov_chain(p1, p2)
    r1, r2 = payoffs(game, like=distribution)
    rewards = torch.stack([r1, r2], dim=-1)  # [4, 2]
    total = torch.zeros_like(distribution[..., :2])
    for _ in range(horizon):
        total = total + distribution @ rewards
        distribution = (distribution.unsqueeze(-2) @ transition).squeeze(-2)
    total = total / horizon
    return total[..., 0], total[..., 1]


def one_shot_expected_reward(
    p1: Tensor, p2: Tensor, *, game: str | tuple[Tensor, Tensor] = "chicken_mfos"
) -> tuple[Tensor, Tensor]:
    """Expected reward of a one-shot 2x2 game; p1, p2: [B] probabilities of C (Chicken: swerve)."""
    for p, name in ((p1, "p1"), (p2, "p2")):
        if not torch.is_floating_point(p) or not bool(((p >= 0) & (p <= 1)).all()):
            raise ValueError(f"{name} must be a float tensor of probabilities in [0, 1], shape [B]")
    p1, p2 = torch.broadcast_tensors(p1, p2)
    joint = torch.stack([p1 * p2, p1 * (1 - p2), (1 - p1) * p2, (1 - p1) * (1 - p2)], dim=-1)
    r1, r2 = payoffs(game, like=joint)
    return joint @ r1, joint @ r2
