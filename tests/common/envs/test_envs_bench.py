"""Smoke test of bench/envs.py: it runs, passes its correctness gate, ends with the JSON line."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "envs.py"
KEYS = {
    "coin_batched_steps_per_s",
    "coin_compiled_steps_per_s",
    "coin_loop_steps_per_s",
    "speedup",
    "coin_with_gru_steps_per_s",
    "batch",
}


def test_bench_quick_ends_with_the_json_line_the_issue_names():
    args = [sys.executable, str(BENCH), "--quick", "--budget", "8192", "--threads", "1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "correctness gate: batched == reference" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result) == KEYS and result["batch"] == 4096
    assert result["coin_batched_steps_per_s"] > 0 and result["speedup"] > 0


def test_bench_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--quick" in out and "--threads" in out
