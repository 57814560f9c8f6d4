"""LOQA's losses: the critic, the actor's own term and the opponent-shaping term (arXiv 2405.01035).

Aghajohari, Duque, Cooijmans, Courville, "LOQA: Learning with Opponent Q-Learning Awareness", ICLR 2024.
Algorithm 1 (LOQA) and Algorithm 2 (LOQA actor loss) of the paper; details the paper leaves open follow
the authors' released code:

    critic     L_Q   = mean_t Huber(Q(h_t, a_t) - sg(r_t + gamma Qbar(h_t+1, a_t+1)))   expected SARSA
    own actor  L_own = -mean_t log pi(a_t|h_t) A_t - beta_H mean_t H(pi(.|h_t))          actor-critic
               A_t   = r_t + gamma V(h_t+1) - V(h_t),   V = sum_a pi Q
    shaping    L_opp = -mean_t log pihat_j(a^j_t|h^j_t) A_t                              Alg. 2
               pihat_j = softmax(Qtilde_j / tau), Qtilde_j = Q_j with the taken action's entry replaced
               by a Monte-Carlo return made differentiable w.r.t. our policy (loaded DiCE)
    update     g = grad(L_own + w L_opp)                                                 Alg. 1

Episodes are batch-first: actions, rewards [B, T, 2] with seat 0 = the learner and seat 1 = its
opponent; network outputs over histories h_0 .. h_T are [B, T+1, A]. The networks are in networks.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def loqa_actor_losses(
    own_logits: Tensor,
    own_q: Tensor,
    op_logits: Tensor,
    op_q: Tensor,
    actions: Tensor,
    rewards: Tensor,
    *,
    gamma: float = 0.96,
    dice_lambda: float = 0.9,
    temperature: float = 1.0,
    entropy_beta: float = 0.0,
    advantage_grad: bool = False,
    bootstrap_opponent_return: bool = True,
) -> dict[str, Tensor]:
    """L_own (with the entropy bonus) and L_opp (Alg. 2); the update uses L_own + w L_opp.

    own_logits, own_q: [B, T+1, A] our actor and critic over h_0..h_T (h_T only bootstraps V).
    op_logits, op_q:   [B, T+1, A] the opponent's actor and critic over its own histories (constants).
    actions [B, T, 2] long, rewards [B, T, 2]: seat 0 is us, seat 1 the opponent.
    bootstrap_opponent_return: the opponent's Monte-Carlo return also gets gamma^(T-t) V^j(h_T). The
    critic bootstraps at the truncated end (Alg. 1), so its Q is an infinite-horizon value; the authors'
    code compares it with an un-bootstrapped return, which is far smaller near the end of an episode, so
    the imagined softmax puts ~all mass on the taken action and the shaping gradient vanishes once the
    critic is accurate. False reproduces the authors' code.
    """
    steps = actions.shape[1]
    if own_logits.shape[:2] != (actions.shape[0], steps + 1):
        raise ValueError(
            f"own_logits must be [B, T+1, A] = [{actions.shape[0]}, {steps + 1}, A], "
            f"got {tuple(own_logits.shape)}"
        )
    own_actions, op_actions = actions[..., 0], actions[..., 1]
    own_rewards, op_rewards = rewards[..., 0], rewards[..., 1]

    # Own term: TD(0) advantage with V(h) = sum_a pi(a|h) Q(h, a); bootstrapped at the truncated end.
    log_pi = torch.log_softmax(own_logits, dim=-1)
    values = (log_pi.exp() * own_q).sum(-1)  # [B, T+1]
    if not advantage_grad:  # the authors' code lets this gradient through (probably unintended)
        values = values.detach()
    advantage = own_rewards + gamma * values[:, 1:] - values[:, :-1]  # A_t [B, T]
    own_logp = log_pi[:, :steps].gather(-1, own_actions.unsqueeze(-1)).squeeze(-1)  # [B, T]
    entropy = -(log_pi.exp() * log_pi).sum(-1)[:, :steps].mean()
    loss_own = -(own_logp * advantage).mean() - entropy_beta * entropy

    # Shaping term (Alg. 2). Step 1: the opponent's value V^j = sum_a pi^j Q^j, a constant baseline.
    op_values = (torch.softmax(op_logits, -1) * op_q).sum(-1).detach()  # [B, T+1]
    final_value = op_values[:, steps] if bootstrap_opponent_return else None
    # Step 2: loaded DiCE returns of the opponent, differentiable through our log-probs.
    op_returns = loaded_dice_returns(
        op_rewards, own_logp, op_values[:, :steps], gamma, dice_lambda, final_value
    )
    # Step 3: Qhat^j_t = r^j_t + gamma Rtilde^j_{t+1}; our action at t is simultaneous with a^j_t, so the
    # reward at t stays a constant; at the last step there is nothing to bootstrap.
    q_hat = torch.cat([op_rewards[:, :-1] + gamma * op_returns[:, 1:], op_rewards[:, -1:]], dim=-1)
    # Steps 4-5: raise the imagined probability of opponent actions with a positive advantage for us.
    op_logp = opponent_log_prob(op_q[:, :steps], op_actions, q_hat, temperature)
    loss_opp = -(op_logp * advantage).mean()
    return {
        "own": loss_own,
        "opponent": loss_opp,
        "entropy": entropy.detach(),
        "advantage": advantage.detach().mean(),
        "value": values[:, :-1].detach().mean(),
    }


def critic_loss(
    own_q: Tensor,
    target_logits: Tensor,
    target_q: Tensor,
    actions: Tensor,
    rewards: Tensor,
    *,
    gamma: float = 0.96,
    huber_delta: float = 1.0,
) -> Tensor:
    """Expected-SARSA critic loss with an EMA target (Alg. 1).

    own_q [B, T+1, A] (trained), target_logits / target_q [B, T+1, A] (the EMA copy, constants),
    actions [B, T] and rewards [B, T] of the learner's seat. The episode is truncated, not terminated:
    the last target bootstraps with the target's state value Vbar(h_T) = sum_a pibar Qbar.
    """
    steps = actions.shape[1]
    q_taken = own_q[:, :steps].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # Q(h_t, a_t)
    next_q = target_q[:, 1:steps].gather(-1, actions[:, 1:].unsqueeze(-1)).squeeze(-1)
    last_value = (torch.softmax(target_logits[:, steps], -1) * target_q[:, steps]).sum(-1)
    bootstrap = torch.cat([next_q, last_value.unsqueeze(-1)], dim=-1)  # [B, T]
    target = (rewards + gamma * bootstrap).detach()
    return F.huber_loss(q_taken, target, delta=huber_delta)


def loaded_dice_returns(
    op_rewards: Tensor,
    own_logp: Tensor,
    op_values: Tensor,
    gamma: float,
    dice_lambda: float,
    op_final_value: Tensor | None = None,
) -> Tensor:
    """The opponent's returns made differentiable w.r.t. our policy: Rtilde [B, T] (Alg. 2, loaded DiCE).

    G_t = (R_t - V_t) d_t + gamma lambda G_{t+1},  d_t = box(c_t) - box(c_{t-1}),  c_t = sum_{k<=t} log pi
    Rtilde_t = R_t + G_t: equal to R_t in value; gradient sum_{k>=t} (gamma lambda)^(k-t) (R_k - V_k)
    grad log pi(a_k | h_k). The opponent's value V is the baseline that keeps this estimator usable.
    op_rewards, op_values: [B, T] constants; own_logp: [B, T] our log-probs of the actions we took.
    op_final_value [B]: if given, R_t also bootstraps with gamma^(T-t) V(h_T) (see loqa_actor_losses).
    """
    returns = discounted_returns(op_rewards, gamma)
    if op_final_value is not None:
        steps_left = torch.arange(op_rewards.shape[-1], 0, -1, device=op_rewards.device)
        returns = returns + gamma ** steps_left.to(returns.dtype) * op_final_value.unsqueeze(-1)
    returns = returns.detach()
    boxes = magic_box(torch.cumsum(own_logp, dim=-1))
    boxes_before = torch.cat(
        [torch.ones_like(boxes[:, :1]), boxes[:, :-1]], dim=-1
    )  # box(c_-1) := 1
    dice_increments = boxes - boxes_before  # value 0, gradient grad log pi(a_t | h_t)
    weighted = (returns - op_values.detach()) * dice_increments
    # The backward recursion in closed form: G = weighted @ M^T with M[t, k] = (gamma lambda)^(k-t).
    correction = weighted @ discount_matrix(weighted.shape[-1], gamma * dice_lambda, weighted).T
    return returns + correction


def opponent_log_prob(
    op_q: Tensor, op_actions: Tensor, q_hat: Tensor, temperature: float
) -> Tensor:
    """log pihat_j(a^j_t | h^j_t) with pihat_j = softmax(Qtilde / tau) (Alg. 2).

    op_q [B, T, A]: the opponent critic's Q (constants); its entry for the taken action a^j_t is
    replaced by the differentiable estimate q_hat [B, T]; the other actions keep their critic values.
    """
    taken = F.one_hot(op_actions, op_q.shape[-1]).to(op_q.dtype)
    q_tilde = op_q.detach() * (1 - taken) + q_hat.unsqueeze(-1) * taken
    log_pi_hat = torch.log_softmax(q_tilde / temperature, dim=-1)
    return log_pi_hat.gather(-1, op_actions.unsqueeze(-1)).squeeze(-1)


def magic_box(x: Tensor) -> Tensor:
    """DiCE's magic box: value 1, gradient grad(x) (Alg. 2, loaded DiCE)."""
    return torch.exp(x - x.detach())


def discount_matrix(steps: int, factor: float, like: Tensor) -> Tensor:
    """M [T, T] with M[t, k] = factor^(k - t) for k >= t and 0 below the diagonal."""
    t = torch.arange(steps, device=like.device)
    power = (t.view(1, -1) - t.view(-1, 1)).to(like.dtype)
    return torch.where(power >= 0, factor**power, torch.zeros_like(power))


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """R_t = sum_{k >= t} gamma^(k-t) r_k for rewards [B, T] -> [B, T]."""
    return rewards @ discount_matrix(rewards.shape[-1], gamma, rewards).T


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, decay: float) -> None:
    """thetabar <- decay thetabar + (1 - decay) theta, after every critic step (authors' code)."""
    for target_p, online_p in zip(target.parameters(), online.parameters()):
        target_p.lerp_(online_p, 1 - decay)
