"""The paper's headline measurement: the total variance of the summed gradient estimate
``E|sum_t g_t - dL/dtheta|^2 / |dL/dtheta|^2`` (arXiv:1902.02405, "Variance reduction through iterative
rescaling": consecutive estimates share their noise), for every estimator of the paper on one fixed trajectory,
beside the exact prediction of ``uoro.theory`` — and the oracle noise shaping ``Q0 = B^{-1/4}`` with ``B`` known by
backprop ("Toward improved variance reduction"), and REINFORCE with shaped noise ("A link to REINFORCE").

    python -m uoro.total_variance --config quick [key=value ...]   # -> runs/uoro/<name>-total/

The trajectory (ours; the paper's setting is unknown to us): a vanilla tanh RNN ``p = W [h; x; 1]``, Gaussian
inputs, a fixed linear readout, target ``x_{t-lag}``, squared error, float64. R noise streams are the batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from uoro import theory
from uoro.cells import init_params, make_cell
from uoro.model import UORO, NoProjectionUORO, Reinforce

UNRESCALED = {"uoro_unrescaled", "preact_unrescaled", "preact_geometric", "preact_optimal_alpha",
              "preact_b_quarter", "preact_joint", "noproj_unrescaled"}  # fmt: skip


@dataclass
class Trajectory:
    cell: object
    theta: torch.Tensor  # [P]
    readout: torch.Tensor  # [K, n], fixed
    inputs: torch.Tensor  # [T, d]
    targets: torch.Tensor  # [T, K]: x_{t - lag}, zero before
    hidden: torch.Tensor  # [T + 1, n], h_0 = 0
    dloss_dh: torch.Tensor  # [T, n]
    losses: torch.Tensor  # [T]
    slope: torch.Tensor  # [T, n], the diagonal of dh_t/dp_t
    a: torch.Tensor  # [T, n + d + 1], a_t = [h_{t-1}; x_t; 1]
    jac_h: torch.Tensor  # [T, n, n], A_t
    gradient: torch.Tensor  # [P], dL/dtheta of L = sum_t L_t by BPTT

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    def loss(self, h: torch.Tensor, t: int) -> torch.Tensor:
        """``L_t = |V h - y_t|^2 / 2`` per example [N]."""
        return 0.5 * ((h @ self.readout.T - self.targets[t]) ** 2).sum(-1)


def build_trajectory(n_hidden: int, tc, seed: int) -> Trajectory:
    generator = torch.Generator().manual_seed(seed)
    cell = make_cell("tanh", n_hidden, tc.n_in)
    theta, readout, _ = init_params(cell, tc.n_in, tc.spectral_radius, generator)
    inputs = torch.randn(tc.steps, tc.n_in, generator=generator, dtype=torch.float64)
    targets = torch.zeros_like(inputs)
    targets[tc.lag :] = inputs[: -tc.lag]
    h = torch.zeros(1, n_hidden, dtype=torch.float64)
    hidden, slopes, a, jac = [h[0]], [], [], []
    w_h = cell.unflatten(theta[None])["W"][0]
    for t in range(tc.steps):
        x = inputs[t : t + 1]
        a.append(cell.inputs(h, x)[0])
        slopes.append(cell.dh_dp(theta[None], h, x)[0])
        jac.append(slopes[-1][:, None] * w_h)
        h = cell(theta[None], h, x)
        hidden.append(h[0])
    hidden, slope, a, jac = (
        torch.stack(hidden),
        torch.stack(slopes),
        torch.stack(a),
        torch.stack(jac),
    )
    residual = hidden[1:] @ readout.T - targets
    dloss_dh = residual @ readout
    # BPTT: dL/dW = sum_s (D_s delta_s) a_s^T with the adjoint delta_s = dL/dh_s
    future = theory.future_gradients(jac, dloss_dh)
    delta = future[torch.arange(tc.steps), torch.arange(tc.steps)]
    grad = cell.flat(((slope * delta)[:, :, None] * a[:, None, :]).sum(0)[None])[0]
    losses = 0.5 * (residual**2).sum(-1)
    return Trajectory(
        cell, theta, readout, inputs, targets, hidden, dloss_dh, losses, slope, a, jac, grad
    )


def summed_estimates(traj: Trajectory, estimator, streams: int, noise=None) -> torch.Tensor:
    """``sum_t g_t`` [R, P] of ``estimator`` over the trajectory with R noise streams (``noise`` [T, R, n]
    drives it externally)."""
    theta = traj.theta.expand(streams, -1).contiguous()
    estimator.reset(traj.cell, streams)
    total = torch.zeros_like(theta)
    for t in range(traj.steps):
        h_prev = traj.hidden[t].expand(streams, -1)
        x = traj.inputs[t].expand(streams, -1)
        h = traj.hidden[t + 1].expand(streams, -1)
        dh = traj.dloss_dh[t].expand(streams, -1)
        extra = {} if noise is None else {"noise": noise[t]}
        total += estimator.step(traj.cell, theta, h_prev, x, h, dh, **extra)
    return total


def summed_reinforce(traj: Trajectory, reinforce: Reinforce, noise: torch.Tensor) -> torch.Tensor:
    streams = noise.shape[1]
    theta = traj.theta.expand(streams, -1).contiguous()
    reinforce.reset(traj.cell, torch.zeros(streams, traj.cell.n_hidden, dtype=theta.dtype))
    total = torch.zeros_like(theta)
    for t in range(traj.steps):
        x = traj.inputs[t].expand(streams, -1)
        total += reinforce.step(
            traj.cell, theta, x, noise[t], lambda h, t=t: traj.loss(h, t), traj.losses[t]
        )
    return total


def relative_variance(estimates: torch.Tensor, exact: torch.Tensor) -> float:
    """``mean_r |G_r - dL/dtheta|^2 / |dL/dtheta|^2``."""
    return float(((estimates - exact) ** 2).sum(1).mean() / (exact**2).sum())


def bias_z(estimates: torch.Tensor, exact: torch.Tensor, direction: torch.Tensor) -> float:
    """(mean over streams - exact) along ``direction``, in standard errors of that mean."""
    projected = estimates @ direction
    stderr = float(projected.std()) / math.sqrt(len(projected))
    return (float(projected.mean()) - float(exact @ direction)) / stderr


def sigma_tag(sigma: float) -> str:
    return f"{sigma:.0e}".replace("e-0", "e-").replace("e+0", "e")


def hidden_size_experiment(n_hidden: int, tc, seed: int, say) -> tuple[dict, dict]:
    """Every estimator at one hidden size. Returns (results with keys under ``total/h<n>/``, data for plots)."""
    traj = build_trajectory(n_hidden, tc, seed)
    exact, streams = traj.gradient, tc.streams
    future_h = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    future_p = traj.slope[:, None, :] * future_h
    ones = torch.ones(traj.steps, dtype=torch.float64)
    # the oracle quantities ("Toward improved variance reduction"), from backprop
    c = theory.best_geometric(future_p, traj.a, tc.geometric_grid)
    geometric = c ** torch.arange(traj.steps, dtype=torch.float64)
    alpha_opt = theory.optimal_schedule(theory.schedule_weights(future_p, traj.a))
    b_one = theory.preactivation_b(future_p, traj.a, ones)
    q_quarter = theory.sym_power(b_one / torch.trace(b_one) * n_hidden, -0.25)
    alpha_joint, q_joint, joint_history = theory.joint_optimum(future_p, traj.a, tc.joint_rounds)
    predicted_b_gain = float(
        torch.trace(b_one) * n_hidden / torch.trace(theory.sym_power(b_one, 0.5)) ** 2
    )

    # name -> (estimator factory, exact variance or None for the rescaled ones)
    def projected(space, q0=None, alpha=None):
        return theory.projected_variance(future_h, traj.slope, traj.a, space, q0, alpha, kappa=1.0)

    def uoro(space, q0=None, alpha="rescaled", schedule=None):
        return lambda g: UORO(g, space=space, q0=q0, alpha=alpha, schedule=schedule)

    runs = {
        "uoro": (uoro("state"), None),
        "uoro_unrescaled": (uoro("state", alpha="one"), projected("state")),
        "preact": (uoro("preactivation"), None),
        "preact_unrescaled": (uoro("preactivation", alpha="one"), projected("preactivation")),
        "preact_geometric": (
            uoro("preactivation", alpha="schedule", schedule=geometric),
            projected("preactivation", alpha=geometric),
        ),  # fmt: skip
        "preact_optimal_alpha": (
            uoro("preactivation", alpha="schedule", schedule=alpha_opt),
            projected("preactivation", alpha=alpha_opt),
        ),  # fmt: skip
        "preact_b_quarter": (
            uoro("preactivation", q_quarter, "one"),
            projected("preactivation", q_quarter),
        ),
        "preact_b_quarter_rescaled": (uoro("preactivation", q_quarter), None),
        "preact_joint": (
            uoro("preactivation", q_joint, "schedule", alpha_joint),
            projected("preactivation", q_joint, alpha_joint),
        ),  # fmt: skip
        "noproj": (lambda g: NoProjectionUORO(g), None),
        "noproj_unrescaled": (
            lambda g: NoProjectionUORO(g, alpha="one"),
            theory.noprojection_variance(future_h, traj.slope, traj.a),
        ),  # fmt: skip
    }
    prefix = f"total/h{n_hidden}"
    results: dict[str, float] = {}
    rng = torch.Generator().manual_seed(seed * 7919 + 5)
    direction = torch.randn(exact.shape, generator=rng, dtype=torch.float64)
    directions = {"gradient": exact / exact.norm(), "random": direction / direction.norm()}
    exact_sq = float((exact**2).sum())
    measured: dict[str, float] = {}
    for i, (name, (factory, prediction)) in enumerate(runs.items()):
        generator = torch.Generator().manual_seed(seed * 1000 + 101 * n_hidden + i)
        r = streams * tc.mean_of if name == "uoro" else streams
        estimates = summed_estimates(traj, factory(generator), r)
        measured[name] = relative_variance(estimates, exact)
        results[f"{prefix}/{name}/rel_var"] = measured[name]
        for label, d in directions.items():
            results[f"{prefix}/{name}/bias_z_{label}"] = bias_z(estimates, exact, d)
        if prediction is not None:
            for term in ("V", "C", "F", "total"):
                results[f"{prefix}/{name}/predicted_{term}"] = prediction[term] / exact_sq
            results[f"{prefix}/{name}/measured_over_predicted"] = (
                measured[name] * exact_sq / prediction["total"]
            )
        if name == "uoro":
            means = estimates.view(streams, tc.mean_of, -1).mean(1)
            results[f"{prefix}/uoro_mean{tc.mean_of}/rel_var"] = relative_variance(means, exact)
            results[f"{prefix}/uoro_over_mean{tc.mean_of}"] = measured[name] / relative_variance(
                means, exact
            )
        theory_note = (
            ""
            if prediction is None
            else (
                f" (exact {prediction['total'] / exact_sq:.4g}, of which V(Q) {prediction['V'] / exact_sq:.4g})"
            )
        )
        say(f"h={n_hidden} {name}: total relative variance {measured[name]:.4g}{theory_note}")
    results.update({
        f"{prefix}/noproj_over_uoro": measured["noproj"] / measured["uoro"],
        f"{prefix}/noproj_over_proj_unrescaled": measured["noproj_unrescaled"] / measured["preact_unrescaled"],
        f"{prefix}/preact_over_uoro": measured["preact"] / measured["uoro"],
        f"{prefix}/rescaling_gain": measured["uoro_unrescaled"] / measured["uoro"],
        f"{prefix}/time_scaling_gain": measured["preact_unrescaled"] / measured["preact_optimal_alpha"],
        f"{prefix}/geometric_gain": measured["preact_unrescaled"] / measured["preact_geometric"],
        f"{prefix}/oracle_shaping_gain": measured["preact_optimal_alpha"] / measured["preact_joint"],
        f"{prefix}/b_quarter_gain": measured["preact_unrescaled"] / measured["preact_b_quarter"],
        f"{prefix}/b_quarter_predicted_gain": predicted_b_gain,
        f"{prefix}/b_quarter_measured_over_predicted":
            measured["preact_unrescaled"] / measured["preact_b_quarter"] / predicted_b_gain,
        f"{prefix}/b_quarter_rescaled_over_preact": measured["preact_b_quarter_rescaled"] / measured["preact"],
        f"{prefix}/geometric_c": c,
        f"{prefix}/joint_rounds": float(len(joint_history)),
        f"{prefix}/oracle_shaping_predicted_gain": results[f"{prefix}/preact_optimal_alpha/predicted_V"]
            / results[f"{prefix}/preact_joint/predicted_V"],
    })  # fmt: skip
    plot_data = {"measured": measured, "alpha_opt": alpha_opt.numpy(), "alpha_joint": alpha_joint.numpy(),
                 "geometric": geometric.numpy(), "b_eigenvalues": torch.linalg.eigvalsh(b_one).numpy()}  # fmt: skip
    return results, plot_data


def reinforce_experiment(n_hidden: int, tc, seed: int, say) -> tuple[dict, dict]:
    """REINFORCE with noise ``sigma Q0 u`` on the hidden state vs UORO with the same Q0, driven by the same
    Gaussian draws ("A link to REINFORCE"). Q0 is a shaped matrix: ``B_h^{-1/4}`` with the state-space
    counterpart ``B_h = sum_{q,r} |a_q|^2 c_{r,q} c_{r,q}^T`` of B (ours; any invertible Q0 shows the link)."""
    traj = build_trajectory(n_hidden, tc, seed)
    exact, streams = traj.gradient, tc.streams
    future_h = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    ones = torch.ones(traj.steps, dtype=torch.float64)
    b_state = theory.preactivation_b(future_h, traj.a, ones)
    q0 = theory.sym_power(b_state / torch.trace(b_state) * n_hidden, -0.25)
    generator = torch.Generator().manual_seed(seed * 1000 + 999)
    noise = torch.randn(traj.steps, streams, n_hidden, generator=generator, dtype=torch.float64)
    uoro_total = summed_estimates(
        traj, UORO(None, "state", q0, "one", noise="gaussian"), streams, noise
    )
    uoro_var = relative_variance(uoro_total, exact)
    prediction = theory.projected_variance(future_h, traj.slope, traj.a, "state", q0, kappa=3.0)
    exact_sq = float((exact**2).sum())
    prefix = f"reinforce/h{n_hidden}"
    results = {
        f"{prefix}/uoro_rel_var": uoro_var,
        f"{prefix}/uoro/measured_over_predicted": uoro_var * exact_sq / prediction["total"],
    }
    curves: dict[str, list] = {"sigma": [], "diff_sq": [], "var": [], "no_baseline_var": []}
    for sigma in sorted(tc.reinforce_sigmas):
        tag = sigma_tag(sigma)
        with_baseline = summed_reinforce(traj, Reinforce(sigma, q0, baseline=True), noise)
        without = summed_reinforce(traj, Reinforce(sigma, q0, baseline=False), noise)
        var = relative_variance(with_baseline, exact)
        diff_sq = float(((with_baseline - uoro_total) ** 2).sum(1).mean()) / exact_sq
        no_baseline = relative_variance(without, exact)
        results[f"{prefix}/var_ratio_to_uoro_sigma_{tag}"] = var / uoro_var
        results[f"{prefix}/diff_sq_sigma_{tag}"] = diff_sq
        results[f"{prefix}/no_baseline_rel_var_sigma_{tag}"] = no_baseline
        for key, value in zip(curves, (sigma, diff_sq, var, no_baseline)):
            curves[key].append(value)
        say(f"reinforce sigma={sigma:g}: var ratio {var / uoro_var:.4g}, diff^2 {diff_sq:.3g}")
    sig, diff = np.array(curves["sigma"]), np.array(curves["diff_sq"])
    results[f"{prefix}/diff_sq_slope"] = float(np.polyfit(np.log(sig), np.log(diff), 1)[0])
    by_sigma = dict(zip(curves["sigma"], curves["no_baseline_var"]))
    if 0.01 in by_sigma and 0.1 in by_sigma:
        results[f"{prefix}/no_baseline_var_ratio_sigma_1e-2_over_1e-1"] = (
            by_sigma[0.01] / by_sigma[0.1]
        )
    curves["uoro_var"] = uoro_var
    return results, curves


def total_variance_experiment(cfg, log=None) -> tuple[dict, dict]:
    """The headline experiment at every hidden size, REINFORCE, and the summary keys."""
    tc, say = cfg.total, log or (lambda message: None)
    results, plot_data = {}, {}
    for n_hidden in tc.hidden_sizes:
        found, plot_data[n_hidden] = hidden_size_experiment(n_hidden, tc, cfg.seed, say)
        results.update(found)
    found, plot_data["reinforce"] = reinforce_experiment(tc.reinforce_hidden, tc, cfg.seed, say)
    results.update(found)
    errors = [
        abs(v - 1)
        for k, v in results.items()
        if k.endswith("measured_over_predicted") and "b_quarter" not in k
    ]
    results["theory/max_rel_error_unrescaled"] = max(errors)
    z = {k: abs(v) for k, v in results.items() if k.startswith("total/") and "/bias_z_" in k}
    results["bias/max_abs_z_unrescaled"] = max(
        v for k, v in z.items() if k.split("/")[2] in UNRESCALED
    )
    results["bias/max_abs_z_rescaled"] = max(
        v for k, v in z.items() if k.split("/")[2] not in UNRESCALED
    )
    return results, plot_data


def run(cfg, log=print) -> dict[str, float]:
    """The experiment in its own run directory ``<out_dir>/uoro/<name>``: results.json and plots."""
    from common.runner import Run
    from uoro.plots import total_variance_plots

    start = time.time()
    with Run(cfg, paper="uoro") as run_dir:
        log(f"run directory: {run_dir.dir}")
        results, plot_data = total_variance_experiment(cfg, log=log)
        results["wall_clock_s"] = round(time.time() - start, 1)
        run_dir.write_json("results.json", results)
        total_variance_plots(run_dir.plots_dir, results, plot_data, cfg)
    return results


def main(argv=None) -> dict[str, float]:
    from common.config import parse_args
    from common.results import print_results
    from uoro.config import CONFIG_DIR, UoroConfig

    cfg = parse_args(UoroConfig, CONFIG_DIR, __doc__, argv, prog="python -m uoro.total_variance")
    cfg.name = f"{cfg.name}-total"
    results = run(cfg)
    print_results(results)
    return results


if __name__ == "__main__":
    main()
