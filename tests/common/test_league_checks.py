"""Issue 22's checks on the league over the quick runs (slow: reads runs/league/quick/results.json, written by
`python -m common.league`; skipped when there is none). A shaping method without runs is skipped, not passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parents[2] / "runs" / "league" / "quick" / "results.json"
SHAPING = ("loqa", "aa", "brs_sp")
CLEARLY_LESS = 0.1  # reward per step; AD earns ~0.63 against always-cooperate


@pytest.fixture(scope="module")
def results():
    if not RESULTS.is_file():
        pytest.skip(f"no league results at {RESULTS} (run python -m common.league)")
    return json.loads(RESULTS.read_text())


@pytest.mark.parametrize("method", SHAPING)
def test_shaping_self_play_welfare_is_above_the_naive_control(results, method):
    if f"coin/{method}_self_reward" not in results or "coin/naive_self_reward" not in results:
        pytest.skip(f"league has no coin/{method} or coin/naive runs")
    assert results[f"coin/{method}_self_reward"] > results["coin/naive_self_reward"]


@pytest.mark.parametrize("method", SHAPING)
def test_always_defect_earns_clearly_less_against_shaping_than_against_always_cooperate(
    results, method
):
    if f"coin/ad_vs_{method}_reward" not in results:
        pytest.skip(f"league has no coin/{method} runs")
    assert results[f"coin/ad_vs_{method}_reward"] < results["coin/ad_vs_ac_reward"] - CLEARLY_LESS
