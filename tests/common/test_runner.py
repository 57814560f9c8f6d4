"""The runner: run directories, atomic checkpoints, and resume giving the same numbers as no interruption."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
import torch

from common.config import BaseConfig, ConfigError, load_config
from common.runner import (
    CheckpointError,
    Run,
    RunDirError,
    RunExistsError,
    RunInterrupted,
    atomic_torch_save,
    check_run_dir,
    list_checkpoints,
    load_checkpoint,
    load_run_config,
    pick_device,
    read_metrics,
)


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Python's Ctrl-C handler, even when the suite runs as a background job (which ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@dataclass
class ToyTrain:
    steps: int = 12
    lr: float = 0.1


@dataclass
class ToyConfig(BaseConfig):
    train: ToyTrain = field(default_factory=ToyTrain)


def train_toy(
    cfg, stop_after: int | None = None, signal_at: tuple[int, int] | None = None, keep: int = 3
) -> list[float]:
    """A tiny regression whose every step draws from three RNGs: torch global, numpy and a generator."""
    import numpy as np

    losses = []
    with Run(cfg, paper="toy", keep_checkpoints=keep) as run:
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        data_generator = torch.Generator().manual_seed(cfg.seed)
        run.track(model=model, optimizer=optimizer, data_generator=data_generator)
        start = run.restore()
        for step in run.steps(start, cfg.train.steps):
            x = torch.randn(16, 4, generator=data_generator)
            noise = torch.from_numpy(np.random.standard_normal((16, 1))).float()  # noqa: NPY002
            loss = ((model(x) - x.sum(1, keepdim=True) - 0.1 * noise) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if signal_at is not None and step == signal_at[0]:
                os.kill(os.getpid(), signal_at[1])  # arrives mid-step: the step must still finish
            run.log(step, {"losses/mse": loss})
            run.maybe_checkpoint(step + 1)
            if stop_after is not None and step + 1 == stop_after:
                return losses
        run.save(cfg.train.steps)
    return losses


def toy_cfg(tmp_path, *overrides):
    return load_config(ToyConfig, None, [f"out_dir={tmp_path}", "progress=false", *overrides])


def test_run_directory_is_self_describing(tmp_path):
    cfg = toy_cfg(tmp_path, "name=describe", "checkpoint_every=4")
    train_toy(cfg)
    run_dir = tmp_path / "toy" / "describe"
    assert load_run_config(run_dir).train.steps == 12
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(12))
    assert list((run_dir / "tb").iterdir()), "tensorboard events are written"
    assert [p.name for p in list_checkpoints(run_dir)] == [
        "step_00000004.pt",
        "step_00000008.pt",
        "step_00000012.pt",
    ]
    assert load_checkpoint(run_dir)["step"] == 12


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path):
    straight = train_toy(toy_cfg(tmp_path, "name=straight", "checkpoint_every=5"))
    first_part = train_toy(toy_cfg(tmp_path, "name=resumed", "checkpoint_every=5"), stop_after=7)
    # the process "died" after step 7; the last checkpoint is at step 5
    second_part = train_toy(toy_cfg(tmp_path, "name=resumed", "checkpoint_every=5", "resume=true"))
    assert first_part[:5] + second_part == straight, "resumed losses must equal the straight run's"
    metrics = read_metrics(tmp_path / "toy" / "resumed")
    assert [r["step"] for r in metrics] == list(range(12)), (
        "metrics after the checkpoint are replaced"
    )
    assert [r["losses/mse"] for r in metrics] == pytest.approx(straight)


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="resume=true but there is no checkpoint in"):
        Run(toy_cfg(tmp_path, "name=nothing", "resume=true"), paper="toy")


def test_missing_checkpoint_names_the_directory(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint in .*checkpoints"):
        load_checkpoint(tmp_path / "nowhere")


def test_killed_writer_leaves_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "step_00000001.pt"
    atomic_torch_save({"weights": torch.ones(3)}, path)
    # A writer process killed half-way through a large save must not damage the file on disk.
    script = textwrap.dedent(
        f"""
        import os, torch, threading
        from common.runner import atomic_torch_save
        threading.Timer(0.05, lambda: os._exit(9)).start()
        while True:
            atomic_torch_save({{"weights": torch.zeros(20_000_000)}}, {str(path)!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert result.returncode == 9, "the writer was killed mid-write"
    loaded = torch.load(path, weights_only=True)
    assert loaded["weights"].shape in {(3,), (20_000_000,)}, "the file is a whole checkpoint"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    assert all(name.startswith(".") for name in leftovers), "only hidden temporary files remain"


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    cfg = toy_cfg(tmp_path, "name=corrupt", "checkpoint_every=4")
    train_toy(cfg)
    run_dir = tmp_path / "toy" / "corrupt"
    newest = list_checkpoints(run_dir)[-1]
    newest.write_bytes(b"not a checkpoint")
    assert load_checkpoint(run_dir)["step"] == 8


def test_device_auto_picks_what_is_there():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_write_json_is_readable(tmp_path):
    with Run(toy_cfg(tmp_path, "name=json"), paper="toy") as run:
        path = run.write_json("results.json", {"a/b": 1.5})
    assert json.loads(path.read_text()) == {"a/b": 1.5}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temp files left"
    assert os.path.isdir(run.plots_dir)


# ---------------------------------------------------------------- faults: signals, Ctrl-C, wall clock
def dir_snapshot(path):
    """Every file under ``path`` with a hash of its bytes: to show that nothing changed."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_step_checkpoints_at_the_step_boundary_and_resume_is_exact(
    tmp_path, capsys, signum, status
):
    straight = train_toy(toy_cfg(tmp_path, "name=straight"))
    handler_before = signal.getsignal(signum)
    with pytest.raises(RunInterrupted) as info:
        train_toy(toy_cfg(tmp_path, "name=signalled"), signal_at=(5, signum))
    assert info.value.code == status and info.value.signum == signum
    run_dir = tmp_path / "toy" / "signalled"
    assert load_checkpoint(run_dir)["step"] == 6, "step 5 finished, then the run saved and stopped"
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "continue with resume=true" in err, err
    assert signal.getsignal(signum) == handler_before, "the run put the previous handler back"
    resumed = train_toy(toy_cfg(tmp_path, "name=signalled", "resume=true"))
    metrics = [r["losses/mse"] for r in read_metrics(run_dir)]
    assert metrics == [r["losses/mse"] for r in read_metrics(tmp_path / "toy" / "straight")]
    assert resumed == straight[6:], "bit-identical to the uninterrupted run"


def test_ctrl_c_that_reaches_the_run_saves_nothing_and_keeps_the_last_checkpoint(tmp_path, capsys):
    cfg = toy_cfg(tmp_path, "name=interrupted", "checkpoint_every=2")
    with pytest.raises(RunInterrupted) as info, Run(cfg, paper="toy") as run:
        model = torch.nn.Linear(2, 2)
        run.track(model=model)
        for step in run.steps(0, 100):
            run.maybe_checkpoint(step + 1)
            if step == 4:
                with torch.no_grad():
                    model.weight.add_(1.0)  # half a step ...
                raise KeyboardInterrupt  # ... then a second Ctrl-C: saving now would be inexact
    assert info.value.code == 130
    assert load_checkpoint(tmp_path / "toy" / "interrupted")["step"] == 4, "no mid-step save"
    err = capsys.readouterr().err.strip()
    assert "nothing saved; the latest checkpoint is" in err and err.count("\n") == 0


def test_wall_clock_checkpoints(tmp_path):
    cfg = toy_cfg(tmp_path, "name=clock", "checkpoint_minutes=1e-9")  # due at every boundary
    train_toy(cfg, stop_after=5, keep=100)
    steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(tmp_path / "toy" / "clock")]
    assert steps == [1, 2, 3, 4, 5]
    cfg = toy_cfg(tmp_path, "name=noclock", "checkpoint_minutes=0")
    train_toy(cfg, stop_after=5)
    assert list_checkpoints(tmp_path / "toy" / "noclock") == []


def test_resume_from_any_checkpoint_is_bit_identical(tmp_path):
    straight = train_toy(toy_cfg(tmp_path, "name=straight"))
    train_toy(toy_cfg(tmp_path, "name=every", "checkpoint_every=1"), keep=100)
    source = tmp_path / "toy" / "every"
    for k in (1, 4, 7, 11):
        copy = tmp_path / "toy" / f"from{k}"
        shutil.copytree(source, copy)
        for ckpt in list_checkpoints(copy):
            if int(ckpt.stem.split("_")[1]) > k:
                ckpt.unlink()
        resumed = train_toy(toy_cfg(tmp_path, f"name=from{k}", "resume=true"))
        assert resumed == straight[k:], f"resume from step {k}"
        assert [r["step"] for r in read_metrics(copy)] == list(range(12))


def test_metrics_logged_with_the_next_steps_label_survive_resume(tmp_path):
    """coconet labels a step's metrics step + 1, the checkpoint's own step: they must be kept."""

    def loop(cfg, stop_after=None):
        with Run(cfg, paper="toy") as run:
            counter = torch.nn.Linear(1, 1)
            run.track(counter=counter)
            for step in run.steps(run.restore(), 6):
                run.log(step + 1, {"x": step})
                run.maybe_checkpoint(step + 1)
                if step + 1 == stop_after:
                    return

    loop(toy_cfg(tmp_path, "name=labels", "checkpoint_every=2"), stop_after=3)
    loop(toy_cfg(tmp_path, "name=labels", "resume=true"))
    assert [r["step"] for r in read_metrics(tmp_path / "toy" / "labels")] == [1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------- refusals that change nothing
def test_resume_with_a_changed_structural_key_changes_nothing(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=structural", "checkpoint_every=4"))
    run_dir = tmp_path / "toy" / "structural"
    before = dir_snapshot(run_dir)
    with pytest.raises(ConfigError) as info:
        Run(toy_cfg(tmp_path, "name=structural", "resume=true", "train.lr=0.5"), paper="toy")
    message = str(info.value)
    assert "train.lr (saved 0.1, now 0.5)" in message and "\n" not in message
    assert dir_snapshot(run_dir) == before, "config.yaml and everything else unchanged"


def test_resume_may_extend_the_run(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=longer"))
    longer = train_toy(toy_cfg(tmp_path, "name=longer", "resume=true", "train.steps=15"))
    assert len(longer) == 3
    assert load_run_config(tmp_path / "toy" / "longer").train.steps == 15


def test_a_fresh_run_refuses_an_existing_name_unless_told_to_overwrite(tmp_path, capsys):
    train_toy(toy_cfg(tmp_path, "name=taken"))
    run_dir = tmp_path / "toy" / "taken"
    before = dir_snapshot(run_dir)
    with pytest.raises(RunExistsError) as info:
        Run(toy_cfg(tmp_path, "name=taken"), paper="toy")
    assert "resume=true" in str(info.value) and "overwrite=true" in str(info.value)
    assert dir_snapshot(run_dir) == before
    train_toy(toy_cfg(tmp_path, "name=taken", "overwrite=true"))
    assert "overwrite=true: removed" in capsys.readouterr().err
    assert load_checkpoint(run_dir)["step"] == 12


def test_resume_without_a_checkpoint_makes_no_directory(tmp_path):
    with pytest.raises(CheckpointError):
        Run(toy_cfg(tmp_path, "name=ghost", "resume=true"), paper="toy")
    assert not (tmp_path / "toy").exists()


def test_a_failure_while_building_leaves_no_stray_run_directory(tmp_path):
    with (
        pytest.raises(ValueError, match="unknown actor"),
        Run(toy_cfg(tmp_path, "name=stray"), "toy"),
    ):
        raise ValueError("unknown actor 'transformer'")
    assert not (tmp_path / "toy").exists()


def test_missing_device_is_a_config_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        Run(toy_cfg(tmp_path, "name=gpu", "device=cuda"), paper="toy")
    assert not (tmp_path / "toy").exists()


def test_check_run_dir_names_what_is_wrong(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=mine"))
    run_dir = tmp_path / "toy" / "mine"
    assert check_run_dir(run_dir, "toy", need_checkpoint=True).train.steps == 12
    with pytest.raises(RunDirError, match="is a toy run, not a loqa run"):
        check_run_dir(run_dir, "loqa")
    with pytest.raises(RunDirError, match="no run directory"):
        check_run_dir(tmp_path / "nothing", "toy")
    with pytest.raises(RunDirError, match="not a run directory"):
        check_run_dir(tmp_path, "toy")
    shutil.rmtree(run_dir / "checkpoints")
    with pytest.raises(RunDirError, match="has no checkpoint"):
        check_run_dir(run_dir, "toy", need_checkpoint=True)


def test_a_run_shorter_than_its_logging_interval_logs_its_last_step(tmp_path):
    with Run(toy_cfg(tmp_path, "name=short"), paper="toy") as run:
        logged = [step for step in run.steps(0, 3) if run.log_due(step, every=10)]
    assert logged == [2]


def test_ctrl_c_while_building_leaves_no_stray_run_directory(tmp_path, capsys):
    with pytest.raises(RunInterrupted), Run(toy_cfg(tmp_path, "name=early"), "toy"):
        raise KeyboardInterrupt
    assert not (tmp_path / "toy").exists()
    assert "there is no checkpoint" in capsys.readouterr().err


def test_resume_after_a_kill_before_the_first_checkpoint_says_how_to_start_over(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=nockpt", "checkpoint_minutes=0"), stop_after=3)
    with pytest.raises(CheckpointError, match="overwrite=true instead of resume=true"):
        Run(toy_cfg(tmp_path, "name=nockpt", "resume=true"), paper="toy")


def test_a_metrics_line_cut_short_by_a_kill_is_skipped_and_dropped_on_resume(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=cut", "checkpoint_every=5"), stop_after=7)
    path = tmp_path / "toy" / "cut" / "metrics.jsonl"
    with open(path, "a") as handle:
        handle.write('{"step": 7, "losses/ms')  # SIGKILL while writing
    assert [r["step"] for r in read_metrics(tmp_path / "toy" / "cut")] == list(range(7))
    train_toy(toy_cfg(tmp_path, "name=cut", "resume=true"))
    assert [r["step"] for r in read_metrics(tmp_path / "toy" / "cut")] == list(range(12))


def test_a_checkpoint_that_does_not_fit_the_model_is_one_line(tmp_path):
    train_toy(toy_cfg(tmp_path, "name=fit"))
    cfg = toy_cfg(tmp_path, "name=fit", "resume=true")
    with pytest.raises(CheckpointError) as info, Run(cfg, paper="toy") as run:
        run.track(model=torch.nn.Linear(3, 3))
        run.restore()
    assert "does not fit 'model'" in str(info.value) and "\n" not in str(info.value)


def test_an_ignored_signal_stays_ignored(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a background job
    try:
        losses = train_toy(toy_cfg(tmp_path, "name=ignored"), signal_at=(5, signal.SIGINT))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(losses) == 12, "the run went on to the end"


def test_a_loop_without_maybe_checkpoint_still_stops_at_the_step_boundary(tmp_path):
    with pytest.raises(RunInterrupted) as info, Run(toy_cfg(tmp_path, "name=plain"), "toy") as run:
        model = torch.nn.Linear(2, 2)
        run.track(model=model)
        for step in run.steps(0, 100):
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            with torch.no_grad():
                model.weight.add_(1.0)  # the step's work, finished before the save
    assert info.value.code == 143
    state = load_checkpoint(tmp_path / "toy" / "plain")
    assert state["step"] == 4
    assert torch.equal(state["objects"]["model"]["weight"], model.weight.detach())
