"""Train, evaluate and reproduce end to end on real chorales with tiny settings, and the one-line errors.

Semantics under test:
- the four stages train and an RL run directory is self-describing: ``realjam.eval`` needs only it and
  writes every result key the issue names;
- resuming from a checkpoint continues exactly (CPU);
- bad config keys or values, missing or foreign run directories and corrupt checkpoints end in a
  one-line error with exit status 2.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from common.config import ConfigError, load_config, validate
from common.results import reproduce_cli
from common.runner import CheckpointError, list_checkpoints, load_checkpoint
from realjam.config import CONFIG_DIR, RealJamConfig
from realjam.eval import main as eval_main
from realjam.reproduce import PAPER, finished_run
from realjam.reproduce import main as reproduce
from realjam.store import load_stage
from realjam.train import main as train_main
from realjam.train import train

TINY = [
    "data.chorale_limit=24",
    "data.folk_limit=0",
    "data.crop_frames=32",
    "data.eval_frames=32",
    "data.eval_samples=1",
    "rl.frames=32",
    "net.dim=16",
    "net.layers=1",
    "net.heads=2",
    "reward_net.dim=8",
    "reward_net.layers=1",
    "reward_net.heads=2",
    "mle.steps=3",
    "teacher.steps=2",
    "reward.steps=2",
    "rl.updates=2",
    "mle.batch_size=4",
    "teacher.batch_size=4",
    "reward.batch_size=4",
    "rl.batch_size=4",
    "rl.log_every=1",
    "mle.log_every=1",
    "reproduce.workers=1",
    "reproduce.latency_beats=0",
    "progress=false",
]
ISSUE_KEYS = [
    "mle/harmony_rate",
    "rl/harmony_rate",
    "random/harmony_rate",
    "real/harmony_rate",
    "teacher/harmony_rate",
    "unigram/chord_nll",
    "mle/chord_nll",
    "teacher/chord_nll",
    "rl/silence_rate",
    "rl/repeat_rate",
    "rl/chord_changes_per_frame",
    "real/chord_changes_per_frame",
    "rl/kl_per_chord_token",
    "mle/harmony_after_key_change",
    "rl/harmony_after_key_change",
    "wall_clock_s",
]


def cli(module, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return out, reproduce("quick", [*TINY, f"out_dir={out}"])


def test_reproduce_writes_every_issue_key_and_the_plots(tiny_results):
    out, results = tiny_results
    missing = [k for k in ISSUE_KEYS if k not in results]
    assert not missing, f"missing result keys: {missing}"
    assert "rl_hack/harmony_rate" in results
    on_disk = json.loads((out / "realjam" / "quick" / "results.json").read_text())
    assert on_disk == results
    for name in (
        "harmony.png",
        "key_change.png",
        "rl_training.png",
        "pretraining.png",
        "rl_hack_training.png",
    ):
        assert (out / "realjam" / "quick" / name).stat().st_size > 1000, name
    assert 0 <= results["random/harmony_rate"] <= 1 and results["real/harmony_rate"] > 0.8


def test_finished_pretraining_runs_are_reused_only_when_their_settings_agree(tiny_results):
    out, _ = tiny_results
    cfg = load_config(
        RealJamConfig,
        "quick",
        [*TINY, f"out_dir={out}", "stage=mle", "name=quick/mle_seed0"],
        CONFIG_DIR,
    )
    assert finished_run(cfg)
    assert finished_run(
        load_config(
            RealJamConfig,
            "quick",
            [*TINY, f"out_dir={out}", "stage=mle", "name=quick/mle_seed0", "rl.lr=0.5"],
            CONFIG_DIR,
        )
    )
    assert not finished_run(
        load_config(
            RealJamConfig,
            "quick",
            [*TINY, f"out_dir={out}", "stage=mle", "name=quick/mle_seed0", "mle.lr=0.5"],
            CONFIG_DIR,
        )
    )


def test_resume_continues_exactly(tmp_path):
    base = [*TINY, f"out_dir={tmp_path}", "stage=mle", "checkpoint_every=2", "mle.steps=4"]
    straight = train(load_config(RealJamConfig, "quick", [*base, "name=a"], CONFIG_DIR))
    # mle.steps sizes the cosine schedule, so a resume may not change it: resume from step 2 instead.
    interrupted = train(load_config(RealJamConfig, "quick", [*base, "name=b"], CONFIG_DIR))
    for later in list_checkpoints(interrupted)[1:]:
        later.unlink()
    resumed = train(
        load_config(RealJamConfig, "quick", [*base, "name=b", "resume=true"], CONFIG_DIR)
    )
    a, b = (load_checkpoint(d)["objects"]["model"] for d in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def in_process(main, argv, capsys):
    """Run an entry point's main in this process; returns (exit status, stderr lines)."""
    try:
        code = main(argv) or 0
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_help_exits_zero(capsys):
    result = cli("realjam.train", "--help")  # one real `python -m` start; the others in-process
    assert result.returncode == 0 and "usage" in result.stdout, result.stderr
    for main in (eval_main, lambda argv: reproduce_cli(PAPER, reproduce, "doc", argv=argv)):
        code, _ = in_process(main, ["--help"], capsys)
        assert code == 0


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    bad = [
        (train_main, ["no_such_key=1"]),
        (train_main, ["stage=sing"]),
        (train_main, ["net.heads=3", "net.dim=16", f"out_dir={tmp_path}"]),
        (train_main, ["stage=rl", f"out_dir={tmp_path}", "rl.mle_run=/nonexistent"]),
        (eval_main, ["--run", str(tmp_path / "missing")]),
        (lambda argv: reproduce_cli(PAPER, reproduce, "doc", argv=argv), ["quick", "rl.updates=0"]),
    ]
    for main, argv in bad:
        code, err = in_process(main, argv, capsys)
        assert code == 2, (argv, err)
        assert len(err) == 1, err
    with pytest.raises(ConfigError):
        validate(load_config(RealJamConfig, "quick", ["data.crop_frames=30"], CONFIG_DIR))


def test_corrupt_checkpoint_and_wrong_stage_are_refused(tmp_path):
    run_dir = train(
        load_config(
            RealJamConfig,
            "quick",
            [*TINY, f"out_dir={tmp_path}", "stage=reward", "name=r"],
            CONFIG_DIR,
        )
    )
    with pytest.raises(CheckpointError, match="expected 'mle'"):
        load_stage(run_dir, "mle")
    for path in (run_dir / "checkpoints").iterdir():
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        load_stage(run_dir, "reward")
