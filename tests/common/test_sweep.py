"""The sweep: grid x seeds through submitit's local executor, gathered into one table and a plot."""

import subprocess
import sys

import pytest

from common.config import ConfigError, load_config
from common.sweep import SweepConfig, job_overrides, parse_grid, run_sweep


def test_grid_expands_to_every_point_and_seed():
    cfg = load_config(SweepConfig, None, ["grid=[x=0|1,y=a|b|c]", "seeds=[0,1]", "base=[name=z]"])
    jobs = job_overrides(cfg)
    assert len(jobs) == 2 * 3 * 2
    assert jobs[0] == ({"x": "0", "y": "a", "seed": "0"}, ["name=z", "x=0", "y=a", "seed=0"])


def test_a_malformed_grid_entry_is_named():
    with pytest.raises(ConfigError, match="grid entry 'x' is not of the form"):
        parse_grid(["x"])


def test_local_sweep_of_the_toy_objective(tmp_path):
    cfg = load_config(
        SweepConfig, None, [f"out_dir={tmp_path}", "grid=[x=0|1|3]", "seeds=[0,1]", "name=toy"]
    )
    table = run_sweep(cfg)
    assert len(table) == 6 and (table["status"] == "ok").all()
    best = table.groupby("x")["loss"].mean().idxmin()
    assert best == "1", "the toy objective is smallest at x=1"
    sweep_dir = tmp_path / "sweeps" / "toy"
    assert (sweep_dir / "results.csv").exists() and (sweep_dir / "loss.png").exists()
    assert "| x | loss/mean" in (sweep_dir / "summary.md").read_text()


def test_a_failing_job_is_a_row_not_a_crash(tmp_path):
    cfg = load_config(
        SweepConfig, None, [f"out_dir={tmp_path}", "grid=[x=1|oops]", "cluster=debug", "name=bad"]
    )
    table = run_sweep(cfg)
    assert sorted(table["status"]) == ["failed", "ok"]


def test_cli_help_and_bad_target():
    help_text = subprocess.run(
        [sys.executable, "-m", "common.sweep", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "cluster" in help_text.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "common.sweep", "target=nowhere:thing"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("target 'nowhere:thing': no module nowhere")
