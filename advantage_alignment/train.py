"""Train Advantage Alignment agents on the IPD, the Coin Game or the Negotiation Game (arXiv 2406.14662).

    python -m advantage_alignment.train --config ipd_quick                  # two tabular agents, ~10 s
    python -m advantage_alignment.train --config ipd_quick loss.beta=0 name=ipd_beta0   # the PG control
    python -m advantage_alignment.train --config coin_quick seed=1
    python -m advantage_alignment.train --config negotiation_quick loss.proximal=true   # PAA

IPD: two separate tabular memory-1 agents play each other; each one's critic is the exact value of
the memory-1 states (Markov chain of the two policies). Coin Game / Negotiation: one GRU agent (policy
+ critic) at seat 0 plays, at seat 1, itself (the first group of episodes) and past selves from the
agent buffer (the other groups). Each iteration: roll out, GAE advantages of both seats (the
opponent's from its own critic on its own observations), A* (model.py), one REINFORCE step (AA) or
several PPO steps (PAA) on A*, one critic step. Everything eval.py needs is in the run directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from advantage_alignment.config import CONFIG_DIR, AAConfig
from advantage_alignment.games import (
    BOTS,
    IPD_BOTS,
    BotPlayer,
    LearnedPlayer,
    ipd_exact_rewards,
    ipd_sample_episodes,
    make_agent,
    make_env,
    play_match,
    rollout,
)
from advantage_alignment.model import (
    aa_actor_loss,
    aligned_advantage,
    critic_loss,
    gae,
    paa_actor_loss,
)
from advantage_alignment.networks import (
    TabularIPDPolicy,
    clamp_beta_sample,
    current_params,
    ipd_state_values,
    split_params,
)
from common.agent_buffer import AgentBuffer
from common.cli import entry_point
from common.config import parse_args, validate
from common.envs.matrix_games import STATE_NAMES
from common.runner import Run

PAPER = "advantage_alignment"
# Player 2's own-view memory-1 state -> the global (player 1's view) state: CD <-> DC.
TO_GLOBAL_STATE = (torch.arange(5), torch.tensor([0, 1, 3, 2, 4]))


def train(cfg: DictConfig) -> Path:
    validate(cfg)
    with Run(cfg, paper=PAPER) as run:
        print(f"run dir: {run.dir}", file=sys.stderr)
        if cfg.env.game == "ipd":
            train_ipd(cfg, run)
        else:
            train_recurrent(cfg, run)
        run.save(cfg.train.iterations)
        return run.dir


# ------------------------------------------------------------------------------------------- IPD
def ipd_advantages(states, rewards, values, seat: int, gamma: float, lam: float) -> torch.Tensor:
    """GAE of one seat with the exact state values as the critic: [B, T]. The IPD has no terminal
    state in the value model, so the last step bootstraps V(s_T) (infinite-horizon values)."""
    global_states = TO_GLOBAL_STATE[seat][states[..., seat]]  # [B, T+1]
    v = values[global_states, seat]
    return gae(rewards[..., seat], v, gamma=gamma, lam=lam)


def ipd_evaluate(policies, horizon: int) -> dict[str, float]:
    """Exact: self-play rewards per step, each agent vs the bots, and P(C | state) of both agents."""
    p = [pol.cooperation_probabilities().detach().double() for pol in policies]
    r1, r2 = ipd_exact_rewards(p[0], p[1], horizon)
    out = {"self_play_reward": (r1 + r2) / 2, "reward_0": r1, "reward_1": r2}
    for name, bot in IPD_BOTS.items():
        mine = [ipd_exact_rewards(p[i], bot.double(), horizon) for i in (0, 1)]
        out[f"vs_{name}_reward"] = (mine[0][0] + mine[1][0]) / 2
        out[f"{name}_vs_agent_reward"] = (mine[0][1] + mine[1][1]) / 2
    for i, state in enumerate(STATE_NAMES):
        out[f"p_coop_{state}"] = float((p[0][i] + p[1][i]) / 2)
    return out


def train_ipd(cfg: DictConfig, run: Run) -> None:
    policies = [TabularIPDPolicy(), TabularIPDPolicy()]
    optims = [torch.optim.Adam(pol.parameters(), lr=cfg.train.actor_lr) for pol in policies]
    env = make_env(cfg, seed=cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    run.track(
        agent_0=policies[0], agent_1=policies[1], opt_0=optims[0], opt_1=optims[1], gen=generator
    )
    start = run.restore()
    loss_cfg = cfg.loss
    for it in run.steps(start, cfg.train.iterations):
        batch = ipd_sample_episodes(
            env, policies, cfg.train.batch_size, loss_cfg.epsilon, generator
        )
        with torch.no_grad():
            p = [pol.cooperation_probabilities() for pol in policies]
            values = ipd_state_values(p[0], p[1], gamma=loss_cfg.gamma)  # [5, 2], the exact critic
        adv = [
            ipd_advantages(
                batch["states"], batch["rewards"], values, seat, loss_cfg.gamma, loss_cfg.gae_lambda
            )
            for seat in (0, 1)
        ]
        for seat, (pol, opt) in enumerate(zip(policies, optims)):
            aligned = aligned_advantage(  # Eq. 8: own advantage + beta * past own x opponent's now
                adv[seat],
                adv[1 - seat],
                loss_cfg.beta,
                aggregation=loss_cfg.aggregation,
                decay=loss_cfg.memory_decay,
                gamma=loss_cfg.gamma,
                normalize=loss_cfg.normalize_advantages,
            )
            log_prob = pol.log_prob(batch["states"][:, :-1, seat], batch["actions"][..., seat])
            loss = aa_actor_loss(log_prob, aligned)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if it % cfg.train.log_every == 0 or it == cfg.train.iterations - 1:
            metrics = {
                f"eval/{k}": v for k, v in ipd_evaluate(policies, cfg.env.episode_length).items()
            }
            metrics["charts/train_reward"] = float(batch["rewards"].mean())
            run.log(it, metrics)
        run.maybe_checkpoint(it + 1)


# ------------------------------------------------------------------ Coin Game and Negotiation Game
def seat_log_prob(agent, obs: torch.Tensor, samples: torch.Tensor):
    """Log-probs and entropies of the learner's actions: obs [B, T, D], samples [B, T(, 3)]."""
    out = agent.actor.sequence(obs.unsqueeze(0)).squeeze(0)
    dist = agent.distribution(out)
    if agent.kind == "beta":
        samples = clamp_beta_sample(samples)
    return dist.log_prob(samples), dist.entropy()


def with_time(obs: torch.Tensor) -> torch.Tensor:
    """Append t/T to the critic's input ([..., T+1, D] -> [..., T+1, D+1]): episodes are finite."""
    steps = obs.shape[-2]
    t = torch.arange(steps, dtype=obs.dtype, device=obs.device) / (steps - 1)
    return torch.cat(
        [obs, t.view(*([1] * (obs.dim() - 2)), steps, 1).expand(*obs.shape[:-1], 1)], -1
    )


def critic_values(agent, obs: torch.Tensor, params=None) -> torch.Tensor:
    """V(h_t) for t = 0..T-1 and 0 after the last step: obs [K, N, T+1, D] -> [K, N, T+1]."""
    values = agent.critic.sequence(with_time(obs), params).squeeze(-1)
    return torch.cat([values[..., :-1], torch.zeros_like(values[..., -1:])], -1)


def quick_evaluate(cfg, agent, env, generator) -> dict[str, float]:
    """Sampled self-play and games against always-defect, for the learning curves."""
    episodes = cfg.train.eval_episodes
    me = LearnedPlayer(agent, None, generator)
    self_play = play_match(env, (me, LearnedPlayer(agent, None, generator)), episodes)
    vs_defect = play_match(
        env, (me, BotPlayer(BOTS[cfg.env.game]["always_defect"], generator)), episodes
    )
    out = {
        "eval/self_play_reward": (self_play["reward_0"] + self_play["reward_1"]) / 2,
        "eval/vs_always_defect_reward": vs_defect["reward_0"],
        "eval/always_defect_vs_agent_reward": vs_defect["reward_1"],
    }
    if "own_coin_fraction_0" in self_play:
        own = (self_play["own_coin_fraction_0"] + self_play["own_coin_fraction_1"]) / 2
        out["eval/self_play_own_coin_fraction"] = own
    return out


def train_recurrent(cfg: DictConfig, run: Run) -> None:
    agent = make_agent(cfg)
    actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=cfg.train.actor_lr)
    critic_opt = torch.optim.Adam(agent.critic.parameters(), lr=cfg.train.critic_lr)
    env, eval_env = make_env(cfg, seed=cfg.seed), make_env(cfg, seed=cfg.seed + 10_000)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    eval_generator = torch.Generator().manual_seed(cfg.seed + 2)
    buffer = AgentBuffer(max(cfg.train.buffer_capacity, 1))
    run.track(
        agent=agent,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        buffer=buffer,
        env_gen=env.generator,
        eval_env_gen=eval_env.generator,
        gen=generator,
        eval_gen=eval_generator,
    )
    start = run.restore()
    loss_cfg, groups = cfg.loss, cfg.train.opponents_per_batch
    use_buffer = cfg.train.buffer_capacity > 0
    for it in run.steps(start, cfg.train.iterations):
        # ---- opponents: group 0 = the current agent, the others = past selves from the buffer ----
        if use_buffer and it % cfg.train.buffer_push_every == 0:
            buffer.push(agent)
        opponents = current_params(agent)
        if use_buffer and groups > 1:
            past = buffer.sample(groups - 1, generator)
            opponents = {k: torch.cat([v, past[k]]) for k, v in opponents.items()}
        else:
            opponents = {k: v.expand(groups, *v.shape[1:]) for k, v in opponents.items()}
        batch = rollout(
            env,
            (LearnedPlayer(agent, None, generator), LearnedPlayer(agent, opponents, generator)),
            cfg.train.batch_size,
        )
        obs, rewards = batch["obs"], batch["rewards"]  # [B, T+1, 2, D], [B, T, 2]
        size = cfg.train.batch_size

        # ---- advantages: own critic on own seat, each opponent's critic on the opponent's seat ----
        own_values = critic_values(agent, obs[:, :, 0].unsqueeze(0)).squeeze(0)  # [B, T+1], grads
        with torch.no_grad():
            op_obs = obs[:, :, 1].reshape(groups, size // groups, *obs.shape[1:2], -1)
            op_values = critic_values(agent, op_obs, split_params(opponents, "critic")).reshape(
                size, -1
            )
            own_adv = gae(
                rewards[..., 0], own_values.detach(), gamma=loss_cfg.gamma, lam=loss_cfg.gae_lambda
            )
            op_adv = gae(rewards[..., 1], op_values, gamma=loss_cfg.gamma, lam=loss_cfg.gae_lambda)
        aligned = aligned_advantage(  # Eq. 8
            own_adv,
            op_adv,
            loss_cfg.beta,
            aggregation=loss_cfg.aggregation,
            decay=loss_cfg.memory_decay,
            gamma=loss_cfg.gamma,
            normalize=loss_cfg.normalize_advantages,
        )

        # ---- actor: REINFORCE on A* (AA) or PPO epochs on A* (PAA); critic: Huber on GAE returns ----
        samples = batch["samples"][:, :, 0]
        if loss_cfg.proximal:
            with torch.no_grad():
                old_log_prob, _ = seat_log_prob(agent, obs[:, :-1, 0], samples)
            for _ in range(loss_cfg.ppo_epochs):
                log_prob, entropy = seat_log_prob(agent, obs[:, :-1, 0], samples)
                actor_loss = paa_actor_loss(
                    log_prob,
                    old_log_prob,
                    aligned,
                    clip=loss_cfg.clip,
                    entropy=entropy,
                    entropy_coef=loss_cfg.entropy_coef,
                )
                _step(actor_opt, actor_loss, agent.actor, cfg.train.clip_norm)
        else:
            log_prob, entropy = seat_log_prob(agent, obs[:, :-1, 0], samples)
            actor_loss = aa_actor_loss(log_prob, aligned, entropy, loss_cfg.entropy_coef)
            _step(actor_opt, actor_loss, agent.actor, cfg.train.clip_norm)
        value_loss = critic_loss(own_values[:, :-1], own_adv + own_values[:, :-1].detach())
        _step(critic_opt, value_loss, agent.critic, cfg.train.clip_norm)

        # ---- log, evaluate, checkpoint ----
        if it % cfg.train.log_every == 0 or it == cfg.train.iterations - 1:
            metrics = {
                "losses/actor": actor_loss,
                "losses/critic": value_loss,
                "losses/entropy": entropy.mean(),
                "charts/train_reward": rewards[..., 0].mean(),
            }
            if "own" in batch:
                own, other = batch["own"][..., 0].sum(), batch["other"][..., 0].sum()
                metrics["charts/train_own_coin_fraction"] = own / (own + other).clamp(min=1)
            if it % cfg.train.eval_every == 0 or it == cfg.train.iterations - 1:
                metrics.update(quick_evaluate(cfg, agent, eval_env, eval_generator))
            run.log(it, metrics)
        run.maybe_checkpoint(it + 1)


def _step(optimizer, loss, module, clip_norm: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip_norm)
    optimizer.step()


@entry_point("python -m advantage_alignment.train")
def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(
        AAConfig,
        CONFIG_DIR,
        __doc__,
        argv,
        default_preset="ipd_quick",
        prog="python -m advantage_alignment.train",
    )
    run_dir = train(cfg)
    print(f"trained: {run_dir}  (evaluate: python -m advantage_alignment.eval --run {run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
