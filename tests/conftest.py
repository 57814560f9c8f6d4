"""Shared test setup: one torch thread (two threads on a busy 2-core box run 30-100x slower)."""

# isort: off
import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)

# isort: on
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """Run the test with the working directory in a fresh temporary folder (runs/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _default_dtype_float32():
    """Every test starts from torch's float32 default, whatever another module set while collected."""
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(torch.float32)


ROOT = Path(__file__).resolve().parent.parent
# Results keys that measure time (wall clock, latency, cost ratios) differ between runs by nature.
TIMING_KEY = re.compile(r"wall_clock|latency|_ms$|^cost/|^perf/|_per_s$|seconds|_time")


def rerun_quick_and_compare(paper: str, tmp_path: Path, timeout: int = 3600) -> None:
    """Run `make <paper>`'s experiment from scratch in a fresh directory and compare its results.json
    key by key with the committed results/<paper>/quick.json: a README number must come back exactly."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "common.reproduce", paper, "quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads((tmp_path / "runs" / paper / "quick" / "results.json").read_text())
    committed = json.loads((ROOT / "results" / paper / "quick.json").read_text())
    assert sorted(fresh) == sorted(committed), "the results keys changed: republish"
    moved = {
        key: (committed[key], fresh[key])
        for key in committed
        if not TIMING_KEY.search(key) and fresh[key] != committed[key]
    }
    assert not moved, f"fresh quick run differs from results/{paper}/quick.json: {moved}"


@pytest.fixture
def rerun_quick(tmp_path):
    """``rerun_quick("loqa")``: see rerun_quick_and_compare (slow tests only: minutes)."""
    return lambda paper: rerun_quick_and_compare(paper, tmp_path)
