"""`make loqa` / `make loqa-full`: train LOQA and the no-shaping control on the IPD and the Coin Game,
then evaluate them in leagues and write the flat results dict (runs/loqa/<scale>/results.json).

    python -m common.reproduce loqa quick                     # both games, LOQA + control, all seeds
    python -m common.reproduce loqa quick only=ipd ipd.train.iterations=300
    python -m common.reproduce loqa full                      # the paper's configs, 10 seeds via common.sweep

Overrides: `ipd.<key>=v` / `coin.<key>=v` go to one game's configs, `only=ipd|coin` picks a game,
`workers=N` trains N quick runs at once (default: one per core), any other `key=v` goes to both.
The control is the same config with loss.shaping_weight=0.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from common.config import ConfigError, load_config
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
from common.results import write_between_markers
from loqa.eval import load_agent, metric_curve
from loqa.league import BotPlayer, LearnedPlayer, coin_league, ipd_league
from loqa.model import ipd_cooperation_probabilities
from loqa.train import CONFIG_DIR, LoqaConfig, make_env, train

GAMES = ("ipd", "coin")
VARIANTS = {"loqa": [], "no_shaping": ["loss.shaping_weight=0.0"]}

# The paper's values for our results keys (loqa.md §5: the authors' league files, 3x3 Coin Game,
# LOQA checkpoints at iteration 6000). The IPD bar heights exist only in the authors' wandb: None.
PAPER_NUMBERS: dict[str, float | None] = {
    "ipd/self_play_reward": None,
    "ipd/vs_always_defect_reward": None,
    "ipd/always_defect_reward": None,
    "ipd/p_coop_CC": None,
    "ipd/p_coop_CD": None,
    "ipd_no_shaping/self_play_reward": None,
    "coin/self_play_reward": 0.3185,  # mean of the two seats, same seed (+0.316 / +0.321)
    "coin/self_play_own_coin_fraction": 0.953,  # 0.954 / 0.952
    "coin/cross_seed_reward": 0.2935,  # 0.286 / 0.301
    "coin/cross_seed_own_coin_fraction": 0.9005,  # 0.904 / 0.897
    "coin/vs_always_defect_reward": -0.054,
    "coin/always_defect_reward": 0.123,
    "coin/vs_always_cooperate_reward": 0.352,
    "coin/always_cooperate_reward": 0.318,
    "coin/vs_random_reward": 0.264,
    "coin_no_shaping/self_play_own_coin_fraction": None,
}
HEADLINE = [
    "ipd/self_play_reward",
    "ipd/always_defect_reward",
    "coin/self_play_own_coin_fraction",
    "coin_no_shaping/self_play_own_coin_fraction",
]


def default_workers() -> int:
    """Quick runs at once: one per available core (each run uses one torch thread)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_overrides(
    overrides: list[str],
) -> tuple[dict[str, list[str]], tuple[str, ...], int]:
    """Route `ipd.k=v` / `coin.k=v` / `k=v` overrides to the games; `only=` picks the games and
    `workers=` how many quick runs train at once (default: one per core)."""
    per_game: dict[str, list[str]] = {g: [] for g in GAMES}
    games = GAMES
    workers = default_workers()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        if key == "only":
            if value not in GAMES:
                raise ConfigError(f"only={value}: expected one of {', '.join(GAMES)}")
            games = (value,)
        elif key == "workers":
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"workers={value}: expected a whole number >= 1")
            workers = int(value)
        elif key.split(".")[0] in GAMES:
            per_game[key.split(".")[0]].append(item.split(".", 1)[1])
        else:
            for game in GAMES:
                per_game[game].append(item)
    return per_game, games, workers


def seed_configs(game: str, scale: str, variant: str, overrides: list[str]) -> list:
    """One resolved config per seed of a game/variant (names <scale>/<game>/<variant>_seed<s>)."""
    base = load_config(LoqaConfig, f"{game}_{scale}", [*VARIANTS[variant], *overrides], CONFIG_DIR)
    configs = []
    for i in range(base.n_seeds):
        seed = base.seed + i
        name = f"{scale}/{game}/{variant}_seed{seed}"
        configs.append(
            load_config(
                LoqaConfig,
                f"{game}_{scale}",
                [*VARIANTS[variant], *overrides, f"seed={seed}", f"name={name}"],
                CONFIG_DIR,
            )
        )
    return configs


def train_job(overrides: list[str]) -> dict[str, float]:
    """common.sweep target for full runs: `game=`, `variant=`, `seed=` and config overrides; the run is
    named full/<game>/<variant>_seed<seed> like the quick ones. Returns the run's final evaluation."""
    from loqa.eval import evaluate_run

    pseudo = {
        o.split("=", 1)[0]: o.split("=", 1)[1]
        for o in overrides
        if o.split("=", 1)[0] in ("game", "variant")
    }
    rest = [o for o in overrides if o.split("=", 1)[0] not in ("game", "variant")]
    game, variant = pseudo.get("game", "ipd"), pseudo.get("variant", "loqa")
    cfg = load_config(LoqaConfig, f"{game}_full", [*VARIANTS[variant], *rest], CONFIG_DIR)
    cfg.name = f"full/{game}/{variant}_seed{cfg.seed}"
    return evaluate_run(train(cfg))


def train_in_processes(configs: list, workers: int) -> None:
    """Quick runs, `workers` at a time, each in its own process with its config's torch threads
    (one): on 2 cores the LOQA run and its control train side by side. Every run is seeded by its
    config, so the results equal a sequential run's."""
    if workers <= 1 or len(configs) == 1:
        for cfg in configs:
            train(cfg)
        return
    for cfg in configs:
        cfg.progress = False  # two processes' bars would overwrite each other
        print(f"training {cfg.name} ({len(configs)} runs, {workers} at a time)", flush=True)
    context = multiprocessing.get_context("spawn")  # a forked torch can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for cfg, run_dir in zip(configs, pool.map(train, configs)):
            print(f"trained {cfg.name}: {run_dir}", flush=True)


def train_all(
    scale: str, per_game: dict[str, list[str]], games, workers: int = 1
) -> dict[tuple[str, str], list[Path]]:
    """Train every game x variant x seed (full scale: through common.sweep; quick: `workers`
    processes); returns run dirs."""
    run_dirs: dict[tuple[str, str], list[Path]] = {}
    for game in games:
        quick_configs = []
        for variant in VARIANTS:
            configs = seed_configs(game, scale, variant, per_game[game])
            if scale == "full":
                from common.sweep import SweepConfig, run_sweep

                sweep = SweepConfig(
                    target="loqa.reproduce:train_job",
                    seeds=[int(c.seed) for c in configs],
                    base=[f"game={game}", f"variant={variant}", *per_game[game]],
                    name=f"loqa_{game}_{variant}",
                    out_dir=str(configs[0].out_dir),
                )
                run_sweep(sweep)
            else:
                quick_configs += configs
            run_dirs[(game, variant)] = [Path(c.out_dir) / "loqa" / c.name for c in configs]
        train_in_processes(quick_configs, workers)
    return run_dirs


def ipd_results(run_dirs, out: Path) -> dict[str, float]:
    """Exact IPD evaluation, the league matrix and the IPD plots."""
    policies, results = {}, {}
    for variant in VARIANTS:
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
    for variant in VARIANTS:
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


def coin_results(run_dirs, out: Path, episodes: int, seed: int) -> dict[str, float]:
    """Coin Game league over trained seeds and bots, results keys and plots."""
    results: dict[str, float] = {}
    cfg0, _ = load_agent(run_dirs[("coin", "loqa")][0])
    env = make_env(cfg0, seed=seed + 30_000)
    generator = torch.Generator().manual_seed(seed + 4)
    players, members = {}, {}
    for variant in VARIANTS:
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
        for variant in VARIANTS:
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


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    if scale not in ("quick", "full"):
        raise ConfigError(f"scale must be quick or full, got {scale!r}")
    start = time.time()
    per_game, games, workers = split_overrides(list(overrides))
    out_dir = Path(
        load_config(LoqaConfig, f"{games[0]}_{scale}", per_game[games[0]], CONFIG_DIR).out_dir
    )
    out = out_dir / "loqa" / scale
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_numbers.json").write_text(json.dumps(PAPER_NUMBERS, indent=2) + "\n")
    results: dict[str, float] = {}
    for game in games:
        game_start = time.time()
        run_dirs = train_all(scale, per_game, (game,), workers)
        if game == "ipd":
            results.update(ipd_results(run_dirs, out))
        else:
            cfg = load_config(LoqaConfig, f"coin_{scale}", per_game["coin"], CONFIG_DIR)
            results.update(coin_results(run_dirs, out, cfg.eval.league_episodes, cfg.seed))
        results[f"{game}/wall_clock_s"] = round(time.time() - game_start, 1)
    results["wall_clock_s"] = round(time.time() - start, 1)
    return results


# Rows of the README table: (results key, setting, metric, the command that measures it).
TABLE_ROWS = [
    ("ipd/self_play_reward", "IPD, LOQA self-play", "reward / step (exact, eps 0)", "make loqa"),
    ("ipd/self_play_reward_min_seed", "IPD, LOQA self-play", "worst seed", "make loqa"),
    ("ipd/vs_always_defect_reward", "IPD, LOQA vs AD", "LOQA's reward / step", "make loqa"),
    ("ipd/always_defect_reward", "IPD, LOQA vs AD", "AD's reward / step", "make loqa"),
    ("ipd/p_coop_start", "IPD, LOQA", "P(C \\| start)", "make loqa"),
    ("ipd/p_coop_CC", "IPD, LOQA", "P(C \\| CC)", "make loqa"),
    ("ipd/p_coop_CD", "IPD, LOQA", "P(C \\| CD)", "make loqa"),
    ("ipd/p_coop_DC", "IPD, LOQA", "P(C \\| DC)", "make loqa"),
    ("ipd/p_coop_DD", "IPD, LOQA", "P(C \\| DD)", "make loqa"),
    ("ipd_no_shaping/self_play_reward", "IPD, control w = 0", "reward / step", "make loqa"),
    ("coin/self_play_reward", "Coin 3x3, LOQA self-play", "reward / step", "make loqa"),
    (
        "coin/self_play_own_coin_fraction",
        "Coin 3x3, LOQA self-play",
        "own-coin fraction",
        "make loqa",
    ),
    ("coin/cross_seed_reward", "Coin 3x3, LOQA cross-seed", "reward / step", "make loqa"),
    (
        "coin/cross_seed_own_coin_fraction",
        "Coin 3x3, LOQA cross-seed",
        "own-coin fraction",
        "make loqa",
    ),
    ("coin/vs_always_defect_reward", "Coin 3x3, LOQA vs AD", "LOQA's reward / step", "make loqa"),
    ("coin/always_defect_reward", "Coin 3x3, LOQA vs AD", "AD's reward / step", "make loqa"),
    (
        "coin/vs_always_cooperate_reward",
        "Coin 3x3, LOQA vs AC",
        "LOQA's reward / step",
        "make loqa",
    ),
    ("coin/always_cooperate_reward", "Coin 3x3, LOQA vs AC", "AC's reward / step", "make loqa"),
    ("coin/vs_random_reward", "Coin 3x3, LOQA vs Random", "LOQA's reward / step", "make loqa"),
    ("coin_no_shaping/self_play_reward", "Coin 3x3, control w = 0", "reward / step", "make loqa"),
    (
        "coin_no_shaping/self_play_own_coin_fraction",
        "Coin 3x3, control w = 0",
        "own-coin fraction",
        "make loqa",
    ),
    ("ipd/wall_clock_s", "IPD, 6 runs + eval", "wall clock (s)", "make loqa"),
    ("coin/wall_clock_s", "Coin, 2 runs + league", "wall clock (s)", "make loqa"),
]


def results_table(quick: dict | None, full: dict | None) -> str:
    """The README results table, generated from the results JSONs (never typed by hand)."""

    def fmt(results, key):
        if results is None:
            return "not run yet"
        if key not in results:  # cross-seed pairs need >= 2 seeds (the quick Coin Game has 1)
            return "n/a (1 seed)" if "cross_seed" in key else "n/a"
        return f"{results[key]:.3f}"

    lines = [
        "| setting | metric | paper | ours (quick, CPU) | ours (full) | command |",
        "|---|---|---|---|---|---|",
    ]
    for key, setting, metric, command in TABLE_ROWS:
        paper = PAPER_NUMBERS.get(key)
        paper_txt = "—" if paper is None else f"{paper:.3f}"
        full_cmd = command if full is None else f"{command} / {command}-full"
        lines.append(
            f"| {setting} | {metric} | {paper_txt} | {fmt(quick, key)} | {fmt(full, key)} | "
            f"`{full_cmd}` |"
        )
    return "\n".join(lines) + "\n"


README = Path(__file__).with_name("README.md")
TABLE_BEGIN = "<!-- results table: python -m loqa.reproduce --readme -->"
TABLE_END = "<!-- end of results table -->"


if __name__ == "__main__":
    # python -m loqa.reproduce [--readme]: the README table from runs/loqa/{quick,full}/results.json
    # (printed, or written into the README; `python -m common.reproduce publish loqa` copies the
    # results and plots to results/loqa/).
    import sys

    def _load(scale):
        path = Path("runs") / "loqa" / scale / "results.json"
        return json.loads(path.read_text()) if path.is_file() else None

    table = results_table(_load("quick"), _load("full"))
    if "--readme" in sys.argv[1:]:
        write_between_markers(README, table, TABLE_BEGIN, TABLE_END)
        print(f"wrote the results table into {README}")
    else:
        print(table, end="")
