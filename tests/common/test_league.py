"""common.league: scripted pairs against the environments' reference values, the registry and run-directory
discovery on tiny real LOQA runs trained here, the CLI, and one-line errors for missing runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from common import league
from common.cli import UsageError
from common.config import load_config
from common.envs.coin_game import CoinGame
from common.runner import RunDirError
from loqa.config import CONFIG_DIR, LoqaConfig
from loqa.train import train

TINY = [
    "train.iterations=2",
    "train.batch_size=8",
    "train.eval_every=2",
    "train.log_every=1",
    "train.eval_episodes=4",
    "progress=false",
]


# ----------------------------------------------------------------------------------------- scripted
def test_ipd_scripted_pairs_are_the_reference_values():
    """environments.md: AC vs AC -1; AD vs AD -2; AD vs AC 0 / -3; TFT vs AD (-3 + 49 (-2)) / 50."""
    bots = league.IPD_BOTS
    assert league.ipd_pair(bots["AC"], bots["AC"]) == pytest.approx((-1.0, -1.0))
    assert league.ipd_pair(bots["AD"], bots["AD"]) == pytest.approx((-2.0, -2.0))
    assert league.ipd_pair(bots["AD"], bots["AC"]) == pytest.approx((0.0, -3.0))
    assert league.ipd_pair(bots["TFT"], bots["AD"]) == pytest.approx((-2.02, -1.96))
    assert league.ipd_pair(bots["TFT"], bots["AC"]) == pytest.approx((-1.0, -1.0))


def test_coin_always_defect_exploits_always_cooperate_as_in_the_reference():
    """environments.md (authors' league, 512 x 50 steps): AD +0.631 / AC -0.269, own-coin 0.577 / 1.0;
    AC vs AC 0.347 each. Tolerance: ~4 standard errors of our 512 games."""
    env = CoinGame(grid_size=3, episode_length=50, seed=0)
    gen = torch.Generator().manual_seed(0)
    bots = league.COIN_BOTS
    ad_ac = league.play_coin_match(
        env, league.BotPlayer(bots["AD"], gen), league.BotPlayer(bots["AC"], gen), 512
    )
    assert ad_ac["reward_0"] == pytest.approx(0.631, abs=0.04)
    assert ad_ac["reward_1"] == pytest.approx(-0.269, abs=0.04)
    assert ad_ac["own_coin_fraction_0"] == pytest.approx(0.577, abs=0.03)
    assert ad_ac["own_coin_fraction_1"] == 1.0
    assert 0 < ad_ac["reward_se_0"] < 0.02
    ac_ac = league.play_coin_match(
        env, league.BotPlayer(bots["AC"], gen), league.BotPlayer(bots["AC"], gen), 512
    )
    assert ac_ac["reward_0"] == pytest.approx(0.347, abs=0.03)
    assert ac_ac["reward_1"] == pytest.approx(0.347, abs=0.03)


def test_both_seats_league_is_seat_consistent_for_bots():
    env = CoinGame(grid_size=3, episode_length=50, seed=1)
    gen = torch.Generator().manual_seed(1)
    players = {k: (lambda b=b: league.BotPlayer(b, gen)) for k, b in league.COIN_BOTS.items()}
    out = league.coin_league(env, players, 128, both_seats=True)
    reward = out["reward"]
    ac, ad = list(players).index("AC"), list(players).index("AD")
    assert reward[ad, ac] > 0.5 and reward[ac, ad] < -0.2
    assert np.all(out["reward_se"] > 0) and np.all(out["reward_se"] < 0.05)


def test_method_matrix_averages_seeds_and_keeps_self_play_on_the_diagonal():
    players = ["x_0", "x_1", "AD"]
    member_of = {"x_0": "x", "x_1": "x", "AD": "AD"}
    values = np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 4.0], [0.0, 6.0, 9.0]])
    methods, mean, se = league.method_matrix(players, member_of, values)
    assert methods == ["x", "AD"]
    assert mean[0, 0] == 2.0  # self-play only: (1 + 3) / 2, not the cross-seed 5 and 7
    assert mean[0, 1] == 3.0 and mean[1, 0] == 3.0 and mean[1, 1] == 9.0
    assert se[0, 0] == pytest.approx(1.0)
    assert league.cross_seed_values(players, member_of, values, "x") == [5.0, 7.0]


# ----------------------------------------------------------------------------------------- registry
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny real LOQA runs laid out as `make loqa` lays them out: runs/loqa/quick/<game>/<variant>_seed<N>."""
    root = tmp_path_factory.mktemp("runs")
    for game, variant, weight, seed in [
        ("ipd", "loqa", 1.0, 0),
        ("ipd", "loqa", 1.0, 1),
        ("ipd", "no_shaping", 0.0, 0),
        ("coin", "loqa", 1.0, 0),
    ]:
        extra = ["train.opponents_per_batch=4"] if game == "coin" else []
        cfg = load_config(
            LoqaConfig,
            f"{game}_quick",
            [
                *TINY,
                *extra,
                f"out_dir={root}",
                f"name=quick/{game}/{variant}_seed{seed}",
                f"seed={seed}",
                f"loss.shaping_weight={weight}",
            ],
            CONFIG_DIR,
        )
        train(cfg)
    (root / "loqa" / "quick" / "ipd" / "loqa_seed7").mkdir()  # no checkpoint: not a member
    return root


def test_papers_register_themselves_and_discovery_finds_their_runs(runs):
    assert "loqa" in league.paper_packages() and "brs" in league.paper_packages()
    registry = league.load_registrations(["loqa"])
    assert {("loqa", "coin"), ("loqa", "ipd"), ("naive", "coin"), ("naive", "ipd")} <= set(registry)
    found = league.discover([runs], "quick")
    assert [d.name for d in found[("loqa", "ipd")]] == ["loqa_seed0", "loqa_seed1"]
    assert [d.name for d in found[("naive", "ipd")]] == ["no_shaping_seed0"]
    assert [d.name for d in found[("loqa", "coin")]] == ["loqa_seed0"]
    assert ("naive", "coin") not in found
    p = league.load("loqa", "ipd", found[("loqa", "ipd")][0])
    assert p.shape == (5,) and torch.all((p >= 0) & (p <= 1))
    player = league.load("loqa", "coin", found[("loqa", "coin")][0])(torch.Generator())
    player.reset(3)
    actions = player.act(CoinGame(grid_size=3, seed=0).reset(3)[:, 0])
    assert actions.shape == (3,) and actions.max() < 4


def test_run_league_writes_results_plots_and_names_missing_methods(runs, tmp_path, capsys):
    results = league.run_league([runs], tmp_path, "quick", episodes=8, packages=["loqa"])
    out = tmp_path / "league" / "quick"
    assert json.loads((out / "results.json").read_text()) == pytest.approx(results, nan_ok=True)
    for png in (
        "coin_reward.png",
        "coin_own_coin_fraction.png",
        "coin_welfare_vs_exploitability.png",
    ):
        assert (out / png).is_file()
    assert "naive/coin" in capsys.readouterr().err
    detail = json.loads((out / "league.json").read_text())
    assert "naive/coin" in detail["missing"]
    # The IPD numbers are exact: LOQA's self-play is the mean of its seeds' exact self-play.
    found = league.discover([runs], "quick")
    exact = [
        league.ipd_pair(*(2 * [league.load("loqa", "ipd", d)]))[0] for d in found[("loqa", "ipd")]
    ]
    assert results["ipd/loqa_self_reward"] == pytest.approx(np.mean(exact))
    assert results["ipd/ad_vs_ac_reward"] == 0.0
    for key in ("coin/loqa_self_reward", "coin/ad_vs_loqa_reward", "coin/ad_vs_ac_reward"):
        assert key in results


# ----------------------------------------------------------------------------------------- errors
def test_missing_run_directory_and_unknown_method_are_one_line_errors(tmp_path):
    league.load_registrations(["loqa"])
    with pytest.raises(RunDirError, match="no run directory"):
        league.load("loqa", "ipd", tmp_path / "nope")
    with pytest.raises(UsageError, match="no league method"):
        league.load("chess_master", "ipd", tmp_path)


def test_cli_help_and_missing_runs_root():
    ok = subprocess.run(
        [sys.executable, "-m", "common.league", "--help"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "--runs-root" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "common.league", "--runs-root", "/no/such/runs"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "python -m common.league: error: no runs directory /no/such/runs"
