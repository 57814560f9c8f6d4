"""LOQA's networks: actor, critic, the agent that holds both, and the buffer of past agents.

The parameterisation of arXiv 2405.01035 (LOQA, ICLR 2024), as in the authors' code: a tabular
memory-1 actor for the IPD, POLA-style GRUs for the Coin Game, an MLP or GRU critic that sees the
observation and the time step. Every network can be evaluated with its own parameters or with a dict of
*stacked* parameters ``[K, ...]`` (K past agents from the agent buffer, each playing a slice of the batch),
so a batch of opponents is one batched matrix product rather than a Python loop over opponents.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

Params = dict[str, Tensor]
IPD_STATES = ("start", "CC", "CD", "DC", "DD")


# ---------------------------------------------------------------------------------------------------
# Networks. Inputs are [N, D] with the module's own parameters, or [K, N, D] with parameters stacked
# along a leading K dimension (one parameter set per group of N episodes).
# ---------------------------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x W^T + b for W [out, in] with x [..., in], or W [K, out, in] with x [K, N, in].

    addmm / baddbmm: the bias is added inside the product's output pass, not in a second pass over
    a [B T, 3 H] tensor (bit-identical to matmul + add on the CPU, tests/loqa/test_model.py).
    """
    if weight.dim() == 2:
        out = torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight.t())
        return out.view(*x.shape[:-1], weight.shape[0])
    return torch.baddbmm(bias.unsqueeze(-2), x, weight.transpose(-1, -2))


def sub_params(params: Params, prefix: str) -> Params:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in params.items() if k.startswith(prefix + ".")}


class Network(nn.Module):
    """A (possibly recurrent) network with ``forward(x, carry, params) -> (out, carry)``."""

    recurrent = False

    def initial_carry(self, lead_shape: tuple[int, ...]) -> Tensor | None:
        return None

    def own_params(self) -> Params:
        # Cached: walking the module tree costs ~35 us, once per time step in a rollout. The
        # Parameter objects stay the same through optimiser steps, load_state_dict and .to().
        cached = self.__dict__.get("_own_params")
        if cached is None:
            cached = self.__dict__["_own_params"] = dict(self.named_parameters())
        return cached

    def sequence(self, x: Tensor, params: Params | None = None) -> Tensor:
        """x [(K,) N, T, D] -> out [(K,) N, T, out]; the carry starts at zero and follows the sequence."""
        if not self.recurrent:  # memoryless: fold time into the batch for one call
            lead, steps = x.shape[:-2], x.shape[-2]
            flat = x.reshape(*lead[:-1], lead[-1] * steps, x.shape[-1])
            out, _ = self(flat, None, params)
            return out.reshape(*lead, steps, out.shape[-1])
        carry = self.initial_carry(tuple(x.shape[:-2])).to(x)
        outs = []
        for t in range(x.shape[-2]):
            out, carry = self(x[..., t, :], carry, params)
            outs.append(out)
        return torch.stack(outs, dim=-2)


class TabularIPDActor(Network):
    """Five learnable 2-vectors of logits, one per memory-1 state (start, CC, CD, DC, DD) (authors' code)."""

    def __init__(self, init_std: float = 0.0):
        super().__init__()
        self.logits = nn.Parameter(init_std * torch.randn(len(IPD_STATES), 2))  # zero init = 50/50

    @staticmethod
    def state_index(obs: Tensor) -> Tensor:
        """obs [..., 4] = [I cooperated, I defected, other cooperated, other defected] -> 0..4."""
        played = obs.sum(-1) > 0  # all zeros at t = 0: the start state
        index = 1 + 2 * obs[..., 1] + obs[..., 3]  # CC=1, CD=2, DC=3, DD=4 (own action first)
        return torch.where(played, index, torch.zeros_like(index)).long()

    def forward(self, x, carry=None, params=None):
        table = self.logits if params is None else params["logits"]  # [5, 2] or [K, 5, 2]
        state = self.state_index(x[..., :4])
        if table.dim() == 2:
            return table[state], None
        return torch.gather(table, 1, state.unsqueeze(-1).expand(*state.shape, 2)), None


class MLP(Network):
    """ReLU MLP; the IPD critic is 16-16-2 on obs (+) t (paper's appendix)."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int):
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x, carry=None, params=None):
        p = self.own_params() if params is None else params
        for i in range(len(self.layers)):
            x = linear(x, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"])
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x, None


class PolaGRU(Network):
    """POLA-style recurrent net: Linear -> ReLU -> [Linear] -> GRU cell -> Linear (authors' code).

    The GRU cell is written out (PyTorch's gate layout and equations) so that it runs on stacked
    opponent parameters; ``torch.nn.GRUCell`` has no batching rule for that.
    """

    recurrent = True

    def __init__(self, in_dim: int, hidden: int, out_dim: int, pre_layers: int = 2):
        super().__init__()
        if pre_layers not in (1, 2):
            raise ValueError(f"pre_layers must be 1 or 2 (POLA-style GRU), got {pre_layers}")
        self.hidden = hidden
        self.pre = nn.ModuleList([nn.Linear(in_dim, hidden)])
        if pre_layers == 2:
            self.pre.append(nn.Linear(hidden, hidden))
        self.input_gates = nn.Linear(hidden, 3 * hidden)  # W_ir, W_iz, W_in
        self.hidden_gates = nn.Linear(hidden, 3 * hidden)  # W_hr, W_hz, W_hn
        self.head = nn.Linear(hidden, out_dim)

    def initial_carry(self, lead_shape):
        return torch.zeros(*lead_shape, self.hidden)  # zero initial carry (authors' code)

    def forward(self, x, carry=None, params=None):
        p = self.own_params() if params is None else params
        if carry is None:
            carry = self.initial_carry(tuple(x.shape[:-1])).to(x)
        x = torch.relu(linear(x, p["pre.0.weight"], p["pre.0.bias"]))
        if len(self.pre) == 2:  # the second pre-layer has no activation (POLA's cell)
            x = linear(x, p["pre.1.weight"], p["pre.1.bias"])
        xr, xz, xn = linear(x, p["input_gates.weight"], p["input_gates.bias"]).chunk(3, -1)
        hr, hz, hn = linear(carry, p["hidden_gates.weight"], p["hidden_gates.bias"]).chunk(3, -1)
        reset = torch.sigmoid(xr + hr)
        update = torch.sigmoid(xz + hz)
        candidate = torch.tanh(xn + reset * hn)
        carry = (1 - update) * candidate + update * carry
        return linear(carry, p["head.weight"], p["head.bias"]), carry

    def sequence(self, x: Tensor, params: Params | None = None) -> Tensor:
        """forward() over whole sequences, x [(K,) N, T, D] -> out [(K,) N, T, out], zero carry.

        The layers that do not see the carry (pre-layers, input gates, head) run once on all T
        steps; only the hidden-gate product and the gate arithmetic stay in the time loop
        (GRURecurrence, with its own backward; same equations as forward()).
        """
        p = self.own_params() if params is None else params
        lead, steps = x.shape[:-2], x.shape[-2]

        def all_steps(layer: str, inputs: Tensor) -> Tensor:  # time folded into the batch
            flat = inputs.reshape(*lead[:-1], lead[-1] * steps, inputs.shape[-1])
            out = linear(flat, p[f"{layer}.weight"], p[f"{layer}.bias"])
            return out.reshape(*lead, steps, out.shape[-1])

        x = torch.relu(all_steps("pre.0", x))
        if len(self.pre) == 2:
            x = all_steps("pre.1", x)
        carries = GRURecurrence.apply(
            all_steps("input_gates", x), p["hidden_gates.weight"], p["hidden_gates.bias"]
        )
        return all_steps("head", carries)


class GRURecurrence(torch.autograd.Function):
    """PolaGRU's carry loop over a sequence, with backpropagation through time written out.

    input_gates [(K,) N, T, 3H] (W_i x_t + b_i of every step), hidden_weight [(K,) 3H, H], hidden_bias
    [(K,) 3H] -> carries [(K,) N, T, H] from a zero carry. The forward is PolaGRU.forward's arithmetic
    op for op (the same numbers). Autograd's version of the backward records ~20 nodes per step and
    concatenates the three gates' gradients at every step; this one writes them into one buffer and
    takes the hidden weights' gradient as one product over all steps at the end (~2x faster
    sequence backward at the paper's sizes; tests/loqa/test_model.py checks it against autograd).
    """

    @staticmethod
    def forward(ctx, input_gates: Tensor, hidden_weight: Tensor, hidden_bias: Tensor) -> Tensor:
        *lead, steps, three_h = input_gates.shape
        hidden = three_h // 3
        # Time-major buffers: each step writes contiguous rows (a [N, T, H] layout scatters them).
        carries = input_gates.new_empty(steps, *lead, hidden)
        saved = input_gates.new_empty(steps, 4, *lead, hidden)  # reset, update, candidate, hn
        carry = input_gates.new_zeros(*lead, hidden)
        xr, xz, xn = input_gates.chunk(3, -1)
        for t in range(steps):
            hr, hz, hn = linear(carry, hidden_weight, hidden_bias).chunk(3, -1)
            reset = torch.sigmoid(xr[..., t, :] + hr)
            update = torch.sigmoid(xz[..., t, :] + hz)
            candidate = torch.tanh(xn[..., t, :] + reset * hn)
            carry = (1 - update) * candidate + update * carry
            carries[t] = carry
            for i, value in enumerate((reset, update, candidate, hn)):
                saved[t, i] = value
        ctx.save_for_backward(hidden_weight, carries, saved)
        return carries.movedim(0, -2).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_carries: Tensor):
        hidden_weight, carries, saved = ctx.saved_tensors
        steps, *lead, hidden = carries.shape
        grad_carries = grad_carries.movedim(-2, 0).contiguous()  # time-major, as the buffers
        # d loss / d (W_i x + b_i) and d loss / d (W_h h + b_h), [r, z, n] blocks along the last dim
        grad_input = carries.new_empty(steps, *lead, 3 * hidden)
        grad_hidden = carries.new_empty(steps, *lead, 3 * hidden)
        grad_carry = carries.new_zeros(*lead, hidden)  # reaching h_t from step t + 1
        zero = carries.new_zeros(*lead, hidden)
        for t in reversed(range(steps)):
            reset, update, candidate, hn = saved[t].unbind(0)
            previous = carries[t - 1] if t > 0 else zero
            grad_carry = grad_carry + grad_carries[t]
            # h_t = (1 - z) n + z h_{t-1}; n = tanh(xn + r hn); r, z = sigmoid(.)
            grad_n = grad_carry * (1 - update) * (1 - candidate * candidate)
            grad_z = grad_carry * (previous - candidate) * update * (1 - update)
            grad_r = grad_n * hn * reset * (1 - reset)
            for gates in (grad_input[t], grad_hidden[t]):
                gates[..., :hidden] = grad_r
                gates[..., hidden : 2 * hidden] = grad_z
            grad_input[t, ..., 2 * hidden :] = grad_n
            grad_hidden[t, ..., 2 * hidden :] = grad_n * reset
            grad_carry = grad_carry * update + torch.matmul(grad_hidden[t], hidden_weight)
        # The hidden weights saw h_{t-1} at step t: one product over all (step, episode) pairs.
        previous = torch.cat([zero.unsqueeze(0), carries[:-1]])  # [T, (K,) N, H]
        if hidden_weight.dim() == 2:
            flat_grad = grad_hidden.reshape(-1, 3 * hidden)
            grad_weight = flat_grad.t() @ previous.reshape(-1, hidden)
        else:  # stacked [K, ...]: K products over [T N] rows
            flat_grad = grad_hidden.movedim(0, -2).flatten(-3, -2)  # [K, N T, 3H]
            grad_weight = flat_grad.transpose(-1, -2) @ previous.movedim(0, -2).flatten(-3, -2)
        grad_bias = flat_grad.sum(-2)
        return grad_input.movedim(0, -2), grad_weight, grad_bias


class LoqaAgent(nn.Module):
    """Actor pi(a | h_t) and critic Q(h_t, .) on obs (+) t, one parameter tree per agent (authors' code)."""

    def __init__(
        self, actor: Network, critic: Network, episode_length: int, raw_time: bool = False
    ):
        super().__init__()
        self.actor = actor
        self.critic = critic
        # The authors feed the raw integer t to the critic; t / T is our (flagged) default for quick runs.
        self.time_scale = 1.0 if raw_time else 1.0 / episode_length

    def initial_carry(self, lead_shape: tuple[int, ...]):
        return self.actor.initial_carry(lead_shape), self.critic.initial_carry(lead_shape)

    def step(self, obs: Tensor, t: int, carry, params: Params | None = None):
        """One step: obs [(K,) N, D] -> logits [(K,) N, A], Q [(K,) N, A], next carry."""
        actor_p = None if params is None else sub_params(params, "actor")
        critic_p = None if params is None else sub_params(params, "critic")
        actor_carry, critic_carry = carry
        logits, actor_carry = self.actor(obs, actor_carry, actor_p)
        time = torch.full_like(obs[..., :1], t * self.time_scale)
        q, critic_carry = self.critic(torch.cat([obs, time], -1), critic_carry, critic_p)
        return logits, q, (actor_carry, critic_carry)

    def act(self, obs: Tensor, t: int, carry, params: Params | None = None):
        """Only the actor (rollouts and evaluation): logits [(K,) N, A], next carry."""
        actor_p = None if params is None else sub_params(params, "actor")
        actor_carry, critic_carry = carry
        logits, actor_carry = self.actor(obs, actor_carry, actor_p)
        return logits, (actor_carry, critic_carry)

    def sequence(self, obs: Tensor, params: Params | None = None) -> tuple[Tensor, Tensor]:
        """obs [(K,) N, T+1, D] -> logits, Q [(K,) N, T+1, A] over whole histories."""
        actor_p = None if params is None else sub_params(params, "actor")
        return self.actor.sequence(obs, actor_p), self.critic_sequence(obs, params)

    def critic_sequence(self, obs: Tensor, params: Params | None = None) -> Tensor:
        """obs [(K,) N, T+1, D] -> Q [(K,) N, T+1, A]; the critic sees obs (+) t."""
        critic_p = None if params is None else sub_params(params, "critic")
        steps = obs.shape[-2]
        time = torch.arange(steps, dtype=obs.dtype, device=obs.device) * self.time_scale
        time = time.view(steps, 1).expand(*obs.shape[:-1], 1)
        return self.critic.sequence(torch.cat([obs, time], -1), critic_p)


def build_agent(
    game: str,
    *,
    obs_dim: int,
    num_actions: int,
    episode_length: int,
    actor: str = "tabular",
    actor_hidden: int = 64,
    actor_pre_layers: int = 1,
    actor_init_std: float = 0.0,
    critic: str = "mlp",
    critic_hidden: int = 16,
    critic_pre_layers: int = 2,
    raw_time: bool = False,
) -> LoqaAgent:
    """The actor and critic named by the config (paper's appendix): tabular/MLP for the IPD, GRUs for the Coin Game."""
    if actor == "tabular":
        if game != "ipd":
            raise ValueError(f"model.actor=tabular only exists for the IPD, not game={game}")
        actor_net: Network = TabularIPDActor(actor_init_std)
    elif actor == "gru":
        actor_net = PolaGRU(obs_dim, actor_hidden, num_actions, actor_pre_layers)
    else:
        raise ValueError(f"model.actor must be tabular or gru, got {actor!r}")
    if critic == "mlp":
        critic_net: Network = MLP(obs_dim + 1, [critic_hidden, critic_hidden], num_actions)
    elif critic == "gru":
        critic_net = PolaGRU(obs_dim + 1, critic_hidden, num_actions, critic_pre_layers)
    else:
        raise ValueError(f"model.critic must be mlp or gru, got {critic!r}")
    return LoqaAgent(actor_net, critic_net, episode_length, raw_time)


def ipd_cooperation_probabilities(agent: LoqaAgent) -> Tensor:
    """P(C | start, CC, CD, DC, DD) [5] of a tabular IPD actor, from its own perspective."""
    if not isinstance(agent.actor, TabularIPDActor):
        raise ValueError("cooperation probabilities per memory state need the tabular IPD actor")
    return torch.softmax(agent.actor.logits.detach(), -1)[:, 0]


def stacked_params(agent: nn.Module) -> Params:
    """The agent's own (detached) parameters as a stack of one, K = 1: self-play's opponent."""
    return {name: value.detach().unsqueeze(0) for name, value in agent.named_parameters()}
