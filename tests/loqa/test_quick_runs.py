"""The quick-run checks of issues 5 and 21 (slow: ~15 minutes on 2 idle cores). The fixtures train the quick
configs from scratch through loqa.reproduce (LOQA and the no-shaping control, every seed), once per game;
each test checks one threshold.

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


# ---- issue 21: a Coin Game result on every seed (3 seeds of LOQA, one control, cross-seed pairs) ----
def test_coin_every_seed_collects_its_own_coins(coin):
    r = coin
    assert r["coin/seed_mean_own_coin_fraction"] >= 0.70
    assert r["coin/worst_seed_own_coin_fraction"] >= 0.65
    control = r["coin_no_shaping/seed_mean_own_coin_fraction"]
    assert r["coin/worst_seed_own_coin_fraction"] >= control + 0.08


def test_coin_cross_seed_pairs_collect_their_own_coins(coin):
    r = coin
    assert r["coin/cross_seed_own_coin_fraction"] >= 0.60
    control = r["coin_no_shaping/self_play_own_coin_fraction"]
    assert r["coin/cross_seed_own_coin_fraction"] >= control + 0.08


def test_make_loqa_trains_within_fifteen_minutes(ipd, coin):
    """`make loqa` = both games, one after the other, on 2 cores."""
    assert ipd["ipd/wall_clock_s"] + coin["coin/wall_clock_s"] <= 900
