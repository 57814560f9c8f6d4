"""Entry points in seconds: training, resume, evaluation, the full config, the whole reproduce pipeline."""

import json
import subprocess
import sys

import pytest
import torch

from common.config import ConfigError, load_config
from uoro.config import CONFIG_DIR, UoroConfig
from uoro.tasks import CharTask, CopyTask

TINY = [
    "model.n_hidden=6",
    "train.steps=40",
    "train.seeds=2",
    "train.streams=2",
    "train.log_every=10",
    "train.final_window=20",
    "progress=false",
]


def tiny_cfg(tmp_path, *extra):
    return load_config(UoroConfig, "quick", [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)


@pytest.mark.parametrize("estimator", ["rtrl", "tbptt", "uoro", "uoro_shaped"])
def test_train_writes_final_losses_for_each_seed(tmp_path, estimator):
    from uoro.train import train

    results = train(tiny_cfg(tmp_path, f"train.estimator={estimator}", f"name=t-{estimator}"))
    assert results["seeds"] == 2 and results["steps"] == 40
    assert 0 < results["final_loss"] < 3, "a copy task with 4 symbols starts near log 4 = 1.39 nats"
    run_dir = tmp_path / "uoro" / f"t-{estimator}"
    assert json.loads((run_dir / "results.json").read_text())["final_loss"] == results["final_loss"]
    assert (run_dir / "plots" / "loss.png").exists() and (run_dir / "config.yaml").exists()


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    from common.runner import read_metrics
    from uoro.train import train

    train(tiny_cfg(tmp_path, "name=straight", "train.estimator=uoro_shaped"))
    train(tiny_cfg(tmp_path, "name=split", "train.estimator=uoro_shaped", "train.steps=20"))
    train(tiny_cfg(tmp_path, "name=split", "train.estimator=uoro_shaped", "resume=true"))
    straight = [r["losses/loss"] for r in read_metrics(tmp_path / "uoro" / "straight")]
    split = [r["losses/loss"] for r in read_metrics(tmp_path / "uoro" / "split")]
    assert straight == split, "a resumed run must reproduce the uninterrupted one exactly on CPU"


def test_same_seed_gives_identical_losses(tmp_path):
    from uoro.train import train

    a = train(tiny_cfg(tmp_path, "name=a"))
    b = train(tiny_cfg(tmp_path, "name=b"))
    c = train(tiny_cfg(tmp_path, "name=c", "seed=5"))
    assert a["final_loss"] == b["final_loss"] != c["final_loss"]


def test_full_config_loads_and_runs_a_few_steps_on_cpu(tmp_path):
    from uoro.train import train

    cfg = load_config(
        UoroConfig,
        "full",
        [
            f"out_dir={tmp_path}",
            "train.steps=3",
            "train.log_every=1",
            "train.final_window=2",
            "progress=false",
        ],
        CONFIG_DIR,
    )
    assert cfg.model.n_hidden >= 64 and cfg.variance.streams >= 1000, "full is the spec's §3 scale"
    results = train(cfg)
    assert results["steps"] == 3


def test_reproduce_pipeline_writes_every_issue_key_with_tiny_overrides(tmp_path):
    from uoro.reproduce import ISSUE_KEYS, main

    tiny_variance = [
        "variance.steps=12",
        "variance.streams=8",
        "variance.control_streams=16",
        "variance.hidden_sizes=[4,6]",
        "variance.trained_steps=5",
        "variance.truncations=[1,4]",
    ]
    results = main(
        "quick", [*TINY, *tiny_variance, f"out_dir={tmp_path}", "reproduce.char_steps=20"]
    )
    assert all(key in results for key in ISSUE_KEYS)
    assert results["rtrl/max_abs_diff_to_bptt"] < 1e-10
    assert "train/chars_uoro_final_loss" in results
    assert (tmp_path / "uoro" / "quick" / "plots" / "train_copy.png").exists()
    assert (tmp_path / "uoro" / "quick-variance" / "plots" / "nmse_over_time.png").exists()


def test_bad_config_keys_and_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="train.lrr"):
        load_config(UoroConfig, "quick", ["train.lrr=1"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(UoroConfig, "quick", ["train.steps=many"], CONFIG_DIR)
    from uoro.train import train

    with pytest.raises(ValueError, match="unknown estimator 'kf'"):
        train(tiny_cfg(tmp_path, "train.estimator=kf"))
    with pytest.raises(ValueError, match="unknown task kind 'ptb'"):
        train(tiny_cfg(tmp_path, "task.kind=ptb"))


@pytest.mark.parametrize("module", ["uoro.train", "uoro.variance", "uoro.eval"])
def test_entry_points_have_help(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "usage" in done.stdout


def test_train_cli_rejects_an_unknown_key_with_exit_code_2():
    done = subprocess.run(
        [sys.executable, "-m", "uoro.train", "train.nope=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "train.nope" in done.stderr


def test_copy_task_targets_are_the_inputs_lag_steps_earlier():
    task = CopyTask(n_streams=3, n_symbols=4, lag=2, seed=0)
    shown, targets = zip(*(task.next() for _ in range(10)))
    symbols = torch.stack([s.argmax(1) for s in shown])
    assert torch.equal(torch.stack(targets)[2:], symbols[:-2])


def test_char_task_reads_music21_abc_text():
    task = CharTask(n_streams=2, max_chars=5000, seed=0)
    x, y = task.next()
    assert x.shape == (2, task.n_in) and 20 < task.n_in < 120
    x2, _ = task.next()
    assert torch.equal(x2.argmax(1), y), "the next input is the previous target"
