"""The quick-run checks of issues 5 and 21 (slow: minutes; the 3-seed ones ~30 minutes on 2 idle cores). Each trains the quick configs from scratch through
loqa.reproduce (LOQA and the no-shaping control, every seed) and checks one threshold.

IPD: evaluated exactly (Markov chain over joint states) without exploration noise, reward per step over
50 steps. Coin Game: a league of 256 sampled games per pair.
"""

from __future__ import annotations

import pytest

from loqa import reproduce

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ipd(tmp_path_factory):
    out = tmp_path_factory.mktemp("loqa_ipd")
    return reproduce.main(
        "quick", ["reproduce.games=[ipd]", f"ipd.out_dir={out}", "ipd.progress=false"]
    )


@pytest.fixture(scope="module")
def coin(tmp_path_factory):
    out = tmp_path_factory.mktemp("loqa_coin")
    return reproduce.main(
        "quick", ["reproduce.games=[coin]", f"coin.out_dir={out}", "coin.progress=false"]
    )


def test_ipd_loqa_self_play_cooperates(ipd):
    assert ipd["ipd/self_play_reward"] >= -1.10, ipd["ipd/self_play_reward"]
    assert ipd["ipd/self_play_reward_min_seed"] >= -1.25, ipd["ipd/self_play_reward_min_seed"]


def test_ipd_loqa_is_not_exploited_and_retaliates_against_always_defect(ipd):
    assert ipd["ipd/vs_always_defect_reward"] >= -2.10, "LOQA is exploited by always-defect"
    assert ipd["ipd/always_defect_reward"] <= -1.6, "always-defect profits: LOQA does not retaliate"


def test_ipd_loqa_has_the_reciprocity_signature(ipd):
    assert ipd["ipd/p_coop_start"] >= 0.8
    assert ipd["ipd/p_coop_CC"] >= 0.9
    assert ipd["ipd/p_coop_CD"] <= 0.3
    assert ipd["ipd/p_coop_DD"] <= 0.3


def test_ipd_control_without_shaping_defects(ipd):
    assert ipd["ipd_no_shaping/self_play_reward"] <= -1.9, (
        "naive actor-critic cooperates: the environment or the loss leaks"
    )


def test_ipd_quick_run_is_under_three_minutes(ipd):
    assert ipd["ipd/wall_clock_s"] < 180


@pytest.mark.xfail(
    strict=True,
    reason="not met: 0.652 with pinned CPU kernels (2026-12-02), flat over the last 500 iterations; "
    "one seed of the quick config is not enough (README)",
)
def test_coin_loqa_collects_its_own_coins_in_self_play(coin):
    assert coin["coin/self_play_own_coin_fraction"] >= 0.70


def test_coin_loqa_beats_the_no_shaping_control(coin):
    gap = (
        coin["coin/self_play_own_coin_fraction"]
        - coin["coin_no_shaping/self_play_own_coin_fraction"]
    )
    assert gap >= 0.08, gap


def test_coin_quick_run_is_under_ten_minutes(coin):
    assert coin["coin/wall_clock_s"] < 600


# ---- issue 21: a Coin Game result on every seed (3 seeds of LOQA and of the control, cross-seed pairs) ----
@pytest.fixture(scope="module")
def coin_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("loqa_coin_seeds")
    return reproduce.main(
        "quick",
        ["reproduce.games=[coin]", f"coin.out_dir={out}", "coin.progress=false", "coin.n_seeds=3"],
    )


# Measured 2026-12-02 (seeds 0-2 of coin_quick, league of 256 games per pair, control seed 0):
# self-play own-coin 0.652 / 0.636 / 0.832, seed mean 0.707, worst seed 0.636, cross-seed 0.624, control 0.501.
MEASURED_SEEDS = "worst seed 0.636 < 0.65 (seeds 0.652 / 0.636 / 0.832, mean 0.707, control 0.501)"


@pytest.mark.xfail(strict=True, reason=f"not met by coin_quick: {MEASURED_SEEDS}")
def test_coin_every_seed_collects_its_own_coins(coin_seeds):
    r = coin_seeds
    assert r["coin/seed_mean_own_coin_fraction"] >= 0.70
    assert r["coin/worst_seed_own_coin_fraction"] >= 0.65
    control = r["coin_no_shaping/seed_mean_own_coin_fraction"]
    assert r["coin/worst_seed_own_coin_fraction"] >= control + 0.08


def test_coin_cross_seed_pairs_collect_their_own_coins(coin_seeds):
    r = coin_seeds
    assert r["coin/cross_seed_own_coin_fraction"] >= 0.60
    control = r["coin_no_shaping/self_play_own_coin_fraction"]
    assert r["coin/cross_seed_own_coin_fraction"] >= control + 0.08


@pytest.mark.xfail(
    strict=True,
    reason="not met: 6 runs x 2500 iterations x ~0.2 CPU-s (bench/loqa.py) = ~1500 s on 2 idle cores",
)
def test_coin_three_seeds_train_within_fifteen_minutes(coin_seeds):
    assert coin_seeds["wall_clock_s"] <= 900
