"""The checks of issue 14 on the quick run (slow: tens of minutes on a busy CPU).

They read runs/advantage_alignment/quick/results.json when `make advantage_alignment` has written it (run
it first, after any change that affects numbers), and otherwise run the quick reproduction here.
IPD: exact evaluation, reward per step over 50 steps. Coin Game and Negotiation: sampled cross-play.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advantage_alignment import reproduce

pytestmark = pytest.mark.slow
RESULTS = Path("runs") / "advantage_alignment" / "quick" / "results.json"


@pytest.fixture(scope="module")
def results():
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return reproduce.main("quick", [])


def test_ipd_aa_self_play_cooperates_with_the_reciprocity_signature(results):
    assert results["ipd/self_play_reward"] >= -1.35, results["ipd/self_play_reward"]
    assert results["ipd/p_coop_CC"] >= 0.9, results["ipd/p_coop_CC"]
    assert results["ipd/p_coop_DD"] <= 0.2, results["ipd/p_coop_DD"]


def test_ipd_beta0_control_defects(results):
    assert results["ipd_beta0/self_play_reward"] <= -1.9, results["ipd_beta0/self_play_reward"]


def test_negotiation_aa_beats_the_defect_level_and_the_control(results):
    """At quick scale negotiation/ is proximal AA (negotiation_medium) and the control is PPO (README)."""
    aa, control = (
        results["negotiation/self_play_reward"],
        results["negotiation_beta0/self_play_reward"],
    )
    assert aa >= 0.36, aa
    assert aa - control >= 0.05, (aa, control)


def test_coin_aa_self_play_collects_its_own_coins(results):
    assert results["coin/self_play_own_coin_fraction"] >= 0.6, results[
        "coin/self_play_own_coin_fraction"
    ]
    assert results["coin/self_play_reward"] >= 0.10, results["coin/self_play_reward"]


def test_coin_aa_beats_the_beta0_control(results):
    gap = (
        results["coin/self_play_own_coin_fraction"]
        - results["coin_beta0/self_play_own_coin_fraction"]
    )
    assert gap >= 0.08, gap


def test_the_run_has_every_issue_key(results):
    for key in reproduce.PAPER_NUMBERS:
        assert key in results, key
