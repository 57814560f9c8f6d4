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
from dataclasses import dataclass
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
from common.runner import Run, keep_freed_memory
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
from loqa.rollout import rollout, sample_opponents


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


@dataclass
class Learner:
    """The trained agent, its EMA target critic and their optimisers."""

    agent: LoqaAgent
    target: LoqaAgent
    actor_params: list
    critic_params: list
    actor_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer


def make_learner(cfg: DictConfig, device: torch.device | str = "cpu") -> Learner:
    agent = make_agent(cfg).to(device)
    target = copy.deepcopy(agent).requires_grad_(False)
    critic_params = list(agent.critic.parameters())
    # Advantage gradients (the authors' quirk) reach the critic through the actor's optimiser.
    actor_params = list(agent.parameters() if cfg.loss.advantage_grad else agent.actor.parameters())
    return Learner(
        agent,
        target,
        actor_params,
        critic_params,
        torch.optim.Adam(actor_params, lr=cfg.train.actor_lr),
        torch.optim.Adam(critic_params, lr=cfg.train.critic_lr),
    )


def train_step(
    cfg: DictConfig,
    learner: Learner,
    env,
    opponents: tuple[Params, torch.Tensor | None],
    generator: torch.Generator,
    it: int,
    logging: bool,
) -> dict:
    """One LOQA iteration (Alg. 1): play a batch, one actor step on L_own + w L_opp (not during the
    critic warm-up), one critic step, the EMA target. Returns the batch and the losses (and, when
    logging, the two actor terms' gradients, whose norms are logged). opponents: stacked parameters of
    the distinct opponents and which one each group of episodes plays (None: group k plays k)."""
    agent, target, loss_cfg, w = learner.agent, learner.target, cfg.loss, cfg.loss.shaping_weight
    train_actor = it >= cfg.train.critic_warmup
    batch = rollout(
        env,
        agent,
        opponents[0],
        opponent_index=opponents[1],
        batch_size=cfg.train.batch_size,
        epsilon=cfg.env.epsilon,
        generator=generator,
        opponents_per_block=cfg.train.rollout_block_opponents,
        native=cfg.train.native_rollout,
        opponent_outputs=train_actor or logging,  # the shaping term's opponent actor and critic
    )
    own_obs = batch["obs"][:, :, 0]  # [B, T+1, D]

    # ---- forward: our actor/critic with gradients; the EMA target is a constant ----
    own_logits, own_q = agent.sequence(own_obs)
    with torch.no_grad():
        target_logits, target_q = target.sequence(own_obs)
    q_loss = critic_loss(  # expected SARSA with the EMA target (Alg. 1)
        own_q,
        target_logits,
        target_q,
        batch["actions"][..., 0],
        batch["rewards"][..., 0],
        gamma=loss_cfg.gamma,
        huber_delta=loss_cfg.huber_delta,
    )
    out = {"batch": batch, "critic": q_loss}
    if train_actor or logging:
        out["losses"] = losses = loqa_actor_losses(  # L_own + w L_opp (Alg. 2)
            own_logits,
            own_q,
            batch["op_logits"],
            batch["op_q"],
            batch["actions"],
            batch["rewards"],
            gamma=loss_cfg.gamma,
            dice_lambda=loss_cfg.dice_lambda,
            temperature=loss_cfg.temperature,
            entropy_beta=loss_cfg.entropy_beta,
            advantage_grad=loss_cfg.advantage_grad,
            bootstrap_opponent_return=loss_cfg.bootstrap_opponent_return,
        )
    actor_params, critic_params = learner.actor_params, learner.critic_params
    if logging:  # the two actor terms' gradients separately, to log their norms (Alg. 1)
        out["grad_own"] = grad_own = _grads(losses["own"], actor_params)
        out["grad_opp"] = grad_opp = _grads(losses["opponent"], actor_params)
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
        learner.actor_opt.step()
        learner.actor_opt.zero_grad(set_to_none=True)
    for p, g in zip(critic_params, critic_grads):
        p.grad = g
    learner.critic_opt.step()
    learner.critic_opt.zero_grad(set_to_none=True)
    ema_update(target, agent, cfg.train.target_ema)
    return out


def train(cfg: DictConfig) -> Path:
    """Train one agent; returns its run directory."""
    validate(cfg)
    keep_freed_memory()  # no page faults on the same big activations every iteration (runner.py)
    with Run(cfg, paper="loqa") as run:
        device = run.device
        # ---- build: agent, EMA target, optimisers, environments, generators ----
        learner = make_learner(cfg, device)
        agent = learner.agent
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
            target=learner.target,
            actor_opt=learner.actor_opt,
            critic_opt=learner.critic_opt,
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
        tick, sps_steps = time.time(), 0

        for it in run.steps(start, cfg.train.iterations):
            # ---- opponents: past agents from the buffer (coin) or the current agent itself (IPD) ----
            if use_buffer:
                if it % cfg.train.buffer_push_every == 0:
                    buffer.push(agent)
                # the distinct agents drawn, and which one each group of episodes plays
                opponents = sample_opponents(buffer, cfg.train.opponents_per_batch, policy_gen)
            else:
                opponents = stacked_params(agent), None
            logging = it % cfg.train.log_every == 0 or it == cfg.train.iterations - 1
            step = train_step(cfg, learner, env, opponents, policy_gen, it, logging)
            sps_steps += cfg.train.batch_size * cfg.env.episode_length

            # ---- log, evaluate, checkpoint ----
            if logging:
                batch, losses = step["batch"], step["losses"]
                rewards = batch["rewards"]
                metrics = {
                    "losses/actor_own": losses["own"],
                    "losses/actor_opponent": losses["opponent"],
                    "losses/critic": step["critic"],
                    "losses/entropy": losses["entropy"],
                    "losses/advantage": losses["advantage"],
                    "losses/grad_norm_own": torch.linalg.vector_norm(
                        torch.stack([g.norm() for g in step["grad_own"]])
                    ),
                    "losses/grad_norm_opponent": torch.linalg.vector_norm(
                        torch.stack([g.norm() for g in step["grad_opp"]])
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
