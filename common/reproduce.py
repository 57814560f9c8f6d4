"""The driver behind `make <paper>` and `make quick`: the one place that knows the list of papers.

    python -m common.reproduce loqa quick [key=value ...]   # what `make loqa` runs
    python -m common.reproduce loqa full                    # what `make loqa-full` runs
    python -m common.reproduce all quick                    # what `make quick` runs
    python -m common.reproduce summary                      # rewrite results/summary.md

A paper takes part by providing ``<paper>/reproduce.py`` with ``main(scale, overrides) -> dict`` (which
saves ``runs/<paper>/<scale>/results.json`` through ``common.results.write_results``), ``PAPER_NUMBERS``
(a ``common.results.PaperNumber`` per results key) and ``HEADLINE`` (the keys the summary shows). No paper
imports this module; it imports the papers by name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from common.results import (
    DEFAULT_SCALES,
    REPO_ROOT,
    fmt,
    paper_value,
    reproduce_cli,
    results_path,
)

PAPERS = [
    ("loqa", "LOQA: Learning with Opponent Q-Learning Awareness"),
    ("brs", "Best Response Shaping"),
    ("advantage_alignment", "Advantage Alignment Algorithms"),
    ("meva", "Meta-Value Learning"),
    ("coconet", "Counterpoint by Convolution"),
    ("uoro", "On the Variance of Unbiased Online Recurrent Optimization"),
    ("realjam", "ReaLJam"),
    ("vqvae_recompose", "Harmonic Recomposition (conditional autoregressive)"),
]
PAPER_NAMES = [name for name, _ in PAPERS]


def load_paper(paper: str) -> ModuleType | None:
    """The paper's reproduce module, or None while the paper's issue has not landed."""
    if paper not in PAPER_NAMES:
        print(
            f"python -m common.reproduce: error: unknown paper '{paper}' "
            f"(one of: {', '.join(PAPER_NAMES)}, all, summary)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        return importlib.import_module(f"{paper}.reproduce")
    except ModuleNotFoundError as err:
        if err.name == f"{paper}.reproduce":
            return None
        raise


def run_paper(paper: str, argv: list[str]) -> int:
    module = load_paper(paper)
    if module is None:
        print(f"{paper}: not implemented yet (its issue is still open)", file=sys.stderr)
        return 3
    scales = getattr(module, "SCALES", DEFAULT_SCALES)
    return reproduce_cli(paper, module.main, module.__doc__, scales, argv)


def summary_table(scale: str = "quick", out_dir: Path | str = "runs") -> str:
    lines = [
        f"# Ours ({scale} scale) vs. the papers",
        "",
        f"Written by `make quick` (`python -m common.reproduce summary`) from `runs/<paper>/{scale}/results.json`"
        f" (or, for a paper not run here, its published `results/<paper>/{scale}.json`); each paper's README"
        " has the full table with the sources of the paper's numbers.",
        "",
        "| package | paper | key | paper's value | ours | wall clock (s) |",
        "|---|---|---|---|---|---|",
    ]
    for paper, title in PAPERS:
        module = load_paper(paper)
        if module is None:
            lines.append(f"| `{paper}` | {title} | — | — | not implemented yet | — |")
            continue
        path = results_path(paper, scale, out_dir)
        if not path.exists():  # not run here: the published copy, if there is one
            path = REPO_ROOT / "results" / paper / f"{scale}.json"
        if not path.exists():
            lines.append(f"| `{paper}` | {title} | — | — | not run yet (`make {paper}`) | — |")
            continue
        results = json.loads(path.read_text())
        paper_numbers = getattr(module, "PAPER_NUMBERS", {})
        for i, key in enumerate(getattr(module, "HEADLINE", sorted(results)[:3])):
            wall = fmt(results.get("wall_clock_s")) if i == 0 else ""
            lines.append(
                f"| `{paper}` | {title if i == 0 else ''} | {key} | "
                f"{fmt(paper_value(paper_numbers.get(key)))} | {fmt(results.get(key))} | {wall} |"
            )
    return "\n".join(lines) + "\n"


def write_summary(scale: str = "quick") -> Path:
    path = REPO_ROOT / "results" / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = summary_table(scale)
    path.write_text(text)
    print(text)
    return path


def run_all(scale: str, overrides: list[str]) -> int:
    """Each paper in its own process, so one failure is reported and the rest still run."""
    failed, missing = [], []
    for paper in PAPER_NAMES:
        if load_paper(paper) is None:
            missing.append(paper)
            continue
        print(f"\n===== {paper} ({scale}) =====", flush=True)
        code = subprocess.call([sys.executable, "-m", "common.reproduce", paper, scale, *overrides])
        if code != 0:
            failed.append(paper)
    write_summary(scale)
    if missing:
        print(f"not implemented yet (issues open): {', '.join(missing)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PAPER_NAMES:  # the paper's own command line parses the rest
        return run_paper(argv[0], argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m common.reproduce",
        description="Run a paper's experiments (train + eval) at one scale and write its results JSON.",
        epilog=f"papers: {', '.join(PAPER_NAMES)}; `python -m common.reproduce <paper> --help` for one.",
    )
    parser.add_argument(
        "target", choices=["all", "summary"], help="every paper, or the summary only"
    )
    parser.add_argument("scale", nargs="?", default="quick", choices=DEFAULT_SCALES)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="passed to every paper")
    if argv and argv[0] not in ("all", "summary", "-h", "--help"):
        load_paper(argv[0])  # names the unknown paper in one line
    args = parser.parse_args(argv)
    if args.target == "summary":
        write_summary(args.scale)
        return 0
    return run_all(args.scale, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
