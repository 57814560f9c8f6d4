"""The Coconet experiment schema: every setting typed, with its default and the spec section it comes from.

Presets live in ``coconet/configs/`` (``quick.yaml``: minutes on a CPU; ``full.yaml``: the paper's 64 x 128
network, for a GPU); ``key=value`` overrides go on top (``train.steps=200``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    crop_len: int = (
        32  # training crop in sixteenths: 64 in the paper, 32 in magenta's recipe (spec 2.1)
    )
    valid_masks_per_piece: int = 20  # fixed crops + orderless masks per validation piece (spec 5)
    valid_pieces: int = (
        0  # validate on the first N validation pieces only; 0 = all (tests shrink it)
    )
    valid_seed: int = 123  # magenta validates with fixed-seed crops and masks (spec 2.4)
    baseline_masks_per_piece: int = 8  # training crops that tune the copy-neighbour smoothing


@dataclass
class ModelConfig:
    layers: int = 64  # conv layers L: 64 in the paper's released model (spec 2.3)
    filters: int = 128  # channels F: 128 in the paper's released model (spec 2.3)
    bn_momentum: float = 0.1  # torch BN momentum; magenta's decay 0.99 = 0.01 (spec 2.3)


@dataclass
class TrainConfig:
    steps: int = 30000  # Adam steps; the paper's training length is unknown, ~30k cap (spec 3)
    batch_size: int = 20  # crops per step (spec 2.4)
    lr: float = (
        1e-3  # Adam; magenta's 2^-4 is TF-specific, 1e-3 from the sweep the spec asks (spec 3)
    )
    eval_every: int = 500  # steps between validations ("epochs" for the plateau rule below)
    lr_patience: int = (
        5  # halve lr after this many validations without improvement; 0 = off (spec 2.4)
    )
    stop_patience: int = (
        25  # stop after this many validations without improvement; 0 = off (spec 2.4)
    )


@dataclass
class SampleConfig:
    num_samples: int = 32  # fixed-seed samples per method (issue 6 check)
    length: int = 32  # sixteenths per unconditional sample
    temperature: float = 1.0  # softmax temperature (magenta 0.99; spec 6 C4 uses 1.0)
    gibbs_steps: int = 0  # N blocked-Gibbs steps; 0 = T*I, magenta's default (spec 2.6)
    pmax: float = 0.9  # Yao schedule start block fraction (spec 2.6)
    pmin: float = 0.1  # Yao schedule floor (spec 2.6)
    eta: float = 0.7  # Yao schedule: fraction of the N steps spent annealing (spec 2.6)
    score_orderings: int = (
        2  # random orderings in the notewise-NLL ensemble scoring samples (spec 6 C4)
    )
    seed: int = (
        2017  # samples use their own generator: the same 32 samples for any training run length
    )


@dataclass
class EvalConfig:
    notewise_crops: int = 16  # validation crops scored by the exact chain rule (crop-level, spec 3)
    ensemble: int = 5  # orderings averaged in probability space (spec 2.5)
    low_mask: float = 0.25  # "little masked" bin: mask fraction below this (issue 6)
    high_mask: float = 0.75  # "mostly masked" bin: mask fraction above this (issue 6)


@dataclass
class CoconetConfig(BaseConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
