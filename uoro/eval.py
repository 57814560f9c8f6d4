"""Evaluate a training run from its directory alone: per-seed final losses, the loss curve, eval.json.

    python -m uoro.eval --run runs/uoro/quick/train_uoro_seed1

The final loss of a seed is its mean loss over the last ``train.final_window`` steps (from metrics.jsonl);
comparisons between estimators are reported as spreads over seeds (``paired_spread``), never as one ratio of
means that a rerun could flip.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from common.results import print_results
from common.runner import CheckpointError, load_run_config, read_metrics


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


def evaluate(run_dir: Path | str) -> dict[str, float]:
    """Final losses (mean, spread and per seed) of one training run; writes eval.json and plots/loss.png."""
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
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
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


def paired_spread(ours: dict, reference: dict) -> dict[str, float]:
    """Per-seed differences of final losses (seed s of both runs shares its initialisation and data):
    mean, standard deviation, and the fraction of seeds where ``ours`` is lower."""
    seeds = int(min(ours["seeds"], reference["seeds"]))
    diffs = np.array(
        [ours[f"final_loss_seed{s}"] - reference[f"final_loss_seed{s}"] for s in range(seeds)]
    )
    return {
        "diff_mean": float(diffs.mean()),
        "diff_std": float(diffs.std(ddof=1)) if seeds > 1 else 0.0,
        "lower_fraction": float((diffs < 0).mean()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m uoro.eval", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument(
        "--run",
        required=True,
        help="a training run directory, e.g. runs/uoro/quick/train_uoro_seed1",
    )
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.run)
    except (CheckpointError, ValueError, KeyError, json.JSONDecodeError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print_results(results)
    return results


if __name__ == "__main__":
    main()
