"""`make coconet` / `make coconet-full`: train Coconet at one scale, then evaluate the run.

    python -m common.reproduce coconet quick [key=value ...]

Returns the flat results (``runs/coconet/<scale>/results.json``): validation NLL per masked cell (pooled,
and with little vs. most of the crop hidden), the tuned copy-neighbour baseline on the same cells, the
exact chain-rule NLLs, and ancestral vs. annealed-Gibbs samples scored by the model.
"""

from __future__ import annotations

import time

from coconet.config import CONFIG_DIR, CoconetConfig
from coconet.eval import evaluate
from coconet.train import train
from common.config import load_config

# The paper's tables report framewise/notewise NLL on the Boulanger-Lewandowski JSB split at quarter,
# eighth and sixteenth resolution (values unverified, spec 5); none of our keys is on that data, so no
# key has a paper value to stand beside it. The paper's claim we test is an ordering: Gibbs < ancestral.
PAPER_NUMBERS: dict[str, float | None] = {
    "valid/nll_per_masked_cell": None,
    "baseline/copy_neighbour_nll": None,
    "samples/nll_gibbs_mean": None,
    "samples/nll_ancestral_mean": None,
    "samples/ancestral_minus_gibbs_in_stderrs": None,
}
HEADLINE = [
    "valid/nll_per_masked_cell",
    "baseline/copy_neighbour_nll",
    "samples/ancestral_minus_gibbs_in_stderrs",
]


def main(scale: str, overrides: list[str]) -> dict:
    started = time.time()
    cfg = load_config(CoconetConfig, scale, [f"name={scale}", *overrides], CONFIG_DIR)
    run = train(cfg)
    results = evaluate(run.dir)
    results["wall_clock_s"] = round(time.time() - started, 1)
    return results
