"""Samplers, the chain-rule likelihood and the copy-neighbour baseline, on small hand-made inputs.

Semantics under test:
- ancestral sampling commits exactly one unfilled cell per model call and stops when the region is full;
- blocked Gibbs never writes outside its region (the conditioning context), and its block fraction
  follows the Yao schedule p_s = max(p_min, p_max - (p_max - p_min) s / (eta N));
- every ordering visits each cell exactly once, so a model that predicts uniformly scores
  log p(x) = -(sounding cells) log 46 along any ordering, and the probability-space ensemble of K
  orderings is never worse than their mean (Jensen);
- the copy baseline finds the nearest visible sounding note on either side of a cell.
"""

from __future__ import annotations

import math

import pytest
import torch

from coconet.baselines import CopyNeighbour, _nearest_visible, unigram
from coconet.likelihood import _orderings, chain_rule_log_likelihood, framewise_paper_log_probs
from coconet.model import Coconet
from coconet.sampling import ancestral_sample, gibbs_sample, harmonize, yao_schedule
from common.music import N_PITCHES, N_VOICES
from common.music import voices_to_pianoroll as voices_to_roll


class Recorder(torch.nn.Module):
    """Wraps a network and remembers the known-cell flags of every call."""

    def __init__(self, net):
        super().__init__()
        self.net, self.known_per_call = net, []

    def forward(self, roll, known):
        self.known_per_call.append(known.clone())
        return self.net(roll, known)


class Uniform(torch.nn.Module):
    """Equal logits for every pitch: p(x) = 1/46 whatever the context."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, roll, known):
        return torch.zeros_like(roll) + 0 * self.dummy


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return Coconet(layers=4, filters=4).eval()


def test_ancestral_sampling_commits_exactly_one_cell_per_call(tiny_model):
    model = Recorder(tiny_model)
    region = torch.zeros(2, N_VOICES, 6, dtype=torch.bool)
    region[0, :, :3] = True  # 12 cells to fill in example 0
    region[1, 1:3, :] = True  # 12 cells in example 1
    out = ancestral_sample(model, torch.zeros(2, N_VOICES, 6, N_PITCHES), region,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert len(model.known_per_call) == 12, "one model call per cell of the largest region"
    known_counts = torch.stack([k.flatten(1).sum(1) for k in model.known_per_call])  # [calls, B]
    assert torch.all(known_counts.diff(dim=0) == 1), "each call must reveal exactly one new cell"
    assert torch.all(out.sum(-1)[region] == 1), "every region cell ends up with one pitch"
    assert torch.all(out.sum(-1)[~region] == 0), "cells outside the region are left alone"


def test_gibbs_never_touches_the_conditioning_context(tiny_model):
    context = voices_to_roll(torch.randint(40, 70, (3, N_VOICES, 8)))
    region = torch.zeros(3, N_VOICES, 8, dtype=torch.bool)
    region[:, 1:] = True  # harmonisation: the soprano is given
    out = gibbs_sample(
        tiny_model, context, region, steps=10, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(out[:, 0], context[:, 0])
    assert torch.all(out.sum(-1)[region] == 1)


def test_harmonize_keeps_each_melody_and_fills_the_three_lower_voices(tiny_model):
    melodies = torch.tensor([[60] * 4 + [62] * 4, [67] * 2 + [-1] * 2 + [65] * 4])
    out = harmonize(tiny_model, melodies, 6, 0.5, torch.Generator().manual_seed(0))
    assert out.shape == (2, N_VOICES, 8)
    assert torch.equal(out[:, 0], melodies), "the soprano is the given melody"
    assert torch.all(out[:, 1:] >= 36), "alto, tenor and bass sound in every frame"


def test_yao_schedule_anneals_from_pmax_to_pmin():
    assert yao_schedule(0, 100, 0.9, 0.1, 0.7) == pytest.approx(0.9)
    assert yao_schedule(35, 100, 0.9, 0.1, 0.7) == pytest.approx(0.5)
    assert yao_schedule(70, 100, 0.9, 0.1, 0.7) == pytest.approx(0.1)
    assert yao_schedule(99, 100, 0.9, 0.1, 0.7) == pytest.approx(0.1)


@pytest.mark.parametrize("kind", ["random", "chronological", "frames"])
def test_every_ordering_visits_each_cell_once(kind):
    order = _orderings(5, N_VOICES, 6, kind, torch.Generator().manual_seed(0))
    assert torch.equal(order.sort(1).values, torch.arange(24).expand(5, 24))
    if kind != "random":  # frame by frame: the four voices of a frame are consecutive
        frames = (order % 6).view(5, 6, N_VOICES)
        assert torch.all(frames == frames[..., :1])
    if kind == "chronological":
        assert torch.equal((order % 6).view(5, 6, N_VOICES)[..., 0], torch.arange(6).expand(5, 6))


def test_chain_rule_of_a_uniform_model_is_cells_times_log_p():
    voices = torch.randint(36, 82, (2, N_VOICES, 5))
    voices[0, 3, 2] = -1  # a rest scores log 1
    log_p, single = chain_rule_log_likelihood(Uniform(), voices, orderings=3)
    expected = -torch.tensor([19.0, 20.0]) * math.log(N_PITCHES)
    assert torch.allclose(log_p, expected, atol=1e-4)
    assert single.shape == (3, 2)


def test_ensemble_over_orderings_is_no_worse_than_their_mean(tiny_model):
    voices = torch.randint(50, 70, (3, N_VOICES, 4))
    log_p, single = chain_rule_log_likelihood(tiny_model, voices, orderings=4)
    assert torch.all(log_p >= single.mean(0) - 1e-5)


def test_nearest_visible_note_on_either_side():
    voices = torch.tensor([[[60, 62, 64, -1, 67, 69]] * N_VOICES])
    hidden = torch.tensor([[[False, True, True, True, True, False]] * N_VOICES])
    left_pitch, left_dist, right_pitch, right_dist = _nearest_visible(voices, hidden)
    assert left_pitch[0, 0, 2] == 60 and left_dist[0, 0, 2] == 2
    assert right_pitch[0, 0, 2] == 69 and right_dist[0, 0, 2] == 3
    assert right_dist[0, 0, 4] == 1 and left_pitch[0, 0, 4] == 60 and left_dist[0, 0, 4] == 4
    only_right = _nearest_visible(voices, hidden | (torch.arange(6) == 0))
    assert math.isinf(only_right[1][0, 0, 2]), "no visible note to the left of t=2 any more"


def test_copy_baseline_learns_that_held_notes_repeat():
    """On data where every voice holds one pitch, the tuned baseline becomes nearly certain."""
    generator = torch.Generator().manual_seed(0)
    pitch = torch.randint(50, 70, (200, N_VOICES, 1), generator=generator)
    voices = pitch.expand(200, N_VOICES, 16).clone()
    hidden = torch.rand(200, N_VOICES, 16, generator=generator) < 0.5
    probs = unigram([v.numpy() for v in voices])
    copy = CopyNeighbour.fit(voices, hidden, probs)
    nll = copy.cell_nll(voices, hidden)
    has_neighbour = (~hidden).any(-1, keepdim=True).expand_as(hidden)[hidden]
    assert nll[has_neighbour].mean() < 0.05


@pytest.mark.parametrize("chronological", [False, True])
def test_paper_framewise_evaluator_of_a_uniform_model_scores_each_frames_sounding_voices(
    chronological,
):
    voices = torch.randint(36, 82, (2, N_VOICES, 5))
    voices[1, 2, 3] = -1
    frame_log_p = framewise_paper_log_probs(
        Uniform(), voices, orderings=3, chronological=chronological
    )
    expected = -(voices >= 0).sum(1).float() * math.log(N_PITCHES)  # [B, T]
    assert torch.allclose(frame_log_p, expected.expand(3, 2, 5), atol=1e-4)


def test_paper_framewise_evaluator_fills_earlier_voices_of_the_frame_with_the_argmax(tiny_model):
    """Each of its I calls sees one more cell of the frame under prediction, filled by argmax."""
    model = Recorder(tiny_model)
    voices = torch.randint(50, 70, (1, N_VOICES, 3))
    framewise_paper_log_probs(model, voices, orderings=1, chronological=True)
    assert len(model.known_per_call) == N_VOICES
    first, last = model.known_per_call[0], model.known_per_call[-1]
    # Example j (chronological) knows frames < j fully, and in the last call 3 voices of frame j.
    assert torch.equal(first.sum((1, 2)), torch.tensor([0, 4, 8]))
    assert torch.equal(last.sum((1, 2)), torch.tensor([3, 7, 11]))
