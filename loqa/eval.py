"""Evaluate a trained LOQA run from its directory alone: final metrics JSON and plots.

    python -m loqa.eval --run runs/loqa/quick/ipd/loqa_seed0

IPD: exact rewards per step (Markov chain, no exploration) in self-play, against always-defect and
always-cooperate, and P(C | start, CC, CD, DC, DD). Coin Game: sampled self-play and matches against
always-cooperate, always-defect and random. Writes <run>/eval.json and <run>/plots/*.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from common.envs.agents import coin_always_cooperate, coin_always_defect, coin_random
from common.plots import bar_chart, learning_curves
from common.runner import load_checkpoint, load_run_config, read_metrics
from loqa.league import BotPlayer, LearnedPlayer, play_coin_match
from loqa.model import IPD_STATES, LoqaAgent, ipd_cooperation_probabilities
from loqa.train import evaluate, make_agent, make_env


def load_agent(run_dir: Path | str) -> tuple[DictConfig, LoqaAgent]:
    """The resolved config and the final agent of a run directory."""
    cfg = load_run_config(run_dir)
    agent = make_agent(cfg)
    agent.load_state_dict(load_checkpoint(run_dir)["objects"]["agent"])
    return cfg, agent.eval().requires_grad_(False)


def evaluate_run(run_dir: Path | str, episodes: int | None = None) -> dict[str, float]:
    """Final evaluation of one run (see the module docstring); also writes eval.json and plots."""
    run_dir = Path(run_dir)
    cfg, agent = load_agent(run_dir)
    generator = torch.Generator().manual_seed(cfg.seed + 3)
    env = make_env(cfg, seed=cfg.seed + 20_000)
    results = {k.replace("eval/", ""): v for k, v in evaluate(cfg, agent, env, generator).items()}
    if cfg.env.game == "coin":
        episodes = episodes or cfg.eval.league_episodes
        for name, bot in (
            ("always_cooperate", coin_always_cooperate),
            ("always_defect", coin_always_defect),
            ("random", coin_random),
        ):
            match = play_coin_match(
                env, LearnedPlayer(agent, generator), BotPlayer(bot, generator), episodes
            )
            results[f"vs_{name}_reward"] = match["reward_0"]
            results[f"vs_{name}_own_coin_fraction"] = match["own_coin_fraction_0"]
            results[f"{name}_reward"] = match["reward_1"]
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    plot_run(run_dir, cfg, agent)
    return results


def metric_curve(run_dir: Path | str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one logged metric of a run."""
    rows = [r for r in read_metrics(run_dir) if key in r]
    return np.array([r["step"] for r in rows]), np.array([r[key] for r in rows], dtype=float)


def plot_run(run_dir: Path, cfg: DictConfig, agent: LoqaAgent) -> None:
    plots = run_dir / "plots"
    steps, reward = metric_curve(run_dir, "eval/self_play_reward")
    if len(steps):
        learning_curves(
            plots / "self_play_reward.png",
            {"self-play": reward},
            x=steps,
            xlabel="iteration",
            ylabel="reward per step",
            title=f"{cfg.name}: self-play",
        )
    if cfg.env.game == "ipd":
        p = ipd_cooperation_probabilities(agent).numpy()
        bar_chart(
            plots / "p_cooperate.png",
            list(IPD_STATES),
            p,
            None,
            ylabel="P(C | state)",
            title=f"{cfg.name}: cooperation probability per memory state",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loqa.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="run directory, e.g. runs/loqa/quick/ipd/loqa_seed0"
    )
    parser.add_argument("--episodes", type=int, default=None, help="Coin Game games per match")
    args = parser.parse_args(argv)
    if not (Path(args.run) / "config.yaml").is_file():
        print(
            f"python -m loqa.eval: error: {args.run} is not a run directory (no config.yaml)",
            file=sys.stderr,
        )
        return 2
    results = evaluate_run(args.run, args.episodes)
    print(json.dumps(results, indent=2, sort_keys=True))
    print(f"wrote {Path(args.run) / 'eval.json'} and plots in {Path(args.run) / 'plots'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
