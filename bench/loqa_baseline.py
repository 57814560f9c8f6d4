"""The LOQA iteration as it was before the speed work (frozen copy, commit 098a2f3 of loqa/train.py and
of loqa/networks.py's products and GRU sequence pass, which train_step swaps in while it runs): the
in-process baseline of bench/loqa.py and of the test that the fast iteration computes the same numbers
(tests/loqa/test_fast_iteration.py). Do not edit.

One iteration = a step-by-step rollout of all episodes at once (opponents' actors on stacked
parameters), then our actor/critic, the EMA target and the opponents' actor and critic re-run over the
whole histories, the losses, the gradients and the optimiser steps.
"""

from __future__ import annotations

import contextlib

import torch

import loqa.networks as networks
from loqa.model import critic_loss, ema_update, loqa_actor_losses


def _linear(x, weight, bias):
    return torch.matmul(x, weight.transpose(-1, -2)) + bias.unsqueeze(-2)


def _gru_sequence(self, x, params=None):
    p = self.own_params() if params is None else params
    lead, steps = x.shape[:-2], x.shape[-2]

    def all_steps(layer, inputs):
        flat = inputs.reshape(*lead[:-1], lead[-1] * steps, inputs.shape[-1])
        out = _linear(flat, p[f"{layer}.weight"], p[f"{layer}.bias"])
        return out.reshape(*lead, steps, out.shape[-1])

    x = torch.relu(all_steps("pre.0", x))
    if len(self.pre) == 2:
        x = all_steps("pre.1", x)
    input_gates = [gates.unbind(-2) for gates in all_steps("input_gates", x).chunk(3, -1)]
    hidden_weight, hidden_bias = p["hidden_gates.weight"], p["hidden_gates.bias"]
    carry = self.initial_carry(tuple(lead)).to(x)
    carries = []
    for xr, xz, xn in zip(*input_gates):
        hr, hz, hn = _linear(carry, hidden_weight, hidden_bias).chunk(3, -1)
        reset = torch.sigmoid(xr + hr)
        update = torch.sigmoid(xz + hz)
        candidate = torch.tanh(xn + reset * hn)
        carry = (1 - update) * candidate + update * carry
        carries.append(carry)
    return all_steps("head", torch.stack(carries, dim=-2))


@contextlib.contextmanager
def frozen_networks():
    """networks.linear and PolaGRU.sequence as they were at 098a2f3, for the old loop's duration."""
    saved = networks.linear, networks.PolaGRU.sequence
    networks.linear, networks.PolaGRU.sequence = _linear, _gru_sequence
    try:
        yield
    finally:
        networks.linear, networks.PolaGRU.sequence = saved


@torch.no_grad()
def rollout(env, agent, opponents, *, batch_size, epsilon, generator):
    num_groups = next(iter(opponents.values())).shape[0]
    group = batch_size // num_groups
    obs = env.reset(batch_size).reshape(batch_size, 2, -1)
    own_carry, op_carry = (None, None), (None, None)
    all_obs, all_actions, all_rewards, own_pickups, other_pickups = [obs], [], [], [], []
    for t in range(env.episode_length):
        own_logits, own_carry = agent.act(obs[:, 0], t, own_carry)
        op_obs = obs[:, 1].reshape(num_groups, group, -1)
        op_logits, op_carry = agent.act(op_obs, t, op_carry, opponents)
        logits = torch.stack([own_logits, op_logits.reshape(batch_size, -1)], dim=1)
        num_actions = logits.shape[-1]
        probs = torch.softmax(logits, -1).reshape(-1, num_actions)
        actions = torch.multinomial(probs, 1, generator=generator).view(batch_size, 2)
        if epsilon > 0:
            explore = torch.rand(batch_size, 2, generator=generator) < epsilon
            uniform = torch.randint(0, num_actions, (batch_size, 2), generator=generator)
            actions = torch.where(explore, uniform, actions)
        obs, rewards, _, info = env.step(actions)
        obs = obs.reshape(batch_size, 2, -1)
        all_obs.append(obs)
        all_actions.append(actions)
        all_rewards.append(rewards)
        if "own_coin_pickups" in info:
            own_pickups.append(info["own_coin_pickups"])
            other_pickups.append(info["other_coin_pickups"])
    episodes = {
        "obs": torch.stack(all_obs, 1),
        "actions": torch.stack(all_actions, 1),
        "rewards": torch.stack(all_rewards, 1),
    }
    if own_pickups:
        episodes["own_pickups"] = torch.stack(own_pickups, 1)
        episodes["other_pickups"] = torch.stack(other_pickups, 1)
    return episodes


def _grads(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def train_step(cfg, learner, env, opponents, generator, it: int, logging: bool) -> dict:
    """One iteration of the old loop body; `learner` as loqa.train.Learner. Returns the batch and the
    losses (and, when logging, the two actor terms' gradients)."""
    with frozen_networks():
        return _train_step(cfg, learner, env, opponents, generator, it, logging)


def _train_step(cfg, learner, env, opponents, generator, it: int, logging: bool) -> dict:
    agent, target = learner.agent, learner.target
    loss_cfg, w = cfg.loss, cfg.loss.shaping_weight
    batch = rollout(
        env,
        agent,
        opponents,
        batch_size=cfg.train.batch_size,
        epsilon=cfg.env.epsilon,
        generator=generator,
    )
    obs = batch["obs"]
    num_groups = next(iter(opponents.values())).shape[0]
    own_logits, own_q = agent.sequence(obs[:, :, 0])
    with torch.no_grad():
        target_logits, target_q = target.sequence(obs[:, :, 0])
    q_loss = critic_loss(
        own_q,
        target_logits,
        target_q,
        batch["actions"][..., 0],
        batch["rewards"][..., 0],
        gamma=loss_cfg.gamma,
        huber_delta=loss_cfg.huber_delta,
    )
    train_actor = it >= cfg.train.critic_warmup
    out = {"batch": batch, "critic": q_loss}
    if train_actor or logging:
        with torch.no_grad():
            op_obs = obs[:, :, 1].reshape(num_groups, -1, *obs.shape[1:2], obs.shape[-1])
            op_logits, op_q = agent.sequence(op_obs, opponents)
            op_logits = op_logits.reshape(*own_logits.shape)
            op_q = op_q.reshape(*own_q.shape)
        losses = loqa_actor_losses(
            own_logits,
            own_q,
            op_logits,
            op_q,
            batch["actions"],
            batch["rewards"],
            gamma=loss_cfg.gamma,
            dice_lambda=loss_cfg.dice_lambda,
            temperature=loss_cfg.temperature,
            entropy_beta=loss_cfg.entropy_beta,
            advantage_grad=loss_cfg.advantage_grad,
            bootstrap_opponent_return=loss_cfg.bootstrap_opponent_return,
        )
        out["losses"] = losses
    actor_params, critic_params = learner.actor_params, learner.critic_params
    if logging:
        grad_own = _grads(losses["own"], actor_params)
        grad_opp = _grads(losses["opponent"], actor_params)
        actor_grads = [a + w * b for a, b in zip(grad_own, grad_opp)]
        out["grad_own"], out["grad_opp"] = grad_own, grad_opp
    elif train_actor:
        actor_grads = _grads(losses["own"] + w * losses["opponent"], actor_params)
    critic_grads = torch.autograd.grad(q_loss, critic_params)
    if train_actor:
        for p, g in zip(actor_params, actor_grads):
            p.grad = g
        if cfg.train.actor_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(actor_params, cfg.train.actor_clip_norm)
        learner.actor_opt.step()
        learner.actor_opt.zero_grad(set_to_none=True)
    for p, g in zip(critic_params, critic_grads):
        p.grad = g
    learner.critic_opt.step()
    learner.critic_opt.zero_grad(set_to_none=True)
    ema_update(target, agent, cfg.train.target_ema)
    return out
