"""LOQA's configuration schema: one game's training run, and what `make loqa` varies.

Every field cites the paper (arXiv 2405.01035: Algorithm 1 and 2, and the hyperparameters of its
appendix) or the authors' released code where the paper is silent; "ours" marks our quick-run choices
(see the README's deviations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from common.config import RESUME_MAY_CHANGE, BaseConfig, check_choice, check_range

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = ("ipd", "coin")


@dataclass
class EnvConfig:
    game: str = "ipd"  # ipd | coin, the paper's two environments
    episode_length: int = 50  # T = 50 in the paper's runs (appendix)
    grid_size: int = 3  # Coin Game grid, 3x3 for the headline results (appendix)
    epsilon: float = (
        0.2  # epsilon-greedy on both seats in training rollouts; IPD 0.2, coin 0 (appendix)
    )

    def __post_init__(self):
        check_choice("env.game", self.game, GAMES)
        check_range("env.episode_length", self.episode_length, low=2)
        check_range("env.grid_size", self.grid_size, low=2)
        check_range("env.epsilon", self.epsilon, low=0.0, high=1.0)


@dataclass
class ModelConfig:
    actor: str = "tabular"  # tabular (IPD logits, zero init) | gru (POLA-style GRU) (authors' code)
    actor_hidden: int = 64  # GRU actor width; paper coin 128 (appendix)
    actor_pre_layers: int = 1  # linear layers before the GRU; paper coin 2 (appendix)
    actor_init_std: float = 0.0  # tabular logits init std; 0 = the paper's zeros (authors' code)
    critic: str = "mlp"  # mlp (IPD 16-16-A) | gru (coin) (authors' code)
    critic_hidden: int = 16  # IPD MLP 16; coin GRU 64 (appendix)
    critic_pre_layers: int = 2  # GRU critic pre-layers; paper 2 (appendix)
    raw_time: bool = False  # critic sees the raw step t as the authors' code; false = t/T (ours)

    def __post_init__(self):
        check_choice("model.actor", self.actor, ("tabular", "gru"))
        check_choice("model.critic", self.critic, ("mlp", "gru"))
        check_choice("model.actor_pre_layers", self.actor_pre_layers, (1, 2))
        check_choice("model.critic_pre_layers", self.critic_pre_layers, (1, 2))
        check_range("model.actor_hidden", self.actor_hidden, low=1)
        check_range("model.critic_hidden", self.critic_hidden, low=1)


@dataclass
class LossConfig:
    shaping_weight: float = (
        1.0  # w on L_opp (opponent_differentiation_weight); 0 = naive AC (Alg. 1)
    )
    gamma: float = 0.96  # discount (appendix)
    dice_lambda: float = 0.9  # loaded-DiCE lambda (Alg. 2)
    temperature: float = 1.0  # tau of the Q-softmax opponent model (Alg. 2)
    entropy_beta: float = 0.0  # entropy bonus; IPD 0, coin 0.1 (appendix)
    bootstrap_opponent_return: bool = True  # false = authors: un-bootstrapped opponent MC return
    advantage_grad: bool = False  # true mimics the authors' non-detached advantage (authors' code)
    huber_delta: float = 1.0  # critic Huber threshold (Alg. 1)

    def __post_init__(self):
        check_range("loss.gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        check_range("loss.dice_lambda", self.dice_lambda, low=0.0, high=1.0)
        check_range("loss.temperature", self.temperature, low=0.0, low_open=True)
        check_range("loss.huber_delta", self.huber_delta, low=0.0, low_open=True)


@dataclass
class TrainConfig:
    iterations: int = 1000  # outer iterations; the paper reads iteration 6000 (appendix)
    batch_size: int = 512  # parallel episodes per iteration; paper IPD 2048, coin 512 (appendix)
    actor_lr: float = 1e-2  # actor Adam; paper 1e-3, quick IPD 1e-2 (ours)
    critic_lr: float = 1e-2  # critic Adam (appendix)
    actor_clip_norm: float = (
        0.0  # global-norm clip of the actor gradient; 0 = none, coin 1.0 (appendix)
    )
    target_ema: float = 0.99  # EMA decay of the target critic (Alg. 1)
    critic_warmup: int = 0  # first N iterations train only the critic (ours, README)
    buffer_capacity: int = (
        0  # past agents kept as opponents (paper: replay buffer); 0 = current self
    )
    buffer_push_every: int = 10  # push the agent into the buffer every N iterations (appendix)
    opponents_per_batch: int = 8  # distinct buffer samples per batch; authors: one per episode
    rollout_block_opponents: int = (
        0  # opponents whose episodes play in turn; 0 = all (speed only, ours)
    )
    native_rollout: bool = True  # Coin Game episodes in C (loqa/native.py; speed only, ours)
    log_every: int = 10  # iterations between training-scalar logs
    eval_every: int = 50  # iterations between evaluations (paper: 100)
    eval_episodes: int = 128  # Coin Game evaluation episodes (IPD evaluation is exact)

    def __post_init__(self):
        for key in ("iterations", "batch_size", "buffer_push_every", "opponents_per_batch"):
            check_range(f"train.{key}", getattr(self, key), low=1)
        for key in ("log_every", "eval_every", "eval_episodes"):
            check_range(f"train.{key}", getattr(self, key), low=1)
        check_range("train.target_ema", self.target_ema, low=0.0, high=1.0)
        check_range("train.buffer_capacity", self.buffer_capacity, low=0)
        check_range("train.critic_warmup", self.critic_warmup, low=0)
        check_range("train.rollout_block_opponents", self.rollout_block_opponents, low=0)


@dataclass
class EvalConfig:
    league_episodes: int = (
        256  # Coin Game league games per pair; paper 32 (authors' files), ours 256
    )
    horizon: int = 50  # IPD exact-evaluation horizon (undiscounted reward per step) (ours)


@dataclass
class LoqaConfig(BaseConfig):
    # A resume may also change how many seeds the reproduction trains and how episodes are played
    # (the same episodes either way, tests/loqa/test_fast_iteration.py).
    resume_may_change: ClassVar[tuple[str, ...]] = (
        *RESUME_MAY_CHANGE,
        "n_seeds",
        "control_seeds",
        "train.native_rollout",
        "train.rollout_block_opponents",
    )
    name: str = "ipd_quick"
    n_seeds: int = 3  # reproduce.py trains seeds seed .. seed + n_seeds - 1 (paper: 10)
    control_seeds: int = 0  # seeds of the no-shaping control in reproduce.py; 0 = n_seeds (ours)
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        super().__post_init__()
        check_range("n_seeds", self.n_seeds, low=1)
        check_range("control_seeds", self.control_seeds, low=0)
        if self.model.actor == "tabular" and self.env.game != "ipd":
            raise ValueError(
                f"model.actor=tabular only exists for the IPD, not env.game={self.env.game}"
            )
        if (
            self.train.buffer_capacity > 0
            and self.train.batch_size % self.train.opponents_per_batch
        ):
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"train.opponents_per_batch ({self.train.opponents_per_batch})"
            )


@dataclass
class ReproduceSettings:
    """What `make loqa` varies: the games, and how many runs train at once."""

    games: list[str] = field(default_factory=lambda: list(GAMES))  # ipd, coin or both
    variants: list[str] = field(
        default_factory=lambda: ["loqa", "no_shaping"]
    )  # LOQA and/or its control with loss.shaping_weight=0 (Alg. 1 without L_opp)
    workers: int = 0  # quick runs training at once, one torch thread each; 0 = one per core

    def __post_init__(self):
        if not self.games or any(game not in GAMES for game in self.games):
            raise ValueError(f"reproduce.games must name ipd and/or coin, got {list(self.games)}")
        if "loqa" not in self.variants or any(
            v not in ("loqa", "no_shaping") for v in self.variants
        ):
            raise ValueError(
                f"reproduce.variants must hold loqa (and may hold no_shaping), got {list(self.variants)}"
            )
        check_range("reproduce.workers", self.workers, low=0)


@dataclass
class LoqaReproduceConfig:
    """`make loqa ARGS=...`: `ipd.<key>=v` and `coin.<key>=v` set one game's run config (the
    presets <game>_<scale>.yaml), `reproduce.<key>=v` the settings above."""

    reproduce: ReproduceSettings = field(default_factory=ReproduceSettings)
    ipd: LoqaConfig = field(default_factory=LoqaConfig)
    coin: LoqaConfig = field(default_factory=LoqaConfig)
