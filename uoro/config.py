"""The typed config schema of the uoro package (presets in ``uoro/configs/``).

Comments cite Cooijmans & Martens, arXiv:1902.02405, by the topic of the section (we have not read the PDF's
numbering), or say "ours": the paper's tasks, sizes and learning rates are unknown to us.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class ModelConfig:
    cell: str = "tanh"  # "Projecting in preactivation space": the vanilla RNN p = W [h; x; 1]; "gru" is ours
    n_hidden: int = 32  # ours: hidden units of the training runs and the per-step NMSE experiment
    spectral_radius: float = 0.9  # ours: spectral radius of the recurrent matrix at initialisation
    dtype: str = "float64"  # ours: float64 so that rounding never masks a variance

    def __post_init__(self):
        _check(
            self.cell in ("tanh", "gru"), f"model.cell must be 'tanh' or 'gru', got '{self.cell}'"
        )
        _check(self.n_hidden >= 1, f"model.n_hidden must be >= 1, got {self.n_hidden}")
        _check(
            self.spectral_radius > 0,
            f"model.spectral_radius must be > 0, got {self.spectral_radius}",
        )
        _check(
            self.dtype in ("float64", "float32"),
            f"model.dtype must be float64|float32, got '{self.dtype}'",
        )


@dataclass
class TaskConfig:
    kind: str = "copy"  # ours: "copy" (delayed recall of random symbols) or "chars" (ABC text)
    lag: int = 4  # ours: the copy task's delay
    n_symbols: int = 4  # ours: the copy task's alphabet (the chars task uses its own vocabulary)
    max_chars: int = (
        300_000  # ours: characters of music21's bundled ABC corpus used by the chars task
    )

    def __post_init__(self):
        _check(
            self.kind in ("copy", "chars"),
            f"task.kind must be 'copy' or 'chars', got '{self.kind}'",
        )
        _check(self.lag >= 1, f"task.lag must be >= 1, got {self.lag}")
        _check(self.n_symbols >= 2, f"task.n_symbols must be >= 2, got {self.n_symbols}")


@dataclass
class UoroOptions:
    eps: float = 1e-7  # Tallec & Ollivier's rescaling: epsilon in the numerators and denominators
    future_decay: float = 0.9  # ours (uoro.variants): EMA decay of the future-gradient metric D
    future_horizon: float = 0.9  # ours: discount of the propagated term A^T D A in D's recursion
    shaping_floor: float = 0.05  # ours: D is mixed with this much identity before shaping the noise
    shaping_every: int = 1  # ours: steps between recomputations of the noise-shaping matrix
    metric_group: int = (
        1  # ours: consecutive streams (of one seed) pooling their statistics D and G
    )


@dataclass
class TrainConfig:
    estimator: str = (
        "uoro"  # rtrl | tbptt | uoro | uoro_no_rho | uoro_preact | uoro_noproj | ours (variants)
    )
    truncation: int = 1  # ours: TBPTT truncation length (estimator=tbptt), a biased baseline
    steps: int = 20_000  # ours: fully online steps (one update per step)
    streams: int = (
        4  # ours: parallel input streams per seed (their gradient estimates are averaged)
    )
    seeds: int = (
        4  # ours: seeds trained as one batch; comparisons are reported as spreads over them
    )
    lr: float = 1e-3  # ours: Adam; 1e-3 was best for UORO on the copy task (3e-3 fails)
    clip: float = 1.0  # ours: clip each seed's gradient at this norm
    log_every: int = 100  # ours: steps per logged loss (mean over the window)
    final_window: int = 1000  # ours: the final loss is the mean over the last this many steps

    def __post_init__(self):
        for name in ("steps", "streams", "seeds", "truncation", "log_every"):
            _check(
                getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}"
            )
        _check(self.final_window >= self.log_every,
               f"train.final_window must be >= train.log_every, got {self.final_window}")  # fmt: skip
        _check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")


@dataclass
class TotalConfig:
    hidden_sizes: list[int] = field(
        default_factory=lambda: [16, 32]
    )  # ours: the oracle experiment's sizes
    steps: int = 100  # ours: T of the fixed trajectory
    streams: int = 1000  # ours: R noise streams per estimator (the issue asks R >= 400)
    mean_of: int = (
        4  # ours: UORO is also run with R x mean_of streams to form means of 4 (a control)
    )
    n_in: int = 4  # ours: Gaussian inputs of this dimension
    lag: int = 3  # ours: the target is x_{t - lag}, squared error through a fixed readout
    spectral_radius: float = 0.9  # ours
    geometric_grid: int = (
        401  # "Toward improved variance reduction": alpha_t = c^t, c on a grid of log c
    )
    joint_rounds: int = 30  # alternations of alpha_t and Q0 = B^{-1/4} for the joint optimum
    reinforce_hidden: int = 16  # "A link to REINFORCE": hidden size of the REINFORCE comparison
    reinforce_sigmas: list[float] = field(
        default_factory=lambda: [0.1, 0.01, 0.001]
    )  # noise levels

    def __post_init__(self):
        _check(
            all(n >= 2 for n in self.hidden_sizes),
            f"total.hidden_sizes must be >= 2, got {self.hidden_sizes}",
        )
        _check(self.streams >= 2, f"total.streams must be >= 2, got {self.streams}")
        _check(
            self.steps > self.lag >= 1,
            f"total.steps must exceed total.lag >= 1, got {self.steps}, {self.lag}",
        )
        _check(self.mean_of >= 1, f"total.mean_of must be >= 1, got {self.mean_of}")
        _check(all(s > 0 for s in self.reinforce_sigmas), "total.reinforce_sigmas must be > 0")


@dataclass
class VarianceConfig:  # ours: the per-step NMSE view, secondary to the total variance
    steps: int = 300  # ours: T of the fixed trajectory
    streams: int = 100  # ours: R noise streams per estimator
    control_streams: int = 1000  # ours: streams of the biased rank-one TBPTT(1) control
    rank: int = 4  # ours: rank-k averaging control (k independent UORO pairs)
    radii: list[float] = field(
        default_factory=lambda: [0.5, 0.9, 1.1]
    )  # ours: spectral radius sweep
    main_radius: float = 0.9  # ours: the radius of the main comparison
    hidden_sizes: list[int] = field(default_factory=lambda: [16, 32, 64])  # ours: hidden-size sweep
    reinforce_sigmas: list[float] = field(default_factory=lambda: [0.1, 0.01, 0.001])  # ours
    truncations: list[int] = field(default_factory=lambda: [1, 4, 16])  # ours: TBPTT(k) baselines
    trained_steps: int = 500  # ours: also measure at theta after this many RTRL steps (0: skip)
    trained_lr: float = 1e-3  # ours: Adam lr of those RTRL steps
    window_start: float = 0.5  # ours: NMSE and bias pool the steps t >= window_start * steps


@dataclass
class CostConfig:
    hidden_sizes: list[int] = field(
        default_factory=lambda: [32, 64, 128]
    )  # "Projecting in preactivation space"
    streams: int = 4  # ours: streams per timed step
    steps: int = 20  # ours: timed steps per repeat
    repeats: int = 5  # ours: the time per step is the best of this many repeats


@dataclass
class ReproduceConfig:
    experiments: list[str] = field(
        default_factory=lambda: ["total", "cost", "nmse", "train"]
    )  # what runs
    training: list[str] = field(
        default_factory=lambda: ["rtrl", "tbptt1", "uoro", "uoro_noproj", "uoro_shaped"]
    )  # ours: estimators trained on the copy task (uoro_shaped is ours, not the paper's)
    rtrl_seeds: int = 1  # ours: RTRL costs ~n times UORO per step; one seed suffices for its check
    rtrl_n_hidden: int = 32  # ours: RTRL trains only up to this size
    char_steps: int = 0  # ours: online steps per estimator on the ABC character task (0 skips it)
    char_estimators: list[str] = field(
        default_factory=lambda: ["tbptt", "uoro", "uoro_shaped"]
    )  # ours

    def __post_init__(self):
        known = {"total", "cost", "nmse", "train"}
        _check(set(self.experiments) <= known,
               f"reproduce.experiments must be among {sorted(known)}, got {self.experiments}")  # fmt: skip


@dataclass
class UoroConfig(BaseConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    uoro: UoroOptions = field(default_factory=UoroOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    total: TotalConfig = field(default_factory=TotalConfig)
    variance: VarianceConfig = field(default_factory=VarianceConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)


def dtype_of(name: str):
    import torch

    dtypes = {"float64": torch.float64, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got '{name}'")
    return dtypes[name]
