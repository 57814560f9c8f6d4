# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Harmonic recomposition — VQ-VAE codes and a chord-conditioned PixelCNN prior (Kastner et al., arXiv 1811.07426)
#
# Each 4-voice measure is compressed to a 13 x 4 map of discrete codes by a VQ-VAE; a gated PixelCNN
# models the codes conditioned on the (previous, current, next) chord; recomposition keeps a held-out
# chord progression and samples new measures for it. This notebook reads the latest quick run
# (`runs/vqvae_recompose/quick/results.json`, written by `make vqvae_recompose`; else the committed copy
# `results/vqvae_recompose/quick.json`) and a full run where one exists, and shows our numbers and plots
# beside the checks and the paper's claims. It trains nothing and runs in seconds.
#
# **The paper reports no numbers** (qualitative claims only, Sec. 3), and it uses Josquin, which is not
# available offline: we use bar-aligned Bach chorale measures with root + quality chord labels.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

ROOT = Path.cwd() if (Path.cwd() / "vqvae_recompose").is_dir() else Path.cwd().parent


def load(scale):
    for path, plots in (
        (
            ROOT / "runs/vqvae_recompose" / scale / "results.json",
            ROOT / "runs/vqvae_recompose" / scale,
        ),
        (ROOT / f"results/vqvae_recompose/{scale}.json", ROOT / f"results/vqvae_recompose/{scale}"),
    ):
        if path.is_file():
            return json.loads(path.read_text()), path, plots
    return None, None, None


quick, quick_path, quick_plots = load("quick")
full, full_path, full_plots = load("full")
print("quick run:", quick_path or "missing: run `make vqvae_recompose`")
print("full run:", full_path or "none yet (`make vqvae_recompose-full`, a GPU job)")

# %% [markdown]
# ## The checks (issue 17) and the paper's claims

# %%
CHECKS = [
    ("R1 held-out pitch accuracy", "vqvae/heldout_pitch_accuracy", lambda r: r["vqvae/heldout_pitch_accuracy"], ">= 0.70"),
    ("R1 codebook perplexity", "vqvae/codebook_perplexity", lambda r: r["vqvae/codebook_perplexity"], ">= 8"),
    ("R2 NLL true / shuffled chords", "prior", lambda r: r["prior/nll_true_chords"] / r["prior/nll_shuffled_chords"], "<= 0.98"),
    ("R3 NLL / per-position unigram", "prior", lambda r: r["prior/nll_true_chords"] / r["prior/per_position_unigram_nll"], "<= 0.85"),
    ("R4 chord match own / unrelated", "samples", lambda r: r["samples/chord_match_rate"] / r["samples/chord_match_rate_unrelated"], ">= 1.5"),
    ("samples (n)", "samples", lambda r: r["samples/n"], ">= 870"),
    ("rest rate, chord-only samples", "samples", lambda r: r["samples/rest_rate"], "report"),
    ("rest rate, real held-out measures", "real", lambda r: r["real/rest_rate"], "report"),
]  # fmt: skip


def check_table(results, label):
    rows = [f"| check | ours ({label}) | threshold |", "|---|---|---|"]
    for name, _, value, threshold in CHECKS:
        rows.append(f"| {name} | {value(results):.3f} | {threshold} |")
    return "\n".join(rows)


for results, label in ((quick, "quick"), (full, "full")):
    if results is not None:
        display(Markdown(check_table(results, label)))

# %% [markdown]
# The paper's qualitative claims (Sec. 3): (1) chord-only conditioning gives directed, coherent
# trajectories; (2) adding the previous measure's codes as spatial conditioning gives dissonant
# intervals and long silent gaps. Our proxies for claim 2: the rest rate, the dissonance rate (steps with
# a minor second / major seventh / tritone between two voices) and the longest silent run per voice.

# %%
if quick is not None:
    rows = ["| | real held-out | chord-only | chord + spatial |", "|---|---|---|---|"]
    for metric in ("rest_rate", "dissonance_rate", "longest_rest_run", "chord_match_rate"):
        cells = [quick.get(f"{group}/{metric}") for group in ("real", "samples", "spatial")]
        if metric == "chord_match_rate":
            cells[0] = quick.get("reconstructions/chord_match_rate")  # the ceiling: reconstructions
        rows.append(
            f"| {metric} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + " |"
        )
    display(Markdown("\n".join(rows)))
    claim = quick.get("claim/spatial_more_rests_and_dissonance")
    print(
        "claim 2 (spatial: more rests and more dissonance) holds:",
        None if claim is None else bool(claim),
    )

# %% [markdown]
# ## Plots of the quick run

# %%
PLOTS = [
    "fig1_two_seeds",
    "fig2_chord_vs_spatial",
    "reconstructions",
    "codebook_usage",
    "chord_adherence",
    "vqvae_accuracy_curve",
    "prior_nll_curve",
]
for name in PLOTS:
    path = None if quick_plots is None else quick_plots / f"{name}.png"
    if path is None or not path.is_file():
        print(f"{name}: no plot yet")
        continue
    image = plt.imread(path)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 110, image.shape[0] / 110))
    ax.imshow(image)
    ax.axis("off")
    ax.set_title(name)
    plt.show()
