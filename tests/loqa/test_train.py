"""Entry points of loqa/: config validation, seconds-long smoke runs of train/eval/reproduce, and the
full configs loading and running a few steps on CPU (with overrides that shrink them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.config import ConfigError, load_config
from loqa import reproduce
from loqa.config import CONFIG_DIR, LoqaConfig
from loqa.eval import evaluate, load_agent
from loqa.train import train

TINY = [
    "train.iterations=3",
    "train.batch_size=8",
    "train.eval_every=2",
    "train.log_every=1",
    "progress=false",
]


def tiny_cfg(preset, tmp_path, *extra):
    return load_config(LoqaConfig, preset, [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)


def test_unknown_and_mistyped_keys_are_one_line_errors_naming_the_key():
    with pytest.raises(ConfigError, match="loss.shaping_wieght"):
        load_config(LoqaConfig, "ipd_quick", ["loss.shaping_wieght=0"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="train.iterations"):
        load_config(LoqaConfig, "ipd_quick", ["train.iterations=many"], CONFIG_DIR)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("env.game=chess", "env.game"),
        ("env.epsilon=1.5", "env.epsilon"),
        ("train.opponents_per_batch=7", "train.opponents_per_batch"),
        ("loss.temperature=0", "loss.temperature"),
        ("model.actor=transformer", "model.actor"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(override, key):
    preset = "coin_quick" if "opponents" in override else "ipd_quick"
    with pytest.raises(ConfigError, match=key):
        load_config(LoqaConfig, preset, [override], CONFIG_DIR)


def test_train_cli_rejects_a_bad_key_with_exit_code_2():
    proc = subprocess.run(
        [sys.executable, "-m", "loqa.train", "nope=1"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "nope" in proc.stderr


@pytest.mark.parametrize("preset", ["ipd_quick", "ipd_full", "coin_quick", "coin_full"])
def test_every_config_trains_a_few_steps_and_evaluates_from_its_run_directory(preset, tmp_path):
    extra = ["train.opponents_per_batch=4"] if preset.startswith("coin") else []
    cfg = tiny_cfg(
        preset,
        tmp_path,
        f"name=smoke_{preset}",
        "eval.league_episodes=4",
        "train.eval_episodes=4",
        *extra,
    )
    run_dir = train(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and "losses/grad_norm_opponent" in rows[-1]
    results = evaluate(run_dir)
    assert "self_play_reward" in results
    assert (run_dir / "eval.json").is_file()


def test_same_seed_gives_identical_runs_and_resume_continues_exactly(tmp_path):
    a = train(
        tiny_cfg(
            "coin_quick",
            tmp_path,
            "name=a",
            "train.opponents_per_batch=4",
            "train.eval_episodes=4",
            "train.iterations=4",
            "checkpoint_every=2",
        )
    )
    b = train(
        tiny_cfg(
            "coin_quick",
            tmp_path,
            "name=b",
            "train.opponents_per_batch=4",
            "train.eval_episodes=4",
            "train.iterations=2",
            "checkpoint_every=2",
        )
    )
    b = train(
        tiny_cfg(
            "coin_quick",
            tmp_path,
            "name=b",
            "train.opponents_per_batch=4",
            "train.eval_episodes=4",
            "train.iterations=4",
            "checkpoint_every=2",
            "resume=true",
        )
    )
    _, agent_a = load_agent(a)
    _, agent_b = load_agent(b)
    for (name, pa), pb in zip(agent_a.state_dict().items(), agent_b.state_dict().values()):
        assert torch.equal(pa, pb), f"resumed run differs from the uninterrupted one in {name}"


def both(*items: str) -> list[str]:
    """The same override for the IPD's and the Coin Game's run configs."""
    return [f"{game}.{item}" for item in items for game in ("ipd", "coin")]


def test_reproduce_smoke_writes_every_issue_key(tmp_path):
    overrides = [
        *both(f"out_dir={tmp_path}", "progress=false", "train.iterations=3"),
        *both("train.batch_size=8", "train.eval_every=2", "n_seeds=2"),
        "coin.train.opponents_per_batch=4",
        "coin.train.eval_episodes=4",
        "coin.eval.league_episodes=4",
    ]
    results = reproduce.main("quick", overrides)
    for key in [
        "ipd/self_play_reward",
        "ipd/vs_always_defect_reward",
        "ipd/always_defect_reward",
        "ipd/p_coop_CC",
        "ipd/p_coop_CD",
        "ipd_no_shaping/self_play_reward",
        "coin/self_play_reward",
        "coin/self_play_own_coin_fraction",
        "coin/always_defect_reward",
        "coin_no_shaping/self_play_own_coin_fraction",
        "wall_clock_s",
    ]:
        assert key in results, f"results.json must have {key}"
    assert (tmp_path / "loqa" / "quick" / "coin_league_reward.png").is_file()
    assert (tmp_path / "loqa" / "quick" / "ipd_league.png").is_file()
    shipped = tmp_path / "loqa" / "quick" / "model" / "coin_loqa_seed0"
    cfg, agent = load_agent(shipped)  # the trained model a user can try without training
    _, from_run = load_agent(tmp_path / "loqa" / "quick" / "coin" / "loqa_seed0")
    assert cfg.env.game == "coin" and all(
        torch.equal(a, b)
        for a, b in zip(agent.state_dict().values(), from_run.state_dict().values())
    )
    with pytest.raises(ConfigError, match="reproduce.games"):
        reproduce.main("quick", ["reproduce.games=[chess]"])
    with pytest.raises(ConfigError, match="reproduce.workers"):
        reproduce.main("quick", ["reproduce.workers=-1"])
    with pytest.raises(ConfigError, match="coin.train.actor_lrr"):
        reproduce.main("quick", ["coin.train.actor_lrr=1"])


def test_quick_runs_in_two_processes_equal_the_sequential_ones(tmp_path):
    """`make loqa` trains the LOQA run and its control side by side; seeding makes that invisible."""
    common = ["reproduce.games=[ipd]", "ipd.progress=false", "ipd.train.iterations=4"]
    common += ["ipd.train.eval_every=2", "ipd.n_seeds=1"]
    seq = reproduce.main("quick", [*common, "reproduce.workers=1", f"ipd.out_dir={tmp_path / 's'}"])
    par = reproduce.main("quick", [*common, "reproduce.workers=2", f"ipd.out_dir={tmp_path / 'p'}"])
    timings = {k for k in seq if k.endswith("wall_clock_s")}
    assert {k: v for k, v in seq.items() if k not in timings} == {
        k: v for k, v in par.items() if k not in timings
    }


def test_full_scale_sweep_job_names_its_run_after_game_variant_and_seed(tmp_path):
    """`make loqa-full` runs reproduce.sweep_job through common.sweep, one job per seed."""
    results = reproduce.sweep_job(
        ["game=ipd", "loss.shaping_weight=0.0", "seed=43", *TINY, f"out_dir={tmp_path}"]
    )
    run_dir = tmp_path / "loqa" / "full" / "ipd" / "no_shaping_seed43"
    assert (run_dir / "eval.json").is_file() and "self_play_reward" in results
    cfg, _ = load_agent(run_dir)
    assert cfg.loss.shaping_weight == 0.0 and cfg.train.batch_size == 8


def test_user_errors_are_one_line_with_status_2_and_leave_no_run_directory(tmp_path):
    """Issue 12's cases for loqa: a resume with nothing to resume, an enum value, a device, an
    evaluation of a directory that is not a LOQA run."""
    root = str(Path(__file__).resolve().parents[2])
    env_dir = tmp_path / "work"
    other = tmp_path / "coconet_run"  # another paper's run directory
    env_dir.mkdir()
    other.mkdir()
    (other / "config.yaml").write_text("seed: 0\n")
    (other / "run.json").write_text('{"paper": "coconet"}')
    cases = [
        (("loqa.train", "name=t/nothing", "resume=true"), "checkpoint"),
        (("loqa.train", "model.actor=transformer"), "model.actor"),
        (("loqa.train", "device=tpu"), "device"),
        (("loqa.eval", "--run", str(env_dir)), "not a run directory"),
        (("loqa.eval", "--run", str(other)), "is a coconet run, not a loqa run"),
    ]
    for args, words in cases:
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=env_dir,
            env={**os.environ, "PYTHONPATH": root},
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], (args, proc.stderr)
    assert not (env_dir / "runs").exists(), "a refused run left a run directory behind"


def test_a_tiny_coin_run_gives_identical_parameters_in_two_separate_processes(tmp_path):
    """Same code and config, two fresh processes (float32 GRUs, sampled episodes): bit-identical."""
    root = str(Path(__file__).resolve().parents[2])
    args = ["--config", "coin_quick", *TINY, "train.opponents_per_batch=4"]
    for name in ("a", "b"):
        proc = subprocess.run(
            [sys.executable, "-m", "loqa.train", *args, f"out_dir={tmp_path}", f"name={name}"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": root},
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    _, a = load_agent(tmp_path / "loqa" / "a")
    _, b = load_agent(tmp_path / "loqa" / "b")
    for (key, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), f"{key} differs between two processes"


def test_paper_scale_trains_two_seeds_and_a_second_call_resumes_them(tmp_path):
    """`make loqa-paper` (the paper's Coin Game settings, shrunk here): run again, it continues each
    seed from its checkpoint; the resumed run equals an uninterrupted one."""
    tiny = [f"coin.out_dir={tmp_path}", "coin.progress=false", "coin.train.batch_size=8"]
    tiny += ["coin.train.opponents_per_batch=8", "coin.train.rollout_block_opponents=2"]
    tiny += ["coin.model.actor_hidden=8", "coin.model.critic_hidden=8"]
    tiny += ["coin.train.eval_episodes=4", "coin.eval.league_episodes=4", "coin.train.eval_every=2"]
    tiny += ["reproduce.workers=1", "coin.train.log_every=1"]  # the last iteration logs anyway
    reproduce.main("paper", [*tiny, "coin.train.iterations=2"])
    run_dir = tmp_path / "loqa" / "paper" / "coin" / "loqa_seed42"
    assert (tmp_path / "loqa" / "paper" / "coin" / "loqa_seed43").is_dir()
    assert not (tmp_path / "loqa" / "paper" / "coin" / "no_shaping_seed42").exists()
    results = reproduce.main("paper", [*tiny, "coin.train.iterations=4"])  # resumes at 2
    steps = [
        json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 3
    for key in ("coin/self_play_own_coin_fraction", "coin/cross_seed_own_coin_fraction"):
        assert key in results
    assert results["hardware/cpu_cores"] >= 1
    assert (tmp_path / "loqa" / "paper" / "results.json").is_file()
    straight = tmp_path / "straight"
    reproduce.main("paper", [*tiny, f"coin.out_dir={straight}", "coin.train.iterations=4"])
    _, resumed = load_agent(run_dir)
    _, uninterrupted = load_agent(straight / "loqa" / "paper" / "coin" / "loqa_seed42")
    for a, b in zip(resumed.state_dict().values(), uninterrupted.state_dict().values()):
        assert torch.equal(a, b)
