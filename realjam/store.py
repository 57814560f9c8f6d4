"""Build the networks from a config, and load trained ones back from their run directories."""

from __future__ import annotations

from pathlib import Path

from common.runner import CheckpointError, load_checkpoint, load_run_config
from realjam.model import ContrastiveReward, OnlineModel, Teacher


def _max_frames(cfg) -> int:
    return max(cfg.data.crop_frames, cfg.data.eval_frames, cfg.rl.frames)


def build_online(cfg) -> OnlineModel:
    n = cfg.net
    return OnlineModel(n.dim, n.layers, n.heads, _max_frames(cfg), n.dropout)


def build_teacher(cfg) -> Teacher:
    n = cfg.net
    return Teacher(n.dim, n.layers, n.heads, _max_frames(cfg), n.dropout)


def build_reward(cfg) -> ContrastiveReward:
    n = cfg.reward_net
    return ContrastiveReward(n.dim, n.layers, n.heads, _max_frames(cfg), n.dropout)


BUILDERS = {
    "mle": build_online,
    "teacher": build_teacher,
    "reward": build_reward,
    "rl": build_online,
}


def load_stage(run_dir: str | Path, stage: str):
    """The trained network of a stage's run directory, in eval mode (``CheckpointError`` if absent)."""
    run_dir = Path(run_dir)
    if not str(run_dir) or not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = load_run_config(run_dir)
    if cfg.get("stage") != stage:
        raise CheckpointError(f"{run_dir} is a '{cfg.get('stage')}' run, expected '{stage}'")
    model = BUILDERS[stage](cfg)
    state = load_checkpoint(run_dir)
    try:
        model.load_state_dict(state["objects"]["model"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{run_dir}: checkpoint does not fit the config ({type(err).__name__})"
        ) from err
    return model.eval()
