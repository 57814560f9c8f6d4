"""The pass marks of issue 15 on the quick run (slow: minutes).

They read runs/brs/quick/results.json when it is newer than every .py / .yaml file of brs/ (a fresh
`make brs`), and
otherwise run the quick reproduction themselves into a temporary directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brs import reproduce

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = ROOT / "runs" / "brs" / "quick" / "results.json"
    code = max(p.stat().st_mtime for p in (ROOT / "brs").rglob("*") if p.suffix in (".py", ".yaml"))
    if path.is_file() and path.stat().st_mtime > code:
        return json.loads(path.read_text())
    out = tmp_path_factory.mktemp("brs_quick")
    return reproduce.main("quick", [f"out_dir={out}", "progress=false"])


def test_brs_sp_is_not_exploited_by_a_best_response_learner(results):
    assert results["ipd/brs_sp_reward_vs_best_response"] >= -1.3


def test_always_cooperate_is_exploited_by_the_same_probe(results):
    assert results["ipd/always_cooperate_reward_vs_best_response_best_seed"] <= -2.5


def test_the_naive_learner_gets_no_cooperation(results):
    assert results["ipd/naive_reward_vs_best_response_best_seed"] <= -1.85


def test_brs_sp_without_its_detective_is_exploited(results):
    assert results["ipd/brs_sp_no_detective_reward_vs_best_response_best_seed"] <= -2.5


def test_the_detective_defects_against_always_cooperate(results):
    assert results["ipd/detective_reward_vs_always_cooperate"] >= -0.3


def test_the_detective_cooperates_with_tit_for_tat(results):
    assert results["ipd/detective_reward_vs_tit_for_tat"] >= -1.2


def test_brs_sp_cooperates_with_itself(results):
    assert results["ipd/brs_sp_self_play_reward"] >= -1.25


def test_mcts_exploits_always_cooperate(results):
    assert (
        results["coin/mcts_reward_vs_always_cooperate"]
        > results["coin/always_cooperate_reward_vs_mcts"] + 0.2
    )


def test_brs_sp_does_better_against_mcts_than_always_cooperate(results):
    assert results["coin/agent_reward_vs_mcts"] > results["coin/always_cooperate_reward_vs_mcts"]
