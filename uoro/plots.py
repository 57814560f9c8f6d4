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

    # NMSE over time, one line per estimator (ours)
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


TOTAL_LABELS = {
    "uoro": "UORO (state space, rescaled)",
    "uoro_unrescaled": "UORO, alpha = 1",
    "preact": "preactivation, rescaled",
    "preact_unrescaled": "preactivation, alpha = 1",
    "preact_geometric": "preactivation, alpha = c^t",
    "preact_optimal_alpha": "preactivation, optimal alpha_t",
    "preact_b_quarter": "preactivation, Q0 = B^-1/4",
    "preact_b_quarter_rescaled": "preactivation, Q0 = B^-1/4, rescaled",
    "preact_joint": "preactivation, optimal alpha_t and Q0",
    "noproj": "no spatial projection, rescaled",
    "noproj_unrescaled": "no spatial projection, alpha = 1",
}


def total_variance_plots(plots_dir: Path | str, results: dict, plot_data: dict, cfg) -> list[Path]:
    """The headline figures: total variance per estimator (measured, with the exact prediction where one
    exists), measured vs predicted, REINFORCE vs sigma, and the oracle's alpha_t schedules."""
    plots_dir, sizes, paths = Path(plots_dir), list(cfg.total.hidden_sizes), []
    names = list(TOTAL_LABELS)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    height = 0.8 / len(sizes)
    for i, n in enumerate(sizes):
        y = np.arange(len(names)) + i * height
        measured = [results[f"total/h{n}/{name}/rel_var"] for name in names]
        ax.barh(y, measured, height=height, label=f"measured, n = {n}")
        predicted = [results.get(f"total/h{n}/{name}/predicted_total", np.nan) for name in names]
        ax.plot(predicted, y, "k|", markersize=10, label="exact prediction" if i == 0 else None)
    ax.set_yticks(
        np.arange(len(names)) + 0.4 - height / 2, [TOTAL_LABELS[n] for n in names], fontsize=8
    )
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("total variance E|sum_t g_t - dL/dtheta|^2 / |dL/dtheta|^2")
    ax.set_title(f"total gradient variance, T = {cfg.total.steps}, R = {cfg.total.streams}")
    ax.legend(fontsize=8)
    paths.append(_save(fig, plots_dir / "total_variance.png"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    pairs = [(results[k.replace("measured_over_predicted", "predicted_total")], results[k.replace("measured_over_predicted", "rel_var")], k)
             for k in results if k.startswith("total/") and k.endswith("/measured_over_predicted")]  # fmt: skip
    for predicted, measured, key in pairs:
        ax.plot(
            predicted,
            measured,
            "o",
            label=key.removeprefix("total/").removesuffix("/measured_over_predicted"),
        )
    low = min(min(p, m) for p, m, _ in pairs) / 1.5
    high = max(max(p, m) for p, m, _ in pairs) * 1.5
    ax.plot([low, high], [low, high], "k--", lw=1, label="measured = predicted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted (exact closed form)")
    ax.set_ylabel(f"measured over R = {cfg.total.streams} streams")
    ax.set_title("unrescaled estimators: theory vs measurement")
    ax.legend(fontsize=6)
    paths.append(_save(fig, plots_dir / "measured_vs_predicted.png"))

    curves = plot_data["reinforce"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(curves["sigma"], curves["var"], "o-", label="REINFORCE, noise-free baseline")
    ax.plot(curves["sigma"], curves["no_baseline_var"], "s-", label="REINFORCE, no baseline")
    ax.plot(curves["sigma"], curves["diff_sq"], "^-", label="E|REINFORCE - UORO|^2 (same noise)")
    ax.axhline(
        curves["uoro_var"], color="k", ls="--", lw=1, label="UORO with the same Q0, alpha = 1"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sigma")
    ax.set_ylabel("relative to |dL/dtheta|^2")
    ax.set_title(f"REINFORCE with shaped noise, n = {cfg.total.reinforce_hidden}")
    ax.legend(fontsize=7)
    paths.append(_save(fig, plots_dir / "reinforce_sigma.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for n in sizes:
        ax.plot(plot_data[n]["alpha_opt"], label=f"optimal alpha_t (Q0 = I), n = {n}")
        ax.plot(plot_data[n]["alpha_joint"], ls=":", label=f"joint with Q0 = B^-1/4, n = {n}")
    geometric = plot_data[sizes[0]]["geometric"]
    ax.plot(geometric / np.exp(np.log(geometric).mean()), "k--", lw=1, label=f"c^t, n = {sizes[0]}")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("alpha_t (geometric mean 1)")
    ax.set_title("oracle noise-scale schedules")
    ax.legend(fontsize=7)
    paths.append(_save(fig, plots_dir / "alpha_schedules.png"))
    return paths
