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
# (voice, sixteenth) cell from whatever is left. This notebook reads the committed results
# (`results/coconet/<scale>.json`, published from `make coconet` / `make coconet-medium` by
# `python -m common.results publish coconet <scale>`) and sets our numbers beside the checks and
# what the paper (arXiv 1903.07227) says. It trains nothing and runs in seconds.
#
# **Different data, same protocol**: the paper's JSB split is not available offline; we use music21's
# Bach chorales with our own deterministic split (see `coconet/README.md`), so only the *orderings* the
# paper claims (Gibbs better than ancestral) are strictly comparable, not the NLL values.

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

from coconet.reproduce import PAPER_NUMBERS

ROOT = Path.cwd() if (Path.cwd() / "coconet").is_dir() else Path.cwd().parent


def load(scale):
    path = ROOT / "results/coconet" / f"{scale}.json"
    return (json.loads(path.read_text()), path) if path.is_file() else (None, None)


quick, quick_path = load("quick")
medium, medium_path = load("medium")
full, full_path = load("full")
print("quick run:", quick_path or "missing: run `make coconet`, then publish it")
print("medium run:", medium_path or "missing: run `make coconet-medium`, then publish it")
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
# ## Harmonisation: the model's alto, tenor and bass under Bach's validation sopranos
# Per simultaneity (a frame where any voice changes), beside Bach's own chorales and a control that
# shifts Bach's lower voices in time (right registers, wrong chords). The thresholds are on the
# medium run: crossing <= 0.05 (default sampling) and <= 0.10 at temperature 1; parallels below the
# control's; notes outside the voice's range <= 0.02; simultaneities <= 1.4 x Bach's.

# %%
STATS = ["voice_crossing_rate", "parallel_5ths_8ves_per_move", "out_of_voice_range_rate",
         "simultaneities_ratio_to_bach"]  # fmt: skip
SETS = ["harmonize", "harmonize_t1", "bach", "shifted_control"]
for name, results in (("quick", quick), ("medium", medium)):
    if not results or f"harmonize/{STATS[0]}" not in results:
        continue
    rows = [f"| {name} | " + " | ".join(STATS) + " |", "|---" * (len(STATS) + 1) + "|"]
    for prefix in SETS:
        values = [results.get(f"{prefix}/{stat}") for stat in STATS]
        rows.append(
            f"| {prefix} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in values) + " |"
        )
    display(Markdown("\n".join(rows)))

# %% [markdown]
# ## All results, quick beside medium and full
# The paper gives no number on our data (each key's source says where the paper speaks to it); its
# claims are orderings: Gibbs samples are more likely under the model than ancestral ones.

# %%
if quick:
    keys = sorted(set(quick) | set(medium or {}) | set(full or {}))
    rows = [
        "| key | ours (quick) | ours (medium) | ours (full) | paper's source |",
        "|---|---|---|---|---|",
    ]
    for key in keys:
        cells = [
            ("" if r is None or key not in r else f"{r[key]:.4g}") for r in (quick, medium, full)
        ]
        source = PAPER_NUMBERS[key].source if key in PAPER_NUMBERS else ""
        rows.append(f"| {key} | " + " | ".join(cells) + f" | {source} |")
    display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Plots (quick and medium runs, as published)

# %%
for scale in ("quick", "medium"):
    folder = ROOT / "results/coconet" / scale
    for path in sorted(folder.glob("*.png")):
        display(Markdown(f"**{scale}: {path.stem}** ({path.relative_to(ROOT)})"))
        display(Image(filename=str(path)))
    if not folder.is_dir():
        print(f"{folder.relative_to(ROOT)}: not published yet")
