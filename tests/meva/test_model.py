"""meva.model / games / rollouts: exact identities of the method (U = 0 is naive, seat symmetry, TD)."""

from __future__ import annotations

import copy

import pytest
import torch

from common.learners import naive, play
from meva.games import make_game
from meva.model import (
    MetaValue,
    ema_update,
    meta_values,
    meva_learner,
    meva_step,
    sample_head_noise,
    td_loss,
    td_targets,
)
from meva.rollouts import Rollouts, heldout_states


def zero_value(n_params: int) -> MetaValue:
    value = MetaValue(n_params, hidden=8, layers=2).double()
    with torch.no_grad():
        value.head.weight.zero_()
        value.head.bias.zero_()
    return value


def logits(batch: int, n: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, n, generator=generator, dtype=torch.float64) for _ in range(2))


@pytest.mark.parametrize("name", ["ipd", "imp", "chicken", "toy"])
def test_zero_u_is_the_naive_learner(name):
    game = make_game(name)
    x1, x2 = logits(16, game.n_params)
    value = zero_value(game.n_params)
    y1, y2 = meva_step(game, value, x1, x2, lr=1.0)
    torch.testing.assert_close(y1, naive(x1, x2, game.returns, 1.0))
    torch.testing.assert_close(y2, naive(x2, x1, lambda a, b: game.returns(b, a)[::-1], 1.0))
    learner = meva_learner(value, game.horizon)
    torch.testing.assert_close(learner(x1, x2, game.returns, 1.0), y1)


def test_seat_symmetry_of_the_meta_value():
    game = make_game("ipd")
    value = MetaValue(5, hidden=8).double()
    x1, x2 = logits(8, 5)
    v1, v2 = meta_values(game, value, x1, x2)
    w2, w1 = meta_values(game, value, x2, x1)
    torch.testing.assert_close((v1, v2), (w1, w2))
    s1, s2 = meva_step(game, value, x1, x2, 1.0)
    t2, t1 = meva_step(game, value, x2, x1, 1.0)
    torch.testing.assert_close((s1, s2), (t1, t2))


def test_td_targets_follow_the_u_bellman_equation():
    game = make_game("ipd")
    value, target = MetaValue(5, hidden=8).double(), MetaValue(5, hidden=8).double()
    x1, x2 = logits(8, 5)
    y1, y2, n1, n2 = td_targets(game, value, target, x1, x2, 1.0, meta_gamma=0.9)
    f1, f2 = game.per_step(n1, n2)
    with torch.no_grad():
        torch.testing.assert_close(y1, 0.9 * (f1 + target(n1, n2)))
        torch.testing.assert_close(y2, 0.9 * (f2 + target(n2, n1)))
    zero = td_targets(game, value, target, x1, x2, 1.0, meta_gamma=0.0)
    assert float(zero[0].abs().max()) == 0.0 and float(zero[1].abs().max()) == 0.0
    loss = td_loss(value, x1, x2, y1, y2)
    assert loss.requires_grad and float(loss.detach()) >= 0


def test_head_noise_and_ema():
    value = MetaValue(5, hidden=8).double()
    x1, x2 = logits(4, 5)
    zero_noise = (torch.zeros(4, 8, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(value(x1, x2, zero_noise), value(x1, x2))
    noise = sample_head_noise(value, 4, 0.5, torch.Generator().manual_seed(0))
    assert not torch.allclose(value(x1, x2, noise), value(x1, x2))
    target = copy.deepcopy(value)
    with torch.no_grad():
        for p in value.parameters():
            p.add_(1.0)
    ema_update(target, value, 0.25)
    for p_t, p in zip(target.parameters(), value.parameters()):
        torch.testing.assert_close(p_t, p - 0.75)


def test_games_payoffs_and_shapes():
    toy = make_game("toy")
    big = torch.tensor([[20.0]], dtype=torch.float64)
    f1, f2 = toy.per_step(big, big)  # both cooperate: 4 each
    torch.testing.assert_close(
        (f1, f2), (torch.tensor([4.0]).double(), torch.tensor([4.0]).double())
    )
    f1, f2 = toy.per_step(big, -big)  # I cooperate, the other defects: 0 / 3
    assert abs(float(f1) - 0.0) < 1e-6 and abs(float(f2) - 3.0) < 1e-6
    chicken = make_game("chicken")
    f1, f2 = chicken.per_step(-big, -big)  # both straight: crash
    assert abs(float(f1) + 100) < 1e-6 and chicken.horizon == 1.0
    assert abs(make_game("ipd").horizon - 25.0) < 1e-9
    with pytest.raises(ValueError, match="takes"):
        make_game("ipd").per_step(big, big)
    with pytest.raises(ValueError, match="unknown game"):
        make_game("go")


def test_rollouts_stagger_reset_and_round_trip():
    game = make_game("ipd")
    value = MetaValue(5, hidden=8).double()
    rollouts = Rollouts(game, value, 8, 4, 0.5, 0.1, torch.Generator().manual_seed(0))
    assert rollouts.t.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert rollouts.exploring.tolist() == [True] * 4 + [False] * 4
    state = copy.deepcopy(rollouts.state_dict())
    _, _, n1, n2 = td_targets(game, value, value, rollouts.x1, rollouts.x2, 1.0, 0.9)
    e1, e2 = rollouts.exploring_step(1.0)
    rollouts.advance(n1, n2, e1, e2)
    assert rollouts.t.tolist() == [1, 1, 2, 2, 3, 3, 0, 0]
    torch.testing.assert_close(rollouts.x1[4:6], n1[4:6])  # unperturbed rows take the clean step
    torch.testing.assert_close(rollouts.x1[:4], e1)  # exploring rows take the perturbed one
    assert not torch.allclose(rollouts.x1[6:], n1[6:])  # finished rows restarted
    rollouts.load_state_dict(state)
    torch.testing.assert_close(rollouts.x1, state["x1"])
    h1, h2 = heldout_states(game, 4, 10, 5, 1.0, seed=3)
    assert h1.shape == h2.shape == (8, 5)
    _, _, f1, _ = play(naive, naive, h1[:4], h2[:4], game.returns, 1.0, 0)
    assert f1.shape == (1, 4)
