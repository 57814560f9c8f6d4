# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Advantage Alignment — our runs beside the paper
#
# Loads `runs/advantage_alignment/quick/results.json` (from `make advantage_alignment`) and the full run's
# when one exists, falling back to the committed copies in `results/advantage_alignment/`. Runs in seconds;
# a missing run is reported, not an error. The paper's numbers (arXiv 2406.14662, Fig. 1-3) come from
# `advantage_alignment.reproduce.PAPER_NUMBERS`, each with its source.

# %%
import json
from pathlib import Path

from IPython.display import Image, display

from advantage_alignment.reproduce import PAPER_NUMBERS

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent


def load(scale):
    for path, plots in (
        (ROOT / "runs" / "advantage_alignment" / scale / "results.json", None),
        (ROOT / "results" / "advantage_alignment" / f"{scale}.json", scale),
    ):
        if path.is_file():
            print(f"{scale}: {path.relative_to(ROOT)}")
            return json.loads(path.read_text()), path.parent / plots if plots else path.parent
    print(f"{scale}: no results yet")
    return None, None


quick, quick_dir = load("quick")
full, full_dir = load("full")

# %% [markdown]
# ## Results against the paper (every key of the issue, and the ablations)
#
# At quick scale the Negotiation Game runs the `negotiation_medium` preset: `negotiation/` is **proximal**
# AA (PAA, beta 3), `negotiation_paa/` the same runs, `negotiation_beta0/` plain PPO and `negotiation_aa/`
# REINFORCE AA (one seed). The paper's Fig. 3a AA is REINFORCE AA at batch 16384 (README).

# %%
keys = sorted({*PAPER_NUMBERS, *(quick or {})})
print(f"{'key':48s} {'paper':>8s} {'quick':>8s} {'full':>8s}  source")
for key in keys:
    number = PAPER_NUMBERS.get(key)
    paper = "—" if number is None or number.value is None else f"{number.value:.3g}"
    ours = "—" if not quick or key not in quick else f"{quick[key]:.3g}"
    theirs = "—" if not full or key not in full else f"{full[key]:.3g}"
    print(f"{key:48s} {paper:>8s} {ours:>8s} {theirs:>8s}  {number.source if number else ''}")

# %% [markdown]
# ## Plots
# IPD cooperation probabilities (paper Fig. 1b), Coin Game cross-play (Fig. 2), Negotiation league
# (Fig. 3a) and the learning curves.

# %%
for name in (
    "ipd_p_coop",
    "ipd_learning_curves",
    "coin_cross_play",
    "coin_learning_curves",
    "negotiation_league",
    "negotiation_cross_play",
    "negotiation_learning_curves",
):
    for directory in (quick_dir, full_dir):
        if directory is not None and (directory / f"{name}.png").is_file():
            print(f"{name} ({directory.relative_to(ROOT)})")
            display(Image(filename=str(directory / f"{name}.png")))
