"""Coconet's model side: what the network may see, the orderless mask distribution, the loss's scaling.

Semantics under test:
- ``hidden`` cells (True) are the ones to predict; the network sees ``roll * known`` and ``known`` only, so
  the values written in hidden cells can never change its output (no leakage), in training or eval mode;
- one mask flag per (voice, time), broadcast over the 46 pitches; the softmax is over pitch;
- orderless masks: k ~ U{1..D} cells hidden, each k-subset equally likely;
- the loss is each example's mean NLL over its masked sounding cells, averaged over the batch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from coconet.model import Coconet, cell_nll, orderless_mask, orderless_nade_loss
from common.music import N_PITCHES, N_VOICES
from common.music import pianoroll_to_voices as roll_to_voices
from common.music import voices_to_pianoroll as voices_to_roll


def random_voices(batch: int, time: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    voices = torch.randint(36, 82, (batch, N_VOICES, time), generator=generator)
    rests = torch.rand(batch, N_VOICES, time, generator=generator) < 0.05
    return torch.where(rests, torch.full_like(voices, -1), voices)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_changing_hidden_cells_does_not_change_the_output(mode):
    torch.manual_seed(0)
    model = Coconet(layers=6, filters=8)
    model.train(mode == "train")
    voices = random_voices(3, 16)
    hidden = orderless_mask(3, N_VOICES, 16, generator=torch.Generator().manual_seed(1))
    scrambled = torch.where(hidden, random_voices(3, 16, seed=7), voices)
    assert (scrambled != voices)[hidden].any(), "the test must actually change some hidden cells"
    with torch.no_grad():
        out = model(voices_to_roll(voices), ~hidden)
        out_scrambled = model(voices_to_roll(scrambled), ~hidden)
    assert torch.equal(out, out_scrambled), "hidden cells leaked into the prediction"


def test_changing_a_visible_cell_does_change_the_output():
    """The control for the no-leakage test: the network does read its context."""
    torch.manual_seed(0)
    model = Coconet(layers=6, filters=8).eval()
    voices = random_voices(1, 16)
    hidden = torch.zeros(1, N_VOICES, 16, dtype=torch.bool)
    hidden[0, 1, 5:9] = True
    changed = voices.clone()
    changed[0, 0, 6] = 40 if voices[0, 0, 6] != 40 else 41  # a visible soprano cell beside the gap
    with torch.no_grad():
        a = model(voices_to_roll(voices), ~hidden)
        b = model(voices_to_roll(changed), ~hidden)
    assert not torch.allclose(a[0, 1, 5:9], b[0, 1, 5:9]), (
        "the alto gap ignores its visible context"
    )


def test_mask_is_one_flag_per_voice_and_time_broadcast_over_pitch():
    model = Coconet(layers=4, filters=4)
    roll = voices_to_roll(random_voices(2, 8))
    with pytest.raises(ValueError, match="known must be"):
        model(roll, torch.ones(2, N_VOICES, 8, N_PITCHES, dtype=torch.bool))
    assert model(roll, torch.ones(2, N_VOICES, 8, dtype=torch.bool)).shape == roll.shape


def test_softmax_is_over_pitch():
    """cell_nll normalises over the last (pitch) axis: exp(-nll) summed over all pitches is one."""
    logits = torch.randn(2, N_VOICES, 8, N_PITCHES)
    total = torch.zeros(2, N_VOICES, 8)
    for pitch in range(N_PITCHES):
        target = torch.zeros_like(logits)
        target[..., pitch] = 1.0
        total += (-cell_nll(logits, target)).exp()
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)


def test_orderless_mask_size_is_uniform_on_one_to_d():
    voices, time, draws = 2, 3, 30000  # D = 6 cells
    masks = orderless_mask(draws, voices, time, generator=torch.Generator().manual_seed(0))
    sizes = masks.flatten(1).sum(1).numpy()
    counts = np.bincount(sizes, minlength=7)
    assert counts[0] == 0, "an orderless mask always hides at least one cell"
    assert stats.chisquare(counts[1:]).pvalue > 1e-3, f"sizes not uniform on 1..6: {counts[1:]}"
    # Given its size, every cell is equally likely to be hidden.
    per_cell = masks[sizes == 3].flatten(1).float().mean(0)
    assert torch.allclose(per_cell, torch.full_like(per_cell, 0.5), atol=0.03)


def test_loss_of_uniform_logits_is_log_p_whatever_the_mask_size():
    voices = random_voices(4, 8).clamp(min=36)  # no rests
    roll = voices_to_roll(voices)
    for k in (1, 5, 32):
        hidden = torch.zeros(4, N_VOICES, 8, dtype=torch.bool)
        hidden.view(4, -1)[:, :k] = True
        loss = orderless_nade_loss(torch.zeros_like(roll), roll, hidden)
        assert math.isclose(loss.item(), math.log(N_PITCHES), rel_tol=1e-6), f"k={k}: {loss.item()}"


def test_loss_is_each_examples_mean_over_its_masked_cells_averaged_over_the_batch():
    """An example with 1 masked cell weighs as much as one with 30 (the 1/k_b rescaling)."""
    voices = random_voices(2, 8).clamp(min=36)
    roll = voices_to_roll(voices)
    logits = torch.randn_like(roll)
    hidden = torch.zeros(2, N_VOICES, 8, dtype=torch.bool)
    hidden[0, 0, 0] = True
    hidden.view(2, -1)[1, :30] = True
    nll = cell_nll(logits, roll)
    expected = (nll[0][hidden[0]].mean() + nll[1][hidden[1]].mean()) / 2
    assert torch.allclose(orderless_nade_loss(logits, roll, hidden), expected)


def test_rests_carry_no_loss_and_are_not_counted():
    voices = torch.full((1, N_VOICES, 4), 60)
    voices[0, 2, 1] = -1
    roll = voices_to_roll(voices)
    hidden = torch.zeros(1, N_VOICES, 4, dtype=torch.bool)
    hidden[0, 2, :2] = True  # one sounding cell and one rest hidden
    logits = torch.zeros_like(roll)
    assert math.isclose(
        orderless_nade_loss(logits, roll, hidden).item(), math.log(N_PITCHES), rel_tol=1e-6
    )


def test_roll_round_trips_and_out_of_range_pitches_are_refused():
    voices = random_voices(3, 10)
    assert torch.equal(roll_to_voices(voices_to_roll(voices)), voices)
    with pytest.raises(ValueError, match="outside MIDI 36..81"):
        voices_to_roll(torch.full((1, N_VOICES, 2), 90))


def test_architecture_is_the_straight_residual_cnn():
    model = Coconet(layers=8, filters=16)
    kernels = [conv.kernel_size for conv in model.convs]
    assert kernels == [(3, 3)] * 6 + [(2, 2)] * 2
    assert model.convs[0].in_channels == 2 * N_VOICES and model.convs[-1].out_channels == N_VOICES
    assert all(torch.allclose(n.weight, torch.full_like(n.weight, 0.1)) for n in model.norms)
    with pytest.raises(ValueError, match="at least 4 layers"):
        Coconet(layers=3, filters=8)


def test_same_padding_keeps_the_score_size_for_any_length():
    model = Coconet(layers=5, filters=4).eval()
    for time in (1, 7, 33):
        roll = voices_to_roll(random_voices(1, time))
        assert model(roll, torch.ones(1, N_VOICES, time, dtype=torch.bool)).shape == roll.shape


@pytest.mark.parametrize("pitch_channel", [False, True])
def test_only_the_pitch_channel_tells_the_net_where_on_the_pitch_axis_it_is(pitch_channel):
    """An empty, fully unknown score: without the absolute-pitch plane every pitch row away from the
    edges sees the same input, so the net predicts the same logit for each (it cannot know a register);
    with it, the rows differ."""
    torch.manual_seed(0)
    model = Coconet(layers=4, filters=8, pitch_channel=pitch_channel).eval()
    assert model.convs[0].in_channels == 2 * N_VOICES + int(pitch_channel)
    roll = torch.zeros(1, N_VOICES, 8, N_PITCHES)
    with torch.no_grad():
        logits = model(roll, torch.zeros(1, N_VOICES, 8, dtype=torch.bool))
    interior = logits[..., 6:-6]  # 4 layers see at most 4 rows either way: no padding reaches these
    flat = torch.allclose(interior, interior[..., :1].expand_as(interior), atol=1e-5)
    assert flat != pitch_channel
