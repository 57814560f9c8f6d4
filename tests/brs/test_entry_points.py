"""Smoke runs of brs/ entry points with tiny configs, config validation, resume, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from brs import reproduce
from brs.config import CONFIG_DIR, BrsConfig, validate
from brs.eval import evaluate
from brs.train import train
from common.config import ConfigError, load_config
from common.results import reproduce_cli
from common.runner import load_checkpoint

TINY_IPD = [
    "agent.iterations=6",
    "detective.warmup_steps=5",
    "probe.iterations=5",
    "progress=false",
]
TINY_COIN = [
    "agent.iterations=2",
    "agent.batch_size=4",
    "env.episode_length=4",
    "detective.warmup_steps=1",
    "mcts.simulations=2",
    "mcts.depth=2",
    "mcts.episodes=2",
    "progress=false",
]


def cfg(preset, tmp_path, *extra):
    return load_config(BrsConfig, preset, [f"out_dir={tmp_path}", *extra], CONFIG_DIR)


@pytest.mark.parametrize("preset", ["ipd_quick", "ipd_full", "coin_quick", "coin_full"])
def test_every_preset_loads_and_validates(preset):
    validate(load_config(BrsConfig, preset, [], CONFIG_DIR))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("agent.variant=lola", "agent.variant"),
        ("env.gamma=1.5", "env.gamma"),
        ("mcts.depth=0", "mcts.depth"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        validate(load_config(BrsConfig, "ipd_quick", [override], CONFIG_DIR))


def test_unknown_key_is_refused():
    with pytest.raises(ConfigError, match="agent.nope"):
        load_config(BrsConfig, "ipd_quick", ["agent.nope=1"], CONFIG_DIR)


@pytest.mark.parametrize("variant", ["brs_sp", "brs", "naive", "brs_sp_no_detective"])
def test_ipd_trains_and_evaluates_from_its_run_directory(variant, tmp_path):
    run_dir = train(
        cfg("ipd_quick", tmp_path, *TINY_IPD, f"agent.variant={variant}", f"name={variant}")
    )
    results = evaluate(run_dir)
    assert "reward_vs_best_response" in results and (run_dir / "eval.json").is_file()
    assert ("detective_reward_vs_tit_for_tat" in results) == (variant in ("brs", "brs_sp"))


def test_coin_trains_and_evaluates_against_mcts(tmp_path):
    run_dir = train(cfg("coin_quick", tmp_path, *TINY_COIN, "name=coin"))
    results = evaluate(run_dir, episodes=2)
    assert results["mcts_steps"] == 4 and "self_play_own_coin_fraction" in results


def test_resume_continues_exactly(tmp_path):
    full = train(cfg("ipd_quick", tmp_path, *TINY_IPD, "name=full"))
    half = cfg(
        "ipd_quick", tmp_path, *TINY_IPD, "name=half", "checkpoint_every=3", "agent.iterations=3"
    )
    train(half)
    resumed = train(cfg("ipd_quick", tmp_path, *TINY_IPD, "name=half", "resume=true"))
    a = load_checkpoint(full)["objects"]["agent"]["logits"]
    b = load_checkpoint(resumed)["objects"]["agent"]["logits"]
    assert torch.equal(a, b)


def test_reproduce_writes_every_issue_key(tmp_path):
    results = reproduce.main(
        "quick",
        [
            f"out_dir={tmp_path}",
            "progress=false",
            "ipd.reproduce.n_seeds=1",
            *[f"ipd.{o}" for o in TINY_IPD if o != "progress=false"],
            *[f"coin.{o}" for o in TINY_COIN if o != "progress=false"],
        ],
    )
    for key in (
        "ipd/brs_sp_reward_vs_best_response",
        "ipd/brs_reward_vs_best_response",
        "ipd/always_cooperate_reward_vs_best_response",
        "ipd/naive_reward_vs_best_response",
        "ipd/brs_sp_no_detective_reward_vs_best_response",
        "ipd/detective_reward_vs_always_cooperate",
        "ipd/detective_reward_vs_tit_for_tat",
        "ipd/brs_sp_self_play_reward",
        "coin/agent_reward_vs_mcts",
        "coin/mcts_reward_vs_agent",
        "coin/always_cooperate_reward_vs_mcts",
        "wall_clock_s",
    ):
        assert key in results, key
    written = json.loads((tmp_path / "brs" / "quick" / "results.json").read_text())
    assert written == results
    assert (tmp_path / "brs" / "quick" / "ipd_best_response.png").is_file()
    assert (tmp_path / "brs" / "quick" / "coin_vs_mcts.png").is_file()


def test_help_exits_0(capsys):
    from brs import eval as brs_eval
    from brs import train as brs_train

    for main in (brs_train.main, brs_eval.main):
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
        assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        reproduce_cli("brs", reproduce.main, reproduce.__doc__, argv=["--help"])
    assert exit_.value.code == 0


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_input_is_a_one_line_error_with_exit_status_2(tmp_path, capsys):
    from brs import eval as brs_eval
    from brs import train as brs_train

    with pytest.raises(SystemExit) as exit_:
        brs_train.main(["agent.nope=1"])
    assert exit_.value.code == 2 and "agent.nope" in one_line_error(capsys)
    with pytest.raises(SystemExit) as exit_:
        brs_train.main(["agent.variant=lola", f"out_dir={tmp_path}"])
    assert exit_.value.code == 2 and "agent.variant" in one_line_error(capsys)
    assert brs_eval.main(["--run", str(tmp_path / "missing")]) == 2
    assert "missing" in one_line_error(capsys)
    assert (
        reproduce_cli("brs", reproduce.main, reproduce.__doc__, argv=["quick", "only=chess"]) == 2
    )
    assert "only=chess" in one_line_error(capsys)
    # A fresh run refuses to replace an existing one of the same name (common.runner).
    train(cfg("ipd_quick", tmp_path, *TINY_IPD, "name=twice"))
    capsys.readouterr()
    assert brs_train.main([*TINY_IPD, f"out_dir={tmp_path}", "name=twice"]) == 2
    assert "already has" in one_line_error(capsys)


def test_train_cli_exit_status_is_2_on_a_bad_key():
    proc = subprocess.run(
        [sys.executable, "-m", "brs.train", "nope=1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "nope" in proc.stderr


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, capsys):
    from brs import eval as brs_eval

    run_dir = train(cfg("ipd_quick", tmp_path, *TINY_IPD, "name=corrupt"))
    for ckpt in (run_dir / "checkpoints").iterdir():
        ckpt.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert brs_eval.main(["--run", str(run_dir)]) == 2
    assert "checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]
