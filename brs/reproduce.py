"""`make brs` / `make brs-full`: BRS (reconstructed) on the exact IPD and the 3x3 Coin Game.

    python -m brs.reproduce quick                        # both games (what `make brs` runs)
    python -m brs.reproduce quick only=ipd ipd.reproduce.n_seeds=1
    python -m brs.reproduce quick coin.agent.iterations=100 coin.mcts.simulations=16

IPD: for each variant (BRS-SP, BRS, the naive self-play learner, BRS-SP without its detective term) and
seed, train a leader, then train `probe.seeds` fresh learners from scratch against the frozen leader and
record the leader's worst value among them; always-cooperate gets the same probe. Coin Game: train a
BRS-SP leader, then play it, always-cooperate and always-defect against the MCTS planner.
Overrides: `ipd.<key>=v` / `coin.<key>=v` go to one game's preset, `only=ipd|coin` picks a game, any other
`key=v` goes to both. `*_reward_vs_best_response` = the agent's worst exact per-step value over the probe
seeds and the training seeds; `*_best_seed` = the best training seed's worst (the stricter number for the
controls).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import common.results  # noqa: E402
from brs.config import CONFIG_DIR, GAMES, BrsConfig, validate  # noqa: E402
from brs.eval import evaluate, mcts_vs, probe_ipd  # noqa: E402
from brs.mcts import Policy  # noqa: E402
from brs.train import BOT_LOGITS, train  # noqa: E402
from common.config import ConfigError, load_config  # noqa: E402
from common.envs.agents import coin_always_cooperate, coin_always_defect  # noqa: E402
from common.envs.matrix_games import STATE_NAMES  # noqa: E402
from common.plots import learning_curves  # noqa: E402
from common.results import PaperNumber, results_dir, write_results  # noqa: E402
from common.runner import read_metrics  # noqa: E402

PAPER = "brs"
_NOTEBOOK = "arXiv 2404.06519; authors' pre-publication league notebook (3x3 Coin Game, T 50), not the final figure"
_NO_IPD = "arXiv 2404.06519, IPD experiment: no value we could read; pass mark from the issue"
PAPER_NUMBERS: dict[str, PaperNumber] = {
    "ipd/brs_sp_reward_vs_best_response": PaperNumber(None, _NO_IPD),
    "ipd/brs_reward_vs_best_response": PaperNumber(None, _NO_IPD),
    "ipd/always_cooperate_reward_vs_best_response": PaperNumber(
        None, "derived: AC vs AD = -3 per step"
    ),
    "ipd/naive_reward_vs_best_response": PaperNumber(None, _NO_IPD),
    "ipd/brs_sp_no_detective_reward_vs_best_response": PaperNumber(None, "ours (ablation)"),
    "ipd/detective_reward_vs_always_cooperate": PaperNumber(None, "derived: AD vs AC = 0 per step"),
    "ipd/detective_reward_vs_tit_for_tat": PaperNumber(
        None, "derived: mutual cooperation = -1 per step"
    ),
    "ipd/brs_sp_self_play_reward": PaperNumber(None, "derived: mutual cooperation = -1 per step"),
    "coin/agent_reward_vs_mcts": PaperNumber(0.306, _NOTEBOOK),
    "coin/mcts_reward_vs_agent": PaperNumber(0.347, _NOTEBOOK),
    "coin/always_cooperate_reward_vs_mcts": PaperNumber(-0.273, _NOTEBOOK),
    "coin/mcts_reward_vs_always_cooperate": PaperNumber(0.644, _NOTEBOOK),
    "coin/always_defect_reward_vs_mcts": PaperNumber(0.049, _NOTEBOOK),
    "coin/mcts_reward_vs_always_defect": PaperNumber(-0.041, _NOTEBOOK),
    "coin/self_play_reward": PaperNumber(0.341, _NOTEBOOK),
    "coin/agent_reward_vs_always_cooperate": PaperNumber(0.342, _NOTEBOOK),
    "coin/agent_reward_vs_always_defect": PaperNumber(-0.106, _NOTEBOOK),
}
HEADLINE = [
    "ipd/brs_sp_reward_vs_best_response",
    "ipd/always_cooperate_reward_vs_best_response",
    "ipd/brs_sp_self_play_reward",
    "coin/agent_reward_vs_mcts",
    "coin/always_cooperate_reward_vs_mcts",
]


def split_overrides(overrides: list[str]) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """Route `ipd.k=v` / `coin.k=v` / `k=v` overrides to the games; `only=` picks the games."""
    per_game: dict[str, list[str]] = {g: [] for g in GAMES}
    games = GAMES
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        if key == "only":
            if value not in GAMES:
                raise ConfigError(f"only={value}: expected one of {', '.join(GAMES)}")
            games = (value,)
        elif key.split(".")[0] in GAMES:
            per_game[key.split(".")[0]].append(item.split(".", 1)[1])
        else:
            for game in GAMES:
                per_game[game].append(item)
    return per_game, games


def run_config(base: DictConfig, scale: str, variant: str, seed: int) -> DictConfig:
    """The base preset with one variant and seed, named <scale>/<game>/<variant>_seed<seed>."""
    cfg = copy.deepcopy(base)
    cfg.agent.variant, cfg.seed = variant, seed
    cfg.name = f"{scale}/{base.env.game}/{variant}_seed{seed}"
    cfg.overwrite = not cfg.resume  # a reproduction replaces the previous one of its scale
    return cfg


# ----------------------------------------------------------------------------------------------- IPD
def reproduce_ipd(base: DictConfig, scale: str, out: Path) -> dict[str, float]:
    evals: dict[str, list[dict[str, float]]] = {}
    run_dirs: dict[str, list[Path]] = {}
    for variant in base.reproduce.variants:
        for seed in range(base.seed, base.seed + base.reproduce.n_seeds):
            run_dir = train(run_config(base, scale, variant, seed))
            evals.setdefault(variant, []).append(evaluate(run_dir))
            run_dirs.setdefault(variant, []).append(run_dir)
    # Always-cooperate faces the same probes (one probe seed set per training seed, like the agents).
    ac = [
        probe_ipd(BOT_LOGITS["always_cooperate"], base, seed)
        for seed in range(base.seed, base.seed + base.reproduce.n_seeds)
    ]
    evals["always_cooperate"] = ac

    results: dict[str, float] = {}
    for name, rows in evals.items():
        worst = [r["reward_vs_best_response"] for r in rows]
        results[f"ipd/{name}_reward_vs_best_response"] = min(worst)
        results[f"ipd/{name}_reward_vs_best_response_best_seed"] = max(worst)
        results[f"ipd/{name}_reward_vs_best_response_mean"] = float(
            np.mean([r["reward_vs_best_response_mean"] for r in rows])
        )
        if name != "always_cooperate":
            results[f"ipd/{name}_self_play_reward"] = min(r["self_play_reward"] for r in rows)
            for state in STATE_NAMES:
                results[f"ipd/{name}_p_coop_{state}"] = float(
                    np.mean([r[f"p_coop_{state}"] for r in rows])
                )
    for variant in ("brs_sp", "brs"):
        if variant in evals:
            prefix = "ipd/detective" if variant == "brs_sp" else "ipd/brs_detective"
            for bot in ("always_cooperate", "tit_for_tat", "agent"):
                results[f"{prefix}_reward_vs_{bot}"] = min(
                    r[f"detective_reward_vs_{bot}"] for r in evals[variant]
                )
    plot_ipd(results, evals, run_dirs, out)
    return results


def plot_ipd(
    results: dict[str, float], evals: dict, run_dirs: dict[str, list[Path]], out: Path
) -> None:
    names = list(evals)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    worst = [results[f"ipd/{n}_reward_vs_best_response"] for n in names]
    mean = [results[f"ipd/{n}_reward_vs_best_response_mean"] for n in names]
    ax.bar(x - 0.2, worst, 0.4, label="worst over probe and training seeds")
    ax.bar(x + 0.2, mean, 0.4, label="mean")
    for level, label in (
        (-1.0, "mutual cooperation"),
        (-2.0, "mutual defection"),
        (-3.0, "exploited (AC vs AD)"),
    ):
        ax.axhline(level, ls="--", color="gray", lw=1)
        ax.annotate(
            label, (0.01, level), xycoords=("axes fraction", "data"), fontsize=7, color="gray"
        )
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set(
        ylabel="agent reward per step vs best-response probe",
        title="IPD: agent vs a learner trained from scratch against it",
        ylim=(-3.2, 0),
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "ipd_best_response.png", dpi=120)
    plt.close(fig)

    learned = [n for n in names if n != "always_cooperate"]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(STATE_NAMES))
    width = 0.8 / max(len(learned), 1)
    for i, name in enumerate(learned):
        ax.bar(
            x + (i - (len(learned) - 1) / 2) * width,
            [results[f"ipd/{name}_p_coop_{s}"] for s in STATE_NAMES],
            width,
            label=name,
        )
    ax.set_xticks(x, [f"P(C | {s})" for s in STATE_NAMES])
    ax.set(
        ylabel="probability (mean over seeds)",
        title="IPD: the agents' memory-1 policies",
        ylim=(0, 1.05),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ipd_policy.png", dpi=120)
    plt.close(fig)

    curves = {}
    for name in learned:
        rows = [read_metrics(d) for d in run_dirs[name]]
        length = min(len(r) for r in rows)
        curves[f"{name} self-play"] = np.array(
            [[m["agent/self_play_reward"] for m in r[:length]] for r in rows]
        )
        steps = np.array([m["step"] for m in rows[0][:length]])
    for key, label in (
        ("detective/reward_vs_tit_for_tat", "BRS-SP detective vs TFT"),
        ("detective/reward_vs_always_cooperate", "BRS-SP detective vs AC"),
    ):
        if "brs_sp" in run_dirs:
            rows = [read_metrics(d) for d in run_dirs["brs_sp"]]
            length = min(len(r) for r in rows)
            curves[label] = np.array([[m[key] for m in r[:length]] for r in rows])
    learning_curves(
        out / "ipd_training.png",
        curves,
        xlabel="leader iteration",
        ylabel="exact reward per step",
        title="IPD training",
        x=steps,
    )


# ------------------------------------------------------------------------------------------ Coin Game
# eval.json key -> results key, for the sampled-episode pairings of a Coin Game agent.
COIN_SAMPLED_KEYS = {
    "self_play_reward": "self_play_reward",
    "self_play_own_coin_fraction": "self_play_own_coin_fraction",
    "vs_always_cooperate_reward": "agent_reward_vs_always_cooperate",
    "vs_always_defect_reward": "agent_reward_vs_always_defect",
}


def reproduce_coin(base: DictConfig, scale: str, out: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    agents: dict[str, dict[str, float]] = {}
    for variant in base.reproduce.variants:
        rows = []
        for seed in range(base.seed, base.seed + base.reproduce.n_seeds):
            run_dir = train(run_config(base, scale, variant, seed))
            rows.append(evaluate(run_dir, base.reproduce.eval_episodes))
        agents[variant] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        name = "" if variant == "brs_sp" else f"{variant}_"  # the keys name BRS-SP plainly
        for key in ("agent_reward_vs_mcts", "mcts_reward_vs_agent", "own_coin_fraction_vs_mcts"):
            results[f"coin/{name}{key}"] = agents[variant][key]
        for key, result_key in COIN_SAMPLED_KEYS.items():
            results[f"coin/{name}{result_key}"] = agents[variant][key]
    for bot_name, bot in (
        ("always_cooperate", coin_always_cooperate),
        ("always_defect", coin_always_defect),
    ):
        match = mcts_vs(Policy(bot=bot), base, 40_000 + base.seed)
        agents[bot_name] = {
            "agent_reward_vs_mcts": match["agent_reward"],
            "mcts_reward_vs_agent": match["mcts_reward"],
        }
        results[f"coin/{bot_name}_reward_vs_mcts"] = match["agent_reward"]
        results[f"coin/mcts_reward_vs_{bot_name}"] = match["mcts_reward"]
    plot_coin(agents, out)
    rows = read_metrics(
        Path(base.out_dir) / PAPER / f"{scale}/coin/{base.reproduce.variants[0]}_seed{base.seed}"
    )
    if rows:
        keys = [
            k
            for k in (
                "self_play/reward",
                "vs_detective/agent_reward",
                "vs_detective/detective_reward",
                "detective/train_reward",
                "self_play/own_coin_fraction",
            )
            if k in rows[0]
        ]
        learning_curves(
            out / "coin_training.png",
            {k: np.array([r[k] for r in rows]) for k in keys},
            xlabel="leader iteration",
            ylabel="reward per step / fraction",
            title=f"Coin Game training ({base.reproduce.variants[0]})",
            x=np.array([r["step"] for r in rows]),
        )
    return results


def plot_coin(agents: dict[str, dict[str, float]], out: Path) -> None:
    names = list(agents)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, [agents[n]["agent_reward_vs_mcts"] for n in names], 0.4, label="agent's reward")
    ax.bar(x + 0.2, [agents[n]["mcts_reward_vs_agent"] for n in names], 0.4, label="MCTS's reward")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, names)
    ax.set(ylabel="reward per step", title="3x3 Coin Game: agent vs the MCTS opponent")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "coin_vs_mcts.png", dpi=120)
    plt.close(fig)


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    """Train and evaluate every setting of `scale`; write and return the flat results."""
    start = time.time()
    per_game, games = split_overrides(overrides)
    configs = {g: load_config(BrsConfig, f"{g}_{scale}", per_game[g], CONFIG_DIR) for g in games}
    for cfg in configs.values():
        validate(cfg)
    out_dir = configs[games[0]].out_dir
    out = results_dir(PAPER, scale, out_dir)
    results: dict[str, float] = {}
    if "ipd" in configs:
        results.update(reproduce_ipd(configs["ipd"], scale, out))
    if "coin" in configs:
        results.update(reproduce_coin(configs["coin"], scale, out))
    results["wall_clock_s"] = round(time.time() - start, 1)
    write_results(PAPER, scale, results, out_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(common.results.reproduce_cli(PAPER, main, __doc__))
