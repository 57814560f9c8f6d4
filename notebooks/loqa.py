# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # LOQA: Learning with Opponent Q-Learning Awareness — our runs beside the paper
#
# Loads `runs/loqa/quick/results.json` (from `make loqa`) and `runs/loqa/full/results.json` when a full run
# exists, falling back to the committed summary in `results/loqa/`. Runs in seconds; a missing run is
# reported, not an error. The paper's Coin Game numbers are the authors' released league files; the
# paper's IPD figure prints no numbers, so the IPD has no paper number.

# %%
import json
from pathlib import Path

from IPython.display import Image, display

from common.results import fmt
from loqa.reproduce import PAPER_NUMBERS

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent


def load(scale):
    for path in (
        ROOT / "runs" / "loqa" / scale / "results.json",
        ROOT / "results" / "loqa" / f"{scale}.json",
    ):
        if path.is_file():
            print(f"{scale}: {path.relative_to(ROOT)}")
            plots = path.parent if path.name == "results.json" else path.parent / scale
            return json.loads(path.read_text()), plots
    target = "loqa-full" if scale == "full" else "loqa"
    print(f"{scale}: no results yet (run `make {target}`)")
    return None, None


quick, quick_dir = load("quick")
full, full_dir = load("full")

# %% [markdown]
# ## Results against the paper

# %%
keys = sorted({*PAPER_NUMBERS, *(quick or {})})
rows = ["| key | paper | ours (quick) | ours (full) |", "|---|---|---|---|"]
for key in keys:
    if key.endswith("_std"):
        continue
    paper = PAPER_NUMBERS[key].value if key in PAPER_NUMBERS else None
    rows.append(
        f"| {key} | {fmt(paper)} | {fmt((quick or {}).get(key))} | {fmt((full or {}).get(key))} |"
    )
print("\n".join(rows))

# %% [markdown]
# ## Plots: IPD policies, learning curves, leagues

# %%
for directory in (quick_dir, full_dir):
    if directory is None:
        continue
    for name in (
        "ipd_p_cooperate.png",
        "ipd_no_shaping_p_cooperate.png",
        "ipd_learning_curves.png",
        "ipd_league.png",
        "coin_learning_self_play_own_coin_fraction.png",
        "coin_league_reward.png",
        "coin_league_own_coin.png",
    ):
        path = directory / name
        if path.is_file():
            display(Image(filename=str(path)))
        else:
            print(f"missing plot {path.relative_to(ROOT)}")
