"""The MeVa experiment schema: every setting typed, with its default and where it comes from.

Sections refer to arXiv 2307.08863 (MeVa). The paper's hyper-parameters were not available to us
(README: "What is reconstructed"); defaults marked (ours) are the calibrated reading of the method.
Presets: ``meva/configs/quick.yaml`` (minutes on a CPU) and ``full.yaml`` (more seeds and updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = ("ipd", "imp", "chicken", "toy")
OPPONENTS = ("naive", "lola", "hola2", "hola3", "sos")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class GameConfig:
    name: str = "ipd"  # ipd | imp | chicken (Sec. 5.2, M-FOS setup) | toy (our stand-in, Sec. 5.1)
    inner_gamma: float = (
        0.96  # discount of the repeated games (M-FOS setup); unused by one-shot ones
    )
    lr: float = 1.0  # alpha: every learner's step size on the unnormalised return (M-FOS)

    def __post_init__(self) -> None:
        _check(
            self.name in GAMES, f"game.name must be one of {', '.join(GAMES)}, got {self.name!r}"
        )
        _check(
            0.0 <= self.inner_gamma < 1.0,
            f"game.inner_gamma must be in [0, 1), got {self.inner_gamma}",
        )
        _check(self.lr > 0, f"game.lr must be > 0, got {self.lr}")


@dataclass
class ModelConfig:
    hidden: int = 64  # width of U's MLP over sigmoid(joint logits) (ours; Sec. 4.1)
    layers: int = 2  # hidden layers of U (ours)

    def __post_init__(self) -> None:
        _check(self.hidden >= 1, f"model.hidden must be >= 1, got {self.hidden}")
        _check(self.layers >= 1, f"model.layers must be >= 1, got {self.layers}")


@dataclass
class TrainConfig:
    updates: int = 3000  # TD updates of U (Algorithm 1 outer loop; ours, calibrated)
    batch: int = 128  # simulated optimisation trajectories updated in parallel (ours)
    rollout_length: int = 100  # iterates per simulated trajectory before a reset (M-FOS: 100)
    meta_gamma: float = 0.9  # meta-discount gamma of eq. 2 (ours; the paper varies it, Sec. 5.1)
    lr: float = 1e-3  # Adam step size for U (ours)
    target_rate: float = 0.02  # EMA rate of the TD target network (ours)
    explore_fraction: float = 0.5  # share of trajectories moving with a perturbed head (Sec. 4.3)
    explore_std: float = 0.1  # std of the Gaussian noise on U's final layer weights and bias (ours)
    log_every: int = 100  # updates between logged metrics (and held-out TD errors)
    heldout_pairs: int = 64  # held-out joint policies whose naive trajectories measure the TD error
    heldout_every: int = 10  # keep every k-th iterate of those trajectories

    def __post_init__(self) -> None:
        _check(self.updates >= 1, f"train.updates must be >= 1, got {self.updates}")
        _check(self.batch >= 1, f"train.batch must be >= 1, got {self.batch}")
        _check(
            self.rollout_length >= 1,
            f"train.rollout_length must be >= 1, got {self.rollout_length}",
        )
        _check(
            0.0 <= self.meta_gamma < 1.0,
            f"train.meta_gamma must be in [0, 1), got {self.meta_gamma}",
        )
        _check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _check(
            0.0 < self.target_rate <= 1.0,
            f"train.target_rate must be in (0, 1], got {self.target_rate}",
        )
        _check(
            0.0 <= self.explore_fraction <= 1.0,
            f"train.explore_fraction must be in [0, 1], got {self.explore_fraction}",
        )
        _check(self.explore_std >= 0, f"train.explore_std must be >= 0, got {self.explore_std}")
        _check(self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}")
        _check(
            self.heldout_pairs >= 1, f"train.heldout_pairs must be >= 1, got {self.heldout_pairs}"
        )
        _check(
            self.heldout_every >= 1, f"train.heldout_every must be >= 1, got {self.heldout_every}"
        )


@dataclass
class EvalConfig:
    pairs: int = 256  # random initial joint policies, logits ~ N(0, 1) (issue 16 protocol)
    iterates: int = 100  # simultaneous updates; returns are read at the last iterate (issue 16)
    # the baseline learners MeVa meets (Tables 2-3; COLA, M-MAML and M-FOS are not provided)
    opponents: list[str] = field(default_factory=lambda: ["naive", "lola", "hola2", "sos"])
    seed: int = 1000  # seeds the evaluation's initial policies (offset by the run's seed)

    def __post_init__(self) -> None:
        _check(self.pairs >= 1, f"eval.pairs must be >= 1, got {self.pairs}")
        _check(self.iterates >= 1, f"eval.iterates must be >= 1, got {self.iterates}")
        bad = [o for o in self.opponents if o not in OPPONENTS]
        _check(not bad, f"eval.opponents: unknown {bad}; expected some of {', '.join(OPPONENTS)}")


@dataclass
class ReproduceConfig:
    games: list[str] = field(default_factory=lambda: ["ipd", "imp", "chicken"])  # Tables 2-3 games
    seeds: int = 3  # MeVa training seeds per game; tables give mean and std over them
    control_meta_gamma: float = 0.0  # the naive-limit control (issue 16: meta-discount 0)
    toy_meta_gammas: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.9])  # Sec. 5.1 figure
    toy_lr: float = 3.0  # alpha on the stand-in toy game (ours; its gradients are small)

    def __post_init__(self) -> None:
        bad = [g for g in self.games if g not in GAMES or g == "toy"]
        _check(not bad, f"reproduce.games: unknown {bad}; expected some of ipd, imp, chicken")
        _check(self.seeds >= 1, f"reproduce.seeds must be >= 1, got {self.seeds}")
        _check(
            0.0 <= self.control_meta_gamma < 1.0,
            f"reproduce.control_meta_gamma must be in [0, 1), got {self.control_meta_gamma}",
        )
        bad_g = [g for g in self.toy_meta_gammas if not 0.0 <= g < 1.0]
        _check(not bad_g, f"reproduce.toy_meta_gammas must lie in [0, 1), got {bad_g}")
        _check(self.toy_lr > 0, f"reproduce.toy_lr must be > 0, got {self.toy_lr}")


@dataclass
class MevaConfig(BaseConfig):
    # More TD updates on resume is "train longer": nothing is sized by train.updates.
    resume_may_change: ClassVar[tuple[str, ...]] = (*BaseConfig.resume_may_change, "train.updates")

    game: GameConfig = field(default_factory=GameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)
