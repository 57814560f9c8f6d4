"""The run every paper trains in: device, seeds, run directory, logging, atomic checkpoints, resume.

    with Run(cfg, paper="loqa") as run:
        run.track(model=model, optimizer=optimizer, env_generator=env.generator)
        start = run.restore()                  # 0, or the step after the latest checkpoint (resume=true)
        for step in run.steps(start, cfg.train.iterations):
            ...
            run.log(step, {"losses/actor": loss.item()})
            run.maybe_checkpoint(step + 1)
        run.save(cfg.train.iterations)

A run directory ``<out_dir>/<paper>/<name>/`` holds ``config.yaml`` (the resolved config), ``metrics.jsonl``,
``tb/`` (tensorboard), ``checkpoints/`` and ``plots/``, so that an evaluation needs nothing but the directory.
Checkpoints hold every tracked object's state and all RNG states, and are written to a temporary file that
is then renamed, so a writer killed half-way leaves the previous checkpoint intact. Resuming on CPU gives the
same numbers as a run that was never interrupted. Ctrl-C saves a checkpoint before the process exits.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A missing or unreadable checkpoint, named in one line."""


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, CPU otherwise; an explicit request for absent CUDA is an error."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={preference} requested but CUDA is not available; use device=auto"
        )
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- legacy global RNG that libraries still draw from
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def set_threads(threads: int) -> None:
    """Fixes torch's CPU thread count: oversubscribing a busy 2-core box is 30-100x slower."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def rng_states() -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(text: str, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def list_checkpoints(run_dir: Path | str) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    if not ckpt_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def load_checkpoint(run_dir: Path | str, path: Path | str | None = None) -> dict[str, Any]:
    """The latest readable checkpoint of a run (or ``path``); a corrupt newest one falls back to older."""
    candidates = [Path(path)] if path is not None else list(reversed(list_checkpoints(run_dir)))
    if not candidates:
        raise CheckpointError(f"no checkpoint in {Path(run_dir) / 'checkpoints'}")
    problems = []
    for candidate in candidates:
        if not candidate.is_file():
            problems.append(f"{candidate}: missing")
            continue
        try:
            # Our own checkpoints carry numpy/python RNG states, which need full unpickling.
            return torch.load(candidate, map_location="cpu", weights_only=False)
        except Exception as err:
            problems.append(f"{candidate}: {type(err).__name__}")
            print(f"warning: skipping unreadable checkpoint {candidate}", file=sys.stderr)
    raise CheckpointError(f"no readable checkpoint: {'; '.join(problems)}")


def load_run_config(run_dir: Path | str) -> DictConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.yaml)")
    return OmegaConf.load(path)


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().item())
    return float(value)


class Run:
    """One training run: its directory, device, logs and checkpoints. Use it as a context manager."""

    def __init__(self, cfg: DictConfig, paper: str, keep_checkpoints: int = 3):
        self.cfg = cfg
        self.paper = paper
        self.keep_checkpoints = keep_checkpoints
        self.dir = Path(cfg.out_dir) / paper / cfg.name
        self.checkpoint_dir = self.dir / "checkpoints"
        self.plots_dir = self.dir / "plots"
        self.step = 0
        self._tracked: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # the ``extra`` saved with the restored checkpoint
        self._writer = None
        self._progress = None
        self._start_time = time.time()

        set_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        seed_everything(cfg.seed)

        has_previous = bool(list_checkpoints(self.dir))
        if cfg.resume and not has_previous:
            raise CheckpointError(
                f"resume=true but there is no checkpoint in {self.checkpoint_dir}; "
                "drop resume=true to start a fresh run"
            )
        if not cfg.resume and self.dir.exists():
            # A fresh run replaces the previous one of the same name (its results stay until rewritten).
            for stale in ("checkpoints", "tb", "metrics.jsonl"):
                target = self.dir / stale
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(OmegaConf.to_yaml(cfg, resolve=True), self.dir / "config.yaml")

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is KeyboardInterrupt and self._tracked:
            path = self.save(self.step)
            print(f"\ninterrupted: saved {path}; continue with resume=true", file=sys.stderr)
        self.close()
        return False

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ logging
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.dir / "tb"), purge_step=self.step or None)
            rows = "\n".join(
                f"|{k}|{v}|"
                for k, v in _flatten(OmegaConf.to_container(self.cfg, resolve=True)).items()
            )
            self._writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")
        return self._writer

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Append to metrics.jsonl, write tensorboard scalars and show them on the progress bar."""
        values = {k: _to_float(v) for k, v in metrics.items()}
        record = {"step": int(step), "time_s": round(time.time() - self._start_time, 3), **values}
        with open(self.dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(key, value, int(step))
        if self._progress is not None:
            shown = {k.split("/")[-1]: f"{v:.4g}" for k, v in list(values.items())[:4]}
            self._progress.set_postfix(shown, refresh=False)

    def steps(self, start: int, total: int, desc: str | None = None) -> Iterator[int]:
        """Step indices ``start .. total-1`` with a progress bar; ``self.step`` follows along."""
        from tqdm.auto import tqdm

        enabled = self.cfg.progress and sys.stderr.isatty()
        self._progress = tqdm(
            total=total,
            initial=start,
            desc=desc or f"{self.paper}/{self.cfg.name}",
            disable=not enabled,
        )
        for step in range(start, total):
            self.step = step
            yield step
            self.step = step + 1
            self._progress.update(1)
        self._progress.close()
        self._progress = None

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        path = self.dir / name
        atomic_write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", path)
        return path

    # ------------------------------------------------------------------ checkpoints
    def track(self, **objects: Any) -> None:
        """Register objects saved in every checkpoint: anything with state_dict(), or a torch.Generator."""
        for name, obj in objects.items():
            if not (isinstance(obj, torch.Generator) or hasattr(obj, "state_dict")):
                raise TypeError(
                    f"cannot checkpoint '{name}': no state_dict() and not a torch.Generator"
                )
            self._tracked[name] = obj

    def save(self, step: int, **extra: Any) -> Path:
        """Atomically write ``checkpoints/step_<step>.pt`` with tracked states, RNG states and config."""
        state = {
            "step": int(step),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "rng": rng_states(),
            "objects": {
                name: obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
                for name, obj in self._tracked.items()
            },
            "extra": extra,
        }
        path = self.checkpoint_dir / f"step_{int(step):08d}.pt"
        atomic_torch_save(state, path)
        for old in list_checkpoints(self.dir)[: -self.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def maybe_checkpoint(self, step: int, **extra: Any) -> Path | None:
        every = self.cfg.checkpoint_every
        if every > 0 and step % every == 0:
            return self.save(step, **extra)
        return None

    def restore(self) -> int:
        """With resume=true, load the latest checkpoint into the tracked objects; returns the next step."""
        if not self.cfg.resume:
            return 0
        state = load_checkpoint(self.dir)
        for name, obj in self._tracked.items():
            if name not in state["objects"]:
                raise CheckpointError(
                    f"checkpoint in {self.checkpoint_dir} has no state for '{name}'"
                )
            if isinstance(obj, torch.Generator):
                obj.set_state(state["objects"][name])
            else:
                obj.load_state_dict(state["objects"][name])
        set_rng_states(state["rng"])
        self.extra = state.get("extra", {})
        self.step = state["step"]
        self._truncate_metrics(self.step)
        return self.step

    def _truncate_metrics(self, step: int) -> None:
        """Drop metrics logged after the checkpoint, so a resumed run's log reads like an uninterrupted one."""
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] < step]
        atomic_write_text("".join(line + "\n" for line in kept), path)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
