"""Train both stages of harmonic recomposition on bar-aligned Bach chorale measures.

    python -m vqvae_recompose.train --config quick [key=value ...]     # e.g. vqvae.steps=200 prior.steps=100

Steps 0 .. vqvae.steps - 1 train the VQ-VAE (Sec. 2, stage 1); then every measure is encoded once with the
trained encoder and the following prior.steps steps train the chord-conditioned PixelCNN prior and, with
prior.spatial=true, its variant that also sees the previous measure's codes, on the same minibatches (Sec. 2,
stage 2). The run directory (runs/vqvae_recompose/<name>/) holds the config, metrics.jsonl, tensorboard logs
and the checkpoint that ``python -m vqvae_recompose.eval --run <dir>`` and ``recompose`` need.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from common.cli import entry_point
from common.config import parse_args, validate
from common.runner import Run
from vqvae_recompose.config import CONFIG_DIR, RecomposeConfig
from vqvae_recompose.data import image_to_voices, load_measures, voices_to_image
from vqvae_recompose.model import (
    VQVAE,
    ConditionalPixelCNN,
    codebook_perplexity,
    prior_nll,
    reconstruction_loss,
)

PAPER = "vqvae_recompose"


def build_vqvae(cfg) -> VQVAE:
    v = cfg.vqvae
    return VQVAE(tuple(v.widths), v.codebook_size, v.code_dim, beta=v.beta)


def build_prior(cfg, n_chords: int, spatial: bool) -> ConditionalPixelCNN:
    p = cfg.prior
    return ConditionalPixelCNN(
        cfg.vqvae.codebook_size, n_chords, p.channels, p.layers, p.first_kernel, p.kernel, spatial
    )


@torch.no_grad()
def encode_all(vqvae: VQVAE, images: torch.Tensor, batch: int) -> torch.Tensor:
    vqvae.eval()
    return torch.cat([vqvae.encode(images[i : i + batch]) for i in range(0, len(images), batch)])


@torch.no_grad()
def reconstruct(vqvae: VQVAE, images: torch.Tensor, batch: int) -> torch.Tensor:
    """Note probabilities ``[N, 4, P, T]`` of the quantised reconstructions (eval mode)."""
    vqvae.eval()
    out = [torch.sigmoid(vqvae(images[i : i + batch])[0]) for i in range(0, len(images), batch)]
    return torch.cat(out)


def previous_codes(codes: torch.Tensor, previous, codebook_size: int) -> torch.Tensor:
    """The previous bar's code map per measure; id K (one past the codebook) where there is none."""
    previous = torch.as_tensor(previous)
    none = torch.full_like(codes, codebook_size)
    return torch.where((previous >= 0)[:, None, None], codes[previous.clamp(min=0)], none)


@torch.no_grad()
def mean_prior_nll(prior, codes, chords, previous, batch: int) -> float:
    prior.eval()
    total = 0.0
    for i in range(0, len(codes), batch):
        prev = None if previous is None else previous[i : i + batch]
        logits = prior(codes[i : i + batch], chords[i : i + batch], prev)
        total += float(prior_nll(logits, codes[i : i + batch]).sum())
    prior.train()
    return total / len(codes)


def train(cfg) -> Path:
    """Train with ``cfg`` (a resolved RecomposeConfig); returns the run directory."""
    validate(cfg)  # the schema's range checks, also for a config built without load_config
    with Run(cfg, paper=PAPER) as run:
        # ---------------------------------------------------------------- data
        train_set, valid_set, vocabulary = load_measures(cfg.data)
        train_images = voices_to_image(train_set.voices, cfg.data.pitch_low, cfg.data.n_pitches)
        valid_images = voices_to_image(valid_set.voices, cfg.data.pitch_low, cfg.data.n_pitches)
        train_chords = torch.from_numpy(train_set.triplets)
        valid_chords = torch.from_numpy(valid_set.triplets)
        batches = torch.Generator().manual_seed(cfg.seed)  # minibatch draws; checkpointed

        # ---------------------------------------------------------------- models
        vqvae = build_vqvae(cfg).to(run.device)
        vq_optimizer = torch.optim.Adam(
            vqvae.parameters(), lr=cfg.vqvae.lr, betas=(0.9, 0.999), eps=1e-8
        )
        priors = {"chord": build_prior(cfg, len(vocabulary), spatial=False).to(run.device)}
        if cfg.prior.spatial:
            priors["spatial"] = build_prior(cfg, len(vocabulary), spatial=True).to(run.device)
        prior_optimizers = {
            k: torch.optim.Adam(p.parameters(), lr=cfg.prior.lr) for k, p in priors.items()
        }
        run.track(vqvae=vqvae, vq_optimizer=vq_optimizer, batches=batches)
        run.track(**{f"prior_{k}": p for k, p in priors.items()})
        run.track(**{f"prior_{k}_optimizer": o for k, o in prior_optimizers.items()})
        start = run.restore()
        print(
            f"{PAPER}: run {run.dir} | {len(train_set)} train / {len(valid_set)} valid measures | "
            f"{len(vocabulary)} chord ids | VQ-VAE {sum(p.numel() for p in vqvae.parameters()):,} "
            f"+ prior {sum(p.numel() for p in priors['chord'].parameters()):,} parameters"
        )
        extra = {"chord_classes": vocabulary.classes.tolist()}

        # ---------------------------------------------------------------- loop
        vq_steps, total = cfg.vqvae.steps, cfg.vqvae.steps + cfg.prior.steps
        codes = None  # [N, H, W] code maps of every measure, made once the VQ-VAE is trained
        step = start - 1
        for step in run.steps(start, total):
            done = step + 1
            if step < vq_steps:  # ------------------------------ stage 1: VQ-VAE
                vqvae.train()
                idx = torch.randint(len(train_images), (cfg.vqvae.batch_size,), generator=batches)
                roll = train_images[idx].to(run.device)
                logits, batch_codes, vq_loss = vqvae(roll)
                recon = reconstruction_loss(logits, roll)
                loss = recon + vq_loss
                vq_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                vq_optimizer.step()
                if done % 25 == 0:
                    run.log(done, {"vqvae/recon_bce": recon, "vqvae/vq_loss": vq_loss,
                                   "vqvae/batch_perplexity": codebook_perplexity(batch_codes, cfg.vqvae.codebook_size)})  # fmt: skip
                if done % cfg.train.eval_every == 0 or done == vq_steps:
                    probs = reconstruct(vqvae, valid_images, cfg.train.valid_batch)
                    voices = image_to_voices(probs, cfg.data.pitch_low, cfg.sample.threshold)
                    valid_codes = encode_all(vqvae, valid_images, cfg.train.valid_batch)
                    run.log(done, {
                        "eval/vqvae_valid_pitch_accuracy": float((voices == valid_set.voices).mean()),
                        "eval/vqvae_valid_perplexity": codebook_perplexity(valid_codes, cfg.vqvae.codebook_size),
                    })  # fmt: skip
            else:  # -------------------------------------------- stage 2: the priors over codes
                if codes is None:
                    codes = encode_all(vqvae, train_images, cfg.train.valid_batch)
                    valid_codes = encode_all(vqvae, valid_images, cfg.train.valid_batch)
                    k = cfg.vqvae.codebook_size
                    train_prev = previous_codes(codes, train_set.previous, k)
                    valid_prev = previous_codes(valid_codes, valid_set.previous, k)
                idx = torch.randint(len(codes), (cfg.prior.batch_size,), generator=batches)
                losses = {}
                for name, prior in priors.items():
                    prev = train_prev[idx] if prior.spatial else None
                    loss = prior_nll(prior(codes[idx], train_chords[idx], prev), codes[idx]).mean()
                    prior_optimizers[name].zero_grad(set_to_none=True)
                    loss.backward()
                    prior_optimizers[name].step()
                    losses[f"prior/{name}_train_nll"] = loss
                if done % 25 == 0:
                    run.log(done, losses)
                if done % cfg.train.eval_every == 0 or done == total:
                    run.log(done, {
                        f"eval/prior_{name}_valid_nll": mean_prior_nll(
                            prior, valid_codes, valid_chords, valid_prev if prior.spatial else None,
                            cfg.train.valid_batch)
                        for name, prior in priors.items()
                    })  # fmt: skip
            run.maybe_checkpoint(done, **extra)
        run.save(step + 1, **extra)
    return run.dir


@entry_point(f"python -m {PAPER}.train")
def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(RecomposeConfig, CONFIG_DIR, __doc__, argv, prog=f"python -m {PAPER}.train")
    run_dir = train(cfg)
    print(f"{PAPER}: trained; evaluate with: python -m {PAPER}.eval --run {run_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
