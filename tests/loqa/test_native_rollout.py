"""The C rollout (loqa/native.py) plays the episodes rollout.py's PyTorch loop plays."""

from __future__ import annotations

import pytest
import torch

from common.agent_buffer import AgentBuffer
from common.config import load_config
from common.envs.coin_game import CoinGame
from common.envs.ipd import IteratedPrisonersDilemma
from loqa import native
from loqa.config import CONFIG_DIR, LoqaConfig
from loqa.networks import linear
from loqa.rollout import rollout
from loqa.train import make_agent

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler")


def episodes(preset, *, native_rollout, batch=24, epsilon=0.1, outputs=True, threads=1, seed=0):
    cfg = load_config(LoqaConfig, preset, [], CONFIG_DIR)
    torch.manual_seed(seed)
    agent = make_agent(cfg)
    buffer = AgentBuffer(3)
    for _ in range(3):
        buffer.push(make_agent(cfg))
    index = torch.tensor([2, 0, 2, 1, 2, 0])  # group k plays agent index[k]: repeats
    env = CoinGame(grid_size=3, episode_length=12, seed=5)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return rollout(
            env,
            agent,
            buffer.storage,
            batch_size=batch,
            epsilon=epsilon,
            generator=torch.Generator().manual_seed(7),
            opponent_index=index,
            opponent_outputs=outputs,
            native=native_rollout,
        )
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("preset", ["coin_quick", "coin_full"])  # 1 and 2 pre-layers, H 64 / 128
@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_native_rollout_plays_the_same_episodes(preset, epsilon):
    torch_loop = episodes(preset, native_rollout=False, epsilon=epsilon)
    c_loop = episodes(preset, native_rollout=True, epsilon=epsilon)
    assert c_loop.keys() == torch_loop.keys()
    for key in ("obs", "actions", "rewards", "own_pickups", "other_pickups"):
        assert c_loop[key].dtype == torch_loop[key].dtype, key
        assert torch.equal(c_loop[key], torch_loop[key]), key
    assert c_loop["actions"].unique().numel() == 4  # the episodes do move
    for key in ("op_logits", "op_q"):  # the same values up to the order of the sums
        torch.testing.assert_close(c_loop[key], torch_loop[key], atol=1e-5, rtol=1e-5)


def test_native_rollout_is_the_same_on_any_number_of_threads():
    one = episodes("coin_full", native_rollout=True, batch=30, threads=1)
    two = episodes("coin_full", native_rollout=True, batch=30, threads=2)
    for key in one:
        assert torch.equal(one[key], two[key]), key


def test_native_rollout_without_the_opponent_outputs():
    out = episodes("coin_quick", native_rollout=True, outputs=False)
    assert "op_logits" not in out and "op_q" not in out


def test_what_the_c_rollout_does_not_cover_stays_in_the_torch_loop():
    ipd_cfg = load_config(LoqaConfig, "ipd_quick", [], CONFIG_DIR)
    assert not native.supported(IteratedPrisonersDilemma(episode_length=5), make_agent(ipd_cfg))
    coin_cfg = load_config(LoqaConfig, "coin_quick", [], CONFIG_DIR)
    agent = make_agent(coin_cfg)
    assert native.supported(CoinGame(grid_size=3), agent)
    assert not native.supported(CoinGame(grid_size=5), agent)  # no observation table: 5x5 > 4x4


@pytest.mark.parametrize("batched", [False, True])
def test_linear_is_bit_identical_to_a_product_and_a_bias(batched):
    torch.manual_seed(0)
    lead = (3,) if batched else ()
    x, weight, bias = torch.randn(*lead, 40, 37), torch.randn(*lead, 64, 37), torch.randn(*lead, 64)
    product = torch.matmul(x, weight.transpose(-1, -2)) + bias.unsqueeze(-2)
    assert torch.equal(linear(x, weight, bias), product)
