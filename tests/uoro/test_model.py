"""Estimator semantics on tiny float64 nets: RTRL is exact, the paper's estimators and our variants are unbiased,
the controls are not, and the generalised estimator is vanilla UORO bit for bit in its vanilla setting.

Every estimator returns ``g_t = (dL_t/dh_t) J_t`` for the recurrent parameters at each step, so summing
over t must reproduce the BPTT gradient of the summed loss (exactly for RTRL, in expectation for UORO).
"""

import pytest
import torch

from uoro.cells import (
    Cell,
    GRUCell,
    TanhRNNCell,
    init_params,
    loss_and_grads,
    make_cell,
    readout_loss,
)
from uoro.estimators import make_estimator
from uoro.model import RTRL, TBPTT, UORO, NoProjectionUORO, Reinforce
from uoro.variants import UOROVariants

torch.set_num_threads(1)
F64 = torch.float64


def tiny_problem(kind="tanh", n_hidden=5, n_in=3, steps=8, seed=0, radius=0.9):
    gen = torch.Generator().manual_seed(seed)
    cell = make_cell(kind, n_hidden, n_in)
    theta, readout_w, readout_b = init_params(cell, n_in, radius, gen)
    inputs = torch.randn(steps, n_in, generator=gen, dtype=F64)
    targets = torch.randint(0, n_in, (steps,), generator=gen)
    return cell, theta, readout_w, readout_b, inputs, targets


def bptt_gradient(cell, theta, readout_w, readout_b, inputs, targets):
    theta = theta[None].clone().requires_grad_(True)
    h = torch.zeros(1, cell.n_hidden, dtype=F64)
    total = 0.0
    for t in range(len(inputs)):
        h = cell(theta, h, inputs[t][None])
        total = total + readout_loss(h, readout_w[None], readout_b[None], targets[t][None]).sum()
    return torch.autograd.grad(total, theta)[0][0]


def summed_estimates(estimator, cell, theta, readout_w, readout_b, inputs, targets, n_streams=1):
    """Run ``estimator`` over the trajectory with ``n_streams`` copies; returns sum_t g_t [R, P]."""
    th = theta.expand(n_streams, -1).contiguous()
    vw, vb = readout_w.expand(n_streams, -1, -1), readout_b.expand(n_streams, -1)
    estimator.reset(cell, n_streams, dtype=F64)
    h = torch.zeros(n_streams, cell.n_hidden, dtype=F64)
    total = torch.zeros_like(th)
    for t in range(len(inputs)):
        x = inputs[t].expand(n_streams, -1)
        h_next = cell(th, h, x)
        _, dh, _, _ = loss_and_grads(h_next, vw, vb, targets[t].expand(n_streams))
        total = total + estimator.step(cell, th, h, x, h_next, dh)
        h = h_next
    return total


@pytest.mark.parametrize("kind", ["tanh", "gru"])
def test_rtrl_equals_bptt_of_the_summed_loss_in_float64(kind):
    problem = tiny_problem(kind)
    exact = bptt_gradient(*problem)
    rtrl = summed_estimates(RTRL(), *problem)[0]
    assert (rtrl - exact).abs().max() < 1e-12, "RTRL must reproduce BPTT to float64 precision"


def test_truncated_bptt_over_the_whole_sequence_is_exact_and_tbptt1_is_not():
    problem = tiny_problem(steps=6)
    exact = bptt_gradient(*problem)
    full = summed_estimates(TBPTT(6), *problem)[0]
    one = summed_estimates(TBPTT(1), *problem)[0]
    assert (full - exact).abs().max() < 1e-12
    assert (one - exact).norm() / exact.norm() > 1e-3, (
        "TBPTT(1) must differ, else the check is blind"
    )


def test_tanh_closed_form_derivatives_match_torch_func():
    cell, theta, *_ = tiny_problem(n_hidden=4, n_in=2)
    gen = torch.Generator().manual_seed(1)
    th = theta.expand(3, -1).contiguous()
    h, v = torch.randn(2, 3, 4, generator=gen, dtype=F64)
    x = torch.randn(3, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(cell.jvp_h(th, h, x, v), Cell.jvp_h(cell, th, h, x, v))
    for mine, generic in zip(cell.vjp(th, h, x, v), Cell.vjp(cell, th, h, x, v)):
        torch.testing.assert_close(mine, generic)
    for mine, generic in zip(cell.jacobians(th, h, x), Cell.jacobians(cell, th, h, x)):
        torch.testing.assert_close(mine, generic)
    torch.testing.assert_close(cell.jacobian_h(th, h, x), Cell.jacobian_h(cell, th, h, x))


@pytest.mark.parametrize(
    "kind",
    [
        "uoro",
        "uoro_no_rho",
        "uoro_preact",
        "uoro_noproj",
        "uoro_blockwise",
        "uoro_grad_rho",
        "uoro_shaped",
        "uoro_shaped_greedy_rho",
    ],
)
def test_every_uoro_variant_is_unbiased(kind):
    """The mean of R independent estimates is within a few standard errors of the exact gradient."""
    problem = tiny_problem(n_hidden=3, n_in=2, steps=5)
    exact = bptt_gradient(*problem)
    estimator = make_estimator(kind, torch.Generator().manual_seed(2))
    estimates = summed_estimates(estimator, *problem, n_streams=20000)
    stderr = estimates.std(0) / 20000**0.5
    z = (estimates.mean(0) - exact) / stderr.clamp_min(1e-12)
    assert z.abs().max() < 5, f"{kind}: mean deviates by {z.abs().max():.1f} standard errors"
    assert estimates.shape == (20000, problem[0].n_params)


def test_rank_one_tbptt1_estimate_is_detectably_biased():
    """The control: UORO that forgets its pair each step estimates TBPTT(1), not the gradient."""
    problem = tiny_problem(n_hidden=3, n_in=2, steps=5)
    exact = bptt_gradient(*problem)
    forgetful = UOROVariants(torch.Generator().manual_seed(3), forget=True)
    estimates = summed_estimates(forgetful, *problem, n_streams=20000)
    z = (estimates.mean(0) - exact) / (estimates.std(0) / 20000**0.5).clamp_min(1e-12)
    assert z.abs().max() > 10
    tbptt1 = summed_estimates(TBPTT(1), *problem)[0]
    assert (estimates.mean(0) - tbptt1).norm() < 0.05 * tbptt1.norm(), (
        "its mean is TBPTT(1)'s gradient"
    )


def test_shaped_noise_and_its_dual_multiply_to_the_identity():
    cell, theta, *_ = tiny_problem(n_hidden=4, n_in=2)
    estimator = make_estimator("uoro_shaped", torch.Generator().manual_seed(0))
    estimator.reset(cell, 2, dtype=F64)
    th = theta.expand(2, -1).contiguous()
    gen = torch.Generator().manual_seed(4)
    h, g = torch.randn(2, 2, 4, generator=gen, dtype=F64)
    x = torch.randn(2, 2, generator=gen, dtype=F64)
    for _ in range(3):
        estimator._update_future_metric(cell, th, h, x, g)
    columns = [
        estimator._noise_pair(cell, th, h, x, (2, 4), F64, None, e.expand(2, 4).clone())
        for e in torch.eye(4, dtype=F64)
    ]
    m = torch.stack([c[0] for c in columns], 2)
    m_dual = torch.stack([c[1] for c in columns], 2)
    torch.testing.assert_close(m @ m_dual.transpose(1, 2), torch.eye(4, dtype=F64).expand(2, 4, 4))
    assert (m - torch.eye(4, dtype=F64)).abs().max() > 1e-2, "the noise must actually be shaped"


def test_reinforce_approaches_unscaled_gaussian_uoro_as_sigma_shrinks():
    cell, theta, readout_w, readout_b, inputs, targets = tiny_problem(steps=6)
    n = 4
    th, vw, vb = (
        theta.expand(n, -1).contiguous(),
        readout_w.expand(n, -1, -1),
        readout_b.expand(n, -1),
    )
    gen = torch.Generator().manual_seed(5)
    uoro = UORO(torch.Generator(), alpha="one", noise="gaussian")
    uoro.reset(cell, n, dtype=F64)
    small, large = Reinforce(1e-5), Reinforce(1e-1)
    for r in (small, large):
        r.reset(cell, torch.zeros(n, cell.n_hidden, dtype=F64))
    h = torch.zeros(n, cell.n_hidden, dtype=F64)
    for t in range(len(inputs)):
        eps = torch.randn(n, cell.n_hidden, generator=gen, dtype=F64)
        x, y = inputs[t].expand(n, -1), targets[t].expand(n)
        h_next = cell(th, h, x)
        clean, dh, _, _ = loss_and_grads(h_next, vw, vb, y)
        u = uoro.step(cell, th, h, x, h_next, dh, noise=eps)
        loss_fn = lambda hh: readout_loss(hh, vw, vb, y)  # noqa: B023, E731
        gap_small = (small.step(cell, th, x, eps, loss_fn, clean) - u).norm() / u.norm()
        gap_large = (large.step(cell, th, x, eps, loss_fn, clean) - u).norm() / u.norm()
        h = h_next
    assert gap_small < 1e-3, (
        f"REINFORCE at sigma=1e-5 should equal UORO(rho=1) to first order, gap {gap_small:.2g}"
    )
    assert gap_large > 100 * gap_small


def test_cells_and_estimators_reject_bad_input_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown cell 'lstm'"):
        make_cell("lstm", 4, 2)
    with pytest.raises(ValueError, match="unknown estimator 'kfrtrl'"):
        make_estimator("kfrtrl", torch.Generator())
    with pytest.raises(ValueError, match="truncation must be >= 1"):
        TBPTT(0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        Reinforce(0.0)
    with pytest.raises(ValueError, match="rho must be"):
        UOROVariants(torch.Generator(), rho="optimal")
    with pytest.raises(ValueError, match="space must be"):
        UORO(torch.Generator(), space="parameter")
    with pytest.raises(ValueError, match="alpha must be"):
        UORO(torch.Generator(), alpha="schedule")
    with pytest.raises(ValueError, match="needs a p = W a cell"):
        NoProjectionUORO(torch.Generator()).reset(GRUCell(3, 2), 2)
    cell = TanhRNNCell(4, 2)
    with pytest.raises(ValueError, match=r"theta must be \[N, 28\]"):
        cell(torch.zeros(2, 5), torch.zeros(2, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"x must be \[2, 2\]"):
        cell(torch.zeros(2, 28), torch.zeros(2, 4), torch.zeros(2, 3))


def test_estimator_state_round_trips_for_exact_resume():
    problem = tiny_problem(n_hidden=3, n_in=2, steps=4)
    cell, theta = problem[0], problem[1]
    first = make_estimator("uoro_shaped", torch.Generator().manual_seed(9))
    summed_estimates(first, *problem, n_streams=2)
    second = make_estimator("uoro_shaped", torch.Generator().manual_seed(123))
    second.reset(cell, 2, dtype=F64)
    second.load_state_dict(first.state_dict())
    th = theta.expand(2, -1).contiguous()
    h = torch.full((2, 3), 0.1, dtype=F64)
    x, dh = torch.ones(2, 2, dtype=F64), torch.ones(2, 3, dtype=F64)
    torch.testing.assert_close(
        first.step(cell, th, h, x, h, dh), second.step(cell, th, h, x, h, dh)
    )


def test_gru_parameter_blocks_cover_the_flat_vector():
    cell = GRUCell(4, 3)
    assert cell.n_params == 3 * (16 + 12 + 4)
    slices = list(cell.block_slices().values())
    assert slices[0].start == 0 and slices[-1].stop == cell.n_params


def test_shaped_uoro_pooling_statistics_over_streams_stays_unbiased():
    """metric_group > 1 shares D and G across streams: a different (past-measurable) M, same mean."""
    problem = tiny_problem(n_hidden=3, n_in=2, steps=5)
    exact = bptt_gradient(*problem)
    estimator = make_estimator("uoro_shaped", torch.Generator().manual_seed(6), metric_group=4)
    estimates = summed_estimates(estimator, *problem, n_streams=20000)
    z = (estimates.mean(0) - exact) / (estimates.std(0) / 20000**0.5).clamp_min(1e-12)
    assert z.abs().max() < 5
    with pytest.raises(ValueError, match="metric_group=3"):
        make_estimator("uoro_shaped", torch.Generator(), metric_group=3).reset(problem[0], 10)


@pytest.mark.parametrize(("new_alpha", "old_rho"), [("rescaled", "greedy"), ("one", "none")])
def test_generalised_estimator_is_the_old_uoro_bit_for_bit_in_its_vanilla_setting(
    new_alpha, old_rho
):
    """(state space, Q0 = I, Tallec-Ollivier rescaling) is vanilla UORO: same noise, same floats."""
    cell, theta, readout_w, readout_b, inputs, targets = tiny_problem(n_hidden=5, n_in=3, steps=30)
    n = 7
    th, vw, vb = (
        theta.expand(n, -1).contiguous(),
        readout_w.expand(n, -1, -1),
        readout_b.expand(n, -1),
    )
    new = UORO(torch.Generator().manual_seed(3), space="state", q0=None, alpha=new_alpha)
    old = UOROVariants(torch.Generator().manual_seed(3), rho=old_rho)
    new.reset(cell, n, dtype=F64)
    old.reset(cell, n, dtype=F64)
    h = torch.zeros(n, cell.n_hidden, dtype=F64)
    for t in range(len(inputs)):
        x = inputs[t].expand(n, -1)
        h_next = cell(th, h, x)
        _, dh, _, _ = loss_and_grads(h_next, vw, vb, targets[t].expand(n))
        assert torch.equal(
            new.step(cell, th, h, x, h_next, dh), old.step(cell, th, h, x, h_next, dh)
        )
        h = h_next
