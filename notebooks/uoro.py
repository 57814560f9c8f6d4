# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # On the Variance of UORO (Cooijmans & Martens, arXiv:1902.02405): our measurements beside the paper
#
# Reads `runs/uoro/quick/results.json` (from `make uoro`) or, without a run, the committed
# `results/uoro/quick.json`, and the plots beside it. The paper's claims that are numbers come from
# `uoro.reproduce.PAPER_NUMBERS` with their source; the bars are the checks of the quick run.
# Runs in seconds and says so when something is missing.

# %%
import json
from pathlib import Path

from IPython.display import Image, display

from common.results import fmt
from uoro.reproduce import HEADLINE, PAPER_NUMBERS

ROOT = Path.cwd()
while not (ROOT / "pyproject.toml").exists() and ROOT.parent != ROOT:
    ROOT = ROOT.parent


def load(scale):
    for path in (
        ROOT / "runs/uoro" / scale / "results.json",
        ROOT / "results/uoro" / f"{scale}.json",
    ):
        if path.is_file():
            print(f"{scale}: {path.relative_to(ROOT)}")
            plots = path.parent if path.name == "results.json" else path.parent / scale
            return json.loads(path.read_text()), plots
    print(f"{scale}: no results yet (run `make uoro{'-full' if scale == 'full' else ''}`)")
    return None, None


quick, quick_dir = load("quick")
full, _ = load("full")

# %% [markdown]
# ## The checks on the quick run

# %%
CHECKS = [
    ("total/h16/uoro_over_mean4", lambda v: 3.4 <= v <= 4.6, "in [3.4, 4.6]"),
    ("total/h16/noproj_over_uoro", lambda v: v <= 0.10, "<= 0.10"),
    ("total/h32/noproj_over_uoro", lambda v: v <= 0.05, "<= 0.05"),
    ("total/h32/noproj_over_proj_unrescaled", lambda v: v <= 2 / 32, "<= 2/32"),
    ("total/h16/rescaling_gain", lambda v: v >= 5, ">= 5"),
    ("total/h16/time_scaling_gain", lambda v: v >= 5, ">= 5"),
    ("total/h16/oracle_shaping_gain", lambda v: v >= 1.10, ">= 1.10"),
    ("total/h32/oracle_shaping_gain", lambda v: v >= 1.20, ">= 1.20"),
    ("total/h32/b_quarter_measured_over_predicted", lambda v: 0.75 <= v <= 1.25, "in [0.75, 1.25]"),
    ("theory/max_rel_error_unrescaled", lambda v: v <= 0.25, "<= 0.25"),
    (
        "reinforce/h16/var_ratio_to_uoro_sigma_1e-3",
        lambda v: abs(v - 1) <= 0.01,
        "within 0.01 of 1",
    ),
    ("reinforce/h16/no_baseline_var_ratio_sigma_1e-2_over_1e-1", lambda v: v >= 10, ">= 10"),
    ("bias/max_abs_z_rescaled", lambda v: v <= 4, "<= 4"),
    ("bias/max_abs_z_unrescaled", lambda v: v <= 5, "<= 5"),
    ("cost/rtrl_over_uoro_time_h64", lambda v: v >= 5, ">= 5"),
]
rows = ["| key | paper | bar | ours (quick) | pass |", "|---|---|---|---|---|"]
for key, ok, bar in CHECKS:
    value = (quick or {}).get(key)
    paper = PAPER_NUMBERS[key].value if key in PAPER_NUMBERS else None
    verdict = "—" if value is None else ("yes" if ok(value) else "**no**")
    rows.append(f"| {key} | {fmt(paper)} | {bar} | {fmt(value)} | {verdict} |")
print("\n".join(rows))

# %% [markdown]
# ## Total variance per estimator (measured, and predicted by the exact formula where one exists)

# %%
if quick:
    rows = ["| estimator | n | measured | measured / predicted |", "|---|---|---|---|"]
    for key in sorted(k for k in quick if k.startswith("total/") and k.endswith("/rel_var")):
        _, size, name, _ = key.split("/")
        ratio = quick.get(f"total/{size}/{name}/measured_over_predicted")
        rows.append(f"| {name} | {size[1:]} | {fmt(quick[key])} | {fmt(ratio)} |")
    print("\n".join(rows))

# %% [markdown]
# ## Training on the copy task (ours): final losses and paired spreads over seeds

# %%
if quick:
    for key in sorted(k for k in quick if k.startswith("train/")):
        print(f"{key} = {fmt(quick[key])}")
    print("headline:", {key: fmt(quick.get(key)) for key in HEADLINE})

# %% [markdown]
# ## Plots

# %%
for name in ("total_variance.png", "measured_vs_predicted.png", "reinforce_sigma.png", "alpha_schedules.png",
             "train_copy.png", "nmse_over_time.png"):  # fmt: skip
    path = quick_dir / name if quick_dir else None
    if path is not None and path.is_file():
        display(Image(filename=str(path)))
    else:
        print(f"missing plot {name}")
