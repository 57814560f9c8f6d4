"""The BRS config schema (Aghajohari et al., "Best Response Shaping", arXiv 2404.06519).

The authors' code is not public, so most values are ours (a reconstruction, see README.md); each comment
names the part of the paper the setting belongs to (method: detective, question answering, self-play;
experiments: IPD, Coin Game, MCTS evaluation) or says "ours".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from common.config import BaseConfig

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = ("ipd", "coin")
# brs: leader vs detective only; brs_sp: + cooperative self-play term (BRS-SP); brs_sp_no_detective: the
# self-play term alone (ablation); naive: plain self-play gradient on its own return (control).
VARIANTS = ("brs", "brs_sp", "brs_sp_no_detective", "naive")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class EnvConfig:
    game: str = "ipd"  # ipd (exact) | coin (3x3): the paper's two games
    episode_length: int = (
        50  # T = 50 steps per episode in the Coin Game (paper: Coin Game experiment)
    )
    grid_size: int = 3  # 3x3 Coin Game (paper: Coin Game experiment)
    gamma: float = (
        0.96  # discount of the exact IPD value and of the sampled returns (paper: experiments)
    )

    def __post_init__(self) -> None:
        _check(self.game in GAMES, f"env.game must be one of {GAMES}, got {self.game!r}")
        _check(
            self.episode_length >= 1, f"env.episode_length must be >= 1, got {self.episode_length}"
        )
        _check(self.grid_size >= 3, f"env.grid_size must be >= 3, got {self.grid_size}")
        _check(0.0 <= self.gamma < 1.0, f"env.gamma must be in [0, 1), got {self.gamma}")


@dataclass
class AgentConfig:
    variant: str = "brs_sp"  # leader objective: BRS or BRS-SP (paper), or a control
    iterations: int = 1000  # agent (leader) updates (ours: the paper's count is unknown)
    lr: float = 0.03  # Adam learning rate of the leader (ours)
    init_std: float = 1.0  # IPD: logits start N(0, init_std^2) (ours)
    hidden: int = 32  # Coin: GRU width of the leader (ours; POLA-style GRU)
    batch_size: int = 128  # Coin Game: episodes per rollout (ours)
    detective_weight: float = (
        1.0  # weight of the return through the detective (paper: the BRS update)
    )
    self_play_weight: float = 1.0  # weight of the cooperative self-play return (paper: BRS-SP)
    entropy_beta: float = 0.01  # Coin Game: entropy bonus of the leader (ours)
    grad_clip: float = 1.0  # Coin Game: gradient-norm clip of the leader, 0 = off (ours)

    def __post_init__(self) -> None:
        _check(
            self.variant in VARIANTS,
            f"agent.variant must be one of {VARIANTS}, got {self.variant!r}",
        )
        _check(self.iterations >= 0, f"agent.iterations must be >= 0, got {self.iterations}")
        _check(self.lr > 0, f"agent.lr must be > 0, got {self.lr}")
        _check(self.hidden >= 1, f"agent.hidden must be >= 1, got {self.hidden}")
        _check(self.batch_size >= 1, f"agent.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class DetectiveConfig:
    hidden: int = 32  # width of the detective (IPD: MLP 32-32; Coin Game: GRU) (ours)
    lr: float = 3e-3  # Adam learning rate (ours)
    steps_per_agent_step: int = 5  # detective updates per leader update, K_det (ours)
    warmup_steps: int = 2000  # detective-only updates before the leader moves (ours)
    random_agents: int = 64  # IPD: random agents N(0, random_std^2) per batch
    random_std: float = 3.0  # IPD: wide, so some random agents retaliate (ours)
    noise_agents: int = 64  # IPD: copies of the current agent with logit noise (ours)
    noise_std: float = 3.0  # IPD: std of that noise (ours)
    buffer_agents: int = 64  # IPD: past agents per detective batch (paper: replay buffer)
    buffer_capacity: int = 1000  # past leaders kept (ours)
    buffer_push_every: int = 10  # leader updates between pushes (ours)
    buffer_fraction: float = 0.5  # Coin: share of detective games vs past leaders
    entropy_beta: float = 0.01  # Coin Game: entropy bonus of the detective (ours)
    logit_penalty: float = 1e-3  # IPD: L2 on the detective's logits (ours, calibrated)
    questions: int = 2  # Coin: questions per step: 1 = state, 2 = + owner flip

    def __post_init__(self) -> None:
        _check(self.hidden >= 1, f"detective.hidden must be >= 1, got {self.hidden}")
        _check(self.lr > 0, f"detective.lr must be > 0, got {self.lr}")
        _check(
            self.steps_per_agent_step >= 1,
            f"detective.steps_per_agent_step must be >= 1, got {self.steps_per_agent_step}",
        )
        _check(
            self.warmup_steps >= 0, f"detective.warmup_steps must be >= 0, got {self.warmup_steps}"
        )
        _check(
            self.buffer_capacity >= 1,
            f"detective.buffer_capacity must be >= 1, got {self.buffer_capacity}",
        )
        _check(
            self.buffer_push_every >= 1,
            f"detective.buffer_push_every must be >= 1, got {self.buffer_push_every}",
        )
        _check(
            0.0 <= self.buffer_fraction <= 1.0,
            f"detective.buffer_fraction must be in [0, 1], got {self.buffer_fraction}",
        )
        _check(
            self.questions in (1, 2), f"detective.questions must be 1 or 2, got {self.questions}"
        )


@dataclass
class ProbeConfig:
    """The best-response probe: fresh learners trained from scratch against the frozen agent (ours)."""

    seeds: int = 6  # probe learners, trained at once; results take the worst over them
    iterations: int = 300  # gradient steps of each probe learner
    lr: float = 1.0  # plain gradient ascent on the exact per-step value (ours)
    init_std: float = 1.0  # probe logits start N(0, init_std^2)

    def __post_init__(self) -> None:
        _check(self.seeds >= 1, f"probe.seeds must be >= 1, got {self.seeds}")
        _check(self.iterations >= 0, f"probe.iterations must be >= 0, got {self.iterations}")
        _check(self.lr > 0, f"probe.lr must be > 0, got {self.lr}")


@dataclass
class MctsConfig:
    """The MCTS opponent of the Coin Game evaluation (paper); simulations, depth, c are ours."""

    simulations: int = 48  # UCT simulations per move
    depth: int = 8  # planning horizon in moves (tree + random rollout)
    exploration: float = 1.5  # UCT exploration constant c
    episodes: int = 16  # evaluation episodes, played in parallel (one tree each)
    rollout: str = "random"  # leaf evaluation: random | greedy planner moves
    time_limit_s: float = 300.0  # a match stops here; results cover the steps played

    def __post_init__(self) -> None:
        _check(self.simulations >= 1, f"mcts.simulations must be >= 1, got {self.simulations}")
        _check(self.depth >= 1, f"mcts.depth must be >= 1, got {self.depth}")
        _check(self.episodes >= 1, f"mcts.episodes must be >= 1, got {self.episodes}")
        _check(
            self.rollout in ("random", "greedy"),
            f"mcts.rollout must be random or greedy, got {self.rollout!r}",
        )
        _check(self.time_limit_s > 0, f"mcts.time_limit_s must be > 0, got {self.time_limit_s}")


@dataclass
class ReproduceConfig:
    """What `make brs` varies (one preset per game)."""

    variants: list[str] = field(
        default_factory=lambda: ["brs_sp", "brs", "naive", "brs_sp_no_detective"]
    )
    n_seeds: int = 3  # training seeds per variant: seed, seed + 1, ...
    eval_episodes: int = 256  # Coin Game: sampled episodes per bot / self-play pairing

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        _check(not bad, f"reproduce.variants must be among {VARIANTS}, got {bad}")
        _check(self.n_seeds >= 1, f"reproduce.n_seeds must be >= 1, got {self.n_seeds}")
        _check(
            self.eval_episodes >= 1,
            f"reproduce.eval_episodes must be >= 1, got {self.eval_episodes}",
        )


@dataclass
class BrsConfig(BaseConfig):
    # A resumed run may train longer and evaluate differently; everything else must match its config.yaml.
    resume_may_change: ClassVar[tuple[str, ...]] = (
        *BaseConfig.resume_may_change,
        "agent.iterations",
        "probe.*",
        "mcts.*",
        "reproduce.*",
    )
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    detective: DetectiveConfig = field(default_factory=DetectiveConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    mcts: MctsConfig = field(default_factory=MctsConfig)
    reproduce: ReproduceConfig = field(default_factory=ReproduceConfig)
    log_every: int = 10  # leader updates between metric lines


def validate(cfg) -> None:
    """Run the dataclasses' range checks on a merged config; a bad value is a one-line ConfigError."""
    from omegaconf import OmegaConf

    from common.config import ConfigError

    try:
        OmegaConf.to_object(cfg)
    except ValueError as err:
        raise ConfigError(str(err).splitlines()[0]) from None
