"""Coin Game, LOLA/POLA/LOQA variant (environments.md 3).

Semantics: 3x3..7x7 torus, 4 moves (0 left, 1 right, 2 up, 3 down), one coin with an owner; every
taker gets +1 and the owner gets -2 whenever the other player took its coin (also when both took
it); after a pickup the coin respawns on a cell free of both players and its owner alternates,
otherwise it stays. Seat i's observation is [my pos, other's pos, my coin, other's coin]; seat 1
sees seat 0's planes with channels 0<->1 and 2<->3 swapped. The batched env must equal the per-env
pure-Python reference on any actions and respawn draws.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.envs import (
    CoinGame,
    ReferenceCoinGame,
    coin_always_cooperate,
    coin_always_defect,
    coin_game_summary,
    coin_random,
)
from common.envs.coin_game import free_cell_from_draw, respawn_draw_range

LEFT, RIGHT, UP, DOWN = 0, 1, 2, 3


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _step(env, a0, a1):
    return env.step(torch.tensor([[a0, a1]]))


# ---------------------------------------------------------------- equivalence with the reference
@st.composite
def coin_episodes(draw):
    """A grid, a batch of valid start states, and a sequence of joint actions and respawn draws."""
    size = draw(st.integers(2, 7))
    batch = draw(st.integers(1, 5))
    steps = draw(st.integers(1, 25))
    cells = size * size
    states = []
    for _ in range(batch):
        players = [draw(st.integers(0, cells - 1)) for _ in range(2)]
        free = [c for c in range(cells) if c not in players]
        coin = draw(st.sampled_from(free))
        states.append((players, coin, draw(st.integers(0, 1))))
    joint = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 10**6))
    plays = draw(
        st.lists(st.lists(joint, min_size=batch, max_size=batch), min_size=steps, max_size=steps)
    )
    return size, states, plays


@settings(max_examples=60, deadline=None)
@given(episode=coin_episodes())
def test_batched_coin_game_equals_the_per_env_reference(episode):
    size, states, plays = episode
    env = CoinGame(grid_size=size, episode_length=len(plays))
    references = [ReferenceCoinGame(size, size, episode_length=len(plays)) for _ in states]
    player_pos = torch.tensor([[divmod(c, size) for c in players] for players, _, _ in states])
    coin_pos = torch.tensor([divmod(coin, size) for _, coin, _ in states])
    owner = torch.tensor([o for _, _, o in states])
    obs = env.set_state(player_pos=player_pos, coin_pos=coin_pos, coin_owner=owner)
    expected_obs = [
        ref.reset(player_pos[i].tolist(), coin_pos[i].tolist(), int(owner[i]))
        for i, ref in enumerate(references)
    ]
    assert obs.tolist() == expected_obs
    for t, joint in enumerate(plays):
        actions = torch.tensor([[a0, a1] for a0, a1, _ in joint])
        draws = torch.tensor([d for _, _, d in joint])
        obs, rewards, done, info = env.step(actions, respawn_draws=draws)
        expected = [ref.step(a0, a1, d) for ref, (a0, a1, d) in zip(references, joint)]
        assert rewards.tolist() == [e[1] for e in expected], f"rewards differ at t={t}"
        assert obs.tolist() == [e[0] for e in expected], f"observations differ at t={t}"
        assert env.player_pos.tolist() == [[list(p) for p in r.player_pos] for r in references]
        assert env.coin_pos.tolist() == [list(r.coin_pos) for r in references], f"coin at t={t}"
        assert env.coin_owner.tolist() == [r.coin_owner for r in references]
        assert info["own_coin_pickups"].tolist() == [e[3]["own_coin_pickups"] for e in expected]
        assert info["other_coin_pickups"].tolist() == [e[3]["other_coin_pickups"] for e in expected]
        assert done.tolist() == [e[2] for e in expected]


# --------------------------------------------------------------------------- hand-built states
def test_moves_wrap_around_the_torus():
    env = CoinGame(grid_size=3)
    env.set_state(player_pos=[[[0, 0], [2, 2]]], coin_pos=[[1, 1]], coin_owner=[0])
    _step(env, LEFT, RIGHT)
    assert env.player_pos.tolist() == [[[0, 2], [2, 0]]], (
        "left from col 0 -> col 2, right from 2 -> 0"
    )
    _step(env, UP, DOWN)
    assert env.player_pos.tolist() == [[[2, 2], [0, 0]]], "up from row 0 -> row 2, down from 2 -> 0"


def test_taking_your_own_coin_gives_plus_one_and_nothing_to_the_other():
    env = CoinGame(grid_size=3)
    env.set_state(player_pos=[[[0, 0], [2, 2]]], coin_pos=[[0, 1]], coin_owner=[0])
    _, rewards, _, info = _step(env, RIGHT, UP)
    assert rewards.tolist() == [[1.0, 0.0]]
    assert info["own_coin_pickups"].tolist() == [[1.0, 0.0]]
    assert env.coin_owner.tolist() == [1], "owner alternates after a pickup"


def test_taking_the_others_coin_costs_its_owner_two():
    env = CoinGame(grid_size=3)
    env.set_state(player_pos=[[[0, 0], [2, 2]]], coin_pos=[[0, 1]], coin_owner=[1])
    _, rewards, _, info = _step(env, RIGHT, UP)
    assert rewards.tolist() == [[1.0, -2.0]]
    assert info["other_coin_pickups"].tolist() == [[1.0, 0.0]]


def test_simultaneous_pickup_gives_both_plus_one_and_the_owner_minus_two_on_top():
    env = CoinGame(grid_size=3)
    env.set_state(player_pos=[[[0, 0], [0, 2]]], coin_pos=[[0, 1]], coin_owner=[0])
    _, rewards, _, info = _step(env, RIGHT, LEFT)
    assert rewards.tolist() == [[-1.0, 1.0]], "owner nets +1 - 2 = -1 (the authors' code rule)"
    assert info["own_coin_pickups"].tolist() == [[1.0, 0.0]]
    assert info["other_coin_pickups"].tolist() == [[0.0, 1.0]]


def test_coin_stays_put_and_keeps_its_owner_until_taken():
    env = CoinGame(grid_size=3, seed=3)
    env.set_state(player_pos=[[[0, 0], [0, 0]]], coin_pos=[[2, 2]], coin_owner=[1])
    for _ in range(4):
        _, rewards, _, _ = _step(
            env, DOWN, RIGHT
        )  # rows 1,2,0,1 / cols 1,2,0,1: never (2, 2) jointly
        if rewards.abs().sum() == 0:
            assert env.coin_pos.tolist() == [[2, 2]] and env.coin_owner.tolist() == [1]


def test_respawn_draws_pick_every_free_cell_equally_often():
    """Draws in [0, (n-1)(n-2)) map exactly uniformly onto the n-2 (or n-1) free cells."""
    for a, b in ((0, 4), (3, 3), (8, 0)):
        draws = torch.arange(respawn_draw_range(9))
        cells = free_cell_from_draw(torch.full_like(draws, a), torch.full_like(draws, b), draws, 9)
        counts = torch.bincount(cells, minlength=9)
        free = [c for c in range(9) if c not in (a, b)]
        assert counts[[a, b]].sum() == 0, "the coin never lands on a player"
        assert (counts[free] == len(draws) // len(free)).all(), f"uniform over free cells: {counts}"


# ------------------------------------------------------------------------------ properties
def test_random_play_keeps_the_invariants():
    """One coin, never on a player, owner flips iff taken, taken = respawns, reward bookkeeping."""
    env = CoinGame(grid_size=4, episode_length=60, seed=1)
    gen = torch.Generator().manual_seed(2)
    obs = env.reset(256)
    pickups = respawns = 0
    for _ in range(60):
        owner_before, coin_before = env.coin_owner.clone(), env.coin_cell.clone()
        obs, rewards, _, info = env.step(torch.randint(0, 4, (256, 2), generator=gen))
        taken = (info["own_coin_pickups"] + info["other_coin_pickups"]).sum(1) > 0
        assert (obs[:, :, 2:].sum(dim=(1, 2, 3, 4)) == 2).all(), "exactly one coin, seen by both"
        assert (obs[:, :, :2].sum(dim=(2, 3, 4)) == 2).all(), "one cell per player plane"
        assert not (env.player_cells == env.coin_cell.unsqueeze(1)).any(), "coin never on a player"
        assert torch.equal(env.coin_owner != owner_before, taken), (
            "owner flips iff the coin was taken"
        )
        assert torch.equal(env.coin_cell[~taken], coin_before[~taken]), "untaken coin stays put"
        # Reward bookkeeping: +1 per pickup, -2 per pickup of the other's coin, nothing else.
        all_pickups = info["own_coin_pickups"] + info["other_coin_pickups"]
        expected_total = all_pickups.sum(1) - 2 * info["other_coin_pickups"].sum(1)
        torch.testing.assert_close(rewards.sum(1), expected_total)
        # A taken coin was under a taker, so its respawn cell (free of players) always differs.
        pickups += int(taken.sum())
        respawns += int((env.coin_cell != coin_before).sum())
    assert pickups == respawns > 0


def test_seat_one_sees_seat_zeros_planes_with_channels_swapped():
    env = CoinGame(grid_size=5, seed=4)
    obs = env.reset(128)
    for _ in range(10):
        torch.testing.assert_close(obs[:, 1], obs[:, 0][:, [1, 0, 3, 2]])
        obs, _, _, _ = env.step(torch.randint(0, 4, (128, 2)))


def test_swapping_seats_swaps_the_outcomes():
    """Playing mirrored actions from the mirrored state gives mirrored rewards and observations."""
    env_a, env_b = CoinGame(grid_size=3), CoinGame(grid_size=3)
    gen = torch.Generator().manual_seed(5)
    obs_a = env_a.reset(64)
    obs_b = env_b.set_state(
        player_pos=env_a.player_pos.flip(1),
        coin_pos=env_a.coin_pos,
        coin_owner=1 - env_a.coin_owner,
    )
    torch.testing.assert_close(obs_b, obs_a.flip(1))
    for _ in range(20):
        actions = torch.randint(0, 4, (64, 2), generator=gen)
        draws = env_a.sample_respawn_draws(64)
        obs_a, rewards_a, _, _ = env_a.step(actions, respawn_draws=draws)
        obs_b, rewards_b, _, _ = env_b.step(actions.flip(1), respawn_draws=draws)
        torch.testing.assert_close(rewards_b, rewards_a.flip(1))
        torch.testing.assert_close(obs_b, obs_a.flip(1))


def test_reset_spawns_players_anywhere_and_the_coin_on_a_free_cell():
    env = CoinGame(grid_size=3, seed=6)
    env.reset(20000)
    overlap = (env.player_cells[:, 0] == env.player_cells[:, 1]).float().mean()
    assert abs(float(overlap) - 1 / 9) < 0.015, "players may overlap (probability 1/9)"
    assert not (env.player_cells == env.coin_cell.unsqueeze(1)).any()
    coin_share = torch.bincount(env.coin_cell, minlength=9).float() / 20000
    assert (coin_share - 1 / 9).abs().max() < 0.015, f"coin cell uniform by symmetry: {coin_share}"
    owner_share = env.coin_owner.float().mean()
    assert abs(float(owner_share) - 0.5) < 0.02


def test_same_seed_same_episode_and_env_rng_is_independent_of_the_policy_rng():
    def rollout(policy_seed):
        torch.manual_seed(policy_seed)  # neither the global RNG ...
        gen = torch.Generator().manual_seed(policy_seed)  # ... nor the policy's may touch the env
        env = CoinGame(grid_size=3, seed=11)
        torch.rand(7)
        env.reset(32)
        start = (env.player_cells.clone(), env.coin_cell.clone(), env.coin_owner.clone())
        rewards = [env.step(torch.randint(0, 4, (32, 2), generator=gen))[1] for _ in range(20)]
        return start, torch.stack(rewards), env.generator.get_state()

    start_a, rewards_a, rng_a = rollout(0)
    start_b, rewards_b, rng_b = rollout(0)
    assert torch.equal(rewards_a, rewards_b), "same seeds -> identical episode"
    start_c, _, rng_c = rollout(1)
    assert all(torch.equal(x, y) for x, y in zip(start_a, start_c)), "reset ignores other RNGs"
    assert torch.equal(rng_a, rng_c), (
        "the env draws the same respawn stream whatever the policy does"
    )


# ---------------------------------------------------------------------------- known values
def _play(bot0, bot1, *, batch=512, steps=50, size=3, seed=0):
    env = CoinGame(grid_size=size, episode_length=steps, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    obs = env.reset(batch)
    rewards, own, other = [], [], []
    for _ in range(steps):
        actions = torch.stack([bot0(obs[:, 0], gen), bot1(obs[:, 1], gen)], dim=1)
        obs, r, _, info = env.step(actions)
        rewards.append(r)
        own.append(info["own_coin_pickups"])
        other.append(info["other_coin_pickups"])
    stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731
    return coin_game_summary(stack(rewards), stack(own), stack(other))


def test_always_cooperate_pair_reaches_the_spec_reward_and_own_coin_fraction():
    """Spec (authors' league): AC vs AC 0.347 per step each, own-coin 1.0; 512 x 50 steps."""
    s = _play(coin_always_cooperate, coin_always_cooperate)
    assert (
        abs(s["reward_per_step_0"] - 0.347) < 0.02 and abs(s["reward_per_step_1"] - 0.347) < 0.02
    ), s
    assert s["own_coin_fraction_0"] == 1.0 and s["own_coin_fraction_1"] == 1.0, s


def test_always_defect_pair_nets_zero_with_half_own_coins():
    """Spec: AD vs AD +0.001 / -0.004 per step, own-coin 0.497 / 0.501 (tolerance 0.02)."""
    s = _play(coin_always_defect, coin_always_defect, seed=1)
    assert abs(s["reward_per_step_0"]) < 0.02 and abs(s["reward_per_step_1"]) < 0.02, s
    assert (
        abs(s["own_coin_fraction_0"] - 0.5) < 0.02 and abs(s["own_coin_fraction_1"] - 0.5) < 0.02
    ), s


@pytest.mark.parametrize("defector_seat", [0, 1])
def test_always_defect_exploits_always_cooperate_from_either_seat(defector_seat):
    """Spec: AD +0.631 / AC -0.269, own-coin 0.577 / 1.0 (another league run: +0.656 / -0.309)."""
    bots = [coin_always_cooperate, coin_always_cooperate]
    bots[defector_seat] = coin_always_defect
    s = _play(*bots, seed=2)
    d, c = defector_seat, 1 - defector_seat
    assert 0.60 < s[f"reward_per_step_{d}"] < 0.68, s
    assert -0.33 < s[f"reward_per_step_{c}"] < -0.24, s
    assert abs(s[f"own_coin_fraction_{d}"] - 0.577) < 0.03 and s[f"own_coin_fraction_{c}"] == 1.0, s


def test_random_pair_picks_up_about_one_coin_in_nine_steps():
    s = _play(coin_random, coin_random, seed=3)
    assert abs(s["reward_per_step_0"]) < 0.02 and abs(s["pickups_per_step_0"] - 0.11) < 0.01, s


# ----------------------------------------------------------------------------------- bad input
def test_bad_actions_raise_one_line_errors_naming_shape_and_range():
    env = CoinGame()
    env.reset(4)
    with pytest.raises(ValueError, match=r"shape \[4, 2\]"):
        env.step(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        env.step(torch.full((4, 2), 4))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        env.step(torch.full((4, 2), -1))
    assert env.t == 0, "a rejected step changes nothing"
    with pytest.raises(ValueError, match="integer"):
        env.step(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="coin must not lie"):
        env.set_state(player_pos=[[[0, 0], [1, 1]]], coin_pos=[[1, 1]], coin_owner=[0])
    with pytest.raises(ValueError, match="grid_size"):
        CoinGame(grid_size=1)
    with pytest.raises(ValueError, match="compile must be"):
        CoinGame(compile="yes")


def test_done_fires_on_the_last_step_and_stepping_after_it_is_an_error():
    env = CoinGame(episode_length=2)
    env.reset(3)
    assert not env.step(torch.zeros(3, 2, dtype=torch.long))[2].any()
    assert env.step(torch.zeros(3, 2, dtype=torch.long))[2].all()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(3, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "compile", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "compiled"]
)
def test_a_rejected_step_draws_nothing(compile):
    """The stream after a rejected call equals the stream of an env that never saw the call."""
    clean, rejected = CoinGame(seed=5, compile=compile), CoinGame(seed=5, compile=compile)
    actions = torch.Generator().manual_seed(1)
    clean.reset(8), rejected.reset(8)
    for t in range(20):
        if t in (3, 11):
            for bad in (torch.full((8, 2), 4), torch.full((8, 2), -1)):
                with pytest.raises(ValueError, match=r"\[0, 3\]"):
                    rejected.step(bad)
        step_actions = torch.randint(0, 4, (8, 2), generator=actions)
        obs_a, rewards_a, _, _ = clean.step(step_actions)
        obs_b, rewards_b, _, _ = rejected.step(step_actions)
        assert torch.equal(obs_a, obs_b) and torch.equal(rewards_a, rewards_b), f"step {t}"
    assert torch.equal(clean.generator.get_state(), rejected.generator.get_state())
