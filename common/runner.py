"""The run every paper trains in: device, seeds, run directory, logging, checkpoints that survive faults.

    with Run(cfg, paper="loqa") as run:
        run.track(model=model, optimizer=optimizer, env_generator=env.generator)
        start = run.restore()                  # 0, or the step after the latest checkpoint (resume=true)
        for step in run.steps(start, cfg.train.iterations):
            ...                                # one whole step: sample, forward, backward, update
            run.log(step, {"losses/actor": loss.item()})
            run.maybe_checkpoint(step + 1)     # the step boundary: every piece of state is consistent
        run.save(cfg.train.iterations)

A run directory ``<out_dir>/<paper>/<name>/`` holds ``config.yaml`` (the resolved config), ``run.json`` (which
paper made it), ``metrics.jsonl``, ``tb/`` (tensorboard), ``checkpoints/`` and ``plots/``, so that an
evaluation needs nothing but the directory.

Exact resume. A checkpoint holds every tracked object's ``state_dict()`` (or a torch.Generator's state), the
python/numpy/torch(/CUDA) global RNG states, the step, the ``extra`` keywords of the call that saved it and
how many lines metrics.jsonl had. Checkpoints are only ever taken at step boundaries: ``maybe_checkpoint``
(call it once per step, after the update, with everything the loop carries across steps that is not a
tracked object as ``extra``: ``run.maybe_checkpoint(step + 1, best_valid=best, window_loss=acc)``, read
back from ``run.extra`` after ``restore()``), the final ``save``, or ``steps()`` itself for a loop that never
calls ``maybe_checkpoint``. So resuming from ANY checkpoint gives bit-identical numbers on CPU, provided
every piece of state that changes during training is tracked or in ``extra``. Each file is written to a
temporary name, fsynced and renamed: a writer killed half-way leaves the previous checkpoint intact.

When. ``maybe_checkpoint(step)`` saves when ``checkpoint_every`` divides ``step``, when ``checkpoint_minutes``
of wall clock passed since the last save (default 5), and when a stop was requested. SIGTERM and SIGINT
(Ctrl-C) inside ``run.steps`` request a stop: the step in flight finishes, a complete checkpoint is saved at
the next boundary, one line goes to stderr and :class:`RunInterrupted` (a ``SystemExit`` with status
128 + signal: 130 for SIGINT, 143 for SIGTERM) unwinds the program without a traceback. A second signal
acts at once (nothing saved; the latest checkpoint stays). A ``KeyboardInterrupt`` that does reach the run
(outside ``steps``, or the second Ctrl-C) saves nothing, says which checkpoint is the latest, and exits 130.

Refusals, each one line, all before the run directory is created or changed:
- ``resume=true`` without a checkpoint (:class:`CheckpointError`), on another paper's run (:class:`RunDirError`),
  or with a config that differs from the saved ``config.yaml`` on any key other than those matching the
  schema's ``resume_may_change`` globs (:class:`common.config.ConfigError` naming the keys; config.yaml is not
  rewritten). Allowed changes (more steps, other logging) are written to config.yaml once validated.
- a fresh run (``resume=false``) whose directory already has checkpoints or metrics (:class:`RunExistsError`):
  pass ``resume=true`` to continue, ``overwrite=true`` to start over (its checkpoints, metrics and tensorboard
  logs are then removed, with one line saying so), or another ``name=``.
- ``device`` that is not there (:class:`common.config.ConfigError`).
An exception inside the ``with`` block before anything was logged or saved removes the directory this run
created, so a bad setting found while building leaves no stray run directory.

Checklist for a paper's ``train.py`` (what exact resume needs):
1. ``run.track(...)`` every object whose state changes during training: models (buffers such as BatchNorm
   statistics and RNN hidden states belong in the module as registered buffers), optimisers, LR schedulers,
   every ``torch.Generator`` (environments' ``env.generator``, sampling, data order), replay/agent buffers,
   data iterators (give them ``state_dict``/``load_state_dict``: order and position), EMA targets.
2. ``start = run.restore()`` after tracking and before the loop; read the loop's carried values back from
   ``run.extra`` (``best = run.extra.get("best_valid", inf)``).
3. ``run.maybe_checkpoint(step + 1, **carried)`` at the END of every step, after the update, with every
   plain value the loop carries across steps (running sums of a log window, early-stopping counters, best
   scores). If some carried value cannot be saved, call it only at steps where nothing is carried (log
   boundaries); signals and the wall clock then wait for that call.
4. ``run.save(total, **carried)`` after the loop. Draw nothing from an untracked generator after
   ``restore()`` (global RNGs are saved: python ``random``, numpy's legacy global, torch's CPU/CUDA).
5. Timing-only values (steps/s) may differ; log them under ``perf/`` (the fault tests ignore that prefix).
6. Wrap ``main`` with ``common.cli.entry_point(prog)`` so a ConfigError/CheckpointError raised by the run
   (a resume with a changed key, an existing run name) is one line with exit status 2.

Other API: ``run.dir``, ``run.device``, ``run.step``, ``run.extra``, ``run.log(step, metrics)``,
``run.log_due(step, every)`` (True every ``every`` steps and at the loop's last step, so a run shorter than
its logging interval still logs), ``run.write_json(name, data)``, ``run.save(step, **extra)``,
``run.stop_requested`` (the signal number or None); module functions ``list_checkpoints``,
``load_checkpoint``, ``load_run_config``, ``check_run_dir(run_dir, paper, need_checkpoint)`` (the one-line
:class:`RunDirError` for an evaluation's ``--run``), ``read_metrics``, ``config_differences``.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from common.config import RESUME_MAY_CHANGE, ConfigError, may_change_on_resume

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)\.pt$")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CheckpointError(RuntimeError):
    """A missing or unreadable checkpoint, named in one line."""


class RunDirError(CheckpointError):
    """Not a run directory, or another paper's run, named in one line."""


class RunExistsError(CheckpointError):
    """A fresh run would replace a run directory that already has checkpoints or metrics."""


class RunInterrupted(SystemExit):
    """SIGINT/SIGTERM stopped the run at a step boundary (checkpoint saved); exit status 128 + signal."""

    def __init__(self, signum: int, checkpoint: Path | None):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.checkpoint = checkpoint


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, CPU otherwise; an explicit request for absent CUDA is an error."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"device={preference} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={preference} requested but CUDA is not available; use device=auto"
        )
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise ConfigError(f"device={preference}: there are only {count} CUDA devices")
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
        raise ConfigError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def keep_freed_memory() -> bool:
    """Asks glibc to serve every allocation from its heap and never hand freed memory back.

    By default glibc maps each allocation over ~32 MB fresh from the kernel and unmaps it when freed,
    so a training loop that allocates the same [B T, 3 H] activations every iteration pays page
    faults on every first touch: ~40% of a 40 MB matrix product's time (LOQA at the paper's sizes,
    bench/loqa.py). With mmap off and no trimming, the second iteration reuses the first one's
    pages. Returns False where this is not glibc (nothing changes there).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))
    except (OSError, AttributeError):
        return False


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


def _load_latest(
    run_dir: Path | str, path: Path | str | None = None
) -> tuple[Path, dict[str, Any]]:
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
            return candidate, torch.load(candidate, map_location="cpu", weights_only=False)
        except Exception as err:
            problems.append(f"{candidate}: {type(err).__name__}")
            print(f"warning: skipping unreadable checkpoint {candidate}", file=sys.stderr)
    raise CheckpointError(f"no readable checkpoint: {'; '.join(problems)}")


def load_checkpoint(run_dir: Path | str, path: Path | str | None = None) -> dict[str, Any]:
    """The latest readable checkpoint of a run (or ``path``); a corrupt newest one falls back to older."""
    return _load_latest(run_dir, path)[1]


def load_run_config(run_dir: Path | str) -> DictConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        return OmegaConf.load(path)
    except Exception as err:
        raise RunDirError(f"{path} is unreadable: {str(err).splitlines()[0]}") from None


def run_paper(run_dir: Path | str) -> str | None:
    """The paper that made a run directory: from run.json, else from the path ``.../<paper>/<name>``."""
    marker = Path(run_dir) / "run.json"
    if marker.is_file():
        try:
            return json.loads(marker.read_text())["paper"]
        except (ValueError, KeyError):
            return None
    return None


def check_run_dir(
    run_dir: Path | str, paper: str | None = None, need_checkpoint: bool = False
) -> DictConfig:
    """The saved config of a run directory, or a one-line :class:`RunDirError` saying what is wrong with it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"no run directory {run_dir}")
    cfg = load_run_config(run_dir)
    made_by = run_paper(run_dir)
    if paper is not None:
        if made_by is not None and made_by != paper:
            raise RunDirError(f"{run_dir} is a {made_by} run, not a {paper} run")
        if made_by is None and paper not in run_dir.resolve().parts:
            raise RunDirError(f"{run_dir} is not a {paper} run (expected .../{paper}/<name>)")
    if need_checkpoint and not list_checkpoints(run_dir):
        raise RunDirError(f"{run_dir} has no checkpoint yet (was it trained to its first save?)")
    return cfg


def config_differences(
    saved: DictConfig | dict, new: DictConfig | dict, may_change: tuple[str, ...] = ()
) -> list[str]:
    """Dotted keys whose values differ between two configs, ignoring keys matching ``may_change`` globs."""
    if isinstance(saved, DictConfig):
        saved = OmegaConf.to_container(saved, resolve=True)
    if isinstance(new, DictConfig):
        new = OmegaConf.to_container(new, resolve=True)
    flat_saved, flat_new = _flatten(saved), _flatten(new)
    differing = []
    for key in sorted(set(flat_saved) | set(flat_new)):
        if may_change_on_resume(key, may_change):
            continue
        if flat_saved.get(key, _MISSING) != flat_new.get(key, _MISSING):
            differing.append(key)
    return differing


_MISSING = object()


def _describe_value(flat: dict[str, Any], key: str) -> str:
    return repr(flat[key]) if key in flat else "absent"


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().item())
    return float(value)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


class Run:
    """One training run: its directory, device, logs and checkpoints. Use it as a context manager."""

    def __init__(
        self,
        cfg: DictConfig,
        paper: str,
        keep_checkpoints: int = 3,
        may_change: tuple[str, ...] | None = None,
    ):
        self.cfg = cfg
        self.paper = paper
        self.keep_checkpoints = keep_checkpoints
        self.dir = Path(cfg.out_dir) / paper / cfg.name
        self.checkpoint_dir = self.dir / "checkpoints"
        self.plots_dir = self.dir / "plots"
        self.step = 0
        self.extra: dict[str, Any] = {}  # the ``extra`` saved with the restored checkpoint
        self.stop_requested: int | None = None  # the signal number once SIGINT/SIGTERM arrived
        self.last_checkpoint: Path | None = None
        self._tracked: dict[str, Any] = {}
        self._writer = None
        self._progress = None
        self._purge_step: int | None = None
        self._start_time = time.time()
        self._last_save_clock = time.monotonic()
        self._checkpoint_calls = 0
        self._metrics_lines = 0
        self._wrote_anything = False
        self._previous_handlers: dict[int, Any] = {}
        self._created: list[Path] = []
        self._total: int | None = None
        if may_change is None:
            schema = OmegaConf.get_type(cfg)
            may_change = getattr(schema, "resume_may_change", RESUME_MAY_CHANGE)
        self.may_change = tuple(may_change)

        # ---- validate everything before the run directory is created or changed ----
        set_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        checkpoints = list_checkpoints(self.dir)
        has_metrics = (self.dir / "metrics.jsonl").exists()
        made_by = run_paper(self.dir)
        if made_by is not None and made_by != paper:
            raise RunDirError(f"{self.dir} is a {made_by} run, not a {paper} run")
        if cfg.resume:
            if not checkpoints:
                fix = (
                    "start it over with overwrite=true instead of resume=true"
                    if has_metrics
                    else "drop resume=true to start a fresh run"
                )
                raise CheckpointError(
                    f"resume=true but there is no checkpoint in {self.checkpoint_dir}; {fix}"
                )
            self._check_resumable()
        elif checkpoints or has_metrics:
            if not cfg.get("overwrite", False):
                what = f"checkpoints up to {checkpoints[-1].stem}" if checkpoints else "metrics"
                raise RunExistsError(
                    f"{self.dir} already has {what}; continue it with resume=true, "
                    "start over with overwrite=true, or choose another name="
                )
            for stale in ("checkpoints", "tb", "metrics.jsonl"):
                target = self.dir / stale
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
            print(
                f"overwrite=true: removed the checkpoints and logs in {self.dir}", file=sys.stderr
            )

        seed_everything(cfg.seed)
        for folder in (self.dir, self.checkpoint_dir, self.plots_dir):
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            self._created.extend(reversed(missing))
        atomic_write_text(OmegaConf.to_yaml(cfg, resolve=True), self.dir / "config.yaml")
        if made_by is None:
            self.write_json("run.json", {"paper": paper, "name": str(cfg.name)})

    def _check_resumable(self) -> None:
        """The resumed config must equal the saved one except on ``may_change`` keys; else one line."""
        saved_path = self.dir / "config.yaml"
        if not saved_path.is_file():
            return  # nothing to compare with (a run dir from before config.yaml existed)
        saved = load_run_config(self.dir)
        differing = config_differences(saved, self.cfg, self.may_change)
        if differing:
            flat_saved = _flatten(OmegaConf.to_container(saved, resolve=True))
            flat_new = _flatten(OmegaConf.to_container(self.cfg, resolve=True))
            shown = ", ".join(
                f"{key} (saved {_describe_value(flat_saved, key)}, now {_describe_value(flat_new, key)})"
                for key in differing[:6]
            )
            more = f" and {len(differing) - 6} more" if len(differing) > 6 else ""
            raise ConfigError(
                f"resume=true with a config that differs from the run's saved config.yaml on "
                f"{shown}{more}; resume with the saved values, or start a new run with another name="
            )

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        if exc_type is None:
            if self.stop_requested is not None:  # a signal arrived after the last step boundary
                self._stop(self.last_checkpoint)
            return False
        if issubclass(exc_type, (Exception, KeyboardInterrupt)) and not self._wrote_anything:
            self._remove_created()  # failed while building: leave no stray run directory
        if issubclass(exc_type, KeyboardInterrupt):
            latest = list_checkpoints(self.dir)
            where = f"the latest checkpoint is {latest[-1]}" if latest else "there is no checkpoint"
            print(
                f"{self.paper}/{self.cfg.name}: interrupted mid-step, nothing saved; {where}",
                file=sys.stderr,
            )
            raise RunInterrupted(signal.SIGINT, latest[-1] if latest else None) from None
        return False

    def close(self) -> None:
        self._restore_signal_handlers()
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _remove_created(self) -> None:
        """Undo the directory a failed run made before it logged or saved anything."""
        if self.dir not in self._created:
            return
        for name in ("config.yaml", "run.json"):
            (self.dir / name).unlink(missing_ok=True)
        for folder in (self.plots_dir, self.checkpoint_dir, self.dir):
            if folder in self._created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        for folder in reversed(self._created):  # the parents this run made, innermost first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self._created = []

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous_handlers:
            return
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # e.g. SIGINT of a background job (`... &`, nohup): it stays ignored
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        """First signal: finish the step, checkpoint, stop. Second: the previous behaviour, at once."""
        self.stop_requested = signum
        previous = self._previous_handlers.pop(signum, signal.SIG_DFL)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    def _stop(self, checkpoint: Path | None, step: int | None = None) -> None:
        signum = self.stop_requested
        self.stop_requested = None
        self.close()
        name = signal.Signals(signum).name
        where = f"saved {checkpoint}" if checkpoint else "nothing to save"
        print(
            f"{self.paper}/{self.cfg.name}: {name} at step {self.step if step is None else step}: {where}; "
            "continue with resume=true",
            file=sys.stderr,
        )
        raise RunInterrupted(signum, checkpoint)

    # ------------------------------------------------------------------ logging
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.dir / "tb"), purge_step=self._purge_step)
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
        self._metrics_lines += 1
        self._wrote_anything = True
        for key, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(key, value, int(step))
        if self._progress is not None:
            shown = {k.split("/")[-1]: f"{v:.4g}" for k, v in list(values.items())[:4]}
            self._progress.set_postfix(shown, refresh=False)

    def log_due(self, step: int, every: int) -> bool:
        """Log at step indices every-1, 2*every-1, ... and at the loop's last step (short runs log too)."""
        return (step + 1) % every == 0 or (self._total is not None and step + 1 == self._total)

    def steps(self, start: int, total: int, desc: str | None = None) -> Iterator[int]:
        """Step indices ``start .. total-1`` with a progress bar; ``self.step`` follows along.

        While it runs, SIGINT and SIGTERM request a checkpoint-and-stop at the next step boundary.
        """
        from tqdm.auto import tqdm

        enabled = self.cfg.progress and sys.stderr.isatty()
        self._total = total
        self._progress = tqdm(
            total=total,
            initial=start,
            desc=desc or f"{self.paper}/{self.cfg.name}",
            disable=not enabled,
        )
        self._install_signal_handlers()
        try:
            for step in range(start, total):
                self.step = step
                calls = self._checkpoint_calls
                yield step
                self.step = step + 1
                self._progress.update(1)
                if self.stop_requested is not None and calls == self._checkpoint_calls == 0:
                    self.save(step + 1)  # a loop without maybe_checkpoint: stop here
        finally:
            self._restore_signal_handlers()
            if self._progress is not None:
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
        """Atomically write ``checkpoints/step_<step>.pt`` with tracked states, RNG states and config.

        Call it at a step boundary only. If SIGINT/SIGTERM arrived, it then stops the run (RunInterrupted).
        """
        state = {
            "step": int(step),
            "paper": self.paper,
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "rng": rng_states(),
            "objects": {
                name: obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
                for name, obj in self._tracked.items()
            },
            "extra": extra,
            "metrics_lines": self._metrics_lines,
            "elapsed_s": time.time() - self._start_time,
        }
        path = self.checkpoint_dir / f"step_{int(step):08d}.pt"
        atomic_torch_save(state, path)
        self._wrote_anything = True
        self.last_checkpoint = path
        self._last_save_clock = time.monotonic()
        for old in list_checkpoints(self.dir)[: -self.keep_checkpoints]:
            old.unlink(missing_ok=True)
        if self.stop_requested is not None:
            self._stop(path, int(step))
        return path

    def maybe_checkpoint(self, step: int, **extra: Any) -> Path | None:
        """Call once per step at its boundary: saves every ``checkpoint_every`` steps, every
        ``checkpoint_minutes`` of wall clock, and when a signal asked to stop (then it stops the run)."""
        self._checkpoint_calls += 1
        every = self.cfg.checkpoint_every
        minutes = self.cfg.get("checkpoint_minutes", 0.0)
        due = (
            (every > 0 and step % every == 0)
            or (minutes > 0 and time.monotonic() - self._last_save_clock >= 60.0 * minutes)
            or self.stop_requested is not None
        )
        return self.save(step, **extra) if due else None

    def restore(self) -> int:
        """With resume=true, load the latest checkpoint into the tracked objects; returns the next step."""
        if not self.cfg.resume:
            return 0
        path, state = _load_latest(self.dir)
        if state.get("paper", self.paper) != self.paper:
            raise RunDirError(f"{path} is a {state['paper']} checkpoint, not a {self.paper} one")
        missing = [name for name in self._tracked if name not in state["objects"]]
        if missing:
            raise CheckpointError(
                f"checkpoint {path} has no state for {', '.join(repr(m) for m in missing)}"
            )
        for name, obj in self._tracked.items():
            try:
                if isinstance(obj, torch.Generator):
                    obj.set_state(state["objects"][name])
                else:
                    obj.load_state_dict(state["objects"][name])
            except (RuntimeError, KeyError, ValueError, TypeError) as err:
                detail = " ".join(str(err).split())[:300]  # torch's size-mismatch list, on one line
                raise CheckpointError(
                    f"checkpoint {path} does not fit '{name}' (was the code changed?): {detail}"
                ) from None
        set_rng_states(state["rng"])
        self.extra = state.get("extra", {})
        self.step = state["step"]
        self.last_checkpoint = path
        self._start_time = time.time() - state.get("elapsed_s", 0.0)  # time_s continues
        self._truncate_metrics(self.step, state.get("metrics_lines"))
        return self.step

    def _truncate_metrics(self, step: int, lines: int | None = None) -> None:
        """Drop metrics logged after the checkpoint, so a resumed run's log reads like an uninterrupted one.

        ``lines`` (saved with the checkpoint) keeps exactly what had been logged when it was taken;
        checkpoints without it keep the records labelled before ``step``.
        """
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            self._metrics_lines = 0
            return
        records = [line for line in path.read_text().splitlines() if _parse_record(line)]
        if lines is not None:
            kept = records[:lines]
        else:
            kept = [line for line in records if _parse_record(line).get("step", 0) < step]
        atomic_write_text("".join(line + "\n" for line in kept), path)
        self._metrics_lines = len(kept)
        last = max((_parse_record(line).get("step", 0) for line in kept), default=None)
        self._purge_step = step if last is None else max(last + 1, 0)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _parse_record(line: str) -> dict[str, Any] | None:
    """One metrics.jsonl record, or None for a blank line or one cut short by a killed writer."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a line cut short by a killed process is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = (_parse_record(line) for line in path.read_text().splitlines())
    return [record for record in records if record is not None]
