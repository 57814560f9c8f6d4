"""Evaluate an Advantage Alignment run from its directory alone: eval.json, cross-play, plots.

    python -m advantage_alignment.eval --run runs/advantage_alignment/quick/ipd_seed0

IPD: exact rewards per step (Markov chain of the two final policies, horizon T) in self-play and
against always-cooperate, always-defect, random and tit-for-tat, and P(C | start, CC, CD, DC, DD)
(Fig. 1b). Coin Game / Negotiation: sampled cross-play of the agent and the scripted bots
(always-cooperate, always-defect, random), as a matrix of the row player's reward per step (Fig. 2,
Fig. 3a), and the Coin Game's own-coin fractions. Plots: learning curves and the cross-play heat map.
The analyses across runs (cooperation bars, league bars) are here too and are used by reproduce.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from advantage_alignment.games import (
    BOTS,
    BotPlayer,
    LearnedPlayer,
    make_agent,
    make_env,
    play_match,
)
from advantage_alignment.networks import TabularIPDPolicy
from advantage_alignment.train import ipd_evaluate
from common import league
from common.envs.matrix_games import STATE_NAMES
from common.plots import bar_chart, heatmap, learning_curves
from common.results import print_results
from common.runner import CheckpointError, load_checkpoint, load_run_config, read_metrics

PLAYERS = ("agent", "always_cooperate", "always_defect", "random")


def load_agents(run_dir: Path | str):
    """(config, agents): the two IPD policies, or the one recurrent agent, of the final checkpoint."""
    cfg = load_run_config(run_dir)
    objects = load_checkpoint(run_dir)["objects"]
    try:
        if cfg.env.game == "ipd":
            agents = []
            for i in (0, 1):
                policy = TabularIPDPolicy()
                policy.load_state_dict(objects[f"agent_{i}"])
                agents.append(policy)
            return cfg, agents
        agent = make_agent(cfg)
        agent.load_state_dict(objects["agent"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint of {run_dir} does not match its config: {err}") from None
    return cfg, [agent.eval().requires_grad_(False)]


def cross_play(cfg, agent, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row player's reward per step (and own-coin fraction) against each column player, both [4, 4]."""
    env = make_env(cfg, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # Beta samples draw from the global generator

    def player(name):
        if name == "agent":
            return LearnedPlayer(agent, None, generator)
        return BotPlayer(BOTS[cfg.env.game][name], generator)

    rewards = np.zeros((len(PLAYERS), len(PLAYERS)))
    own = np.full((len(PLAYERS), len(PLAYERS)), np.nan)
    for i, row in enumerate(PLAYERS):
        for j, col in enumerate(PLAYERS[i:], start=i):
            match = play_match(env, (player(row), player(col)), episodes)
            rewards[i, j], rewards[j, i] = match["reward_0"], match["reward_1"]
            if "own_coin_fraction_0" in match:
                own[i, j], own[j, i] = match["own_coin_fraction_0"], match["own_coin_fraction_1"]
            if i == j:  # self-play: both seats are the same player
                rewards[i, i] = (match["reward_0"] + match["reward_1"]) / 2
                if "own_coin_fraction_0" in match:
                    own[i, i] = (match["own_coin_fraction_0"] + match["own_coin_fraction_1"]) / 2
    return rewards, own


def metric_curve(run_dir: Path | str, key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in read_metrics(run_dir) if key in r]
    return np.array([r["step"] for r in rows]), np.array([r[key] for r in rows])


def evaluate(run_dir: Path | str, episodes: int | None = None) -> dict[str, float]:
    """Final evaluation of one run; writes <run>/eval.json and <run>/plots/*.png."""
    run_dir = Path(run_dir)
    cfg, agents = load_agents(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    if cfg.env.game == "ipd":
        results = ipd_evaluate(agents, cfg.env.episode_length)
        probs = [results[f"p_coop_{s}"] for s in STATE_NAMES]
        bar_chart(
            plots / "p_coop.png",
            list(STATE_NAMES),
            probs,
            ylabel="P(cooperate | previous joint action)",
            title=f"IPD, beta = {cfg.loss.beta:g}",
        )
        curve_key = "eval/self_play_reward"
    else:
        episodes = episodes or cfg.train.eval_episodes
        rewards, own = cross_play(cfg, agents[0], episodes, seed=cfg.seed + 20_000)
        results = {}
        for i, row in enumerate(PLAYERS):
            for j, col in enumerate(PLAYERS):
                results[f"{row}_vs_{col}_reward"] = float(rewards[i, j])
                if cfg.env.game == "coin":
                    results[f"{row}_vs_{col}_own_coin_fraction"] = float(own[i, j])
        results["self_play_reward"] = results["agent_vs_agent_reward"]
        if cfg.env.game == "coin":
            results["self_play_own_coin_fraction"] = results["agent_vs_agent_own_coin_fraction"]
        heatmap(
            plots / "cross_play.png",
            rewards,
            list(PLAYERS),
            list(PLAYERS),
            title=f"{cfg.env.game}: row player's reward per step",
            xlabel="column player",
            ylabel="row player",
        )
        curve_key = "eval/self_play_reward"
    steps, values = metric_curve(run_dir, curve_key)
    if len(steps):
        learning_curves(
            plots / "learning_curve.png",
            {cfg.name: values},
            x=steps,
            xlabel="iteration",
            ylabel="self-play reward per step",
            title=cfg.env.game,
        )
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


# ------------------------------------------------------------------------- analyses across runs
def seed_curves(run_dirs: list[Path], key: str) -> tuple[np.ndarray, np.ndarray]:
    """[seeds, evaluations] of one logged key, truncated to the shortest run."""
    curves = [metric_curve(d, key) for d in run_dirs]
    length = min(len(v) for _, v in curves)
    return curves[0][0][:length], np.stack([v[:length] for _, v in curves])


def plot_learning_curves(
    path: Path,
    runs_by_setting: dict[str, list[Path]],
    key: str,
    ylabel: str,
    hline: dict[str, float] | None = None,
) -> Path:
    curves, x = {}, None
    for setting, dirs in runs_by_setting.items():
        x, curves[setting] = seed_curves(dirs, key)
    return learning_curves(path, curves, x=x, xlabel="iteration", ylabel=ylabel, hline=hline)


def plot_ipd_cooperation(path: Path, evals_by_setting: dict[str, list[dict]]) -> Path:
    """Fig. 1b: P(C | state) per setting, mean over seeds, as grouped bars (labels setting:state)."""
    labels, means, errors = [], [], []
    for setting, evals in evals_by_setting.items():
        for state in STATE_NAMES:
            values = np.array([e[f"p_coop_{state}"] for e in evals])
            labels.append(f"{setting}:{state}")
            means.append(values.mean())
            errors.append(values.std(ddof=1) if len(values) > 1 else 0.0)
    return bar_chart(
        path,
        labels,
        means,
        errors,
        ylabel="P(cooperate | previous joint action)",
        title="IPD cooperation probabilities (mean, std over seeds)",
    )


# ---------------------------------------------------------------------------------------------------
# The cross-paper league (common.league) finds AA's runs through these registrations.
# ---------------------------------------------------------------------------------------------------
class LeagueCoinPlayer:
    """An AA Coin Game agent as a league player (common.league): a fresh carry every reset."""

    def __init__(self, agent, generator: torch.Generator):
        self.agent, self.generator = agent, generator

    def reset(self, batch_size: int) -> None:
        self.player = LearnedPlayer(self.agent, None, self.generator)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.player.act(obs.flatten(1))[0]


def league_coin_player(run_dir: Path):
    _, (agent,) = load_agents(run_dir)
    return lambda generator: LeagueCoinPlayer(agent, generator)


def league_ipd_policy(run_dir: Path) -> torch.Tensor:
    _, agents = load_agents(run_dir)
    return agents[0].cooperation_probabilities().detach()  # the seat-0 agent's memory-1 policy


for _method, _prefix in (("aa", ""), ("aa_beta0", "beta0_")):  # aa_beta0: AA's beta = 0 control
    league.register(
        _method,
        "coin",
        league_coin_player,
        paper="advantage_alignment",
        pattern=f"coin_{_prefix}seed*",
    )
    league.register(
        _method,
        "ipd",
        league_ipd_policy,
        paper="advantage_alignment",
        pattern=f"ipd_{_prefix}seed*",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m advantage_alignment.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="run directory (runs/advantage_alignment/<name>)"
    )
    parser.add_argument(
        "--episodes", type=int, default=None, help="sampled episodes per cross-play pair"
    )
    args = parser.parse_args(argv)
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        results = evaluate(args.run, args.episodes)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"{parser.prog}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
