"""Our own UORO variants: NOT in the paper (arXiv:1902.02405). Labelled "ours" wherever they appear.

Built before the paper's proposals were known to us, kept as extras beside them:

    blockwise   one (h~, w~) pair per parameter block, all driven by the same noise        (ours)
    grad-rho    UORO's rescaling balanced in the metric of a running estimate D of future
                loss gradients instead of the Euclidean one                                (ours)
    shaped      noise covariance shaped online by that running estimate, undone on the
                parameter side so the product stays unbiased                                (ours)
    forget      reset h~, w~ every step: a rank-one estimate of TBPTT(1)'s biased gradient,
                the control of the unbiasedness test                                        (ours)

With every option off, :class:`UOROVariants` is vanilla UORO; ``tests/uoro`` checks that the paper's
generalised estimator (``uoro.model.UORO``) reproduces it bit for bit in that setting.
"""

from __future__ import annotations

import torch

from uoro.cells import TanhRNNCell
from uoro.model import Estimator, rademacher


def _group_mean(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Mean over consecutive equal groups of the first dimension: [N, ...] -> [groups, ...]."""
    return t.reshape(groups, t.shape[0] // groups, *t.shape[1:]).mean(1)


def _per_example(t: torch.Tensor, n: int) -> torch.Tensor:
    """Each group's value repeated for its examples: [groups, ...] -> [n, ...]."""
    return t if t.shape[0] == n else t.repeat_interleave(n // t.shape[0], 0)


class UOROVariants(Estimator):
    """UORO (Tallec & Ollivier 2018) with our variance-reduction options (ours, not in the paper).

    ``J_t ~ h~_t w~_t^T`` with ``h~_t = rho0 A_t h~_{t-1} + rho1 nu_t`` and
    ``w~_t = w~_{t-1} / rho0 + (nu'_t)^T B_t / rho1``, where ``E[nu nu'^T] = I`` makes the product unbiased
    (the rhos cancel in the expectation of every term). The options:

    rho           "greedy": Tallec-Ollivier ``rho0 = sqrt(|w~| / |A h~|)``, ``rho1 = sqrt(|b| / |nu|)``, the
                  one-step minimiser of the second moment of the new rank-one product (the paper's reading);
                  "none": rho = 1; "gradient": the same balance measured in the metric of a running
                  estimate D of future loss gradients, ``|v|_D = sqrt(v^T D v)`` (ours).
    noise         "rademacher" or "gaussian" (or pass ``noise`` to ``step`` to drive it externally).
    shaped        draw ``nu = M xi`` and ``nu' = M^{-T} xi`` with ``M M^T = Sigma``, where
                  ``Sigma = D^{-1} # G`` (matrix geometric mean) minimises ``tr(Sigma D) tr(Sigma^{-1} G)``,
                  the variance of every (spatial and cross-time) term for future-gradient second moment D
                  and ``G = B_t B_t^T`` (ours; our derivation in the README).
    forget        reset h~, w~ every step: an unbiased rank-one estimate of TBPTT(1) (a biased-mean control).
    blockwise     one (h~, w~) pair per parameter block, all driven by the same nu (ours).
    """

    def __init__(
        self,
        generator: torch.Generator,
        rho: str = "greedy",
        noise: str = "rademacher",
        shaped: bool = False,
        forget: bool = False,
        blockwise: bool = False,
        eps: float = 1e-7,
        future_decay: float = 0.9,
        future_horizon: float = 0.9,
        shaping_floor: float = 0.05,
        shared_trajectory: bool = False,
        shaping_every: int = 1,
        metric_group: int = 1,
    ):
        if rho not in ("greedy", "none", "gradient"):
            raise ValueError(f"rho must be 'greedy', 'none' or 'gradient', got '{rho}'")
        if noise not in ("rademacher", "gaussian"):
            raise ValueError(f"noise must be 'rademacher' or 'gaussian', got '{noise}'")
        if not 0.0 <= future_decay < 1.0 or not 0.0 <= future_horizon < 1.0:
            raise ValueError("future_decay and future_horizon must lie in [0, 1)")
        self.generator = generator
        self.rho, self.noise, self.shaped = rho, noise, shaped
        self.forget, self.blockwise = forget, blockwise
        self.eps = eps
        self.future_decay, self.future_horizon = future_decay, future_horizon
        self.shaping_floor = shaping_floor
        if shaping_every < 1:
            raise ValueError(f"shaping_every must be >= 1, got {shaping_every}")
        self.shaping_every = shaping_every
        # consecutive examples sharing one D and one noise shape (e.g. the streams of one seed)
        self.metric_group = metric_group
        # every example on one trajectory (the variance experiment): D and the shaping are computed once
        self.shared_trajectory = shared_trajectory
        self.name = "uoro"

    @property
    def needs_future_metric(self) -> bool:
        return self.shaped or self.rho == "gradient"

    def reset(self, cell, n_examples, dtype=torch.float64, device=None):
        self.slices = list(cell.block_slices().values()) if self.blockwise else [slice(None)]
        k = len(self.slices)
        self.h_tilde = torch.zeros(k, n_examples, cell.n_hidden, dtype=dtype, device=device)
        self.w_tilde = torch.zeros(n_examples, cell.n_params, dtype=dtype, device=device)
        eye = torch.eye(cell.n_hidden, dtype=dtype, device=device)
        if n_examples % self.metric_group:
            raise ValueError(
                f"{n_examples} examples do not split into groups of metric_group={self.metric_group}"
            )
        n_metrics = 1 if self.shared_trajectory else n_examples // self.metric_group
        self.future_metric = eye.expand(n_metrics, -1, -1).clone()  # D at trace n, [N or 1, n, n]
        self.future_raw = self.future_metric / cell.n_hidden
        self.mean_grad_sq = torch.zeros(n_metrics, dtype=dtype, device=device)
        self.metric_steps = 0
        self.k_quarter = self.future_metric.clone()  # K^{-1/4} of the noise shaping, refreshed
        self.k_quarter_inv = self.future_metric.clone()
        self.g_half = torch.ones(n_metrics, cell.n_hidden, dtype=dtype, device=device)
        self.shaping_age = 0

    def _update_future_metric(self, cell, theta, h_prev, x, dloss_dh):
        """A running estimate of ``D_t = sum_{t' >= t} delta_{t',t} delta_{t',t}^T``, the second moment of the
        future loss gradients ``delta_{t',t} = A_{t'..t+1}^T g_{t'}`` that h~_t is contracted with. It obeys
        ``D_t = g_t g_t^T + A_{t+1}^T D_{t+1} A_{t+1}``; online we keep its stationary running mean
        ``D <- decay D + (1 - decay) (g g^T + horizon A^T D A)`` (A_t stands in for the unknown A_{t+1};
        g in units of its running RMS). Only D's shape is used: ``future_metric`` has trace n."""
        a = cell.jacobian_h(theta, h_prev, x)
        g = dloss_dh
        groups = self.future_raw.shape[
            0
        ]  # examples in a group share one D (their second moments pooled)
        decay = self.future_decay
        self.mean_grad_sq = decay * self.mean_grad_sq + (1 - decay) * _group_mean(
            (g**2).sum(1), groups
        )
        debias = 1 - decay ** (
            self.metric_steps + 1
        )  # as in Adam: early running means are too small
        rms = _per_example(self.mean_grad_sq / debias, g.shape[0]).clamp_min(1e-300).sqrt()
        g = g / rms[:, None]
        propagated = a.transpose(1, 2) @ _per_example(self.future_raw, g.shape[0]) @ a
        fresh = _group_mean(
            g[:, :, None] * g[:, None, :] + self.future_horizon * propagated, groups
        )
        self.future_raw = decay * self.future_raw + (1 - decay) * fresh
        trace = self.future_raw.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-300)
        if bool((trace > 1e12).any()):  # a long memory (horizon * |A|^2 > 1) may grow D; rescale it
            self.future_raw = self.future_raw / trace[:, None, None]
            trace = torch.ones_like(trace)
        self.future_metric = self.future_raw * (cell.n_hidden / trace)[:, None, None]
        self.metric_steps += 1

    def _noise_pair(self, cell, theta, h_prev, x, shape, dtype, device, noise):
        if noise is None:
            if self.noise == "rademacher":
                noise = rademacher(shape, self.generator, dtype, device)
            else:
                noise = torch.randn(
                    shape, generator=self.generator, dtype=dtype, device=self.generator.device
                ).to(device)
        if not self.shaped:
            return noise, noise
        # Sigma = D^{-1} # G = G^{1/2} K^{-1/2} G^{1/2} with K = G^{1/2} D G^{1/2}; any M with
        # M M^T = Sigma will do, and M = G^{1/2} K^{-1/4} needs one eigendecomposition. D is mixed with
        # shaping_floor * I (its mean eigenvalue) so Sigma stays well-conditioned.
        n = cell.n_hidden
        eye = torch.eye(n, dtype=dtype, device=device)
        d = (1 - self.shaping_floor) * self.future_metric + self.shaping_floor * eye
        # The eigendecomposition is the costly part: refresh M every shaping_every steps (with the G of
        # that step). Any past-measurable M keeps E[nu nu'^T] = M M^{-1} = I: staleness costs variance only.
        # G = B B^T would cost n reverse passes; its diagonal is enough here (exactly diagonal for the
        # tanh RNN): G_ii = |e_i^T B|^2, floored so that G^{-1/2} exists for saturated units.
        if self.shaping_age % self.shaping_every == 0:
            g_diag = _group_mean(
                self._row_norms_sq(cell, theta, h_prev, x), self.future_raw.shape[0]
            )
            self.g_half = g_diag.clamp_min(1e-6 * g_diag.amax(1, keepdim=True)).sqrt()
            g_half = self.g_half
            k_evals, k_evecs = torch.linalg.eigh(g_half[:, :, None] * d * g_half[:, None, :])
            k_evals = k_evals.clamp_min(1e-12 * k_evals[:, -1:])
            self.k_quarter = (
                k_evecs @ torch.diag_embed(k_evals.pow(-0.25)) @ k_evecs.transpose(1, 2)
            )
            self.k_quarter_inv = (
                k_evecs @ torch.diag_embed(k_evals.pow(0.25)) @ k_evecs.transpose(1, 2)
            )
        self.shaping_age += 1
        g_half, k_quarter, k_quarter_inv = self.g_half, self.k_quarter, self.k_quarter_inv
        m = _per_example(g_half[:, :, None] * k_quarter, shape[0])  # nu = M xi
        m_dual = _per_example(k_quarter_inv / g_half[:, :, None], shape[0])  # nu' = M^{-T} xi
        return (m @ noise[:, :, None])[..., 0], (m_dual @ noise[:, :, None])[..., 0]

    def _row_norms_sq(self, cell, theta, h_prev, x):
        if isinstance(cell, TanhRNNCell):
            slope = cell._slope(theta, h_prev, x)
            inputs_sq = (h_prev**2).sum(1) + (x**2).sum(1) + 1.0
            return slope**2 * inputs_sq[:, None]
        _, b = cell.jacobians(theta, h_prev, x)
        return (b**2).sum(-1)

    def _norm(self, v):
        """Norm of h-space vectors [..., N, n] in the metric D (rho="gradient") or Euclidean."""
        if self.rho == "gradient":
            metric = _per_example(self.future_metric, v.shape[0])
            return ((v[:, None, :] @ metric)[:, 0] * v).sum(-1).clamp_min(0).sqrt()
        return v.norm(dim=-1)

    def step(self, cell, theta, h_prev, x, h, dloss_dh, noise=None):
        # the trajectory-dependent parts (D, the noise shape) from one example when all share it
        one = slice(0, 1) if self.shared_trajectory else slice(None)
        if self.needs_future_metric:
            self._update_future_metric(cell, theta[one], h_prev[one], x[one], dloss_dh[one])
        if self.forget:
            self.h_tilde.zero_()
            self.w_tilde.zero_()
        # forward-mode tangent propagation A_t h~_{t-1}, one per pair
        k = self.h_tilde.shape[0]
        propagated = torch.stack([cell.jvp_h(theta, h_prev, x, self.h_tilde[i]) for i in range(k)])
        # steps 4-5: noise nu (and its dual nu' for shaped noise), one VJP b = nu'^T B_t
        nu, nu_dual = self._noise_pair(
            cell, theta[one], h_prev[one], x[one], h.shape, h.dtype, h.device, noise
        )
        b = cell.vjp_theta(theta, h_prev, x, nu_dual)  # [N, P]
        new_w = torch.empty_like(self.w_tilde)
        new_h = torch.empty_like(self.h_tilde)
        for i, sl in enumerate(self.slices):
            w_old, b_blk = self.w_tilde[:, sl], b[:, sl]
            if self.rho == "none":
                rho0 = rho1 = torch.ones_like(w_old[:, 0])
            else:
                # rho0 balances |w~| against |A h~|, rho1 balances |b| against |nu|
                rho0 = (
                    (w_old.norm(dim=1) + self.eps) / (self._norm(propagated[i]) + self.eps)
                ).sqrt()
                rho1 = ((b_blk.norm(dim=1) + self.eps) / (self._norm(nu) + self.eps)).sqrt()
            # the new rank-one pair (its product is unbiased for A J + B)
            new_h[i] = rho0[:, None] * propagated[i] + rho1[:, None] * nu
            new_w[:, sl] = w_old / rho0[:, None] + b_blk / rho1[:, None]
        self.h_tilde, self.w_tilde = new_h, new_w
        # g_t = (dL/dh . h~) w~, per block
        grad = torch.empty_like(new_w)
        for i, sl in enumerate(self.slices):
            grad[:, sl] = (dloss_dh * new_h[i]).sum(1, keepdim=True) * new_w[:, sl]
        return grad


OUR_VARIANTS = {
    "uoro_blockwise": {"blockwise": True},  # ours
    "uoro_grad_rho": {"rho": "gradient"},  # ours
    "uoro_shaped": {"shaped": True, "rho": "gradient"},  # ours: shaped noise + gradient-aware rho
    "uoro_shaped_greedy_rho": {"shaped": True},  # ours, ablation: shaped noise, Tallec-Ollivier rho
}
