"""Evaluate a trained BRS run: best-response probes (IPD), the MCTS opponent (Coin Game), bots, self-play.

    python -m brs.eval --run runs/brs/quick/ipd/brs_sp_seed0
    python -m brs.eval --run runs/brs/quick/coin/brs_sp_seed0

Writes <run>/eval.json and plots into <run>/plots/. Needs nothing but the run directory.
IPD (exact values, per step, gamma = 0.96): the agent's value against each of `probe.seeds` fresh
gradient-ascent learners trained from scratch against it (worst and mean), its self-play value, its
P(C | state), and the detective's value against always-cooperate and tit-for-tat.
Coin Game: the agent against the MCTS planner (mcts.py) and, by sampled episodes, against itself,
always-cooperate and always-defect.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from brs.config import BrsConfig
from brs.mcts import Policy, mcts_match
from brs.model import IPDDetective, ipd_answers, ipd_values
from brs.probe import ipd_probe
from brs.rollouts import play, summary
from brs.train import BOT_LOGITS, USES_DETECTIVE, build_coin_players, make_coin_env
from common import league
from common.config import ConfigError
from common.envs.agents import coin_always_cooperate, coin_always_defect
from common.envs.matrix_games import STATE_NAMES
from common.plots import bar_chart, learning_curves
from common.results import print_results
from common.runner import CheckpointError, load_checkpoint, load_run_config, read_metrics


def load_run(run_dir: Path | str) -> tuple[DictConfig, dict]:
    """(config, checkpoint objects) of a finished run; one-line errors for a missing or corrupt run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"no run directory {run_dir}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(BrsConfig), load_run_config(run_dir))
    except CheckpointError:
        raise
    except Exception as err:
        raise ConfigError(
            f"cannot read {run_dir / 'config.yaml'}: {str(err).splitlines()[0]}"
        ) from None
    return cfg, load_checkpoint(run_dir)["objects"]


# ----------------------------------------------------------------------------------------------- IPD
def probe_ipd(agent_logits: torch.Tensor, cfg: DictConfig, seed: int = 0) -> dict[str, float]:
    """The agent (logits [5]) against fresh learners trained from scratch: worst and mean over seeds."""
    out = ipd_probe(
        agent_logits,
        seeds=cfg.probe.seeds,
        iterations=cfg.probe.iterations,
        lr=cfg.probe.lr,
        init_std=cfg.probe.init_std,
        gamma=cfg.env.gamma,
        generator=torch.Generator().manual_seed(10_000 + seed),
    )
    probe_p = ipd_answers(out["probe_logits"]).mean(0)
    return {
        "reward_vs_best_response": float(out["agent_value"].min()),
        "reward_vs_best_response_mean": float(out["agent_value"].mean()),
        "best_response_reward": float(out["probe_value"].mean()),
        **{f"best_response_p_coop_{s}": float(p) for s, p in zip(STATE_NAMES, probe_p)},
    }


def evaluate_ipd(cfg: DictConfig, objects: dict, plots: Path) -> dict[str, float]:
    theta = objects["agent"]["logits"]
    results = {"self_play_reward": float(ipd_values(theta, theta, cfg.env.gamma)[0])}
    results.update({f"p_coop_{s}": float(p) for s, p in zip(STATE_NAMES, ipd_answers(theta))})
    results.update(probe_ipd(theta, cfg, cfg.seed))
    if cfg.agent.variant in USES_DETECTIVE:
        detective = IPDDetective(cfg.detective.hidden)
        detective.load_state_dict(objects["detective"])
        with torch.no_grad():
            for bot, logits in {**BOT_LOGITS, "agent": theta}.items():
                results[f"detective_reward_vs_{bot}"] = float(
                    ipd_values(logits, detective(ipd_answers(logits)), cfg.env.gamma)[1]
                )
    bar_chart(
        plots / "policy.png",
        list(STATE_NAMES),
        [results[f"p_coop_{s}"] for s in STATE_NAMES],
        ylabel="P(cooperate | previous joint action)",
        title=f"IPD {cfg.agent.variant}: the agent's policy",
    )
    return results


# ------------------------------------------------------------------------------------------ Coin Game
def mcts_vs(policy: Policy, cfg: DictConfig, seed: int) -> dict[str, float]:
    """A Coin Game policy (seat 0) against the MCTS planner, with the run's MCTS settings."""
    m = cfg.mcts
    return mcts_match(
        policy,
        grid_size=cfg.env.grid_size,
        episode_length=cfg.env.episode_length,
        episodes=m.episodes,
        simulations=m.simulations,
        depth=m.depth,
        exploration=m.exploration,
        gamma=cfg.env.gamma,
        rollout=m.rollout,
        time_limit_s=m.time_limit_s,
        seed=seed,
    )


def evaluate_coin(cfg: DictConfig, objects: dict, episodes: int) -> dict[str, float]:
    agent, _ = build_coin_players(cfg)
    agent.load_state_dict(objects["agent"])
    agent.requires_grad_(False)
    env, gen = (
        make_coin_env(cfg, 20_000 + cfg.seed),
        torch.Generator().manual_seed(20_000 + cfg.seed),
    )
    results: dict[str, float] = {}
    with torch.no_grad():
        for name, opponent in (
            ("self_play", agent),
            ("vs_always_cooperate", coin_always_cooperate),
            ("vs_always_defect", coin_always_defect),
        ):
            stats = summary(play(env, agent, opponent, episodes, gen))
            results[f"{name}_reward"] = stats["agent_reward"]
            results[f"{name}_opponent_reward"] = stats["opponent_reward"]
            results[f"{name}_own_coin_fraction"] = stats["agent_own_coin_fraction"]
    match = mcts_vs(Policy(agent=agent), cfg, 30_000 + cfg.seed)
    results.update(
        {
            "agent_reward_vs_mcts": match["agent_reward"],
            "mcts_reward_vs_agent": match["mcts_reward"],
            "own_coin_fraction_vs_mcts": match["agent_own_coin_fraction"],
            "mcts_steps": match["steps"],
            "mcts_seconds": match["seconds"],
        }
    )
    return results


class LeaguePlayer:
    """A BRS Coin Game agent as a league player (common.league): samples its policy, keeps its GRU carry."""

    def __init__(self, agent, generator: torch.Generator):
        self.agent, self.generator = agent, generator

    def reset(self, batch_size: int) -> None:
        self.carry = self.agent.initial_carry(batch_size)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        logits, _, self.carry = self.agent(obs.flatten(1), self.carry)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)


def league_coin_player(run_dir: Path):
    """League loader: a run's Coin Game agent (the leader) as a factory of players."""
    cfg, objects = load_run(run_dir)
    agent, _ = build_coin_players(cfg)
    agent.load_state_dict(objects["agent"])
    agent.requires_grad_(False)
    return lambda generator: LeaguePlayer(agent, generator)


def league_ipd_policy(run_dir: Path) -> torch.Tensor:
    """League loader: a run's exact IPD policy P(C | start, CC, CD, DC, DD) [5]."""
    _, objects = load_run(run_dir)
    return ipd_answers(objects["agent"]["logits"]).detach()


league.register("brs_sp", "coin", league_coin_player, paper="brs", pattern="coin/brs_sp_seed*")
league.register("brs_sp", "ipd", league_ipd_policy, paper="brs", pattern="ipd/brs_sp_seed*")
league.register("brs", "ipd", league_ipd_policy, paper="brs", pattern="ipd/brs_seed*")
league.register("brs", "coin", league_coin_player, paper="brs", pattern="coin/brs_seed*")


def plot_curves(run_dir: Path, plots: Path) -> None:
    """Training curves of every logged scalar group that exists in metrics.jsonl."""
    rows = read_metrics(run_dir)
    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    keys = sorted({k for r in rows for k in r if k not in ("step", "time_s")})
    groups = {
        "rewards": [k for k in keys if "reward" in k],
        "policy": [k for k in keys if "p_coop" in k],
        "losses": [k for k in keys if k.startswith(("loss/", "objective/")) or "grad_norm" in k],
    }
    for name, group in groups.items():
        if group:
            curves = {k: np.array([r.get(k, np.nan) for r in rows]) for k in group}
            learning_curves(
                plots / f"curves_{name}.png",
                curves,
                xlabel="leader iteration",
                ylabel=name,
                x=steps,
            )


def evaluate(run_dir: Path | str, episodes: int = 256) -> dict[str, float]:
    """Evaluate a run directory; writes <run>/eval.json and plots; returns the flat results."""
    run_dir = Path(run_dir)
    cfg, objects = load_run(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    if cfg.env.game == "ipd":
        results = evaluate_ipd(cfg, objects, plots)
    else:
        results = evaluate_coin(cfg, objects, episodes)
    plot_curves(run_dir, plots)
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m brs.eval", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="a run directory written by python -m brs.train"
    )
    parser.add_argument(
        "--episodes", type=int, default=256, help="Coin Game: sampled episodes per pairing"
    )
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.run, args.episodes)
    except (ConfigError, CheckpointError, KeyError, RuntimeError) as err:
        print(f"{parser.prog}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
