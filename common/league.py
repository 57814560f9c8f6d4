"""A cross-paper league: trained opponent-shaping agents and scripted bots, every one against every other.

    python -m common.league                          # runs/<paper>/quick/... -> runs/league/quick/
    python -m common.league --runs-root runs /elsewhere/runs --episodes 256

The league imports no paper package by hand. Each paper's ``eval.py`` registers its methods on import::

    from common import league
    league.register("loqa", "coin", load_coin_player, paper="loqa", pattern="coin/loqa_seed*")

``pattern`` is a glob under ``<runs root>/<paper>/<scale>/``; every matching run directory is one seed of the
method (its seed from the ``_seed<N>`` suffix). A loader turns a run directory into
- Coin Game: a player factory ``make(generator) -> player``, a player having ``reset(batch)`` and
  ``act(obs [B, 4, H, W]) -> actions [B]`` (it samples its own policy, no exploration noise);
- IPD: the exact memory-1 policy, a tensor P(C | start, CC, CD, DC, DD) [5].
The league (``coin_round_robin`` / ``ipd_league``) plays every (method, seed) and the scripted bots
(always-cooperate AC, always-defect AD, random; tit-for-tat in the IPD), both seats, self-play, cross-seed
and cross-method, and reduces the matrices of players to matrices of methods with standard errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from common.cli import UsageError, entry_point
from common.envs.agents import (
    IPD_ALWAYS_COOPERATE,
    IPD_ALWAYS_DEFECT,
    IPD_RANDOM,
    IPD_TIT_FOR_TAT,
    coin_always_cooperate,
    coin_always_defect,
    coin_random,
)
from common.envs.coin_game import CoinGame
from common.envs.matrix_games import average_reward_finite_horizon
from common.envs.metrics import own_coin_fraction
from common.runner import RunDirError

GAMES = ("coin", "ipd")
COIN_BOTS = {"AC": coin_always_cooperate, "AD": coin_always_defect, "Random": coin_random}
IPD_BOTS = {
    "AC": IPD_ALWAYS_COOPERATE,
    "AD": IPD_ALWAYS_DEFECT,
    "TFT": IPD_TIT_FOR_TAT,
    "Random": IPD_RANDOM,
}
REPO_ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Entry:
    method: str  # league name, e.g. "loqa", "naive", "brs_sp", "aa"
    game: str  # "coin" or "ipd"
    loader: Callable  # run dir -> player factory (coin) or memory-1 policy [5] (ipd)
    paper: str  # the package whose runs hold it: runs/<paper>/<scale>/
    pattern: str  # glob of its run directories under runs/<paper>/<scale>/


REGISTRY: dict[tuple[str, str], Entry] = {}


def register(method: str, game: str, loader: Callable, *, paper: str, pattern: str) -> None:
    """Make `method` a league member in `game`: `loader(run_dir)` loads one of its seeds."""
    if game not in GAMES:
        raise ValueError(f"game must be one of {GAMES}, got {game!r}")
    REGISTRY[(method, game)] = Entry(method, game, loader, paper, pattern)


def paper_packages(root: Path = REPO_ROOT) -> list[str]:
    """Packages whose eval.py registers league members (found by reading, imported by name)."""
    return sorted(
        p.parent.name
        for p in root.glob("*/eval.py")
        if "common.league" in p.read_text() or "from common import league" in p.read_text()
    )


def load_registrations(packages: list[str] | None = None) -> dict[tuple[str, str], Entry]:
    """Import each paper's eval module (it registers itself); returns the registry."""
    for package in paper_packages() if packages is None else packages:
        importlib.import_module(f"{package}.eval")
    return REGISTRY


def seed_of(run_dir: Path) -> int:
    match = re.search(r"_seed(\d+)$", run_dir.name)
    return int(match.group(1)) if match else 0


def discover(
    roots: list[Path | str], scale: str = "quick", game: str | None = None
) -> dict[tuple[str, str], list[Path]]:
    """{(method, game): run dirs} of every registered method found under the roots; the first root
    holding a (method, seed) wins. A run counts once it has a checkpoint and its latest one is loaded:
    a run still training would join with a partial agent, so point the roots at finished runs."""
    for root in roots:
        if not Path(root).is_dir():
            raise RunDirError(f"no runs directory {root}")
    found: dict[tuple[str, str], dict[int, Path]] = {}
    for key, entry in REGISTRY.items():
        if game is not None and entry.game != game:
            continue
        for root in roots:
            base = Path(root) / entry.paper / scale
            for run_dir in sorted(base.glob(entry.pattern)):
                if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
                    found.setdefault(key, {}).setdefault(seed_of(run_dir), run_dir)
    return {k: [v[s] for s in sorted(v)] for k, v in found.items()}


def load(method: str, game: str, run_dir: Path | str):
    """The registered loader of (method, game) on one run directory; one-line errors."""
    if (method, game) not in REGISTRY:
        known = ", ".join(f"{m}/{g}" for m, g in REGISTRY) or "none"
        raise UsageError(f"no league method {method!r} in {game} (registered: {known})")
    if not Path(run_dir).is_dir():
        raise RunDirError(f"no run directory {run_dir}")
    return REGISTRY[(method, game)].loader(Path(run_dir))


# ----------------------------------------------------------------------------------------- IPD
def ipd_pair(p_row: Tensor, p_col: Tensor, horizon: int = 50) -> tuple[float, float]:
    """Exact expected reward per step of two memory-1 policies [5] over a `horizon`-step episode."""
    r_row, r_col = average_reward_finite_horizon(p_row.double(), p_col.double(), horizon=horizon)
    return float(r_row), float(r_col)


def ipd_league(policies: dict[str, Tensor], horizon: int = 50) -> np.ndarray:
    """reward[i, j] = reward per step of policy i playing policy j (exact)."""
    names = list(policies)
    reward = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            reward[i, j] = ipd_pair(policies[a], policies[b], horizon)[0]
    return reward


# ----------------------------------------------------------------------------------------- Coin Game
class BotPlayer:
    """A scripted Coin Game bot (always-cooperate, always-defect, random) as a player."""

    def __init__(self, policy: Callable[..., Tensor], generator: torch.Generator):
        self.policy, self.generator = policy, generator

    def reset(self, batch_size: int) -> None:
        pass

    def act(self, obs: Tensor) -> Tensor:
        return self.policy(obs, self.generator)


def _mean_of_present(a: float, b: float) -> float:
    return a if np.isnan(b) else (b if np.isnan(a) else (a + b) / 2)


def _standard_error(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.std() / len(x) ** 0.5) if len(x) > 1 else float("nan")


@torch.no_grad()
def play_coin_match(env: CoinGame, player0, player1, episodes: int) -> dict[str, float]:
    """`episodes` parallel games; reward per step and own-coin fraction of each seat (and their
    standard errors over games)."""
    obs = env.reset(episodes)
    player0.reset(episodes)
    player1.reset(episodes)
    rewards, own, other = [], [], []
    for _ in range(env.episode_length):
        actions = torch.stack([player0.act(obs[:, 0]), player1.act(obs[:, 1])], dim=1)
        obs, reward, _, info = env.step(actions)
        rewards.append(reward)
        own.append(info["own_coin_pickups"])
        other.append(info["other_coin_pickups"])
    rewards, own, other = torch.stack(rewards, 1), torch.stack(own, 1), torch.stack(other, 1)
    own_per_game = own.float().sum(1) / (own + other).float().sum(1)  # [B, 2], nan: no pickup
    result = {
        "reward_0": float(rewards[..., 0].mean()),
        "reward_1": float(rewards[..., 1].mean()),
        "own_coin_fraction_0": own_coin_fraction(own[..., 0], other[..., 0]),
        "own_coin_fraction_1": own_coin_fraction(own[..., 1], other[..., 1]),
        "pickups_per_step_0": float((own + other)[..., 0].mean()),
    }
    for seat in (0, 1):
        result[f"reward_se_{seat}"] = _standard_error(rewards[..., seat].float().mean(1))
        result[f"own_coin_fraction_se_{seat}"] = _standard_error(own_per_game[:, seat])
    return result


def coin_league(
    env: CoinGame, players: dict[str, Callable], episodes: int, both_seats: bool = False
) -> dict[str, np.ndarray]:
    """Round robin: reward[i, j] and own_coin[i, j] of player i against player j, with standard errors.

    `players` maps a name to a factory of fresh players (a player keeps per-episode state, so self-play
    needs two). Each unordered pair plays one match of `episodes` games with i in seat 0 (both_seats:
    a second match with j in seat 0, the two averaged); the diagonal is a player against a copy of
    itself (the mean of its two seats).
    """
    names = list(players)
    n = len(names)
    out = {k: np.full((n, n), np.nan) for k in ("reward", "own_coin_fraction", "reward_se")}
    out["own_coin_fraction_se"] = np.full((n, n), np.nan)

    def put(i, j, seat, results):  # player i sat in `seat`; a second match is averaged in
        for k in ("reward", "own_coin_fraction"):
            prev, new = out[k][i, j], results[f"{k}_{seat}"]
            out[k][i, j] = new if np.isnan(prev) else _mean_of_present(prev, new)
            prev, new = out[f"{k}_se"][i, j], results[f"{k}_se_{seat}"]
            out[f"{k}_se"][i, j] = new if np.isnan(prev) else float(np.hypot(prev, new) / 2)

    for i in range(n):
        for j in range(i, n):
            result = play_coin_match(env, players[names[i]](), players[names[j]](), episodes)
            if i == j:
                out["reward"][i, i] = (result["reward_0"] + result["reward_1"]) / 2
                out["own_coin_fraction"][i, i] = _mean_of_present(
                    result["own_coin_fraction_0"], result["own_coin_fraction_1"]
                )
                out["reward_se"][i, i] = np.hypot(result["reward_se_0"], result["reward_se_1"]) / 2
                out["own_coin_fraction_se"][i, i] = (
                    np.hypot(result["own_coin_fraction_se_0"], result["own_coin_fraction_se_1"]) / 2
                )
                continue
            put(i, j, 0, result)
            put(j, i, 1, result)
            if both_seats:
                swapped = play_coin_match(env, players[names[j]](), players[names[i]](), episodes)
                put(j, i, 0, swapped)
                put(i, j, 1, swapped)
    return out


# ----------------------------------------------------------------------------------------- reduction
def method_matrix(
    players: list[str],
    member_of: dict[str, str],
    values: np.ndarray,
    match_se: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Players' matrix -> methods' matrix: mean over seed pairs and its standard error over them.

    The diagonal of a method is its self-play (each seed with itself); its cross-seed pairs
    (seed a vs seed b != a) are returned by `cross_seed_values`. A cell of one pair of players
    (one seed each) takes the standard error of its match (`match_se`) instead.
    """
    methods = list(dict.fromkeys(member_of[p] for p in players))
    mean = np.full((len(methods), len(methods)), np.nan)
    se = np.full_like(mean, np.nan)
    for a, ma in enumerate(methods):
        for b, mb in enumerate(methods):
            cells = [
                (values[i, j], np.nan if match_se is None else match_se[i, j])
                for i, pi in enumerate(players)
                for j, pj in enumerate(players)
                if member_of[pi] == ma and member_of[pj] == mb and (ma != mb or i == j)
            ]
            cells = [c for c in cells if not np.isnan(c[0])]
            if len(cells) == 1:
                mean[a, b], se[a, b] = cells[0]
            elif cells:
                v = np.array([c[0] for c in cells])
                mean[a, b], se[a, b] = float(v.mean()), float(v.std(ddof=1) / len(v) ** 0.5)
    return methods, mean, se


def cross_seed_values(
    players: list[str], member_of: dict[str, str], values: np.ndarray, method: str
):
    ids = [i for i, p in enumerate(players) if member_of[p] == method]
    return [values[i, j] for i in ids for j in ids if i != j]


# ----------------------------------------------------------------------------------------- the league
def coin_round_robin(
    run_dirs: dict[tuple[str, str], list[Path]], episodes: int, seed: int = 0
) -> dict:
    """Every coin method's seeds and the bots, both seats; matrices over players and methods."""
    env = CoinGame(grid_size=3, episode_length=50, seed=seed + 40_000)
    generator = torch.Generator().manual_seed(seed + 5)
    players, member_of = {}, {}
    for (method, game), dirs in run_dirs.items():
        if game != "coin":
            continue
        for run_dir in dirs:
            name = f"{method}_{seed_of(run_dir)}"
            make = load(method, "coin", run_dir)
            players[name] = lambda m=make: m(generator)
            member_of[name] = method
    for bot, policy in COIN_BOTS.items():
        players[bot] = lambda b=policy: BotPlayer(b, generator)
        member_of[bot] = bot
    league = coin_league(env, players, episodes, both_seats=True)
    names = list(players)
    out = {"players": names, "episodes_per_match": episodes}
    out.update({k: v.tolist() for k, v in league.items()})
    for key in ("reward", "own_coin_fraction"):
        methods, mean, se = method_matrix(names, member_of, league[key], league[f"{key}_se"])
        out["methods"], out[f"method_{key}"], out[f"method_{key}_se"] = (
            methods,
            mean.tolist(),
            se.tolist(),
        )
        out[f"cross_seed_{key}"] = {
            m: cross_seed_values(names, member_of, league[key], m) for m in methods
        }
    return out


def ipd_round_robin(run_dirs: dict[tuple[str, str], list[Path]], horizon: int = 50) -> dict:
    """Exact IPD league over every ipd method's seeds and AC, AD, TFT, random."""
    policies, member_of = {}, {}
    for (method, game), dirs in run_dirs.items():
        if game != "ipd":
            continue
        for run_dir in dirs:
            name = f"{method}_{seed_of(run_dir)}"
            policies[name] = load(method, "ipd", run_dir).detach().double()
            member_of[name] = method
    for bot, p in IPD_BOTS.items():
        policies[bot], member_of[bot] = p.double(), bot
    reward = ipd_league(policies, horizon)
    names = list(policies)
    methods, mean, se = method_matrix(names, member_of, reward)
    return {
        "players": names,
        "reward": reward.tolist(),
        "methods": methods,
        "method_reward": mean.tolist(),
        "method_reward_se": se.tolist(),
    }


def results_keys(game: str, league: dict) -> dict[str, float]:
    """Flat numbers: <game>/<m>_self_reward, <m>_cross_seed_reward, <a>_vs_<b>_reward (a's reward),
    ad_vs_<m>_reward (always-defect's reward against m), own-coin fractions likewise."""
    methods = league["methods"]
    keys = ["reward", "own_coin_fraction"] if game == "coin" else ["reward"]
    results: dict[str, float] = {}
    for key in keys:
        mean, se = np.array(league[f"method_{key}"]), np.array(league[f"method_{key}_se"])
        suffix = "reward" if key == "reward" else "own_coin"
        for a, ma in enumerate(methods):
            for b, mb in enumerate(methods):
                if np.isnan(mean[a, b]):
                    continue
                name = f"{ma.lower()}_self" if a == b else f"{ma.lower()}_vs_{mb.lower()}"
                results[f"{game}/{name}_{suffix}"] = float(mean[a, b])
                if not np.isnan(se[a, b]):
                    results[f"{game}/{name}_{suffix}_se"] = float(se[a, b])
        for m, values in league.get(f"cross_seed_{key}", {}).items():
            values = [v for v in values if not np.isnan(v)]
            if values:
                results[f"{game}/{m.lower()}_cross_seed_{suffix}"] = float(np.mean(values))
    return results


def plot_league(game: str, league: dict, out: Path) -> list[Path]:
    """Heat-maps of the method matrices and the welfare-vs-exploitability scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.plots import heatmap

    methods, paths = league["methods"], []
    for key in ("reward", "own_coin_fraction"):
        if f"method_{key}" not in league:
            continue
        path = out / f"{game}_{key}.png"
        heatmap(
            path,
            np.array(league[f"method_{key}"]),
            methods,
            methods,
            title=f"{game}: row method's {key.replace('_', ' ')} against the column (mean over seeds)",
        )
        paths.append(path)
    reward = np.array(league["method_reward"])
    ad = methods.index("AD")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, m in enumerate(methods):
        ax.scatter(reward[ad, i], reward[i, i])
        ax.annotate(m, (reward[ad, i], reward[i, i]), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("always-defect's reward per step against the agent (exploitability)")
    ax.set_ylabel("agent's self-play reward per step (welfare)")
    ax.set_title(f"{game}: welfare vs exploitability")
    fig.tight_layout()
    path = out / f"{game}_welfare_vs_exploitability.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [*paths, path]


def run_league(
    roots: list[Path | str],
    out_dir: Path | str = "runs",
    scale: str = "quick",
    episodes: int = 256,
    seed: int = 0,
    packages: list[str] | None = None,
    train_missing: bool = False,
) -> dict[str, float]:
    """Discover, play, plot; writes <out_dir>/league/<scale>/results.json and league.json.
    train_missing: first train (``common.reproduce <paper> <scale>``) each paper that has no runs."""
    from common.results import write_results

    load_registrations(packages)
    run_dirs = discover(roots, scale)
    registered = sorted({f"{m}/{g}" for m, g in REGISTRY})
    missing = [k for k in registered if tuple(k.split("/")) not in run_dirs]
    if missing and train_missing:
        # Each paper whose runs are missing trains once, at this scale, into runs/ (its default).
        from common.reproduce import run_paper

        for paper in sorted({REGISTRY[tuple(k.split("/"))].paper for k in missing}):
            print(f"league: training {paper} at {scale} scale (no runs of it yet)", file=sys.stderr)
            if run_paper(paper, [scale]) != 0:
                raise UsageError(f"training {paper} for the league failed")
        roots = [*roots, "runs"] if "runs" not in [str(r) for r in roots] else roots
        run_dirs = discover(roots, scale)
        missing = [k for k in registered if tuple(k.split("/")) not in run_dirs]
    if missing:
        print(
            "league: no runs for " + ", ".join(missing) + " (train them with `make <paper>`)",
            file=sys.stderr,
        )
    out = Path(out_dir) / "league" / scale
    out.mkdir(parents=True, exist_ok=True)
    results, detail = {}, {"missing": missing, "run_dirs": {}}
    for (m, g), dirs in run_dirs.items():
        detail["run_dirs"][f"{m}/{g}"] = [str(d) for d in dirs]
    coin = coin_round_robin(run_dirs, episodes, seed)
    ipd = ipd_round_robin(run_dirs)
    for game, league in (("coin", coin), ("ipd", ipd)):
        detail[game] = league
        results.update(results_keys(game, league))
        plot_league(game, league, out)
    (out / "league.json").write_text(json.dumps(detail, indent=1) + "\n")
    write_results("league", scale, results, out_dir)
    return results


@entry_point("python -m common.league")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.league", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--runs-root",
        nargs="+",
        default=["runs"],
        help="directories holding <paper>/<scale>/ run directories, searched in order (default: runs)",
    )
    parser.add_argument("--scale", default="quick", help="which runs: runs/<paper>/<scale>/")
    parser.add_argument("--out", default="runs", help="writes <out>/league/<scale>/results.json")
    parser.add_argument("--episodes", type=int, default=256, help="Coin Game games per match")
    parser.add_argument("--seed", type=int, default=0, help="seed of the league's games")
    parser.add_argument(
        "--train-missing",
        action="store_true",
        help="first train (at --scale) every paper whose registered methods have no runs",
    )
    args = parser.parse_args(argv)
    if args.episodes < 2:
        raise UsageError(f"--episodes must be >= 2, got {args.episodes}")
    # The default root may not exist yet (nothing trained): then every method is reported missing.
    roots = [r for r in args.runs_root if r != "runs" or Path(r).is_dir()]
    # Run as __main__, this module is a second copy: the papers register into common.league's registry.
    from common import league
    from common.results import print_results

    results = league.run_league(
        roots, args.out, args.scale, args.episodes, args.seed, train_missing=args.train_missing
    )
    print_results(results, skip=("_se",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
