"""Per-step time of UORO, preactivation UORO (with and without spatial projection) and RTRL, as ratios to UORO.

    python bench/uoro.py            # n = 32, 64, 128; 4 streams, float64, 1 thread

The paper (arXiv:1902.02405, "Projecting in preactivation space") puts UORO at O(n^2), preactivation UORO
without spatial projection at O(n^3) and RTRL at O(n^4) time per step. Note the load average beside the numbers:
on a shared machine the ratios move less than the absolute times.
"""

import os
import sys
from pathlib import Path

# `python bench/uoro.py` puts bench/ first on sys.path, where this file would shadow the uoro package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from uoro.cost import KINDS, cost_table  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    sizes = (32, 64, 128)
    table = cost_table(sizes)
    print(f"load average {os.getloadavg()[0]:.2f}; ms per step (ratio to UORO)")
    print("n    " + "".join(f"{kind:>22}" for kind in KINDS))
    for n in sizes:
        base = table[f"cost/h{n}/uoro_step_ms"]
        cells = "".join(
            f"{table[f'cost/h{n}/{kind}_step_ms']:>12.3f} ({table[f'cost/h{n}/{kind}_step_ms'] / base:>6.1f}x)"
            for kind in KINDS
        )
        print(f"{n:<5}{cells}")
