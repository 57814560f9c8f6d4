# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The cross-paper league: opponent-shaping agents against each other and scripted bots
#
# Loads `runs/league/quick/results.json` and `league.json` (from `python -m common.league`, i.e. `make league`),
# falling back to the committed copy in `results/league/`. A missing league is reported, not an error.
# Beside our numbers: the LOQA authors' Coin Game league files (arXiv 2405.01035, 3x3 Coin Game, 32 games x 50
# steps per pair, mean over seed pairs), which hold LOQA, POLA, M-FOS and the bots; AA and BRS have no entry.

# %%
import json
from pathlib import Path

import numpy as np
from IPython.display import Image, display

from common.results import fmt

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent

results, detail, plots = None, None, None
for folder, name in (
    (ROOT / "runs" / "league" / "quick", "results.json"),
    (ROOT / "results" / "league", "quick.json"),
):
    if (folder / name).is_file():
        results = json.loads((folder / name).read_text())
        detail_path = (
            folder / "league.json" if name == "results.json" else folder / "quick" / "league.json"
        )
        detail = json.loads(detail_path.read_text()) if detail_path.is_file() else None
        plots = folder if name == "results.json" else folder / "quick"
        print(f"league: {(folder / name).relative_to(ROOT)}")
        break
else:
    print("no league results yet (run `make league`, i.e. python -m common.league)")

# %% [markdown]
# ## The issue's keys beside the LOQA authors' league (reward per step of the first-named player)

# %%
AUTHORS = {  # arXiv 2405.01035, authors' Coin Game league files; None: not in their league
    "coin/loqa_self_reward": 0.316,
    "coin/aa_self_reward": None,
    "coin/brs_sp_self_reward": None,
    "coin/naive_self_reward": None,
    "coin/ad_vs_ac_reward": 0.631,
    "coin/ad_vs_loqa_reward": 0.123,
    "coin/ad_vs_aa_reward": None,
    "coin/ad_vs_brs_sp_reward": None,
    "coin/loqa_vs_aa_reward": None,
    "coin/aa_vs_loqa_reward": None,
    "coin/loqa_self_own_coin": 0.954,
    "coin/loqa_cross_seed_reward": 0.286,
}
rows = ["| key | LOQA authors' league | ours (quick) | ± s.e. |", "|---|---|---|---|"]
for key, paper in AUTHORS.items():
    ours = (results or {}).get(key)
    rows.append(f"| {key} | {fmt(paper)} | {fmt(ours)} | {fmt((results or {}).get(key + '_se'))} |")
print("\n".join(rows))
if detail:
    print("methods without runs:", ", ".join(detail["missing"]) or "none")

# %% [markdown]
# ## Method matrices (row method's reward per step / own-coin fraction against the column; mean over seeds)

# %%
if detail:
    for game, keys in (("coin", ("reward", "own_coin_fraction")), ("ipd", ("reward",))):
        league = detail[game]
        methods = league["methods"]
        for key in keys:
            mean, se = np.array(league[f"method_{key}"]), np.array(league[f"method_{key}_se"])
            print(f"\n{game} {key} (± s.e.)")
            print("| | " + " | ".join(methods) + " |")
            print("|---" * (len(methods) + 1) + "|")
            for i, m in enumerate(methods):
                cells = [f"{fmt(mean[i, j])} ± {fmt(se[i, j])}" for j in range(len(methods))]
                print(f"| {m} | " + " | ".join(cells) + " |")

# %% [markdown]
# ## Plots: heat-maps and welfare vs exploitability
# (x: what always-defect earns against the agent; y: the agent's self-play reward per step.)

# %%
for name in (
    "coin_reward.png",
    "coin_own_coin_fraction.png",
    "coin_welfare_vs_exploitability.png",
    "ipd_reward.png",
    "ipd_welfare_vs_exploitability.png",
):
    if plots is not None and (plots / name).is_file():
        display(Image(filename=str(plots / name)))
