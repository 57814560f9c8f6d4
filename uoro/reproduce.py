"""`make uoro` / `make uoro-full`: the total-variance (headline) experiment, the per-step cost, the per-step NMSE
view (ours) and the online training runs of one scale.

    python -m uoro.reproduce quick [key=value ...]        # what `make uoro` runs -> runs/uoro/quick/
    python -m uoro.reproduce quick reproduce.experiments=[total,cost]

Sub-runs live under runs/uoro/<scale>/ (total_seed<s>, nmse_seed<s>, train_<estimator>_seed<s>); the summary
results.json and the plots go to runs/uoro/<scale>/, every measured key to details.json beside them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import OmegaConf

from common.config import load_config
from common.results import PaperNumber, reproduce_cli, results_dir, write_results
from common.runner import set_threads
from uoro.config import CONFIG_DIR, UoroConfig

PAPER = "uoro"
_PAPER = "arXiv:1902.02405"
_NONE = f"{_PAPER}: no number known to us"
# The paper's claims we can state as numbers; every other key has none.
PAPER_NUMBERS: dict[str, PaperNumber] = {
    "total/h32/noproj_over_proj_unrescaled": PaperNumber(
        1 / 32,
        f"{_PAPER}, 'Projecting in preactivation space': V cut by the preactivation dimension (32)",
    ),
    "total/h16/noproj_over_proj_unrescaled": PaperNumber(1 / 16, f"{_PAPER}, same claim at n = 16"),
    "reinforce/h16/var_ratio_to_uoro_sigma_1e-3": PaperNumber(
        1.0, f"{_PAPER}, 'A link to REINFORCE': identical to UORO with the same Q as sigma -> 0"
    ),
    "reinforce/h16/diff_sq_slope": PaperNumber(2.0, f"{_PAPER}, same section: the gap is O(sigma)"),
    "total/h16/uoro_over_mean4": PaperNumber(
        4.0, "control (ours): averaging 4 independent estimates"
    ),
    "theory/max_rel_error_unrescaled": PaperNumber(
        0.0, "exact closed form (ours, derived from the paper's V(Q))"
    ),
}
for _key in (
    "total/h16/noproj_over_uoro", "total/h32/noproj_over_uoro", "total/h16/rescaling_gain",
    "total/h16/time_scaling_gain", "total/h16/oracle_shaping_gain", "total/h32/oracle_shaping_gain",
    "total/h32/b_quarter_measured_over_predicted", "reinforce/h16/no_baseline_var_ratio_sigma_1e-2_over_1e-1",
    "bias/max_abs_z_rescaled", "bias/max_abs_z_unrescaled", "cost/rtrl_over_uoro_time_h64",
):  # fmt: skip
    PAPER_NUMBERS[_key] = PaperNumber(None, _NONE)
HEADLINE = [
    "total/h32/noproj_over_uoro",
    "total/h32/oracle_shaping_gain",
    "total/h16/rescaling_gain",
    "reinforce/h16/var_ratio_to_uoro_sigma_1e-3",
    "theory/max_rel_error_unrescaled",
]
ISSUE_KEYS = [key for key in PAPER_NUMBERS if not key.startswith("total/h16/noproj_over_proj")]
# the estimator of each training setting, and its overrides
TRAINING = {
    "rtrl": {"train.estimator": "rtrl"},
    "tbptt1": {"train.estimator": "tbptt", "train.truncation": 1},
    "uoro": {"train.estimator": "uoro"},
    "uoro_preact": {"train.estimator": "uoro_preact"},
    "uoro_noproj": {"train.estimator": "uoro_noproj"},
    "uoro_shaped": {"train.estimator": "uoro_shaped"},  # ours, not in the paper
}


def derived(cfg, name: str, changes: dict | None = None):
    """A typed copy of ``cfg`` with ``name`` and dotted-key ``changes``."""
    copy = OmegaConf.merge(cfg, {})
    for key, value in (changes or {}).items():
        OmegaConf.update(copy, key, value, merge=False)
    copy.name = name
    copy.overwrite = not cfg.resume  # a reproduction replaces the previous one of its scale
    return copy


def _nmse_summary(key: str) -> bool:
    """The per-step NMSE view's summary keys (ours): its checks' ratios, not every block and noise level."""
    _, middle, metric = key.split("/")
    if middle.startswith(("reinforce_0", "uoro_no_rho_gaussian")):  # one per noise level
        return False
    plain = (
        "nmse",
        "nmse_reduction",
        "bias_in_stderrs",
        "max_abs_diff_to_bptt",
        "relative_diff_to_bptt",
    )
    return metric in plain or metric.startswith(
        ("nmse_reduction_", "nmse_ratio", "bias_ratio", "paired_diff")
    )


def summary_keys(details: dict[str, float]) -> dict[str, float]:
    """The keys of results.json (and the README table); details.json keeps every measurement."""
    keep = ("/rel_var", "/measured_over_predicted", "_gain", "_over_", "/var_ratio", "diff_sq_slope",
            "theory/", "bias/max", "_final_loss", "/diff_mean", "/diff_std", "/lower_fraction")  # fmt: skip
    drop = ("/predicted_", "/bias_z_", "_seed")

    def wanted(key: str) -> bool:
        if key.startswith("nmse/"):
            return key.count("/") == 2 and _nmse_summary(key)
        return any(s in key for s in keep) and not any(s in key for s in drop)

    return {key: value for key, value in details.items() if wanted(key)}


def main(scale: str, overrides: list[str]) -> dict[str, float]:
    from uoro import total_variance, variance
    from uoro.cost import cost_table
    from uoro.eval import evaluate, loss_curves, paired_spread
    from uoro.plots import training_plot
    from uoro.train import train

    cfg = load_config(UoroConfig, scale, overrides, CONFIG_DIR)
    set_threads(cfg.threads)  # the cost table times steps outside any Run
    start, rc, seed = time.time(), cfg.reproduce, cfg.seed
    out = results_dir(PAPER, scale, cfg.out_dir)
    details: dict[str, float] = {}

    def say(message: str) -> None:
        print(f"[uoro {time.time() - start:6.0f}s] {message}", flush=True)

    def collect(run_dir: Path, plots: list[str]) -> None:
        for name in plots:
            if (run_dir / "plots" / name).is_file():
                (out / name).write_bytes((run_dir / "plots" / name).read_bytes())

    if "total" in rc.experiments:  # the headline: total variance, oracle shaping, REINFORCE
        sub = derived(cfg, f"{scale}/total_seed{seed}")
        details.update(
            {k: v for k, v in total_variance.run(sub, log=say).items() if k != "wall_clock_s"}
        )
        collect(Path(cfg.out_dir) / PAPER / sub.name, ["total_variance.png", "measured_vs_predicted.png",
                                                       "reinforce_sigma.png", "alpha_schedules.png"])  # fmt: skip
    if "cost" in rc.experiments:
        cc = cfg.cost
        details.update(cost_table(cc.hidden_sizes, cc.streams, cc.steps, cc.repeats))
        say("cost done")
    if "nmse" in rc.experiments:  # ours: per-step NMSE and our variants
        sub = derived(cfg, f"{scale}/nmse_seed{seed}")
        nmse = variance.run(sub, log=say)
        details.update({f"nmse/{k}": v for k, v in nmse.items() if k != "wall_clock_s"})
        collect(Path(cfg.out_dir) / PAPER / sub.name, ["nmse_over_time.png", "nmse_reduction.png"])
    if "train" in rc.experiments:
        finals, curves = {}, {}
        for label in rc.training:
            changes = dict(TRAINING[label])
            if label == "rtrl":
                changes.update({"train.seeds": rc.rtrl_seeds, "model.n_hidden": rc.rtrl_n_hidden})
            sub = derived(cfg, f"{scale}/train_{label}_seed{seed}", changes)
            say(
                f"training {label}: {sub.train.estimator}, {sub.train.steps} steps, {sub.train.seeds} seeds"
            )
            run_dir = train(sub)
            finals[label] = evaluate(run_dir)
            curves[label] = loss_curves(run_dir)
            for key in ("final_loss", "final_loss_std", "final_loss_min", "final_loss_max"):
                details[f"train/{label}_{key}"] = finals[label][key]
            details.update({f"train/{label}_final_loss_seed{s}": finals[label][f"final_loss_seed{s}"]
                            for s in range(int(finals[label]["seeds"]))})  # fmt: skip
        for label in finals:
            if label not in ("uoro", "rtrl") and "uoro" in finals:
                for key, value in paired_spread(finals[label], finals["uoro"]).items():
                    details[f"train/{label}_vs_uoro/{key}"] = value
        training_plot(out / "train_copy.png", curves, f"copy task, lag {cfg.task.lag} (ours)")
        for estimator in rc.char_estimators if rc.char_steps > 0 else []:  # ours: ABC characters
            label = "tbptt1" if estimator == "tbptt" else estimator
            changes = {**TRAINING[label], "task.kind": "chars", "train.steps": rc.char_steps,
                       "train.seeds": min(cfg.train.seeds, 2)}  # fmt: skip
            run_dir = train(derived(cfg, f"{scale}/chars_{label}_seed{seed}", changes))
            details[f"train/chars_{label}_final_loss"] = evaluate(run_dir)["final_loss"]
    details["wall_clock_s"] = round(time.time() - start, 1)
    (out / "details.json").write_text(json.dumps(details, indent=2, sort_keys=True) + "\n")
    results = {**summary_keys(details), "wall_clock_s": details["wall_clock_s"]}
    write_results(PAPER, scale, results, cfg.out_dir)
    return results


if __name__ == "__main__":
    raise SystemExit(reproduce_cli(PAPER, main, __doc__))
