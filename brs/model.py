"""Best Response Shaping (Aghajohari, Cooijmans, Duque, Akatsuka, Courville; arXiv 2404.06519), reconstructed.

The authors' code is not public: everything below the paper's equations is our reconstruction (README.md).
We could not check the PDF's section numbers, so comments name the part of the paper instead.

    detective (the follower)   phi* ~ argmax_phi  E_{theta' ~ D} [ J2(pi_theta', pi_phi(. | ., C(theta'))) ]
        D = the current leader, past leaders (a replay buffer), and (IPD) perturbed and random agents.
    conditioning by question answering (the detective's input)
        C_t(theta) = answers of pi_theta to questions q_t built from the detective's state s_t:
        IPD:  the five memory-1 questions "P(C | start, CC, CD, DC, DD)?", i.e. C(theta) = sigmoid(theta);
        Coin: the current state and the same state with the coin's owner flipped, each answered by the
              agent's action distribution with its own recurrent state (state-aware QA).
    BRS leader update: differentiate the leader's return through the detective's response
        grad J1 ~ E[ sum_t A1_t ( grad log pi_theta(a1_t | h_t) + grad log pi_phi(a2_t | h_t, C_t(theta)) ) ]
        (IPD: the exact value V1(theta, phi(C(theta))), differentiated through C(theta) by autograd).
    BRS-SP: + w_sp x the cooperative self-play return J1(theta, theta) + J2(theta, theta), the agent
        differentiated in both seats.

Rollouts (Coin Game) are in rollouts.py, the MCTS opponent in mcts.py, the best-response probes in probe.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.envs.matrix_games import exact_return_from_logits


# ----------------------------------------------------------------------------------------------- IPD
def ipd_answers(agent_logits: Tensor) -> Tensor:
    """QA conditioning in the IPD: the agent's answers to the five memory-1 questions, its P(C)."""
    return torch.sigmoid(agent_logits)


class IPDDetective(nn.Module):
    """MLP 5 -> hidden -> hidden -> 5: the agent's five answers in, the detective's five logits out."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(5, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 5),
        )

    def forward(self, answers: Tensor) -> Tensor:
        return self.net(answers)


def ipd_values(
    agent_logits: Tensor, opponent_logits: Tensor, gamma: float
) -> tuple[Tensor, Tensor]:
    """Exact per-step discounted values (V_agent, V_opponent) of memory-1 policies [B, 5] (seat 0 = agent)."""
    return exact_return_from_logits(agent_logits, opponent_logits, gamma=gamma)


def ipd_detective_loss(
    detective: IPDDetective, agents: Tensor, gamma: float, logit_penalty: float = 0.0
) -> Tensor:
    """-E_{theta' ~ D} J2(theta', phi(C(theta'))) : the agents are constants here.

    + logit_penalty x mean(logits^2): exact gradients drive the detective's logits to +-30 within the
    warm-up, where the sigmoid's gradient vanishes and it stops learning (ours, calibrated: with the
    penalty it learns to cooperate with tit-for-tat, without it 2 of 3 seeds stay at -1.63).
    """
    agents = agents.detach()
    reply = detective(ipd_answers(agents))
    _, detective_value = ipd_values(agents, reply, gamma)
    return -detective_value.mean() + logit_penalty * reply.pow(2).mean()


def ipd_leader_objective(
    theta: Tensor,
    detective: IPDDetective | None,
    variant: str,
    gamma: float,
    detective_weight: float = 1.0,
    self_play_weight: float = 1.0,
) -> dict[str, Tensor]:
    """The leader's objective terms (to be maximised) for a variant of config.VARIANTS; theta [5].

    brs / brs_sp: V1(theta, phi(C(theta))), theta entering the detective's input (paper: the BRS update).
    brs_sp / brs_sp_no_detective: + V1(theta, theta) + V2(theta, theta), both seats differentiated (paper: BRS-SP).
    naive: V1(theta, sg(theta)): gradient ascent on its own return in self-play (the control).
    """
    terms: dict[str, Tensor] = {}
    if variant in ("brs", "brs_sp"):
        response = detective(ipd_answers(theta))  # differentiable in theta through the answers
        terms["detective"] = detective_weight * ipd_values(theta, response, gamma)[0]
    if variant in ("brs_sp", "brs_sp_no_detective"):
        own, other = ipd_values(theta, theta, gamma)
        terms["self_play"] = self_play_weight * (own + other)
    if variant == "naive":
        terms["naive"] = ipd_values(theta, theta.detach(), gamma)[0]
    return terms


# ------------------------------------------------------------------------------------------ Coin Game
class GRUPolicy(nn.Module):
    """Linear -> ReLU -> GRU cell -> (policy logits, value heads): a POLA-style recurrent agent."""

    def __init__(self, in_dim: int, hidden: int, num_actions: int = 4, value_heads: int = 1):
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.Linear(in_dim, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.policy = nn.Linear(hidden, num_actions)
        self.value = nn.Linear(hidden, value_heads)

    def initial_carry(self, batch: int) -> Tensor:
        return self.encoder.weight.new_zeros(batch, self.hidden)

    def forward(self, x: Tensor, carry: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, in], carry [B, H] -> logits [B, A], values [B, heads], next carry [B, H]."""
        carry = self.cell(torch.relu(self.encoder(x)), carry)
        return self.policy(carry), self.value(carry), carry


class CoinAgent(GRUPolicy):
    """The leader: observation planes in; value heads 0 = vs the detective, 1 = self-play (sum of returns)."""

    def __init__(self, obs_dim: int, hidden: int):
        super().__init__(obs_dim, hidden, value_heads=2)


class CoinDetective(GRUPolicy):
    """The follower: its own observation planes plus the agent's answers (questions x 4 probabilities)."""

    def __init__(self, obs_dim: int, hidden: int, questions: int):
        super().__init__(obs_dim + 4 * questions, hidden, value_heads=1)
        self.questions = questions


def question_states(agent_obs: Tensor, questions: int) -> Tensor:
    """State-aware questions from the agent's view [B, 4, H, W] -> [questions * B, 4, H, W].

    q1 = the current state; q2 = the same state with the coin's owner flipped (channels 2 <-> 3):
    "what would you do if this coin were the other's?" (our choice of question; the paper's set is unknown).
    """
    asked = [agent_obs]
    if questions == 2:
        asked.append(agent_obs[:, [0, 1, 3, 2]])
    return torch.cat(asked, dim=0)


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """R_t = sum_{k >= t} gamma^(k - t) r_k over the last dim, rewards [..., T] -> [..., T]."""
    steps = rewards.shape[-1]
    t = torch.arange(steps, device=rewards.device)
    power = (t.view(1, -1) - t.view(-1, 1)).to(rewards.dtype)  # [t, k] = k - t
    discount = torch.where(power >= 0, gamma**power, torch.zeros_like(power))
    return rewards @ discount.T


def actor_critic_loss(
    logp: Tensor, values: Tensor, returns: Tensor, entropy: Tensor, entropy_beta: float
) -> tuple[Tensor, Tensor]:
    """A2C on Monte-Carlo returns: (policy loss - beta H, value loss); logp, values, returns, entropy [B, T]."""
    advantage = (returns - values).detach()
    policy = -(logp * advantage).mean() - entropy_beta * entropy.mean()
    value = 0.5 * (values - returns.detach()).pow(2).mean()
    return policy, value


def brs_leader_loss(
    episode: dict[str, Tensor], gamma: float, detective_weight: float
) -> dict[str, Tensor]:
    """The BRS update on an agent-vs-detective episode (rollouts.play, answers kept differentiable in theta).

    -mean_t A1_t (log pi_theta(a1_t) + w log pi_phi(a2_t | h_t, C_t(theta))), A1_t = R1_t - V1(h_t), plus the
    value loss of the agent's detective head.
    """
    returns = discounted_returns(episode["rewards"][..., 0], gamma)
    values = episode["values"][..., 0]
    advantage = (returns - values).detach()
    own = -(episode["logp"][..., 0] * advantage).mean()
    through_detective = -(episode["logp"][..., 1] * advantage).mean()
    value = 0.5 * (values - returns).pow(2).mean()
    return {"own": own, "through_detective": detective_weight * through_detective, "value": value}


def self_play_loss(episode: dict[str, Tensor], gamma: float, weight: float) -> dict[str, Tensor]:
    """BRS-SP on a self-play episode: both seats maximise the sum of the two returns (own critic head 1)."""
    total = discounted_returns(episode["rewards"].sum(-1), gamma).unsqueeze(-1)  # [B, T, 1]
    values = episode["values"]  # [B, T, 2]: each seat's self-play head (rollouts.play, self-play)
    advantage = (total - values).detach()
    policy = -(episode["logp"] * advantage).mean()
    value = 0.5 * (values - total).pow(2).mean()
    return {"self_play": weight * policy, "self_play_value": value}
