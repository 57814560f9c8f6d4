"""Slow checks of the Coin Game's speed options (`make test-slow`).

The compiled step must give exactly the eager step's results, and a loose regression floor guards
the batched env's throughput against the per-env loop measured in the same process (performance.md
4.7; real numbers come from `python bench/envs.py`, not from tests).
"""

import time

import pytest
import torch

from common.envs import CoinGame, ReferenceCoinGame
from common.envs.coin_game import respawn_draw_range


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.slow
@pytest.mark.parametrize("grid_size", [3, 5])  # 3: observations looked up; 5: scattered
def test_compiled_coin_game_equals_the_eager_one(grid_size):
    compiled = CoinGame(grid_size=grid_size, compile=True, seed=3)
    eager = CoinGame(grid_size=grid_size, seed=3)
    gen = torch.Generator().manual_seed(0)
    for batch in (256, 7):  # a new batch size compiles a new graph
        obs_c, obs_e = compiled.reset(batch), eager.reset(batch)
        assert torch.equal(obs_c, obs_e), "same seed -> same start"
        for t in range(50):
            actions = torch.randint(0, 4, (batch, 2), generator=gen)
            # Every 5th step with explicit draws of any size (the tests' path), else the env's own.
            draws = torch.randint(0, 10**6, (batch,), generator=gen) if t % 5 == 0 else None
            obs_c, rewards_c, done_c, info_c = compiled.step(actions, respawn_draws=draws)
            obs_e, rewards_e, done_e, info_e = eager.step(actions, respawn_draws=draws)
            assert torch.equal(obs_c, obs_e) and torch.equal(rewards_c, rewards_e)
            assert torch.equal(done_c, done_e)
            for key in ("own_coin_pickups", "other_coin_pickups"):
                assert torch.equal(info_c[key], info_e[key])
            assert torch.equal(compiled.player_cells, eager.player_cells)
            assert torch.equal(compiled.coin_cell, eager.coin_cell)


@pytest.mark.slow
def test_compiled_coin_game_rejects_bad_input_and_takes_any_integer_layout():
    env = CoinGame(compile=True, observations=False)
    env.reset(16)
    before = (env.player_cells.clone(), env.coin_cell.clone(), env.coin_owner.clone(), env.t)
    for bad in (torch.full((16, 2), 4), torch.full((16, 2), -1)):
        with pytest.raises(ValueError, match=r"\[0, 3\]"):
            env.step(bad)
    after = (env.player_cells, env.coin_cell, env.coin_owner, env.t)
    assert all(torch.equal(x, y) for x, y in zip(before[:3], after[:3])) and before[3] == after[3]
    obs, rewards, _, _ = env.step(torch.zeros(16, 2, dtype=torch.int32))  # any integer dtype
    assert obs is None and rewards.shape == (16, 2)
    # A hand-built state from strided views and transposed actions reach the same compiled step.
    state = torch.tensor([[0, 0, 1, 1, 2, 2, 1]] * 16)
    env.set_state(
        player_pos=state[:, :4].view(16, 2, 2), coin_pos=state[:, 4:6], coin_owner=state[:, 6]
    )
    _, rewards, _, _ = env.step(torch.ones(2, 16, dtype=torch.long).t())
    assert rewards.shape == (16, 2)


@pytest.mark.slow
def test_batched_env_is_far_faster_than_the_per_env_loop_with_observations():
    """Floors from performance.md 4.7: >= 3x the loop and >= 1e6 env-steps/s at B = 16384."""
    batch, steps = 16384, 20
    env = CoinGame(episode_length=steps)
    actions = torch.randint(0, 4, (steps, batch, 2))
    env.reset(batch)
    env.step(actions[0])  # warm-up
    env.reset(batch)
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
    batched_rate = batch * steps / (time.perf_counter() - start)

    refs = [ReferenceCoinGame(3, 3, episode_length=steps) for _ in range(1024)]
    for ref in refs:
        ref.reset([(0, 0), (1, 1)], (2, 2), 0)
    high = respawn_draw_range(9)
    loop_actions = actions[:4, :1024].tolist()
    start = time.perf_counter()
    for t in range(4):
        for i, ref in enumerate(refs):
            ref.step(loop_actions[t][i][0], loop_actions[t][i][1], (i * 7 + t) % high)
    loop_rate = 1024 * 4 / (time.perf_counter() - start)
    assert batched_rate >= 3 * loop_rate, f"batched {batched_rate:.3g} vs loop {loop_rate:.3g}"
    assert batched_rate >= 1e6, f"batched env only {batched_rate:.3g} env-steps/s"
