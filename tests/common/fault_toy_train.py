"""A tiny training run for the fault-injection tests (test_faults.py), and the pattern for exact resume.

    python tests/common/fault_toy_train.py out_dir=/tmp/x name=a train.steps=60 [resume=true]

Everything a real run has that can break a resume: a model with dropout (the global torch RNG), Adam, a
learning-rate schedule, a torch.Generator for the data order (shuffled each epoch, position mid-epoch),
numpy and python global draws, and a loss accumulated over a logging window that spans checkpoints (carried
in ``extra``). ``train.step_sleep`` stretches each step so a signal can land mid-step.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2])
)  # the repository root, when run by path

from common.cli import entry_point  # noqa: E402
from common.config import BaseConfig, check_range, parse_args  # noqa: E402
from common.runner import Run  # noqa: E402


@dataclass
class ToyTrain:
    steps: int = 60  # optimiser steps
    batch_size: int = 8
    examples: int = 40  # data set size: an epoch is 5 batches, so the order is reshuffled often
    lr: float = 0.05
    log_every: int = 7  # not a divisor of anything: windows span checkpoints
    step_sleep: float = 0.0  # seconds slept mid-step (after the forward pass), for the kill tests

    def __post_init__(self):
        check_range("train.steps", self.steps, low=1)
        check_range("train.log_every", self.log_every, low=1)


@dataclass
class ToyConfig(BaseConfig):
    train: ToyTrain = field(default_factory=ToyTrain)
    resume_may_change = (*BaseConfig.resume_may_change, "train.step_sleep")


class DataOrder:
    """Epochs of a shuffled index order drawn from its own generator; a checkpoint holds the position."""

    def __init__(self, examples: int, generator: torch.Generator):
        self.examples, self.generator = examples, generator
        self.order = torch.randperm(examples, generator=generator)
        self.position = 0

    def next_batch(self, size: int) -> torch.Tensor:
        if self.position + size > self.examples:  # a new epoch
            self.order = torch.randperm(self.examples, generator=self.generator)
            self.position = 0
        batch = self.order[self.position : self.position + size]
        self.position += size
        return batch

    def state_dict(self) -> dict:
        return {"order": self.order.clone(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"].clone(), state["position"]


def train(cfg) -> Path:
    tc = cfg.train
    with Run(cfg, paper="faults") as run:
        data_gen = torch.Generator().manual_seed(cfg.seed + 1)
        inputs = torch.randn(tc.examples, 4, generator=data_gen)
        targets = inputs.sum(1, keepdim=True).sin()
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.9)
        order = DataOrder(tc.examples, data_gen)
        run.track(
            model=model, optimizer=optimizer, schedule=schedule, data_gen=data_gen, order=order
        )
        start = run.restore()
        window = run.extra.get("window", [])  # losses since the last log line
        for step in run.steps(start, tc.steps):
            batch = order.next_batch(tc.batch_size)
            noise = 0.01 * torch.from_numpy(np.random.standard_normal((len(batch), 1))).float()  # noqa: NPY002
            scale = 1.0 + 0.01 * random.random()  # python's global RNG
            loss = ((model(inputs[batch]) - scale * targets[batch] - noise) ** 2).mean()
            if tc.step_sleep:
                time.sleep(tc.step_sleep)  # a signal landing here arrives mid-step
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            window.append(loss.item())
            if run.log_due(step, tc.log_every):
                run.log(
                    step, {"losses/mse": sum(window) / len(window), "charts/window": len(window)}
                )
                window = []
            run.maybe_checkpoint(step + 1, window=window)
        run.save(tc.steps, window=window)
    return run.dir


@entry_point("fault_toy_train")
def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(ToyConfig, None, __doc__, argv, default_preset=None, prog="fault_toy_train")
    print(f"trained: {train(cfg)}")


if __name__ == "__main__":
    main()
