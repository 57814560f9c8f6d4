"""The per-step NMSE experiment (ours; secondary to the total variance of ``uoro.total_variance``): every
estimator on one fixed trajectory, many noise streams.

    python -m uoro.variance --config quick [key=value ...]   # -> runs/uoro/<name>-variance/

At fixed parameters and a fixed input sequence, each stochastic estimator is run with R independent noise
streams (the streams are the batch dimension). Against the exact RTRL gradient ``g*_t`` we accumulate, per
step t and per parameter block,

    NMSE_t = mean_r |g_t^(r) - g*_t|^2 / |g*_t|^2           bias_t = |mean_r g_t^(r) - g*_t| / |g*_t|

and pool them over the late window ``t >= window_start * T`` (ratios of sums over the window, which keeps
steps with a tiny ``|g*_t|`` from dominating). An unbiased estimator's bias is at the noise floor
``sqrt(NMSE / R)``, so bias is judged in those standard errors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import OmegaConf

from uoro.cells import init_params, loss_and_grads, make_cell, readout_loss
from uoro.config import dtype_of
from uoro.estimators import make_estimator
from uoro.model import RTRL, TBPTT, UORO, Reinforce
from uoro.tasks import make_task
from uoro.variants import OUR_VARIANTS, UOROVariants

# ------------------------------------------------------------------------------------------- the problem


@dataclass
class Problem:
    """One fixed trajectory: cell, parameters, inputs [T, d], targets [T], and its exact quantities."""

    cell: object
    theta: torch.Tensor  # [P]
    readout_w: torch.Tensor  # [K, n]
    readout_b: torch.Tensor  # [K]
    inputs: torch.Tensor  # [T, d]
    targets: torch.Tensor  # [T]
    hidden: torch.Tensor | None = None  # [T + 1, n], h_0 = 0
    dloss_dh: torch.Tensor | None = None  # [T, n]
    losses: torch.Tensor | None = None  # [T]
    exact: torch.Tensor | None = None  # [T, P], RTRL's g*_t

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    def expand(self, n_streams: int):
        """Parameters and readout repeated for ``n_streams`` examples."""
        return (
            self.theta.expand(n_streams, -1).contiguous(),
            self.readout_w.expand(n_streams, -1, -1),
            self.readout_b.expand(n_streams, -1),
        )


def build_problem(cfg, n_hidden: int, spectral_radius: float, steps: int, seed: int) -> Problem:
    """Parameters at initialisation (given radius) and a copy-task sequence, seeded independently."""
    dtype = dtype_of(cfg.model.dtype)
    task = make_task(cfg.task, n_streams=1, seed=seed + 1, dtype=dtype)
    cell = make_cell(cfg.model.cell, n_hidden, task.n_in)
    generator = torch.Generator().manual_seed(seed)
    theta, readout_w, readout_b = init_params(cell, task.n_out, spectral_radius, generator, dtype)
    inputs, targets = zip(*(task.next() for _ in range(steps)))
    problem = Problem(cell, theta, readout_w, readout_b, torch.cat(inputs), torch.cat(targets))
    return solve_exact(problem)


def solve_exact(problem: Problem) -> Problem:
    """Forward trajectory, dL_t/dh_t and the exact RTRL gradients g*_t (one stream)."""
    cell = problem.cell
    theta, readout_w, readout_b = problem.expand(1)
    h = torch.zeros(1, cell.n_hidden, dtype=theta.dtype)
    rtrl = RTRL()
    rtrl.reset(cell, 1, dtype=theta.dtype)
    hidden, grads, exact, losses = [h[0]], [], [], []
    for t in range(problem.steps):
        x = problem.inputs[t : t + 1]
        h_next = cell(theta, h, x)
        loss, dh, _, _ = loss_and_grads(h_next, readout_w, readout_b, problem.targets[t : t + 1])
        exact.append(rtrl.step(cell, theta, h, x, h_next, dh)[0])
        hidden.append(h_next[0])
        grads.append(dh[0])
        losses.append(loss[0])
        h = h_next
    problem.hidden = torch.stack(hidden)
    problem.dloss_dh = torch.stack(grads)
    problem.exact = torch.stack(exact)
    problem.losses = torch.stack(losses)
    return problem


def train_theta_rtrl(problem: Problem, task, steps: int, lr: float) -> Problem:
    """Parameters after ``steps`` online RTRL+Adam steps on fresh data from ``task`` (ours: "fix theta
    ... after 500 RTRL steps"); returns a new Problem on the same evaluation sequence."""
    cell = problem.cell
    theta = problem.theta[None].clone().requires_grad_(True)
    readout_w = problem.readout_w[None].clone().requires_grad_(True)
    readout_b = problem.readout_b[None].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta, readout_w, readout_b], lr=lr)
    rtrl = RTRL()
    rtrl.reset(cell, 1, dtype=theta.dtype)
    h = torch.zeros(1, cell.n_hidden, dtype=theta.dtype)
    for _ in range(steps):
        x, target = task.next()
        h_next = cell(theta.detach(), h, x)
        _, dh, dvw, dvb = loss_and_grads(h_next, readout_w, readout_b, target)
        g = rtrl.step(cell, theta.detach(), h, x, h_next, dh)
        theta.grad, readout_w.grad, readout_b.grad = g, dvw, dvb
        optimizer.step()
        h = h_next
    trained = Problem(
        cell,
        theta.detach()[0],
        readout_w.detach()[0],
        readout_b.detach()[0],
        problem.inputs,
        problem.targets,
    )
    return solve_exact(trained)


# ------------------------------------------------------------------------------------------ statistics


class ErrorStats:
    """Per-step, per-block sums that give NMSE, bias and cosine for R estimates of g*_t."""

    def __init__(self, steps: int, block_slices: dict[str, slice], n_streams: int):
        self.blocks = block_slices
        self.n_streams = n_streams
        k = len(block_slices)
        self.sum_sq_err = np.zeros((steps, k))  # sum_r |g^(r) - g*|^2
        self.mean_err_sq = np.zeros((steps, k))  # |mean_r g^(r) - g*|^2
        self.ref_sq = np.zeros((steps, k))  # |g*|^2
        self.cosine = np.zeros(steps)  # mean_r cos(g^(r), g*), all recurrent parameters
        # the same for the accumulated gradient G_t = sum_{s<=t} g_s (the gradient of the summed loss)
        self.cum_sum_sq_err = np.zeros((steps, k))
        self.cum_mean_err_sq = np.zeros((steps, k))
        self.cum_ref_sq = np.zeros((steps, k))
        self.cumulative_estimates = None  # [R, P] sum_{s<=t} of the estimates so far
        self._cum_exact = None

    def add(
        self,
        t: int,
        estimates: torch.Tensor,
        exact: torch.Tensor,
        scale: torch.Tensor | None = None,
    ):
        """``estimates`` [R, P] of ``exact`` [P], the step-t gradient g_t; errors are normalised by
        ``|scale|`` (default ``exact``; a bias measurement passes a zero target and ``scale = g*_t``)."""
        scale = exact if scale is None else scale
        if self.cumulative_estimates is None:
            self.cumulative_estimates, self._cum_exact = estimates.clone(), exact.clone()
            self._cum_scale = scale.clone()
        else:
            self.cumulative_estimates += estimates
            self._cum_exact += exact
            self._cum_scale += scale
        self._add(t, estimates, exact, scale, self.sum_sq_err, self.mean_err_sq, self.ref_sq)
        self._add(
            t,
            self.cumulative_estimates,
            self._cum_exact,
            self._cum_scale,
            self.cum_sum_sq_err,
            self.cum_mean_err_sq,
            self.cum_ref_sq,
        )

    def _add(self, t, estimates, exact, scale, sum_sq_err, mean_err_sq, ref_sq):
        err = estimates - exact
        mean_err = err.mean(0)
        for i, sl in enumerate(self.blocks.values()):
            sum_sq_err[t, i] = float((err[:, sl] ** 2).sum())
            mean_err_sq[t, i] = float((mean_err[sl] ** 2).sum())
            ref_sq[t, i] = float((scale[sl] ** 2).sum())
        norms = estimates.norm(dim=1) * scale.norm()
        self.cosine[t] = float(((estimates @ scale) / norms.clamp_min(1e-300)).mean())

    def summary(self, window_start: int) -> dict[str, float]:
        w = slice(window_start, None)
        r = self.n_streams
        sq, mean_sq, ref = self.sum_sq_err[w], self.mean_err_sq[w], self.ref_sq[w]
        nmse = sq.sum() / (r * ref.sum())
        bias = math.sqrt(mean_sq.sum() / ref.sum())
        # spread about the mean (not about g*), so a biased estimator is not credited with a large error bar
        variance = max(sq.sum() - r * mean_sq.sum(), 0.0) / max(r - 1, 1) / ref.sum()
        stderr = math.sqrt(variance / r)
        out = {
            "nmse": nmse,
            "nmse_at_T": self.sum_sq_err[-1].sum() / (r * self.ref_sq[-1].sum()),
            "bias": bias,
            "bias_in_stderrs": bias / stderr if stderr > 0 else math.inf,
            "cosine": float(self.cosine[w].mean()),
        }
        for i, name in enumerate(self.blocks):
            out[f"nmse_{name}"] = sq[:, i].sum() / (r * max(ref[:, i].sum(), 1e-300))
        return out

    def curve(self) -> np.ndarray:
        """NMSE_t over every step [T] (all recurrent parameters)."""
        return self.sum_sq_err.sum(1) / (self.n_streams * np.maximum(self.ref_sq.sum(1), 1e-300))


# ------------------------------------------------------------------------------------------ the runs


def run_estimator(
    problem: Problem, estimator, n_streams: int, extra_groups: tuple[int, ...] = ()
) -> dict[int, ErrorStats]:
    """Run ``estimator`` with ``n_streams`` noise streams on the problem's trajectory.

    Returns stats for single streams (key 1) and for means of ``g`` consecutive streams (rank-g averages,
    keys in ``extra_groups``)."""
    cell = problem.cell
    theta, _, _ = problem.expand(n_streams)
    estimator.reset(cell, n_streams, dtype=theta.dtype)
    slices = cell.block_slices()
    stats = {1: ErrorStats(problem.steps, slices, n_streams)}
    for g in extra_groups:
        if n_streams % g:
            raise ValueError(f"n_streams={n_streams} is not a multiple of the group size {g}")
        stats[g] = ErrorStats(problem.steps, slices, n_streams // g)
    for t in range(problem.steps):
        h_prev = problem.hidden[t].expand(n_streams, -1)
        h = problem.hidden[t + 1].expand(n_streams, -1)
        x = problem.inputs[t].expand(n_streams, -1)
        dh = problem.dloss_dh[t].expand(n_streams, -1)
        estimates = estimator.step(cell, theta, h_prev, x, h, dh)
        stats[1].add(t, estimates, problem.exact[t])
        for g in extra_groups:
            stats[g].add(t, estimates.view(n_streams // g, g, -1).mean(1), problem.exact[t])
    return stats


def run_reinforce(
    problem: Problem, sigmas: list[float], n_streams: int, seed: int, uoro_options
) -> dict:
    """REINFORCE at each sigma and un-scaled Gaussian UORO, all driven by the *same* Gaussian noise.

    Keys: ``reinforce_<sigma>`` (error stats against g*, noise eps), ``reinforce_<sigma>_minus_uoro``
    (the paired difference REINFORCE(eps) - UORO(eps) against zero: its mean is REINFORCE's bias, but its
    O(sigma) zero-mean part dominates at R streams), and ``reinforce_<sigma>_antithetic_bias``
    (``(REINFORCE(eps) + REINFORCE(-eps)) / 2 - UORO(eps)``: the O(sigma) part is odd in eps and cancels,
    UORO(-eps) = UORO(eps), so what remains is the O(sigma^2) bias from the nonlinearity plus O(sigma^2)
    noise). All normalised by |g*_t|."""
    cell = problem.cell
    theta, readout_w, readout_b = problem.expand(n_streams)
    theta2, readout_w2, readout_b2 = problem.expand(2 * n_streams)  # streams eps, then -eps
    slices = cell.block_slices()
    generator = torch.Generator().manual_seed(seed)
    uoro = UORO(generator, alpha="one", noise="gaussian", eps=uoro_options.eps)
    uoro.reset(cell, n_streams, dtype=theta.dtype)
    reinforces = [Reinforce(s) for s in sigmas]
    h0 = torch.zeros(2 * n_streams, cell.n_hidden, dtype=theta.dtype)
    for r in reinforces:
        r.reset(cell, h0)
    stats = {"uoro_no_rho_gaussian": ErrorStats(problem.steps, slices, n_streams)}
    for r in reinforces:
        for suffix in ("", "_minus_uoro", "_antithetic_bias"):
            stats[r.name + suffix] = ErrorStats(problem.steps, slices, n_streams)
    zero = torch.zeros_like(problem.exact[0])
    for t in range(problem.steps):
        eps = torch.randn(n_streams, cell.n_hidden, generator=generator, dtype=theta.dtype)
        h_prev = problem.hidden[t].expand(n_streams, -1)
        h = problem.hidden[t + 1].expand(n_streams, -1)
        x = problem.inputs[t].expand(n_streams, -1)
        dh = problem.dloss_dh[t].expand(n_streams, -1)
        uoro_estimate = uoro.step(cell, theta, h_prev, x, h, dh, noise=eps)
        stats["uoro_no_rho_gaussian"].add(t, uoro_estimate, problem.exact[t])
        x2 = problem.inputs[t].expand(2 * n_streams, -1)
        targets2 = problem.targets[t].expand(2 * n_streams)
        clean_loss2 = problem.losses[t].expand(2 * n_streams)
        for r in reinforces:
            both = r.step(
                cell,
                theta2,
                x2,
                torch.cat([eps, -eps]),
                lambda hh, y=targets2: readout_loss(hh, readout_w2, readout_b2, y),
                clean_loss2,
            )
            estimate, mirrored = both[:n_streams], both[n_streams:]
            stats[r.name].add(t, estimate, problem.exact[t])
            stats[r.name + "_minus_uoro"].add(t, estimate - uoro_estimate, zero, problem.exact[t])
            antithetic = 0.5 * (estimate + mirrored) - uoro_estimate
            stats[r.name + "_antithetic_bias"].add(t, antithetic, zero, problem.exact[t])
    return stats


def make_uoro(kind: str, generator: torch.Generator, options, forget: bool = False):
    """A UORO estimator for the variance experiment (all streams share the trajectory); ``forget`` is our
    rank-one TBPTT(1) control."""
    options = {**OmegaConf.to_container(options), "metric_group": 1, "shared_trajectory": True}
    if forget:
        return UOROVariants(generator, forget=True, **{**options, **OUR_VARIANTS.get(kind, {})})
    return make_estimator(kind, generator, **options)


SAME_COST_VARIANTS = ("uoro_blockwise", "uoro_grad_rho", "uoro_shaped")


def variance_experiment(cfg, log=None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """All measurements of the quick/full variance experiment. Returns (flat results, curves for plots)."""
    vc = cfg.variance
    say = log or (lambda message: None)
    results: dict[str, float] = {}
    curves: dict[str, np.ndarray] = {}
    window = int(vc.window_start * vc.steps)
    n = cfg.model.n_hidden
    seed = cfg.seed
    stream_seed = seed * 1000 + 17

    def record(prefix: str, stats: ErrorStats):
        for key, value in stats.summary(window).items():
            results[f"{prefix}/{key}"] = float(value)
        curves[prefix] = stats.curve()

    def generator():
        nonlocal stream_seed
        stream_seed += 1
        return torch.Generator().manual_seed(stream_seed)

    # ---- RTRL against full BPTT of the summed loss (check 1) and the truncated gradients' bias
    problem = build_problem(cfg, n, vc.main_radius, vc.steps, seed)
    results["rtrl/max_abs_diff_to_bptt"] = rtrl_vs_bptt(problem)
    exact_total = problem.exact.sum(0)
    for k in vc.truncations:
        stats = run_estimator(problem, TBPTT(k), 1)[1]
        total = stats.cumulative_estimates[0]  # sum_t g_t: the truncated gradient of sum_t L_t
        results[f"tbptt{k}/relative_diff_to_bptt"] = float(
            (total - exact_total).norm() / exact_total.norm()
        )
        results[f"tbptt{k}/bias"] = stats.summary(window)["bias"]
    say("rtrl and tbptt done")

    # ---- the spectral-radius sweep: standard UORO (+ rank-k), un-scaled UORO, same-cost variants
    for radius in vc.radii:
        prob = (
            problem if radius == vc.main_radius else build_problem(cfg, n, radius, vc.steps, seed)
        )
        tag = f"radius_{radius:g}"
        stats = run_estimator(
            prob,
            make_uoro("uoro", generator(), cfg.uoro),
            vc.streams * vc.rank,
            extra_groups=(vc.rank,),
        )
        record(f"uoro/{tag}", stats[1])
        record(f"rank{vc.rank}/{tag}", stats[vc.rank])
        for kind in ("uoro_no_rho", *SAME_COST_VARIANTS):
            record(
                f"{kind}/{tag}",
                run_estimator(prob, make_uoro(kind, generator(), cfg.uoro), vc.streams)[1],
            )
        say(f"radius {radius:g} done")

    # ---- unbiasedness control: a rank-one estimate of TBPTT(1)'s gradient, with many streams
    forgetful = make_uoro("uoro", generator(), cfg.uoro, forget=True)
    record("tbptt1_rank_one", run_estimator(problem, forgetful, vc.control_streams)[1])

    # ---- REINFORCE with hidden noise vs Gaussian un-scaled UORO on the same noise
    for name, stats in run_reinforce(
        problem, list(vc.reinforce_sigmas), vc.streams, stream_seed + 500, cfg.uoro
    ).items():
        record(name, stats)
    say("reinforce done")

    # ---- hidden-size sweep (standard UORO and the shaped variant)
    for size in vc.hidden_sizes:
        prob = problem if size == n else build_problem(cfg, size, vc.main_radius, vc.steps, seed)
        for kind in ("uoro", "uoro_shaped"):
            record(
                f"{kind}/hidden_{size}",
                run_estimator(prob, make_uoro(kind, generator(), cfg.uoro), vc.streams)[1],
            )
    say("hidden sizes done")

    # ---- after some RTRL training (longer memory in the learnt weights)
    if vc.trained_steps > 0:
        task = make_task(cfg.task, n_streams=1, seed=seed + 2, dtype=problem.theta.dtype)
        trained = train_theta_rtrl(problem, task, vc.trained_steps, vc.trained_lr)
        results["trained/loss_mean"] = float(trained.losses.mean())
        for kind in ("uoro", "uoro_no_rho", "uoro_shaped"):
            record(
                f"{kind}/trained",
                run_estimator(trained, make_uoro(kind, generator(), cfg.uoro), vc.streams)[1],
            )
        say("trained parameters done")

    results.update(headline_keys(results, vc))
    return results, curves


def headline_keys(results: dict[str, float], vc) -> dict[str, float]:
    """The summary keys of the per-step NMSE view (ours), derived from the detailed measurements."""
    main = f"radius_{vc.main_radius:g}"
    out = {
        "uoro/nmse": results[f"uoro/{main}/nmse"],
        "uoro/bias_in_stderrs": results[f"uoro/{main}/bias_in_stderrs"],
        "uoro_no_rho/nmse": results[f"uoro_no_rho/{main}/nmse"],
        "rho/nmse_ratio_no_rho_to_uoro": results[f"uoro_no_rho/{main}/nmse"]
        / results[f"uoro/{main}/nmse"],
        f"rank{vc.rank}/nmse_reduction": results[f"uoro/{main}/nmse"]
        / results[f"rank{vc.rank}/{main}/nmse"],
        "tbptt1_rank_one/bias_in_stderrs": results["tbptt1_rank_one/bias_in_stderrs"],
    }
    for radius in vc.radii:
        tag = f"radius_{radius:g}"
        for kind in SAME_COST_VARIANTS:
            out[f"{kind}/nmse_reduction_{tag}"] = (
                results[f"uoro/{tag}/nmse"] / results[f"{kind}/{tag}/nmse"]
            )
        # uoro_reduced is the noise-shaped variant, fixed in advance (not the best of several on this data)
        out[f"uoro_reduced/nmse_reduction_{tag}"] = out[f"uoro_shaped/nmse_reduction_{tag}"]
    if 0.5 in vc.radii and 1.1 in vc.radii:
        out["uoro/nmse_ratio_radius_1.1_to_0.5"] = (
            results["uoro/radius_1.1/nmse"] / results["uoro/radius_0.5/nmse"]
        )
    smallest, largest = min(vc.reinforce_sigmas), max(vc.reinforce_sigmas)
    rf = lambda s: f"reinforce_{s:g}"  # noqa: E731
    out["reinforce_small_noise/nmse_ratio_to_gaussian_uoro_no_rho"] = (
        results[f"{rf(smallest)}/nmse"] / results["uoro_no_rho_gaussian/nmse"]
    )
    out["reinforce/bias_ratio_large_to_small_noise"] = (
        results[f"{rf(largest)}_antithetic_bias/bias"]
        / results[f"{rf(smallest)}_antithetic_bias/bias"]
    )
    out["reinforce/paired_diff_ratio_large_to_small_noise"] = (
        results[f"{rf(largest)}_minus_uoro/bias"] / results[f"{rf(smallest)}_minus_uoro/bias"]
    )
    return out


def rtrl_vs_bptt(problem: Problem) -> float:
    """Max |sum_t g*_t - d(sum_t L_t)/dtheta| with the BPTT gradient from autograd."""
    cell = problem.cell
    theta = problem.theta[None].clone().requires_grad_(True)
    _, readout_w, readout_b = problem.expand(1)
    h = torch.zeros(1, cell.n_hidden, dtype=theta.dtype)
    total = torch.zeros((), dtype=theta.dtype)
    for t in range(problem.steps):
        h = cell(theta, h, problem.inputs[t][None])
        total = total + readout_loss(h, readout_w, readout_b, problem.targets[t][None]).sum()
    (bptt,) = torch.autograd.grad(total, theta)
    return float((problem.exact.sum(0) - bptt[0]).abs().max())


def run(cfg, log=print) -> dict[str, float]:
    """The experiment in its own run directory ``<out_dir>/uoro/<name>``: results.json, curves.npz, plots."""
    from common.runner import Run
    from uoro.plots import variance_plots

    start = time.time()
    with Run(cfg, paper="uoro") as run_dir:
        log(f"run directory: {run_dir.dir}")
        results, curves = variance_experiment(cfg, log=log)
        results["wall_clock_s"] = round(time.time() - start, 1)
        run_dir.write_json("results.json", results)
        np.savez(run_dir.dir / "curves.npz", **curves)
        variance_plots(run_dir.plots_dir, results, curves, cfg)
    return results


def main(argv=None) -> dict[str, float]:
    from common.config import parse_args
    from common.results import print_results
    from uoro.config import CONFIG_DIR, UoroConfig

    cfg = parse_args(UoroConfig, CONFIG_DIR, __doc__, argv, prog="python -m uoro.variance")
    cfg.name = f"{cfg.name}-variance"
    results = run(cfg)
    print_results(results)
    return results


if __name__ == "__main__":
    main()
