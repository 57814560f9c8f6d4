"""UORO and its generalisation by Cooijmans & Martens, "On the Variance of Unbiased Online Recurrent
Optimization" (arXiv:1902.02405). Section names below are the paper's topics as its first author summarises
them (we have not read the PDF's numbering): "Theoretical framework", "Toward improved variance reduction",
"Projecting in preactivation space", "A link to REINFORCE".

The paper's two recursions ("Theoretical framework"). RTRL carries the influence matrix
``J_t = dh_t/dtheta = A_t J_{t-1} + dh_t/dtheta_t`` with ``A_t = dh_t/dh_{t-1}``. UORO keeps a random rank-one
``J_t ~ h~_t w~_t^T`` instead: project at a cut vertex ``z_t`` between ``theta_t`` and ``h_t``, with noise
``u_t`` (``E[u u^T] = I``) transformed by an invertible ``Q_t``,

    h~_t   = A_t h~_{t-1} + (dh_t/dz_t) Q_t u_t
    w~_t^T = w~_{t-1}^T   + u_t^T Q_t^{-1} (dz_t/dtheta_t)
    g_t    = (dL_t/dh_t) h~_t w~_t^T          unbiased for dL_t/dtheta for any Q_t independent of u_t.

``z = h`` is vanilla UORO ("state space"); ``z = p = W a`` ("preactivation space") has the structure
``dz/dtheta = I (x) a^T``. ``Q_t = alpha_t Q0`` ("Toward improved variance reduction"): a scalar schedule and a
constant matrix. Tallec & Ollivier's iterative rescaling ``h~ <- gamma A h~ + beta (.)``,
``w~ <- w~ / gamma + (.) / beta`` is the same estimator with ``alpha_t = beta_t / prod_{k<=t} gamma_k``, chosen
greedily to minimise the error of one step's rank-one approximation.

Every estimator consumes the same forward step ``(theta, h_{t-1}, x_t, h_t, dL_t/dh_t)`` and returns its
estimate of ``g_t`` [N, P] for the recurrent parameters (the readout's gradient is exact, handled by the
caller); the example dimension N comes first (noise streams of one trajectory, or seeds x streams).
"""

from __future__ import annotations

from collections import deque

import torch

ALPHAS = ("rescaled", "one", "schedule")


def uoro_recursion(h_tilde, w_tilde, propagated, h_noise, w_noise, gamma, beta):
    """The paper's two recursions with UORO's rescaling ("Theoretical framework"):
    ``h~_t = gamma A_t h~_{t-1} + beta (dh/dz) Q u`` and ``w~_t = w~_{t-1} / gamma + u^T Q^{-1} (dz/dtheta) / beta``;
    ``propagated = A_t h~_{t-1}``, ``h_noise = (dh/dz) Q0 u``, ``w_noise = u^T Q0^{-1} dz/dtheta``."""
    h_tilde = gamma[:, None] * propagated + beta[:, None] * h_noise
    w_tilde = w_tilde / gamma[:, None] + w_noise / beta[:, None]
    return h_tilde, w_tilde


def tallec_ollivier(w_norm, propagated_norm, w_noise_norm, h_noise_norm, eps):
    """UORO's greedy rescaling: ``gamma = sqrt(|w~| / |A h~|)``, ``beta = sqrt(|w noise| / |h noise|)``."""
    gamma = ((w_norm + eps) / (propagated_norm + eps)).sqrt()
    beta = ((w_noise_norm + eps) / (h_noise_norm + eps)).sqrt()
    return gamma, beta


def rademacher(shape, generator: torch.Generator, dtype, device=None) -> torch.Tensor:
    """i.i.d. +-1 entries: ``E[u u^T] = I`` with the smallest fourth moment."""
    bits = torch.randint(0, 2, shape, generator=generator, device=generator.device)
    return (2 * bits - 1).to(dtype=dtype, device=device)


class Estimator:
    """Online estimate of ``g_t = (dL_t/dh_t) J_t`` for the recurrent parameters; state per example."""

    name = "estimator"

    def reset(self, cell, n_examples: int, dtype=torch.float64, device=None) -> None:
        raise NotImplementedError

    def step(self, cell, theta, h_prev, x, h, dloss_dh) -> torch.Tensor:
        raise NotImplementedError

    # the running state (tensors, a window of past steps, the noise generator) for checkpoints
    def state_dict(self) -> dict:
        state = {k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor | int | deque)}
        state = {k: (list(v) if isinstance(v, deque) else v) for k, v in state.items()}
        if isinstance(getattr(self, "generator", None), torch.Generator):
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            if key == "generator":
                self.generator.set_state(value)
            elif isinstance(getattr(self, key, None), deque):
                getattr(self, key).extend(value)
            else:
                setattr(self, key, value)


class UORO(Estimator):
    """The generalised estimator: ``space`` "state" | "preactivation" (the cut vertex z), ``q0`` (None = I, or an
    invertible [n, n] matrix), ``alpha`` "rescaled" (Tallec-Ollivier), "one", or "schedule" (a given
    ``alpha_t`` per step, ``schedule`` [T]). Vanilla UORO is (state, I, rescaled)."""

    def __init__(self, generator, space="state", q0=None, alpha="rescaled", schedule=None,
                 noise="rademacher", eps=1e-7):  # fmt: skip
        if space not in ("state", "preactivation"):
            raise ValueError(f"space must be 'state' or 'preactivation', got '{space}'")
        if alpha not in ALPHAS or (alpha == "schedule") != (schedule is not None):
            raise ValueError(f"alpha must be one of {ALPHAS} (a schedule exactly with 'schedule')")
        if noise not in ("rademacher", "gaussian"):
            raise ValueError(f"noise must be 'rademacher' or 'gaussian', got '{noise}'")
        self.generator, self.space, self.noise, self.eps = generator, space, noise, eps
        self.alpha, self.schedule = alpha, schedule
        self.q0 = q0
        self.q0_inv_t = None if q0 is None else torch.linalg.inv(q0).T.contiguous()
        self.name = "uoro"

    def reset(self, cell, n_examples, dtype=torch.float64, device=None):
        if self.space == "preactivation" and not hasattr(cell, "dh_dp"):
            raise ValueError(f"preactivation space needs a p = W a cell, not {type(cell).__name__}")
        self.h_tilde = torch.zeros(n_examples, cell.n_hidden, dtype=dtype, device=device)
        self.w_tilde = torch.zeros(n_examples, cell.n_params, dtype=dtype, device=device)
        self.t = 0

    def draw(self, shape, dtype, device):
        if self.noise == "rademacher":
            return rademacher(shape, self.generator, dtype, device)
        return torch.randn(shape, generator=self.generator, dtype=dtype).to(device)

    def project(self, cell, theta, h_prev, x, u):
        """``(dh/dz) Q0 u`` [N, n] and ``u^T Q0^{-1} dz/dtheta`` [N, P] at the chosen cut vertex."""
        q_u = u if self.q0 is None else u @ self.q0.T
        q_inv_u = u if self.q0 is None else u @ self.q0_inv_t.T
        if self.space == "state":  # dh/dz = I, dz/dtheta = dh/dtheta_t
            return q_u, cell.vjp_theta(theta, h_prev, x, q_inv_u)
        return cell.dh_dp(theta, h_prev, x) * q_u, cell.vjp_preactivation(h_prev, x, q_inv_u)

    def step(self, cell, theta, h_prev, x, h, dloss_dh, noise=None):
        propagated = cell.jvp_h(theta, h_prev, x, self.h_tilde)  # A_t h~_{t-1}, forward mode
        u = self.draw(h.shape, h.dtype, h.device) if noise is None else noise
        h_noise, w_noise = self.project(cell, theta, h_prev, x, u)
        if self.alpha == "rescaled":
            gamma, beta = tallec_ollivier(self.w_tilde.norm(dim=1), propagated.norm(dim=1),
                                          w_noise.norm(dim=1), h_noise.norm(dim=1), self.eps)  # fmt: skip
        else:  # alpha_t enters as beta_t with gamma_t = 1
            gamma = torch.ones_like(propagated[:, 0])
            beta = gamma if self.alpha == "one" else gamma * self.schedule[self.t]
        self.h_tilde, self.w_tilde = uoro_recursion(
            self.h_tilde, self.w_tilde, propagated, h_noise, w_noise, gamma, beta
        )
        self.t += 1
        return (dloss_dh * self.h_tilde).sum(1, keepdim=True) * self.w_tilde  # g_t


class NoProjectionUORO(Estimator):
    """Preactivation-space UORO without spatial projection ("Projecting in preactivation space"; as in
    Mujika et al. 2018): ``dh_t/dtheta_t = (dh_t/dp_t)(I (x) a_t^T)`` is already a Kronecker product, so only
    the time steps are tied by random signs ``tau_t``:

        H~_t = gamma A_t H~_{t-1} + beta tau_t dh_t/dp_t        an [n, n] matrix (hidden x preactivation)
        a~_t = a~_{t-1} / gamma + tau_t a_t / beta
        g_t  = vec((dL_t/dh_t H~_t)^T a~_t^T)

    O(n^3) per step instead of UORO's O(n^2); ``alpha`` as in :class:`UORO`."""

    def __init__(self, generator, alpha="rescaled", schedule=None, eps=1e-7):
        if alpha not in ALPHAS or (alpha == "schedule") != (schedule is not None):
            raise ValueError(f"alpha must be one of {ALPHAS} (a schedule exactly with 'schedule')")
        self.generator, self.alpha, self.schedule, self.eps = generator, alpha, schedule, eps
        self.name = "uoro_noproj"

    def reset(self, cell, n_examples, dtype=torch.float64, device=None):
        if not hasattr(cell, "dh_dp"):
            raise ValueError(
                f"the no-projection estimator needs a p = W a cell, not {type(cell).__name__}"
            )
        n, k = cell.n_hidden, cell.n_hidden + cell.n_in + 1
        self.h_tilde = torch.zeros(n_examples, n, n, dtype=dtype, device=device)
        self.a_tilde = torch.zeros(n_examples, k, dtype=dtype, device=device)
        self.t = 0

    def step(self, cell, theta, h_prev, x, h, dloss_dh, noise=None):
        slope = cell.dh_dp(theta, h_prev, x)  # the diagonal of dh_t/dp_t
        w = cell.unflatten(theta)["W"]
        propagated = slope[:, :, None] * torch.bmm(w, self.h_tilde)  # A_t H~_{t-1}
        tau = rademacher(h.shape[:1], self.generator, h.dtype, h.device) if noise is None else noise
        inputs = cell.inputs(h_prev, x)
        h_noise = torch.diag_embed(tau[:, None] * slope)
        w_noise = tau[:, None] * inputs
        if self.alpha == "rescaled":
            gamma, beta = tallec_ollivier(self.a_tilde.norm(dim=1), propagated.flatten(1).norm(dim=1),
                                          w_noise.norm(dim=1), h_noise.flatten(1).norm(dim=1), self.eps)  # fmt: skip
        else:
            gamma = torch.ones_like(tau)
            beta = gamma if self.alpha == "one" else gamma * self.schedule[self.t]
        self.h_tilde = gamma[:, None, None] * propagated + beta[:, None, None] * h_noise
        self.a_tilde = self.a_tilde / gamma[:, None] + w_noise / beta[:, None]
        self.t += 1
        dl_dp = torch.bmm(dloss_dh[:, None, :], self.h_tilde)[:, 0]  # dL_t/dh_t H~_t
        return cell.flat(dl_dp[:, :, None] * self.a_tilde[:, None, :])


class Reinforce:
    """REINFORCE on the noisy RNN ``h_t = F(h~_{t-1}, x_t)``, ``h~_t = h_t + sigma Q0 u_t``, ``u ~ N(0, I)``
    ("A link to REINFORCE"): the score ``w-_t = w-_{t-1} + u_t^T Q0^{-1} dh_t/dtheta_t / sigma`` (Jacobians at the
    noisy states) times the loss minus a baseline (the noise-free loss, or 0). As sigma -> 0 it is UORO with the
    same Q, unrescaled; without the baseline a zero-mean term of variance ~ 1/sigma^2 remains."""

    def __init__(self, sigma: float, q0=None, baseline: bool = True):
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma, self.baseline = sigma, baseline
        self.q0 = q0
        self.q0_inv_t = None if q0 is None else torch.linalg.inv(q0).T.contiguous()
        self.name = f"reinforce_{sigma:g}"

    def reset(self, cell, h0: torch.Tensor) -> None:
        self.h = h0.clone()
        self.score = torch.zeros(h0.shape[0], cell.n_params, dtype=h0.dtype, device=h0.device)

    def step(self, cell, theta, x, u, loss_fn, clean_loss) -> torch.Tensor:
        h_prev = self.h
        q_u = u if self.q0 is None else u @ self.q0.T
        q_inv_u = u if self.q0 is None else u @ self.q0_inv_t.T
        self.h = cell(theta, h_prev, x) + self.sigma * q_u
        # the 1/sigma of the score goes with the loss difference
        self.score = self.score + cell.vjp_theta(theta, h_prev, x, q_inv_u)
        loss = loss_fn(self.h)
        advantage = loss - clean_loss if self.baseline else loss
        return (advantage / self.sigma)[:, None] * self.score


class RTRL(Estimator):
    """Exact forward-mode gradient: ``J_t = A_t J_{t-1} + dh_t/dtheta_t``, ``J_0 = 0``."""

    name = "rtrl"

    def reset(self, cell, n_examples, dtype=torch.float64, device=None):
        self.influence = torch.zeros(
            n_examples, cell.n_hidden, cell.n_params, dtype=dtype, device=device
        )

    def step(self, cell, theta, h_prev, x, h, dloss_dh):
        a, b = cell.jacobians(theta, h_prev, x)
        self.influence = torch.bmm(a, self.influence) + b
        return torch.bmm(dloss_dh[:, None, :], self.influence)[:, 0]


class TBPTT(Estimator):
    """Truncated BPTT(k) run online: ``g_t = dL_t/dh_t sum_{s>t-k} A_{t..s+1} dh_s/dtheta_s`` (biased; ours as a
    baseline). Keeps the last k steps' (theta, h_{s-1}, x_s) and back-propagates through them every step."""

    def __init__(self, truncation: int):
        if truncation < 1:
            raise ValueError(f"truncation must be >= 1, got {truncation}")
        self.truncation = truncation
        self.name = f"tbptt{truncation}"

    def reset(self, cell, n_examples, dtype=torch.float64, device=None):
        self.window = deque(maxlen=self.truncation)

    def step(self, cell, theta, h_prev, x, h, dloss_dh):
        self.window.append((theta, h_prev, x))
        grad = torch.zeros_like(theta)
        cotangent = dloss_dh
        for theta_s, h_s, x_s in reversed(self.window):
            cot_h, cot_theta = cell.vjp(theta_s, h_s, x_s, cotangent)
            grad = grad + cot_theta
            cotangent = cot_h
        return grad
