# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Coconet — Counterpoint by Convolution (Huang et al., ISMIR 2017)
#
# A convolutional orderless NADE over four-voice Bach chorales: one network predicts any erased
# (voice, sixteenth) cell from whatever is left. This notebook reads the latest quick run
# (`runs/coconet/quick/results.json`, written by `make coconet`; else the committed copy in
# `results/coconet/`) and a full run where one exists, and sets our numbers beside the checks
# and the paper's claims. It trains nothing and runs in seconds.
#
# **Different data, same protocol**: the paper's JSB split is not available offline; we use music21's
# Bach chorales with our own deterministic split (see `coconet/README.md`), so only the *orderings* the
# paper claims (Gibbs better than ancestral) are strictly comparable, not the NLL values.

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

from coconet.report import PLOTS

ROOT = Path.cwd() if (Path.cwd() / "coconet").is_dir() else Path.cwd().parent


def load(scale):
    for path in (
        ROOT / "runs/coconet" / scale / "results.json",
        ROOT / f"results/coconet/results_{scale}.json",
    ):
        if path.is_file():
            return json.loads(path.read_text()), path
    return None, None


quick, quick_path = load("quick")
full, full_path = load("full")
print("quick run:", quick_path or "missing: run `make coconet`")
print("full run:", full_path or "none yet (`make coconet-full`, a GPU job)")

# %% [markdown]
# ## The checks
# NLLs are in nats per masked sounding cell, pooled over all masked cells of fixed validation crops
# (32 sixteenths, orderless masks); the copy-neighbour baseline is scored on exactly the same cells.

# %%
CHECKS = [
    (
        "model beats tuned copy-neighbour by >= 0.1",
        lambda r: r["baseline/copy_neighbour_nll"] - r["valid/nll_per_masked_cell"],
        ">= 0.1",
    ),
    ("no leakage: NLL per masked cell > 0.05", lambda r: r["valid/nll_per_masked_cell"], "> 0.05"),
    (
        "context helps: high-mask minus low-mask NLL >= 1.0",
        lambda r: r["valid/nll_high_mask"] - r["valid/nll_low_mask"],
        ">= 1.0",
    ),
    (
        "Gibbs beats ancestral by > 2 s.e.",
        lambda r: r["samples/ancestral_minus_gibbs_in_stderrs"],
        "> 2",
    ),
]


def check_table(results):
    rows = ["| check | measured | threshold |", "|---|---|---|"]
    for name, value, threshold in CHECKS:
        rows.append(f"| {name} | {value(results):.3f} | {threshold} |")
    return "\n".join(rows)


if quick:
    display(Markdown(check_table(quick)))
else:
    print("no quick results to check")

# %% [markdown]
# ## All results, quick beside full
# The paper gives no number on our data; its claims are orderings: Gibbs samples are more likely
# under the model than ancestral ones, and the model's conditionals beat simple baselines.

# %%
if quick:
    keys = sorted(set(quick) | set(full or {}))
    rows = ["| key | ours (quick, CPU) | ours (full) |", "|---|---|---|"]
    for key in keys:
        q = quick.get(key)
        f = (full or {}).get(key)
        rows.append(f"| {key} | {q:.4g} | {'' if f is None else f'{f:.4g}'} |")
    display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Plots (from the quick run)

# %%
for name in PLOTS:
    for folder in (ROOT / "runs/coconet/quick/plots", ROOT / "results/coconet"):
        if (folder / f"{name}.png").is_file():
            display(Markdown(f"**{name}** ({folder.relative_to(ROOT)})"))
            display(Image(filename=str(folder / f"{name}.png")))
            break
    else:
        print(f"{name}.png: not found (run `make coconet`)")
