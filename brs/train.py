"""Train a BRS leader and its detective on the exact IPD or the Coin Game (reconstruction, see README).

    python -m brs.train --config ipd_quick                           # BRS-SP on the exact IPD, ~10 s
    python -m brs.train --config ipd_quick agent.variant=brs name=ipd_brs
    python -m brs.train --config coin_quick                          # BRS-SP, 3x3 Coin Game

Each leader iteration: K detective updates against agents drawn from D (the detective), then one leader update on
the variant's objective (model.py), and every m iterations the leader is pushed into the agent buffer.
The run directory (runs/brs/<name>/) holds everything eval.py needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from brs.config import CONFIG_DIR, BrsConfig, validate
from brs.model import (
    CoinAgent,
    CoinDetective,
    IPDDetective,
    actor_critic_loss,
    brs_leader_loss,
    discounted_returns,
    ipd_answers,
    ipd_detective_loss,
    ipd_leader_objective,
    ipd_values,
    self_play_loss,
)
from brs.rollouts import play, summary
from common.agent_buffer import AgentBuffer
from common.config import parse_args
from common.envs.agents import IPD_ALWAYS_COOPERATE, IPD_TIT_FOR_TAT
from common.envs.coin_game import CoinGame
from common.runner import Run

USES_DETECTIVE = ("brs", "brs_sp")
USES_SELF_PLAY = ("brs_sp", "brs_sp_no_detective", "naive")
# Logits of the scripted IPD bots (P = 0 or 1 as logits -+10) for the detective's checks.
BOT_LOGITS = {
    "always_cooperate": torch.logit(IPD_ALWAYS_COOPERATE.clamp(1e-4, 1 - 1e-4)),
    "tit_for_tat": torch.logit(IPD_TIT_FOR_TAT.clamp(1e-4, 1 - 1e-4)),
}


class IPDAgent(nn.Module):
    """The IPD leader: five logits of P(C | start, CC, CD, DC, DD)."""

    def __init__(self, init: Tensor):
        super().__init__()
        self.logits = nn.Parameter(init.clone())


# ----------------------------------------------------------------------------------------------- IPD
def ipd_detective_batch(
    cfg: DictConfig, theta: Tensor, buffer: AgentBuffer, gen: torch.Generator, warmup: bool
) -> Tensor:
    """Agents [N, 5] the detective best-responds to: D = random agents with wide logits (always), and after
    warm-up the current leader, noisy copies of it and past leaders (the mixture is ours)."""
    det = cfg.detective
    agents = [det.random_std * torch.randn(det.random_agents, 5, generator=gen)]
    if not warmup:
        agents.append(theta.detach().view(1, 5))
        agents.append(
            theta.detach() + det.noise_std * torch.randn(det.noise_agents, 5, generator=gen)
        )
        if buffer.size and det.buffer_agents:
            agents.append(buffer.sample(det.buffer_agents, gen)["logits"])
    return torch.cat(agents)


def train_ipd(cfg: DictConfig, run: Run) -> None:
    gen = torch.Generator().manual_seed(cfg.seed)
    agent = IPDAgent(cfg.agent.init_std * torch.randn(5, generator=gen))
    detective = IPDDetective(cfg.detective.hidden)
    agent_opt = torch.optim.Adam(agent.parameters(), lr=cfg.agent.lr)
    detective_opt = torch.optim.Adam(detective.parameters(), lr=cfg.detective.lr)
    buffer = AgentBuffer(cfg.detective.buffer_capacity)
    run.track(
        agent=agent,
        detective=detective,
        agent_opt=agent_opt,
        detective_opt=detective_opt,
        buffer=buffer,
        generator=gen,
    )
    start = run.restore()
    gamma, variant = cfg.env.gamma, cfg.agent.variant
    uses_detective = variant in USES_DETECTIVE

    def detective_step(warmup: bool) -> Tensor:
        agents = ipd_detective_batch(cfg, agent.logits, buffer, gen, warmup)
        loss = ipd_detective_loss(detective, agents, gamma, cfg.detective.logit_penalty)
        detective_opt.zero_grad()
        loss.backward()
        detective_opt.step()
        return -loss.detach()

    # Warm the detective up on random agents only (calibrated, README).
    if start == 0 and uses_detective:
        for _ in range(cfg.detective.warmup_steps):
            detective_step(warmup=True)

    for step in run.steps(start, cfg.agent.iterations):
        if uses_detective:
            for _ in range(cfg.detective.steps_per_agent_step):
                detective_return = detective_step(warmup=False)
        terms = ipd_leader_objective(
            agent.logits,
            detective,
            variant,
            gamma,
            cfg.agent.detective_weight,
            cfg.agent.self_play_weight,
        )
        agent_opt.zero_grad()
        (-sum(terms.values())).backward()
        agent_opt.step()
        if (step + 1) % cfg.detective.buffer_push_every == 0:
            buffer.push(agent)
        if step % cfg.log_every == 0 or step + 1 == cfg.agent.iterations:
            with torch.no_grad():
                theta = agent.logits.detach()
                metrics = {f"objective/{k}": v for k, v in terms.items()}
                metrics["agent/self_play_reward"] = ipd_values(theta, theta, gamma)[0]
                for i, state in enumerate(("start", "CC", "CD", "DC", "DD")):
                    metrics[f"agent/p_coop_{state}"] = ipd_answers(theta)[i]
                if uses_detective:
                    reply = detective(ipd_answers(theta))
                    agent_value, detective_value = ipd_values(theta, reply, gamma)
                    metrics.update(
                        {
                            "detective/agent_reward": agent_value,
                            "detective/detective_reward": detective_value,
                        }
                    )
                    metrics["detective/batch_objective"] = detective_return
                    for bot, logits in BOT_LOGITS.items():
                        metrics[f"detective/reward_vs_{bot}"] = ipd_values(
                            logits, detective(ipd_answers(logits)), gamma
                        )[1]
            run.log(step, metrics)
        run.maybe_checkpoint(step + 1)
    run.save(cfg.agent.iterations)


# ------------------------------------------------------------------------------------------ Coin Game
def make_coin_env(cfg: DictConfig, seed: int) -> CoinGame:
    return CoinGame(grid_size=cfg.env.grid_size, episode_length=cfg.env.episode_length, seed=seed)


def build_coin_players(cfg: DictConfig) -> tuple[CoinAgent, CoinDetective]:
    obs_dim = 4 * cfg.env.grid_size**2
    agent = CoinAgent(obs_dim, cfg.agent.hidden)
    return agent, CoinDetective(obs_dim, cfg.detective.hidden, cfg.detective.questions)


def train_coin(cfg: DictConfig, run: Run) -> None:
    gen = torch.Generator().manual_seed(cfg.seed)
    env = make_coin_env(cfg, cfg.seed)
    agent, detective = build_coin_players(cfg)
    # The agent the detective plays: a past or the current leader.
    frozen, _ = build_coin_players(cfg)
    frozen.requires_grad_(False)
    agent_opt = torch.optim.Adam(agent.parameters(), lr=cfg.agent.lr)
    detective_opt = torch.optim.Adam(detective.parameters(), lr=cfg.detective.lr)
    buffer = AgentBuffer(cfg.detective.buffer_capacity)
    run.track(
        agent=agent,
        detective=detective,
        agent_opt=agent_opt,
        detective_opt=detective_opt,
        buffer=buffer,
        generator=gen,
        env_generator=env.generator,
    )
    start = run.restore()
    gamma, variant, batch = cfg.env.gamma, cfg.agent.variant, cfg.agent.batch_size
    uses_detective = variant in USES_DETECTIVE

    def detective_step(use_buffer: bool) -> dict[str, float]:
        """A2C on the detective's own return against a frozen leader (answers are constants)."""
        if (
            use_buffer
            and buffer.size
            and torch.rand((), generator=gen) < cfg.detective.buffer_fraction
        ):
            frozen.load_state_dict({k: v[0] for k, v in buffer.sample(1, gen).items()})
        else:
            frozen.load_state_dict(agent.state_dict())
        episode = play(env, frozen, detective, batch, gen)
        returns = discounted_returns(episode["rewards"][..., 1], gamma)
        policy, value = actor_critic_loss(
            episode["logp"][..., 1],
            episode["values"][..., 1],
            returns,
            episode["entropy"][..., 1],
            cfg.detective.entropy_beta,
        )
        detective_opt.zero_grad()
        (policy + value).backward()
        detective_opt.step()
        return summary(episode)

    if start == 0 and uses_detective:
        for _ in range(cfg.detective.warmup_steps):
            detective_step(use_buffer=False)

    for step in run.steps(start, cfg.agent.iterations):
        metrics: dict[str, float] = {}
        losses: dict[str, Tensor] = {}
        if uses_detective:
            for _ in range(cfg.detective.steps_per_agent_step):
                detective_stats = detective_step(use_buffer=True)
            metrics["detective/train_reward"] = detective_stats["opponent_reward"]
            # Answers differentiable in theta (paper: the BRS update).
            episode = play(env, agent, detective, batch, gen)
            losses.update(brs_leader_loss(episode, gamma, cfg.agent.detective_weight))
            stats = summary(episode)
            metrics.update(
                {
                    "vs_detective/agent_reward": stats["agent_reward"],
                    "vs_detective/detective_reward": stats["opponent_reward"],
                }
            )
            metrics["vs_detective/agent_own_coin_fraction"] = stats["agent_own_coin_fraction"]
        if variant in USES_SELF_PLAY:
            episode = play(env, agent, agent, batch, gen)
            if variant == "naive":  # each seat maximises its own return only
                returns = discounted_returns(episode["rewards"].transpose(1, 2), gamma).transpose(
                    1, 2
                )
                policy, value = actor_critic_loss(
                    episode["logp"], episode["values"], returns, episode["entropy"], 0.0
                )
                losses.update({"naive": policy, "self_play_value": value})
            else:
                losses.update(self_play_loss(episode, gamma, cfg.agent.self_play_weight))
            stats = summary(episode)
            metrics.update(
                {
                    "self_play/reward": stats["agent_reward"],
                    "self_play/own_coin_fraction": stats["agent_own_coin_fraction"],
                }
            )
        entropy = episode["entropy"][..., 0].mean()
        loss = sum(losses.values()) - cfg.agent.entropy_beta * entropy
        agent_opt.zero_grad()
        loss.backward()
        if cfg.agent.grad_clip > 0:
            metrics["agent/grad_norm"] = float(
                nn.utils.clip_grad_norm_(agent.parameters(), cfg.agent.grad_clip)
            )
        agent_opt.step()
        if (step + 1) % cfg.detective.buffer_push_every == 0:
            buffer.push(agent)
        if step % cfg.log_every == 0 or step + 1 == cfg.agent.iterations:
            metrics.update({f"loss/{k}": float(v.detach()) for k, v in losses.items()})
            metrics["agent/entropy"] = float(entropy.detach())
            run.log(step, metrics)
        run.maybe_checkpoint(step + 1)
    run.save(cfg.agent.iterations)


def train(cfg: DictConfig) -> Path:
    """Train one leader (and its detective) as cfg says; returns the run directory."""
    validate(cfg)
    with Run(cfg, paper="brs") as run:
        print(
            f"brs: {cfg.env.game} {cfg.agent.variant} seed {cfg.seed} -> {run.dir}", file=sys.stderr
        )
        (train_ipd if cfg.env.game == "ipd" else train_coin)(cfg, run)
    return run.dir


def main(argv: list[str] | None = None) -> int:
    from common.config import ConfigError
    from common.runner import CheckpointError

    cfg = parse_args(
        BrsConfig, CONFIG_DIR, __doc__, argv, default_preset="ipd_quick", prog="python -m brs.train"
    )
    try:
        train(cfg)
    except (ConfigError, CheckpointError) as err:
        print(f"python -m brs.train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
