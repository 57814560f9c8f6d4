"""Advantage Alignment (AA) and Proximal Advantage Alignment (PAA): the aligned advantage and the losses.

Duque, Aghajohari, Cooijmans, Ciuca, Zhang, Gidel, Courville, "Advantage Alignment Algorithms",
ICLR 2025 (arXiv 2406.14662). Opponent shaping reduces to re-weighting the agent's OWN log-probabilities
(Sec. 4, Eq. 8): with A1 the agent's advantages and A2 the opponent's,

    A*_t = A1_t + beta * agg_{k<t}(A1_k) * A2_t                                     (aligned advantage)
    agg  = mean_{k<t} A1_k       (running mean, the authors' code; Eq. 59)          aggregation="mean"
         = gamma sum_{k<t} gamma^(t-k) A1_k  (the discounted sum of Eq. 8)          aggregation="discounted"
         = sum_{k<=t} d^(t-k) A1_k   (a short memory, d = gamma * 0.9: the authors'
                                      Coin Game code, which includes the current step) aggregation="decayed"
    AA:  L = -mean_t A*_t log pi(a_t|s_t) - c_H H(pi)                             (REINFORCE on A*, Eq. 8)
    PAA: L = -mean_t min(rho_t A*_t, clip(rho_t, 1-eps, 1+eps) A*_t) - c_H H(pi)  (PPO on A*, Eq. 9)

beta = 0 is the plain policy-gradient (actor-critic) / PPO control, bit for bit. The advantages come
from each agent's critic by GAE; the opponent's advantage uses the opponent's rewards and critic on the
opponent's observations (Sec. 5). With several opponents the product uses the SUM of their advantages
(App. A.9). The sign of the product gives the four quadrants of Fig. 1a: past-own and current-opponent
advantage both positive -> reinforce (cooperative), both negative -> reinforce (vengeful), mixed ->
discourage (empathetic / spiteful).

Shapes are batch first: advantages [B, T] (opponents [B, T, J]), log-probs [B, T].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def past_own_advantage(
    own: Tensor, *, aggregation: str = "mean", gamma: float = 0.96, decay: float = 0.864
) -> Tensor:
    """agg_{k<t} A1_k for every t: [B, T] -> [B, T], 0 at t = 0 (nothing in the past yet).

    "mean" and "discounted": only strictly past steps enter, so perturbing A1_t changes agg at t+1..
    and never at t. "decayed": sum_{k<=t} decay^(t-k) A1_k, the current step included (the authors'
    Coin Game loss, whose DiCE weights give the step itself weight 1).
    """
    batch, steps = own.shape
    zeros = own.new_zeros(batch, 1)
    if aggregation == "mean":
        # The authors' regulariser: a uniform mean of own past advantages, cumsum_{k<t} A1_k / t.
        past_sum = torch.cat([zeros, own.cumsum(1)[:, :-1]], 1)
        count = torch.arange(steps, device=own.device, dtype=own.dtype).clamp(min=1)
        return past_sum / count
    if aggregation == "discounted":
        # Eq. 8: gamma * sum_{k<t} gamma^(t-k) A1_k = sum_{k<t} gamma^(t-k+1) A1_k, by the recursion
        # S_t = gamma (S_{t-1} + A1_{t-1}), S_0 = 0, times gamma.
        weights = torch.tril(_power_matrix(steps, gamma, own), diagonal=-1)  # [T, T], k < t
        return gamma * own @ weights.T
    if aggregation == "decayed":
        weights = torch.tril(_power_matrix(steps, decay, own))  # [T, T], k <= t
        return own @ weights.T
    raise ValueError(f"aggregation must be 'mean', 'discounted' or 'decayed', got {aggregation!r}")


def _power_matrix(steps: int, gamma: float, like: Tensor) -> Tensor:
    """M[t, k] = gamma^(t - k) (only k <= t is used)."""
    idx = torch.arange(steps, device=like.device, dtype=like.dtype)
    exponent = (idx[:, None] - idx[None, :]).clamp(min=0)
    return torch.pow(torch.as_tensor(gamma, dtype=like.dtype, device=like.device), exponent)


def alignment_term(
    own: Tensor,
    opponents: Tensor,
    *,
    aggregation: str = "mean",
    gamma: float = 0.96,
    decay: float = 0.864,
) -> Tensor:
    """agg_{k<t} A1_k * sum_j A^j_t: own [B, T], opponents [B, T] or [B, T, J] -> [B, T] (Eq. 8, A.9)."""
    if opponents.dim() == own.dim() + 1:
        opponents = opponents.sum(-1)  # N players: the sum (not the mean) of the other agents
    if opponents.shape != own.shape:
        raise ValueError(
            f"opponent advantages {tuple(opponents.shape)} do not match own {tuple(own.shape)}"
        )
    past = past_own_advantage(own, aggregation=aggregation, gamma=gamma, decay=decay)
    return past * opponents


def aligned_advantage(
    own: Tensor,
    opponents: Tensor,
    beta: float,
    *,
    aggregation: str = "mean",
    gamma: float = 0.96,
    decay: float = 0.864,
    normalize: bool = True,
) -> Tensor:
    """A*_t = A1_t + beta * agg_{k<t}(A1_k) * A2_t, a new tensor (the inputs are left untouched).

    normalize: standardise A1 and A2 over the batch first (the authors' Melting Pot code), so that
    beta does not depend on the reward scale. Gradients never flow through advantages.
    """
    own, opponents = own.detach(), opponents.detach()
    if normalize:
        own = standardize(own)
        opponents = standardize(opponents)
    if beta == 0:
        return own.clone()
    return own + beta * alignment_term(
        own, opponents, aggregation=aggregation, gamma=gamma, decay=decay
    )


def standardize(x: Tensor, eps: float = 1e-8) -> Tensor:
    return (x - x.mean()) / (x.std() + eps)


def gae(rewards: Tensor, values: Tensor, *, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates: rewards [B, T], values [B, T+1] (V(s_T) = 0 at the end of a
    finite episode, or a bootstrap) -> advantages [B, T]."""
    deltas = rewards + gamma * values[:, 1:] - values[:, :-1]
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[:, 0])
    for t in range(deltas.shape[1] - 1, -1, -1):
        running = deltas[:, t] + gamma * lam * running
        advantages[:, t] = running
    return advantages


def aa_actor_loss(
    log_prob: Tensor, aligned: Tensor, entropy: Tensor | None = None, entropy_coef: float = 0.0
) -> Tensor:
    """AA (Eq. 8): REINFORCE on the aligned advantage, -mean(A* log pi) - c_H mean(H)."""
    loss = -(aligned.detach() * log_prob).mean()
    if entropy is not None and entropy_coef:
        loss = loss - entropy_coef * entropy.mean()
    return loss


def paa_actor_loss(
    log_prob: Tensor,
    old_log_prob: Tensor,
    aligned: Tensor,
    *,
    clip: float = 0.2,
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
) -> Tensor:
    """PAA (Eq. 9): PPO's clipped surrogate on A*. The min() is over the two ratio-weighted
    advantages, both built from the same ratio (the authors' early proximal branch mixed clipped
    ratios with raw log-probs there; not copied)."""
    ratio = torch.exp(log_prob - old_log_prob.detach())
    aligned = aligned.detach()
    surrogate = torch.minimum(ratio * aligned, ratio.clamp(1 - clip, 1 + clip) * aligned)
    loss = -surrogate.mean()
    if entropy is not None and entropy_coef:
        loss = loss - entropy_coef * entropy.mean()
    return loss


def critic_loss(values: Tensor, targets: Tensor) -> Tensor:
    """Huber regression of V(s_t) on fixed targets (GAE lambda-returns), as the authors' critics."""
    return F.huber_loss(values, targets.detach())
