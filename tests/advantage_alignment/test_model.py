"""Exact math of the aligned advantage and the AA / PAA losses (arXiv 2406.14662 Eq. 8-9)."""

from __future__ import annotations

import torch

from advantage_alignment.model import (
    aa_actor_loss,
    aligned_advantage,
    alignment_term,
    gae,
    paa_actor_loss,
    past_own_advantage,
)
from advantage_alignment.networks import RecurrentNet, ipd_state_values
from common.agent_buffer import AgentBuffer
from common.envs.matrix_games import exact_discounted_return


def naive_alignment(own, opp, aggregation, gamma):
    """The double loop of Eq. 8 / the authors' running mean, written out."""
    batch, steps = own.shape
    out = torch.zeros_like(own)
    for b in range(batch):
        for t in range(steps):
            if t == 0:
                continue
            if aggregation == "mean":
                past = sum(own[b, k] for k in range(t)) / t
            else:
                past = gamma * sum(gamma ** (t - k) * own[b, k] for k in range(t))
            out[b, t] = past * opp[b, t]
    return out


def test_alignment_term_matches_a_double_loop_for_both_aggregations():
    gen = torch.Generator().manual_seed(0)
    own, opp = torch.randn(3, 7, generator=gen), torch.randn(3, 7, generator=gen)
    for aggregation in ("mean", "discounted"):
        torch.testing.assert_close(
            alignment_term(own, opp, aggregation=aggregation, gamma=0.9),
            naive_alignment(own, opp, aggregation, 0.9),
        )


def test_decayed_aggregation_is_a_short_memory_that_includes_the_current_step():
    """The authors' Coin Game form: sum_{k<=t} d^(t-k) A1_k, written out as a double loop."""
    gen = torch.Generator().manual_seed(3)
    own, opp = torch.randn(3, 7, generator=gen), torch.randn(3, 7, generator=gen)
    decay = 0.864
    expected = torch.zeros_like(own)
    for b in range(3):
        for t in range(7):
            past = sum(decay ** (t - k) * own[b, k] for k in range(t + 1))
            expected[b, t] = past * opp[b, t]
    got = alignment_term(own, opp, aggregation="decayed", decay=decay)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got[:, 0], own[:, 0] * opp[:, 0])  # the step itself, weight 1
    assert not torch.allclose(got, alignment_term(own, opp, aggregation="decayed", decay=0.5))


def test_alignment_uses_only_strictly_past_own_advantages_and_starts_at_zero():
    gen = torch.Generator().manual_seed(1)
    own, opp = torch.randn(2, 6, generator=gen), torch.randn(2, 6, generator=gen)
    base = alignment_term(own, opp)
    assert torch.all(base[:, 0] == 0)
    bumped = own.clone()
    bumped[:, 3] += 10.0
    changed = alignment_term(bumped, opp)
    torch.testing.assert_close(changed[:, :4], base[:, :4])  # align_t for t <= 3 is unchanged
    assert not torch.allclose(changed[:, 4:], base[:, 4:])
    assert torch.equal(past_own_advantage(own)[:, 0], torch.zeros(2))


def test_n_player_form_sums_the_other_agents_advantages():
    gen = torch.Generator().manual_seed(2)
    own, others = torch.randn(2, 5, generator=gen), torch.randn(2, 5, 3, generator=gen)
    torch.testing.assert_close(alignment_term(own, others), alignment_term(own, others.sum(-1)))


def test_beta_zero_is_plain_policy_gradient_bit_for_bit():
    gen = torch.Generator().manual_seed(3)
    own, opp = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    logits = torch.randn(4, 5, 2, generator=gen, requires_grad=True)
    log_prob = torch.log_softmax(logits, -1)[..., 0]
    for normalize in (True, False):
        aligned = aligned_advantage(own, opp, 0.0, normalize=normalize)
        expected = (own - own.mean()) / (own.std() + 1e-8) if normalize else own
        assert torch.equal(aligned, expected)
        grad_aa = torch.autograd.grad(aa_actor_loss(log_prob, aligned), logits, retain_graph=True)[
            0
        ]
        grad_pg = torch.autograd.grad(-(expected * log_prob).mean(), logits, retain_graph=True)[0]
        assert torch.equal(grad_aa, grad_pg)


def test_aligned_advantage_leaves_its_inputs_untouched_and_adds_beta_times_the_term():
    own, opp = torch.randn(2, 4), torch.randn(2, 4)
    own_copy, opp_copy = own.clone(), opp.clone()
    aligned = aligned_advantage(own, opp, 2.0, normalize=False)
    assert torch.equal(own, own_copy) and torch.equal(opp, opp_copy)
    torch.testing.assert_close(aligned, own + 2.0 * alignment_term(own, opp))


def test_sign_quadrants_of_fig_1a():
    """Past own advantage x current opponent advantage: ++ and -- reinforce, mixed discourage."""
    own = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    opp = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0], [0.0, -1.0]])
    term = alignment_term(own, opp)[:, 1]
    assert term.tolist() == [1.0, -1.0, -1.0, 1.0]


def test_paa_equals_aa_gradient_at_the_old_policy_and_clips_far_from_it():
    gen = torch.Generator().manual_seed(4)
    adv = torch.randn(3, 4, generator=gen)
    log_prob = torch.randn(3, 4, generator=gen).requires_grad_()
    g_paa = torch.autograd.grad(paa_actor_loss(log_prob, log_prob.detach(), adv), log_prob)[0]
    g_aa = torch.autograd.grad(aa_actor_loss(log_prob, adv), log_prob)[0]
    torch.testing.assert_close(g_paa, g_aa)  # ratio 1: d(rho)/d(log pi) = 1
    far = (log_prob.detach() + 1.0).requires_grad_()  # rho = e > 1 + clip
    g_far = torch.autograd.grad(paa_actor_loss(far, log_prob.detach(), torch.ones(3, 4)), far)[0]
    assert torch.all(g_far == 0)  # positive advantage beyond the clip: no push further


def test_gae_matches_discounted_returns_minus_values_at_lambda_one():
    gen = torch.Generator().manual_seed(5)
    rewards, values = torch.randn(2, 6, generator=gen), torch.randn(2, 7, generator=gen)
    values[:, -1] = 0
    returns = torch.zeros(2, 6)
    running = torch.zeros(2)
    for t in range(5, -1, -1):
        running = rewards[:, t] + 0.9 * running
        returns[:, t] = running
    torch.testing.assert_close(gae(rewards, values, gamma=0.9, lam=1.0), returns - values[:, :-1])


def test_ipd_state_values_agree_with_the_exact_return_at_the_start():
    gen = torch.Generator().manual_seed(6)
    p1, p2 = torch.rand(5, generator=gen), torch.rand(5, generator=gen)
    values = ipd_state_values(p1, p2, gamma=0.96)
    v1, v2 = exact_discounted_return(p1, p2, gamma=0.96, per_step=False)
    torch.testing.assert_close(values[0], torch.stack([v1, v2]))


def test_recurrent_net_on_stacked_parameters_equals_each_member():
    torch.manual_seed(0)
    nets = [RecurrentNet(5, 8, 3) for _ in range(2)]
    buffer = AgentBuffer(4)
    for net in nets:
        buffer.push(net)
    stacked = {k: v[:2] for k, v in buffer.storage.items()}
    x = torch.randn(2, 3, 4, 5)
    out = nets[0].sequence(x, stacked)
    for k in range(2):
        torch.testing.assert_close(out[k], nets[k].sequence(x[k : k + 1]).squeeze(0))
    carry = nets[0].initial_carry(2, 3, x)
    step_out, _ = nets[0].step(x[:, :, 0], carry, stacked)
    torch.testing.assert_close(step_out, out[:, :, 0])
