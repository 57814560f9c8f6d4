"""Train Coconet, the convolutional orderless NADE, on four-voice Bach chorales.

    python -m coconet.train --config quick [key=value ...]     # e.g. train.steps=200 model.layers=4

Every step: random crops of random training chorales, an orderless mask per crop (k ~ U{1..T*I} cells
hidden), the network sees (roll * known, known) and is scored on the hidden cells only (arXiv 1903.07227,
the model and orderless-modelling sections). The run directory (runs/coconet/<name>/) ends up holding the
config, metrics.jsonl, tensorboard logs and the checkpoint that ``python -m coconet.eval --run <dir>`` needs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from coconet.config import CONFIG_DIR, CoconetConfig
from coconet.data import check_pieces, fixed_masked_crops, load_split
from coconet.harmony import harmony_stats, voice_ranges
from coconet.likelihood import masked_cell_nll, pooled
from coconet.model import Coconet, orderless_mask, orderless_nade_loss
from coconet.sampling import harmonize
from common.config import parse_args
from common.music import N_VOICES, random_crops, voices_to_pianoroll
from common.runner import Run


def harmony_check(model: Coconet, sopranos: torch.Tensor, ranges, cfg) -> dict[str, float]:
    """Harmonise a few validation sopranos at the harmoniser's temperature and at 1.0 (ours: the
    statistics' curve against training time). Its own generator: the training draws are untouched."""
    steps = max(1, round(cfg.harmonize.steps_per_frame * sopranos.shape[-1]))
    s, logged = cfg.sample, {}
    for prefix, temperature in (("harmony", cfg.harmonize.temperature), ("harmony_t1", 1.0)):
        generator = torch.Generator().manual_seed(s.seed)
        scores = harmonize(model, sopranos, steps, temperature, generator, s.pmax, s.pmin, s.eta)
        stats = harmony_stats(scores.numpy(), *ranges, range_voices=(1, 2, 3))
        logged.update({f"{prefix}/{name}": value for name, value in stats.items()})
    return logged


def train(cfg) -> Path:
    """Train with ``cfg`` (a resolved CoconetConfig); returns the run directory (it holds everything)."""
    with Run(cfg, paper="coconet") as run:
        # ---------------------------------------------------------------- data
        crop_len = cfg.data.crop_len
        train_pieces = check_pieces(load_split("train"), crop_len)
        valid_pieces = check_pieces(load_split("valid", cfg.data.valid_pieces), crop_len)
        valid_voices, valid_hidden = fixed_masked_crops(
            valid_pieces, cfg.data.valid_masks_per_piece, crop_len, cfg.data.valid_seed
        )
        # Crops and masks draw from their own generators: checkpointed, so a resume is exact.
        crop_generator = torch.Generator().manual_seed(cfg.seed)
        mask_generator = torch.Generator().manual_seed(cfg.seed + 1)

        # ---------------------------------------------------------------- model
        model = Coconet.from_config(cfg.model).to(run.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        # Halve the learning rate when validation stalls (the released code's rule); patience 0 = off.
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(cfg.train.lr_patience, 1) - 1
        )
        run.track(
            model=model,
            optimizer=optimizer,
            plateau=plateau,
            crop_generator=crop_generator,
            mask_generator=mask_generator,
        )
        start = run.restore()
        best_valid = run.extra.get("best_valid", float("inf"))
        stalled = run.extra.get("stalled", 0)
        # Training time over every resume (unknown, None, when resuming a checkpoint that did not keep it).
        train_seconds = run.extra.get("train_seconds", 0.0 if start == 0 else None)
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"coconet: run {run.dir} | {n_params:,} parameters | {len(train_pieces)} train pieces"
        )
        if cfg.train.harmony_every:
            frames = cfg.train.harmony_frames
            sopranos = torch.from_numpy(
                np.stack([p[0, :frames] for p in valid_pieces if p.shape[1] >= frames])
            )[: cfg.train.harmony_pieces]
            ranges = voice_ranges(train_pieces)

        # ---------------------------------------------------------------- loop
        model.train()
        tick, tick_step = time.time(), start
        step = start - 1  # so that a resumed, already finished run saves at its own step
        for step in run.steps(start, cfg.train.steps):
            started = time.time()
            voices = random_crops(train_pieces, cfg.train.batch_size, crop_len, crop_generator)
            hidden = orderless_mask(
                cfg.train.batch_size, N_VOICES, crop_len, generator=mask_generator
            )
            roll, hidden = voices_to_pianoroll(voices).to(run.device), hidden.to(run.device)
            logits = model(roll, ~hidden)  # the net sees roll * known and the known flags only
            loss = orderless_nade_loss(logits, roll, hidden)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            done = step + 1
            if done % 10 == 0 or done == cfg.train.steps:
                steps_per_s = (done - tick_step) / max(time.time() - tick, 1e-9)
                tick, tick_step = time.time(), done
                run.log(done, {"losses/train_nll": loss.item(), "perf/steps_per_s": steps_per_s})
            if done % cfg.train.eval_every == 0 or done == cfg.train.steps:
                model.eval()
                nll, counted = masked_cell_nll(model, valid_voices, valid_hidden)
                model.train()
                valid_nll = pooled(nll, counted)
                run.log(
                    done,
                    {
                        "eval/valid_nll_per_masked_cell": valid_nll,
                        "charts/lr": optimizer.param_groups[0]["lr"],
                    },
                )
                if cfg.train.lr_patience > 0:
                    plateau.step(valid_nll)
                stalled = 0 if valid_nll < best_valid else stalled + 1
                best_valid = min(best_valid, valid_nll)
            if train_seconds is not None:
                train_seconds += time.time() - started
            if cfg.train.harmony_every and done % cfg.train.harmony_every == 0:
                model.eval()
                stats = harmony_check(model, sopranos, ranges, cfg)
                model.train()
                seconds = float("nan") if train_seconds is None else train_seconds
                run.log(done, {"perf/train_seconds": seconds, **stats})
            if 0 < cfg.train.stop_patience <= stalled:
                print(f"coconet: validation stalled {stalled} times; stopping at step {done}")
                break
            run.maybe_checkpoint(
                done, best_valid=best_valid, stalled=stalled, train_seconds=train_seconds
            )
        run.save(step + 1, best_valid=best_valid, stalled=stalled, train_seconds=train_seconds)
    return run.dir


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(CoconetConfig, CONFIG_DIR, __doc__, argv, prog="python -m coconet.train")
    run_dir = train(cfg)
    print(f"coconet: trained; evaluate with: python -m coconet.eval --run {run_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
