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
# # On the Variance of UORO (Cooijmans & Martens 2019): our measurements beside the paper's claims
#
# Only the paper's abstract was available to us, so the paper column holds its **qualitative** claims;
# every number is ours. This notebook reads `runs/uoro/quick/results.json` (written by `make uoro`) and,
# where they exist, `runs/uoro/full/results.json`; without a run it falls back to the committed copy in
# `results/uoro/`. It runs in seconds and says so when something is missing.

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

root = Path.cwd()
while not (root / "pyproject.toml").exists() and root != root.parent:
    root = root.parent


def load(scale):
    for path in (
        root / "runs/uoro" / scale / "results.json",
        root / "results/uoro" / f"{scale}_results.json",
    ):
        if path.exists():
            return json.loads(path.read_text()), path
    return None, None


runs = {scale: load(scale) for scale in ("quick", "full")}
for scale, (_results, path) in runs.items():
    print(
        f"{scale}: {path.relative_to(root) if path else 'no run yet (make uoro' + ('-full' if scale == 'full' else '') + ')'}"
    )

# %% [markdown]
# ## The checks

# %%
CHECKS = [
    (
        "RTRL = BPTT of the summed loss",
        "rtrl/max_abs_diff_to_bptt",
        lambda v: v < 1e-8,
        "< 1e-8",
        "(derived)",
    ),
    (
        "UORO unbiased",
        "uoro/bias_in_stderrs",
        lambda v: v < 3,
        "< 3 stderr",
        "unbiased (Tallec & Ollivier)",
    ),
    (
        "rho matters",
        "rho/nmse_ratio_no_rho_to_uoro",
        lambda v: v >= 5,
        ">= 5x",
        "rho reduces variance",
    ),
    (
        "reduction, radius 0.9",
        "uoro_reduced/nmse_reduction_radius_0.9",
        lambda v: v >= 1.5,
        ">= 1.5x",
        "reductions 'in theory and practice'",
    ),
    (
        "reduction, radius 0.5",
        "uoro_reduced/nmse_reduction_radius_0.5",
        lambda v: v >= 2,
        ">= 2x",
        "as above",
    ),
    ("rank-4 control", "rank4/nmse_reduction", lambda v: 3 <= v <= 5, "in [3, 5]", "variance / k"),
    (
        "REINFORCE(1e-3) / UORO(rho=1)",
        "reinforce_small_noise/nmse_ratio_to_gaussian_uoro_no_rho",
        lambda v: abs(v - 1) <= 0.05,
        "within 5%",
        "UORO = REINFORCE with small hidden noise",
    ),
    (
        "REINFORCE bias 0.1 / 1e-3",
        "reinforce/bias_ratio_large_to_small_noise",
        lambda v: v >= 10,
        ">= 10x",
        "equivalence only as noise -> 0",
    ),
    (
        "NMSE radius 1.1 / 0.5",
        "uoro/nmse_ratio_radius_1.1_to_0.5",
        lambda v: v >= 1.5,
        ">= 1.5x",
        "variance grows with memory",
    ),
    ("RTRL final loss", "train/rtrl_final_loss", lambda v: v < 0.05, "< 0.05 nats", "—"),
    ("UORO final loss", "train/uoro_final_loss", lambda v: v < 0.5, "< 0.5 nats", "—"),
    ("UORO / TBPTT(1) loss", "train/uoro_to_tbptt1_final_loss", lambda v: v <= 0.5, "<= 0.5", "—"),
    (
        "reduced / UORO loss",
        "train/uoro_reduced_to_uoro_final_loss",
        lambda v: v <= 1.1,
        "<= 1.1",
        "—",
    ),
]


def table(results):
    rows = ["| check | paper (abstract) | bar | ours | pass |", "|---|---|---|---|---|"]
    for name, key, ok, bar, paper in CHECKS:
        if key not in results:
            rows.append(f"| {name} | {paper} | {bar} | missing | — |")
            continue
        value = results[key]
        rows.append(f"| {name} | {paper} | {bar} | {value:.4g} | {'yes' if ok(value) else 'NO'} |")
    return "\n".join(rows)


for scale, (results, _path) in runs.items():
    if results is None:
        display(Markdown(f"**{scale}**: not run yet."))
        continue
    display(
        Markdown(
            f"### {scale} (wall clock {results.get('wall_clock_s', float('nan')):.0f} s)\n\n"
            + table(results)
        )
    )

# %% [markdown]
# ## Plots (ours; the paper's figures are unknown to us)

# %%
PLOTS = [
    "nmse_over_time.png",
    "nmse_vs_radius.png",
    "nmse_vs_hidden.png",
    "nmse_reduction.png",
    "reinforce_vs_sigma.png",
    "train_copy.png",
    "train_chars.png",
]
for name in PLOTS:
    candidates = [
        root / "runs/uoro/quick-variance/plots" / name,
        root / "runs/uoro/quick/plots" / name,
        root / "results/uoro" / name,
    ]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        print(f"{name}: not produced yet")
    else:
        print(found.relative_to(root))
        display(Image(filename=str(found)))
