"""The matplotlib helpers two or more papers share. Each writes a PNG (no display needed) and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def learning_curves(
    path: Path | str,
    curves: Mapping[str, np.ndarray],
    xlabel: str = "step",
    ylabel: str = "",
    title: str = "",
    x: np.ndarray | None = None,
    hline: Mapping[str, float] | None = None,
    logy: bool = False,
) -> Path:
    """One line per label: the mean over seeds with a band of +-1 standard error.

    ``curves[label]`` is ``[seeds, steps]`` (or ``[steps]`` for one seed). ``hline`` draws reference levels,
    e.g. ``{"paper": -1.0}``.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        steps = np.arange(values.shape[1]) if x is None else np.asarray(x)
        mean = np.nanmean(values, axis=0)
        ax.plot(steps, mean, label=f"{label} (n={values.shape[0]})")
        if values.shape[0] > 1:
            stderr = np.nanstd(values, axis=0, ddof=1) / np.sqrt(values.shape[0])
            ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.25)
    for name, level in (hline or {}).items():
        ax.axhline(level, linestyle="--", color="gray", linewidth=1)
        ax.annotate(
            name, (0.01, level), xycoords=("axes fraction", "data"), fontsize=8, color="gray"
        )
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bar_chart(
    path: Path | str,
    labels: Sequence[str],
    means: Sequence[float],
    errors: Sequence[float] | None = None,
    ylabel: str = "",
    title: str = "",
    reference: Mapping[str, float] | None = None,
) -> Path:
    """Bars with error bars (e.g. 95% CI over seeds); ``reference`` adds labelled horizontal lines."""
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(labels) + 2), 4))
    positions = np.arange(len(labels))
    ax.bar(positions, means, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    for name, level in (reference or {}).items():
        ax.axhline(level, linestyle="--", color="gray", linewidth=1)
        ax.annotate(
            name, (0.01, level), xycoords=("axes fraction", "data"), fontsize=8, color="gray"
        )
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def heatmap(
    path: Path | str,
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str = "",
    fmt: str = ".2f",
    cmap: str = "viridis",
    xlabel: str = "",
    ylabel: str = "",
) -> Path:
    """A matrix with each cell's value written in it (e.g. a cross-play league: row player's reward)."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"heatmap matrix has shape {matrix.shape}, expected ({len(row_labels)}, {len(col_labels)})"
        )
    fig, ax = plt.subplots(figsize=(1.0 * len(col_labels) + 2.5, 0.8 * len(row_labels) + 1.8))
    image = ax.imshow(matrix, cmap=cmap)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    finite = matrix[np.isfinite(matrix)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            color = "white" if matrix[i, j] < middle else "black"
            ax.text(
                j, i, format(matrix[i, j], fmt), ha="center", va="center", color=color, fontsize=8
            )
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, path)
