# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # MeVa: Meta-Value Learning — our runs beside the paper
#
# Loads the latest quick run (`runs/meva/quick/results.json` from `make meva`, else the committed
# `results/meva/quick.json`) and a full run where one exists. The paper (arXiv 2307.08863) reports its
# matrix-game results as head-to-head tables without standard deviations (Tables 2-3); those cells were not
# available to us, so the paper column shows its qualitative claims. The toy-game figure is drawn on our
# stand-in game, **not** the paper's Logistic Game.

# %%
import json
from pathlib import Path

from IPython.display import Image, display

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent

from meva.reproduce import ISSUE_KEYS, PAPER_NUMBERS  # noqa: E402


def load(scale):
    for path, plots in (
        (ROOT / "runs" / "meva" / scale / "results.json", ROOT / "runs" / "meva" / scale),
        (ROOT / "results" / "meva" / f"{scale}.json", ROOT / "results" / "meva" / scale),
    ):
        if path.is_file():
            print(f"{scale}: {path.relative_to(ROOT)}")
            return json.loads(path.read_text()), plots
    print(f"{scale}: no results yet (run `make meva{'' if scale == 'quick' else '-full'}`)")
    return None, None


quick, quick_dir = load("quick")
full, full_dir = load("full")

# %% [markdown]
# ## The issue's pairs (per-step return at the 100th iterate, mean +- std over seeds)
#
# Paper, qualitatively (abstract and Sec. 5.2): MeVa self-play in the IPD cooperates (about -1 per step),
# MeVa is not exploited by naive learners, and it compares favourably with LOLA across the games.

# %%
THRESHOLDS = {
    "ipd/meva_vs_meva_reward": ">= -1.15",
    "ipd/meva_gamma0_vs_meva_gamma0_reward": "<= -1.8",
    "ipd/naive_vs_naive_reward": "<= -1.8",
    "ipd/lola_vs_lola_reward": ">= -1.3",
}


def cell(results, key):
    if results is None or key not in results:
        return "—"
    std = results.get(f"{key}_std")
    return f"{results[key]:.3f}" + ("" if std is None else f" ± {std:.3f}")


rows = ["| key | paper | check | ours (quick) | ours (full) |", "|---|---|---|---|---|"]
for game in ("ipd", "imp", "chicken"):
    for key in ISSUE_KEYS:
        full_key = f"{game}/{key}"
        paper = PAPER_NUMBERS.get(full_key)
        paper_txt = "—" if paper is None or paper.value is None else f"{paper.value:.3f}"
        check = THRESHOLDS.get(full_key, "")
        rows.append(
            f"| {full_key} | {paper_txt} | {check} | {cell(quick, full_key)} | {cell(full, full_key)} |"
        )
print("\n".join(rows))
if quick is not None:
    gap = quick["ipd/meva_vs_naive_meva_reward"] - quick["ipd/meva_vs_naive_naive_reward"]
    print(f"\nIPD: MeVa minus naive when they meet: {gap:+.3f} (check: >= -0.02)")
    print(f"wall clock of the quick run: {quick['wall_clock_s']:.0f} s")

# %% [markdown]
# ## Head-to-head tables (row learner's return against the column learner) and the toy stand-in

# %%
for directory in (quick_dir, full_dir):
    if directory is None:
        continue
    for name in (
        "ipd_table.png",
        "imp_table.png",
        "chicken_table.png",
        "ipd_returns_along_iterates.png",
        "ipd_td_error.png",
        "toy_landscapes.png",
    ):
        path = directory / name
        if path.is_file():
            display(Image(filename=str(path)))
