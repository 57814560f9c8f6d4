"""Entry points of meva/: config checks, seconds-long smoke runs of train / eval / reproduce, exact
resume, and one-line errors (exit 2) on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from common.config import ConfigError, load_config
from common.runner import CheckpointError, load_checkpoint
from meva import reproduce
from meva.config import CONFIG_DIR, MevaConfig
from meva.eval import evaluate
from meva.train import train

TINY = [
    "train.updates=12",
    "train.batch=8",
    "train.rollout_length=5",
    "train.log_every=4",
    "train.heldout_pairs=4",
    "eval.pairs=8",
    "eval.iterates=3",
    "progress=false",
]


def tiny_cfg(tmp_path, *extra, preset="quick"):
    return load_config(MevaConfig, preset, [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)


def cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("game.name=chess", "game.name"),
        ("train.meta_gamma=1.0", "train.meta_gamma"),
        ("train.updates=0", "train.updates"),
        ("eval.opponents=[naive,cola]", "eval.opponents"),
        ("reproduce.games=[toy]", "reproduce.games"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(MevaConfig, "quick", [override], CONFIG_DIR)
    with pytest.raises(ConfigError, match="train.updatez"):
        load_config(MevaConfig, "quick", ["train.updatez=3"], CONFIG_DIR)


@pytest.mark.parametrize("preset", ["quick", "full"])
@pytest.mark.parametrize("game", ["ipd", "chicken"])
def test_train_then_evaluate_from_the_run_directory(tmp_path, preset, game):
    cfg = tiny_cfg(tmp_path, f"name=smoke_{game}", f"game.name={game}", preset=preset)
    run_dir = train(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 12 and "td/loss" in rows[-1]
    results = evaluate(run_dir)
    assert {"meva_vs_meva_reward", "meva_vs_naive_naive_reward", "td_error_ratio"} <= set(results)
    assert (run_dir / "eval.json").is_file() and (run_dir / "plots" / "td_error.png").is_file()
    if game == "chicken":
        assert (run_dir / "plots" / "landscape.png").is_file()


def test_resume_continues_exactly(tmp_path):
    straight = train(tiny_cfg(tmp_path, "name=straight"))
    train(tiny_cfg(tmp_path, "name=resumed", "train.updates=6", "checkpoint_every=3"))
    resumed = train(tiny_cfg(tmp_path, "name=resumed", "resume=true", "checkpoint_every=3"))
    a = load_checkpoint(straight)["objects"]
    b = load_checkpoint(resumed)["objects"]
    for key in a["value"]:
        torch.testing.assert_close(a["value"][key], b["value"][key], rtol=0, atol=0)
    torch.testing.assert_close(a["rollouts"]["x1"], b["rollouts"]["x1"], rtol=0, atol=0)


def test_reproduce_main_writes_every_issue_key(tmp_path):
    results = reproduce.main(
        "quick",
        [
            *TINY,
            f"out_dir={tmp_path}",
            "reproduce.games=[ipd]",
            "reproduce.seeds=2",
            "reproduce.toy_meta_gammas=[0.9]",
            "eval.opponents=[naive,lola]",
        ],
    )
    for key in reproduce.ISSUE_KEYS:
        assert f"ipd/{key}" in results and f"ipd/{key}_std" in results
    assert "toy/meva_gamma0.9_vs_self_reward" in results and "wall_clock_s" in results
    out = tmp_path / "meva" / "quick"
    assert json.loads((out / "results.json").read_text()) == results
    for name in ("ipd_table.png", "toy_landscapes.png", "tables.json", "ipd_td_error.png"):
        assert (out / name).is_file(), name
    assert set(reproduce.HEADLINE) <= set(reproduce.PAPER_NUMBERS)
    assert all(f"ipd/{key}" in reproduce.PAPER_NUMBERS for key in reproduce.ISSUE_KEYS)


def test_clis_help_and_bad_input_exit_2(tmp_path):
    for module in ("meva.train", "meva.eval", "meva.reproduce"):
        proc = cli(module, "--help")
        assert proc.returncode == 0 and "usage" in proc.stdout, module
    proc = cli("meva.train", "train.updatez=1")
    assert proc.returncode == 2 and "train.updatez" in proc.stderr
    proc = cli("meva.train", f"out_dir={tmp_path}", "train.meta_gamma=2")
    assert proc.returncode == 2 and "train.meta_gamma" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("meva.eval", "--run", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "no run directory" in proc.stderr
    proc = cli("meva.reproduce", "quick", "reproduce.seedz=1")
    assert proc.returncode == 2 and "reproduce.seedz" in proc.stderr


def test_missing_or_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    run_dir = train(tiny_cfg(tmp_path, "name=broken"))
    for ckpt in (run_dir / "checkpoints").iterdir():
        ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        evaluate(run_dir)
    proc = cli("meva.eval", "--run", str(run_dir))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) <= 2
    (run_dir / "config.yaml").unlink()
    proc = cli("meva.eval", "--run", str(run_dir))
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


def test_league_loads_the_ipd_policy_meva_self_play_settles_on(tmp_path):
    from common import league

    run_dir = train(tiny_cfg(tmp_path, "game.name=ipd", "name=quick/ipd_meva_seed3"))
    assert league.discover([tmp_path], "quick", "ipd")[("meva", "ipd")] == [run_dir]
    policy = league.load("meva", "ipd", run_dir)
    assert policy.shape == (5,) and bool(((policy >= 0) & (policy <= 1)).all())
    with pytest.raises(CheckpointError, match="not an IPD run"):
        league.load("meva", "ipd", train(tiny_cfg(tmp_path, "game.name=chicken", "name=toyrun")))
