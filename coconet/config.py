"""The Coconet experiment schema: every setting typed, with its default and where in the paper it comes from.

Huang, Cooijmans, Roberts, Courville, Eck, *Counterpoint by Convolution*, ISMIR 2017, arXiv 1903.07227.
Presets live in ``coconet/configs/`` (``quick.yaml``: minutes on a CPU; ``medium.yaml``: the best model two
CPU cores train in an hour, the one shipped ready to use; ``full.yaml``: the paper's 64 x 128 network, for
a GPU); ``key=value`` overrides go on top (``train.steps=200``). The defaults here are the paper's (or the
authors' released code's, where the paper gives no number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _in_unit_interval(name: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


@dataclass
class DataConfig:
    crop_len: int = 32  # training crop in sixteenths: 4 bars (64) in the paper's experiments, 32 in the released recipe
    valid_masks_per_piece: int = (
        20  # fixed crops + orderless masks per validation piece (likelihood section)
    )
    valid_pieces: int = (
        0  # validate on the first N validation pieces only; 0 = all (tests shrink it)
    )
    valid_seed: int = 123  # the released code validates with fixed-seed crops and masks
    baseline_masks_per_piece: int = (
        8  # training crops that tune the copy-neighbour smoothing (ours)
    )

    def __post_init__(self):
        _at_least("data.crop_len", self.crop_len, 1)
        _at_least("data.valid_masks_per_piece", self.valid_masks_per_piece, 1)
        _at_least("data.valid_pieces", self.valid_pieces, 0)
        _at_least("data.baseline_masks_per_piece", self.baseline_masks_per_piece, 1)


@dataclass
class ModelConfig:
    layers: int = 64  # conv layers L: 64 in the paper's model section
    filters: int = 128  # channels F: 128 in the paper's model section
    bn_momentum: float = 0.1  # torch BN momentum; the released code's decay 0.99 = 0.01
    # Ours, not the paper's: an input plane holding each pitch row's absolute pitch, so that a net whose
    # receptive field spans a few semitones still knows each voice's register (issue: voices left them).
    pitch_channel: bool = False

    def __post_init__(self):
        _at_least("model.layers", self.layers, 4)
        _at_least("model.filters", self.filters, 1)
        _in_unit_interval("model.bn_momentum", self.bn_momentum)


@dataclass
class TrainConfig:
    steps: int = 30000  # Adam steps; the paper does not give its training length
    batch_size: int = 20  # crops per step (the released code's batch)
    lr: float = 1e-3  # Adam; the released code's 2^-4 is TF-specific, 1e-3 from a short sweep
    eval_every: int = 500  # steps between validations ("epochs" for the plateau rule below)
    lr_patience: int = 5  # halve lr after this many validations without improvement; 0 = off
    stop_patience: int = 25  # stop after this many validations without improvement; 0 = off
    # Ours: every this many steps, harmonise a few validation sopranos and log the harmonisation
    # statistics against training time (harmony/* in metrics.jsonl); 0 = off.
    harmony_every: int = 0
    harmony_pieces: int = 8  # validation sopranos harmonised at each of those checks
    harmony_frames: int = 64  # sixteenths of each soprano harmonised there

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            _at_least(f"train.{name}", getattr(self, name), 1)
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        for name in ("lr_patience", "stop_patience", "harmony_every"):
            _at_least(f"train.{name}", getattr(self, name), 0)
        _at_least("train.harmony_pieces", self.harmony_pieces, 1)
        _at_least("train.harmony_frames", self.harmony_frames, 2)


@dataclass
class SampleConfig:
    num_samples: int = 32  # fixed-seed unconditional samples per method (sampling section)
    length: int = 32  # sixteenths per unconditional sample
    temperature: float = (
        1.0  # softmax temperature for the likelihood-scored samples (released code: 0.99)
    )
    gibbs_steps: int = 0  # N blocked-Gibbs steps; 0 = T*I, the released code's default
    pmax: float = 0.9  # Yao et al.'s annealing schedule: starting block fraction (Gibbs section)
    pmin: float = 0.1  # Yao schedule floor (Gibbs section)
    eta: float = 0.7  # Yao schedule: fraction of the N steps spent annealing (Gibbs section)
    score_orderings: int = 2  # random orderings in the notewise-NLL ensemble scoring samples
    seed: int = (
        2017  # samples use their own generator: the same samples for any training run length
    )

    def __post_init__(self):
        _at_least("sample.num_samples", self.num_samples, 2)
        _at_least("sample.length", self.length, 1)
        _at_least("sample.gibbs_steps", self.gibbs_steps, 0)
        _at_least("sample.score_orderings", self.score_orderings, 1)
        if self.temperature <= 0:
            raise ValueError(f"sample.temperature must be > 0, got {self.temperature}")
        _in_unit_interval("sample.pmax", self.pmax)
        _in_unit_interval("sample.pmin", self.pmin)
        if self.pmin > self.pmax:
            raise ValueError(f"sample.pmin ({self.pmin}) must be <= sample.pmax ({self.pmax})")
        _in_unit_interval("sample.eta", self.eta)


@dataclass
class HarmonizeConfig:
    """The harmoniser's default sampling settings (``python -m coconet.harmonize``); the soprano is given
    and alto, tenor and bass are drawn by annealed blocked Gibbs (the paper's harmonisation use case)."""

    temperature: float = (
        0.5  # ours: sampling below 1.0 cuts the conditionals' tails (issue: voice crossing)
    )
    steps_per_frame: float = 1.0  # Gibbs steps N = this x melody length (the Yao schedule's N)

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"harmonize.temperature must be > 0, got {self.temperature}")
        if self.steps_per_frame <= 0:
            raise ValueError(f"harmonize.steps_per_frame must be > 0, got {self.steps_per_frame}")


@dataclass
class EvalConfig:
    notewise_crops: int = 16  # validation crops scored by the exact chain rule (crop-level)
    ensemble: int = 5  # orderings averaged in probability space (the paper's ensemble of orderings)
    low_mask: float = 0.25  # "little masked" bin: mask fraction below this
    high_mask: float = 0.75  # "mostly masked" bin: mask fraction above this
    harmonize_pieces: int = (
        0  # validation sopranos harmonised for the harmonisation statistics; 0 = off
    )
    harmonize_frames: int = 128  # the first this many sixteenths of each soprano

    def __post_init__(self):
        _at_least("eval.notewise_crops", self.notewise_crops, 1)
        _at_least("eval.ensemble", self.ensemble, 1)
        _at_least("eval.harmonize_pieces", self.harmonize_pieces, 0)
        _at_least("eval.harmonize_frames", self.harmonize_frames, 2)
        if not 0 < self.low_mask <= self.high_mask < 1:
            raise ValueError(
                f"need 0 < eval.low_mask <= eval.high_mask < 1, got {self.low_mask}, {self.high_mask}"
            )


@dataclass
class ReproduceConfig:
    """What ``make coconet`` (``python -m coconet.reproduce <scale>``) varies."""

    seeds: list[int] = field(
        default_factory=lambda: [0]
    )  # one training run per seed; results of the first
    audio: bool = True  # render the evaluation's samples to WAV as well as MIDI

    def __post_init__(self):
        if len(self.seeds) < 1:
            raise ValueError("reproduce.seeds must name at least one seed")


@dataclass
class CoconetConfig(BaseConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    harmonize: HarmonizeConfig = field(default_factory=HarmonizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)
