"""Fault injection: kill a training run with SIGTERM, SIGINT and SIGKILL at random points, resume it, and get
exactly the run that was never interrupted (metrics and every saved state, bit for bit, on CPU).

The run is ``fault_toy_train.py`` (a model with dropout, Adam, an LR schedule, a data-order generator, numpy and
python draws, a logging window that spans checkpoints) in its own process, checkpointing on the wall clock
(``checkpoint_minutes``), so checkpoints fall on arbitrary steps. SIGTERM and SIGINT must end the process
with one line on stderr (exit 143 / 130) after a checkpoint at the next step boundary; SIGKILL is sent only
after this process wrote at least one checkpoint, and the resume continues from the latest one.

``kill_and_resume`` and ``assert_same_run`` work for any entry point that uses ``common.runner.Run``:
give them the command line of a tiny run of a paper (``[sys.executable, "-m", "uoro.train", ...]``).
"""

from __future__ import annotations

import importlib.util
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from common.runner import list_checkpoints, load_checkpoint, read_metrics

SCRIPT = Path(__file__).with_name("fault_toy_train.py")
ROOT = Path(__file__).resolve().parents[2]
TIMING_KEYS = ("time_s",)
TIMING_PREFIXES = ("perf/",)
EXIT_STATUS = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}


@dataclass
class Kill:
    signum: int
    after_steps: int  # steps this process must have checkpointed beyond where it started
    delay_s: float  # then wait this long, so the signal lands anywhere inside a step
    started_at: int = -1  # filled in: the step the process resumed from
    resumed_at: int = -1  # filled in: the step the next process resumes from


def newest_step(run_dir: Path) -> int:
    found = list_checkpoints(run_dir)
    return int(found[-1].stem.split("_")[1]) if found else -1


def default_signals() -> None:
    """In the child: SIGINT as in a terminal, even when the tests run as a background job (SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_and_resume(
    command: list[str], run_dir: Path, kills: list[Kill], timeout_s: float = 300.0
) -> list[Kill]:
    """Run ``command``, interrupting it as ``kills`` say, each time resuming with ``resume=true``."""
    resume: list[str] = []
    for kill in kills:
        kill.started_at = newest_step(run_dir)
        proc = subprocess.Popen(
            [*command, *resume],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_signals,
        )
        deadline = time.monotonic() + timeout_s
        target = max(kill.started_at, 0) + kill.after_steps
        while newest_step(run_dir) < target and proc.poll() is None:
            assert time.monotonic() < deadline, f"no checkpoint at step {target} in {timeout_s} s"
            time.sleep(0.01)
        time.sleep(kill.delay_s)
        if proc.poll() is None:
            proc.send_signal(kill.signum)
        out, err = proc.communicate(timeout=timeout_s)
        if proc.returncode == 0:  # finished before the signal landed: nothing left to interrupt
            kill.resumed_at = newest_step(run_dir)
            return kills
        assert proc.returncode == EXIT_STATUS[kill.signum], (proc.returncode, err)
        if kill.signum != signal.SIGKILL:
            lines = err.strip().splitlines()  # the entry point may have printed before
            assert "Traceback" not in err and lines, err
            name = signal.Signals(kill.signum).name
            assert f"{name} at step" in lines[-1] and "continue with resume=true" in lines[-1], err
        kill.resumed_at = newest_step(run_dir)
        assert kill.resumed_at > kill.started_at, "every interruption leaves a newer checkpoint"
        resume = ["resume=true"]
    done = subprocess.run(
        [*command, *resume], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, done.stderr
    return kills


def assert_same_tree(a, b, where: str = "") -> None:
    """Bit-identical nested states: tensors, arrays, numbers, strings, tuples, lists and dicts."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def comparable_metrics(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in TIMING_KEYS and not k.startswith(TIMING_PREFIXES)}
        for r in read_metrics(run_dir)
    ]


def assert_same_run(straight: Path, resumed: Path) -> None:
    """Same final checkpoint (parameters, optimiser, RNGs, extra) and same metrics (timing aside)."""
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key in ("step", "objects", "rng", "extra", "metrics_lines"):
        assert_same_tree(a.get(key), b.get(key), f"final checkpoint: {key}")
    metrics_a, metrics_b = comparable_metrics(straight), comparable_metrics(resumed)
    assert len(metrics_a) == len(metrics_b), "metrics.jsonl lengths differ"
    for record_a, record_b in zip(metrics_a, metrics_b):
        assert record_a == record_b, f"metrics differ at step {record_a.get('step')}"


def toy_command(out_dir: Path, name: str, steps: int, seed: int) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        f"out_dir={out_dir}",
        f"name={name}",
        f"seed={seed}",
        f"train.steps={steps}",
        "train.step_sleep=0.02",
        "checkpoint_minutes=0.002",  # 0.12 s: wall-clock checkpoints on arbitrary steps
        "progress=false",
    ]


def random_kills(
    rng: random.Random, signals: list[int], low: int = 2, high: int = 10
) -> list[Kill]:
    """Each kill ``low..high`` checkpointed steps after the process started, plus 0-0.1 s."""
    return [
        Kill(s, after_steps=rng.randint(low, high), delay_s=rng.uniform(0.0, 0.1)) for s in signals
    ]


def run_toy_in_process(argv: list[str]) -> None:
    """``fault_toy_train.main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location("fault_toy_train", SCRIPT)
    toy = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = toy  # dataclasses and omegaconf look its type hints up there
    try:
        spec.loader.exec_module(toy)
        toy.main(argv)
    finally:
        del sys.modules[spec.name]


def check_kills_against_a_straight_run(tmp_path, seed: int, steps: int, signals: list[int]):
    # The uninterrupted run in this process (one start-up less; also shows in-process == subprocess).
    run_toy_in_process(toy_command(tmp_path, "straight", steps, seed)[2:])
    rng = random.Random(seed)
    started = time.monotonic()
    kills = kill_and_resume(
        toy_command(tmp_path, "killed", steps, seed),
        tmp_path / "faults" / "killed",
        random_kills(rng, signals),
    )
    seconds = time.monotonic() - started
    assert_same_run(tmp_path / "faults" / "straight", tmp_path / "faults" / "killed")
    landed = [k for k in kills if k.resumed_at > k.started_at]
    report = ", ".join(
        f"{signal.Signals(k.signum).name}: {k.started_at}->{k.resumed_at}" for k in landed
    )
    print(f"seed {seed}: {len(landed)}/{len(kills)} kills landed ({report}) in {seconds:.1f} s")
    assert landed, "at least one kill must land inside training"


def test_sigterm_sigint_sigkill_then_resume_is_bit_identical(tmp_path):
    check_kills_against_a_straight_run(
        tmp_path, seed=0, steps=60, signals=[signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_random_kills_then_resume_is_bit_identical(tmp_path, seed):
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL] * 3
    random.Random(seed).shuffle(signals)
    check_kills_against_a_straight_run(tmp_path, seed=seed, steps=240, signals=signals)


def files_and_bytes(path: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def test_the_entry_points_refusals_are_one_line_exit_2_and_change_nothing(tmp_path, capsys):
    base = [f"out_dir={tmp_path}", "name=done", "train.steps=8", "progress=false"]
    run_toy_in_process(base)
    run_dir = tmp_path / "faults" / "done"
    before = files_and_bytes(run_dir)
    capsys.readouterr()
    refusals = [
        ([*base, "resume=true", "train.lr=0.5"], "train.lr (saved 0.05, now 0.5)"),
        (base, "already has checkpoints up to step_00000008; continue it with resume=true"),
        ([*base, "train.steps=-1"], "invalid config: train.steps must be >= 1, got -1"),
        ([*base, "device=tpu"], "invalid config: device must be auto, cpu, cuda or cuda:N"),
        ([*base, "name=other", "resume=true"], "resume=true but there is no checkpoint"),
    ]
    for argv, expected in refusals:
        with pytest.raises(SystemExit) as info:
            run_toy_in_process(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2, argv
        assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert files_and_bytes(run_dir) == before, "no refusal changed the run directory"
    assert sorted(p.name for p in (tmp_path / "faults").iterdir()) == ["done"], "no stray run dir"
    with pytest.raises(SystemExit) as info:
        run_toy_in_process(["train.steps=33", "--help"])
    assert info.value.code == 0 and "train.steps (int) = 33" in capsys.readouterr().out


# ---------------------------------------------------------------- the papers' own entry points
FAST_CHECKPOINTS = ["checkpoint_minutes=0.002", "progress=false"]
PAPER_CASES = {
    "uoro": (
        [
            "-m",
            "uoro.train",
            "--config",
            "quick",
            "train.steps=1500",
            "train.seeds=1",
            "train.log_every=50",
            "train.final_window=100",
            "model.n_hidden=8",
        ],
        (50, 300),
    ),
    "loqa": (
        [
            "-m",
            "loqa.train",
            "--config",
            "ipd_quick",
            "train.iterations=40",
            "train.eval_every=5",
            "train.log_every=3",
        ],
        (3, 8),
    ),
    "coconet": (
        [
            "-m",
            "coconet.train",
            "--config",
            "quick",
            "train.steps=90",
            "train.batch_size=2",
            "train.eval_every=20",
            "model.layers=4",
            "model.filters=4",
            "data.valid_pieces=2",
            "data.valid_masks_per_piece=1",
        ],
        (5, 15),
    ),
    "loqa_coin": (
        [
            "-m",
            "loqa.train",
            "--config",
            "coin_quick",
            "train.iterations=30",
            "train.batch_size=16",
            "train.critic_warmup=4",
            "train.buffer_push_every=3",
            "train.opponents_per_batch=2",
            "train.log_every=3",
            "train.eval_every=9",
            "train.eval_episodes=8",
            "model.actor_hidden=8",
            "model.critic_hidden=8",
            "env.episode_length=10",
        ],
        (3, 6),
    ),
    "meva": (
        [
            "-m",
            "meva.train",
            "--config",
            "quick",
            "train.updates=300",
            "train.batch=16",
            "train.rollout_length=20",
            "train.log_every=10",
            "train.heldout_pairs=8",
            "model.hidden=16",
        ],
        (20, 60),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        "coconet",
        "loqa",
        "loqa_coin",
        "meva",
        "uoro",
    ],
)
def test_a_papers_training_survives_kills_exactly(tmp_path, case):
    args, (low, high) = PAPER_CASES[case]
    paper = args[1].split(".")[0]  # "-m", "<paper>.train"

    def command(name):
        return [sys.executable, *args, f"out_dir={tmp_path}", f"name={name}", *FAST_CHECKPOINTS]

    straight = subprocess.run(command("straight"), cwd=ROOT, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
    started = time.monotonic()
    kills = kill_and_resume(
        command("killed"),
        tmp_path / paper / "killed",
        random_kills(random.Random(0), signals, low, high),
    )
    report = ", ".join(
        f"{signal.Signals(k.signum).name}: {k.started_at}->{k.resumed_at}" for k in kills
    )
    print(f"{case}: kills {report} in {time.monotonic() - started:.1f} s")
    assert_same_run(tmp_path / paper / "straight", tmp_path / paper / "killed")
