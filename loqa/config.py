"""LOQA's configuration schema: one game's training run, and what `make loqa` varies.

Every field cites the paper (arXiv 2405.01035: Algorithm 1 and 2, and the hyperparameters of its
appendix) or the authors' released code where the paper is silent; "ours" marks our quick-run choices
(see the README's deviations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from common.config import BaseConfig, ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = ("ipd", "coin")


@dataclass
class EnvConfig:
    game: str = "ipd"  # ipd | coin (paper §Experiments)
    episode_length: int = 50  # T = 50 in the paper's runs (paper's appendix)
    grid_size: int = 3  # Coin Game grid, 3x3 for the headline results (paper's appendix)
    epsilon: float = 0.2  # epsilon-greedy on both players in training rollouts; IPD 0.2, coin 0 (paper's appendix)


@dataclass
class ModelConfig:
    actor: str = "tabular"  # tabular (IPD logits, zero init) | gru (POLA-style GRU) (authors' code)
    actor_hidden: int = 64  # GRU actor width; paper coin 128 (paper's appendix)
    actor_pre_layers: int = 1  # linear layers before the GRU; paper coin 2 (paper's appendix)
    actor_init_std: float = 0.0  # tabular logits init std; 0 = the paper's zeros (authors' code)
    critic: str = "mlp"  # mlp (IPD 16-16-A) | gru (coin) (authors' code)
    critic_hidden: int = 16  # IPD MLP 16; coin GRU 64 (paper's appendix)
    critic_pre_layers: int = 2  # GRU critic pre-layers; paper 2 (paper's appendix)
    raw_time: bool = (
        False  # critic sees the raw step t as the authors' code; false = t/T (ours, README)
    )


@dataclass
class LossConfig:
    shaping_weight: float = (
        1.0  # w on L_opp (opponent_differentiation_weight); 0 = naive AC (Alg. 1)
    )
    gamma: float = 0.96  # discount (paper's appendix)
    dice_lambda: float = 0.9  # loaded-DiCE lambda (Alg. 2, loaded DiCE)
    temperature: float = 1.0  # tau of the Q-softmax opponent model (Alg. 2)
    entropy_beta: float = 0.0  # entropy bonus; IPD 0, coin 0.1 (paper's appendix)
    bootstrap_opponent_return: bool = (
        True  # false = authors: un-bootstrapped opponent MC return (model.py)
    )
    advantage_grad: bool = False  # true mimics the authors' non-detached advantage (authors' code)
    huber_delta: float = 1.0  # critic Huber threshold (Alg. 1)


@dataclass
class TrainConfig:
    iterations: int = 1000  # outer iterations; paper reads iteration 6000 (paper: self-play with a replay buffer of past agents)
    batch_size: int = (
        512  # parallel episodes per iteration; paper IPD 2048, coin 512 (paper's appendix)
    )
    actor_lr: float = 1e-2  # actor Adam; paper 1e-3, quick IPD 1e-2 (ours, README)
    critic_lr: float = 1e-2  # critic Adam (paper's appendix)
    actor_clip_norm: float = (
        0.0  # global-norm clip of the actor gradient; 0 = none (IPD), coin 1.0 (paper's appendix)
    )
    target_ema: float = 0.99  # EMA decay of the target critic (Alg. 1)
    critic_warmup: int = 0  # first N iterations train only the critic (quick-run deviation, README)
    buffer_capacity: int = 0  # agent buffer size; 0 = play the current self (IPD) (paper: self-play with a replay buffer of past agents)
    buffer_push_every: int = (
        10  # push the agent into the buffer every N iterations (paper's appendix)
    )
    opponents_per_batch: int = 8  # distinct buffer samples per batch; authors: one per episode (paper: self-play with a replay buffer of past agents)
    log_every: int = 10  # iterations between training-scalar logs
    eval_every: int = 50  # iterations between evaluations (paper: 100) (paper: self-play with a replay buffer of past agents)
    eval_episodes: int = 128  # Coin Game evaluation episodes (IPD evaluation is exact)


@dataclass
class EvalConfig:
    league_episodes: int = (
        256  # Coin Game league games per pair; paper 32 (authors' league files), ours 256 (ours)
    )
    horizon: int = 50  # IPD exact-evaluation horizon (undiscounted reward per step) (ours)


@dataclass
class LoqaConfig(BaseConfig):
    name: str = "ipd_quick"
    n_seeds: int = 3  # reproduce.py trains seeds seed .. seed + n_seeds - 1 (paper: 10)
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def validate(cfg: DictConfig) -> None:
    """Checks the schema's types cannot express; raises ConfigError naming the key."""
    if cfg.env.game not in ("ipd", "coin"):
        raise ConfigError(f"env.game must be ipd or coin, got {cfg.env.game!r}")
    if not 0.0 <= cfg.env.epsilon <= 1.0:
        raise ConfigError(f"env.epsilon must be in [0, 1], got {cfg.env.epsilon}")
    if cfg.env.episode_length < 2:
        raise ConfigError(f"env.episode_length must be >= 2, got {cfg.env.episode_length}")
    if cfg.train.iterations < 1 or cfg.train.batch_size < 1:
        raise ConfigError("train.iterations and train.batch_size must be >= 1")
    if cfg.train.buffer_capacity > 0 and cfg.train.batch_size % cfg.train.opponents_per_batch:
        raise ConfigError(
            f"train.batch_size ({cfg.train.batch_size}) must be a multiple of "
            f"train.opponents_per_batch ({cfg.train.opponents_per_batch})"
        )
    if not 0.0 <= cfg.loss.gamma < 1.0 or not 0.0 <= cfg.loss.dice_lambda <= 1.0:
        raise ConfigError("loss.gamma must be in [0, 1) and loss.dice_lambda in [0, 1]")
    if cfg.loss.temperature <= 0:
        raise ConfigError(f"loss.temperature must be > 0, got {cfg.loss.temperature}")
    if cfg.model.actor not in ("tabular", "gru") or cfg.model.critic not in ("mlp", "gru"):
        raise ConfigError(
            f"model.actor must be tabular or gru and model.critic mlp or gru, got "
            f"{cfg.model.actor!r} and {cfg.model.critic!r}"
        )
    if cfg.model.actor == "tabular" and cfg.env.game != "ipd":
        raise ConfigError(f"model.actor=tabular only exists for the IPD, not env.game={cfg.env.game}")


@dataclass
class ReproduceSettings:
    """What `make loqa` varies: the games, and how many runs train at once."""

    games: list[str] = field(default_factory=lambda: list(GAMES))  # ipd, coin or both
    workers: int = 0  # quick runs training at once, one torch thread each; 0 = one per core


@dataclass
class LoqaReproduceConfig:
    """`make loqa ARGS=...`: `ipd.<key>=v` and `coin.<key>=v` set one game's run config (the
    presets <game>_<scale>.yaml), `reproduce.<key>=v` the settings above."""

    reproduce: ReproduceSettings = field(default_factory=ReproduceSettings)
    ipd: LoqaConfig = field(default_factory=LoqaConfig)
    coin: LoqaConfig = field(default_factory=LoqaConfig)


def validate_reproduce(cfg: DictConfig) -> None:
    unknown = [g for g in cfg.reproduce.games if g not in GAMES]
    if unknown or not cfg.reproduce.games:
        raise ConfigError(
            f"reproduce.games must name ipd and/or coin, got {list(cfg.reproduce.games)}"
        )
    if cfg.reproduce.workers < 0:
        raise ConfigError(f"reproduce.workers must be >= 0, got {cfg.reproduce.workers}")
    for game in cfg.reproduce.games:
        validate(cfg[game])
