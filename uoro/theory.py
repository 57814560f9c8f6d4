"""Exact variance of the generalised estimators on one fixed trajectory, from backprop quantities
(arXiv:1902.02405, "Theoretical framework" and "Toward improved variance reduction").

On a trajectory with ``A_t = dh_t/dh_{t-1}``, ``D_t = dh_t/dp_t`` (diagonal), inputs ``a_t = [h_{t-1}; x_t; 1]``
and ``e_t = dL_t/dh_t``, the total estimate of an unrescaled estimator is a quadratic form in the stacked noise
``u``: ``sum_t g_t = sum_{s,s'} (c_{s,s'}^T alpha_s Q0 u_s)(u_{s'}^T Q0^{-1} dz_{s'}/dtheta / alpha_{s'})`` with the
future gradients ``c_{s,s'} = sum_{t >= max(s,s')} dL_t/dz_s`` (the causal mask of the paper's ``S_q^(t)``).
For i.i.d. noise of fourth moment kappa its variance is exactly ``|M|_F^2 + tr(M^2) + (kappa - 3) sum diag(M)^2``:

- ``|M|_F^2`` is the paper's dominant term ``V(Q)``;
- ``tr(M^2)`` does not depend on Q (the Q and Q^{-1} of each pair cancel);
- the last term is the fourth-moment correction (``-2 sum diag^2`` for Rademacher noise, 0 for Gaussian).

In preactivation space ``V(Q) = tr((Q0 Q0^T)^{-1}) tr(B Q0 Q0^T)`` with
``B = sum_{q,r} (alpha_r^2 / alpha_q^2) |a_q|^2 c_{r,q} c_{r,q}^T``, minimised by ``Q0 = B^{-1/4}`` to ``tr(B^{1/2})^2``
(from ``tr(B) n`` at ``Q0 = I``). All functions take one trajectory (no batch dimension), float64.
"""

from __future__ import annotations

import math

import torch


def future_gradients(jac_h: torch.Tensor, dloss_dh: torch.Tensor) -> torch.Tensor:
    """``F[s, q] = sum_{t >= max(s, q)} dL_t/dh_s`` [T, T, n] from ``A_t`` [T, n, n] and ``e_t`` [T, n]:
    ``F[s, q] = delta_s`` (the BPTT adjoint) for q <= s and ``A_{s+1}^T F[s+1, q]`` for q > s."""
    steps, n = dloss_dh.shape
    future = torch.zeros(steps, steps, n, dtype=dloss_dh.dtype)
    adjoint = torch.zeros(n, dtype=dloss_dh.dtype)
    for s in reversed(range(steps)):
        if s + 1 < steps:
            adjoint = jac_h[s + 1].T @ adjoint
            future[s, s + 1 :] = future[s + 1, s + 1 :] @ jac_h[s + 1]
        adjoint = adjoint + dloss_dh[s]
        future[s, : s + 1] = adjoint
    return future


def sym_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    """``matrix^power`` of a symmetric positive semi-definite matrix (eigenvalues floored at 1e-12 of the top)."""
    evals, evecs = torch.linalg.eigh(0.5 * (matrix + matrix.T))
    evals = evals.clamp_min(1e-12 * evals[-1])
    return (evecs * evals**power) @ evecs.T


def preactivation_b(
    future_p: torch.Tensor, inputs: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """The paper's ``B = sum_{q,r} (alpha_r^2 / alpha_q^2) |a_q|^2 c_{r,q} c_{r,q}^T`` [n, n]
    ("Toward improved variance reduction"); ``future_p[r, q] = c_{r,q}`` in preactivation space."""
    weight = alpha[:, None] ** 2 / alpha[None, :] ** 2 * (inputs**2).sum(1)[None, :]
    return torch.einsum("rq,rqi,rqj->ij", weight, future_p, future_p)


def dominant_variance(b: torch.Tensor, q0: torch.Tensor | None) -> float:
    """``V(Q) = tr(B Q0 Q0^T) tr((Q0 Q0^T)^{-1})`` in preactivation space."""
    if q0 is None:
        return float(torch.trace(b) * b.shape[0])
    s = q0 @ q0.T
    return float(torch.trace(b @ s) * torch.trace(torch.linalg.inv(s)))


def projected_variance(future_h, slope, inputs, space, q0=None, alpha=None, kappa=1.0) -> dict:
    """Exact total variance of the unrescaled projected estimator (``uoro.model.UORO`` with alpha "one" or a
    schedule): {"V": |M|_F^2, "C": tr(M^2), "F": sum diag(M)^2, "total": V + C + (kappa - 3) F}."""
    steps, n = slope.shape
    alpha = torch.ones(steps, dtype=slope.dtype) if alpha is None else alpha
    q0 = torch.eye(n, dtype=slope.dtype) if q0 is None else q0
    q0_inv_sq = torch.linalg.inv(q0) ** 2  # [m, n]
    future_p = slope[:, None, :] * future_h  # c in preactivation space
    c = future_h if space == "state" else future_p  # the future gradients at the cut vertex
    y = alpha[:, None, None] * (c @ q0)  # y[s, s'] = alpha_s Q0^T c[s, s']
    side = slope**2 if space == "state" else torch.ones_like(slope)  # dz/dp's rows, squared
    rows_sq = (side @ q0_inv_sq.T) / alpha[
        :, None
    ] ** 2  # |row of Q0^{-1} dz/dp / alpha_s|^2 [T, m]
    a_sq = (inputs**2).sum(1)
    v = float(((y**2).sum(-1) * (rows_sq.sum(1) * a_sq)[None, :]).sum())
    gram = inputs @ inputs.T
    c_term = float(((future_p * future_p.transpose(0, 1)).sum(-1) * gram).sum())
    diagonal = y[torch.arange(steps), torch.arange(steps)]  # y[s, s]
    f_term = float((a_sq[:, None] * rows_sq * diagonal**2).sum())
    return {"V": v, "C": c_term, "F": f_term, "total": v + c_term + (kappa - 3.0) * f_term}


def noprojection_variance(future_h, slope, inputs, alpha=None) -> dict:
    """Exact total variance of unrescaled preactivation UORO without spatial projection (Rademacher signs
    ``tau_t``): ``sum_{s != s'} (alpha_s/alpha_s')^2 |c_{s,s'}|^2 |a_s'|^2 + (c_{s,s'} . c_{s',s})(a_s . a_s')``.
    Its first term is n times smaller than V at Q0 = I ("Projecting in preactivation space")."""
    steps = slope.shape[0]
    alpha = torch.ones(steps, dtype=slope.dtype) if alpha is None else alpha
    future_p = slope[:, None, :] * future_h
    off = 1.0 - torch.eye(steps, dtype=slope.dtype)
    ratio = alpha[:, None] ** 2 / alpha[None, :] ** 2
    v = float((off * ratio * (future_p**2).sum(-1) * (inputs**2).sum(1)[None, :]).sum())
    c_term = float(
        (off * (future_p * future_p.transpose(0, 1)).sum(-1) * (inputs @ inputs.T)).sum()
    )
    return {"V": v, "C": c_term, "F": 0.0, "total": v + c_term}


def optimal_schedule(weights: torch.Tensor, iterations: int = 100) -> torch.Tensor:
    """``alpha`` [T] minimising ``sum_{r,q} K_rq alpha_r^2 / alpha_q^2`` (convex in ``y = log alpha^2``; Newton
    steps with backtracking). ``weights`` = K [T, T]; alpha is normalised to geometric mean 1."""
    k = weights.clone()
    k.fill_diagonal_(0.0)  # the r = q terms do not depend on alpha
    y = torch.zeros(k.shape[0], dtype=k.dtype)

    def objective(y):
        return float((k * torch.exp(y[:, None] - y[None, :])).sum())

    for _ in range(iterations):
        e = k * torch.exp(y[:, None] - y[None, :])
        grad = e.sum(1) - e.sum(0)
        pair = e + e.T
        hessian = torch.diag(pair.sum(1)) - pair
        hessian = hessian + 1e-9 * hessian.diagonal().mean() * torch.eye(len(y), dtype=y.dtype)
        step = torch.linalg.solve(hessian, grad)
        size, before = 1.0, objective(y)
        while objective(y - size * step) > before and size > 1e-8:
            size *= 0.5
        y = y - size * step
        y = y - y.mean()
        if float(grad.abs().max()) < 1e-12 * before:
            break
    return torch.exp(0.5 * y)


def schedule_weights(future_p, inputs, s_matrix=None) -> torch.Tensor:
    """``K_rq = |a_q|^2 c_{r,q}^T S c_{r,q}`` for ``V = tr(S^{-1}) sum K_rq alpha_r^2 / alpha_q^2``."""
    quad = (future_p**2).sum(-1) if s_matrix is None else ((future_p @ s_matrix) * future_p).sum(-1)
    return quad * (inputs**2).sum(1)[None, :]


def best_geometric(future_p, inputs, grid: int = 401) -> float:
    """The ``c`` of ``alpha_t = c^t`` (Q0 = I) with the smallest predicted V, on a grid of log c in [-0.5, 0.5]."""
    k = schedule_weights(future_p, inputs)
    lag = torch.arange(k.shape[0], dtype=k.dtype)
    lag = lag[:, None] - lag[None, :]  # r - q
    best = min(
        (float((k * torch.exp(2 * lag * log_c)).sum()), float(log_c))
        for log_c in torch.linspace(-0.5, 0.5, grid, dtype=k.dtype)
    )
    return math.exp(best[1])


def joint_optimum(
    future_p, inputs, iterations: int = 30
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Alternate ``alpha <- argmin V(alpha, Q0)`` and ``Q0 <- B(alpha)^{-1/4}``; returns (alpha, Q0, V per round).
    Each half-step minimises V exactly, so V never rises."""
    n = future_p.shape[-1]
    alpha = torch.ones(future_p.shape[0], dtype=future_p.dtype)
    q0, history = torch.eye(n, dtype=future_p.dtype), []
    for _ in range(iterations):
        alpha = optimal_schedule(schedule_weights(future_p, inputs, q0 @ q0.T))
        b = preactivation_b(future_p, inputs, alpha)
        q0 = sym_power(b / torch.trace(b) * n, -0.25)
        history.append(dominant_variance(b, q0))
        if len(history) > 1 and history[-2] - history[-1] < 1e-10 * history[-1]:
            break
    return alpha, q0, history
