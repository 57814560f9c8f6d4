"""common.learners: exact steps on a bilinear game (worked by hand), SOS invariants, the IPD gate."""

from __future__ import annotations

import pytest
import torch

from common.envs.matrix_games import exact_return_from_logits
from common.learners import (
    LEARNERS,
    hola,
    lola,
    lookahead,
    naive,
    play,
    sos,
    sos_direction,
    sos_joint_update,
    swap_seats,
)

LR = 0.1


def bilinear(x, y):
    """Zero-sum bilinear game f1 = x y, f2 = -x y, one parameter per player, batched [B, 1]."""
    f = (x * y).sum(-1)
    return f, -f


def ipd(x1, x2):
    return exact_return_from_logits(x1, x2, gamma=0.96, per_step=False)


X = torch.tensor([[1.0], [0.5]], dtype=torch.float64)
Y = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)


def test_naive_is_gradient_ascent():
    # d(xy)/dx = y
    torch.testing.assert_close(naive(X, Y, bilinear, LR), X + LR * Y)


def test_lola_differentiates_through_the_opponents_naive_step():
    # opponent: y' = y - lr x; f1(x, y') = x y - lr x^2 -> grad y - 2 lr x
    torch.testing.assert_close(lola(X, Y, bilinear, LR), X + LR * (Y - 2 * LR * X))


def test_hola2_looks_ahead_through_a_lola_opponent():
    # opponent's LOLA step: y' = y - lr (x + 2 lr y); f1 = x y' -> grad y - 2 lr x - 2 lr^2 y
    expected = X + LR * (Y - 2 * LR * X - 2 * LR**2 * Y)
    torch.testing.assert_close(hola(2)(X, Y, bilinear, LR), expected)
    torch.testing.assert_close(lookahead(X, Y, bilinear, LR, order=0), naive(X, Y, bilinear, LR))
    torch.testing.assert_close(hola(1)(X, Y, bilinear, LR), lola(X, Y, bilinear, LR))


def test_swap_seats_gives_the_other_players_view():
    x1, x2 = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    f1, f2 = ipd(x1, x2)
    g2, g1 = swap_seats(ipd)(x2, x1)
    torch.testing.assert_close((g1, g2), (f1, f2))


def test_sos_with_p_one_is_first_order_lola():
    # x=1, y=2, lr=0.1: xi_0 = (-1.9, 1.2), -lr chi = (0.1, 0.2): <., xi_0> > 0 and |xi| > b, so p = 1.
    x, y = torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64)
    direction, terms = sos_direction(x, y, bilinear, LR)
    assert float(terms["p"]) == 1.0
    torch.testing.assert_close(terms["xi_0"], torch.tensor([[-1.9, 1.2]], dtype=torch.float64))
    # First-order LOLA objective of player 1: L1 - lr grad_y L1 . grad_y L2 = -xy + lr x^2 -> -y + 2 lr x
    torch.testing.assert_close(direction, torch.tensor([[-1.8, 1.4]], dtype=torch.float64))
    x_next, y_next = sos_joint_update(x, y, bilinear, LR)
    torch.testing.assert_close(
        torch.cat([x_next, y_next], -1), torch.tensor([[1.18, 1.86]], dtype=torch.float64)
    )
    torch.testing.assert_close(sos(x, y, bilinear, LR), x_next)


def test_sos_never_lets_shaping_oppose_the_lookahead_gradient():
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(256, 5, generator=generator, dtype=torch.float64) * 2
    x2 = torch.randn(256, 5, generator=generator, dtype=torch.float64) * 2
    a = 0.5
    direction, terms = sos_direction(x1, x2, ipd, 1.0, a=a)
    xi_0 = terms["xi_0"]
    far = terms["xi"].norm(dim=-1) >= 0.1
    shrunk = terms["p"] < 1
    assert bool(shrunk.any()), "the test should visit rows where p1 < 1"
    inner = (direction * xi_0).sum(-1)
    bound = (1 - a) * (xi_0 * xi_0).sum(-1)
    assert bool((inner[far] >= bound[far] - 1e-8 * bound[far].abs().max()).all())
    assert bool(((terms["p"] >= 0) & (terms["p"] <= 1)).all())


def test_play_records_every_iterate_and_is_symmetric_in_self_play():
    x1, x2 = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    _, _, f1, f2 = play(naive, naive, x1, x2, ipd, 1.0, 3)
    assert f1.shape == f2.shape == (4, 8)
    # Swapping the seats swaps the trajectories of returns.
    _, _, g1, g2 = play(naive, naive, x2, x1, ipd, 1.0, 3)
    torch.testing.assert_close((g1, g2), (f2, f1))
    with pytest.raises(ValueError, match="iterates"):
        play(naive, naive, x1, x2, ipd, 1.0, -1)
    with pytest.raises(ValueError, match="order"):
        lookahead(x1, x2, ipd, 1.0, order=-1)


def test_ipd_gate_naive_defects_and_exact_lola_cooperates():
    """The M-FOS-setup outcomes (lr 1 on the unnormalised return, 100 iterates, logits ~ N(0, 1))."""
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    x2 = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    per_step = 1 - 0.96
    _, _, f1, f2 = play(naive, naive, x1, x2, ipd, 1.0, 100)
    assert float(0.5 * (f1[-1] + f2[-1]).mean()) * per_step <= -1.8
    _, _, f1, f2 = play(lola, lola, x1, x2, ipd, 1.0, 100)
    assert float(0.5 * (f1[-1] + f2[-1]).mean()) * per_step >= -1.3
    assert set(LEARNERS) >= {"naive", "lola", "hola2", "sos"}
