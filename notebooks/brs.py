# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Best Response Shaping (reconstructed) — our runs beside the paper
#
# Loads the latest quick run (`runs/brs/quick/results.json`, from `make brs`) and a full run where one
# exists, falling back to the committed copies in `results/brs/`. The paper's numbers are those of
# `brs.reproduce.PAPER_NUMBERS`: for the Coin Game, the authors' pre-publication league notebook; the IPD
# has no number we could read, so its rows show the thresholds instead. Runs in seconds.

# %%
import json
from pathlib import Path

from IPython.display import Image, display

from brs.reproduce import PAPER_NUMBERS

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent
# The pass marks (issue 15): key -> (direction, threshold).
THRESHOLDS = {
    "ipd/brs_sp_reward_vs_best_response": (">=", -1.3),
    # The controls' marks use the best training seed (the stricter number), as the slow tests do.
    "ipd/always_cooperate_reward_vs_best_response_best_seed": ("<=", -2.5),
    "ipd/naive_reward_vs_best_response_best_seed": ("<=", -1.85),
    "ipd/brs_sp_no_detective_reward_vs_best_response_best_seed": ("<=", -2.5),
    "ipd/detective_reward_vs_always_cooperate": (">=", -0.3),
    "ipd/detective_reward_vs_tit_for_tat": (">=", -1.2),
    "ipd/brs_sp_self_play_reward": (">=", -1.25),
}


def load(scale):
    """(results, plot directory) of the latest run of `scale`, else of its committed copy."""
    for path, plots in (
        (ROOT / "runs" / "brs" / scale / "results.json", ROOT / "runs" / "brs" / scale),
        (ROOT / "results" / "brs" / f"{scale}.json", ROOT / "results" / "brs" / scale),
    ):
        if path.is_file():
            print(f"{scale}: {path.relative_to(ROOT)}")
            return json.loads(path.read_text()), plots
    print(f"{scale}: no results yet (run `make brs{'-full' if scale == 'full' else ''}`)")
    return None, None


quick, quick_dir = load("quick")
full, full_dir = load("full")

# %% [markdown]
# ## Results against the paper and the pass marks


# %%
def fmt(value):
    return "—" if value is None else f"{value:.3f}"


rows = [
    "| key | paper | pass mark | ours (quick) | pass | ours (full) |",
    "|---|---|---|---|---|---|",
]
for key in sorted({*PAPER_NUMBERS, *THRESHOLDS}):
    paper = PAPER_NUMBERS[key].value if key in PAPER_NUMBERS else None
    q, f = (quick or {}).get(key), (full or {}).get(key)
    mark, verdict = "—", ""
    if key in THRESHOLDS:
        direction, level = THRESHOLDS[key]
        mark = f"{direction} {level}"
        if q is not None:
            verdict = "yes" if (q >= level if direction == ">=" else q <= level) else "NO"
    rows.append(f"| {key} | {fmt(paper)} | {mark} | {fmt(q)} | {verdict} | {fmt(f)} |")
if quick:
    ac, agent = (
        quick.get("coin/always_cooperate_reward_vs_mcts"),
        quick.get("coin/agent_reward_vs_mcts"),
    )
    mcts_ac = quick.get("coin/mcts_reward_vs_always_cooperate")
    if None not in (ac, agent, mcts_ac):
        rows.append(
            f"| coin: MCTS exploits AC (MCTS {mcts_ac:.3f} > AC {ac:.3f}) | | | | {'yes' if mcts_ac > ac else 'NO'} | |"
        )
        rows.append(
            f"| coin: BRS-SP vs MCTS ({agent:.3f}) > AC vs MCTS ({ac:.3f}) | | | | {'yes' if agent > ac else 'NO'} | |"
        )
print("\n".join(rows))

# %% [markdown]
# ## Plots: agent vs best-response probe (IPD), the agents' policies, agent vs MCTS (Coin Game), training

# %%
for directory in (quick_dir, full_dir):
    if directory is None:
        continue
    for name in (
        "ipd_best_response.png",
        "ipd_policy.png",
        "ipd_training.png",
        "coin_vs_mcts.png",
        "coin_training.png",
    ):
        path = directory / name
        if path.is_file():
            display(Image(filename=str(path)))
