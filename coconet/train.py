"""Train Coconet, the convolutional orderless NADE, on four-voice Bach chorales.

    python -m coconet.train --config quick [key=value ...]     # e.g. train.steps=200 model.layers=4

Every step: random crops of random training chorales, an orderless mask per crop (k ~ U{1..T*I} cells
hidden), the network sees (roll * known, known) and is scored on the hidden cells only (spec 2.2). The run
directory (runs/coconet/<name>/) ends up holding the config, metrics.jsonl, tensorboard logs and the
checkpoint that ``python -m coconet.eval --run <dir>`` needs.
"""

from __future__ import annotations

import sys
import time

import torch

from coconet.config import CONFIG_DIR, CoconetConfig
from coconet.data import check_pieces, fixed_masked_crops, load_split, random_crops
from coconet.likelihood import masked_cell_nll, pooled
from coconet.model import N_VOICES, Coconet, orderless_mask, orderless_nade_loss, voices_to_roll
from common.config import parse_args
from common.runner import Run


def build_model(cfg) -> Coconet:
    return Coconet(cfg.model.layers, cfg.model.filters, bn_momentum=cfg.model.bn_momentum)


def train(cfg) -> Run:
    """Train with ``cfg`` (a resolved CoconetConfig); returns the closed Run (its ``dir`` holds everything)."""
    if cfg.train.steps < 1 or cfg.train.batch_size < 1 or cfg.train.eval_every < 1:
        raise ValueError("train.steps, train.batch_size and train.eval_every must all be >= 1")
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
        model = build_model(cfg).to(run.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        # Halve the learning rate when validation stalls (spec 2.4); patience 0 switches it off.
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
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"coconet: run {run.dir} | {n_params:,} parameters | {len(train_pieces)} train pieces"
        )

        # ---------------------------------------------------------------- loop
        model.train()
        tick, tick_step = time.time(), start
        step = start - 1  # so that a resumed, already finished run saves at its own step
        for step in run.steps(start, cfg.train.steps):
            voices = random_crops(train_pieces, cfg.train.batch_size, crop_len, crop_generator)
            hidden = orderless_mask(
                cfg.train.batch_size, N_VOICES, crop_len, generator=mask_generator
            )
            roll, hidden = voices_to_roll(voices).to(run.device), hidden.to(run.device)
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
                if 0 < cfg.train.stop_patience <= stalled:
                    print(f"coconet: validation stalled {stalled} times; stopping at step {done}")
                    break
            run.maybe_checkpoint(done, best_valid=best_valid, stalled=stalled)
        run.save(step + 1, best_valid=best_valid, stalled=stalled)
    return run


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(CoconetConfig, CONFIG_DIR, __doc__, argv, prog="python -m coconet.train")
    run = train(cfg)
    print(f"coconet: trained; evaluate with: python -m coconet.eval --run {run.dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
