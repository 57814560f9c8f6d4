"""Publish a finished run: copy its results and plots to results/coconet/ and regenerate README tables.

    python -m coconet.report                       # after `make coconet`: runs/coconet/quick
    python -m coconet.report --scale full          # after `make coconet-full`

The README's tables sit between ``<!-- results:start -->`` and ``<!-- results:end -->`` and are written
from ``results/coconet/results_<scale>.json`` only, never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from common.results import write_between_markers

PACKAGE = Path(__file__).resolve().parent
RESULTS_DIR = PACKAGE.parent / "results" / "coconet"
README = PACKAGE / "README.md"
PLOTS = (
    "learning_curve",
    "nll_vs_mask_fraction",
    "sample_nll",
    "gibbs_nll_vs_steps",
    "samples",
    "inpainting",
)
START, END = "<!-- results:start -->", "<!-- results:end -->"
COMMAND = {"quick": "`make coconet`", "full": "`make coconet-full`"}

# (setting, metric, results key, paper's claim or value): every NLL in nats; see the normalisations above.
ROWS = [
    ("valid crops, orderless masks", "NLL per masked cell (pooled)", "valid/nll_per_masked_cell", "—"),
    ("same cells", "tuned copy-nearest-note baseline", "baseline/copy_neighbour_nll", "—"),
    ("same cells", "per-voice unigram", "baseline/unigram_nll", "—"),
    ("valid, < 1/4 of cells masked", "NLL per masked cell", "valid/nll_low_mask", "—"),
    ("valid, > 3/4 of cells masked", "NLL per masked cell", "valid/nll_high_mask", "—"),
    ("valid crops, random order, ensemble 5", "notewise NLL per cell", "valid/notewise_nll_random", "—"),
    ("valid crops, chronological", "notewise NLL per cell", "valid/notewise_nll_chronological", "—"),
    ("valid crops, random order, ensemble per cell (magenta)", "notewise NLL per cell", "valid/notewise_nll_random_unit_ensemble", "—"),
    ("valid crops, random frames, exact", "framewise NLL per frame", "valid/framewise_nll_random", "—"),
    ("valid crops, chronological frames, exact", "framewise NLL per frame", "valid/framewise_nll_chronological", "—"),
    ("valid crops, random frames, argmax quirk", "framewise NLL per frame (magenta)", "valid/framewise_nll_paper_random", "≈ 5.2 (JSB quarter notes, unverified)"),
    ("valid crops, chronological, argmax quirk", "framewise NLL per frame (magenta)", "valid/framewise_nll_paper_chronological", "≈ 5.0 (JSB quarter notes, unverified)"),
    ("32 samples, annealed Gibbs", "notewise NLL per cell (mean)", "samples/nll_gibbs_mean", "lower than ancestral"),
    ("32 samples, ancestral", "notewise NLL per cell (mean)", "samples/nll_ancestral_mean", "higher than Gibbs"),
    ("32 samples, one independent pass", "notewise NLL per cell (mean)", "samples/nll_independent_mean", "—"),
    ("32 real valid crops", "notewise NLL per cell (mean)", "samples/nll_bach_mean", "—"),
    ("ancestral − Gibbs", "in pooled standard errors", "samples/ancestral_minus_gibbs_in_stderrs", "> 0 (Gibbs better)"),
    ("whole quick run", "wall clock (s)", "wall_clock_s", "—"),
]  # fmt: skip
PROXIES = [
    ("parallel_fifths_octaves_per_100", "parallel 5ths/8ves per 100 voice-pair motions"),
    ("voice_crossing_frames", "frames with crossed voices"),
    ("out_of_range_cells", "cells outside Bach's voice ranges"),
    ("triad_or_seventh_frames", "frames that are a triad or seventh chord"),
    ("pitch_class_js_to_bach", "pitch-class JS divergence to Bach (nats)"),
    ("onsets_per_frame_per_voice", "note onsets per frame per voice"),
]


def _fmt(results: dict | None, key: str) -> str:
    if results is None:
        return "not run yet"
    value = results.get(key)
    if value is None:
        return "—"
    if key.endswith("_s"):
        return f"{value:.0f}"
    stderr = results.get(key.replace("_mean", "_stderr")) if key.endswith("_mean") else None
    return f"{value:.3f} ± {stderr:.3f}" if stderr is not None else f"{value:.3f}"


# The checks on the quick run: (what, measured value from the results, threshold, passes?)
CHECKS = [
    ("model below the tuned copy-neighbour baseline by >= 0.1 nats",
     lambda r: r["baseline/copy_neighbour_nll"] - r["valid/nll_per_masked_cell"], ">= 0.1", lambda v: v >= 0.1),
    ("no leakage: NLL per masked cell > 0.05",
     lambda r: r["valid/nll_per_masked_cell"], "> 0.05", lambda v: v > 0.05),
    ("context helps: NLL(> 3/4 masked) - NLL(< 1/4 masked) >= 1.0",
     lambda r: r["valid/nll_high_mask"] - r["valid/nll_low_mask"], ">= 1.0", lambda v: v >= 1.0),
    ("Gibbs below ancestral, in pooled standard errors",
     lambda r: r["samples/ancestral_minus_gibbs_in_stderrs"], "> 2", lambda v: v > 2),
    ("control: one independent pass minus ancestral, in pooled s.e. (must not beat it)",
     lambda r: (r["samples/nll_independent_mean"] - r["samples/nll_ancestral_mean"])
     / math.hypot(r["samples/nll_independent_stderr"], r["samples/nll_ancestral_stderr"]),
     "> -2", lambda v: v > -2),
    ("quick run wall clock (s)", lambda r: r["wall_clock_s"], "about 600 at most", lambda v: v < 660),
]  # fmt: skip


def check_table(quick: dict | None) -> str:
    if quick is None:
        return "Issue checks: not run yet."
    lines = ["| issue check (quick run) | measured | threshold | pass |", "|---|---|---|---|"]
    for what, measure, threshold, passes in CHECKS:
        value = measure(quick)
        shown = f"{value:.0f}" if what.endswith("(s)") else f"{value:.3f}"
        lines.append(f"| {what} | {shown} | {threshold} | {'yes' if passes(value) else 'NO'} |")
    return "\n".join(lines)


def tables(quick: dict | None, full: dict | None) -> str:
    lines = [
        check_table(quick),
        "",
        "| setting | metric | paper | ours (quick, CPU) | ours (full) | command |",
        "|---|---|---|---|---|---|",
    ]
    for setting, metric, key, paper in ROWS:
        lines.append(
            f"| {setting} | {metric} | {paper} | {_fmt(quick, key)} | {_fmt(full, key)} | "
            f"{COMMAND['quick']} |"
        )
    lines += [
        "",
        "Automatic music proxies (quick run; a stand-in, the paper's Mechanical Turk study was not replicated):",
        "",
        "| proxy | Bach (valid crops) | annealed Gibbs | ancestral |",
        "|---|---|---|---|",
    ]
    for name, label in PROXIES:
        cells = [_fmt(quick, f"proxies/{m}/{name}") for m in ("bach", "gibbs", "ancestral")]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def publish(scale: str, run_dir: Path | None = None) -> None:
    run_dir = run_dir or Path("runs/coconet") / scale
    source = run_dir / "results.json"
    if not source.is_file():
        raise SystemExit(
            f"{source} does not exist: run `make coconet{'-full' if scale == 'full' else ''}`"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, RESULTS_DIR / f"results_{scale}.json")
    if scale == "quick":
        for name in PLOTS:
            if (run_dir / "plots" / f"{name}.png").is_file():
                shutil.copyfile(run_dir / "plots" / f"{name}.png", RESULTS_DIR / f"{name}.png")
    load = lambda s: (  # noqa: E731
        json.loads((RESULTS_DIR / f"results_{s}.json").read_text())
        if (RESULTS_DIR / f"results_{s}.json").is_file()
        else None
    )
    write_between_markers(README, tables(load("quick"), load("full")) + "\n", START, END)
    print(f"published {source} -> {RESULTS_DIR}; README tables regenerated")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m coconet.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scale", choices=("quick", "full"), default="quick")
    parser.add_argument(
        "--run", type=Path, default=None, help="run directory (default runs/coconet/<scale>)"
    )
    args = parser.parse_args(argv)
    publish(args.scale, args.run)


if __name__ == "__main__":
    main(sys.argv[1:])
