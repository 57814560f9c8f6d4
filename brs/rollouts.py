"""Coin Game episodes of the leader (seat 0) against a detective, itself, or a scripted bot, batched.

`play` returns a dict of [B, T, 2] tensors (seat 0, seat 1): log-probabilities of the actions taken,
value estimates, rewards, entropies, and own/other coin pickups. Gradients flow wherever the players'
parameters require them: in the leader's BRS step the detective's log-probs depend on theta through the
answers (paper: the detective); in the detective's step the leader runs under no_grad, so its answers are constants.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from brs.model import CoinAgent, CoinDetective, question_states
from common.envs.coin_game import CoinGame

Bot = Callable[[Tensor, torch.Generator | None], Tensor]  # obs [B, 4, H, W] -> actions [B]


def sample(logits: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
    """Actions [B] drawn from softmax(logits), their log-probs and the policies' entropies."""
    log_pi = torch.log_softmax(logits, -1)
    actions = torch.multinomial(log_pi.detach().exp(), 1, generator=generator).squeeze(-1)
    logp = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)
    return actions, logp, entropy


def play(
    env: CoinGame,
    agent: CoinAgent,
    opponent: CoinDetective | CoinAgent | Bot,
    batch: int,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One batch of episodes, agent in seat 0. opponent: the detective (asks the agent questions), an
    agent (self-play: values are both seats' self-play heads), or a bot function."""
    obs = env.reset(batch)
    carry = agent.initial_carry(batch)
    self_play = isinstance(opponent, CoinAgent)
    detective = opponent if isinstance(opponent, CoinDetective) else None
    op_carry = opponent.initial_carry(batch) if isinstance(opponent, torch.nn.Module) else None
    zeros = torch.zeros(batch)
    out: dict[str, list[Tensor]] = {
        k: [] for k in ("logp", "values", "rewards", "entropy", "own", "other")
    }
    for _ in range(env.episode_length):
        views = obs.flatten(2)  # [B, 2, 4HW]: each seat's own view
        if self_play:  # one pass of the shared network over both seats
            logits, values, carries = agent(
                views.transpose(0, 1).flatten(0, 1), torch.cat([carry, op_carry])
            )
            carry, op_carry = carries.chunk(2)
            own_logits, op_logits = logits.chunk(2)
            own_value, op_value = values[:, 1].chunk(2)  # head 1: the self-play value
        elif detective is not None:
            asked = question_states(obs[:, 0], detective.questions).flatten(1)  # [Q B, 4HW]
            logits, values, carries = agent(asked, carry.repeat(detective.questions, 1))
            answers = torch.softmax(logits, -1).view(detective.questions, batch, -1)
            answers = answers.transpose(0, 1).flatten(1)  # [B, Q * 4]
            own_logits, own_value, carry = logits[:batch], values[:batch, 0], carries[:batch]
            op_logits, op_value, op_carry = detective(
                torch.cat([views[:, 1], answers], -1), op_carry
            )
            op_value = op_value[:, 0]
        else:
            own_logits, values, carry = agent(views[:, 0], carry)
            own_value, op_value = values[:, 0], zeros
        own_action, own_logp, own_entropy = sample(own_logits, generator)
        if callable(opponent) and not isinstance(opponent, torch.nn.Module):
            op_action = opponent(obs[:, 1], generator)
            op_logp = op_entropy = zeros
        else:
            op_action, op_logp, op_entropy = sample(op_logits, generator)
        obs, rewards, _, info = env.step(torch.stack([own_action, op_action], 1))
        out["logp"].append(torch.stack([own_logp, op_logp], -1))
        out["values"].append(torch.stack([own_value, op_value], -1))
        out["rewards"].append(rewards)
        out["entropy"].append(torch.stack([own_entropy, op_entropy], -1))
        out["own"].append(info["own_coin_pickups"])
        out["other"].append(info["other_coin_pickups"])
    return {k: torch.stack(v, 1) for k, v in out.items()}


def summary(episode: dict[str, Tensor]) -> dict[str, float]:
    """Reward per step of both seats and the agent's own-coin fraction (the Coin Game metrics of common/envs)."""
    rewards = episode["rewards"].mean((0, 1))
    own, other = episode["own"][..., 0].sum(), episode["other"][..., 0].sum()
    return {
        "agent_reward": float(rewards[0]),
        "opponent_reward": float(rewards[1]),
        "agent_own_coin_fraction": float(own / (own + other).clamp(min=1)),
    }
