"""Sampled memory-1 IPD (environments.md 1.2).

Semantics: actions 0 = C, 1 = D; seat i observes [I cooperated, I defected, other cooperated, other
defected] of the previous step (zeros at t = 0); done is True exactly on step `episode_length`, and
a finished episode must be reset. The batched env must equal the per-env reference on any action
sequence.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.envs import (
    IPD_ALWAYS_COOPERATE,
    IPD_ALWAYS_DEFECT,
    IPD_TIT_FOR_TAT,
    IPDGrimTrigger,
    IteratedPrisonersDilemma,
    ReferenceIPD,
    ipd_act,
    state_index,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 6),
    steps=st.integers(1, 12),
    data=st.data(),
)
def test_batched_ipd_equals_the_per_env_reference_on_random_actions(batch, steps, data):
    actions = data.draw(
        st.lists(
            st.lists(
                st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=batch, max_size=batch
            ),
            min_size=steps,
            max_size=steps,
        )
    )
    env = IteratedPrisonersDilemma(episode_length=steps)
    references = [ReferenceIPD(episode_length=steps) for _ in range(batch)]
    obs = env.reset(batch)
    assert obs.tolist() == [ref.reset() for ref in references]
    for t, joint in enumerate(actions):
        obs, rewards, done, info = env.step(torch.tensor(joint))
        expected = [ref.step(a0, a1) for ref, (a0, a1) in zip(references, joint)]
        assert obs.tolist() == [e[0] for e in expected], f"observations differ at t={t}"
        assert rewards.tolist() == [e[1] for e in expected], f"rewards differ at t={t}"
        assert done.tolist() == [e[2] for e in expected], f"done differs at t={t}"
        assert info["t"] == t


def test_done_fires_only_on_the_last_step_and_a_finished_episode_must_be_reset():
    env = IteratedPrisonersDilemma(episode_length=3)
    env.reset(2)
    dones = [bool(env.step(torch.zeros(2, 2, dtype=torch.long))[2].all()) for _ in range(3)]
    assert dones == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 2, dtype=torch.long))


def test_state_index_enumerates_start_cc_cd_dc_dd_from_each_seats_perspective():
    env = IteratedPrisonersDilemma()
    obs = env.reset(4)
    assert state_index(obs[:, 0]).tolist() == [0, 0, 0, 0]
    obs, _, _, _ = env.step(torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert state_index(obs[:, 0]).tolist() == [1, 2, 3, 4], "seat 0: CC, CD, DC, DD"
    assert state_index(obs[:, 1]).tolist() == [1, 3, 2, 4], "seat 1 sees CD and DC swapped"


def _average_rewards(bot0, bot1, *, batch=64, steps=50, seed=0):
    env = IteratedPrisonersDilemma(episode_length=steps)
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset(batch)
    total = torch.zeros(batch, 2)
    for _ in range(steps):
        actions = torch.stack([bot0(obs[:, 0], gen), bot1(obs[:, 1], gen)], dim=1)
        obs, rewards, _, _ = env.step(actions)
        total += rewards
    return (total / steps).mean(0).tolist()


def memory1(p):
    return lambda obs, gen: ipd_act(p, obs, gen)


@pytest.mark.parametrize(
    ("bot0", "bot1", "expected"),
    [
        (IPD_ALWAYS_COOPERATE, IPD_ALWAYS_COOPERATE, (-1.0, -1.0)),
        (IPD_TIT_FOR_TAT, IPD_TIT_FOR_TAT, (-1.0, -1.0)),
        (IPD_TIT_FOR_TAT, IPD_ALWAYS_COOPERATE, (-1.0, -1.0)),
        (IPD_ALWAYS_DEFECT, IPD_ALWAYS_DEFECT, (-2.0, -2.0)),
        (IPD_ALWAYS_COOPERATE, IPD_ALWAYS_DEFECT, (-3.0, 0.0)),
        (IPD_TIT_FOR_TAT, IPD_ALWAYS_DEFECT, (-2.02, -1.96)),
        (IPD_ALWAYS_DEFECT, IPD_TIT_FOR_TAT, (-1.96, -2.02)),
    ],
)
def test_scripted_pairings_give_the_spec_reward_per_step_over_50_steps(bot0, bot1, expected):
    assert _average_rewards(memory1(bot0), memory1(bot1)) == pytest.approx(expected, abs=1e-6)


def test_grim_trigger_punishes_forever_after_one_defection():
    grim = IPDGrimTrigger()
    grim.reset(1)
    env = IteratedPrisonersDilemma(episode_length=5)
    obs = env.reset(1)
    opponent = [0, 1, 0, 0, 0]
    played = []
    for action in opponent:
        mine = grim.act(obs[:, 0])
        played.append(int(mine))
        obs, _, _, _ = env.step(torch.stack([mine, torch.tensor([action])], dim=1))
    assert played == [0, 0, 1, 1, 1]


def test_bad_actions_raise_one_line_errors_naming_shape_and_range():
    env = IteratedPrisonersDilemma()
    env.reset(3)
    with pytest.raises(ValueError, match=r"shape \[3, 2\]"):
        env.step(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.step(torch.full((3, 2), 2))
    with pytest.raises(ValueError, match="integer"):
        env.step(torch.zeros(3, 2))
