"""Evaluate a trained MeVa run: head-to-head play against the baseline learners, TD error, plots.

    python -m meva.eval --run runs/meva/quick/ipd_seed0

Protocol (issue 16, M-FOS setup): ``eval.pairs`` random initial joint policies (logits ~ N(0, 1)), both
players update simultaneously for ``eval.iterates`` steps with lr alpha on the unnormalised return, and
the per-step returns at the last iterate are averaged over the pairs. Writes ``<run>/eval.json``,
``<run>/curves.json`` (mean per-step return at every iterate) and PNGs under ``<run>/plots/``. The
cross-run analysis behind ``make meva`` (tables over seeds, the toy-game landscapes) lives here too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import league
from common.cli import entry_point
from common.envs.matrix_games import STATE_NAMES  # noqa: E402
from common.learners import LEARNERS, Learner, play  # noqa: E402
from common.plots import learning_curves  # noqa: E402
from common.runner import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    load_run_config,
    read_metrics,
    set_threads,
)
from meva.config import MevaConfig  # noqa: E402
from meva.games import Game, make_game  # noqa: E402
from meva.model import MetaValue, meta_values, meva_learner  # noqa: E402
from meva.rollouts import random_logits  # noqa: E402


def load_run(run_dir: Path | str) -> tuple:
    """(cfg, game, U) of a finished run; a missing directory or checkpoint is a CheckpointError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"no run directory {run_dir}")
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(OmegaConf.structured(MevaConfig), load_run_config(run_dir))
    state = load_checkpoint(run_dir)
    game = make_game(cfg.game.name, cfg.game.inner_gamma)
    value = MetaValue(game.n_params, cfg.model.hidden, cfg.model.layers).double()
    try:
        value.load_state_dict(state["objects"]["value"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint of {run_dir} does not fit its config: {err}") from None
    value.requires_grad_(False)
    return cfg, game, value


def initial_pairs(game: Game, pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return random_logits(pairs, game.n_params, generator), random_logits(
        pairs, game.n_params, generator
    )


def head_to_head(
    game: Game,
    learner_1: Learner,
    learner_2: Learner,
    x1: torch.Tensor,
    x2: torch.Tensor,
    lr: float,
    iterates: int,
) -> dict:
    """Per-step returns of both players: at the last iterate (mean over pairs) and along the way."""
    x1_end, x2_end, f1, f2 = play(learner_1, learner_2, x1, x2, game.returns, lr, iterates)
    f1, f2 = f1 / game.horizon, f2 / game.horizon  # back to the per-step scale
    return {
        "reward_1": float(f1[-1].mean()),
        "reward_2": float(f2[-1].mean()),
        "curve_1": f1.mean(-1).tolist(),
        "curve_2": f2.mean(-1).tolist(),
        "x1": x1_end,
        "x2": x2_end,
    }


def pair_keys(name_1: str, name_2: str, outcome: dict) -> dict[str, float]:
    """Results keys of one pairing: self-play is the mean of both seats (``a_vs_a_reward``); a cross
    pair reports each learner's own return (``a_vs_b_a_reward``, ``a_vs_b_b_reward``)."""
    if name_1 == name_2:
        return {f"{name_1}_vs_{name_2}_reward": 0.5 * (outcome["reward_1"] + outcome["reward_2"])}
    return {
        f"{name_1}_vs_{name_2}_{name_1}_reward": outcome["reward_1"],
        f"{name_1}_vs_{name_2}_{name_2}_reward": outcome["reward_2"],
    }


def evaluate(run_dir: Path | str) -> dict[str, float]:
    """MeVa (this run's U) against itself and every ``eval.opponents`` learner; writes eval.json."""
    run_dir = Path(run_dir)
    cfg, game, value = load_run(run_dir)
    set_threads(cfg.threads)  # one thread: more on a busy 2-core box is many times slower
    meva = meva_learner(value, game.horizon)
    x1, x2 = initial_pairs(game, cfg.eval.pairs, cfg.eval.seed + cfg.seed)
    results: dict[str, float] = {}
    curves: dict[str, list[float]] = {}
    for opponent in ["meva", *cfg.eval.opponents]:
        other = meva if opponent == "meva" else LEARNERS[opponent]
        outcome = head_to_head(game, meva, other, x1, x2, cfg.game.lr, cfg.eval.iterates)
        results.update(pair_keys("meva", opponent, outcome))
        curves[f"meva_vs_{opponent}/meva"] = outcome["curve_1"]
        curves[f"meva_vs_{opponent}/{opponent}"] = outcome["curve_2"]
        if opponent == "meva" and game.n_params == len(STATE_NAMES):
            final = torch.sigmoid(torch.cat([outcome["x1"], outcome["x2"]]))
            for i, state in enumerate(STATE_NAMES):
                results[f"p_coop_{state}"] = float(final[:, i].mean())
    errors = [m["td/heldout_error"] for m in read_metrics(run_dir) if "td/heldout_error" in m]
    if errors:
        results["td_error_initial"] = errors[0]
        results["td_error_final"] = errors[-1]
        results["td_error_ratio"] = errors[0] / max(errors[-1], 1e-12)

    plots = run_dir / "plots"
    learning_curves(
        plots / "returns_along_iterates.png",
        {k: np.asarray(v) for k, v in curves.items()},
        xlabel="iterate",
        ylabel="per-step return (mean over pairs)",
        title=f"{game.name}: MeVa (meta-gamma {cfg.train.meta_gamma}) head to head",
    )
    if errors:
        steps = [m["step"] for m in read_metrics(run_dir) if "td/heldout_error" in m]
        learning_curves(
            plots / "td_error.png",
            {"held-out TD error": np.asarray(errors)},
            x=np.asarray(steps),
            xlabel="TD update",
            ylabel="mean squared TD error",
            title=f"{game.name}: held-out TD error",
            logy=True,
        )
    if game.n_params == 1:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        landscape_panel(ax, cfg, game, value)
        fig.tight_layout()
        fig.savefig(plots / "landscape.png", dpi=120)
        plt.close(fig)
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (run_dir / "curves.json").write_text(json.dumps(curves) + "\n")
    return results


def league_ipd_policy(run_dir: Path) -> torch.Tensor:
    """League loader (common.league): the memory-1 policy P(C | start, CC, CD, DC, DD) [5] that MeVa
    self-play reaches from the uniform policy (logits 0) after ``eval.iterates`` simultaneous updates,
    seat 1's (the start is symmetric, so both seats end alike). MeVa is a learning rule, not a policy:
    this is the policy it settles on, the way the paper reads its IPD results at the last iterate."""
    cfg, game, value = load_run(run_dir)
    if game.name != "ipd":
        raise CheckpointError(f"{run_dir} is a {game.name} run, not an IPD run")
    meva = meva_learner(value, game.horizon)
    start = torch.zeros(1, game.n_params, dtype=torch.float64)
    x1, _, _, _ = play(
        meva, meva, start, start.clone(), game.returns, cfg.game.lr, cfg.eval.iterates
    )
    return torch.sigmoid(x1[0]).detach()


league.register("meva", "ipd", league_ipd_policy, paper="meva", pattern="ipd_meva_seed*")


def landscape_panel(ax, cfg, game: Game, value: MetaValue, starts: int = 5, iterates: int = 100):
    """Player 1's estimated meta-value f_1 + U over the joint parameters of a one-parameter game, with
    MeVa self-play trajectories from a grid of starts (the paper's toy-game figure, Sec. 5.1)."""
    grid = torch.linspace(-4, 4, 81, dtype=torch.float64)
    t1, t2 = torch.meshgrid(grid, grid, indexing="xy")  # t1 varies along x
    with torch.no_grad():
        v1, _ = meta_values(game, value, t1.reshape(-1, 1), t2.reshape(-1, 1))
    image = ax.contourf(
        t1.numpy(), t2.numpy(), v1.reshape(t1.shape).numpy(), levels=20, cmap="viridis"
    )
    plt.colorbar(image, ax=ax, fraction=0.046, label="V_1 = f_1 + U (per-step units)")
    corners = torch.linspace(-3, 3, starts, dtype=torch.float64)
    s1, s2 = torch.meshgrid(corners, corners, indexing="xy")
    x1, x2 = s1.reshape(-1, 1), s2.reshape(-1, 1)
    meva = meva_learner(value, game.horizon)
    path_1, path_2 = [x1], [x2]
    for _ in range(iterates):
        x1, x2, _, _ = play(meva, meva, x1, x2, game.returns, cfg.game.lr, 1)
        path_1.append(x1.clamp(-4, 4))
        path_2.append(x2.clamp(-4, 4))
    p1, p2 = torch.stack(path_1)[..., 0].numpy(), torch.stack(path_2)[..., 0].numpy()
    for k in range(p1.shape[1]):
        ax.plot(p1[:, k], p2[:, k], color="white", linewidth=0.8)
        ax.plot(p1[-1, k], p2[-1, k], "o", color="red", markersize=3)
    ax.set(
        xlabel="player 1 logit (P(C) = sigmoid)",
        ylabel="player 2 logit",
        title=f"{game.name}, meta-gamma {cfg.train.meta_gamma}",
        xlim=(-4, 4),
        ylim=(-4, 4),
    )


def plot_landscapes(run_dirs: list[Path], path: Path, title: str) -> Path:
    """One landscape panel per run (e.g. per meta-discount), side by side."""
    fig, axes = plt.subplots(1, len(run_dirs), figsize=(4.8 * len(run_dirs), 4.4), squeeze=False)
    for ax, run_dir in zip(axes[0], run_dirs):
        cfg, game, value = load_run(run_dir)
        landscape_panel(ax, cfg, game, value)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def baseline_pairs(
    game: Game, names: list[str], x1: torch.Tensor, x2: torch.Tensor, lr: float, iterates: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Every unordered pair (with self-play) of baseline learners on the same initial policies."""
    results, curves = {}, {}
    for i, name_1 in enumerate(names):
        for name_2 in names[i:]:
            outcome = head_to_head(game, LEARNERS[name_1], LEARNERS[name_2], x1, x2, lr, iterates)
            results.update(pair_keys(name_1, name_2, outcome))
            curves[f"{name_1}_vs_{name_2}/{name_1}"] = outcome["curve_1"]
            curves[f"{name_1}_vs_{name_2}/{name_2}"] = outcome["curve_2"]
    return results, curves


def return_matrix(results: dict[str, float], names: list[str]) -> np.ndarray:
    """Row learner's per-step return against the column learner, from flat pair keys."""
    matrix = np.full((len(names), len(names)), np.nan)
    for i, row in enumerate(names):
        for j, col in enumerate(names):
            for key in (
                f"{row}_vs_{col}_reward" if row == col else f"{row}_vs_{col}_{row}_reward",
                f"{col}_vs_{row}_{row}_reward",
            ):
                if key in results:
                    matrix[i, j] = results[key]
                    break
    return matrix


@entry_point("python -m meva.eval")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meva.eval", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="run directory, e.g. runs/meva/quick/ipd_seed0"
    )
    args = parser.parse_args(argv)
    print(json.dumps(evaluate(args.run), indent=2, sort_keys=True))
    return 0


def table_heatmap(
    path: Path, mean: np.ndarray, std: np.ndarray, names: list[str], title: str
) -> Path:
    """A head-to-head table (the paper's Tables 2-3 layout) with mean +- std written in every cell."""
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2.5, 0.9 * len(names) + 1.8))
    image = ax.imshow(mean, cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.046, label="per-step return")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    finite = mean[np.isfinite(mean)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            color = "white" if mean[i, j] < middle else "black"
            text = f"{mean[i, j]:.2f}\n±{std[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=7)
    ax.set(title=title, xlabel="column learner (opponent)", ylabel="row learner (return shown)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
