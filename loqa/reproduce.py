"""`make loqa` / `make loqa-full`: train LOQA and its no-shaping control on the IPD and the Coin Game, then
evaluate them in leagues and write the flat results (runs/loqa/<scale>/results.json).

    python -m loqa.reproduce quick                                  # what `make loqa` runs
    python -m loqa.reproduce quick reproduce.games=[ipd] ipd.train.iterations=300
    python -m loqa.reproduce quick coin.n_seeds=2 reproduce.workers=1
    python -m loqa.reproduce full                                   # the paper's configs, via common.sweep
    python -m loqa.reproduce paper                # `make loqa-paper`: the paper's Coin Game on this CPU

Overrides: `ipd.<key>=v` / `coin.<key>=v` set one game's run config (presets ipd_<scale>.yaml and
coin_<scale>.yaml), `reproduce.games` picks the games and `reproduce.workers` how many quick runs train at
once (0: one per core). The control is each game's config with loss.shaping_weight=0.
The paper scale trains only LOQA on the Coin Game (coin_paper.yaml: the paper's settings, 2 seeds) and is
resumable: run it again and every seed continues from its latest checkpoint (a finished seed is skipped).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from common.config import load_config
from common.results import PaperNumber, reproduce_cli, results_dir, write_results
from common.runner import list_checkpoints, read_metrics
from loqa.config import CONFIG_DIR, LoqaConfig, LoqaReproduceConfig
from loqa.eval import coin_results, ipd_results, save_agent
from loqa.train import train

PAPER = "loqa"
SCALES = (
    "quick",
    "paper",
    "full",
)  # paper: the paper's Coin Game settings on this CPU (make loqa-paper)
VARIANTS = {"loqa": 1.0, "no_shaping": 0.0}  # loss.shaping_weight of each variant

_LEAGUE = "arXiv 2405.01035, Coin Game league (authors' released league files, 3x3, iteration 6000)"
# The paper's IPD result is a bar plot of P(C | state) with no numbers printed: None there.
PAPER_NUMBERS: dict[str, PaperNumber] = {
    "ipd/self_play_reward": PaperNumber(None, "Fig. 1 (IPD): bars only"),
    "ipd/vs_always_defect_reward": PaperNumber(None, ""),
    "ipd/always_defect_reward": PaperNumber(None, ""),
    "ipd/p_coop_CC": PaperNumber(None, "Fig. 1: tit-for-tat-like, P(C|CC) near 1"),
    "ipd/p_coop_CD": PaperNumber(None, "Fig. 1: P(C|CD) near 0"),
    "ipd_no_shaping/self_play_reward": PaperNumber(None, ""),
    "coin/self_play_reward": PaperNumber(0.3185, f"{_LEAGUE}; mean of the seats 0.316 / 0.321"),
    "coin/self_play_own_coin_fraction": PaperNumber(0.953, f"{_LEAGUE}; 0.954 / 0.952"),
    "coin/cross_seed_reward": PaperNumber(0.2935, f"{_LEAGUE}; 0.286 / 0.301"),
    "coin/cross_seed_own_coin_fraction": PaperNumber(0.9005, f"{_LEAGUE}; 0.904 / 0.897"),
    "coin/vs_always_defect_reward": PaperNumber(-0.054, _LEAGUE),
    "coin/always_defect_reward": PaperNumber(0.123, _LEAGUE),
    "coin/vs_always_cooperate_reward": PaperNumber(0.352, _LEAGUE),
    "coin/always_cooperate_reward": PaperNumber(0.318, _LEAGUE),
    "coin/vs_random_reward": PaperNumber(0.264, _LEAGUE),
    "coin_no_shaping/self_play_own_coin_fraction": PaperNumber(None, ""),
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


def seed_configs(base: DictConfig, scale: str, game: str, variant: str) -> list[DictConfig]:
    """One resolved config per seed of a game/variant (runs/loqa/<scale>/<game>/<variant>_seed<s>)."""
    configs = []
    seeds = base.control_seeds if variant != "loqa" and base.control_seeds else base.n_seeds
    for i in range(seeds):
        cfg = OmegaConf.merge(base, {})  # a copy, still typed by the schema
        cfg.loss.shaping_weight = VARIANTS[variant] * base.loss.shaping_weight
        cfg.seed = base.seed + i
        cfg.name = f"{scale}/{game}/{variant}_seed{cfg.seed}"
        if scale == "paper":  # hours long: continue a seed that has checkpoints
            run_dir = Path(cfg.out_dir) / PAPER / cfg.name
            cfg.resume = cfg.resume or bool(list_checkpoints(run_dir))
        cfg.overwrite = not cfg.resume  # a reproduction replaces the previous one of its scale
        configs.append(cfg)
    return configs


def train_in_processes(configs: list[DictConfig], workers: int) -> None:
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


def sweep_job(overrides: list[str]) -> dict[str, float]:
    """common.sweep target of the full scale: `game=<ipd|coin>` picks the preset <game>_full, the rest
    are that game's overrides (including the variant's loss.shaping_weight and seed)."""
    from loqa.eval import evaluate

    game = next((o.split("=", 1)[1] for o in overrides if o.startswith("game=")), "ipd")
    rest = [o for o in overrides if not o.startswith("game=")]
    cfg = load_config(LoqaConfig, f"{game}_full", rest, CONFIG_DIR)
    variant = "loqa" if cfg.loss.shaping_weight else "no_shaping"
    cfg.name = f"full/{game}/{variant}_seed{cfg.seed}"
    return evaluate(train(cfg))


def train_game(cfg: DictConfig, scale: str, game: str, workers: int) -> dict[tuple[str, str], list]:
    """Train every variant x seed of one game; returns {(game, variant): [run dirs]}."""
    run_dirs, quick_configs = {}, []
    for variant in cfg.reproduce.variants:
        configs = seed_configs(cfg[game], scale, game, variant)
        if scale == "full":
            from common.sweep import SweepConfig, run_sweep

            run_sweep(
                SweepConfig(
                    target="loqa.reproduce:sweep_job",
                    seeds=[int(c.seed) for c in configs],
                    base=[f"game={game}", f"loss.shaping_weight={configs[0].loss.shaping_weight}"],
                    name=f"loqa_{game}_{variant}",
                    out_dir=str(configs[0].out_dir),
                )
            )
        else:
            quick_configs += configs
        run_dirs[(game, variant)] = [Path(c.out_dir) / PAPER / c.name for c in configs]
    train_in_processes(quick_configs, workers)
    return run_dirs


def cpu_name() -> str:
    """The processor's model name (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def seed_train_wall_clock_s(run_dirs: list[Path]) -> float:
    """Mean training wall clock of the seeds, summed over resumed parts (each run's last logged time_s)."""
    times = [read_metrics(run_dir)[-1]["time_s"] for run_dir in run_dirs]
    return round(sum(times) / len(times), 1)


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    start = time.time()
    presets = {game: f"{game}_{scale}" for game in ("ipd", "coin")}
    if scale == "paper":  # the Coin Game only (the IPD's paper settings are the full scale's)
        presets["ipd"] = "ipd_full"
        overrides = ["reproduce.games=[coin]", "reproduce.variants=[loqa]", *overrides]
    cfg = load_config(LoqaReproduceConfig, presets, overrides, CONFIG_DIR)
    workers = cfg.reproduce.workers or default_workers()
    out_dir = cfg[cfg.reproduce.games[0]].out_dir
    out = results_dir(PAPER, scale, out_dir)
    results: dict[str, float] = {}
    for game in cfg.reproduce.games:
        game_start = time.time()
        run_dirs = train_game(cfg, scale, game, workers)
        if game == "ipd":
            results.update(ipd_results(run_dirs, out))
        else:
            league = cfg.coin.eval
            results.update(coin_results(run_dirs, out, league.league_episodes, cfg.coin.seed))
        # The first seed of each game's LOQA agent, to try without training (python -m loqa.eval).
        save_agent(run_dirs[(game, "loqa")][0], out / "model" / f"{game}_loqa_seed{cfg[game].seed}")
        results[f"{game}/wall_clock_s"] = round(time.time() - game_start, 1)
        # This call's wall clock misses the parts of a resumed run; each run's own clock does not.
        results[f"{game}/seed_train_wall_clock_s"] = seed_train_wall_clock_s(
            run_dirs[(game, "loqa")]
        )
    results["wall_clock_s"] = round(time.time() - start, 1)
    # The hardware beside the wall clock (results are numbers; the processor's name goes to a file).
    results["hardware/cpu_cores"] = default_workers()
    results["hardware/gpus"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    results["hardware/torch_threads"] = int(cfg[cfg.reproduce.games[0]].threads)
    (out / "hardware.txt").write_text(f"{platform.platform()} {cpu_name()}\n")
    write_results(PAPER, scale, results, out_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(reproduce_cli(PAPER, main, __doc__, scales=SCALES))
