"""Exact, differentiable repeated matrix games (environments.md 1.3 and 2).

Semantics under test: p = P(C | start, CC, CD, DC, DD) from each player's own perspective; the exact
discounted return V^i = p0^T (I - gamma P)^{-1} r^i, reported per step as (1 - gamma) V^i; it must
equal the analytic values of the spec, a brute-force power series, and a Monte-Carlo estimate from
the sampled IPD environment within its standard error.
"""

import pytest
import torch

from common.envs import (
    GAMES,
    IPD_ALWAYS_COOPERATE,
    IPD_ALWAYS_DEFECT,
    IPD_RANDOM,
    IPD_TIT_FOR_TAT,
    IteratedPrisonersDilemma,
    average_reward_finite_horizon,
    exact_discounted_return,
    exact_return_from_logits,
    ipd_act,
    markov_chain,
    one_shot_expected_reward,
)

AC, AD, TFT = IPD_ALWAYS_COOPERATE, IPD_ALWAYS_DEFECT, IPD_TIT_FOR_TAT


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("p1", "p2", "expected"),
    [
        (AC, AC, (-1.0, -1.0)),
        (AD, AD, (-2.0, -2.0)),
        (AC, AD, (-3.0, 0.0)),
        (TFT, TFT, (-1.0, -1.0)),
        (TFT, AC, (-1.0, -1.0)),
        # TFT cooperates once then defects forever against AD: -3(1-g) - 2g and -2g (gamma = 0.96).
        (TFT, AD, (-3 * 0.04 - 2 * 0.96, -2 * 0.96)),
    ],
)
def test_exact_ipd_per_step_value_matches_spec_known_values(p1, p2, expected):
    v1, v2 = exact_discounted_return(p1.double(), p2.double(), game="ipd", gamma=0.96)
    assert float(v1) == pytest.approx(expected[0], abs=1e-9), "player 1's per-step value"
    assert float(v2) == pytest.approx(expected[1], abs=1e-9), "player 2's per-step value"


def test_swapping_the_players_swaps_the_returns():
    theta = torch.randn(64, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for game in ("ipd", "imp", "stag_hunt", "chicken_pax"):
        v1, v2 = exact_return_from_logits(theta[:, 0], theta[:, 1], game=game)
        w1, w2 = exact_return_from_logits(theta[:, 1], theta[:, 0], game=game)
        # The games are symmetric (r2 = r1 with the roles swapped) except IMP, which is zero-sum
        # with player 1 the "mismatcher": swapping seats there is not a symmetry.
        if game == "imp":
            torch.testing.assert_close(v1 + v2, torch.zeros_like(v1), msg="IMP is zero-sum")
        else:
            torch.testing.assert_close((v1, v2), (w2, w1), msg=f"seat symmetry of {game}")


def test_exact_return_equals_brute_force_power_series():
    gen = torch.Generator().manual_seed(1)
    p1, p2 = torch.rand(16, 5, generator=gen).double(), torch.rand(16, 5, generator=gen).double()
    gamma = 0.9
    p0, transition = markov_chain(p1, p2)
    r1, r2 = (r.double() for r in GAMES["ipd"])
    distribution, v1, v2 = p0, 0.0, 0.0
    for t in range(600):  # gamma^600 ~ 1e-28
        v1 = v1 + gamma**t * distribution @ r1
        v2 = v2 + gamma**t * distribution @ r2
        distribution = (distribution.unsqueeze(1) @ transition).squeeze(1)
    e1, e2 = exact_discounted_return(p1, p2, gamma=gamma, per_step=False)
    torch.testing.assert_close((e1, e2), (v1, v2))


def test_transition_rows_are_distributions_and_player2_sees_its_own_perspective():
    gen = torch.Generator().manual_seed(2)
    p1, p2 = torch.rand(8, 5, generator=gen), torch.rand(8, 5, generator=gen)
    p0, transition = markov_chain(p1, p2)
    torch.testing.assert_close(p0.sum(-1), torch.ones(8))
    torch.testing.assert_close(transition.sum(-1), torch.ones(8, 4))
    # After global CD (1 cooperated, 2 defected), player 2 is in its own state DC = index 3 of p2.
    prob_2_cooperates_after_cd = transition[:, 1, 0] + transition[:, 1, 2]
    torch.testing.assert_close(prob_2_cooperates_after_cd, p2[:, 3])


def test_exact_return_is_twice_differentiable_in_float64():
    gen = torch.Generator().manual_seed(3)
    theta1 = torch.randn(3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    theta2 = torch.randn(3, 5, dtype=torch.float64, generator=gen, requires_grad=True)

    def both_values(a, b):
        return torch.stack(exact_return_from_logits(a, b, game="ipd"))

    assert torch.autograd.gradcheck(both_values, (theta1, theta2))
    assert torch.autograd.gradgradcheck(both_values, (theta1, theta2))


def test_lola_style_lookahead_differentiates_through_the_opponents_step():
    """Player 1 differentiates its value after player 2's naive gradient step (exact LOLA, lr 1)."""
    theta1 = torch.zeros(1, 5, dtype=torch.float64, requires_grad=True)
    theta2 = torch.zeros(1, 5, dtype=torch.float64, requires_grad=True)
    _, v2 = exact_return_from_logits(theta1, theta2)
    (grad2,) = torch.autograd.grad(v2.sum(), theta2, create_graph=True)
    v1_after, _ = exact_return_from_logits(theta1, theta2 + grad2)
    (lola_grad,) = torch.autograd.grad(v1_after.sum(), theta1)
    (naive_grad,) = torch.autograd.grad(exact_return_from_logits(theta1, theta2)[0].sum(), theta1)
    assert torch.isfinite(lola_grad).all()
    assert not torch.allclose(lola_grad, naive_grad), "the look-ahead term must change the gradient"


def test_finite_horizon_average_matches_the_spec_table():
    r = average_reward_finite_horizon(TFT, AD, horizon=50)
    assert float(r[0]) == pytest.approx((-3 + 49 * -2) / 50, abs=1e-6)
    assert float(r[1]) == pytest.approx((0 + 49 * -2) / 50, abs=1e-6)
    r = average_reward_finite_horizon(AC, AD, horizon=50)
    assert (float(r[0]), float(r[1])) == pytest.approx((-3.0, 0.0), abs=1e-6)


def _sampled_ipd_returns(p1, p2, *, batch, steps, gamma, seed):
    """Discounted per-step return and average reward per step of each episode: [B] x 2 x 2."""
    env = IteratedPrisonersDilemma(episode_length=steps)
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset(batch)
    discounted = torch.zeros(batch, 2, dtype=torch.float64)
    total = torch.zeros(batch, 2, dtype=torch.float64)
    for t in range(steps):
        actions = torch.stack([ipd_act(p1, obs[:, 0], gen), ipd_act(p2, obs[:, 1], gen)], dim=1)
        obs, rewards, _, _ = env.step(actions)
        discounted += (1 - gamma) * gamma**t * rewards.double()
        total += rewards.double()
    return discounted, total / steps


def test_exact_return_matches_monte_carlo_of_the_sampled_ipd_within_standard_error():
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        p1, p2 = torch.rand(5, generator=gen), torch.rand(5, generator=gen)
        # 0.96^250 ~ 4e-5: truncation bias far below the standard error.
        mc, _ = _sampled_ipd_returns(p1, p2, batch=4096, steps=250, gamma=0.96, seed=5)
        exact = torch.stack(exact_discounted_return(p1.double(), p2.double()))
        mean, sem = mc.mean(0), mc.std(0) / mc.shape[0] ** 0.5
        assert ((mean - exact).abs() < 4 * sem + 1e-4).all(), (
            f"MC {mean} vs exact {exact} (sem {sem})"
        )


def test_finite_horizon_average_matches_monte_carlo():
    p1, p2 = IPD_RANDOM, torch.tensor([0.9, 0.8, 0.1, 0.7, 0.3])
    _, average = _sampled_ipd_returns(p1, p2, batch=4096, steps=50, gamma=0.96, seed=6)
    exact = torch.stack(average_reward_finite_horizon(p1.double(), p2.double(), horizon=50))
    mean, sem = average.mean(0), average.std(0) / average.shape[0] ** 0.5
    assert ((mean - exact).abs() < 4 * sem).all(), f"MC {mean} vs exact {exact} (sem {sem})"


def test_one_shot_chicken_uses_the_minus_100_crash():
    swerve, straight = torch.ones(1), torch.zeros(1)
    assert float(one_shot_expected_reward(straight, straight)[0]) == -100.0
    assert float(one_shot_expected_reward(straight, swerve)[0]) == 1.0
    assert float(one_shot_expected_reward(swerve, straight)[1]) == 1.0
    with pytest.raises(ValueError, match="one-shot"):
        exact_discounted_return(AC, AC, game="chicken_mfos")


def test_imp_is_zero_sum_and_stag_hunt_rewards_mutual_cooperation():
    v1, v2 = exact_discounted_return(IPD_RANDOM, TFT, game="imp")
    assert float(v1 + v2) == pytest.approx(0.0, abs=1e-6)
    assert float(exact_discounted_return(AC, AC, game="stag_hunt")[0]) == pytest.approx(4.0)


def test_bad_policies_raise_one_line_errors_naming_shape_and_range():
    with pytest.raises(ValueError, match=r"shape \[B, 5\]"):
        exact_discounted_return(torch.rand(3, 4), torch.rand(3, 5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        exact_discounted_return(torch.full((5,), 1.5), AC)
    with pytest.raises(ValueError, match="unknown game"):
        exact_discounted_return(AC, AC, game="pd")
