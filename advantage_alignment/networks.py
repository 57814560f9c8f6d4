"""Policies, critics and the buffer of past agents (Sec. 5 of arXiv 2406.14662 and the authors' code).

- IPD: a tabular memory-1 policy (5 logits, P(D | start, CC, CD, DC, DD)) and the EXACT value of each
  memory-1 state from the Markov chain of the two policies as the critic.
- Coin Game: a GRU policy over the 4 moves and a separate GRU critic.
- Negotiation: a GRU policy with a Beta distribution per item, scaled to proposals in [0, 5] (a Beta
  stays off the bounds where a tanh-squashed Gaussian saturates), and a separate GRU critic.

Every recurrent net runs on its own parameters or on a dict of parameters stacked along a leading K
dimension (K past agents from the buffer, each playing one slice of the batch): a batch of opponents
is one batched matrix product, not a Python loop over opponents.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.envs.matrix_games import markov_chain, payoffs

Params = dict[str, Tensor]


def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x W^T + b; W [out, in] with x [..., in], or W [K, out, in] with x [K, N, in]."""
    return torch.matmul(x, weight.transpose(-1, -2)) + bias.unsqueeze(-2)


class RecurrentNet(nn.Module):
    """obs -> Linear -> ReLU -> GRU cell -> Linear head. The GRU cell is written out (PyTorch's gate
    equations) so that it also runs on stacked parameters [K, ...]."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.Linear(in_dim, hidden)
        self.input_gates = nn.Linear(hidden, 3 * hidden)  # reset, update, candidate
        self.hidden_gates = nn.Linear(hidden, 3 * hidden)
        self.head = nn.Linear(hidden, out_dim)

    def params(self) -> Params:
        """Own parameters stacked as K = 1 (a view: gradients flow)."""
        return {name: value.unsqueeze(0) for name, value in self.named_parameters()}

    def initial_carry(self, k: int, n: int, like: Tensor) -> Tensor:
        return like.new_zeros(k, n, self.hidden)

    def step(self, x: Tensor, carry: Tensor, p: Params) -> tuple[Tensor, Tensor]:
        """One time step: x [K, N, D], carry [K, N, H] -> (out [K, N, out], carry)."""
        x = torch.relu(linear(x, p["encoder.weight"], p["encoder.bias"]))
        gates_x = linear(x, p["input_gates.weight"], p["input_gates.bias"])
        carry = self._gru(gates_x, carry, p)
        return linear(carry, p["head.weight"], p["head.bias"]), carry

    def _gru(self, gates_x: Tensor, carry: Tensor, p: Params) -> Tensor:
        xr, xz, xn = gates_x.chunk(3, -1)
        hr, hz, hn = linear(carry, p["hidden_gates.weight"], p["hidden_gates.bias"]).chunk(3, -1)
        reset = torch.sigmoid(xr + hr)
        update = torch.sigmoid(xz + hz)
        candidate = torch.tanh(xn + reset * hn)
        return (1 - update) * candidate + update * carry

    def sequence(self, x: Tensor, p: Params | None = None) -> Tensor:
        """Whole episodes from a zero carry: x [K, N, T, D] -> out [K, N, T, out]. The layers that do
        not see the carry run once on all T steps; only the recurrence loops over time."""
        p = self.params() if p is None else p
        k, n, steps, _ = x.shape
        flat = x.reshape(k, n * steps, -1)
        h = torch.relu(linear(flat, p["encoder.weight"], p["encoder.bias"]))
        gates_x = linear(h, p["input_gates.weight"], p["input_gates.bias"]).view(k, n, steps, -1)
        carry = self.initial_carry(k, n, x)
        carries = []
        for gx in gates_x.unbind(2):
            carry = self._gru(gx, carry, p)
            carries.append(carry)
        hidden = torch.stack(carries, 2).reshape(k, n * steps, -1)
        return linear(hidden, p["head.weight"], p["head.bias"]).view(k, n, steps, -1)


class Agent(nn.Module):
    """A policy and its own critic (separate networks, as the authors' Coin Game and negotiation
    agents). kind = "categorical" (Coin Game moves) or "beta" (negotiation proposals)."""

    def __init__(self, kind: str, obs_dim: int, action_dim: int, hidden: int, critic_hidden: int):
        super().__init__()
        if kind not in ("categorical", "beta"):
            raise ValueError(f"policy kind must be categorical or beta, got {kind!r}")
        self.kind = kind
        out = action_dim if kind == "categorical" else 2 * action_dim
        self.actor = RecurrentNet(obs_dim, hidden, out)
        self.critic = RecurrentNet(obs_dim + 1, critic_hidden, 1)  # + t/T: finite episodes

    def distribution(self, out: Tensor) -> torch.distributions.Distribution:
        if self.kind == "categorical":
            return torch.distributions.Categorical(logits=out, validate_args=False)
        # Beta(a, b) with a, b >= 1: unimodal, never piles up at the bounds of [0, 5].
        conc = 1.0 + nn.functional.softplus(out)
        a, b = conc.chunk(2, -1)
        beta = torch.distributions.Beta(a, b, validate_args=False)
        return torch.distributions.Independent(beta, 1, validate_args=False)


def to_env_action(kind: str, sample: Tensor) -> Tensor:
    """Categorical samples are the moves; Beta samples in (0, 1) are proposals in [0, 5]."""
    return sample if kind == "categorical" else 5.0 * sample


def clamp_beta_sample(sample: Tensor, eps: float = 1e-5) -> Tensor:
    """Beta samples can round to exactly 0 or 1 in float32, where log_prob is infinite."""
    return sample.clamp(eps, 1 - eps)


def split_params(stacked: Params, prefix: str) -> Params:
    """The entries under `prefix.` (actor or critic) with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in stacked.items() if k.startswith(prefix + ".")}


def current_params(agent: nn.Module) -> Params:
    """The agent itself as a stack of one, detached: the self-play opponent."""
    return {name: value.detach().unsqueeze(0) for name, value in agent.named_parameters()}


# ------------------------------------------------------------------------------------------- IPD
class TabularIPDPolicy(nn.Module):
    """Memory-1 IPD policy: one logit of DEFECTING per state (start, CC, CD, DC, DD), zero init."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(5))

    def cooperation_probabilities(self) -> Tensor:
        return torch.sigmoid(-self.logits)

    def log_prob(self, states: Tensor, actions: Tensor) -> Tensor:
        """log pi(a | s) for states [...] in 0..4 and actions [...] (0 = C, 1 = D)."""
        logit_defect = self.logits[states]
        return -nn.functional.softplus(torch.where(actions == 1, -logit_defect, logit_defect))


def ipd_state_values(p1: Tensor, p2: Tensor, *, gamma: float, game: str = "ipd") -> Tensor:
    """Exact discounted values V^i(s) of both players in each memory-1 state s (start, CC, CD, DC,
    DD; player 1's perspective for the joint states): [5, 2]. The IPD critic (Sec. 4 quick setup).

    From matrix_games: W(s) = r(s) + gamma sum_s' P[s, s'] W(s') is the value of playing joint
    action s now; V(start) = p0 . W and V(after s) = P[s] . W.
    """
    p0, transition = markov_chain(p1, p2)
    r1, r2 = payoffs(game, like=p0)
    system = torch.eye(4, dtype=p0.dtype) - gamma * transition
    play_values = torch.linalg.solve(system, torch.stack([r1, r2], -1))  # [4, 2]
    return torch.cat([(p0 @ play_values).unsqueeze(0), transition @ play_values], 0)
