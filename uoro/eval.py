"""Evaluate a training run from its directory alone: final losses, the loss curve, results.json.

    python -m uoro.eval --run runs/uoro/<name>

The final loss of a seed is its mean loss over the last ``train.final_window`` steps (from metrics.jsonl);
the run's final loss is the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from common.runner import load_run_config, read_metrics


def loss_curves(run_dir: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Steps [L] and per-seed window losses [seeds, L] from metrics.jsonl."""
    cfg = load_run_config(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir} has no metrics.jsonl records; did the run log anything?")
    steps = np.array([r["step"] for r in records])
    losses = np.array(
        [[r[f"losses/loss_seed{s}"] for r in records] for s in range(cfg.train.seeds)]
    )
    return steps, losses


def evaluate_run(run_dir: Path | str) -> dict[str, float]:
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    steps, losses = loss_curves(run_dir)
    last = (
        steps > steps[-1] - cfg.train.final_window
    )  # the windows covering the last final_window steps
    final = losses[:, last].mean(1)  # [seeds]
    results = {
        "final_loss": float(final.mean()),
        "final_loss_std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
        "final_loss_max": float(final.max()),
        "final_loss_min": float(final.min()),
        "seeds": float(len(final)),
        "steps": float(steps[-1] + 1),  # records are labelled by their last step index
        "chance_loss": float(math.log(cfg.task.n_symbols))
        if cfg.task.kind == "copy"
        else float("nan"),
    }
    results.update({f"final_loss_seed{s}": float(v) for s, v in enumerate(final)})
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    from common.plots import learning_curves

    learning_curves(
        run_dir / "plots" / "loss.png",
        {cfg.train.estimator: losses},
        xlabel="online step",
        ylabel="loss (nats)",
        title=f"{cfg.task.kind} task, {cfg.train.estimator} (ours)",
        x=steps,
    )
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m uoro.eval", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="a training run directory, e.g. runs/uoro/quick-uoro"
    )
    args = parser.parse_args(argv)
    if not (Path(args.run) / "config.yaml").is_file():
        parser.error(f"{args.run} is not a run directory (no config.yaml)")
    results = evaluate_run(args.run)
    for key in sorted(results):
        print(f"{key}: {results[key]:.4g}")
    return results


if __name__ == "__main__":
    main()
