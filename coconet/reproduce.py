"""`make coconet` / `make coconet-medium` / `make coconet-full`: train Coconet at one scale, evaluate the run,
and keep its plots and trained model beside the results.

    python -m coconet.reproduce quick [key=value ...]     # also: python -m common.reproduce coconet quick
    python -m coconet.reproduce medium resume=true                   # continue a stopped (SIGTERM) run
    python -m coconet.reproduce medium resume=true train.steps=3662  # evaluate it at the step it reached

A stopped run is evaluated where it stopped by resuming it with ``train.steps`` set to its last step (the
loop has nothing left to do); a later ``resume=true`` with more steps continues it exactly.

Returns the flat results (``runs/coconet/<scale>/results.json``): validation NLL per masked cell (pooled,
and with little vs. most of the crop hidden), the tuned copy-neighbour baseline on the same cells, the
exact chain-rule NLLs, ancestral vs. annealed-Gibbs samples scored by the model, and the harmonisation
statistics (voice crossing, parallels, ranges, simultaneities) beside Bach's and a time-shifted control.
``runs/coconet/<scale>/`` also receives the run's plots and ``model/`` (safetensors + resolved config),
which ``python -m common.results publish coconet <scale>`` copies to ``results/coconet/``.
"""

from __future__ import annotations

import shutil
import time

from coconet.config import CONFIG_DIR, CoconetConfig
from coconet.eval import evaluate
from coconet.train import train
from coconet.trained import save_model
from common.config import load_config
from common.results import PaperNumber, reproduce_cli, results_dir, write_results
from common.runner import load_checkpoint

PAPER = "coconet"
SCALES = ("quick", "medium", "full")
ARXIV = "arXiv 1903.07227"
OURS = f"{ARXIV} gives no number for this; ours (repository measure)"
OTHER_DATA = (
    f"{ARXIV} Tables 1-2 report NLLs on the Boulanger-Lewandowski JSB split at quarter/eighth/"
    "sixteenth resolution; ours is music21's chorales, so no number carries over"
)
ORDERING = f"{ARXIV} sampling section: Gibbs samples are more likely under the model than ancestral ones (an ordering, no number on our data)"
HUMAN = f"{ARXIV} human evaluation (Mechanical Turk) instead; an automatic stand-in of ours"

STATS = ["voice_crossing_rate", "parallel_5ths_8ves_per_move", "out_of_voice_range_rate",
         "simultaneities_per_bar", "simultaneities_ratio_to_bach"]  # fmt: skip
PROXIES = ["parallel_fifths_octaves_per_100", "voice_crossing_frames", "out_of_range_cells",
           "triad_or_seventh_frames", "pitch_class_js_to_bach", "onsets_per_frame_per_voice"]  # fmt: skip
# Every results key, by family, with where the paper speaks to it. The paper's tables are on other data
# and its sample study is a human one, so no key has a number of the paper's to stand beside it.
_FAMILIES = {
    "valid": (OTHER_DATA, [
        "nll_per_masked_cell", "nll_per_example_mean", "nll_low_mask", "nll_high_mask", "masked_cells",
        "copy_neighbour_minus_model", "notewise_nll_random", "notewise_nll_random_single_ordering",
        "notewise_nll_random_unit_ensemble", "notewise_nll_chronological", "framewise_nll_random",
        "framewise_nll_chronological", "framewise_nll_paper_random",
        "framewise_nll_paper_chronological"]),
    "baseline": (OURS, ["copy_neighbour_nll", "unigram_nll", "uniform_nll"]),
    "samples": (ORDERING, [
        "ancestral_minus_gibbs_in_stderrs", "independent_minus_gibbs_in_stderrs",
        *(f"nll_{m}_{s}" for m in ("gibbs", "ancestral", "independent", "bach") for s in ("mean", "stderr")),
        *(f"soprano_mean_pitch_{m}" for m in ("gibbs", "ancestral", "independent", "bach")),
        "ancestral_seconds", "gibbs_seconds", "gibbs_steps"]),
    "proxies": (HUMAN, [f"{m}/{p}" for m in ("bach", "gibbs", "ancestral") for p in PROXIES]),
    **{family: (HUMAN, STATS) for family in (
        "harmonize", "harmonize_t1", "bach", "shifted_control",
        "samples_gibbs", "samples_ancestral", "samples_bach")},
    "train": (OURS, ["steps", "seconds"]),
}  # fmt: skip
PAPER_NUMBERS: dict[str, PaperNumber] = {
    f"{family}/{name}": PaperNumber(None, source)
    for family, (source, names) in _FAMILIES.items()
    for name in names
} | {key: PaperNumber(None, OURS) for key in ("eval_seconds", "wall_clock_s")}
HEADLINE = [
    "valid/nll_per_masked_cell",
    "baseline/copy_neighbour_nll",
    "samples/ancestral_minus_gibbs_in_stderrs",
    "harmonize/voice_crossing_rate",
]


def main(scale: str, overrides: list[str]) -> dict:
    """Train and evaluate every seed of ``scale``; the results are the first seed's (plus the others'
    headline numbers as ``seed<n>/<key>``)."""
    started = time.time()
    cfg = load_config(CoconetConfig, scale, overrides, CONFIG_DIR)
    out = results_dir(PAPER, scale, cfg.out_dir)
    results: dict[str, float] = {}
    for n, seed in enumerate(cfg.reproduce.seeds):
        run_cfg = cfg.copy()
        run_cfg.seed, run_cfg.name = seed, f"{scale}/chorales_seed{seed}"
        run_dir = train(run_cfg)
        evaluated = evaluate(run_dir, audio=cfg.reproduce.audio)
        if n > 0:
            results.update({f"seed{seed}/{key}": evaluated[key] for key in HEADLINE})
            continue
        results.update(evaluated)
        checkpoint = load_checkpoint(run_dir)
        results["train/steps"] = checkpoint["step"]
        if checkpoint["extra"].get("train_seconds") is not None:  # older checkpoints lack it
            results["train/seconds"] = checkpoint["extra"]["train_seconds"]
        for plot in sorted((run_dir / "plots").glob("*.png")):
            shutil.copyfile(plot, out / plot.name)
        save_model(run_dir, out / "model")
    results["wall_clock_s"] = round(time.time() - started, 1)
    write_results(PAPER, scale, results, cfg.out_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(reproduce_cli(PAPER, main, __doc__, scales=SCALES))
