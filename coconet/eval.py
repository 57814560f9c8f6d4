"""Evaluate a trained Coconet run: likelihoods, baselines, ancestral vs. Gibbs samples, inpainting and
harmonisation (arXiv 1903.07227: the log-likelihood evaluation and sampling sections).

    python -m coconet.eval --run runs/coconet/quick/chorales_seed0 [--no-audio]

Needs nothing but the run directory (its config.yaml and checkpoint). Writes ``eval.json`` (flat
``"<setting>/<metric>": number``) and, under ``plots/`` and ``samples/``, the figures, MIDI and WAV files.

Normalisations (all NLLs in nats):
- ``valid/nll_*``, ``baseline/*``: per masked sounding cell, pooled over the cells of fixed validation crops
  with orderless masks (the training objective);
- ``valid/notewise_*``: exact chain rule, per sounding cell; ``valid/framewise_*``: the same, per frame;
  ``valid/framewise_nll_paper_*``: the authors' released framewise evaluator with its argmax quirk, per frame;
- ``samples/*``: each sample's notewise NLL per cell (random orderings, ensembled), mean over samples;
- ``harmonize/*`` (the harmoniser's default settings), ``harmonize_t1/*`` (temperature 1.0), ``bach/*``
  (Bach's own chorales), ``shifted_control/*`` (Bach's voices shifted in time) on the first
  ``eval.harmonize_frames`` sixteenths of the validation chorales, and ``samples_{gibbs,ancestral,bach}/*``
  on the unconditional samples: the statistics of ``coconet.harmony``, per simultaneity.
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

from coconet.baselines import CopyNeighbour, unigram, unigram_cell_nll
from coconet.data import check_pieces, fixed_masked_crops, load_split
from coconet.harmony import harmony_stats, time_shifted, voice_ranges
from coconet.likelihood import (
    binned_by_mask_fraction,
    chain_rule_cell_log_probs,
    chain_rule_log_likelihood,
    ensemble,
    framewise_paper_log_probs,
    masked_cell_nll,
    per_example,
    pooled,
)
from coconet.model import Coconet, orderless_mask
from coconet.proxies import music_proxies
from coconet.render import pianoroll_figure, write_score
from coconet.sampling import ancestral_sample, gibbs_sample, harmonize
from coconet.trained import load_model
from common import plots
from common.music import (
    N_PITCHES,
    N_VOICES,
    pianoroll_to_voices,
    voices_to_pianoroll,
)
from common.results import print_results
from common.runner import pick_device, read_metrics, set_threads


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return float(values.mean()), float(values.std(unbiased=True) / math.sqrt(len(values)))


def notewise_per_cell(
    model: Coconet, voices: torch.Tensor, orderings: int, seed: int
) -> torch.Tensor:
    """Each score's ensembled notewise NLL per sounding cell ``[B]`` (random orderings, fixed seed)."""
    log_p, _ = chain_rule_log_likelihood(
        model, voices, orderings, "random", torch.Generator().manual_seed(seed)
    )
    return -log_p / (voices >= 0).sum((1, 2)).clamp(min=1)


def sample_scores(model: Coconet, cfg, trace_every: int = 16) -> dict:
    """32 fixed-seed unconditional samples per method, the Gibbs NLL trace, and their scores."""
    s = cfg.sample
    n, length = s.num_samples, s.length
    steps = s.gibbs_steps or N_VOICES * length  # N = T * I, the released code's default
    device = next(model.parameters()).device
    blank = torch.zeros(n, N_VOICES, length, N_PITCHES, device=device)
    everything = torch.ones(n, N_VOICES, length, dtype=torch.bool, device=device)
    generator = {name: torch.Generator().manual_seed(s.seed + i) for i, name in enumerate("agi")}
    timings = {}

    started = time.time()
    ancestral = ancestral_sample(model, blank, everything, s.temperature, generator["a"])
    timings["ancestral"] = time.time() - started
    started, trace = time.time(), []
    gibbs = gibbs_sample(
        model, blank, everything, steps, s.pmax, s.pmin, s.eta, s.temperature, generator["g"], trace
    )
    timings["gibbs"] = time.time() - started
    # Control: one independent pass (Gibbs with N = 1, p_max = p_min = 1) must not beat ancestral.
    independent = gibbs_sample(
        model, blank, everything, 1, 1.0, 1.0, 1.0, s.temperature, generator["i"]
    )

    # The Gibbs chain's quality along the way, by the cheap orderless-mask estimate (4 masks a sample).
    masks = orderless_mask(4 * n, N_VOICES, length, generator=torch.Generator().manual_seed(s.seed))
    trace_steps = [0, *range(trace_every, steps + 1, trace_every)]
    trace_nll = []
    for k in trace_steps:
        voices = pianoroll_to_voices(trace[k - 1] if k else independent).cpu().repeat(4, 1, 1)
        nll, counted = masked_cell_nll(model, voices, masks)
        trace_nll.append(float(per_example(nll, counted).mean()))
    return {
        "ancestral": pianoroll_to_voices(ancestral).cpu(),
        "gibbs": pianoroll_to_voices(gibbs).cpu(),
        "independent": pianoroll_to_voices(independent).cpu(),
        "trace_steps": trace_steps,
        "trace_nll": trace_nll,
        "timings": timings,
        "gibbs_steps": steps,
    }


def inpaint(
    model: Coconet, crop: torch.Tensor, cfg, seed: int, method: str = "gibbs"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase the middle half of a real crop ``[4, T]`` and refill it (annealed Gibbs or ancestral)."""
    s = cfg.sample
    time_steps = crop.shape[-1]
    device = next(model.parameters()).device
    region = torch.zeros(1, N_VOICES, time_steps, dtype=torch.bool, device=device)
    region[..., time_steps // 4 : 3 * time_steps // 4] = True
    roll, generator = (
        voices_to_pianoroll(crop[None].to(device)),
        torch.Generator().manual_seed(seed),
    )
    if method == "gibbs":
        steps = s.gibbs_steps or int(region.sum())
        filled = gibbs_sample(
            model, roll, region, steps, s.pmax, s.pmin, s.eta, s.temperature, generator
        )
    else:
        filled = ancestral_sample(model, roll, region, s.temperature, generator)
    return pianoroll_to_voices(filled)[0].cpu(), region[0].cpu()


STATS = {  # coconet.harmony's statistics and how the plots label them
    "voice_crossing_rate": "voice crossing (per simultaneity)",
    "parallel_5ths_8ves_per_move": "parallel 5ths/8ves per voice-pair move",
    "out_of_voice_range_rate": "notes outside the voice's range",
    "simultaneities_per_bar": "simultaneities per bar",
}


def prefixed_stats(
    prefix: str, scores: np.ndarray, ranges, reference: dict | None, range_voices
) -> dict[str, float]:
    """``coconet.harmony`` statistics of ``scores`` as ``<prefix>/<stat>`` keys, with the ratio of
    simultaneities to the ``reference`` (Bach's statistics on the same melodies or crops)."""
    stats = harmony_stats(scores, *ranges, range_voices=range_voices)
    if reference is not None:
        stats["simultaneities_ratio_to_bach"] = (
            stats["simultaneities_per_bar"] / reference["simultaneities_per_bar"]
        )
    return {f"{prefix}/{name}": value for name, value in stats.items()}


def harmonization_scores(model: Coconet, valid_pieces, cfg) -> dict[str, np.ndarray]:
    """Bach's validation chorales (their first ``eval.harmonize_frames`` sixteenths), the time-shifted
    control, and the model's harmonisations of their sopranos at the harmoniser's default settings and at
    temperature 1.0, each ``[N, 4, T]``."""
    frames, s = cfg.eval.harmonize_frames, cfg.sample
    bach = np.stack([p[:, :frames] for p in valid_pieces if p.shape[1] >= frames])
    bach = bach[: cfg.eval.harmonize_pieces].astype(np.int64)
    scores = {"bach": bach, "shifted_control": time_shifted(bach)}
    steps = max(1, round(cfg.harmonize.steps_per_frame * frames))
    sopranos = torch.from_numpy(bach[:, 0])
    for name, temperature in (("harmonize", cfg.harmonize.temperature), ("harmonize_t1", 1.0)):
        generator = torch.Generator().manual_seed(s.seed)
        harmonized = harmonize(
            model, sopranos, steps, temperature, generator, s.pmax, s.pmin, s.eta
        )
        scores[name] = harmonized.numpy()
    return scores


def harmony_curves(run_dir: Path, path: Path, cfg, valid_pieces, ranges) -> Path | None:
    """Each harmonisation statistic logged during training (``train.harmony_every``) against training
    time, at the harmoniser's temperature and at 1.0, beside Bach's and the shifted control's values on the
    same sopranos; None when the run logged none."""
    import matplotlib.pyplot as plt

    logged = [m for m in read_metrics(run_dir) if "harmony/voice_crossing_rate" in m]
    if not logged:
        return None
    frames = cfg.train.harmony_frames
    bach = np.stack([p[:, :frames] for p in valid_pieces if p.shape[1] >= frames])
    bach = bach[: cfg.train.harmony_pieces].astype(np.int64)
    lower = (1, 2, 3)
    references = {
        "Bach": harmony_stats(bach, *ranges, range_voices=lower),
        "shifted control": harmony_stats(time_shifted(bach), *ranges, range_voices=lower),
    }
    minutes = np.array([m["perf/train_seconds"] for m in logged]) / 60
    fig, axes = plt.subplots(1, len(STATS), figsize=(4 * len(STATS), 3.4))
    for ax, (name, label) in zip(axes, STATS.items()):
        for prefix, shown in (
            ("harmony", f"temperature {cfg.harmonize.temperature:g}"),
            ("harmony_t1", "temperature 1"),
        ):
            ax.plot(minutes, [m[f"{prefix}/{name}"] for m in logged], marker="o", ms=3, label=shown)
        for (ref_name, ref), style in zip(references.items(), ("--", ":")):
            ax.axhline(ref[name], color="k", ls=style, lw=1, label=ref_name)
        ax.set_xlabel("training time (minutes, 1 CPU thread, loaded machine)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"Harmonising {len(bach)} validation sopranos ({frames} sixteenths) during training",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate(run_dir: Path | str, audio: bool = True) -> dict:
    """Every evaluation of a run; returns the flat results dict (also written to <run>/eval.json)."""
    run_dir = Path(run_dir)
    model, cfg = load_model(run_dir)
    set_threads(cfg.threads)
    model.to(pick_device(cfg.device))  # the full model wants its GPU for the chain-rule evaluations
    torch.manual_seed(cfg.seed)
    plots_dir, samples_dir = run_dir / "plots", run_dir / "samples"
    crop_len = cfg.data.crop_len
    results: dict[str, float] = {}
    started = time.time()

    # ---------------------------------------------------------------- validation NLL per masked cell
    train_pieces = check_pieces(load_split("train"), crop_len)
    valid_pieces = check_pieces(load_split("valid", cfg.data.valid_pieces), crop_len)
    voices, hidden = fixed_masked_crops(
        valid_pieces, cfg.data.valid_masks_per_piece, crop_len, cfg.data.valid_seed
    )
    nll, counted = masked_cell_nll(model, voices, hidden)
    fraction = hidden.float().mean((1, 2))
    results["valid/nll_per_masked_cell"] = pooled(nll, counted)
    results["valid/nll_per_example_mean"] = float(per_example(nll, counted).mean())
    results["valid/nll_low_mask"] = pooled(nll, counted, fraction < cfg.eval.low_mask)
    results["valid/nll_high_mask"] = pooled(nll, counted, fraction > cfg.eval.high_mask)
    results["valid/masked_cells"] = int(counted.sum())

    # ---------------------------------------------------------------- baselines on the same cells
    # Tuned on training crops with their own seed: nothing about the validation cells leaks in.
    unigram_probs = unigram(train_pieces)
    tune_voices, tune_hidden = fixed_masked_crops(
        train_pieces, cfg.data.baseline_masks_per_piece, crop_len, cfg.data.valid_seed + 1
    )
    copy = CopyNeighbour.fit(tune_voices, tune_hidden, unigram_probs)
    copy_nll = copy.cell_nll(voices, hidden)
    results["baseline/copy_neighbour_nll"] = float(copy_nll.mean())
    results["baseline/unigram_nll"] = float(unigram_cell_nll(voices, hidden, unigram_probs).mean())
    results["baseline/uniform_nll"] = math.log(N_PITCHES)
    results["valid/copy_neighbour_minus_model"] = (
        results["baseline/copy_neighbour_nll"] - results["valid/nll_per_masked_cell"]
    )
    centres, model_bins, sizes = binned_by_mask_fraction(nll, counted, hidden)
    copy_cells = torch.zeros_like(nll)
    copy_cells[counted] = copy_nll  # boolean indexing flattens in the same (row-major) order
    _, copy_bins, _ = binned_by_mask_fraction(copy_cells, counted, hidden)
    filled = np.array(sizes) > 0
    plots.learning_curves(
        plots_dir / "nll_vs_mask_fraction.png",
        {
            "Coconet": np.array(model_bins)[filled],
            "copy nearest note (tuned)": np.array(copy_bins)[filled],
        },
        x=np.array(centres)[filled], xlabel="fraction of cells masked", ylabel="NLL per masked cell (nats)",
        title="Validation NLL vs. how much is hidden",
        hline={"unigram": results["baseline/unigram_nll"]},
    )  # fmt: skip
    print(f"coconet eval: masked-cell NLL and baselines done ({time.time() - started:.0f} s)")

    # ---------------------------------------------------------------- exact chain-rule NLL on crops
    rng = np.random.default_rng(cfg.data.valid_seed)
    picks = rng.choice(
        len(valid_pieces), size=min(cfg.eval.notewise_crops, len(valid_pieces)), replace=False
    )
    crops = []
    for n in picks:
        start = rng.integers(valid_pieces[n].shape[1] - crop_len + 1)
        crops.append(valid_pieces[n][:, start : start + crop_len])
    crops = torch.from_numpy(np.stack(crops).astype(np.int64))
    cells = (crops >= 0).sum((1, 2)).double()
    K = cfg.eval.ensemble
    for kind in ("random", "chronological", "frames"):
        generator = torch.Generator().manual_seed(cfg.seed)
        cell_log_p = chain_rule_cell_log_probs(model, crops, K, kind, generator)  # [K, B, I, T]
        example_log_p = ensemble(cell_log_p.sum((2, 3)))  # mixture over orderings, per crop
        if kind == "random":  # notewise: one cell at a time in random order
            results["valid/notewise_nll_random"] = float((-example_log_p / cells).mean())
            single = -cell_log_p.sum((2, 3)) / cells
            results["valid/notewise_nll_random_single_ordering"] = float(single.mean())
            # The released code's ensembling evaluator averages each unit's probability over orderings.
            unit = ensemble(cell_log_p).sum((1, 2))
            results["valid/notewise_nll_random_unit_ensemble"] = float((-unit / cells).mean())
        else:  # frame by frame (chronological or random frames), voices in random order inside
            name = "chronological" if kind == "chronological" else "random"
            results[f"valid/framewise_nll_{name}"] = float((-example_log_p / crop_len).mean())
            if kind == "chronological":
                results["valid/notewise_nll_chronological"] = float((-example_log_p / cells).mean())
    for chronological in (False, True):
        generator = torch.Generator().manual_seed(cfg.seed)
        frame_log_p = framewise_paper_log_probs(model, crops, K, chronological, generator)
        name = "chronological" if chronological else "random"
        results[f"valid/framewise_nll_paper_{name}"] = float(-ensemble(frame_log_p).mean())
    print(f"coconet eval: chain-rule NLL done ({time.time() - started:.0f} s)")

    # ---------------------------------------------------------------- ancestral vs. annealed Gibbs
    drawn = sample_scores(model, cfg)
    bach_voices, _ = fixed_masked_crops(
        valid_pieces, 1, cfg.sample.length, cfg.data.valid_seed + 2
    )  # one real crop per validation piece, the length of the samples
    real = bach_voices[: cfg.sample.num_samples]
    scores = {}
    for i, method in enumerate(("gibbs", "ancestral", "independent")):
        scores[method] = notewise_per_cell(model, drawn[method], cfg.sample.score_orderings, i)
    scores["bach"] = notewise_per_cell(model, real, cfg.sample.score_orderings, 3)
    for method, values in scores.items():
        mean, stderr = mean_and_stderr(values)
        results[f"samples/nll_{method}_mean"] = mean
        results[f"samples/nll_{method}_stderr"] = stderr
    for other in ("ancestral", "independent"):
        gap = results[f"samples/nll_{other}_mean"] - results["samples/nll_gibbs_mean"]
        pooled_se = math.hypot(
            results[f"samples/nll_{other}_stderr"], results["samples/nll_gibbs_stderr"]
        )
        results[f"samples/{other}_minus_gibbs_in_stderrs"] = gap / pooled_se
    for method in ("gibbs", "ancestral", "independent", "bach"):
        voices_of = real if method == "bach" else drawn[method]
        soprano = voices_of[:, 0][voices_of[:, 0] >= 0].double()
        results[f"samples/soprano_mean_pitch_{method}"] = float(soprano.mean())
    for method in ("bach", "gibbs", "ancestral"):  # automatic stand-ins for the human evaluation
        proxies = music_proxies((real if method == "bach" else drawn[method]).numpy(), train_pieces)
        results.update({f"proxies/{method}/{name}": value for name, value in proxies.items()})
    results["samples/ancestral_seconds"] = drawn["timings"]["ancestral"]
    results["samples/gibbs_seconds"] = drawn["timings"]["gibbs"]
    results["samples/gibbs_steps"] = drawn["gibbs_steps"]
    print(f"coconet eval: samples done ({time.time() - started:.0f} s)")

    order = ["bach", "gibbs", "ancestral", "independent"]
    plots.bar_chart(
        plots_dir / "sample_nll.png",
        ["Bach (valid crops)", "annealed Gibbs", "ancestral", "one independent pass"],
        [results[f"samples/nll_{m}_mean"] for m in order],
        [results[f"samples/nll_{m}_stderr"] for m in order],
        ylabel="notewise NLL per cell under the model (nats)",
        title=f"{cfg.sample.num_samples} samples per method (mean +- s.e.)",
    )
    plots.learning_curves(
        plots_dir / "gibbs_nll_vs_steps.png",
        {"annealed Gibbs": np.array(drawn["trace_nll"])},
        x=np.array(drawn["trace_steps"]), xlabel="Gibbs step", ylabel="NLL per cell (orderless masks)",
        title="Annealed blocked Gibbs: sample NLL along the chain",
        hline={"ancestral (notewise)": results["samples/nll_ancestral_mean"]},
    )  # fmt: skip
    pianoroll_figure(
        plots_dir / "samples.png",
        [*drawn["gibbs"][:4].numpy(), *drawn["ancestral"][:4].numpy(), *real[:4].numpy()],
        [f"Gibbs {i}" for i in range(4)] + [f"ancestral {i}" for i in range(4)]
        + [f"Bach {i}" for i in range(4)],
        suptitle="Unconditional samples: annealed Gibbs (top), ancestral (middle), real crops (bottom)",
    )  # fmt: skip

    # ---------------------------------------------------------------- inpainting a real chorale
    inpaint_voices, _ = fixed_masked_crops(
        valid_pieces[:1], 1, 2 * crop_len, cfg.data.valid_seed + 3
    )
    original = inpaint_voices[0]
    filled, region = inpaint(model, original, cfg, cfg.seed, "gibbs")
    filled_ancestral, _ = inpaint(model, original, cfg, cfg.seed, "ancestral")
    pianoroll_figure(
        plots_dir / "inpainting.png",
        [original.numpy(), filled.numpy(), filled_ancestral.numpy()],
        ["real chorale crop", "middle half refilled: annealed Gibbs", "refilled: ancestral"],
        regions=[None, region.numpy(), region.numpy()],
        columns=3,
    )
    written = []
    for method in ("gibbs", "ancestral"):
        for i in range(2):
            written += write_score(
                drawn[method][i].numpy(), samples_dir / f"{method}_{i}", wav=audio
            )
    written += write_score(original.numpy(), samples_dir / "inpainting_original", wav=audio)
    written += write_score(filled.numpy(), samples_dir / "inpainting_gibbs", wav=audio)
    written += write_score(
        filled_ancestral.numpy(), samples_dir / "inpainting_ancestral", wav=audio
    )
    np.savez_compressed(
        samples_dir / "samples.npz",
        **{m: drawn[m].numpy() for m in ("gibbs", "ancestral", "independent")},
    )

    # ---------------------------------------------------------------- harmonisation statistics
    ranges = voice_ranges(train_pieces)
    unconditional = {"samples_bach": real.numpy(), "samples_gibbs": drawn["gibbs"].numpy(),
                     "samples_ancestral": drawn["ancestral"].numpy()}  # fmt: skip
    reference = harmony_stats(unconditional["samples_bach"], *ranges)
    for prefix, scores in unconditional.items():
        results.update(prefixed_stats(prefix, scores, ranges, reference, range(N_VOICES)))
    if cfg.eval.harmonize_pieces > 0:
        harmonized = harmonization_scores(model, valid_pieces, cfg)
        lower = (1, 2, 3)  # the generated voices; the soprano is Bach's in every set
        reference = harmony_stats(harmonized["bach"], *ranges, range_voices=lower)
        for prefix, scores in harmonized.items():
            results.update(prefixed_stats(prefix, scores, ranges, reference, lower))
        shown = range(min(2, len(harmonized["bach"])))
        generated = np.zeros(harmonized["bach"].shape[1:], dtype=bool)
        generated[1:] = True
        pianoroll_figure(
            plots_dir / "harmonization.png",
            [score for n in shown for score in (harmonized["bach"][n], harmonized["harmonize"][n])],
            [title for n in shown for title in (f"Bach, validation chorale {n}",
             f"Coconet, same soprano (temperature {cfg.harmonize.temperature:g})")],
            regions=[None, generated] * len(shown), columns=2,
        )  # fmt: skip
        for name in ("harmonize", "bach"):
            stem = samples_dir / f"harmonization_{name}_0"
            written += write_score(harmonized[name][0], stem, wav=audio)
        print(f"coconet eval: harmonisation done ({time.time() - started:.0f} s)")
    harmony_curves(run_dir, plots_dir / "harmony_vs_training_time.png", cfg, valid_pieces, ranges)

    # ---------------------------------------------------------------- learning curve
    metrics = read_metrics(run_dir)
    train_curve = [(m["step"], m["losses/train_nll"]) for m in metrics if "losses/train_nll" in m]
    valid_curve = [(m["step"], m["eval/valid_nll_per_masked_cell"]) for m in metrics if "eval/valid_nll_per_masked_cell" in m]  # fmt: skip
    if valid_curve:
        plots.learning_curves(
            plots_dir / "learning_curve.png",
            {"validation (pooled per masked cell)": np.array([v for _, v in valid_curve])},
            x=np.array([s for s, _ in valid_curve]), xlabel="step", ylabel="NLL (nats)",
            title=f"Coconet {cfg.model.layers}x{cfg.model.filters} (train loss: last "
            f"{train_curve[-1][1]:.2f} per example)" if train_curve else "Coconet",
            hline={"copy nearest note (tuned)": results["baseline/copy_neighbour_nll"],
                   "unigram": results["baseline/unigram_nll"]},
        )  # fmt: skip
    results["eval_seconds"] = time.time() - started
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(
        f"coconet eval: wrote {run_dir / 'eval.json'}, plots in {plots_dir}, audio in {samples_dir}"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m coconet.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="run directory, e.g. runs/coconet/quick/chorales_seed0"
    )
    parser.add_argument(
        "--no-audio", action="store_true", help="write MIDI only, no WAV renderings"
    )
    args = parser.parse_args(argv)
    if not (Path(args.run) / "config.yaml").is_file():
        parser.error(
            f"{args.run} is not a run directory (no config.yaml); train one with coconet.train"
        )
    results = evaluate(args.run, audio=not args.no_audio)
    print_results(results)


if __name__ == "__main__":
    main(sys.argv[1:])
