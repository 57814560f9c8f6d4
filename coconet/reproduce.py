"""`make coconet` / `make coconet-medium` / `make coconet-full`: train Coconet at one scale, evaluate the run,
and keep its plots and trained model beside the results.

    python -m coconet.reproduce quick [key=value ...]     # also: python -m common.reproduce coconet quick

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

_SOURCES = {
    "valid/": OTHER_DATA,
    "baseline/": OURS,
    "samples/": ORDERING,
    "proxies/": HUMAN,
    "harmonize/": HUMAN,
    "harmonize_t1/": HUMAN,
    "bach/": HUMAN,
    "shifted_control/": HUMAN,
    "samples_gibbs/": HUMAN,
    "samples_ancestral/": HUMAN,
    "samples_bach/": HUMAN,
    "train/": OURS,
    "eval_seconds": OURS,
    "wall_clock_s": OURS,
}
_KEYS = [
    "valid/nll_per_masked_cell", "valid/nll_low_mask", "valid/nll_high_mask",
    "valid/notewise_nll_random", "valid/notewise_nll_chronological",
    "valid/framewise_nll_random", "valid/framewise_nll_chronological",
    "valid/framewise_nll_paper_random", "valid/framewise_nll_paper_chronological",
    "baseline/copy_neighbour_nll", "baseline/unigram_nll",
    "samples/nll_gibbs_mean", "samples/nll_ancestral_mean", "samples/nll_bach_mean",
    "samples/ancestral_minus_gibbs_in_stderrs",
    "harmonize/voice_crossing_rate", "harmonize/parallel_5ths_8ves_per_move",
    "harmonize/out_of_voice_range_rate", "harmonize/simultaneities_ratio_to_bach",
    "harmonize_t1/voice_crossing_rate", "bach/voice_crossing_rate",
    "bach/parallel_5ths_8ves_per_move", "shifted_control/voice_crossing_rate",
    "shifted_control/parallel_5ths_8ves_per_move", "wall_clock_s",
]  # fmt: skip
# The paper's tables are on other data (see OTHER_DATA) and its sample study is a human one, so no key
# has a number to stand beside it; each names where the paper speaks to it.
PAPER_NUMBERS: dict[str, PaperNumber] = {
    key: PaperNumber(None, next(src for prefix, src in _SOURCES.items() if key.startswith(prefix)))
    for key in _KEYS
}
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
        if "train_seconds" in checkpoint["extra"]:  # a checkpoint of an older version lacks it
            results["train/seconds"] = checkpoint["extra"]["train_seconds"]
        for plot in sorted((run_dir / "plots").glob("*.png")):
            shutil.copyfile(plot, out / plot.name)
        save_model(run_dir, out / "model")
    results["wall_clock_s"] = round(time.time() - started, 1)
    write_results(PAPER, scale, results, cfg.out_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(reproduce_cli(PAPER, main, __doc__, scales=SCALES))
