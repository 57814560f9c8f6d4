"""Train a LOQA agent by self-play on the IPD or the Coin Game (arXiv 2405.01035, Algorithm 1).

    python -m loqa.train --config ipd_quick                       # LOQA, tabular IPD, ~30 s
    python -m loqa.train --config ipd_quick loss.shaping_weight=0 name=ipd_control   # naive actor-critic
    python -m loqa.train --config coin_quick seed=1

Each iteration: play a batch of episodes (seat 0 = the learner, seat 1 = its opponent: the current agent
in the IPD, past agents from the agent buffer in the Coin Game), take one actor step on
L_own + w L_opp (model.py) and one critic step on the expected-SARSA loss, then move the EMA target.
The run directory (runs/loqa/<name>/) holds everything eval.py needs.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from common.agent_buffer import AgentBuffer
from common.cli import entry_point
from common.config import parse_args, validate
from common.envs.agents import IPD_ALWAYS_COOPERATE, IPD_ALWAYS_DEFECT, coin_always_defect
from common.envs.coin_game import CoinGame
from common.envs.ipd import IteratedPrisonersDilemma
from common.envs.matrix_games import STATE_NAMES
from common.runner import Run
from loqa.config import CONFIG_DIR, LoqaConfig
from loqa.league import BotPlayer, LearnedPlayer, ipd_pair, play_coin_match
from loqa.model import critic_loss, ema_update, loqa_actor_losses
from loqa.networks import (
    LoqaAgent,
    Params,
    build_agent,
    ipd_cooperation_probabilities,
    stacked_params,
)


# ---------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------
def make_env(cfg: DictConfig, seed: int, device: torch.device | str = "cpu"):
    if cfg.env.game == "ipd":
        return IteratedPrisonersDilemma(
            episode_length=cfg.env.episode_length, device=device, seed=seed
        )
    return CoinGame(
        grid_size=cfg.env.grid_size, episode_length=cfg.env.episode_length, device=device, seed=seed
    )


def make_agent(cfg: DictConfig) -> LoqaAgent:
    obs_dim, num_actions = (4, 2) if cfg.env.game == "ipd" else (4 * cfg.env.grid_size**2, 4)
    m = cfg.model
    return build_agent(
        cfg.env.game,
        obs_dim=obs_dim,
        num_actions=num_actions,
        episode_length=cfg.env.episode_length,
        actor=m.actor,
        actor_hidden=m.actor_hidden,
        actor_pre_layers=m.actor_pre_layers,
        actor_init_std=m.actor_init_std,
        critic=m.critic,
        critic_hidden=m.critic_hidden,
        critic_pre_layers=m.critic_pre_layers,
        raw_time=m.raw_time,
    )


@torch.no_grad()
def rollout(
    env,
    agent: LoqaAgent,
    opponents: Params,
    *,
    batch_size: int,
    epsilon: float,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """A batch of episodes: seat 0 = `agent`, seat 1 = `opponents` (stacked params [K, ...]; opponent
    k plays episodes k*B/K .. (k+1)*B/K - 1). Epsilon-greedy on both seats (paper's appendix); the loss uses the
    un-epsilon'd log-probs, as the authors do.

    Returns obs [B, T+1, 2, D] (flattened observations, h_0..h_T), actions [B, T, 2], rewards [B, T, 2]
    and, for the Coin Game, own/other coin pickups [B, T, 2].
    """
    num_groups = next(iter(opponents.values())).shape[0]
    group = batch_size // num_groups
    obs = env.reset(batch_size).reshape(batch_size, 2, -1)
    own_carry, op_carry = (None, None), (None, None)
    all_obs, all_actions, all_rewards, own_pickups, other_pickups = [obs], [], [], [], []
    for t in range(env.episode_length):
        own_logits, own_carry = agent.act(obs[:, 0], t, own_carry)
        op_obs = obs[:, 1].reshape(num_groups, group, -1)
        op_logits, op_carry = agent.act(op_obs, t, op_carry, opponents)
        logits = torch.stack([own_logits, op_logits.reshape(batch_size, -1)], dim=1)  # [B, 2, A]
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


def periodic_eval(cfg: DictConfig, agent: LoqaAgent, eval_env, generator: torch.Generator) -> dict:
    """No exploration noise. IPD: exact rewards per step (Markov chain) of self-play, vs always-defect
    and vs always-cooperate, and P(C | state). Coin: sampled self-play and games against always-defect."""
    if cfg.env.game == "ipd":
        p = ipd_cooperation_probabilities(agent).double()
        horizon = cfg.eval.horizon
        self_play = ipd_pair(p, p, horizon)[0]
        vs_defect, defector = ipd_pair(p, IPD_ALWAYS_DEFECT, horizon)
        vs_cooperate, _ = ipd_pair(p, IPD_ALWAYS_COOPERATE, horizon)
        out = {
            "eval/self_play_reward": self_play,
            "eval/vs_always_defect_reward": vs_defect,
            "eval/always_defect_reward": defector,
            "eval/vs_always_cooperate_reward": vs_cooperate,
        }
        out.update({f"eval/p_coop_{s}": float(p[i]) for i, s in enumerate(STATE_NAMES)})
        return out
    episodes = cfg.train.eval_episodes
    self_play = play_coin_match(
        eval_env, LearnedPlayer(agent, generator), LearnedPlayer(agent, generator), episodes
    )
    vs_defect = play_coin_match(
        eval_env,
        LearnedPlayer(agent, generator),
        BotPlayer(coin_always_defect, generator),
        episodes,
    )
    return {
        "eval/self_play_reward": (self_play["reward_0"] + self_play["reward_1"]) / 2,
        "eval/self_play_own_coin_fraction": self_play["own_coin_fraction_0"],
        "eval/vs_always_defect_reward": vs_defect["reward_0"],
        "eval/always_defect_reward": vs_defect["reward_1"],
    }


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------
def _grads(loss: torch.Tensor, params: list) -> list[torch.Tensor]:
    """d loss / d params, zeros for parameters the loss does not reach; keeps the graph."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def train(cfg: DictConfig) -> Path:
    """Train one agent; returns its run directory."""
    validate(cfg)
    with Run(cfg, paper="loqa") as run:
        device = run.device
        # ---- build: agent, EMA target, optimisers, environments, generators ----
        agent = make_agent(cfg).to(device)
        target = copy.deepcopy(agent).requires_grad_(False)
        critic_params = list(agent.critic.parameters())
        # Advantage gradients (the authors' quirk) reach the critic through the actor's optimiser.
        actor_params = list(
            agent.parameters() if cfg.loss.advantage_grad else agent.actor.parameters()
        )
        actor_opt = torch.optim.Adam(actor_params, lr=cfg.train.actor_lr)
        critic_opt = torch.optim.Adam(critic_params, lr=cfg.train.critic_lr)
        env = make_env(cfg, seed=cfg.seed, device=device)
        eval_env = make_env(cfg, seed=cfg.seed + 10_000, device=device)
        policy_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        eval_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        use_buffer = cfg.train.buffer_capacity > 0
        # Only pushed agents can be sampled: never allocate more slots than the run will fill.
        needed = cfg.train.iterations // cfg.train.buffer_push_every + 1
        buffer = AgentBuffer(min(cfg.train.buffer_capacity, needed)) if use_buffer else None
        tracked = dict(
            agent=agent,
            target=target,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            env_gen=env.generator,
            eval_env_gen=eval_env.generator,
            policy_gen=policy_gen,
            eval_gen=eval_gen,
        )
        if buffer is not None:
            tracked["buffer"] = buffer
        run.track(**tracked)
        start = run.restore()
        print(f"run dir: {run.dir}", file=sys.stderr)
        loss_cfg = cfg.loss
        w = loss_cfg.shaping_weight
        tick, sps_steps = time.time(), 0

        for it in run.steps(start, cfg.train.iterations):
            # ---- opponents: past agents from the buffer (coin) or the current agent itself (IPD) ----
            if use_buffer:
                if it % cfg.train.buffer_push_every == 0:
                    buffer.push(agent)
                opponents = buffer.sample(cfg.train.opponents_per_batch, policy_gen)
            else:
                opponents = stacked_params(agent)
            batch = rollout(
                env,
                agent,
                opponents,
                batch_size=cfg.train.batch_size,
                epsilon=cfg.env.epsilon,
                generator=policy_gen,
            )
            obs = batch["obs"]  # [B, T+1, 2, D]
            num_groups = next(iter(opponents.values())).shape[0]

            # ---- forward: our actor/critic with gradients; opponent critic and EMA target constant ----
            own_logits, own_q = agent.sequence(obs[:, :, 0])
            with torch.no_grad():
                target_logits, target_q = target.sequence(obs[:, :, 0])
            q_loss = critic_loss(  # expected SARSA with the EMA target (Alg. 1)
                own_q,
                target_logits,
                target_q,
                batch["actions"][..., 0],
                batch["rewards"][..., 0],
                gamma=loss_cfg.gamma,
                huber_delta=loss_cfg.huber_delta,
            )
            train_actor = it >= cfg.train.critic_warmup
            logging = it % cfg.train.log_every == 0 or it == cfg.train.iterations - 1
            if train_actor or logging:
                with torch.no_grad():
                    op_obs = obs[:, :, 1].reshape(num_groups, -1, *obs.shape[1:2], obs.shape[-1])
                    op_logits, op_q = agent.sequence(op_obs, opponents)
                    op_logits = op_logits.reshape(*own_logits.shape)
                    op_q = op_q.reshape(*own_q.shape)
                # L_own + w L_opp (Alg. 2)
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
            if logging:  # the two actor terms' gradients separately, to log their norms (Alg. 1)
                grad_own = _grads(losses["own"], actor_params)
                grad_opp = _grads(losses["opponent"], actor_params)
                actor_grads = [a + w * b for a, b in zip(grad_own, grad_opp)]
            elif train_actor:
                actor_grads = _grads(losses["own"] + w * losses["opponent"], actor_params)
            critic_grads = torch.autograd.grad(q_loss, critic_params)

            # ---- update: actor step (clipped; not during the critic warm-up), critic step, EMA ----
            if train_actor:
                for p, g in zip(actor_params, actor_grads):
                    p.grad = g
                if cfg.train.actor_clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(actor_params, cfg.train.actor_clip_norm)
                actor_opt.step()
                actor_opt.zero_grad(set_to_none=True)
            for p, g in zip(critic_params, critic_grads):
                p.grad = g
            critic_opt.step()
            critic_opt.zero_grad(set_to_none=True)
            ema_update(target, agent, cfg.train.target_ema)
            sps_steps += cfg.train.batch_size * cfg.env.episode_length

            # ---- log, evaluate, checkpoint ----
            if logging:
                rewards = batch["rewards"]
                metrics = {
                    "losses/actor_own": losses["own"],
                    "losses/actor_opponent": losses["opponent"],
                    "losses/critic": q_loss,
                    "losses/entropy": losses["entropy"],
                    "losses/advantage": losses["advantage"],
                    "losses/grad_norm_own": torch.linalg.vector_norm(
                        torch.stack([g.norm() for g in grad_own])
                    ),
                    "losses/grad_norm_opponent": torch.linalg.vector_norm(
                        torch.stack([g.norm() for g in grad_opp])
                    ),
                    "charts/train_reward": rewards[..., 0].mean(),
                    "perf/env_steps_per_s": sps_steps / max(time.time() - tick, 1e-9),
                }
                if "own_pickups" in batch:
                    own, other = (
                        batch["own_pickups"][..., 0].sum(),
                        batch["other_pickups"][..., 0].sum(),
                    )
                    metrics["charts/train_own_coin_fraction"] = own / (own + other).clamp(min=1)
                if it % cfg.train.eval_every == 0 or it == cfg.train.iterations - 1:
                    metrics.update(periodic_eval(cfg, agent, eval_env, eval_gen))
                run.log(it, metrics)
                tick, sps_steps = time.time(), 0
            run.maybe_checkpoint(it + 1)
        run.save(cfg.train.iterations)
        return run.dir


@entry_point("python -m loqa.train")
def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(
        LoqaConfig,
        CONFIG_DIR,
        __doc__,
        argv,
        default_preset="ipd_quick",
        prog="python -m loqa.train",
    )
    run_dir = train(cfg)
    print(f"trained: {run_dir}  (evaluate: python -m loqa.eval --run {run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
