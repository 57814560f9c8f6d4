"""The fast LOQA iteration (loqa.train.train_step, loqa.rollout) computes what the old loop computed.

The old loop is frozen in bench/loqa_baseline.py. Both run a few iterations from the same seed; the
episodes must be identical everywhere, and the losses and trained parameters identical bit for bit in
the IPD (tabular actor, MLP critic). Elsewhere a sum runs in another order: the opponents' logits come from
the rollout's matrix-vector products (C or PyTorch) instead of matrix-matrix products over whole
histories, and the GRU's hand-written backward (networks.GRURecurrence) sums its gradients in another
order than autograd. There the losses agree to a relative 1e-6 and the parameters after four iterations
to 1e-5 (about 1e-6 measured: Adam scales a gradient entry that is zero up to rounding to a step of up to
its learning rate, 1e-3).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from common.agent_buffer import AgentBuffer
from common.config import load_config
from common.envs.coin_game import CoinGame
from loqa.config import CONFIG_DIR, LoqaConfig
from loqa.networks import stacked_params
from loqa.rollout import rollout, sample_opponents
from loqa.train import make_env, make_learner, train_step

_spec = importlib.util.spec_from_file_location(
    "loqa_baseline", Path(__file__).resolve().parents[2] / "bench" / "loqa_baseline.py"
)
baseline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(baseline)


def run(step, cfg, iterations: int):
    torch.manual_seed(0)
    learner = make_learner(cfg)
    env = make_env(cfg, seed=0)
    generator = torch.Generator().manual_seed(1)
    buffer = AgentBuffer(50) if cfg.train.buffer_capacity else None
    outs = []
    for it in range(iterations):
        if buffer is not None:
            if it % 2 == 0:
                buffer.push(learner.agent)
            if step is train_step:
                opponents = sample_opponents(buffer, cfg.train.opponents_per_batch, generator)
            else:
                opponents = buffer.sample(cfg.train.opponents_per_batch, generator)
        else:
            opponents = stacked_params(learner.agent)
            opponents = (opponents, None) if step is train_step else opponents
        outs.append(step(cfg, learner, env, opponents, generator, it, it % 2 == 0))
    return learner, outs


PAPER_SIZES = ["train.batch_size=16", "train.opponents_per_batch=16"]


@pytest.mark.parametrize(
    ("preset", "overrides", "exact"),
    [
        (  # the PyTorch rollout: the same episodes and losses; GRURecurrence's hand-written
            # backward sums the gradients in another order than the old loop's autograd
            "coin_quick",
            ["train.batch_size=32", "train.opponents_per_batch=4", "train.native_rollout=false"],
            False,
        ),
        ("ipd_quick", ["train.batch_size=64"], True),
        (  # one opponent per episode, drawn from 1-2 past agents: repeats, several blocks
            "coin_full",
            [*PAPER_SIZES, "train.rollout_block_opponents=1", "train.native_rollout=false"],
            False,
        ),
        # The C rollout (native.py): the same episodes; its matrix-vector products sum in another
        # order, so the opponents' logits and Q, and through them the losses, agree to rounding.
        ("coin_quick", ["train.batch_size=32", "train.opponents_per_batch=4"], False),
        ("coin_full", PAPER_SIZES, False),
    ],
)
def test_fast_iteration_equals_the_old_loop(preset, overrides, exact):
    cfg = load_config(LoqaConfig, preset, [*overrides, "train.critic_warmup=1"], CONFIG_DIR)
    old, old_outs = run(baseline.train_step, cfg, 4)
    new, new_outs = run(train_step, cfg, 4)
    for a, b in zip(old_outs, new_outs):
        for key, value in a["batch"].items():
            assert torch.equal(value, b["batch"][key]), key
        losses = [(a["critic"], b["critic"])]
        if "losses" in a:
            losses += [(a["losses"][k], b["losses"][k]) for k in ("own", "opponent")]
        for x, y in losses:
            assert torch.equal(x, y) if exact else torch.allclose(y, x, rtol=1e-6, atol=1e-9)
    torch.manual_seed(0)
    fresh = make_learner(cfg).agent.state_dict()  # the initial parameters of run()
    for (name, p), q in zip(old.agent.named_parameters(), new.agent.parameters()):
        assert not p.equal(fresh[name]), f"{name} not trained"
        if exact:
            assert torch.equal(p, q), name
        else:  # Adam turns a rounding-sized gradient into a step of up to lr = 1e-3: atol 1e-5
            assert (p - q).abs().max() <= 1e-5, (name, (p - q).abs().max())


def test_multinomial_is_argmax_over_exponential_noise():
    """rollout.py's premise: torch.multinomial(p, 1) == argmax(p / q), q ~ Exp(1) from the same draws."""
    probs = torch.softmax(torch.randn(512, 4), -1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(3):
        drawn = torch.multinomial(probs, 1, generator=g1).view(-1)
        q = torch.empty_like(probs).exponential_(1, generator=g2)
        assert torch.equal(drawn, (probs / q).argmax(-1))


def test_blocks_and_repeated_opponents_give_the_same_episodes():
    cfg = load_config(LoqaConfig, "coin_quick", [], CONFIG_DIR)
    agent = make_learner(cfg).agent
    buffer = AgentBuffer(3)
    for _ in range(3):
        buffer.push(make_learner(cfg).agent)
    index = torch.tensor([2, 0, 2, 1, 2, 0])  # group k plays agent index[k]
    full = {k: v[index] for k, v in buffer.storage.items()}
    episodes = []
    for params, idx, block in (
        (full, None, 0),
        (buffer.storage, index, 1),
        (buffer.storage, index, 2),
    ):
        env = CoinGame(grid_size=3, episode_length=8, seed=5)
        episodes.append(
            rollout(
                env,
                agent,
                params,
                batch_size=12,
                epsilon=0.1,
                generator=torch.Generator().manual_seed(7),
                opponent_index=idx,
                opponents_per_block=block,
            )
        )
    for other in episodes[1:]:
        for key in ("obs", "actions", "rewards", "own_pickups", "other_pickups"):
            assert torch.equal(episodes[0][key], other[key]), key
        for key in ("op_logits", "op_q"):
            torch.testing.assert_close(other[key], episodes[0][key], atol=1e-6, rtol=0)


def test_sample_opponents_draws_what_the_buffer_draws():
    cfg = load_config(LoqaConfig, "coin_quick", [], CONFIG_DIR)
    buffer = AgentBuffer(5)
    for _ in range(5):
        buffer.push(make_learner(cfg).agent)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    stacked = buffer.sample(16, g1)
    distinct, index = sample_opponents(buffer, 16, g2)
    assert len(next(iter(distinct.values()))) <= 5
    for name, value in stacked.items():
        assert torch.equal(distinct[name][index], value), name
    assert torch.equal(
        torch.randint(0, 9, (4,), generator=g1), torch.randint(0, 9, (4,), generator=g2)
    )
