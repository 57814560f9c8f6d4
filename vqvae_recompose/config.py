"""The harmonic-recomposition schema (Kastner et al., arXiv 1811.07426): every setting typed, with its default
and where it comes from. Defaults are the paper's sizes (Sec. 2); ``configs/quick.yaml`` shrinks them for a CPU.

    python -m vqvae_recompose.train --config quick vqvae.steps=200 prior.steps=100
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from common.config import RESUME_MAY_CHANGE, BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass
class DataConfig:
    pitch_low: int = (
        33  # lowest pitch row (MIDI); lower notes fold up an octave (ours; paper: data's range)
    )
    n_pitches: int = 52  # pitch rows: 49 in the paper's Josquin data padded to 52 (Sec. 2)
    min_chord_count: int = 5  # chords rarer in train share one "other" id (ours; paper: no cut-off)
    valid_split: str = "valid"  # held-out split: chord-sequence source and validation set (Sec. 3)

    def __post_init__(self):
        _check(
            self.n_pitches % 4 == 0 and self.n_pitches >= 12,
            f"data.n_pitches must be a multiple of 4 and >= 12, got {self.n_pitches}",
        )
        _check(
            self.valid_split in ("valid", "test"),
            f"data.valid_split must be valid or test, got {self.valid_split}",
        )
        _check(
            self.min_chord_count >= 1,
            f"data.min_chord_count must be >= 1, got {self.min_chord_count}",
        )


@dataclass
class VQVAEConfig:
    widths: list[int] = field(
        default_factory=lambda: [64, 128, 257, 256]
    )  # encoder channels (Sec. 2)
    codebook_size: int = 256  # K (Sec. 2)
    code_dim: int = 256  # codebook vector size = last encoder width (Sec. 2)
    beta: float = 0.25  # commitment weight (Sec. 2, VQ-VAE eq. 3)
    lr: float = 2e-4  # Adam (Sec. 2)
    steps: int = 50000  # minibatches (Sec. 2)
    batch_size: int = 64  # (Sec. 2)

    def __post_init__(self):
        _check(len(self.widths) == 4, f"vqvae.widths must have 4 entries, got {list(self.widths)}")
        _check(
            self.codebook_size >= 1, f"vqvae.codebook_size must be >= 1, got {self.codebook_size}"
        )
        _check(self.steps >= 1, f"vqvae.steps must be >= 1, got {self.steps}")
        _check(
            self.batch_size >= 2,
            f"vqvae.batch_size must be >= 2 (batch norm), got {self.batch_size}",
        )


@dataclass
class PriorConfig:
    layers: int = 15  # gated layers (Sec. 2)
    channels: int = 64  # (Sec. 2)
    first_kernel: int = 5  # type-A layer, 5x5 in the paper (the authors' code: 7x7) (Sec. 2)
    kernel: int = 3  # type-B residual layers (Sec. 2)
    lr: float = 2e-4  # Adam (Sec. 2)
    steps: int = 100000  # minibatches (Sec. 2)
    batch_size: int = 50  # (Sec. 2)
    spatial: bool = (
        True  # also train the variant conditioned on the previous measure's codes (Sec. 3)
    )

    def __post_init__(self):
        _check(self.layers >= 1, f"prior.layers must be >= 1, got {self.layers}")
        _check(
            self.first_kernel % 2 == 1 and self.kernel % 2 == 1,
            "prior.first_kernel and prior.kernel must be odd",
        )
        _check(self.steps >= 1, f"prior.steps must be >= 1, got {self.steps}")


@dataclass
class TrainConfig:
    eval_every: int = 250  # steps between validation metrics (ours)
    valid_batch: int = 512  # validation measures per forward pass (ours; memory only)

    def __post_init__(self):
        _check(self.eval_every >= 1, f"train.eval_every must be >= 1, got {self.eval_every}")


@dataclass
class SampleConfig:
    temperature: float = 1.0  # softmax temperature of the prior (Sec. 3: 1.0 in the authors' code)
    per_measure: int = (
        3  # samples per validation measure for chord adherence (issue 17: >= 870 in all)
    )
    threshold: float = (
        0.5  # a voice sounds its likeliest pitch when its probability exceeds this (ours)
    )
    seed: int = 1234  # the samples' own generator (ours)
    valid_measures: int = (
        0  # sample for the first N validation measures only; 0 = all (tests shrink it)
    )

    def __post_init__(self):
        _check(self.temperature > 0, f"sample.temperature must be > 0, got {self.temperature}")
        _check(self.per_measure >= 1, f"sample.per_measure must be >= 1, got {self.per_measure}")


@dataclass
class ReproduceConfig:
    seeds: list[int] = field(
        default_factory=lambda: [0]
    )  # training seeds of `make vqvae_recompose`


@dataclass
class RecomposeConfig(BaseConfig):
    # a resumed run may train its priors longer; vqvae.steps moves the stage boundary, so it may not change
    resume_may_change: ClassVar[tuple[str, ...]] = (*RESUME_MAY_CHANGE, "prior.steps")

    data: DataConfig = field(default_factory=DataConfig)
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)
