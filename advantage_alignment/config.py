"""The experiment schema of advantage_alignment/: one dataclass for the three games.

Sections cite "Advantage Alignment Algorithms" (Duque et al., arXiv 2406.14662): Sec. 4 (the aligned
advantage, Eq. 8), Sec. 4.1 (PAA, Eq. 9), Sec. 5 (experiments) and App. A (hyper-parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = ("ipd", "coin", "negotiation")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass
class EnvConfig:
    game: str = "ipd"  # ipd | coin | negotiation (Sec. 5.1, 5.2, 5.3)
    episode_length: int = 50  # T = 50 in all three games (App. A)
    grid_size: int = 3  # Coin Game 3x3 (Sec. 5.2)

    def __post_init__(self) -> None:
        _check(self.game in GAMES, f"env.game must be one of {GAMES}, got {self.game!r}")
        _check(
            self.episode_length >= 2, f"env.episode_length must be >= 2, got {self.episode_length}"
        )
        _check(self.grid_size >= 2, f"env.grid_size must be >= 2, got {self.grid_size}")


@dataclass
class ModelConfig:
    hidden: int = 64  # GRU policy width; paper 64 (App. A, Coin Game and negotiation)
    critic_hidden: int = 64  # separate GRU critic width; paper 64 (App. A)

    def __post_init__(self) -> None:
        _check(self.hidden >= 1 and self.critic_hidden >= 1, "model.hidden sizes must be >= 1")


@dataclass
class LossConfig:
    beta: float = (
        1.0  # weight of the alignment term (Eq. 8); 0 = actor-critic / PPO control; neg. 3
    )
    aggregation: str = (
        "mean"  # own past advantages: running mean (code, Eq. 59) | discounted (Eq. 8) | decayed
    )
    memory_decay: float = (
        0.864  # "decayed": weight d^(t-k) of A1_k; gamma x the DiCE 0.9 (coin code)
    )
    normalize_advantages: bool = True  # standardise A1, A2 before the product (authors' code)
    proximal: bool = False  # PAA: PPO clip on A* (Eq. 9) instead of REINFORCE on A* (Eq. 8)
    clip: float = 0.2  # PPO ratio clip epsilon (Sec. 4.1; Melting Pot 0.1)
    ppo_epochs: int = 4  # PAA optimisation epochs per batch (Sec. 4.1)
    gamma: float = 0.96  # discount (App. A)
    gae_lambda: float = 0.95  # GAE lambda for both agents' advantages (authors' code)
    entropy_coef: float = 0.0  # entropy bonus; coin 0.05, negotiation 0.005 (App. A)
    epsilon: float = (
        0.0  # epsilon-greedy exploration in IPD rollouts (ablation; issue: 0.2 loses C)
    )

    def __post_init__(self) -> None:
        _check(self.beta >= 0, f"loss.beta must be >= 0, got {self.beta}")
        _check(
            self.aggregation in ("mean", "discounted", "decayed"),
            f"loss.aggregation must be mean, discounted or decayed, got {self.aggregation!r}",
        )
        _check(
            0 <= self.memory_decay < 1,
            f"loss.memory_decay must be in [0, 1), got {self.memory_decay}",
        )
        _check(0 < self.clip < 1, f"loss.clip must be in (0, 1), got {self.clip}")
        _check(self.ppo_epochs >= 1, f"loss.ppo_epochs must be >= 1, got {self.ppo_epochs}")
        _check(0 <= self.gamma < 1, f"loss.gamma must be in [0, 1), got {self.gamma}")
        _check(
            0 <= self.gae_lambda <= 1, f"loss.gae_lambda must be in [0, 1], got {self.gae_lambda}"
        )
        _check(0 <= self.epsilon <= 1, f"loss.epsilon must be in [0, 1], got {self.epsilon}")


@dataclass
class TrainConfig:
    iterations: int = 1000  # outer iterations; paper coin ~25k at batch 8192 (App. A)
    batch_size: int = 512  # parallel episodes; paper coin 8192, negotiation 16384 (App. A)
    actor_lr: float = 0.05  # Adam; paper 3e-3 coin, 1e-3 negotiation (App. A)
    critic_lr: float = 1e-2  # Adam for the critic; paper 1e-3 negotiation (App. A)
    clip_norm: float = 1.0  # global gradient-norm clip; paper 1.0 negotiation (App. A); 0 = none
    buffer_capacity: int = 0  # agent buffer of past selves; 0 = pure self-play (Sec. 5)
    buffer_push_every: int = 10  # iterations between pushes of the current agent
    opponents_per_batch: int = (
        8  # groups of episodes: group 0 plays the current agent, the rest past ones
    )
    log_every: int = 10  # iterations between training-scalar logs
    eval_every: int = 100  # iterations between evaluations
    eval_episodes: int = 256  # sampled evaluation episodes (IPD is evaluated exactly)

    def __post_init__(self) -> None:
        _check(self.iterations >= 1, f"train.iterations must be >= 1, got {self.iterations}")
        _check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _check(self.actor_lr > 0 and self.critic_lr > 0, "train.actor_lr and critic_lr must be > 0")
        _check(self.opponents_per_batch >= 1, "train.opponents_per_batch must be >= 1")
        _check(
            self.batch_size % self.opponents_per_batch == 0,
            f"train.batch_size ({self.batch_size}) must be a multiple of "
            f"train.opponents_per_batch ({self.opponents_per_batch})",
        )
        _check(self.log_every >= 1 and self.eval_every >= 1, "train.log_every/eval_every >= 1")
        _check(
            self.eval_episodes >= 1, f"train.eval_episodes must be >= 1, got {self.eval_episodes}"
        )


@dataclass
class ReproduceConfig:
    n_seeds: int = 3  # seeds seed .. seed + n_seeds - 1 per setting (paper: 10 on the Coin Game)
    only: str = "all"  # all | ipd | coin | negotiation: which games `make advantage_alignment` runs

    def __post_init__(self) -> None:
        _check(self.n_seeds >= 1, f"reproduce.n_seeds must be >= 1, got {self.n_seeds}")
        _check(
            self.only in ("all", *GAMES), f"reproduce.only must be all or a game, got {self.only!r}"
        )


@dataclass
class AAConfig(BaseConfig):
    name: str = "ipd"
    progress: bool = False
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)
