"""Evaluate a trained LOQA run from its directory alone: final metrics JSON and plots.

    python -m loqa.eval --run runs/loqa/quick/ipd/loqa_seed0
    python -m loqa.eval                     # the trained quick Coin Game agent shipped in results/loqa/


IPD: exact rewards per step (Markov chain, no exploration) in self-play, against always-defect and
always-cooperate, and P(C | start, CC, CD, DC, DD). Coin Game: sampled self-play and matches against
always-cooperate, always-defect and random. Writes <run>/eval.json and <run>/plots/*.png.
The analyses across runs that `make loqa` tabulates (leagues, learning curves) are here too:
``ipd_results`` and ``coin_results`` take ``{(game, variant): [run dirs]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from common import league
from common.cli import entry_point
from common.envs.agents import (
    IPD_ALWAYS_COOPERATE,
    IPD_ALWAYS_DEFECT,
    IPD_RANDOM,
    IPD_TIT_FOR_TAT,
    coin_always_cooperate,
    coin_always_defect,
    coin_random,
)
from common.envs.matrix_games import STATE_NAMES
from common.plots import bar_chart, heatmap, learning_curves
from common.results import REPO_ROOT, load_model, save_model
from common.runner import check_run_dir, load_checkpoint, read_metrics
from loqa.league import BotPlayer, LearnedPlayer, coin_league, ipd_league, play_coin_match
from loqa.networks import IPD_STATES, LoqaAgent, ipd_cooperation_probabilities
from loqa.train import make_agent, make_env, periodic_eval

# The trained quick-run agents that `make loqa` publishes, to play against without training.
SHIPPED = REPO_ROOT / "results" / "loqa" / "quick" / "model"


def load_agent(path: Path | str = SHIPPED / "coin_loqa_seed0") -> tuple[DictConfig, LoqaAgent]:
    """The resolved config and the final agent of a run directory, or of a trained model directory
    (``weights.safetensors`` + ``config.yaml``, as shipped in results/loqa/quick/model/)."""
    path = Path(path)
    if (path / "weights.safetensors").is_file():
        weights, cfg = load_model(path)
    else:
        cfg = check_run_dir(path, "loqa", need_checkpoint=True)
        weights = load_checkpoint(path)["objects"]["agent"]
    agent = make_agent(cfg)
    agent.load_state_dict(weights)
    return cfg, agent.eval().requires_grad_(False)


def league_coin_player(run_dir: Path):
    """League loader (common.league): a run's Coin Game agent as a factory of sampling players."""
    _, agent = load_agent(run_dir)
    return lambda generator: LearnedPlayer(agent, generator)


def league_ipd_policy(run_dir: Path) -> torch.Tensor:
    """League loader: a run's exact IPD policy P(C | start, CC, CD, DC, DD) [5]."""
    return ipd_cooperation_probabilities(load_agent(run_dir)[1])


for _method, _variant in (
    ("loqa", "loqa"),
    ("naive", "no_shaping"),
):  # naive: LOQA's no-shaping control
    league.register(
        _method, "coin", league_coin_player, paper="loqa", pattern=f"coin/{_variant}_seed*"
    )
    league.register(
        _method, "ipd", league_ipd_policy, paper="loqa", pattern=f"ipd/{_variant}_seed*"
    )


def save_agent(run_dir: Path | str, directory: Path | str) -> Path:
    """A run's final agent as a trained model directory that ``load_agent`` reads."""
    cfg, agent = load_agent(run_dir)
    return save_model(directory, agent.state_dict(), cfg)


def evaluate(run_dir: Path | str, episodes: int | None = None) -> dict[str, float]:
    """Final evaluation of one run (see the module docstring); also writes eval.json and plots."""
    run_dir = Path(run_dir)
    cfg, agent = load_agent(run_dir)
    generator = torch.Generator().manual_seed(cfg.seed + 3)
    env = make_env(cfg, seed=cfg.seed + 20_000)
    results = {
        k.replace("eval/", ""): v for k, v in periodic_eval(cfg, agent, env, generator).items()
    }
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
    # A shipped model directory stays as committed: its evaluation goes under runs/.
    shipped = (run_dir / "weights.safetensors").is_file()
    out = Path("runs") / "loqa" / "eval" / run_dir.name if shipped else run_dir
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    plot_run(out, cfg, agent)
    print(f"wrote {out / 'eval.json'} and plots in {out / 'plots'}", file=sys.stderr)
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


def ipd_results(run_dirs: dict, out: Path) -> dict[str, float]:
    """Exact IPD evaluation, the league matrix and the IPD plots."""
    variants = [v for g, v in run_dirs if g == "ipd"]  # LOQA first, then its control
    policies, results = {}, {}
    for variant in variants:
        probs = []
        for run_dir in run_dirs[("ipd", variant)]:
            _, agent = load_agent(run_dir)
            p = ipd_cooperation_probabilities(agent).double()
            probs.append(p)
            policies[f"{variant}_{run_dir.name.split('_seed')[-1]}"] = p
        policies_v = torch.stack(probs)
        prefix = "ipd" if variant == "loqa" else f"ipd_{variant}"
        self_play = [ipd_league({"a": p}, 50)[0, 0] for p in probs]
        pairs = [ipd_league({"me": p, "ad": IPD_ALWAYS_DEFECT}, 50) for p in probs]
        results[f"{prefix}/self_play_reward"] = float(np.mean(self_play))
        results[f"{prefix}/self_play_reward_min_seed"] = float(np.min(self_play))
        results[f"{prefix}/vs_always_defect_reward"] = float(np.mean([m[0, 1] for m in pairs]))
        results[f"{prefix}/always_defect_reward"] = float(np.mean([m[1, 0] for m in pairs]))
        for i, state in enumerate(STATE_NAMES):
            results[f"{prefix}/p_coop_{state}"] = float(policies_v[:, i].mean())
            results[f"{prefix}/p_coop_{state}_std"] = float(policies_v[:, i].std(unbiased=False))
        bar_chart(
            out / f"{prefix}_p_cooperate.png",
            list(STATE_NAMES),
            policies_v.mean(0).numpy(),
            policies_v.std(0, unbiased=False).numpy(),
            ylabel="P(C | state)",
            title=f"IPD {variant}: P(C | memory state), mean +- std over {len(probs)} seeds",
        )
    bots = {
        "AC": IPD_ALWAYS_COOPERATE,
        "AD": IPD_ALWAYS_DEFECT,
        "TFT": IPD_TIT_FOR_TAT,
        "Random": IPD_RANDOM,
    }
    names = [*policies, *bots]
    league = ipd_league({**policies, **{k: v.double() for k, v in bots.items()}}, 50)
    heatmap(
        out / "ipd_league.png",
        league,
        names,
        names,
        title="IPD league: row player's exact reward per step",
    )
    (out / "ipd_league.json").write_text(json.dumps({"names": names, "reward": league.tolist()}))
    curves = {}
    for variant in variants:
        runs = run_dirs[("ipd", variant)]
        steps, _ = metric_curve(runs[0], "eval/self_play_reward")
        curves[variant] = np.stack([metric_curve(r, "eval/self_play_reward")[1] for r in runs])
    learning_curves(
        out / "ipd_learning_curves.png",
        curves,
        x=steps,
        xlabel="iteration",
        ylabel="exact self-play reward per step",
        title="IPD self-play (epsilon = 0)",
        hline={"all C": -1.0, "all D": -2.0},
    )
    return results


def coin_results(run_dirs: dict, out: Path, episodes: int, seed: int) -> dict[str, float]:
    """Coin Game league over trained seeds and bots, results keys and plots."""
    variants = [v for g, v in run_dirs if g == "coin"]  # LOQA first, then its control
    results: dict[str, float] = {}
    cfg0, _ = load_agent(run_dirs[("coin", "loqa")][0])
    env = make_env(cfg0, seed=seed + 30_000)
    generator = torch.Generator().manual_seed(seed + 4)
    players, members = {}, {}
    for variant in variants:
        for run_dir in run_dirs[("coin", variant)]:
            _, agent = load_agent(run_dir)
            name = f"{variant}_{run_dir.name.split('_seed')[-1]}"
            players[name] = lambda a=agent: LearnedPlayer(a, generator)
            members.setdefault(variant, []).append(name)
    bots = {"AC": coin_always_cooperate, "AD": coin_always_defect, "Random": coin_random}
    for name, bot in bots.items():
        players[name] = lambda b=bot: BotPlayer(b, generator)
    league = coin_league(env, players, episodes)
    names = list(players)
    index = {n: i for i, n in enumerate(names)}
    reward, own = league["reward"], league["own_coin_fraction"]
    for variant, agents in members.items():
        prefix = "coin" if variant == "loqa" else f"coin_{variant}"
        ids = [index[a] for a in agents]
        results[f"{prefix}/self_play_reward"] = float(np.mean([reward[i, i] for i in ids]))
        results[f"{prefix}/self_play_own_coin_fraction"] = float(
            np.nanmean([own[i, i] for i in ids])
        )
        # every seed: the mean over seeds (= the line above) and the worst seed's self-play
        results[f"{prefix}/seed_mean_own_coin_fraction"] = results[
            f"{prefix}/self_play_own_coin_fraction"
        ]
        results[f"{prefix}/worst_seed_own_coin_fraction"] = float(
            np.nanmin([own[i, i] for i in ids])
        )
        cross = [(i, j) for i in ids for j in ids if i != j]
        if cross:
            results[f"{prefix}/cross_seed_reward"] = float(
                np.mean([reward[i, j] for i, j in cross])
            )
            results[f"{prefix}/cross_seed_own_coin_fraction"] = float(
                np.nanmean([own[i, j] for i, j in cross])
            )
        for bot, label in (
            ("AD", "always_defect"),
            ("AC", "always_cooperate"),
            ("Random", "random"),
        ):
            b = index[bot]
            results[f"{prefix}/vs_{label}_reward"] = float(np.mean([reward[i, b] for i in ids]))
            results[f"{prefix}/vs_{label}_own_coin_fraction"] = float(
                np.nanmean([own[i, b] for i in ids])
            )
            results[f"{prefix}/{label}_reward"] = float(np.mean([reward[b, i] for i in ids]))
    for bot in bots:
        results[f"coin_bots/{bot}_self_play_reward"] = float(reward[index[bot], index[bot]])
    heatmap(
        out / "coin_league_reward.png",
        reward,
        names,
        names,
        title=f"Coin Game league: row player's reward per step ({episodes} games per pair)",
    )
    heatmap(
        out / "coin_league_own_coin.png",
        own,
        names,
        names,
        title="Coin Game league: row player's own-coin fraction",
    )
    (out / "coin_league.json").write_text(
        json.dumps(
            {
                "names": names,
                "reward": reward.tolist(),
                "own_coin_fraction": own.tolist(),
                "episodes_per_pair": episodes,
            }
        )
    )
    for key, label in (
        ("eval/self_play_own_coin_fraction", "own-coin fraction"),
        ("eval/self_play_reward", "reward per step"),
    ):
        curves, steps = {}, None
        for variant in variants:
            runs = run_dirs[("coin", variant)]
            steps, _ = metric_curve(runs[0], key)
            curves[variant] = np.stack([metric_curve(r, key)[1] for r in runs])
        learning_curves(
            out / f"coin_learning_{key.split('/')[-1]}.png",
            curves,
            x=steps,
            xlabel="iteration",
            ylabel=label,
            title=f"Coin Game self-play {label}",
        )
    return results


@entry_point("python -m loqa.eval")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loqa.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--run",
        default=str(SHIPPED / "coin_loqa_seed0"),
        help="run directory (e.g. runs/loqa/quick/ipd/loqa_seed0) or trained model directory "
        "(default: the shipped quick Coin Game agent)",
    )
    parser.add_argument("--episodes", type=int, default=None, help="Coin Game games per match")
    args = parser.parse_args(argv)
    print(json.dumps(evaluate(args.run, args.episodes), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
