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
def test_compiled_coin_game_equals_the_eager_one():
    compiled, eager = CoinGame(compile=True, seed=3), CoinGame(seed=3)
    gen = torch.Generator().manual_seed(0)
    obs_c, obs_e = compiled.reset(256), eager.reset(256)
    assert torch.equal(obs_c, obs_e), "same seed -> same start"
    for _ in range(50):
        actions = torch.randint(0, 4, (256, 2), generator=gen)
        obs_c, rewards_c, _, info_c = compiled.step(actions)
        obs_e, rewards_e, _, info_e = eager.step(actions)
        assert torch.equal(obs_c, obs_e) and torch.equal(rewards_c, rewards_e)
        assert torch.equal(info_c["other_coin_pickups"], info_e["other_coin_pickups"])


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
