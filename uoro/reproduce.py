"""`make uoro` / `make uoro-full`: the variance experiment and the online training runs of one scale.

    python -m common.reproduce uoro quick [key=value ...]

Writes the variance run to ``runs/uoro/<scale>-variance/``, one training run per estimator to
``runs/uoro/<scale>-train-<label>/`` and returns the flat results dict that common.reproduce saves as
``runs/uoro/<scale>/results.json``. Only the paper's abstract was available to us, so no results key has a
paper number (PAPER_NUMBERS are all None); the README sets the abstract's qualitative claims beside ours.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common.config import load_config
from uoro.config import CONFIG_DIR, UoroConfig

HEADLINE = [
    "uoro/nmse",
    "rho/nmse_ratio_no_rho_to_uoro",
    "uoro_reduced/nmse_reduction_radius_0.9",
    "train/uoro_final_loss",
]

ISSUE_KEYS = [
    "rtrl/max_abs_diff_to_bptt",
    "uoro/bias_in_stderrs",
    "uoro/nmse",
    "uoro_no_rho/nmse",
    "uoro_reduced/nmse_reduction_radius_0.9",
    "uoro_reduced/nmse_reduction_radius_0.5",
    "rank4/nmse_reduction",
    "reinforce_small_noise/nmse_ratio_to_gaussian_uoro_no_rho",
    "reinforce/bias_ratio_large_to_small_noise",
    "uoro/nmse_ratio_radius_1.1_to_0.5",
    "train/rtrl_final_loss",
    "train/tbptt1_final_loss",
    "train/uoro_final_loss",
    "train/uoro_reduced_final_loss",
    "wall_clock_s",
]
PAPER_NUMBERS: dict[str, float | None] = {key: None for key in ISSUE_KEYS}


def run_variance(scale: str, overrides: list[str]) -> dict[str, float]:
    from uoro import variance

    cfg = load_config(UoroConfig, scale, overrides, CONFIG_DIR)
    cfg.name = f"{scale}-variance"
    return variance.run(cfg, log=lambda message: print(f"[variance] {message}", flush=True))


def training_runs(scale: str, overrides: list[str]) -> list[tuple[str, list[str]]]:
    """(label, overrides) of every training run of this scale."""
    cfg = load_config(UoroConfig, scale, overrides, CONFIG_DIR)
    rc = cfg.reproduce
    runs = [
        (
            "rtrl",
            [
                "train.estimator=rtrl",
                f"train.seeds={rc.rtrl_seeds}",
                f"model.n_hidden={rc.rtrl_n_hidden}",
            ],
        ),
        ("tbptt1", ["train.estimator=tbptt", "train.truncation=1"]),
        ("uoro", ["train.estimator=uoro"]),
        ("uoro_reduced", [f"train.estimator={rc.reduced_estimator}"]),
    ]
    if rc.char_steps > 0:
        for estimator in rc.char_estimators:
            label = "tbptt1" if estimator == "tbptt" else estimator
            runs.append(
                (
                    f"chars_{label}",
                    [
                        f"train.estimator={estimator}",
                        "train.truncation=1",
                        "task.kind=chars",
                        f"train.steps={rc.char_steps}",
                        f"train.seeds={min(cfg.train.seeds, 2)}",
                    ],
                )
            )
    return [(label, [*overrides, *extra, f"name={scale}-train-{label}"]) for label, extra in runs]


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    from uoro.eval import loss_curves
    from uoro.plots import training_plot
    from uoro.train import train

    start = time.time()
    results = {
        key: value for key, value in run_variance(scale, overrides).items() if key != "wall_clock_s"
    }
    curves: dict[str, dict] = {"copy": {}, "chars": {}}
    for label, run_overrides in training_runs(scale, overrides):
        cfg = load_config(UoroConfig, scale, run_overrides, CONFIG_DIR)
        print(
            f"[train] {label}: {cfg.train.estimator}, {cfg.task.kind}, {cfg.train.steps} steps",
            flush=True,
        )
        train_results = train(cfg)
        for key in ("final_loss", "final_loss_std", "final_loss_max"):
            results[f"train/{label}_{key}"] = train_results[key]
        run_dir = Path(cfg.out_dir) / "uoro" / cfg.name
        curves["chars" if label.startswith("chars_") else "copy"][label] = loss_curves(run_dir)
    results["train/uoro_reduced_to_uoro_final_loss"] = (
        results["train/uoro_reduced_final_loss"] / results["train/uoro_final_loss"]
    )
    results["train/uoro_to_tbptt1_final_loss"] = (
        results["train/uoro_final_loss"] / results["train/tbptt1_final_loss"]
    )
    cfg = load_config(UoroConfig, scale, overrides, CONFIG_DIR)
    plots = Path(cfg.out_dir) / "uoro" / scale / "plots"
    training_plot(plots / "train_copy.png", curves["copy"], f"copy task, lag {cfg.task.lag} (ours)")
    if curves["chars"]:
        training_plot(plots / "train_chars.png", curves["chars"], "ABC characters (ours)")
    results["wall_clock_s"] = round(time.time() - start, 1)
    missing = [key for key in ISSUE_KEYS if key not in results]
    if missing:
        raise RuntimeError(f"results lack the keys issue 7 names: {', '.join(missing)}")
    (plots.parent / "curves.json").write_text(
        json.dumps(
            {
                task: {k: [v[0].tolist(), v[1].tolist()] for k, v in c.items()}
                for task, c in curves.items()
            }
        )
    )
    return results
