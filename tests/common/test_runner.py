"""The runner: run directories, atomic checkpoints, and resume giving the same numbers as no interruption."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
import torch

from common.config import BaseConfig, load_config
from common.runner import (
    CheckpointError,
    Run,
    atomic_torch_save,
    list_checkpoints,
    load_checkpoint,
    load_run_config,
    pick_device,
    read_metrics,
)


@dataclass
class ToyTrain:
    steps: int = 12
    lr: float = 0.1


@dataclass
class ToyConfig(BaseConfig):
    train: ToyTrain = field(default_factory=ToyTrain)


def train_toy(cfg, stop_after: int | None = None) -> list[float]:
    """A tiny regression whose every step draws from three RNGs: torch global, numpy and a generator."""
    import numpy as np

    losses = []
    with Run(cfg, paper="toy") as run:
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


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    cfg = toy_cfg(tmp_path, "name=interrupted")
    with pytest.raises(KeyboardInterrupt), Run(cfg, paper="toy") as run:
        model = torch.nn.Linear(2, 2)
        run.track(model=model)
        for step in run.steps(0, 100):
            if step == 3:
                raise KeyboardInterrupt
    assert load_checkpoint(tmp_path / "toy" / "interrupted")["step"] == 3


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
