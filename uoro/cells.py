"""The recurrent cells of the experiments, their derivatives, parameter initialisation and the readout.

Notation (arXiv:1902.02405, "Differentiation through time"): ``h_t = F(h_{t-1}, x_t; theta)``, loss
``L_t = l(h_t, y_t)``, ``A_t = dF/dh_{t-1}`` ([n, n]), ``B_t = dF/dtheta`` ([n, P]). Every tensor has the
example dimension first, and each example carries its own copy of the flat recurrent parameters ``theta``
[N, P], so one call serves many noise streams on one trajectory as well as several seeds x streams.
The tanh cell is the paper's ``p_t = W a_t``, ``h_t = tanh(p_t)`` with ``a_t = [h_{t-1}; x_t; 1]``: its flat
parameter vector holds the blocks W [n, n], U [n, d], b [n] of that one matrix.
"""

from __future__ import annotations

import math

import torch
from torch.func import jvp, vjp, vmap


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
        """``A_t v`` [N, n] for a tangent ``v`` [N, n] (forward mode: UORO's tangent propagation)."""
        return jvp(lambda hh: self.forward(theta, hh, x), (h,), (tangent,))[1]

    def vjp(self, theta, h, x, cotangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u^T A_t, u^T B_t)``: [N, n], [N, P]. Row i of theta only feeds example i, so one reverse
        pass gives every example's own parameter cotangent."""
        _, pullback = vjp(lambda hh, th: self.forward(th, hh, x), h, theta)
        return pullback(cotangent)

    def vjp_theta(self, theta, h, x, cotangent: torch.Tensor) -> torch.Tensor:
        """``u^T B_t`` [N, P] (reverse mode: UORO's parameter-side projection)."""
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
    """``h_t = tanh(W h_{t-1} + U x_t + b)`` (the paper's vanilla RNN), with closed-form derivatives for speed."""

    def __init__(self, n_hidden: int, n_in: int):
        super().__init__(n_hidden, n_in)
        self.blocks = {"W": (n_hidden, n_hidden), "U": (n_hidden, n_in), "b": (n_hidden,)}

    def forward(self, theta, h, x):
        p = self.unflatten(theta)
        pre = torch.bmm(p["W"], h[:, :, None])[..., 0] + torch.bmm(p["U"], x[:, :, None])[..., 0]
        return torch.tanh(pre + p["b"])

    def _slope(self, theta, h, x):
        return 1.0 - self.forward(theta, h, x) ** 2  # tanh' at the pre-activation

    # --- the preactivation structure p_t = W a_t, a_t = [h_{t-1}; x_t; 1] (arXiv:1902.02405,
    # "Projecting in preactivation space"): dh/dp = diag(tanh'(p)) and dp/dtheta = I (x) a^T
    def dh_dp(self, theta, h, x) -> torch.Tensor:
        """The diagonal of ``dh_t/dp_t`` [N, n]."""
        return self._slope(theta, h, x)

    def inputs(self, h, x) -> torch.Tensor:
        """``a_t = [h_{t-1}; x_t; 1]`` [N, n + d + 1]."""
        return torch.cat([h, x, torch.ones_like(h[:, :1])], 1)

    def vjp_preactivation(self, h, x, cotangent: torch.Tensor) -> torch.Tensor:
        """``v^T dp_t/dtheta = vec(v a_t^T)`` [N, P] for a preactivation cotangent ``v`` [N, n]."""
        return self._outer_grad(cotangent, h, x)

    def flat(self, matrix: torch.Tensor) -> torch.Tensor:
        """The flat parameter layout of an [N, n, n + d + 1] matrix (the blocks W, U, b)."""
        n, d = self.n_hidden, self.n_in
        return torch.cat(
            [matrix[..., :n].flatten(1), matrix[..., n : n + d].flatten(1), matrix[..., -1]], 1
        )

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
    ``h' = (1 - z) c + z h`` (ours, beyond the paper's vanilla RNN); derivatives through torch.func."""

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
    (the memory knob of the variance experiments; ours), and a readout ``V`` [K, n], ``c`` [K]."""
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
    """Loss [N], ``dL/dh`` [N, n] and the exact per-example readout gradients."""
    with torch.enable_grad():
        h = h.detach().requires_grad_(True)
        vw = readout_w.detach().requires_grad_(True)
        vb = readout_b.detach().requires_grad_(True)
        loss = readout_loss(h, vw, vb, targets)
        dh, dvw, dvb = torch.autograd.grad(loss.sum(), (h, vw, vb))
    return loss.detach(), dh, dvw, dvb
