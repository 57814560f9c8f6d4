"""LOQA's networks and losses: actor, critic, the Q-softmax opponent model and the shaping term.

Aghajohari, Duque, Cooijmans, Courville, "LOQA: Learning with Opponent Q-Learning Awareness",
ICLR 2024 (arXiv 2405.01035). Section numbers refer to ../shared/papers/loqa.md, which transcribes the
paper and the authors' code (MiladInk/loqa):

    critic     L_Q   = mean_t Huber(Q(h_t, a_t) - sg(r_t + gamma Qbar(h_t+1, a_t+1)))        (§2.2)
    own actor  L_own = -mean_t log pi(a_t|h_t) A_t - beta_H mean_t H(pi(.|h_t))               (§2.3)
               A_t   = r_t + gamma V(h_t+1) - V(h_t),   V = sum_a pi Q
    shaping    L_opp = -mean_t log pihat_j(a^j_t|h^j_t) A_t                                   (§2.4)
               pihat_j = softmax(Qtilde_j / tau), Qtilde_j = Q_j with the taken action's entry replaced
               by a Monte-Carlo return made differentiable w.r.t. our policy (loaded DiCE)
    update     g = grad(L_own + w L_opp)                                                      (§2.4.6)

Every network can be evaluated with its own parameters or with a dict of *stacked* parameters
``[K, ...]`` (K past agents from the agent buffer, each playing a slice of the batch), so a batch of
opponents is one batched matrix product rather than a Python loop over opponents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Params = dict[str, Tensor]
IPD_STATES = ("start", "CC", "CD", "DC", "DD")


# ---------------------------------------------------------------------------------------------------
# Networks. Inputs are [N, D] with the module's own parameters, or [K, N, D] with parameters stacked
# along a leading K dimension (one parameter set per group of N episodes).
# ---------------------------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x W^T + b for W [out, in] with x [..., in], or W [K, out, in] with x [K, N, in]."""
    return torch.matmul(x, weight.transpose(-1, -2)) + bias.unsqueeze(-2)


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
    """Five learnable 2-vectors of logits, one per memory-1 state (start, CC, CD, DC, DD) (§2.1)."""

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
    """ReLU MLP; the IPD critic is 16-16-2 on obs (+) t (§3)."""

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
    """POLA-style recurrent net: Linear -> ReLU -> [Linear] -> GRU cell -> Linear (§2.1).

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
        return torch.zeros(*lead_shape, self.hidden)  # zero initial carry (§2.1)

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
        steps; only the hidden-gate product and the gate arithmetic stay in the time loop (~20%
        faster sequence passes at the quick Coin Game's batch 128; same equations as forward()).
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
        # unbind, not x[..., t, :]: the backward of T slices would write T full-size gradients.
        input_gates = [gates.unbind(-2) for gates in all_steps("input_gates", x).chunk(3, -1)]
        hidden_weight, hidden_bias = p["hidden_gates.weight"], p["hidden_gates.bias"]
        carry = self.initial_carry(tuple(lead)).to(x)
        carries = []
        for xr, xz, xn in zip(*input_gates):
            hr, hz, hn = linear(carry, hidden_weight, hidden_bias).chunk(3, -1)
            reset = torch.sigmoid(xr + hr)
            update = torch.sigmoid(xz + hz)
            candidate = torch.tanh(xn + reset * hn)
            carry = (1 - update) * candidate + update * carry
            carries.append(carry)
        return all_steps("head", torch.stack(carries, dim=-2))


class LoqaAgent(nn.Module):
    """Actor pi(a | h_t) and critic Q(h_t, .) on obs (+) t, one parameter tree per agent (§2.1)."""

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
        critic_p = None if params is None else sub_params(params, "critic")
        steps = obs.shape[-2]
        time = torch.arange(steps, dtype=obs.dtype, device=obs.device) * self.time_scale
        time = time.view(steps, 1).expand(*obs.shape[:-1], 1)
        logits = self.actor.sequence(obs, actor_p)
        q = self.critic.sequence(torch.cat([obs, time], -1), critic_p)
        return logits, q


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
    """The actor and critic named by the config (§3): tabular/MLP for the IPD, GRUs for the Coin Game."""
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


class AgentBuffer:
    """FIFO of past agents' parameters (§2.5): the Coin Game's opponents are sampled from it.

    Storage is preallocated as stacked tensors ``[capacity, ...]``, so a sample of K agents is one
    index operation and can be fed straight to the networks as stacked parameters.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"agent buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.storage: Params = {}
        self.size = 0  # filled entries
        self.next = 0  # where the next push goes

    def push(self, agent: nn.Module) -> None:
        for name, value in agent.named_parameters():
            if name not in self.storage:
                self.storage[name] = value.new_zeros(self.capacity, *value.shape)
            self.storage[name][self.next] = value.detach()
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, k: int, generator: torch.Generator | None = None) -> Params:
        """k agents drawn uniformly (with replacement) from the filled part: stacked params [k, ...]."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty agent buffer; push an agent first")
        device = next(iter(self.storage.values())).device
        index = torch.randint(0, self.size, (k,), generator=generator, device=device)
        return {name: values[index] for name, values in self.storage.items()}

    def state_dict(self) -> dict:
        return {
            "storage": {k: v[: self.size].clone() for k, v in self.storage.items()},
            "size": self.size,
            "next": self.next,
        }

    def load_state_dict(self, state: dict) -> None:
        self.size, self.next = state["size"], state["next"]
        self.storage = {}
        for name, values in state["storage"].items():
            full = torch.zeros(self.capacity, *values.shape[1:], dtype=values.dtype)
            full[: values.shape[0]] = values
            self.storage[name] = full


def stacked_params(agent: nn.Module) -> Params:
    """The agent's own (detached) parameters as a stack of one, K = 1: self-play's opponent."""
    return {name: value.detach().unsqueeze(0) for name, value in agent.named_parameters()}


# ---------------------------------------------------------------------------------------------------
# Losses. Episodes are batch-first: actions, rewards [B, T, 2] with seat 0 = the learner and seat 1 =
# its opponent; network outputs over histories h_0 .. h_T are [B, T+1, A].
# ---------------------------------------------------------------------------------------------------
def magic_box(x: Tensor) -> Tensor:
    """DiCE's magic box: value 1, gradient grad(x) (§2.4.2)."""
    return torch.exp(x - x.detach())


def discount_matrix(steps: int, factor: float, like: Tensor) -> Tensor:
    """M [T, T] with M[t, k] = factor^(k - t) for k >= t and 0 below the diagonal."""
    t = torch.arange(steps, device=like.device)
    power = (t.view(1, -1) - t.view(-1, 1)).to(like.dtype)
    return torch.where(power >= 0, factor**power, torch.zeros_like(power))


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """R_t = sum_{k >= t} gamma^(k-t) r_k for rewards [B, T] -> [B, T]."""
    return rewards @ discount_matrix(rewards.shape[-1], gamma, rewards).T


def loaded_dice_returns(
    op_rewards: Tensor,
    own_logp: Tensor,
    op_values: Tensor,
    gamma: float,
    dice_lambda: float,
    op_final_value: Tensor | None = None,
) -> Tensor:
    """The opponent's returns made differentiable w.r.t. our policy: Rtilde [B, T] (§2.4.2).

    G_t = (R_t - V_t) d_t + gamma lambda G_{t+1},  d_t = box(c_t) - box(c_{t-1}),  c_t = sum_{k<=t} log pi
    Rtilde_t = R_t + G_t: equal to R_t in value; gradient sum_{k>=t} (gamma lambda)^(k-t) (R_k - V_k)
    grad log pi(a_k | h_k). The opponent's value V is the baseline that keeps this estimator usable.
    op_rewards, op_values: [B, T] constants; own_logp: [B, T] our log-probs of the actions we took.
    op_final_value [B]: if given, R_t also bootstraps with gamma^(T-t) V(h_T) (see loqa_actor_losses).
    """
    returns = discounted_returns(op_rewards, gamma)
    if op_final_value is not None:
        steps_left = torch.arange(op_rewards.shape[-1], 0, -1, device=op_rewards.device)
        returns = returns + gamma ** steps_left.to(returns.dtype) * op_final_value.unsqueeze(-1)
    returns = returns.detach()
    boxes = magic_box(torch.cumsum(own_logp, dim=-1))
    boxes_before = torch.cat(
        [torch.ones_like(boxes[:, :1]), boxes[:, :-1]], dim=-1
    )  # box(c_-1) := 1
    dice_increments = boxes - boxes_before  # value 0, gradient grad log pi(a_t | h_t)
    weighted = (returns - op_values.detach()) * dice_increments
    # The backward recursion in closed form: G = weighted @ M^T with M[t, k] = (gamma lambda)^(k-t).
    correction = weighted @ discount_matrix(weighted.shape[-1], gamma * dice_lambda, weighted).T
    return returns + correction


def opponent_log_prob(
    op_q: Tensor, op_actions: Tensor, q_hat: Tensor, temperature: float
) -> Tensor:
    """log pihat_j(a^j_t | h^j_t) with pihat_j = softmax(Qtilde / tau) (§2.4.4).

    op_q [B, T, A]: the opponent critic's Q (constants); its entry for the taken action a^j_t is
    replaced by the differentiable estimate q_hat [B, T]; the other actions keep their critic values.
    """
    taken = F.one_hot(op_actions, op_q.shape[-1]).to(op_q.dtype)
    q_tilde = op_q.detach() * (1 - taken) + q_hat.unsqueeze(-1) * taken
    log_pi_hat = torch.log_softmax(q_tilde / temperature, dim=-1)
    return log_pi_hat.gather(-1, op_actions.unsqueeze(-1)).squeeze(-1)


def loqa_actor_losses(
    own_logits: Tensor,
    own_q: Tensor,
    op_logits: Tensor,
    op_q: Tensor,
    actions: Tensor,
    rewards: Tensor,
    *,
    gamma: float = 0.96,
    dice_lambda: float = 0.9,
    temperature: float = 1.0,
    entropy_beta: float = 0.0,
    advantage_grad: bool = False,
    bootstrap_opponent_return: bool = True,
) -> dict[str, Tensor]:
    """L_own (§2.3, with the entropy bonus) and L_opp (§2.4); the update uses L_own + w L_opp.

    own_logits, own_q: [B, T+1, A] our actor and critic over h_0..h_T (h_T only bootstraps V).
    op_logits, op_q:   [B, T+1, A] the opponent's actor and critic over its own histories (constants).
    actions [B, T, 2] long, rewards [B, T, 2]: seat 0 is us, seat 1 the opponent.
    bootstrap_opponent_return: the opponent's Monte-Carlo return also gets gamma^(T-t) V^j(h_T). The
    critic bootstraps at the truncated end (§2.2), so its Q is an infinite-horizon value; the authors'
    code compares it with an un-bootstrapped return, which is far smaller near the end of an episode, so
    the imagined softmax puts ~all mass on the taken action and the shaping gradient vanishes once the
    critic is accurate. False reproduces the authors' code.
    """
    steps = actions.shape[1]
    if own_logits.shape[:2] != (actions.shape[0], steps + 1):
        raise ValueError(
            f"own_logits must be [B, T+1, A] = [{actions.shape[0]}, {steps + 1}, A], "
            f"got {tuple(own_logits.shape)}"
        )
    own_actions, op_actions = actions[..., 0], actions[..., 1]
    own_rewards, op_rewards = rewards[..., 0], rewards[..., 1]

    # §2.3 own term: TD(0) advantage with V(h) = sum_a pi(a|h) Q(h, a); bootstrapped at the truncated end.
    log_pi = torch.log_softmax(own_logits, dim=-1)
    values = (log_pi.exp() * own_q).sum(-1)  # [B, T+1]
    if not advantage_grad:  # the authors' code lets this gradient through (probably unintended)
        values = values.detach()
    advantage = own_rewards + gamma * values[:, 1:] - values[:, :-1]  # A_t [B, T]
    own_logp = log_pi[:, :steps].gather(-1, own_actions.unsqueeze(-1)).squeeze(-1)  # [B, T]
    entropy = -(log_pi.exp() * log_pi).sum(-1)[:, :steps].mean()
    loss_own = -(own_logp * advantage).mean() - entropy_beta * entropy

    # §2.4 shaping term. Step 1: the opponent's value V^j = sum_a pi^j Q^j, a constant baseline.
    op_values = (torch.softmax(op_logits, -1) * op_q).sum(-1).detach()  # [B, T+1]
    final_value = op_values[:, steps] if bootstrap_opponent_return else None
    # Step 2: loaded DiCE returns of the opponent, differentiable through our log-probs.
    op_returns = loaded_dice_returns(
        op_rewards, own_logp, op_values[:, :steps], gamma, dice_lambda, final_value
    )
    # Step 3: Qhat^j_t = r^j_t + gamma Rtilde^j_{t+1}; our action at t is simultaneous with a^j_t, so the
    # reward at t stays a constant; at the last step there is nothing to bootstrap.
    q_hat = torch.cat([op_rewards[:, :-1] + gamma * op_returns[:, 1:], op_rewards[:, -1:]], dim=-1)
    # Steps 4-5: raise the imagined probability of opponent actions with a positive advantage for us.
    op_logp = opponent_log_prob(op_q[:, :steps], op_actions, q_hat, temperature)
    loss_opp = -(op_logp * advantage).mean()
    return {
        "own": loss_own,
        "opponent": loss_opp,
        "entropy": entropy.detach(),
        "advantage": advantage.detach().mean(),
        "value": values[:, :-1].detach().mean(),
    }


def critic_loss(
    own_q: Tensor,
    target_logits: Tensor,
    target_q: Tensor,
    actions: Tensor,
    rewards: Tensor,
    *,
    gamma: float = 0.96,
    huber_delta: float = 1.0,
) -> Tensor:
    """Expected-SARSA critic loss with an EMA target (§2.2).

    own_q [B, T+1, A] (trained), target_logits / target_q [B, T+1, A] (the EMA copy, constants),
    actions [B, T] and rewards [B, T] of the learner's seat. The episode is truncated, not terminated:
    the last target bootstraps with the target's state value Vbar(h_T) = sum_a pibar Qbar.
    """
    steps = actions.shape[1]
    q_taken = own_q[:, :steps].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # Q(h_t, a_t)
    next_q = target_q[:, 1:steps].gather(-1, actions[:, 1:].unsqueeze(-1)).squeeze(-1)
    last_value = (torch.softmax(target_logits[:, steps], -1) * target_q[:, steps]).sum(-1)
    bootstrap = torch.cat([next_q, last_value.unsqueeze(-1)], dim=-1)  # [B, T]
    target = (rewards + gamma * bootstrap).detach()
    return F.huber_loss(q_taken, target, delta=huber_delta)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, decay: float) -> None:
    """thetabar <- decay thetabar + (1 - decay) theta, after every critic step (§2.1)."""
    for target_p, online_p in zip(target.parameters(), online.parameters()):
        target_p.lerp_(online_p, 1 - decay)
