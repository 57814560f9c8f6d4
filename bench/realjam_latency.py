"""ReaLJam live server: request-to-plan latency over simulated jams, one JSON line.

    python bench/realjam_latency.py [--runs runs/realjam/quick] [--beats 64] [--sessions 8] [--plot PNG]

A 64-beat jam at 120 BPM with N(0, 20 ms) note-time jitter against `python -m realjam.server` in its own
process, alone and then 8 at once (their requests batched into one forward pass). Targets: p95 < 100
ms and p99 < 150 ms for one jam, p99 < 300 ms for eight, zero late frames. `make realjam` writes the same keys
into runs/realjam/quick/results.json (realjam.jamsim.measure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realjam.jamsim import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        default="runs/realjam/quick",
        help="folder with rl_seed*, mle_seed*, teacher_seed*",
    )
    parser.add_argument("--beats", type=int, default=64, help="length of each simulated jam")
    parser.add_argument(
        "--sessions", type=int, default=8, help="concurrent jams in the second part"
    )
    parser.add_argument("--plot", default=None, help="write the latency histogram to this PNG")
    args = parser.parse_args()
    if not Path(args.runs).is_dir():
        parser.exit(0, f"skip: {args.runs} does not exist (run `make realjam` first)\n")
    result = measure(args.runs, beats=args.beats, sessions=args.sessions, plot_to=args.plot)
    print(json.dumps({"runs": args.runs, "loadavg": os.getloadavg(), **result}))


if __name__ == "__main__":
    main()
