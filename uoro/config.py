"""The typed config schema of the uoro package (presets in ``uoro/configs/``); section numbers cite the
spec ``shared/papers/uoro.md``, since the paper's own settings are unknown to us (only its abstract was read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelConfig:
    cell: str = "tanh"  # §3: vanilla tanh RNN ("tanh") or a small GRU ("gru")
    n_hidden: int = 32  # §4: n = 32 in the quick configuration
    spectral_radius: float = 0.9  # §3: spectral radius of the recurrent matrix at initialisation
    dtype: str = (
        "float64"  # §8 pitfall: float64 for variance studies (float32 allowed for training)
    )


@dataclass
class TaskConfig:
    kind: str = (
        "copy"  # §3: "copy" (delayed recall of a random symbol stream) or "chars" (ABC text)
    )
    lag: int = 4  # §4: copy task with lag 4
    n_symbols: int = 4  # §4: input/output dimension 4 (the chars task uses its own vocabulary)
    max_chars: int = 300_000  # chars task: characters of music21's bundled ABC corpus used (ours)


@dataclass
class UoroOptions:
    eps: float = 1e-7  # §2.3 step 6: small epsilon in the rho numerators and denominators
    future_decay: float = 0.9  # ours: EMA decay of the future-gradient metric D (shaped / grad-rho)
    future_horizon: float = 0.9  # ours: discount of the propagated term A^T D A in D's recursion
    shaping_floor: float = 0.05  # ours: D is mixed with this much identity before shaping the noise
    shaping_every: int = 1  # ours: steps between recomputations of the noise-shaping matrix
    metric_group: int = (
        1  # ours: consecutive streams (of one seed) pooling their statistics D and G
    )


@dataclass
class TrainConfig:
    estimator: str = (
        "uoro"  # §2.5: rtrl | tbptt | uoro | uoro_no_rho | uoro_blockwise | ... | uoro_shaped
    )
    truncation: int = 1  # §2.5 E7: TBPTT truncation length (estimator=tbptt)
    steps: int = 20_000  # §4: 20k online steps
    streams: int = 4  # §4: 4 parallel streams per seed (their gradients are averaged)
    seeds: int = 4  # issue 7: at least 4 seeds for the UORO comparison; seeds run batched
    lr: float = 1e-3  # §3: Adam; calibration found 1e-3 best for UORO (3e-3 fails)
    clip: float = 1.0  # §3: clip each seed's gradient at norm 1
    log_every: int = 100  # steps per logged loss (mean over the window)
    final_window: int = 1000  # the final loss is the mean over the last this many steps


@dataclass
class VarianceConfig:
    steps: int = 300  # §4: T_run
    streams: int = 100  # §4: R noise streams per estimator
    control_streams: int = 1000  # issue 7: the TBPTT(1) control uses 1000 streams
    rank: int = 4  # §2.5 E5: rank-k averaging control (k independent UORO pairs)
    radii: list[float] = field(default_factory=lambda: [0.5, 0.9, 1.1])  # §3 spectral radius sweep
    main_radius: float = 0.9  # §6: the radius of the main comparison
    hidden_sizes: list[int] = field(default_factory=lambda: [16, 32, 64])  # §3 hidden-size sweep
    reinforce_sigmas: list[float] = field(default_factory=lambda: [0.1, 0.01, 0.001])  # §2.5 E6
    truncations: list[int] = field(default_factory=lambda: [1, 4, 16])  # §2.5 E7
    trained_steps: int = 500  # §2.5: also measure at theta after this many RTRL steps (0: skip)
    trained_lr: float = 1e-3  # Adam lr of those RTRL steps
    window_start: float = 0.5  # NMSE and bias pool the steps t >= window_start * steps


@dataclass
class ReproduceConfig:
    rtrl_seeds: int = 1  # ours: RTRL costs ~n times UORO per step; one seed suffices for its check
    rtrl_n_hidden: int = (
        32  # §3: RTRL trains only up to n = 64 (the other estimators use model.n_hidden)
    )
    reduced_estimator: str = "uoro_shaped"  # issue 7: the variance-reduced UORO trained beside UORO
    char_steps: int = 0  # §3 character-level task: online steps per estimator (0 skips it)
    char_estimators: list[str] = field(
        default_factory=lambda: ["tbptt", "uoro", "uoro_shaped"]
    )  # §3: estimators trained on the character task (RTRL only where affordable)


@dataclass
class UoroConfig(BaseConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    uoro: UoroOptions = field(default_factory=UoroOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    variance: VarianceConfig = field(default_factory=VarianceConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)


def dtype_of(name: str):
    import torch

    dtypes = {"float64": torch.float64, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got '{name}'")
    return dtypes[name]
