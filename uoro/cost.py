"""Per-step wall-clock cost of UORO, preactivation UORO without spatial projection, and RTRL
(arXiv:1902.02405, "Projecting in preactivation space": O(n^2), O(n^3) and O(n^4) per step).

Each estimator takes steps on random inputs with a few streams; the time per step is the best of several
repeats (the minimum is the least disturbed by other processes on a shared machine).
"""

from __future__ import annotations

import time

import torch

from uoro.cells import init_params, make_cell
from uoro.estimators import make_estimator

KINDS = ("uoro", "uoro_preact", "uoro_noproj", "rtrl")


def step_time(
    kind: str, n_hidden: int, streams: int = 4, steps: int = 20, repeats: int = 5
) -> float:
    """Seconds per online step of ``kind`` (float64, n_in = 4), best of ``repeats``."""
    generator = torch.Generator().manual_seed(0)
    cell = make_cell("tanh", n_hidden, 4)
    theta = init_params(cell, 4, 0.9, generator)[0].expand(streams, -1).contiguous()
    inputs = torch.randn(steps + 1, streams, 4, generator=generator, dtype=torch.float64)
    dloss = torch.randn(steps + 1, streams, n_hidden, generator=generator, dtype=torch.float64)
    estimator = make_estimator(kind, torch.Generator().manual_seed(1))
    best = float("inf")
    for _ in range(repeats):
        estimator.reset(cell, streams)
        h = torch.zeros(streams, n_hidden, dtype=torch.float64)
        h_next = cell(theta, h, inputs[0])
        estimator.step(cell, theta, h, inputs[0], h_next, dloss[0])  # warm-up
        start = time.perf_counter()
        for t in range(1, steps + 1):
            h, h_next = h_next, cell(theta, h_next, inputs[t])
            estimator.step(cell, theta, h, inputs[t], h_next, dloss[t])
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def cost_table(
    hidden_sizes, streams: int = 4, steps: int = 20, repeats: int = 5
) -> dict[str, float]:
    """``cost/h<n>/<kind>_step_ms`` and the ratios to UORO, ``cost/<kind>_over_uoro_time_h<n>``."""
    results = {}
    for n in hidden_sizes:
        times = {kind: step_time(kind, n, streams, steps, repeats) for kind in KINDS}
        for kind, seconds in times.items():
            results[f"cost/h{n}/{kind}_step_ms"] = 1e3 * seconds
            if kind != "uoro":
                label = kind.removeprefix("uoro_")
                results[f"cost/{label}_over_uoro_time_h{n}"] = seconds / times["uoro"]
    return results
