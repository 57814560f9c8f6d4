"""LOQA's losses and networks (loqa/model.py), checked against naive loops in float64.

Semantics: episodes are batch-first, seat 0 is the learner, seat 1 its opponent; network outputs cover the
histories h_0..h_T ([B, T+1, A]); actions and rewards cover t = 0..T-1 ([B, T, 2]). The shaping term
L_opp reaches our parameters only through our log-probabilities inside DiCE's magic boxes.
"""

from __future__ import annotations

import pytest
import torch

from common.agent_buffer import AgentBuffer
from common.envs.ipd import state_index
from loqa.model import (
    critic_loss,
    discounted_returns,
    loaded_dice_returns,
    loqa_actor_losses,
    magic_box,
    opponent_log_prob,
)
from loqa.networks import MLP, PolaGRU, TabularIPDActor

B, T, A = 3, 6, 2
GAMMA, LAM = 0.9, 0.8


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def random_episode(seed: int = 0, actions: int = A):
    g = torch.Generator().manual_seed(seed)
    return {
        "own_logits": torch.randn(B, T + 1, actions, generator=g, dtype=torch.float64),
        "own_q": torch.randn(B, T + 1, actions, generator=g, dtype=torch.float64),
        "op_logits": torch.randn(B, T + 1, actions, generator=g, dtype=torch.float64),
        "op_q": torch.randn(B, T + 1, actions, generator=g, dtype=torch.float64),
        "actions": torch.randint(0, actions, (B, T, 2), generator=g),
        "rewards": torch.randn(B, T, 2, generator=g, dtype=torch.float64),
    }


def test_magic_box_is_one_in_value_and_passes_the_gradient():
    x = torch.randn(5, requires_grad=True)
    box = magic_box(x)
    assert torch.allclose(box, torch.ones(5)), "the magic box must evaluate to exactly 1"
    (grad,) = torch.autograd.grad((box * torch.arange(5.0)).sum(), x)
    assert torch.allclose(grad, torch.arange(5.0)), "d box(x) / dx must be 1 * upstream"


def test_discounted_returns_match_a_backward_loop():
    rewards = torch.randn(B, T)
    expected = torch.zeros(B, T)
    running = torch.zeros(B)
    for t in reversed(range(T)):
        running = rewards[:, t] + GAMMA * running
        expected[:, t] = running
    assert torch.allclose(discounted_returns(rewards, GAMMA), expected)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_loaded_dice_returns_equal_the_returns_and_have_the_documented_gradient(bootstrap):
    """Value: R_t. Jacobian: dRtilde_t / dlogpi_k = (gamma lambda)^(k-t) (R_k - V_k) for k >= t."""
    g = torch.Generator().manual_seed(1)
    op_rewards, op_values = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    final = torch.randn(B, generator=g) if bootstrap else None
    own_logp = -torch.rand(B, T, generator=g)
    own_logp.requires_grad_(True)
    rtilde = loaded_dice_returns(op_rewards, own_logp, op_values, GAMMA, LAM, final)

    returns = torch.zeros(B, T)
    for t in range(T):
        for k in range(t, T):
            returns[:, t] += GAMMA ** (k - t) * op_rewards[:, k]
        if bootstrap:
            returns[:, t] += GAMMA ** (T - t) * final
    assert torch.allclose(rtilde, returns), "loaded DiCE must not change the value of the return"

    for t in range(T):
        (grad,) = torch.autograd.grad(rtilde[:, t].sum(), own_logp, retain_graph=True)
        expected = torch.zeros(B, T)
        for k in range(t, T):
            expected[:, k] = (GAMMA * LAM) ** (k - t) * (returns[:, k] - op_values[:, k])
        assert torch.allclose(grad, expected), f"wrong gradient of Rtilde_{t}"


def naive_loqa_losses(ep, gamma=GAMMA, lam=LAM, tau=1.0, beta=0.0, bootstrap=True):
    """The same losses with explicit per-episode, per-time loops (the specification in §2.3-2.4)."""
    own_total, opp_total = 0.0, 0.0
    for b in range(B):
        log_pi = torch.log_softmax(ep["own_logits"][b], -1)
        values = (log_pi.exp() * ep["own_q"][b]).sum(-1).detach()
        op_values = (torch.softmax(ep["op_logits"][b], -1) * ep["op_q"][b]).sum(-1)
        a, aj = ep["actions"][b, :, 0], ep["actions"][b, :, 1]
        r, rj = ep["rewards"][b, :, 0], ep["rewards"][b, :, 1]
        adv = [r[t] + gamma * values[t + 1] - values[t] for t in range(T)]
        logp = [log_pi[t, a[t]] for t in range(T)]
        for t in range(T):
            entropy = -(log_pi[t].exp() * log_pi[t]).sum()
            own_total = own_total - logp[t] * adv[t] - beta * entropy
        # Opponent returns with their loaded-DiCE gradient, built term by term.
        returns = []
        for t in range(T):
            ret = sum(gamma ** (k - t) * rj[k] for k in range(t, T))
            if bootstrap:
                ret = ret + gamma ** (T - t) * op_values[T]
            returns.append(ret)
        rtilde = []
        for t in range(T):
            correction = 0.0
            for k in range(t, T):
                cum = sum(logp[: k + 1])
                cum_before = sum(logp[:k]) if k > 0 else torch.zeros(())
                d_k = magic_box(cum) - (magic_box(cum_before) if k > 0 else 1.0)
                correction = (
                    correction + (gamma * lam) ** (k - t) * (returns[k] - op_values[k]) * d_k
                )
            rtilde.append(returns[t] + correction)
        for t in range(T):
            q_hat = rj[t] + gamma * rtilde[t + 1] if t < T - 1 else rj[t]
            q_tilde = ep["op_q"][b, t].clone()
            q_tilde = torch.stack([q_hat if i == aj[t] else q_tilde[i] for i in range(A)])
            opp_total = opp_total - torch.log_softmax(q_tilde / tau, -1)[aj[t]] * adv[t]
    return own_total / (B * T), opp_total / (B * T)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_actor_losses_and_their_gradients_match_naive_loops(bootstrap):
    ep = random_episode(2)
    ep["own_logits"].requires_grad_(True)
    losses = loqa_actor_losses(
        **ep, gamma=GAMMA, dice_lambda=LAM, entropy_beta=0.1, bootstrap_opponent_return=bootstrap
    )
    own, opp = naive_loqa_losses(ep, beta=0.1, bootstrap=bootstrap)
    assert torch.allclose(losses["own"], own) and torch.allclose(losses["opponent"], opp)
    for ours, naive in ((losses["own"], own), (losses["opponent"], opp)):
        (g_ours,) = torch.autograd.grad(ours, ep["own_logits"], retain_graph=True)
        (g_naive,) = torch.autograd.grad(naive, ep["own_logits"], retain_graph=True)
        assert torch.allclose(g_ours, g_naive), "vectorised and naive gradients differ"


def test_differentiable_pieces_pass_gradcheck_in_float64():
    """L_own and the Q-softmax opponent model are ordinary functions: autograd must match finite
    differences. (L_opp as a whole is a DiCE surrogate: its gradient is by design not the derivative
    of its value, which is why it is checked against the naive loop above instead.)"""
    ep = random_episode(3)
    logits = ep.pop("own_logits").requires_grad_(True)

    def own_term(own_logits):
        out = loqa_actor_losses(
            own_logits, **ep, gamma=GAMMA, entropy_beta=0.05, advantage_grad=True
        )
        return out["own"]  # advantage_grad: V(h) depends on the logits too, no detach

    assert torch.autograd.gradcheck(own_term, (logits,))
    q_hat = torch.randn(B, T, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda q: opponent_log_prob(ep["op_q"][:, :T], ep["actions"][..., 1], q, 0.7), (q_hat,)
    )


def test_shaping_off_gives_exactly_the_naive_actor_critic_gradient():
    """w = 0 is the control: the update must be the plain advantage actor-critic gradient."""
    ep = random_episode(4)
    logits = ep["own_logits"].requires_grad_(True)
    losses = loqa_actor_losses(**ep, gamma=GAMMA)
    (g_loqa_w0,) = torch.autograd.grad(losses["own"] + 0.0 * losses["opponent"], logits)
    log_pi = torch.log_softmax(logits, -1)
    values = (log_pi.exp() * ep["own_q"]).sum(-1).detach()
    advantage = ep["rewards"][..., 0] + GAMMA * values[:, 1:] - values[:, :-1]
    logp = log_pi[:, :T].gather(-1, ep["actions"][..., :1]).squeeze(-1)
    (g_a2c,) = torch.autograd.grad(-(logp * advantage).mean(), logits)
    assert torch.allclose(g_loqa_w0, g_a2c)
    (g_opp,) = torch.autograd.grad(loqa_actor_losses(**ep, gamma=GAMMA)["opponent"], logits)
    assert g_opp.abs().sum() > 0, "with w != 0 the shaping term must change the gradient"


def test_shaping_gradient_skips_the_opponents_critic():
    """The opponent's critic and actor outputs are constants: no gradient flows into them."""
    ep = random_episode(5)
    ep["op_q"].requires_grad_(True)
    ep["op_logits"].requires_grad_(True)
    loss = loqa_actor_losses(**ep)["opponent"]
    assert not loss.requires_grad or all(
        g is None
        for g in torch.autograd.grad(loss, [ep["op_q"], ep["op_logits"]], allow_unused=True)
    )


def test_critic_loss_uses_expected_sarsa_targets_and_bootstraps_the_truncated_end():
    ep = random_episode(6)
    own_q = ep["own_q"].clone().requires_grad_(True)
    a, r = ep["actions"][..., 0], ep["rewards"][..., 0]
    loss = critic_loss(own_q, ep["op_logits"], ep["op_q"], a, r, gamma=GAMMA, huber_delta=1.0)
    total = 0.0
    for b in range(B):
        for t in range(T):
            if t < T - 1:
                nxt = ep["op_q"][b, t + 1, a[b, t + 1]]
            else:
                nxt = (torch.softmax(ep["op_logits"][b, T], -1) * ep["op_q"][b, T]).sum()
            err = own_q[b, t, a[b, t]] - (r[b, t] + GAMMA * nxt)
            total = total + (0.5 * err**2 if err.abs() <= 1 else err.abs() - 0.5)
    assert torch.allclose(loss, total / (B * T))


def test_tabular_actor_reads_the_same_memory_state_as_the_environment():
    obs = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1.0]])
    assert torch.equal(TabularIPDActor.state_index(obs), state_index(obs))
    actor = TabularIPDActor(init_std=1.0)
    logits, _ = actor(obs)
    assert torch.allclose(logits, actor.logits), "state k must read row k of the logit table"


@pytest.mark.parametrize("net", ["tabular", "mlp", "gru"])
def test_stacked_parameters_give_each_group_its_own_network(net):
    """Opponents from the agent buffer run as one batched call on parameters stacked [K, ...]."""
    torch.manual_seed(0)
    if net == "tabular":
        nets = [TabularIPDActor(init_std=1.0) for _ in range(3)]
        x = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 4)), 4).double()
        x[:, 0] = 0
    elif net == "mlp":
        nets = [MLP(5, [8, 8], 2) for _ in range(3)]
        x = torch.randn(3, 4, 5)
    else:
        nets = [PolaGRU(5, 8, 4, pre_layers=2) for _ in range(3)]
        x = torch.randn(3, 4, 6, 5)  # [K, N, T, D]
    stacked = {
        k: torch.stack([dict(n.named_parameters())[k] for n in nets])
        for k, _ in nets[0].named_parameters()
    }
    if net == "gru":
        out = nets[0].sequence(x, stacked)
        expected = torch.stack([n.sequence(x[i]) for i, n in enumerate(nets)])
    else:
        out, _ = nets[0](x, None, stacked)
        expected = torch.stack([n(x[i])[0] for i, n in enumerate(nets)])
    assert torch.allclose(out, expected)


def test_pola_gru_cell_matches_torch_gru_cell():
    gru = PolaGRU(3, 4, 2, pre_layers=1)
    ref = torch.nn.GRUCell(4, 4).double()
    with torch.no_grad():
        ref.weight_ih.copy_(gru.input_gates.weight)
        ref.bias_ih.copy_(gru.input_gates.bias)
        ref.weight_hh.copy_(gru.hidden_gates.weight)
        ref.bias_hh.copy_(gru.hidden_gates.bias)
    x, h = torch.randn(5, 3), torch.randn(5, 4)
    _, h_ours = gru(x, h)
    h_ref = ref(torch.relu(gru.pre[0](x)), h)
    assert torch.allclose(h_ours, h_ref)


def test_agent_buffer_is_fifo_and_round_trips_through_its_state_dict():
    buffer = AgentBuffer(capacity=2)
    agents = [MLP(2, [3], 1) for _ in range(3)]
    for agent in agents:
        buffer.push(agent)
    assert buffer.size == 2
    stored = buffer.storage["layers.0.weight"]
    assert torch.equal(stored[0], agents[2].layers[0].weight.detach()), "oldest entry is replaced"
    assert torch.equal(stored[1], agents[1].layers[0].weight.detach())
    copy = AgentBuffer(capacity=2)
    copy.load_state_dict(buffer.state_dict())
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    s1, s2 = buffer.sample(4, g1), copy.sample(4, g2)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    with pytest.raises(ValueError, match="empty"):
        AgentBuffer(3).sample(1)


@pytest.mark.parametrize("pre_layers", [1, 2])
def test_pola_gru_sequence_equals_stepping_forward(pre_layers):
    """The hoisted whole-sequence pass computes exactly what forward() does step by step."""
    torch.manual_seed(1)
    gru = PolaGRU(5, 8, 4, pre_layers=pre_layers)
    x = torch.randn(3, 6, 7, 5)  # [K, N, T, D] with stacked parameters of 3 nets
    stacked = {k: torch.stack([v, 2 * v, -v]) for k, v in gru.named_parameters()}
    for inputs, params in ((x[0], None), (x, stacked)):
        carry, stepped = None, []
        for t in range(inputs.shape[-2]):
            out, carry = gru(inputs[..., t, :], carry, params)
            stepped.append(out)
        torch.testing.assert_close(gru.sequence(inputs, params), torch.stack(stepped, -2))
    gru.head.bias.data += 1.0  # in place, as an optimiser step: the cached params follow
    torch.testing.assert_close(gru.own_params()["head.bias"], gru.head.bias)


@pytest.mark.parametrize("pre_layers", [1, 2])
@pytest.mark.parametrize("stacked", [False, True])
def test_pola_gru_sequence_backward_equals_autograd_through_forward(pre_layers, stacked):
    """GRURecurrence's hand-written backpropagation through time gives autograd's gradients."""
    torch.manual_seed(2)
    gru = PolaGRU(5, 8, 4, pre_layers=pre_layers).double()
    params = dict(gru.named_parameters())
    if stacked:  # 3 nets, as the opponents' stacked parameters
        params = {
            k: torch.stack([v, 2 * v, -v]).detach().requires_grad_() for k, v in params.items()
        }
    x = torch.randn(*((3,) if stacked else ()), 6, 7, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(*x.shape[:-1], 4, dtype=torch.float64)  # a loss that weighs every output
    leaves = [x, *params.values()]

    def gradients(outputs):
        return torch.autograd.grad((outputs * weights).sum(), leaves)

    carry, stepped = None, []
    for t in range(x.shape[-2]):
        out, carry = gru(x[..., t, :], carry, params)
        stepped.append(out)
    expected = gradients(torch.stack(stepped, -2))
    for got, want, name in zip(gradients(gru.sequence(x, params)), expected, ["x", *params]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=name)
