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


@pytest.mark.parametrize(
    "estimator", ["rtrl", "tbptt", "uoro", "uoro_preact", "uoro_noproj", "uoro_shaped"]
)
def test_train_returns_its_run_dir_and_eval_writes_final_losses_for_each_seed(tmp_path, estimator):
    from uoro.eval import evaluate
    from uoro.train import train

    run_dir = train(tiny_cfg(tmp_path, f"train.estimator={estimator}", f"name=t-{estimator}"))
    assert run_dir == tmp_path / "uoro" / f"t-{estimator}" and not (run_dir / "eval.json").exists()
    results = evaluate(run_dir)
    assert results["seeds"] == 2 and results["steps"] == 40
    assert 0 < results["final_loss"] < 3, "a copy task with 4 symbols starts near log 4 = 1.39 nats"
    assert json.loads((run_dir / "eval.json").read_text())["final_loss"] == results["final_loss"]
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


def test_same_seed_gives_identical_losses_and_another_seed_does_not(tmp_path):
    from uoro.eval import evaluate
    from uoro.train import train

    a = evaluate(train(tiny_cfg(tmp_path, "name=a")))
    b = evaluate(train(tiny_cfg(tmp_path, "name=b")))
    c = evaluate(train(tiny_cfg(tmp_path, "name=c", "seed=5")))
    assert a["final_loss"] == b["final_loss"] != c["final_loss"]


def test_a_tiny_run_twice_in_separate_processes_gives_identical_numbers(tmp_path):
    """The same code and config give the same floats in a fresh process (issue: make uoro did not)."""
    losses = []
    for name in ("first", "second"):
        done = subprocess.run(
            [sys.executable, "-m", "uoro.train", *TINY, "train.steps=100", f"out_dir={tmp_path}", f"name={name}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        records = (tmp_path / "uoro" / name / "metrics.jsonl").read_text().splitlines()
        losses.append([json.loads(r)["losses/loss"] for r in records])
    assert losses[0] == losses[1]


def test_full_config_loads_and_runs_a_few_steps_on_cpu(tmp_path):
    from uoro.eval import evaluate
    from uoro.train import train

    overrides = [
        f"out_dir={tmp_path}",
        "train.steps=3",
        "train.log_every=1",
        "train.final_window=2",
        "progress=false",
    ]
    cfg = load_config(UoroConfig, "full", overrides, CONFIG_DIR)
    assert cfg.model.n_hidden >= 64 and cfg.total.streams >= 1000, "full is our larger design"
    assert evaluate(train(cfg))["steps"] == 3


def test_reproduce_pipeline_writes_every_issue_key_with_tiny_overrides(tmp_path):
    from uoro.reproduce import HEADLINE, ISSUE_KEYS, PAPER_NUMBERS, main

    tiny = [
        "variance.steps=12", "variance.streams=8", "variance.control_streams=16", "variance.hidden_sizes=[4,6]",
        "variance.trained_steps=5", "variance.truncations=[1,4]", "variance.radii=[0.5,0.9,1.1]",
        "total.hidden_sizes=[16,32]", "total.steps=8", "total.streams=8", "total.joint_rounds=2",
        "total.reinforce_hidden=16", "cost.hidden_sizes=[4,64]", "cost.steps=1", "cost.repeats=1",
        "reproduce.char_steps=20", "reproduce.char_estimators=[uoro]",
    ]  # fmt: skip
    results = main("quick", [*TINY, *tiny, f"out_dir={tmp_path}"])
    assert all(key in results for key in ISSUE_KEYS), [k for k in ISSUE_KEYS if k not in results]
    assert set(HEADLINE) <= set(results) and all(
        isinstance(v.source, str) for v in PAPER_NUMBERS.values()
    )
    assert results["nmse/rtrl/max_abs_diff_to_bptt"] < 1e-10
    assert "train/uoro_noproj_vs_uoro/diff_mean" in results
    out = tmp_path / "uoro" / "quick"
    assert json.loads((out / "results.json").read_text()) == results
    assert "train/chars_uoro_final_loss" in json.loads((out / "details.json").read_text())
    for plot in (
        "total_variance.png",
        "measured_vs_predicted.png",
        "reinforce_sigma.png",
        "train_copy.png",
    ):
        assert (out / plot).exists(), plot
    assert (out / "train_uoro_seed1" / "eval.json").exists()


def test_bad_config_keys_and_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="train.lrr"):
        load_config(UoroConfig, "quick", ["train.lrr=1"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(UoroConfig, "quick", ["train.steps=many"], CONFIG_DIR)
    from uoro.train import train

    with pytest.raises(ValueError, match="unknown estimator 'kf'"):
        train(tiny_cfg(tmp_path, "train.estimator=kf"))


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("module", ["uoro.total_variance", "uoro.variance"])
def test_experiment_entry_points_have_help(module, capsys):
    """(train, eval and reproduce are checked by tests/test_package_shape.py.)"""
    import runpy

    argv = sys.argv
    sys.argv = [module, "--help"]
    try:
        with pytest.raises(SystemExit) as exit_:
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    finally:
        sys.argv = argv
    assert exit_.value.code == 0 and "usage" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_code_2(capsys):
    from common.results import reproduce_cli
    from uoro import eval as uoro_eval
    from uoro import reproduce, train

    for run, needle in [
        (lambda: train.main(["train.nope=1"]), "train.nope"),
        (lambda: uoro_eval.main(["--run", "/nonexistent"]), "not a run"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            run()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1
    code = reproduce_cli("uoro", reproduce.main, "doc", argv=["quick", "total.streamz=3"])
    err = capsys.readouterr().err
    assert code == 2 and "total.streamz" in err and len(err.strip().splitlines()) == 1


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


def test_a_run_shorter_than_its_log_window_trains_and_evaluates(tmp_path):
    """Issue 12: `uoro.train train.steps=10 train.seeds=1` used to train, then crash."""
    from uoro.eval import evaluate
    from uoro.train import train

    cfg = load_config(
        UoroConfig,
        "quick",
        [
            "train.steps=10",
            "train.seeds=1",
            "model.n_hidden=8",
            f"out_dir={tmp_path}",
            "name=short",
        ],
        CONFIG_DIR,
    )
    results = evaluate(train(cfg))
    assert results, "a 10-step run with a 100-step log window has something to report"
