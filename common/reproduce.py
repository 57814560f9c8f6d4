"""Run a paper's experiments at one scale, or every paper's, and tabulate ours against the paper's numbers.

    python -m common.reproduce loqa quick [key=value ...]   # what `make loqa` runs
    python -m common.reproduce loqa full                    # what `make loqa-full` runs
    python -m common.reproduce all quick                    # what `make quick` runs
    python -m common.reproduce summary                      # rewrite results/summary.md from runs/
    python -m common.reproduce publish loqa quick           # copy runs/loqa/quick to results/loqa/

A paper package takes part by providing ``<paper>/reproduce.py`` with
``main(scale, overrides) -> dict`` (the flat results ``{"<setting>/<metric>": number}``),
``PAPER_NUMBERS`` (the paper's value per results key, ``None`` where the paper gives none) and
``HEADLINE`` (the keys shown in the summary). The results land in ``runs/<paper>/<scale>/results.json``
(``<out_dir>/...`` with an ``out_dir=`` override).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

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
SCALES = ("quick", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent


def load_paper(paper: str) -> ModuleType | None:
    """The paper's reproduce module, or None while the paper's issue has not landed."""
    if paper not in PAPER_NAMES:
        raise SystemExit(
            f"unknown paper '{paper}' (one of: {', '.join(PAPER_NAMES)}, all, summary)"
        )
    try:
        return importlib.import_module(f"{paper}.reproduce")
    except ModuleNotFoundError as err:
        if err.name == f"{paper}.reproduce":
            return None
        raise


def results_path(paper: str, scale: str, out_dir: Path | str = "runs") -> Path:
    return Path(out_dir) / paper / scale / "results.json"


def write_results(paper: str, scale: str, results: dict, out_dir: Path | str = "runs") -> Path:
    path = results_path(paper, scale, out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = [k for k, v in results.items() if not isinstance(v, int | float) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"results of {paper} must be numbers; not so for {', '.join(bad)}")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def run_paper(paper: str, scale: str, overrides: list[str]) -> int:
    module = load_paper(paper)
    if module is None:
        print(f"{paper}: not implemented yet (its issue is still open)", file=sys.stderr)
        return 3
    start = time.time()
    results = dict(module.main(scale, overrides))
    results.setdefault("wall_clock_s", round(time.time() - start, 1))
    # An out_dir= override moves the paper's runs; its results.json goes with them.
    out_dirs = [item.split("=", 1)[1] for item in overrides if item.startswith("out_dir=")]
    path = write_results(paper, scale, results, out_dirs[-1] if out_dirs else "runs")
    print(f"\n{paper} ({scale}) results -> {path}")
    paper_numbers = getattr(module, "PAPER_NUMBERS", {})
    print(f"| key | paper | ours ({scale}) |\n|---|---|---|")
    for key in sorted(results):
        print(f"| {key} | {_fmt(paper_numbers.get(key))} | {_fmt(results[key])} |")
    return 0


def summary_table(scale: str = "quick", out_dir: Path | str = "runs") -> str:
    lines = [
        f"# Ours ({scale} scale) vs. the papers",
        "",
        "Written by `make quick` (`python -m common.reproduce summary`) from `runs/<paper>/"
        f"{scale}/results.json`.",
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
        if not path.exists():
            lines.append(f"| `{paper}` | {title} | — | — | not run yet (`make {paper}`) | — |")
            continue
        results = json.loads(path.read_text())
        paper_numbers = getattr(module, "PAPER_NUMBERS", {})
        for i, key in enumerate(getattr(module, "HEADLINE", sorted(results)[:3])):
            wall = _fmt(results.get("wall_clock_s")) if i == 0 else ""
            lines.append(
                f"| `{paper}` | {title if i == 0 else ''} | {key} | {_fmt(paper_numbers.get(key))} | "
                f"{_fmt(results.get(key))} | {wall} |"
            )
    return "\n".join(lines) + "\n"


def write_summary(scale: str = "quick") -> Path:
    path = REPO_ROOT / "results" / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = summary_table(scale)
    path.write_text(text)
    print(text)
    return path


def write_between_markers(path: Path, begin: str, end: str, text: str) -> None:
    """Replace what stands between the lines `begin` and `end` of `path` (a README's generated
    table) with `text`, which ends with a newline."""
    path = Path(path)
    current = path.read_text()
    if begin not in current or end not in current:
        raise SystemExit(f"{path} lacks the markers {begin!r} ... {end!r}")
    head, rest = current.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{text}{end}{tail}")


def publish(
    paper: str, scale: str, out_dir: Path | str = "runs", dest: Path | str = REPO_ROOT / "results"
) -> list[Path]:
    """Copy a finished run's results.json (as <scale>.json) and the plots and tables next to it
    (the PNG and JSON files of runs/<paper>/<scale>/) to results/<paper>/, the committed copies
    the README links. Returns the files written."""
    source = Path(out_dir) / paper / scale
    if not results_path(paper, scale, out_dir).is_file():
        raise SystemExit(f"no {results_path(paper, scale, out_dir)}: run `make {paper}` first")
    target = Path(dest) / paper
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.png")) + sorted(source.glob("*.json")):
        name = f"{scale}.json" if path.name == "results.json" else path.name
        shutil.copyfile(path, target / name)
        written.append(target / name)
    print(f"published {len(written)} files of {source} to {target}")
    return written


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
    parser = argparse.ArgumentParser(
        prog="python -m common.reproduce",
        description="Run a paper's experiments (train + eval) at one scale and write its results JSON.",
    )
    parser.add_argument(
        "paper", help=f"one of: {', '.join(PAPER_NAMES)}, all, summary, publish <paper>"
    )
    parser.add_argument("scale", nargs="?", default="quick", choices=SCALES)
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="passed to the paper's main"
    )
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["publish"]:  # publish <paper> [scale]: copy runs/<paper>/<scale> to results/
        if len(argv) < 2 or argv[1] not in PAPER_NAMES:
            raise SystemExit(f"usage: publish <paper> [quick|full], paper one of {PAPER_NAMES}")
        publish(argv[1], argv[2] if len(argv) > 2 else "quick")
        return 0
    args = parser.parse_args(argv)
    if args.paper == "summary":
        write_summary(args.scale)
        return 0
    if args.paper == "all":
        return run_all(args.scale, args.overrides)
    return run_paper(args.paper, args.scale, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
