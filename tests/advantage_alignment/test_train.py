"""Entry points of advantage_alignment/: config validation, seconds-long smoke runs of train, eval and
reproduce on every game, exact resume, and one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from advantage_alignment import reproduce
from advantage_alignment.config import CONFIG_DIR, AAConfig
from advantage_alignment.eval import evaluate
from advantage_alignment.eval import main as eval_main
from advantage_alignment.train import main as train_main
from advantage_alignment.train import train, validate
from common.config import ConfigError, load_config
from common.results import reproduce_cli
from common.runner import CheckpointError, load_checkpoint

TINY = [
    "train.iterations=3",
    "train.batch_size=8",
    "train.opponents_per_batch=2",
    "train.eval_every=2",
    "train.log_every=1",
    "train.eval_episodes=4",
    "env.episode_length=5",
    "model.hidden=8",
    "model.critic_hidden=8",
    "train.buffer_capacity=4",
    "train.buffer_push_every=1",
]
PRESETS = ("ipd_quick", "coin_quick", "negotiation_quick")


def tiny_cfg(preset, tmp_path, *extra):
    cfg = load_config(AAConfig, preset, [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)
    validate(cfg)
    return cfg


def run_module(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "preset", [*PRESETS, "ipd_full", "coin_full", "negotiation_full", "negotiation_medium"]
)
def test_every_preset_loads_and_validates(preset):
    validate(load_config(AAConfig, preset, [], CONFIG_DIR))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("env.game=chess", "env.game"),
        ("loss.beta=-1", "loss.beta"),
        ("loss.aggregation=max", "loss.aggregation"),
        ("loss.memory_decay=1.5", "loss.memory_decay"),
        ("loss.clip=0", "loss.clip"),
        ("train.opponents_per_batch=7", "train.opponents_per_batch"),
        ("reproduce.only=mp", "reproduce.only"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(AAConfig, "coin_quick", [override], CONFIG_DIR)


def test_unknown_key_is_refused():
    with pytest.raises(ConfigError, match="loss.betta"):
        load_config(AAConfig, "ipd_quick", ["loss.betta=1"], CONFIG_DIR)


@pytest.mark.parametrize("preset", PRESETS)
def test_train_and_evaluate_every_game(preset, tmp_path):
    run_dir = train(tiny_cfg(preset, tmp_path))
    results = evaluate(run_dir)
    assert (run_dir / "eval.json").is_file() and (
        run_dir / "plots" / "learning_curve.png"
    ).is_file()
    assert -3.0 <= results["self_play_reward"] <= 1.0
    if preset != "ipd_quick":
        assert "always_defect_vs_agent_reward" in results
    if preset == "coin_quick":
        assert 0.0 <= results["self_play_own_coin_fraction"] <= 1.0


def test_coin_full_runs_two_iterations_at_its_own_sizes_on_cpu(tmp_path):
    """The paper-scale Coin Game preset (batch 512, one past self per episode) trains on a CPU as is."""
    overrides = ["train.iterations=2", "train.eval_episodes=8", "device=cpu", f"out_dir={tmp_path}"]
    cfg = load_config(AAConfig, "coin_full", overrides, CONFIG_DIR)
    validate(cfg)
    assert cfg.train.batch_size == 512 and cfg.train.opponents_per_batch == 512
    run_dir = train(cfg)
    assert load_checkpoint(run_dir)["step"] == 2


def test_paa_trains(tmp_path):
    run_dir = train(
        tiny_cfg("negotiation_quick", tmp_path, "loss.proximal=true", "loss.ppo_epochs=2")
    )
    assert load_checkpoint(run_dir)["step"] == 3


def test_resume_continues_exactly(tmp_path):
    straight = train(tiny_cfg("coin_quick", tmp_path, "name=straight", "train.iterations=4"))
    tiny_cfg_2 = tiny_cfg("coin_quick", tmp_path, "name=resumed", "train.iterations=2")
    train(tiny_cfg_2)
    resumed = train(
        tiny_cfg("coin_quick", tmp_path, "name=resumed", "train.iterations=4", "resume=true")
    )
    a = load_checkpoint(straight)["objects"]["agent"]
    b = load_checkpoint(resumed)["objects"]["agent"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_reproduce_main_writes_every_issue_key(tmp_path):
    results = reproduce.main("quick", [*TINY, "reproduce.n_seeds=1", f"out_dir={tmp_path}"])
    for key in reproduce.PAPER_NUMBERS:
        assert key in results, key
    out = tmp_path / "advantage_alignment" / "quick"
    assert (out / "results.json").is_file()
    # quick scale: the negotiation preset is already proximal, so negotiation_paa reuses its runs
    assert results["negotiation_paa/self_play_reward"] == results["negotiation/self_play_reward"]
    assert not (out / "negotiation_paa_seed0").exists()
    assert (out / "negotiation_aa_seed0").is_dir()
    for plot in (
        "ipd_p_coop",
        "coin_cross_play",
        "negotiation_league",
        "negotiation_learning_curves",
    ):
        assert (out / f"{plot}.png").is_file(), plot


def test_a_second_reproduction_replaces_the_first(tmp_path):
    """`make advantage_alignment` twice: the second run starts over instead of refusing the old runs."""
    overrides = [*TINY, "reproduce.n_seeds=1", "reproduce.only=ipd", f"out_dir={tmp_path}"]
    first = reproduce.main("quick", overrides)
    second = reproduce.main("quick", overrides)
    assert {k: v for k, v in first.items() if "wall_clock" not in k} == {
        k: v for k, v in second.items() if "wall_clock" not in k
    }


def test_same_runs_spots_a_setting_that_repeats_an_earlier_one():
    cfg = load_config(AAConfig, "negotiation_medium", [], CONFIG_DIR)
    negotiation = reproduce.setting_configs(cfg, "quick", "negotiation", {})
    paa = reproduce.setting_configs(cfg, "quick", "negotiation_paa", {"loss.proximal": True})
    one_seed = reproduce.setting_configs(cfg, "quick", "x", {"reproduce.n_seeds": 1})
    aa = reproduce.setting_configs(cfg, "quick", "negotiation_aa", {"loss.proximal": False})
    assert reproduce.same_runs(negotiation, paa) and reproduce.same_runs(negotiation, one_seed)
    assert not reproduce.same_runs(negotiation, aa) and not reproduce.same_runs(one_seed, paa)


def call_cli(main, argv):
    """An entry point's exit status, in-process (a subprocess per call costs seconds of imports)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_eval_of_a_missing_or_corrupt_run_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(CheckpointError):
        evaluate(tmp_path / "nowhere")
    proc = run_module("advantage_alignment.eval", "--run", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    run_dir = train(tiny_cfg("ipd_quick", tmp_path))
    for ckpt in (run_dir / "checkpoints").iterdir():
        ckpt.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert call_cli(eval_main, ["--run", str(run_dir)]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    assert call_cli(train_main, ["--help"]) == 0
    assert call_cli(eval_main, ["--help"]) == 0
    assert call_cli(reproduce_entry, ["--help"]) == 0


def test_cli_bad_key_and_bad_value_exit_2_with_one_line(capsys):
    for main, argv in (
        (train_main, ["nope=1"]),
        (train_main, ["loss.beta=-2"]),
        (reproduce_entry, ["quick", "x=1"]),
        (eval_main, ["--run", "/nonexistent/run"]),
    ):
        capsys.readouterr()
        assert call_cli(main, argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err


def reproduce_entry(argv):
    return reproduce_cli(reproduce.PAPER, reproduce.main, reproduce.__doc__, argv=argv)
