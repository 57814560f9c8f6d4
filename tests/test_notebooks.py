"""Every notebook (jupytext percent format, so also a plain script) runs to the end on committed results."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_as_a_script(notebook):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # Run from the repo root as a kernel would, so notebooks/loqa.py cannot shadow the loqa package.
    runner = f"import runpy; runpy.run_path({str(notebook)!r}, run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", runner],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stderr[-2000:]}"
