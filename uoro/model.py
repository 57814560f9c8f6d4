"""Recurrent cells and every online gradient estimator of "On the Variance of UORO" (Cooijmans & Martens 2019).

Notation (spec ``uoro.md`` §2.1): ``h_t = F(h_{t-1}, x_t; theta)``, loss ``L_t = l(h_t, y_t)``,
``A_t = dF/dh_{t-1}`` ([n, n]), ``B_t = dF/dtheta`` ([n, P]), influence matrix ``J_t = dh_t/dtheta``.
The online gradient at step t is ``g_t = (dL_t/dh_t) J_t`` (plus the exact readout gradient, handled by the
caller). Every estimator below consumes the *same* forward step ``(theta, h_{t-1}, x_t, h_t, dL_t/dh_t)`` and
returns its estimate of ``g_t`` for the recurrent parameters:

    RTRL        exact ``J_t = A_t J_{t-1} + B_t``                                      (spec eq. 2.2)
    TBPTT(k)    the same sum truncated to the last k steps (biased)                    (spec E7)
    UORO        ``J_t ~ h~ w~^T`` with random rank-one updates and the rho scaling      (spec eq. 2.3)
    UORO ρ=1    the same without the rho scaling                                        (spec E1)
    blockwise   one rank-one pair per parameter block                                   (spec E3, ours)
    grad-rho    rho chosen for the variance of the *gradient*, not of J                 (spec E4, ours)
    shaped      noise with covariance shaped by a running estimate of future loss
                gradients, undone on the parameter side so the product stays unbiased    (ours)
    REINFORCE   score function with Gaussian noise on the hidden units                  (spec §2.4.4)

Batching: every tensor has the example dimension first, and each example carries its own copy of the flat
recurrent parameters ``theta`` [N, P], so one call serves many noise streams on one trajectory (variance
experiment) as well as several seeds x parallel streams (training).
"""

from __future__ import annotations

import math
from collections import deque

import torch
from torch.func import jvp, vjp, vmap

# ---------------------------------------------------------------------------------------------------- cells


class Cell:
    """A recurrent transition ``h' = F(theta, h, x)`` with per-example flat parameters ``theta`` [N, P].

    Subclasses define ``blocks`` (name -> shape) and ``forward``; the derivatives default to torch.func
    (forward mode for ``A v``, reverse mode for ``u^T B``) and may be overridden with closed forms.
    """

    blocks: dict[str, tuple[int, ...]]

    def __init__(self, n_hidden: int, n_in: int):
        if n_hidden < 1 or n_in < 1:
            raise ValueError(f"n_hidden and n_in must be >= 1, got {n_hidden} and {n_in}")
        self.n_hidden = n_hidden
        self.n_in = n_in

    @property
    def n_params(self) -> int:
        return sum(math.prod(shape) for shape in self.blocks.values())

    def block_slices(self) -> dict[str, slice]:
        """Where each parameter block lives in the flat vector."""
        slices, start = {}, 0
        for name, shape in self.blocks.items():
            size = math.prod(shape)
            slices[name] = slice(start, start + size)
            start += size
        return slices

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """[N, P] -> {name: [N, *shape]}."""
        if theta.dim() != 2 or theta.shape[1] != self.n_params:
            raise ValueError(f"theta must be [N, {self.n_params}], got {list(theta.shape)}")
        return {
            name: theta[:, sl].reshape(theta.shape[0], *self.blocks[name])
            for name, sl in self.block_slices().items()
        }

    def check_inputs(self, theta: torch.Tensor, h: torch.Tensor, x: torch.Tensor) -> None:
        n = theta.shape[0]
        if h.shape != (n, self.n_hidden):
            raise ValueError(f"h must be [{n}, {self.n_hidden}], got {list(h.shape)}")
        if x.shape != (n, self.n_in):
            raise ValueError(f"x must be [{n}, {self.n_in}], got {list(x.shape)}")

    def forward(self, theta: torch.Tensor, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, theta: torch.Tensor, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.check_inputs(theta, h, x)
        return self.forward(theta, h, x)

    # --- derivatives of one step: A_t v (forward mode) and u^T B_t, u^T A_t (reverse mode)
    def jvp_h(self, theta, h, x, tangent: torch.Tensor) -> torch.Tensor:
        """``A_t v`` [N, n] for a tangent ``v`` [N, n] (forward-mode; spec §2.3 step 3)."""
        return jvp(lambda hh: self.forward(theta, hh, x), (h,), (tangent,))[1]

    def vjp(self, theta, h, x, cotangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u^T A_t, u^T B_t)``: [N, n], [N, P]. Row i of theta only feeds example i, so one reverse
        pass gives every example's own parameter cotangent."""
        _, pullback = vjp(lambda hh, th: self.forward(th, hh, x), h, theta)
        return pullback(cotangent)

    def vjp_theta(self, theta, h, x, cotangent: torch.Tensor) -> torch.Tensor:
        """``u^T B_t`` [N, P] (spec §2.3 step 5)."""
        _, pullback = vjp(lambda th: self.forward(th, h, x), theta)
        return pullback(cotangent)[0]

    def jacobian_h(self, theta, h, x) -> torch.Tensor:
        """``A_t`` [N, n, n] by n forward-mode passes."""
        eye = torch.eye(self.n_hidden, dtype=h.dtype, device=h.device)
        basis = eye[:, None, :].expand(self.n_hidden, h.shape[0], self.n_hidden)
        columns = vmap(lambda v: self.jvp_h(theta, h, x, v))(basis)  # [n, N, n]: column j is A e_j
        return columns.permute(1, 2, 0)

    def jacobians(self, theta, h, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``A_t`` [N, n, n] and ``B_t`` [N, n, P], for RTRL."""
        eye = torch.eye(self.n_hidden, dtype=h.dtype, device=h.device)
        basis = eye[:, None, :].expand(self.n_hidden, h.shape[0], self.n_hidden)
        a_rows, b_rows = vmap(lambda u: self.vjp(theta, h, x, u))(basis)  # [n, N, n], [n, N, P]
        return a_rows.transpose(0, 1), b_rows.transpose(0, 1)


class TanhRNNCell(Cell):
    """``h_t = tanh(W h_{t-1} + U x_t + b)`` (spec §3), with closed-form derivatives for speed."""

    def __init__(self, n_hidden: int, n_in: int):
        super().__init__(n_hidden, n_in)
        self.blocks = {"W": (n_hidden, n_hidden), "U": (n_hidden, n_in), "b": (n_hidden,)}

    def forward(self, theta, h, x):
        p = self.unflatten(theta)
        pre = torch.bmm(p["W"], h[:, :, None])[..., 0] + torch.bmm(p["U"], x[:, :, None])[..., 0]
        return torch.tanh(pre + p["b"])

    def _slope(self, theta, h, x):
        return 1.0 - self.forward(theta, h, x) ** 2  # tanh' at the pre-activation

    def jvp_h(self, theta, h, x, tangent):
        w = self.unflatten(theta)["W"]
        return self._slope(theta, h, x) * torch.bmm(w, tangent[:, :, None])[..., 0]

    def _outer_grad(self, u, h, x):
        # u^T B for B = dF/d(W, U, b): outer(u, h), outer(u, x), u
        return torch.cat(
            [
                (u[:, :, None] * h[:, None, :]).flatten(1),
                (u[:, :, None] * x[:, None, :]).flatten(1),
                u,
            ],
            1,
        )

    def vjp(self, theta, h, x, cotangent):
        u = cotangent * self._slope(theta, h, x)
        w = self.unflatten(theta)["W"]
        return torch.bmm(u[:, None, :], w)[:, 0], self._outer_grad(u, h, x)

    def vjp_theta(self, theta, h, x, cotangent):
        return self._outer_grad(cotangent * self._slope(theta, h, x), h, x)

    def jacobian_h(self, theta, h, x):
        return self._slope(theta, h, x)[:, :, None] * self.unflatten(theta)["W"]

    def jacobians(self, theta, h, x):
        slope = self._slope(theta, h, x)
        a = slope[:, :, None] * self.unflatten(theta)["W"]
        eye = torch.eye(self.n_hidden, dtype=h.dtype, device=h.device)
        # dF_i/dW_jk = slope_i [i=j] h_k, and likewise for U and b
        inputs = torch.cat([h, x, torch.ones_like(h[:, :1])], 1)  # [N, n + d + 1]
        per_unit = slope[:, :, None, None] * eye[None, :, :, None] * inputs[:, None, None, :]
        n = self.n_hidden
        w_part = per_unit[..., :n].flatten(2)
        u_part = per_unit[..., n : n + self.n_in].flatten(2)
        b_part = per_unit[..., -1]
        return a, torch.cat([w_part, u_part, b_part], 2)


class GRUCell(Cell):
    """``z = s(Wz h + Uz x + bz)``, ``r = s(Wr h + Ur x + br)``, ``c = tanh(Wc (r*h) + Uc x + bc)``,
    ``h' = (1 - z) c + z h`` (spec §3 "optionally a small GRU"); derivatives through torch.func."""

    def __init__(self, n_hidden: int, n_in: int):
        super().__init__(n_hidden, n_in)
        self.blocks = {}
        for gate in ("z", "r", "c"):
            self.blocks[f"W{gate}"] = (n_hidden, n_hidden)
            self.blocks[f"U{gate}"] = (n_hidden, n_in)
            self.blocks[f"b{gate}"] = (n_hidden,)

    def forward(self, theta, h, x):
        p = self.unflatten(theta)

        def affine(gate, state):
            return (
                torch.einsum("nij,nj->ni", p[f"W{gate}"], state)
                + torch.einsum("nij,nj->ni", p[f"U{gate}"], x)
                + p[f"b{gate}"]
            )

        z = torch.sigmoid(affine("z", h))
        r = torch.sigmoid(affine("r", h))
        candidate = torch.tanh(affine("c", r * h))
        return (1 - z) * candidate + z * h


CELLS = {"tanh": TanhRNNCell, "gru": GRUCell}


def make_cell(kind: str, n_hidden: int, n_in: int) -> Cell:
    if kind not in CELLS:
        raise ValueError(f"unknown cell '{kind}' (expected one of {sorted(CELLS)})")
    return CELLS[kind](n_hidden, n_in)


def init_params(
    cell: Cell, n_out: int, spectral_radius: float, generator: torch.Generator, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat recurrent parameters [P] with every recurrent matrix rescaled to ``spectral_radius``
    (the memory knob of the variance experiment, spec §3), and a readout ``V`` [K, n], ``c`` [K]."""
    if spectral_radius <= 0:
        raise ValueError(f"spectral_radius must be > 0, got {spectral_radius}")
    n, d = cell.n_hidden, cell.n_in
    parts = []
    for name, shape in cell.blocks.items():
        if name.startswith("W"):
            w = torch.randn(shape, generator=generator, dtype=torch.float64) / math.sqrt(n)
            w = w * (spectral_radius / torch.linalg.eigvals(w).abs().max())
        elif name.startswith("U"):
            w = torch.randn(shape, generator=generator, dtype=torch.float64) / math.sqrt(d)
        else:
            w = torch.zeros(shape, dtype=torch.float64)
        parts.append(w.flatten())
    theta = torch.cat(parts).to(dtype)
    readout_w = (torch.randn(n_out, n, generator=generator, dtype=torch.float64) / math.sqrt(n)).to(
        dtype
    )
    return theta, readout_w, torch.zeros(n_out, dtype=dtype)


def readout_loss(
    h: torch.Tensor, readout_w: torch.Tensor, readout_b: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Per-example cross-entropy (nats) of a softmax readout: h [N, n], V [N, K, n], c [N, K], y [N]."""
    logits = torch.bmm(readout_w, h[:, :, None])[..., 0] + readout_b
    return torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def loss_and_grads(h, readout_w, readout_b, targets):
    """Loss [N], ``dL/dh`` [N, n] and the exact per-example readout gradients (spec §2.1)."""
    with torch.enable_grad():
        h = h.detach().requires_grad_(True)
        vw = readout_w.detach().requires_grad_(True)
        vb = readout_b.detach().requires_grad_(True)
        loss = readout_loss(h, vw, vb, targets)
        dh, dvw, dvb = torch.autograd.grad(loss.sum(), (h, vw, vb))
    return loss.detach(), dh, dvw, dvb


# ---------------------------------------------------------------------------------------------- estimators


class Estimator:
    """Online estimate of ``g_t = (dL_t/dh_t) J_t`` for the recurrent parameters; state per example."""

    name = "estimator"

    def reset(self, cell: Cell, n_examples: int, dtype=torch.float64, device=None) -> None:
        raise NotImplementedError

    def step(self, cell, theta, h_prev, x, h, dloss_dh) -> torch.Tensor:
        """One time step; returns the gradient estimate [N, P]."""
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


class RTRL(Estimator):
    """Exact forward-mode gradient: ``J_t = A_t J_{t-1} + B_t``, ``J_0 = 0`` (spec §2.2)."""

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
    """Truncated BPTT(k) run online: ``g_t = dL_t/dh_t sum_{s>t-k} A_{t..s+1} B_s`` (spec E7, biased).

    Keeps the last k steps' (theta, h_{s-1}, x_s) and back-propagates through them at every step."""

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


def _group_mean(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Mean over consecutive equal groups of the first dimension: [N, ...] -> [groups, ...]."""
    return t.reshape(groups, t.shape[0] // groups, *t.shape[1:]).mean(1)


def _per_example(t: torch.Tensor, n: int) -> torch.Tensor:
    """Each group's value repeated for its examples: [groups, ...] -> [n, ...]."""
    return t if t.shape[0] == n else t.repeat_interleave(n // t.shape[0], 0)


def rademacher(shape, generator: torch.Generator, dtype, device=None) -> torch.Tensor:
    """i.i.d. +-1 entries: E[nu nu^T] = I with the smallest fourth moment (spec §2.3 step 4)."""
    bits = torch.randint(0, 2, shape, generator=generator, device=generator.device)
    return (2 * bits - 1).to(dtype=dtype, device=device)


class UORO(Estimator):
    """Unbiased Online Recurrent Optimization (Tallec & Ollivier 2018; spec §2.3) and its variants.

    ``J_t ~ h~_t w~_t^T`` with ``h~_t = rho0 A_t h~_{t-1} + rho1 nu_t`` and
    ``w~_t = w~_{t-1} / rho0 + (nu'_t)^T B_t / rho1``, where ``E[nu nu'^T] = I`` makes the product unbiased
    (the rhos cancel in the expectation of every term). The options:

    rho           "greedy": Tallec-Ollivier ``rho0 = sqrt(|w~| / |A h~|)``, ``rho1 = sqrt(|b| / |nu|)``, the
                  one-step minimiser of the second moment of the new rank-one product (spec §2.4.2);
                  "none": rho = 1 (spec E1); "gradient": the same balance measured in the metric of a running
                  estimate D of future loss gradients, ``|v|_D = sqrt(v^T D v)`` (spec E4, ours).
    noise         "rademacher" or "gaussian" (or pass ``noise`` to ``step`` to drive it externally).
    shaped        draw ``nu = M xi`` and ``nu' = M^{-T} xi`` with ``M M^T = Sigma``, where
                  ``Sigma = D^{-1} # G`` (matrix geometric mean) minimises ``tr(Sigma D) tr(Sigma^{-1} G)``,
                  the variance of every (spatial and cross-time) term for future-gradient second moment D
                  and ``G = B_t B_t^T`` (ours; our derivation in the README).
    forget        reset h~, w~ every step: an unbiased rank-one estimate of TBPTT(1) (a biased-mean control).
    blockwise     one (h~, w~) pair per parameter block, all driven by the same nu (spec E3).
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
        # spec §2.3 step 3: forward-mode tangent propagation A_t h~_{t-1}, one per pair
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
                # step 6: rho0 balances |w~| against |A h~|, rho1 balances |b| against |nu|
                rho0 = (
                    (w_old.norm(dim=1) + self.eps) / (self._norm(propagated[i]) + self.eps)
                ).sqrt()
                rho1 = ((b_blk.norm(dim=1) + self.eps) / (self._norm(nu) + self.eps)).sqrt()
            # step 7: the new rank-one pair (its product is unbiased for A J + B)
            new_h[i] = rho0[:, None] * propagated[i] + rho1[:, None] * nu
            new_w[:, sl] = w_old / rho0[:, None] + b_blk / rho1[:, None]
        self.h_tilde, self.w_tilde = new_h, new_w
        # step 2: g_t = (dL/dh . h~) w~, per block
        grad = torch.empty_like(new_w)
        for i, sl in enumerate(self.slices):
            grad[:, sl] = (dloss_dh * new_h[i]).sum(1, keepdim=True) * new_w[:, sl]
        return grad


UORO_VARIANTS = {
    "uoro": {},  # spec E2: Tallec-Ollivier rho, Rademacher noise
    "uoro_no_rho": {"rho": "none"},  # spec E1
    "uoro_blockwise": {"blockwise": True},  # spec E3
    "uoro_grad_rho": {"rho": "gradient"},  # spec E4
    "uoro_shaped": {"shaped": True, "rho": "gradient"},  # ours: shaped noise + gradient-aware rho
    "uoro_shaped_greedy_rho": {"shaped": True},  # ours, ablation: shaped noise, Tallec-Ollivier rho
}
ESTIMATOR_KINDS = ("rtrl", "tbptt", *UORO_VARIANTS)


def make_estimator(
    kind: str,
    generator: torch.Generator | None = None,
    truncation: int = 1,
    **uoro_options,
) -> Estimator:
    """Build an estimator by the name used in configs and results keys; ``uoro_options`` are passed to
    :class:`UORO` (eps, future_decay, future_horizon, shaping_floor, forget, shared_trajectory)."""
    if kind == "rtrl":
        return RTRL()
    if kind == "tbptt":
        return TBPTT(truncation)
    if kind not in UORO_VARIANTS:
        raise ValueError(
            f"unknown estimator '{kind}' (expected one of {', '.join(ESTIMATOR_KINDS)})"
        )
    if generator is None:
        raise ValueError(f"estimator '{kind}' is stochastic and needs a torch.Generator")
    estimator = UORO(generator, **{**uoro_options, **UORO_VARIANTS[kind]})
    estimator.name = kind
    return estimator


# ----------------------------------------------------------------------------------------------- REINFORCE


class Reinforce:
    """Score-function gradient with hidden noise ``h_s = F(h_{s-1}) + sigma eps_s`` (spec §2.4.4):

        g_t = (L_t - L_t^0) / sigma * sum_{s <= t} eps_s^T B_s,

    with the noise-free loss ``L_t^0`` as baseline and ``B_s`` at the noisy states. As sigma -> 0 it becomes
    UORO with rho = 1 driven by the same Gaussian noise. Runs its own (noisy) trajectory, one per example.
    """

    def __init__(self, sigma: float):
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = sigma
        self.name = f"reinforce_{sigma:g}"

    def reset(self, cell, h0: torch.Tensor) -> None:
        self.h = h0.clone()
        self.score = torch.zeros(h0.shape[0], cell.n_params, dtype=h0.dtype, device=h0.device)

    def step(self, cell, theta, x, eps, readout_w, readout_b, targets, clean_loss) -> torch.Tensor:
        h_prev = self.h
        self.h = cell(theta, h_prev, x) + self.sigma * eps
        # grad log N(h_s; F(h_{s-1}), sigma^2) = eps^T B / sigma; the 1/sigma goes with the loss difference
        self.score = self.score + cell.vjp_theta(theta, h_prev, x, eps)
        noisy_loss = readout_loss(self.h, readout_w, readout_b, targets)
        return ((noisy_loss - clean_loss) / self.sigma)[:, None] * self.score
