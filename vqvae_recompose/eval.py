"""Evaluate a trained harmonic-recomposition run: reconstruction, prior likelihoods, chord adherence of samples,
and the paper's qualitative claim about spatial conditioning (Sec. 3), with plots, MIDI and audio.

    python -m vqvae_recompose.eval --run runs/vqvae_recompose/quick/chorales_seed0 [--no-audio]

Needs nothing but the run directory. Writes ``eval.json`` (flat ``"<group>/<metric>": number``) and, under
``plots/`` and ``samples/``, the figures, MIDI and WAV files. All NLLs are nats per code of the 13 x 4 map.
Chord labels are root + quality classes (``vqvae_recompose.data.measure_chord``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import plots
from common.cli import entry_point
from common.music.chords import chord_name
from common.runner import check_run_dir, load_checkpoint, read_metrics, set_threads
from vqvae_recompose.analysis import (
    dissonance_rate,
    longest_rest_runs,
    mean_pairwise_difference,
    rest_rate,
)
from vqvae_recompose.data import (
    ChordVocabulary,
    image_to_voices,
    load_measures,
    measure_chord,
    voices_to_image,
)
from vqvae_recompose.model import codebook_perplexity
from vqvae_recompose.render import passage, pianorolls, write_passage
from vqvae_recompose.sampling import decode, sample_passages
from vqvae_recompose.train import (
    build_prior,
    build_vqvae,
    encode_all,
    mean_prior_nll,
    previous_codes,
    reconstruct,
)

VOICES = ("soprano", "alto", "tenor", "bass")
PASSAGE_BARS = 8  # Fig. 1 / Fig. 2: 8-bar passages


def load_models(run_dir: Path | str):
    """(cfg, vqvae, priors {"chord", "spatial"?}, vocabulary) of a run, eval mode, on CPU."""
    cfg = check_run_dir(run_dir, "vqvae_recompose", need_checkpoint=True)
    state = load_checkpoint(run_dir)
    vocabulary = ChordVocabulary(np.array(state["extra"]["chord_classes"], dtype=np.int64))
    vqvae = build_vqvae(cfg)
    vqvae.load_state_dict(state["objects"]["vqvae"])
    priors = {}
    for name in ("chord", "spatial"):
        if f"prior_{name}" in state["objects"]:
            priors[name] = build_prior(cfg, len(vocabulary), spatial=name == "spatial")
            priors[name].load_state_dict(state["objects"][f"prior_{name}"])
            priors[name].eval()
    return cfg, vqvae.eval(), priors, vocabulary


def match_rates(voices: np.ndarray, own: np.ndarray, unrelated: np.ndarray) -> tuple[float, float]:
    """How often the chord recomputed from each measure equals its conditioning chord, and an unrelated one."""
    chords = measure_chord(voices)
    return float((chords == own).mean()), float((chords == unrelated).mean())


def unrelated_labels(chords: np.ndarray, n: int, generator: np.random.Generator) -> np.ndarray:
    """For each of ``n`` samples of measure ``i % len(chords)``, the label of a random *other* measure."""
    m = len(chords)
    own = np.arange(n) % m
    other = (own + generator.integers(1, m, size=n)) % m
    return chords[other]


def per_position_unigram_nll(train_codes: torch.Tensor, valid_codes: torch.Tensor, k: int) -> float:
    """Cross-entropy on validation of a model with one code distribution per map position, fitted on
    train with add-one smoothing: the bar a prior must beat by using its causal context and the chords."""
    flat_train = train_codes.flatten(1)
    counts = torch.ones(flat_train.shape[1], k, dtype=torch.float64)
    counts.scatter_add_(1, flat_train.t(), torch.ones_like(flat_train.t(), dtype=torch.float64))
    log_p = (counts / counts.sum(1, keepdim=True)).log()
    picked = log_p.gather(1, valid_codes.flatten(1).t())
    return float(-picked.mean())


def unigram_entropy(codes: torch.Tensor, k: int) -> float:
    p = torch.bincount(codes.flatten(), minlength=k).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def longest_passage(previous: np.ndarray, bars: int) -> np.ndarray:
    """Indices of the first run of ``bars`` consecutive measures of one piece (the longest if shorter)."""
    best: list[int] = []
    run: list[int] = []
    for i, p in enumerate(previous):
        run = [*run, i] if p >= 0 and run and run[-1] == p else [i]
        if len(run) > len(best):
            best = list(run)
        if len(best) >= bars:
            return np.array(best[:bars])
    return np.array(best)


def evaluate(run_dir: Path | str, audio: bool = True) -> dict:
    """Every result key of the run; also writes ``eval.json``, plots and samples into ``run_dir``."""
    started = time.time()
    run_dir = Path(run_dir)
    cfg, vqvae, priors, vocabulary = load_models(run_dir)
    set_threads(cfg.threads)
    train_set, valid_set, _ = load_measures(cfg.data, vocabulary)
    if cfg.sample.valid_measures > 0:
        valid_set = valid_set.subset(np.arange(min(cfg.sample.valid_measures, len(valid_set))))
    low, k, batch = cfg.data.pitch_low, cfg.vqvae.codebook_size, cfg.train.valid_batch
    train_images = voices_to_image(train_set.voices, low, cfg.data.n_pitches)
    valid_images = voices_to_image(valid_set.voices, low, cfg.data.n_pitches)
    results: dict[str, float] = {}
    plots_dir, samples_dir = run_dir / "plots", run_dir / "samples"

    # ---------------------------------------------------------------- R1: reconstruction
    recon = image_to_voices(reconstruct(vqvae, valid_images, batch), low, cfg.sample.threshold)
    correct = recon == valid_set.voices
    results["vqvae/heldout_pitch_accuracy"] = float(correct.mean())
    for v, name in enumerate(VOICES):
        results[f"vqvae/heldout_pitch_accuracy_{name}"] = float(correct[:, v].mean())
    train_codes, valid_codes = (
        encode_all(vqvae, train_images, batch),
        encode_all(vqvae, valid_images, batch),
    )
    results["vqvae/codebook_perplexity"] = codebook_perplexity(valid_codes, k)
    results["vqvae/codebook_perplexity_train"] = codebook_perplexity(train_codes, k)
    results["vqvae/codes_used"] = int(
        (torch.bincount(train_codes.flatten(), minlength=k) > 0).sum()
    )
    # a baseline that knows each voice's commonest pitch (rests included) in training
    commonest = [np.bincount(train_set.voices[:, v].ravel() + 1).argmax() - 1 for v in range(4)]
    results["vqvae/commonest_pitch_accuracy"] = float(
        np.mean([(valid_set.voices[:, v] == commonest[v]).mean() for v in range(4)])
    )

    # ---------------------------------------------------------------- R2, R3: the prior's likelihood
    chords = torch.from_numpy(valid_set.triplets)
    shuffled = chords[
        torch.randperm(len(chords), generator=torch.Generator().manual_seed(cfg.sample.seed))
    ]
    prev = previous_codes(valid_codes, valid_set.previous, k)
    for name, prior in priors.items():
        prefix = "prior" if name == "chord" else "spatial"
        p = prev if prior.spatial else None
        results[f"{prefix}/nll_true_chords"] = mean_prior_nll(prior, valid_codes, chords, p, batch)
        results[f"{prefix}/nll_shuffled_chords"] = mean_prior_nll(
            prior, valid_codes, shuffled, p, batch
        )
    results["prior/per_position_unigram_nll"] = per_position_unigram_nll(
        train_codes, valid_codes, k
    )
    results["prior/code_unigram_entropy"] = unigram_entropy(train_codes, k)
    results["prior/ratio_true_vs_shuffled"] = (
        results["prior/nll_true_chords"] / results["prior/nll_shuffled_chords"]
    )
    results["prior/ratio_vs_per_position_unigram"] = (
        results["prior/nll_true_chords"] / results["prior/per_position_unigram_nll"]
    )

    # ---------------------------------------------------------------- R4: chord adherence of samples
    shape = tuple(valid_codes.shape[1:])
    generator = torch.Generator().manual_seed(cfg.sample.seed)
    rng = np.random.default_rng(cfg.sample.seed)
    n_each = cfg.sample.per_measure
    repeated = np.tile(valid_set.triplets, (n_each, 1))
    codes = sample_passages(
        priors["chord"], repeated, None, shape, cfg.sample.temperature, generator
    )
    samples = decode(vqvae, codes, low, cfg.sample.threshold)  # [n_each * N, 4, 16], measure i % N
    own = np.tile(valid_set.chords, n_each)
    unrelated = unrelated_labels(valid_set.chords, len(samples), rng)
    results["samples/n"] = len(samples)
    results["samples/temperature"] = cfg.sample.temperature
    results["samples/chord_match_rate"], results["samples/chord_match_rate_unrelated"] = (
        match_rates(samples, own, unrelated)
    )
    results["samples/chord_match_ratio"] = results["samples/chord_match_rate"] / max(
        results["samples/chord_match_rate_unrelated"], 1e-9
    )
    results["reconstructions/chord_match_rate"], _ = match_rates(
        recon, valid_set.chords, valid_set.chords
    )
    results["real/chord_match_rate_unrelated"] = float(
        (valid_set.chords == unrelated_labels(valid_set.chords, len(valid_set), rng)).mean()
    )

    # ---------------------------------------------------------------- R5: rests, dissonance, gaps
    per_measure = samples.reshape(n_each, len(valid_set), 4, -1)
    chord_only = per_measure[0]
    variants = {"real": valid_set.voices, "samples": samples}
    if "spatial" in priors:
        spatial_codes = sample_passages(
            priors["spatial"],
            valid_set.triplets,
            valid_set.previous,
            shape,
            cfg.sample.temperature,
            generator,
        )
        spatial = decode(vqvae, spatial_codes, low, cfg.sample.threshold)
        variants["spatial"] = spatial
        results["spatial/chord_match_rate"], results["spatial/chord_match_rate_unrelated"] = (
            match_rates(spatial, valid_set.chords, unrelated[: len(valid_set)])
        )
    starts = np.flatnonzero(valid_set.previous < 0)
    ends = [*starts[1:], len(valid_set)]
    for name, voices in variants.items():
        results[f"{name}/rest_rate"] = rest_rate(voices)
        results[f"{name}/dissonance_rate"] = dissonance_rate(voices)
        sequence = voices if name != "samples" else chord_only
        gaps = [longest_rest_runs(passage(sequence[s:e])).mean() for s, e in zip(starts, ends)]
        results[f"{name}/longest_rest_run"] = float(np.mean(gaps))
    results["samples/diversity"] = mean_pairwise_difference(per_measure)
    if "spatial" in priors:
        results["claim/spatial_more_rests_and_dissonance"] = float(
            results["spatial/rest_rate"] > results["samples/rest_rate"]
            and results["spatial/dissonance_rate"] > results["samples/dissonance_rate"]
        )

    # ---------------------------------------------------------------- figures and sounds
    figure_passages(cfg, vqvae, priors, valid_set, shape, plots_dir, samples_dir, audio)
    pianorolls(
        plots_dir / "reconstructions.png",
        [passage(valid_set.voices[:8]), passage(recon[:8])],
        [
            "held-out measures",
            f"VQ-VAE reconstructions (pitch accuracy {results['vqvae/heldout_pitch_accuracy']:.2f})",
        ],
    )
    usage = np.sort(torch.bincount(train_codes.flatten(), minlength=k).numpy())[::-1]
    plots.bar_chart(plots_dir / "codebook_usage.png", [str(i) if i % 8 == 0 else "" for i in range(k)], usage,
                    ylabel="latent cells (train)", title=f"codebook usage, sorted (perplexity {results['vqvae/codebook_perplexity_train']:.1f})")  # fmt: skip
    adherence = {"reconstructions (ceiling)": results["reconstructions/chord_match_rate"],
                 "chord-only samples": results["samples/chord_match_rate"],
                 "chord-only vs unrelated label": results["samples/chord_match_rate_unrelated"]}  # fmt: skip
    if "spatial" in priors:
        adherence["chord + spatial samples"] = results["spatial/chord_match_rate"]
    plots.bar_chart(plots_dir / "chord_adherence.png", list(adherence), list(adherence.values()),
                    ylabel="chord match rate", title=f"chord adherence (T = {cfg.sample.temperature})")  # fmt: skip
    learning_curves(run_dir, plots_dir)

    results["eval_wall_clock_s"] = round(time.time() - started, 1)
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def figure_passages(cfg, vqvae, priors, valid_set, shape, plots_dir, samples_dir, audio):
    """Fig. 1: two samples over one held-out 8-bar progression (different seeds); Fig. 2: chord-only vs
    chord + spatial conditioning over it. MIDI (and WAV) of each under ``samples/``."""
    bars = longest_passage(valid_set.previous, PASSAGE_BARS)
    triplets, previous = valid_set.triplets[bars], np.r_[-1, np.arange(len(bars) - 1)]
    names = [chord_name(c) for c in valid_set.chords[bars]]
    low, t = cfg.data.pitch_low, cfg.sample.temperature
    made = {"original": passage(valid_set.voices[bars])}
    for seed in (0, 1):
        g = torch.Generator().manual_seed(cfg.sample.seed + 100 + seed)
        made[f"chord_only_seed{seed}"] = passage(decode(vqvae, sample_passages(priors["chord"], triplets, previous, shape, t, g), low))  # fmt: skip
    if "spatial" in priors:
        g = torch.Generator().manual_seed(cfg.sample.seed + 200)
        made["chord_spatial_seed0"] = passage(decode(vqvae, sample_passages(priors["spatial"], triplets, previous, shape, t, g), low))  # fmt: skip
    progression = " ".join(names)
    pianorolls(plots_dir / "fig1_two_seeds.png", [made["original"], made["chord_only_seed0"], made["chord_only_seed1"]],
               ["held-out original", "chord-only prior, seed 0", "chord-only prior, seed 1"], labels=names,
               suptitle=f"Fig. 1 analogue: one progression, two samples ({progression})")  # fmt: skip
    if "spatial" in priors:
        pianorolls(plots_dir / "fig2_chord_vs_spatial.png", [made["chord_only_seed0"], made["chord_spatial_seed0"]],
                   ["chords only", "chords + previous measure's codes"], labels=names,
                   suptitle="Fig. 2 analogue: chord-only vs chord + spatial conditioning")  # fmt: skip
    for name, music in made.items():
        write_passage(music, samples_dir / name, wav=audio)
    (samples_dir / "progression.txt").write_text(progression + "\n")


def learning_curves(run_dir: Path, plots_dir: Path) -> None:
    """Validation curves logged during training (both stages)."""
    records = read_metrics(run_dir)
    for keys, ylabel, name in (
        (["eval/vqvae_valid_pitch_accuracy"], "held-out pitch accuracy", "vqvae_accuracy_curve"),
        (["eval/prior_chord_valid_nll", "eval/prior_spatial_valid_nll"], "validation NLL (nats per code)",
         "prior_nll_curve"),
    ):  # fmt: skip
        rows = [r for r in records if keys[0] in r]
        if not rows:
            continue
        curves = {k.split("/")[-1]: np.array([r[k] for r in rows]) for k in keys if k in rows[0]}
        x = np.array([r["step"] for r in rows])
        plots.learning_curves(plots_dir / f"{name}.png", curves, x=x, ylabel=ylabel, title=ylabel)


@entry_point("python -m vqvae_recompose.eval")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vqvae_recompose.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--run", required=True, help="run directory (runs/vqvae_recompose/<name>)")
    parser.add_argument("--no-audio", action="store_true", help="skip WAV rendering of the samples")
    args = parser.parse_args(argv)
    results = evaluate(args.run, audio=not args.no_audio)
    for key, value in sorted(results.items()):
        print(
            f"{key:45s} {value:.4g}"
            if isinstance(value, float) and math.isfinite(value)
            else f"{key:45s} {value}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
