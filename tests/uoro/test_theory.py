"""The paper's estimators and variance formulas, exactly: on tiny float64 RNNs every Rademacher noise pattern is
enumerated, so means and variances are computed without sampling error."""

import itertools
from types import SimpleNamespace

import pytest
import torch

from uoro import theory
from uoro.model import UORO, NoProjectionUORO, Reinforce
from uoro.total_variance import build_trajectory, summed_estimates, summed_reinforce

torch.set_num_threads(1)
F64 = torch.float64


def tiny(n_hidden=2, steps=3, seed=0):
    tc = SimpleNamespace(n_in=2, steps=steps, lag=1, spectral_radius=0.9)
    return build_trajectory(n_hidden, tc, seed)


def all_sign_patterns(steps, width):
    """Every +-1 pattern of [T, width]: [2^(T width), T, width] -> noise [T, R, width]."""
    patterns = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=steps * width)), dtype=F64)
    return patterns.view(-1, steps, width).transpose(0, 1).contiguous()


def bptt(traj):
    theta = traj.theta[None].clone().requires_grad_(True)
    h = torch.zeros(1, traj.cell.n_hidden, dtype=F64)
    total = 0.0
    for t in range(traj.steps):
        h = traj.cell(theta, h, traj.inputs[t][None])
        total = total + traj.loss(h, t).sum()
    return torch.autograd.grad(total, theta)[0][0]


def test_trajectory_gradient_and_future_gradients_match_autograd():
    traj = tiny(3, 5)
    assert torch.allclose(traj.gradient, bptt(traj), atol=1e-12)
    future = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    # brute force: F[s, q] = d(sum_{t >= max(s, q)} L_t)/dh_s through the recursion from h_s onwards
    for s in range(traj.steps):
        for q in range(traj.steps):
            h_s = traj.hidden[s + 1][None].clone().requires_grad_(True)
            h, total = h_s, 0.0
            for t in range(s, traj.steps):
                if t > s:
                    h = traj.cell(traj.theta[None], h, traj.inputs[t][None])
                if t >= max(s, q):
                    total = total + traj.loss(h, t).sum()
            (grad,) = torch.autograd.grad(total, h_s)
            assert torch.allclose(future[s, q], grad[0], atol=1e-12)


def exact_moments(traj, estimator, noise):
    estimates = summed_estimates(traj, estimator, noise.shape[1], noise)
    mean = estimates.mean(0)
    return mean, float(((estimates - mean) ** 2).sum(1).mean())


@pytest.mark.parametrize(
    ("space", "shaped", "schedule"),
    [("state", False, False), ("state", True, True), ("preactivation", False, False),
     ("preactivation", True, False), ("preactivation", True, True)],
)  # fmt: skip
def test_unrescaled_estimators_are_unbiased_with_the_exact_variance_of_the_closed_form(
    space, shaped, schedule
):
    traj = tiny()
    q0 = torch.tensor([[1.3, 0.4], [-0.2, 0.7]], dtype=F64) if shaped else None
    alpha = torch.tensor([1.0, 0.5, 2.0], dtype=F64) if schedule else None
    estimator = UORO(None, space, q0, "schedule" if schedule else "one", schedule=alpha)
    mean, variance = exact_moments(traj, estimator, all_sign_patterns(3, 2))
    assert torch.allclose(mean, traj.gradient, atol=1e-12)
    future = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    predicted = theory.projected_variance(future, traj.slope, traj.a, space, q0, alpha, kappa=1.0)
    assert variance == pytest.approx(predicted["total"], rel=1e-10)


def test_no_projection_estimator_is_unbiased_with_its_exact_variance():
    traj = tiny(3, 5)
    noise = all_sign_patterns(5, 1)[..., 0]  # one sign per step
    mean, variance = exact_moments(traj, NoProjectionUORO(None, alpha="one"), noise)
    assert torch.allclose(mean, traj.gradient, atol=1e-12)
    future = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    assert variance == pytest.approx(
        theory.noprojection_variance(future, traj.slope, traj.a)["total"], rel=1e-10
    )


@pytest.mark.parametrize("space", ["state", "preactivation"])
def test_rescaled_estimators_are_unbiased(space):
    traj = tiny()
    mean, _ = exact_moments(traj, UORO(None, space), all_sign_patterns(3, 2))
    assert torch.allclose(mean, traj.gradient, atol=1e-12)
    mean, _ = exact_moments(traj, NoProjectionUORO(None), all_sign_patterns(3, 1)[..., 0])
    assert torch.allclose(mean, traj.gradient, atol=1e-12)


def test_b_and_v_of_q_against_the_papers_brute_force_sums_on_a_3_unit_rnn():
    traj = tiny(3, 4)
    steps, n = traj.steps, 3
    # b_r^(t) = dL_t/dp_r by autograd through the unrolled network, one (r, t) at a time
    b = torch.zeros(steps, steps, n, dtype=F64)  # [r, t]
    blocks = traj.cell.unflatten(traj.theta[None])
    w_full = torch.cat([blocks["W"][0], blocks["U"][0], blocks["b"][0][:, None]], 1)
    for r in range(steps):
        for t in range(r, steps):
            shift = torch.zeros(n, dtype=F64, requires_grad=True)
            h = torch.tanh(w_full @ traj.a[r] + shift)[None]  # h_r as a function of p_r
            for k in range(r + 1, t + 1):
                h = traj.cell(traj.theta[None], h, traj.inputs[k][None])
            b[r, t] = torch.autograd.grad(traj.loss(h, t).sum(), shift)[0]
    alpha = torch.tensor([1.0, 0.6, 1.7, 0.9], dtype=F64)
    a_sq = (traj.a**2).sum(1)
    brute_b = torch.zeros(n, n, dtype=F64)
    for s in range(steps):
        for t in range(steps):
            weight = sum(a_sq[q] / alpha[q] ** 2 for q in range(min(s, t) + 1))
            brute_b += weight * sum(
                alpha[r] ** 2 * torch.outer(b[r, s], b[r, t]) for r in range(steps)
            )
    future = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    future_p = traj.slope[:, None, :] * future
    assert torch.allclose(theory.preactivation_b(future_p, traj.a, alpha), brute_b, atol=1e-12)
    q0 = torch.tensor([[1.1, 0.3, 0.0], [0.2, 0.8, -0.1], [0.0, 0.4, 1.5]], dtype=F64)
    s_mat = [alpha[q] ** 2 * q0 @ q0.T for q in range(steps)]
    brute_v = 0.0
    for s in range(steps):
        for t in range(steps):
            left = sum(torch.trace(torch.outer(b[r, s], b[r, t]) @ s_mat[r]) for r in range(steps))
            right = sum(
                a_sq[q] * torch.trace(torch.linalg.inv(s_mat[q])) for q in range(min(s, t) + 1)
            )
            brute_v += float(left * right)
    predicted = theory.projected_variance(future, traj.slope, traj.a, "preactivation", q0, alpha)
    assert predicted["V"] == pytest.approx(brute_v, rel=1e-10)
    assert theory.dominant_variance(
        theory.preactivation_b(future_p, traj.a, alpha), q0
    ) == pytest.approx(brute_v, rel=1e-10)


def test_b_quarter_minimises_v_and_the_schedules_are_optimal():
    traj = tiny(4, 12, seed=3)
    future = theory.future_gradients(traj.jac_h, traj.dloss_dh)
    future_p = traj.slope[:, None, :] * future
    b = theory.preactivation_b(future_p, traj.a, torch.ones(12, dtype=F64))
    q_quarter = theory.sym_power(b, -0.25)
    best = theory.dominant_variance(b, q_quarter)
    assert best == pytest.approx(float(torch.trace(theory.sym_power(b, 0.5)) ** 2), rel=1e-9)
    assert best <= theory.dominant_variance(b, None)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):  # random perturbations of B^(-1/4) do worse
        q = q_quarter + 0.05 * torch.randn(4, 4, generator=gen, dtype=F64)
        assert theory.dominant_variance(b, q) >= best
    k = theory.schedule_weights(future_p, traj.a)
    alpha = theory.optimal_schedule(k)

    def objective(al):
        return float((k * al[:, None] ** 2 / al[None, :] ** 2).sum())

    for i in range(12):
        for factor in (0.97, 1.03):
            nudged = alpha.clone()
            nudged[i] *= factor
            assert objective(nudged) >= objective(alpha)
    _, _, history = theory.joint_optimum(future_p, traj.a, iterations=10)
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(history, history[1:]))


def test_reinforce_with_shaped_noise_converges_to_uoro_with_the_same_q_as_sigma_shrinks():
    traj = tiny(3, 6)
    q0 = torch.tensor([[1.2, 0.3, 0.0], [0.0, 0.9, 0.2], [0.1, 0.0, 1.1]], dtype=F64)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(6, 64, 3, generator=gen, dtype=F64)
    uoro = summed_estimates(traj, UORO(None, "state", q0, "one", noise="gaussian"), 64, noise)
    gaps = []
    for sigma in (1e-2, 1e-3):
        reinforce = summed_reinforce(traj, Reinforce(sigma, q0), noise)
        gaps.append(float(((reinforce - uoro) ** 2).sum(1).mean()))
    assert gaps[1] < gaps[0] / 50  # the squared difference falls like sigma^2
    no_baseline = [float(summed_reinforce(traj, Reinforce(s, q0, baseline=False), noise).var(0).sum())
                   for s in (1e-1, 1e-2)]  # fmt: skip
    assert no_baseline[1] > 50 * no_baseline[0]  # ~ 1/sigma^2 without the baseline
