"""Plots of the variance and training experiments (all labelled "ours": the paper's figures are unknown)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.plots import bar_chart, learning_curves  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _smooth(y: np.ndarray, width: int = 9) -> np.ndarray:
    """Running geometric mean: per-step NMSE jumps by orders of magnitude with |g*_t|."""
    logs = np.log(np.maximum(y, 1e-300))
    kernel = np.ones(width) / width
    padded = np.pad(logs, (width // 2, width - 1 - width // 2), mode="edge")
    return np.exp(np.convolve(padded, kernel, mode="valid"))


def variance_plots(plots_dir: Path | str, results: dict, curves: dict, cfg) -> list[Path]:
    plots_dir = Path(plots_dir)
    vc = cfg.variance
    main = f"radius_{vc.main_radius:g}"
    paths = []

    # NMSE over time, one line per estimator (the main variance figure, spec §7)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in [
        (f"uoro_no_rho/{main}", "UORO, rho = 1"),
        (f"uoro/{main}", "UORO (Tallec-Ollivier rho)"),
        (f"uoro_blockwise/{main}", "blockwise pairs"),
        (f"uoro_grad_rho/{main}", "gradient-aware rho"),
        (f"uoro_shaped/{main}", "shaped noise + gradient-aware rho"),
        (f"rank{vc.rank}/{main}", f"rank-{vc.rank} average (4x cost)"),
    ]:
        if key in curves:
            ax.plot(_smooth(curves[key]), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("NMSE of g_t vs RTRL (running geo. mean)")
    ax.set_title(
        f"per-step gradient NMSE, n={cfg.model.n_hidden}, radius {vc.main_radius:g} (ours)"
    )
    ax.legend(fontsize=8)
    paths.append(_save(fig, plots_dir / "nmse_over_time.png"))

    # NMSE vs spectral radius, per estimator
    fig, ax = plt.subplots(figsize=(6, 4))
    radii = list(vc.radii)
    for kind, label in [
        ("uoro_no_rho", "UORO, rho = 1"),
        ("uoro", "UORO"),
        ("uoro_shaped", "shaped + gradient rho"),
        (f"rank{vc.rank}", f"rank-{vc.rank}"),
    ]:
        values = [results.get(f"{kind}/radius_{r:g}/nmse", np.nan) for r in radii]
        ax.plot(radii, values, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("spectral radius of W")
    ax.set_ylabel("NMSE (late window)")
    ax.set_title("longer memory costs variance (ours)")
    ax.legend(fontsize=8)
    paths.append(_save(fig, plots_dir / "nmse_vs_radius.png"))

    # NMSE vs hidden size
    sizes = list(vc.hidden_sizes)
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, label in [("uoro", "UORO"), ("uoro_shaped", "shaped + gradient rho")]:
        values = [results.get(f"{kind}/hidden_{n}/nmse", np.nan) for n in sizes]
        ax.plot(sizes, values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden units n")
    ax.set_ylabel("NMSE (late window)")
    ax.set_title(f"NMSE vs hidden size, radius {vc.main_radius:g} (ours)")
    ax.legend(fontsize=8)
    paths.append(_save(fig, plots_dir / "nmse_vs_hidden.png"))

    # REINFORCE: NMSE and bias vs sigma, converging to un-scaled Gaussian UORO
    sigmas = sorted(vc.reinforce_sigmas)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    nmse = [results[f"reinforce_{s:g}/nmse"] for s in sigmas]
    paired = [results[f"reinforce_{s:g}_minus_uoro/bias"] for s in sigmas]
    antithetic = [results[f"reinforce_{s:g}_antithetic_bias/bias"] for s in sigmas]
    axes[0].plot(sigmas, nmse, marker="o", label="REINFORCE, hidden noise sigma")
    axes[0].axhline(
        results["uoro_no_rho_gaussian/nmse"], color="k", ls="--", label="UORO rho=1, same noise"
    )
    axes[0].set_ylabel("NMSE")
    axes[1].plot(sigmas, paired, marker="o", label="paired: REINFORCE(eps) - UORO(eps)")
    axes[1].plot(sigmas, antithetic, marker="s", label="antithetic: +-eps average - UORO(eps)")
    axes[1].set_ylabel("|mean difference| / |g*|")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sigma")
    axes[0].legend(fontsize=8)
    fig.suptitle("UORO = REINFORCE with infinitesimal hidden noise (ours)")
    paths.append(_save(fig, plots_dir / "reinforce_vs_sigma.png"))

    # reductions at each radius, same-cost variants and the rank-k control
    labels, means = [], []
    for r in radii:
        for kind in ("uoro_blockwise", "uoro_grad_rho", "uoro_shaped"):
            labels.append(f"{kind.removeprefix('uoro_')}\n{r:g}")
            means.append(results[f"{kind}/nmse_reduction_radius_{r:g}"])
    paths.append(
        bar_chart(
            plots_dir / "nmse_reduction.png",
            labels,
            means,
            None,
            ylabel="NMSE(UORO) / NMSE(variant)",
            title="same-cost variance reductions by radius (ours)",
            reference={"no change": 1.0},
        )
    )
    return paths


def training_plot(
    path: Path | str, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str
) -> Path:
    """``curves[label] = (steps [L], losses [seeds, L])``; all runs must share the logging steps."""
    steps = next(iter(curves.values()))[0]
    return learning_curves(
        path,
        {label: losses for label, (_, losses) in curves.items()},
        xlabel="online step",
        ylabel="loss (nats, mean over 100 steps)",
        title=title,
        x=steps,
        logy=True,
    )
