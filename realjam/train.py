"""Train the ReaLchords agent: MLE online model, offline teacher, contrastive reward model, then RL.

    python -m realjam.train --config quick                    # all four stages in runs/realjam/quick/<stage>
    python -m realjam.train --config quick stage=mle name=my_mle mle.steps=200
    python -m realjam.train --config quick stage=rl rl.mle_run=... rl.teacher_run=... rl.reward_run=...

Each stage is its own run directory (config, metrics.jsonl, tensorboard, checkpoint); the RL run names the
three it starts from, so ``python -m realjam.eval --run <rl run>`` needs nothing else.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from common.config import parse_args, validate
from common.runner import Run
from realjam.config import CONFIG_DIR, RealJamConfig
from realjam.data import chorale_songs, folk_songs, random_crops, random_prompts
from realjam.model import contrastive_loss, mle_loss, teacher_loss
from realjam.rewards import RewardWeights
from realjam.rl import ValueHead, rl_step
from realjam.store import BUILDERS, load_stage

PAPER = "realjam"


def warmup_cosine(optimizer, warmup: int, total: int):
    """Linear warm-up, then cosine decay to 10% of the peak learning rate."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_pretrain(cfg, stage: str) -> Path:
    """MLE (online model), teacher or contrastive reward model on random crops of chorale pairs."""
    opt_cfg = cfg[stage]
    with Run(cfg, paper=PAPER) as run:
        songs = chorale_songs("train", limit=cfg.data.chorale_limit or None)
        model = BUILDERS[stage](cfg).to(run.device)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay
        )
        schedule = warmup_cosine(optimizer, opt_cfg.warmup, opt_cfg.steps)
        crops = torch.Generator().manual_seed(cfg.seed)
        run.track(model=model, optimizer=optimizer, schedule=schedule, crops=crops)
        start = run.restore()
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"realjam {stage}: run {run.dir} | {n_params:,} parameters | {len(songs)} train chorales"
        )

        model.train()
        for step in run.steps(start, opt_cfg.steps):
            seq, melody, chords = random_crops(
                songs, opt_cfg.batch_size, cfg.data.crop_frames, crops
            )
            if stage == "mle":  # loss on chord and melody tokens (step 1)
                loss, chord_nll = mle_loss(model, seq.to(run.device))
                metrics = {"losses/nll": loss.item(), "losses/chord_nll": chord_nll.item()}
            elif stage == "teacher":  # chords given the whole melody (step 2)
                loss = teacher_loss(model, melody.to(run.device), chords.to(run.device))
                metrics = {"losses/chord_nll": loss.item()}
            else:  # InfoNCE over the batch's mismatched pairs (step 3)
                loss, accuracy = contrastive_loss(
                    model, melody.to(run.device), chords.to(run.device)
                )
                metrics = {
                    "losses/infonce": loss.item(),
                    "reward_model/batch_accuracy": accuracy.item(),
                }
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if (step + 1) % opt_cfg.log_every == 0 or step + 1 == opt_cfg.steps:
                run.log(step + 1, {**metrics, "charts/lr": schedule.get_last_lr()[0]})
            run.maybe_checkpoint(step + 1)
        run.save(opt_cfg.steps)
    return run.dir


def train_rl(cfg) -> Path:
    """RL fine-tuning of the MLE model with reward models and a KL to the teacher (step 4)."""
    rl = cfg.rl
    with Run(cfg, paper=PAPER) as run:
        start_model = load_stage(rl.mle_run, "mle").to(run.device)
        teacher = load_stage(rl.teacher_run, "teacher").to(run.device)
        contrastive = load_stage(rl.reward_run, "reward").to(run.device) if rl.reward_run else None
        policy = load_stage(rl.mle_run, "mle").to(run.device)  # pi_theta starts at pi_MLE
        for param in policy.parameters():
            param.requires_grad_(True)
        value_head = ValueHead(cfg.net.dim).to(run.device)
        optimizer = torch.optim.Adam(
            list(policy.parameters()) + list(value_head.parameters()), lr=rl.lr, betas=(0.9, 0.95)
        )
        chorales = [
            s
            for s in chorale_songs("train", limit=cfg.data.chorale_limit or None)
            if len(s.melody) >= rl.frames
        ]
        folk = folk_songs("train", cfg.data.folk_limit, rl.frames) if cfg.data.folk_limit else []
        prompts = torch.Generator().manual_seed(cfg.seed)
        sampler = torch.Generator().manual_seed(cfg.seed + 1)
        run.track(
            model=policy,
            value_head=value_head,
            optimizer=optimizer,
            prompts=prompts,
            sampler=sampler,
        )
        start = run.restore()
        weights = RewardWeights(**OmegaConf.to_container(rl.rewards))
        melodies = (
            rl.batch_size // rl.group
        )  # distinct prompts per update, each played rl.group times
        n_folk = round(melodies * rl.folk_fraction) if folk else 0
        print(
            f"realjam rl: run {run.dir} | prompts: {len(chorales)} chorales, {len(folk)} folk tunes"
        )

        for step in run.steps(start, rl.updates):
            parts = []
            if n_folk:
                parts.append(random_prompts(folk, n_folk, rl.frames, prompts))
            if melodies - n_folk:
                parts.append(random_prompts(chorales, melodies - n_folk, rl.frames, prompts))
            pitches = torch.cat([p for p, _ in parts]).repeat_interleave(rl.group, 0).to(run.device)
            melody = torch.cat([m for _, m in parts]).repeat_interleave(rl.group, 0).to(run.device)
            stats = rl_step(
                policy,
                value_head,
                optimizer,
                teacher,
                start_model,
                contrastive,
                pitches,
                melody,
                weights,
                rl,
                sampler,
            )
            if (step + 1) % rl.log_every == 0 or step == 0 or step + 1 == rl.updates:
                run.log(step + 1, stats)
            run.maybe_checkpoint(step + 1)
        run.save(rl.updates)
    return run.dir


def train(cfg) -> Path:
    """Train ``cfg.stage`` (or all four stages in order); returns the (last) run directory."""
    validate(cfg)
    if cfg.stage in ("mle", "teacher", "reward"):
        return train_pretrain(cfg, cfg.stage)
    if cfg.stage == "rl":
        return train_rl(cfg)
    dirs = {}
    for stage in ("mle", "teacher", "reward"):
        sub = OmegaConf.merge(cfg, {"stage": stage, "name": f"{cfg.name}/{stage}"})
        dirs[stage] = str(train_pretrain(sub, stage))
    runs = {"mle_run": dirs["mle"], "teacher_run": dirs["teacher"], "reward_run": dirs["reward"]}
    return train_rl(OmegaConf.merge(cfg, {"stage": "rl", "name": f"{cfg.name}/rl", "rl": runs}))


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(RealJamConfig, CONFIG_DIR, __doc__, argv, prog="python -m realjam.train")
    from common.config import ConfigError
    from common.runner import CheckpointError

    try:
        run_dir = train(cfg)
    except (ConfigError, CheckpointError) as err:
        print(f"python -m realjam.train: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"realjam: trained; evaluate with: python -m realjam.eval --run {run_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
