"""Configuration of ReaLchords/ReaLJam's agent: data, the three pretrained networks, RL fine-tuning, evaluation.

Presets live in ``realjam/configs/`` (``quick.yaml``: minutes on a CPU; ``full.yaml``: the paper's sizes for a
GPU); ``key=value`` overrides go on top (``mle.steps=200``). Paper references: ReaLJam = arXiv 2502.21267,
ReaLchords = Wu et al., ICML 2024 (and its authors' configs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"
STAGES = ("mle", "teacher", "reward", "rl", "all")


def _positive(section: str, **values: float) -> None:
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"{section}.{key} must be >= 1, got {value}")


@dataclass
class DataConfig:
    crop_frames: int = 128  # training crop in sixteenths (ReaLchords: 256 frames = 64 beats)
    eval_frames: int = 128  # held-out melodies are scored on their first N frames
    eval_samples: int = 3  # sampled accompaniments per held-out melody
    chorale_limit: int = 0  # parse only the first N chorale files (tests); 0 = all 331
    folk_limit: int = 400  # Essen folk tunes parsed for RL prompts and the folk test set
    eval_seed: int = 1234  # the evaluation's own sampling generator

    def __post_init__(self):
        _positive(
            "data",
            crop_frames=self.crop_frames,
            eval_frames=self.eval_frames,
            eval_samples=self.eval_samples,
        )
        if self.crop_frames % 4 or self.eval_frames % 4:
            raise ValueError(
                "data.crop_frames and data.eval_frames must be whole beats (multiples of 4)"
            )


@dataclass
class NetConfig:
    dim: int = 512  # width (ReaLchords: 512)
    layers: int = 8  # decoder layers (ReaLchords: 8; the teacher's encoder gets half as many)
    heads: int = 8  # attention heads (ReaLchords: 8)
    dropout: float = 0.1  # (ReaLchords: 0.1)

    def __post_init__(self):
        _positive("net", dim=self.dim, layers=self.layers, heads=self.heads)
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class PretrainConfig:
    steps: int = 30000  # optimiser steps (ReaLchords: 30k, checkpoint at 11k used)
    batch_size: int = 64  # crops per step (ReaLchords: 64)
    lr: float = 1e-4  # AdamW peak learning rate (ReaLchords: 1e-4)
    weight_decay: float = 0.0  # (ReaLchords: 0)
    warmup: int = 100  # linear warm-up steps, then cosine decay to 10% (ours)
    log_every: int = 10  # steps between metric lines

    def __post_init__(self):
        _positive(
            "pretrain", steps=self.steps, batch_size=self.batch_size, log_every=self.log_every
        )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class RewardConfig:
    harmony: float = 1.0  # rule: per frame whose sounding melody note is a chord tone (ours)
    contrastive: float = 1.0  # model: cosine(melody, chords) paid on every frame (ReaLchords: 1.0)
    silence: float = 1.0  # rule: per silent chord frame against a sounding melody (authors' code)
    silence_allowance: float = (
        0.04  # silence is free below this fraction of frames (authors' code: 4%)
    )
    repeat: float = (
        1.0  # rule: per 4th+ consecutive strike of one chord (authors' code: threshold 4)
    )
    change: float = 0.3  # rule: per change after a chord shorter than min_hold frames (ours)
    min_hold: int = (
        2  # frames a chord should last before a change is free: an eighth, the labels' rate (ours)
    )


@dataclass
class RLConfig:
    updates: int = 1000  # policy updates (ReaLchords: 1000 PPO steps)
    batch_size: int = 384  # rollouts per update (ReaLchords: rollout batch 384)
    frames: int = 256  # frames per rollout (ReaLchords: 256)
    lr: float = 5e-6  # actor and critic Adam lr (ReaLchords: actor 5e-6, critic 9e-5)
    temperature: float = 0.99  # rollout sampling temperature (ReaLchords: 0.99)
    kl_teacher: float = (
        0.001  # beta: KL(pi || teacher) per chord token (ReaLchords: 0.001 to the anchor)
    )
    kl_start: float = 0.0  # KL(pi || pi_MLE) per chord token (ours; 0 = off)
    gae_lambda: float = (
        0.95  # (ReaLchords: 0.95, gamma 1; 0.5 starved harmony of credit in our calibration)
    )
    gamma: float = 1.0  # discount of the per-frame rewards (ReaLchords: 1)
    group: int = 1  # rollouts per prompt melody; > 1: leave-one-out group baseline instead of the value head (ours)
    value_coef: float = 0.5  # weight of the value regression (ours)
    grad_clip: float = 1.0  # global gradient-norm clip (ours)
    folk_fraction: float = (
        0.5  # share of folk melodies among the prompts, the rest chorale sopranos (ours)
    )
    mle_run: str = ""  # run directory of the pretrained online model (stage=rl)
    teacher_run: str = ""  # run directory of the offline teacher (stage=rl)
    reward_run: str = (
        ""  # run directory of the contrastive reward model (stage=rl; "" = no model reward)
    )
    log_every: int = 5  # updates between metric lines
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self):
        _positive(
            "rl",
            updates=self.updates,
            batch_size=self.batch_size,
            frames=self.frames,
            log_every=self.log_every,
        )
        _positive("rl", group=self.group)
        if self.batch_size % self.group:
            raise ValueError(
                f"rl.batch_size ({self.batch_size}) must be a multiple of rl.group ({self.group})"
            )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"rl.gamma must be in (0, 1], got {self.gamma}")
        if not 0 <= self.folk_fraction <= 1:
            raise ValueError(f"rl.folk_fraction must be in [0, 1], got {self.folk_fraction}")


@dataclass
class ReproduceConfig:
    seeds: list[int] = field(default_factory=lambda: [0])  # seeds of the whole pipeline
    workers: int = (
        2  # processes training independent stages at once (mle || teacher+reward, rl || rl_hack)
    )
    hack_control: bool = (
        True  # also train the reward-hacking control: no change penalty, weak KL (ours)
    )
    hack_change: float = 0.0  # the control's rl.rewards.change
    hack_kl_teacher: float = 0.02  # the control's rl.kl_teacher (the calibration's hacked run)
    hack_kl_start: float = 0.0  # the control's rl.kl_start (no pull back to the MLE model)
    reuse: bool = (
        False  # reuse finished pretraining runs with the same settings (to re-tune RL only)
    )
    latency_beats: int = 64  # simulated live jam per latency benchmark; 0 skips it


@dataclass
class RealJamConfig(BaseConfig):
    stage: str = "all"  # mle | teacher | reward | rl | all (all: each stage in <name>/<stage>)
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)  # online model and teacher
    reward_net: NetConfig = field(
        default_factory=NetConfig
    )  # contrastive reward model's two encoders
    mle: PretrainConfig = field(default_factory=PretrainConfig)
    teacher: PretrainConfig = field(default_factory=PretrainConfig)
    reward: PretrainConfig = field(default_factory=PretrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
