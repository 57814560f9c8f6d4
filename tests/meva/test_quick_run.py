"""Issue 16's checks on the quick run: read runs/meva/quick/results.json (run `make meva` after changing
the code), or run the quick reproduction first when there is none (minutes). `make test-slow PAPER=meva`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meva import reproduce

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "runs" / "meva" / "quick" / "results.json"


@pytest.fixture(scope="module")
def results() -> dict:
    if not RESULTS.is_file():
        import os

        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            reproduce.main("quick", [])
        finally:
            os.chdir(cwd)
    return json.loads(RESULTS.read_text())


def test_every_issue_key_is_reported(results):
    for game in ("ipd", "imp", "chicken"):
        for key in reproduce.ISSUE_KEYS:
            assert f"{game}/{key}" in results, f"{game}/{key}"
    assert "wall_clock_s" in results


def test_meva_self_play_cooperates_in_the_ipd(results):
    assert results["ipd/meva_vs_meva_reward"] >= -1.15


def test_meta_discount_zero_control_defects(results):
    assert results["ipd/meva_gamma0_vs_meva_gamma0_reward"] <= -1.8


def test_naive_learners_defect(results):
    assert results["ipd/naive_vs_naive_reward"] <= -1.8


def test_exact_lola_cooperates(results):
    assert results["ipd/lola_vs_lola_reward"] >= -1.3


def test_meva_is_not_exploited_by_a_naive_learner(results):
    assert (
        results["ipd/meva_vs_naive_meva_reward"] >= results["ipd/meva_vs_naive_naive_reward"] - 0.02
    )


def test_the_value_is_learned(results):
    """Spec check 5: the held-out TD error falls at least 5x from initialisation."""
    assert results["ipd/td_error_ratio"] >= 5.0
