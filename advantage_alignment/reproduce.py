"""Reproduce Advantage Alignment (arXiv 2406.14662) at one scale: IPD, Coin Game and Negotiation Game.

    python -m advantage_alignment.reproduce quick                     # what `make advantage_alignment` runs
    python -m advantage_alignment.reproduce quick reproduce.only=ipd  # one game
    python -m advantage_alignment.reproduce quick train.iterations=5  # an override applies to every game

Settings (each trained for reproduce.n_seeds seeds, in one process, one after the other):
  ipd, ipd_beta0, ipd_beta3, ipd_eps02   AA (beta 1), the PG control, a large beta, epsilon-greedy 0.2
  coin, coin_beta0                       AA (beta 3) and the actor-critic control
  negotiation                            the preset's objective, beta 3: proximal AA at quick scale
                                         (negotiation_medium), REINFORCE AA at full scale (the paper's)
  negotiation_beta0                      the same preset with beta 0: PPO (quick) / actor-critic (full)
  negotiation_paa, negotiation_aa        proximal AA and REINFORCE AA (Eq. 9 / Eq. 8), beta 3
A setting whose configs equal an earlier setting's (negotiation_paa = negotiation at quick scale,
negotiation_aa = negotiation at full scale) reuses that setting's runs instead of training them again.
Results land in runs/advantage_alignment/<scale>/results.json, with the plots beside it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from advantage_alignment.config import CONFIG_DIR, GAMES, AAConfig
from advantage_alignment.eval import PLAYERS, evaluate, plot_ipd_cooperation, plot_learning_curves
from advantage_alignment.train import train, validate
from common.config import load_config
from common.plots import bar_chart, heatmap
from common.results import PaperNumber, reproduce_cli, results_dir, write_results

PAPER = "advantage_alignment"
# Which preset each game uses at each scale. The quick Negotiation Game uses the longer
# negotiation_medium preset (proximal AA, issue 14): negotiation_quick stays at the demand-everything 0.30.
PRESETS = {
    "quick": {"ipd": "ipd_quick", "coin": "coin_quick", "negotiation": "negotiation_medium"},
    "full": {"ipd": "ipd_full", "coin": "coin_full", "negotiation": "negotiation_full"},
}
# setting -> (game, changes to the game's preset); an explicit reproduce.n_seeds wins over these
SETTINGS: dict[str, tuple[str, dict]] = {
    "ipd": ("ipd", {}),
    "ipd_beta0": ("ipd", {"loss.beta": 0.0}),
    "ipd_beta3": ("ipd", {"loss.beta": 3.0, "reproduce.n_seeds": 2}),  # ablations: 2 seeds
    "ipd_eps02": ("ipd", {"loss.epsilon": 0.2, "reproduce.n_seeds": 2}),
    "coin": ("coin", {}),
    "coin_beta0": ("coin", {"loss.beta": 0.0}),
    "negotiation": ("negotiation", {}),
    "negotiation_beta0": ("negotiation", {"loss.beta": 0.0}),
    "negotiation_paa": ("negotiation", {"loss.proximal": True}),
    "negotiation_aa": ("negotiation", {"loss.proximal": False, "reproduce.n_seeds": 1}),
}
REVIEW = "arXiv 2406.14662"
PAPER_NUMBERS = {
    "ipd/self_play_reward": PaperNumber(None, f"{REVIEW} Fig. 1b shows P(C|state) only, no reward"),
    "ipd/p_coop_CC": PaperNumber(None, f"{REVIEW} Fig. 1b: tit-for-tat-like bars, no numbers"),
    "ipd/p_coop_DD": PaperNumber(None, f"{REVIEW} Fig. 1b: tit-for-tat-like bars, no numbers"),
    "ipd_beta0/self_play_reward": PaperNumber(None, "not in the paper; naive PG defects (-2)"),
    "coin/self_play_reward": PaperNumber(0.28, f"{REVIEW} Fig. 2 (AA self-play, via review)"),
    "coin/self_play_own_coin_fraction": PaperNumber(
        None, "not printed in the paper; authors' league files give 0.85-0.89"
    ),
    "coin_beta0/self_play_own_coin_fraction": PaperNumber(None, "not in the paper"),
    "coin/ad_vs_agent_reward": PaperNumber(0.15, f"{REVIEW} Fig. 2 (AD vs AA, via review)"),
    "negotiation/self_play_reward": PaperNumber(
        0.44, f"{REVIEW} Fig. 3a (AA self-play, via review)"
    ),
    "negotiation_beta0/self_play_reward": PaperNumber(0.25, f"{REVIEW} Fig. 3a (PPO, via review)"),
    "negotiation/vs_always_defect_reward": PaperNumber(
        0.30, f"{REVIEW} Fig. 3a (AA vs AD, via review)"
    ),
    "negotiation_paa/self_play_reward": PaperNumber(None, "not reported for the Negotiation Game"),
    "wall_clock_s": PaperNumber(None, "paper: IPD 50 min, Coin 30 min, Negotiation 1 h on an A100"),
}
METRICS = {
    "ipd": (
        "self_play_reward",
        "self_play_reward_worst_seed",
        "p_coop_CC",
        "p_coop_CD",
        "p_coop_DD",
        "vs_always_defect_reward",
    ),
    "coin": (
        "self_play_reward",
        "self_play_own_coin_fraction",
        "ad_vs_agent_reward",
        "vs_always_defect_reward",
        "vs_always_cooperate_reward",
    ),
    "negotiation": (
        "self_play_reward",
        "self_play_reward_worst_seed",
        "vs_always_defect_reward",
        "ad_vs_agent_reward",
    ),
}
for _setting, (_game, _) in SETTINGS.items():  # every other key we report: no number in the paper
    for _metric in METRICS[_game]:
        PAPER_NUMBERS.setdefault(f"{_setting}/{_metric}", PaperNumber(None, "not in the paper"))
HEADLINE = [
    "ipd/self_play_reward",
    "coin/self_play_own_coin_fraction",
    "coin/self_play_reward",
    "negotiation/self_play_reward",
]


def load_game_configs(scale: str, overrides: list[str]) -> dict[str, DictConfig]:
    """Each game's preset with the overrides, loaded and validated once."""
    cfgs = {}
    for game in GAMES:
        cfgs[game] = load_config(AAConfig, PRESETS[scale][game], overrides, CONFIG_DIR)
        validate(cfgs[game])
    return cfgs


def setting_configs(
    cfg: DictConfig, scale: str, setting: str, changes: dict, keep_seeds: bool = False
) -> list[DictConfig]:
    """One config per seed: run dirs runs/advantage_alignment/<scale>/<setting>_seed<seed>.
    keep_seeds: the user set reproduce.n_seeds, which then overrides the setting's own."""
    setting_cfg = cfg.copy()
    for key, value in changes.items():
        if keep_seeds and key == "reproduce.n_seeds":
            continue
        OmegaConf.update(setting_cfg, key, value)
    out = []
    for offset in range(setting_cfg.reproduce.n_seeds):
        seed_cfg = setting_cfg.copy()
        seed_cfg.seed = cfg.seed + offset
        seed_cfg.name = f"{scale}/{setting}_seed{seed_cfg.seed}"
        seed_cfg.overwrite = not seed_cfg.resume  # a reproduction replaces the previous one
        out.append(seed_cfg)
    return out


def same_runs(done: list[DictConfig], todo: list[DictConfig]) -> bool:
    """The seed configs `todo` are the first len(todo) of `done`, up to the run names and the
    number of seeds: those runs exist already."""

    def plain(cfg: DictConfig) -> dict:
        out = OmegaConf.to_container(cfg)
        out.pop("name")
        out["reproduce"].pop("n_seeds")
        return out

    return len(todo) <= len(done) and all(plain(a) == plain(b) for a, b in zip(done, todo))


def mean_of(evals: list[dict], key: str) -> float:
    return float(np.mean([e[key] for e in evals]))


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    start = time.time()
    cfgs = load_game_configs(scale, overrides)
    only = cfgs["ipd"].reproduce.only
    out = results_dir(PAPER, scale, cfgs["ipd"].out_dir)
    runs: dict[str, list[Path]] = {}
    evals: dict[str, list[dict]] = {}
    trained: dict[str, list[DictConfig]] = {}  # setting -> its seed configs, to spot duplicates
    keep_seeds = any(o.startswith("reproduce.n_seeds=") for o in overrides)
    for setting, (game, changes) in SETTINGS.items():
        if only not in ("all", game):
            continue
        seed_cfgs = setting_configs(cfgs[game], scale, setting, changes, keep_seeds)
        same = next((s for s, c in trained.items() if same_runs(c, seed_cfgs)), None)
        if same is not None:  # e.g. negotiation_paa at quick scale: the negotiation runs themselves
            print(f"{setting}: the same configs as {same}, its runs are reused")
            runs[setting], evals[setting] = (
                runs[same][: len(seed_cfgs)],
                evals[same][: len(seed_cfgs)],
            )
            continue
        trained[setting] = seed_cfgs
        runs[setting], evals[setting] = [], []
        for cfg in seed_cfgs:
            run_dir = train(cfg)
            runs[setting].append(run_dir)
            evals[setting].append(evaluate(run_dir))
            print(f"{cfg.name}: self-play reward {evals[setting][-1]['self_play_reward']:.3f}")
    results: dict[str, float] = {}
    if "ipd" in evals:
        results.update(ipd_results(runs, evals, out))
    if "coin" in evals:
        results.update(coin_results(runs, evals, out))
    if "negotiation" in evals:
        results.update(negotiation_results(runs, evals, out))
    results["wall_clock_s"] = round(time.time() - start, 1)
    write_results(PAPER, scale, results, cfgs["ipd"].out_dir)
    return results


def ipd_results(runs, evals, out: Path) -> dict[str, float]:
    settings = [s for s in SETTINGS if s.startswith("ipd") and s in evals]
    results = {}
    for setting in settings:
        rewards = [e["self_play_reward"] for e in evals[setting]]
        results[f"{setting}/self_play_reward"] = float(np.mean(rewards))
        results[f"{setting}/self_play_reward_worst_seed"] = float(np.min(rewards))
        for state in ("CC", "CD", "DD"):
            results[f"{setting}/p_coop_{state}"] = mean_of(evals[setting], f"p_coop_{state}")
        results[f"{setting}/vs_always_defect_reward"] = mean_of(
            evals[setting], "vs_always_defect_reward"
        )
    plot_ipd_cooperation(out / "ipd_p_coop.png", {s: evals[s] for s in settings})
    plot_learning_curves(
        out / "ipd_learning_curves.png",
        {s: runs[s] for s in settings},
        "eval/self_play_reward",
        "exact self-play reward per step",
        hline={"always cooperate": -1.0, "always defect": -2.0},
    )
    return results


def league_matrix(evals: list[dict], metric: str) -> np.ndarray:
    return np.array([[mean_of(evals, f"{r}_vs_{c}_{metric}") for c in PLAYERS] for r in PLAYERS])


def coin_results(runs, evals, out: Path) -> dict[str, float]:
    settings = [s for s in ("coin", "coin_beta0") if s in evals]
    results = {}
    for setting in settings:
        e = evals[setting]
        results[f"{setting}/self_play_reward"] = mean_of(e, "self_play_reward")
        results[f"{setting}/self_play_own_coin_fraction"] = mean_of(
            e, "self_play_own_coin_fraction"
        )
        results[f"{setting}/ad_vs_agent_reward"] = mean_of(e, "always_defect_vs_agent_reward")
        results[f"{setting}/vs_always_defect_reward"] = mean_of(e, "agent_vs_always_defect_reward")
        results[f"{setting}/vs_always_cooperate_reward"] = mean_of(
            e, "agent_vs_always_cooperate_reward"
        )
    labels = [f"AA ({s})" if p == "agent" else p for s in ["coin"] for p in PLAYERS]
    heatmap(
        out / "coin_cross_play.png",
        league_matrix(evals["coin"], "reward"),
        labels,
        labels,
        title="Coin Game: row player's reward per step",
        xlabel="column player",
        ylabel="row player",
    )
    plot_learning_curves(
        out / "coin_learning_curves.png",
        {s: runs[s] for s in settings},
        "eval/self_play_own_coin_fraction",
        "self-play own-coin fraction",
        hline={"always cooperate": 1.0, "greedy": 0.5},
    )
    return results


def negotiation_results(runs, evals, out: Path) -> dict[str, float]:
    names = ("negotiation", "negotiation_beta0", "negotiation_paa", "negotiation_aa")
    settings = [s for s in names if s in evals]
    results = {}
    for setting in settings:
        e = evals[setting]
        results[f"{setting}/self_play_reward"] = mean_of(e, "self_play_reward")
        results[f"{setting}/self_play_reward_worst_seed"] = float(
            min(x["self_play_reward"] for x in e)
        )
        results[f"{setting}/vs_always_defect_reward"] = mean_of(e, "agent_vs_always_defect_reward")
        results[f"{setting}/ad_vs_agent_reward"] = mean_of(e, "always_defect_vs_agent_reward")
    first = evals[settings[0]]
    # a setting that reused an earlier one's runs (negotiation_paa at quick scale) is plotted once
    plotted = [
        s
        for i, s in enumerate(settings)
        if not any(runs[s] == runs[t][: len(runs[s])] for t in settings[:i])
    ]
    league = {s: [x["self_play_reward"] for x in evals[s]] for s in plotted}
    league["always_cooperate"] = [x["always_cooperate_vs_always_cooperate_reward"] for x in first]
    league["always_defect"] = [x["always_defect_vs_always_defect_reward"] for x in first]
    bar_chart(
        out / "negotiation_league.png",
        list(league),
        [np.mean(v) for v in league.values()],
        [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in league.values()],
        ylabel="self-play reward per round (normalised)",
        title="Negotiation Game (Fig. 3a)",
        reference={"paper AA 0.44": 0.44, "paper PPO 0.25": 0.25},
    )
    labels = list(PLAYERS)
    heatmap(
        out / "negotiation_cross_play.png",
        league_matrix(evals["negotiation"], "reward")
        if "negotiation" in evals
        else league_matrix(first, "reward"),
        labels,
        labels,
        title="Negotiation: row player's reward per round",
        xlabel="column player",
        ylabel="row player",
    )
    plot_learning_curves(
        out / "negotiation_learning_curves.png",
        {s: runs[s] for s in plotted},
        "eval/self_play_reward",
        "self-play reward per round",
        hline={"always cooperate": 0.5, "always defect": 0.3},
    )
    return results


if __name__ == "__main__":
    raise SystemExit(reproduce_cli(PAPER, main, __doc__))
