"""RL fine-tuning of the online model (ReaLchords §4, eq. 1): reward models + KL to the offline teacher.

    J(theta) = E_{c ~ pi_theta(.|m)} [ sum_t r_t ] - beta_teacher * sum_t KL(pi_theta(.|s_t) || phi(.|s_t, m))
                                                  - beta_start   * sum_t KL(pi_theta(.|s_t) || pi_0(.|s_t))

Only chord tokens are actions; the melody is the environment (teacher-forced). The paper uses PPO with
GAE (lambda 0.95, gamma 1) and a full-distribution KL to the anchor; we take one on-policy gradient step per
rollout batch (REINFORCE with a learned value baseline and GAE advantages), which needs no clipping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from realjam.model import ContrastiveReward, OnlineModel, Teacher
from realjam.rewards import RewardWeights, reward_terms
from realjam.sampling import sample_online
from realjam.tokens import (
    CHORD_SILENCE,
    MELODY_REST,
    chord_changes,
    chord_symbols,
    harmony_rate,
    interleave,
)

CHORDS = slice(CHORD_SILENCE, MELODY_REST)  # the chord-token columns of the vocabulary


class ValueHead(nn.Module):
    """V(s_t) from the policy's (detached) features at each chord position."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.detach())[..., 0]


def kl_per_position(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Full-distribution KL(p || ref) over the chord vocabulary at each position ``[B, T]``."""
    logp, ref_logp = logp[..., CHORDS], ref_logp[..., CHORDS]
    terms = logp.exp() * (logp - ref_logp)
    return torch.where(logp == float("-inf"), 0.0, terms).sum(-1)  # 0 log 0 = 0


def gae(
    rewards: torch.Tensor, values: torch.Tensor, lam: float, gamma: float = 1.0
) -> torch.Tensor:
    """Generalised advantage estimates ``[B, T]`` (value after the last frame = 0)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages


def leave_one_out(returns: torch.Tensor, group: int) -> torch.Tensor:
    """Each row's returns ``[B, T]`` minus the mean of the other rows of its group (rows i*group ...)."""
    grouped = returns.view(-1, group, returns.shape[1])
    others = (grouped.sum(1, keepdim=True) - grouped) / (group - 1)
    return (grouped - others).view_as(returns)


def rl_step(
    policy: OnlineModel,
    value_head: ValueHead,
    optimizer: torch.optim.Optimizer,
    teacher: Teacher,
    start_model: OnlineModel,
    contrastive: ContrastiveReward | None,
    pitches: torch.Tensor,
    melody_tokens: torch.Tensor,
    weights: RewardWeights,
    cfg,
    generator: torch.Generator,
) -> dict[str, float]:
    """One rollout batch and one policy-gradient step; returns what to log."""
    # 1. Rollout: the policy accompanies the melody online (it never sees m_t before choosing c_t).
    policy.eval()
    chords, _ = sample_online(
        policy,
        melody_tokens.shape[1],
        melody=melody_tokens,
        temperature=cfg.temperature,
        generator=generator,
    )
    terms = reward_terms(pitches, chords, melody_tokens, weights, contrastive)
    rewards = sum(terms.values())

    # 2. Score the rollout: policy log-probs (with grad), values, and the two reference distributions.
    seq = interleave(chords, melody_tokens)
    features = policy.features(seq[:, :-1])[:, 0::2]  # states that choose a chord
    logp_all = F.log_softmax(policy.head(features)[..., CHORDS], dim=-1)
    logp_all = F.pad(
        logp_all, (CHORD_SILENCE, policy.head.out_features - MELODY_REST), value=float("-inf")
    )
    logp = logp_all.gather(-1, chords[..., None])[..., 0]
    values = value_head(features)
    with torch.no_grad():
        teacher_logp = teacher.chord_logits(melody_tokens, chords)
        start_logp = start_model.chord_logits(seq)

    # 3. Advantages, the loss of eq. 1 and the value regression. Advantages: GAE on the learned baseline,
    # or (rl.group > 1) each frame's return minus the mean return at that frame of the other rollouts of
    # the same melody (a leave-one-out baseline, ours: no critic to warm up in a short run).
    scale = float(melody_tokens.shape[1])  # values predict returns per frame, so they stay O(1)
    advantages = gae(rewards, values.detach() * scale, cfg.gae_lambda, cfg.gamma)
    returns = advantages + values.detach() * scale
    if cfg.group > 1:
        returns = gae(rewards, torch.zeros_like(rewards), 1.0, cfg.gamma)
        advantages = leave_one_out(returns, cfg.group)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    kl_teacher = kl_per_position(logp_all, teacher_logp)
    kl_start = kl_per_position(logp_all, start_logp)
    policy_loss = -(advantages * logp).mean()
    value_loss = F.mse_loss(values, returns / scale)
    loss = (
        policy_loss
        + cfg.kl_teacher * kl_teacher.mean()
        + cfg.kl_start * kl_start.mean()
        + cfg.value_coef * value_loss
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(
        list(policy.parameters()) + list(value_head.parameters()), cfg.grad_clip
    )
    optimizer.step()

    symbols = chord_symbols(chords)
    stats = {f"reward/{k}": v.sum(1).mean().item() / scale for k, v in terms.items()}
    stats.update(
        {
            "reward/total": rewards.sum(1).mean().item() / scale,
            "rl/harmony_rate": harmony_rate(pitches, symbols).mean().item(),
            "rl/changes_per_frame": chord_changes(symbols).mean().item(),
            "rl/kl_teacher": kl_teacher.mean().item(),
            "rl/kl_start": kl_start.mean().item(),
            "losses/policy": policy_loss.item(),
            "losses/value": value_loss.item(),
        }
    )
    return stats
