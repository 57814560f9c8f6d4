"""The one publishing path: a run's flat results, the committed copies the READMEs cite, and their tables.

    python -m common.results publish loqa [quick]   # runs/loqa/quick -> results/loqa/quick.json + quick/*.png
    python -m common.results table loqa             # rewrite loqa/README.md's table from results/loqa/*.json

A paper's ``reproduce.main(scale, overrides)`` returns ``{"<setting>/<metric>": number}`` after saving it with
:func:`write_results` as ``runs/<paper>/<scale>/results.json``, beside the plots it wrote into
:func:`results_dir`. :func:`publish` copies that directory to ``results/<paper>/``:

    results/<paper>/<scale>.json          the flat results (the numbers every README and summary quotes)
    results/<paper>/<scale>/*.png, *.json the run's plots and tables
    results/<paper>/<scale>/model/        a trained model to try before training (see save_model)

and regenerates the table between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in the paper's
README from those JSON files and the paper's ``PAPER_NUMBERS`` (a :class:`PaperNumber` per key, with its
source). Nothing here imports a paper: the paper's numbers are passed in, or (on the command line) read
from the ``<paper>.reproduce`` module the user names.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
DEFAULT_SCALES = ("quick", "full")


class PaperNumber(NamedTuple):
    """The paper's value for one results key (None where the paper gives no number) and where it is."""

    value: float | None
    source: str = ""


def results_dir(paper: str, scale: str, out_dir: Path | str = "runs") -> Path:
    """``<out_dir>/<paper>/<scale>/``: where a reproduction's results.json and plots live (made here)."""
    path = Path(out_dir) / paper / scale
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_path(paper: str, scale: str, out_dir: Path | str = "runs") -> Path:
    return Path(out_dir) / paper / scale / "results.json"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_results(
    paper: str, scale: str, results: Mapping[str, Any], out_dir: Path | str = "runs"
) -> Path:
    """Save the flat results dict (numbers only) atomically as ``<out_dir>/<paper>/<scale>/results.json``."""
    bad = [k for k, v in results.items() if not isinstance(v, int | float) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"results of {paper} must be numbers; not so for {', '.join(sorted(bad))}")
    path = results_dir(paper, scale, out_dir) / "results.json"
    _atomic_write(path, json.dumps(dict(results), indent=2, sort_keys=True) + "\n")
    return path


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits, '—' for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.4g}"
    return str(value)


# Duck-typed: under `python -m common.results` the papers' PaperNumber is common.results.PaperNumber,
# a different class from this __main__ module's.
def paper_value(entry: PaperNumber | float | None) -> float | None:
    return entry.value if hasattr(entry, "source") else entry


def paper_source(entry: PaperNumber | float | None) -> str:
    return entry.source if hasattr(entry, "source") else ""


def write_between_markers(path: Path | str, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what stands between the lines ``begin`` and ``end`` of ``path`` with ``text``."""
    path = Path(path)
    current = path.read_text()
    if begin not in current or end not in current:
        raise SystemExit(f"{path} lacks the markers {begin} ... {end}")
    head, rest = current.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{text.rstrip()}\n{end}{tail}")


def load_published(paper: str, dest: Path | str = REPO_ROOT / "results") -> dict[str, dict]:
    """``{scale: results}`` of every ``results/<paper>/<scale>.json``."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((Path(dest) / paper).glob("*.json"))
    }


def readme_table(
    paper: str,
    paper_numbers: Mapping[str, PaperNumber | float | None],
    by_scale: Mapping[str, Mapping[str, float]],
) -> str:
    """The README's results table: every key with the paper's value and source beside ours per scale."""
    scales = [s for s in DEFAULT_SCALES if s in by_scale] + sorted(
        s for s in by_scale if s not in DEFAULT_SCALES
    )
    keys = sorted(set(paper_numbers) | {k for results in by_scale.values() for k in results})
    header = "| key | paper | source | " + " | ".join(f"ours ({s})" for s in scales) + " |"
    lines = [header, "|" + "---|" * (3 + len(scales))]
    for key in keys:
        entry = paper_numbers.get(key)
        ours = " | ".join(fmt(by_scale[s].get(key)) for s in scales)
        lines.append(f"| `{key}` | {fmt(paper_value(entry))} | {paper_source(entry)} | {ours} |")
    commands = ", ".join(
        f"{s}: `make {paper}`" if s == "quick" else f"{s}: `make {paper}-{s}`" for s in scales
    )
    lines += [
        "",
        f"Generated by `python -m common.results publish {paper} <scale>` from "
        f"`results/{paper}/<scale>.json` ({commands or 'not run yet'}); '—' where there is no number.",
    ]
    return "\n".join(lines) + "\n"


def write_readme_table(
    paper: str,
    paper_numbers: Mapping[str, PaperNumber | float | None],
    readme: Path | str | None = None,
    dest: Path | str = REPO_ROOT / "results",
) -> Path:
    readme = Path(readme) if readme is not None else REPO_ROOT / paper / "README.md"
    write_between_markers(readme, readme_table(paper, paper_numbers, load_published(paper, dest)))
    return readme


def publish(
    paper: str,
    scale: str = "quick",
    paper_numbers: Mapping[str, PaperNumber | float | None] | None = None,
    out_dir: Path | str = "runs",
    dest: Path | str = REPO_ROOT / "results",
    readme: Path | str | None = None,
) -> list[Path]:
    """Copy ``<out_dir>/<paper>/<scale>/`` to ``<dest>/<paper>/`` (see the module docstring) and, given
    the paper's numbers, regenerate its README table. Returns the files written."""
    source = Path(out_dir) / paper / scale
    if not (source / "results.json").is_file():
        raise SystemExit(f"no {source / 'results.json'}: run `make {paper}` first")
    target = Path(dest) / paper
    plots = target / scale
    if plots.is_dir():  # a stale plot of an older run must not sit beside the new ones
        for old in plots.iterdir():
            if old.is_file():
                old.unlink()
    plots.mkdir(parents=True, exist_ok=True)
    written = [target / f"{scale}.json"]
    shutil.copyfile(source / "results.json", written[0])
    for path in sorted(source.glob("*.png")) + sorted(source.glob("*.json")):
        if path.name != "results.json":
            shutil.copyfile(path, plots / path.name)
            written.append(plots / path.name)
    if (source / "model").is_dir():
        shutil.copytree(source / "model", plots / "model", dirs_exist_ok=True)
        written.append(plots / "model")
    if paper_numbers is not None:
        written.append(write_readme_table(paper, paper_numbers, readme, dest))
    print(f"published {len(written)} files of {source} to {target}")
    return written


# ---------------------------------------------------------------------------- trained models
def save_model(directory: Path | str, tensors: Mapping[str, Any], config: Any) -> Path:
    """A trained model a user can try without training: ``weights.safetensors`` + ``config.yaml``."""
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(directory / "weights.safetensors"),
    )
    _atomic_write(directory / "config.yaml", OmegaConf.to_yaml(config, resolve=True))
    return directory


def load_model(directory: Path | str) -> tuple[dict[str, Any], Any]:
    """The (tensors, config) that :func:`save_model` wrote; a one-line error when missing."""
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in ("weights.safetensors", "config.yaml"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"no trained model in {directory} (missing {name})")
    return load_file(str(directory / "weights.safetensors")), OmegaConf.load(
        directory / "config.yaml"
    )


# ---------------------------------------------------------------------------- command lines
def print_results(results: Mapping[str, float], skip: tuple[str, ...] = ()) -> None:
    """One ``key = value`` line per result, sorted (keys ending in any of ``skip`` left out)."""
    for key in sorted(results):
        if not key.endswith(skip):
            print(f"{key} = {fmt(results[key])}")


def reproduce_cli(
    paper: str,
    main: Callable[[str, list[str]], Mapping[str, float]],
    doc: str | None,
    scales: tuple[str, ...] = DEFAULT_SCALES,
    argv: list[str] | None = None,
) -> int:
    """``python -m <paper>.reproduce [scale] [key=value ...]``: run ``main`` and print its results; a user
    error (bad key or value, refused resume) is one line and exit status 2 (``common.cli``)."""
    from common.cli import one_line_errors

    parser = argparse.ArgumentParser(
        prog=f"python -m {paper}.reproduce",
        description=(doc or "").strip().splitlines()[0] if doc else None,
        epilog=(doc or "")
        + f"\nThe keys an override may set: python -m {paper}.train --config <preset> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scale", nargs="?", default="quick", choices=scales)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    try:
        with one_line_errors(parser.prog):
            results = main(args.scale, list(args.overrides))
    except SystemExit as stop:  # the one line is printed; the status is returned to the driver
        return int(stop.code or 0)
    print_results(results)
    return 0


def _paper_module(paper: str):
    try:
        return importlib.import_module(f"{paper}.reproduce")
    except ModuleNotFoundError as err:
        raise SystemExit(f"no package '{paper}' with a reproduce module ({err})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.results", description=__doc__.strip().splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser(
        "publish", help="copy runs/<paper>/<scale> to results/<paper>/ and redo the table"
    )
    pub.add_argument("paper")
    pub.add_argument("scale", nargs="?", default="quick")
    table = sub.add_parser("table", help="rewrite <paper>/README.md's table from results/<paper>/")
    table.add_argument("paper")
    args = parser.parse_args(argv)
    module = _paper_module(args.paper)
    numbers = getattr(module, "PAPER_NUMBERS", {})
    if args.command == "publish":
        publish(args.paper, args.scale, numbers)
    else:
        print(f"wrote {write_readme_table(args.paper, numbers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
