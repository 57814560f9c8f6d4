"""Every paper package that has code has the one package shape (conventions: config.py, configs/,
model.py, train.py, eval.py, reproduce.py, README.md), entry points that help, the reproduce contract
(PAPER_NUMBERS with sources, HEADLINE keys) and committed quick results holding the HEADLINE keys."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import runpy
import sys
from pathlib import Path

import pytest

from common.reproduce import PAPER_NAMES
from common.results import BEGIN, END, PaperNumber

ROOT = Path(__file__).resolve().parent.parent
SHAPE = ("config.py", "configs", "model.py", "train.py", "eval.py", "reproduce.py", "README.md")
ENTRY_POINTS = ("train", "eval", "reproduce")


def has_code(package: Path) -> bool:
    return any(p.name != "__init__.py" for p in package.glob("*.py"))


def shape_problems(package: Path, results: Path) -> list[str]:
    """What a package lacks of the shape: missing files, presets, README markers, outside links and
    committed quick results; the entry points and the reproduce module are checked separately."""
    problems = [
        f"{package.name}/{name} is missing" for name in SHAPE if not (package / name).exists()
    ]
    if (package / "configs").is_dir() and not list((package / "configs").glob("*quick.yaml")):
        problems.append(f"{package.name}/configs has no quick preset")
    readme = package / "README.md"
    if readme.is_file():
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            problems.append(f"{package.name}/README.md has no generated results table ({BEGIN})")
        if re.search(r"\]\((\.\./)+shared/|\.\./\.\./", text):
            problems.append(f"{package.name}/README.md links outside the repository")
    if not (results / package.name / "quick.json").is_file():
        problems.append(
            f"results/{package.name}/quick.json is missing (python -m common.results publish)"
        )
    return problems


PACKAGES = [name for name in PAPER_NAMES if has_code(ROOT / name)]


def run_help(module: str) -> int:
    """``python -m <module> --help`` in this process (a subprocess per entry point costs seconds)."""
    argv = sys.argv
    sys.argv = [module, "--help"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        sys.argv = argv
    return 0


def test_at_least_the_landed_papers_are_checked():
    assert {"loqa", "coconet", "uoro"} <= set(PACKAGES)


@pytest.mark.parametrize("paper", PACKAGES)
def test_package_has_the_shape(paper):
    assert shape_problems(ROOT / paper, ROOT / "results") == []


@pytest.mark.parametrize("paper", PACKAGES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_entry_point_helps(paper, entry):
    assert run_help(f"{paper}.{entry}") == 0


@pytest.mark.parametrize("paper", PACKAGES)
def test_reproduce_contract_and_committed_headline(paper):
    module = importlib.import_module(f"{paper}.reproduce")
    assert callable(module.main)
    numbers = module.PAPER_NUMBERS
    assert numbers and all(isinstance(v, PaperNumber) for v in numbers.values())
    sourced = [k for k, v in numbers.items() if v.value is not None and not v.source]
    assert not sourced, f"paper numbers without a source: {sourced}"
    published = json.loads((ROOT / "results" / paper / "quick.json").read_text())
    missing = [k for k in module.HEADLINE if k not in published]
    assert module.HEADLINE and not missing, f"results/{paper}/quick.json lacks {missing}"


def test_a_package_missing_part_of_the_shape_is_caught(tmp_path):
    package, results = tmp_path / "toy_paper", tmp_path / "results"
    (package / "configs").mkdir(parents=True)
    (package / "configs" / "quick.yaml").write_text("seed: 0\n")
    for name in ("config.py", "model.py", "train.py", "eval.py", "reproduce.py"):
        (package / name).write_text("")
    (package / "README.md").write_text(
        f"# toy\n{BEGIN}\n{END}\n[spec](../../shared/papers/toy.md)\n"
    )
    (results / "toy_paper").mkdir(parents=True)
    (results / "toy_paper" / "quick.json").write_text("{}")
    assert shape_problems(package, results) == ["toy_paper/README.md links outside the repository"]
    (package / "eval.py").unlink()
    (package / "README.md").write_text("# toy\n")
    (results / "toy_paper" / "quick.json").unlink()
    assert shape_problems(package, results) == [
        "toy_paper/eval.py is missing",
        f"toy_paper/README.md has no generated results table ({BEGIN})",
        "results/toy_paper/quick.json is missing (python -m common.results publish)",
    ]
