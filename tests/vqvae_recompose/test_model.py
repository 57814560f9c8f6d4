"""Unit tests of the recomposition pipeline, exact where the math allows.

- the PixelCNN is causal in raster order (changing code i never changes the logits at positions <= i), the
  type-A layer excludes the predicted position, and the last position sees every earlier one (no blind spot);
- the straight-through estimator carries the decoder's gradient to the encoder; the codebook and commitment
  terms are the paper's; codebook perplexity is exp(entropy) of the usage;
- decoding gives at most one pitch per voice and step; images and voices round-trip;
- chord labels of hand-checked sonorities; per-position unigram cross-entropy; rest / dissonance statistics;
- a generated passage round-trips through MIDI.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.music.chords import chord_name
from vqvae_recompose.analysis import (
    dissonance_rate,
    longest_rest_runs,
    mean_pairwise_difference,
    rest_rate,
)
from vqvae_recompose.data import (
    ChordVocabulary,
    chord_triplets,
    fold_into_rows,
    frame_chords,
    image_to_voices,
    measure_chord,
    neighbours,
    voices_to_image,
)
from vqvae_recompose.eval import per_position_unigram_nll, unrelated_labels
from vqvae_recompose.model import (
    VQVAE,
    ConditionalPixelCNN,
    VectorQuantizer,
    codebook_perplexity,
    reconstruction_loss,
    sample_codes,
)
from vqvae_recompose.sampling import passage_depth


@pytest.mark.parametrize("spatial", [False, True])
def test_pixelcnn_is_causal_in_raster_order_and_has_no_blind_spot(spatial):
    torch.manual_seed(0)
    prior = ConditionalPixelCNN(
        8, 5, channels=8, layers=6, first_kernel=5, kernel=3, spatial=spatial
    )
    codes = torch.randint(8, (1, 13, 4))
    chords = torch.tensor([[1, 2, 3]])
    previous = torch.randint(9, (1, 13, 4)) if spatial else None
    base = prior(codes, chords, previous)
    for i in range(13):
        for j in range(4):
            changed = codes.clone()
            changed[0, i, j] = (changed[0, i, j] + 1) % 8
            diff = (prior(changed, chords, previous) - base).abs().sum(1)[0].flatten()
            position = i * 4 + j
            assert diff[: position + 1].max() == 0, f"code ({i},{j}) leaks into an earlier position"
    # the last position of a 4 x 4 map depends on every earlier position (6 layers cover it)
    small = torch.randint(8, (1, 4, 4))
    prev_small = torch.randint(9, (1, 4, 4)) if spatial else None
    ref = prior(small, chords, prev_small)[0, :, 3, 3]
    for position in range(15):
        changed = small.clone()
        changed.view(-1)[position] = (changed.view(-1)[position] + 1) % 8
        assert (prior(changed, chords, prev_small)[0, :, 3, 3] - ref).abs().sum() > 0, (
            f"blind spot at position {position}"
        )


def test_chord_and_spatial_conditioning_change_the_logits():
    torch.manual_seed(0)
    prior = ConditionalPixelCNN(8, 5, channels=8, layers=2, spatial=True)
    codes = torch.randint(8, (1, 13, 4))
    previous = torch.randint(9, (1, 13, 4))
    base = prior(codes, torch.tensor([[1, 2, 3]]), previous)
    assert not torch.allclose(base, prior(codes, torch.tensor([[1, 4, 3]]), previous))
    assert not torch.allclose(base, prior(codes, torch.tensor([[1, 2, 3]]), (previous + 1) % 9))
    with pytest.raises(ValueError, match="previous"):
        prior(codes, torch.tensor([[1, 2, 3]]))


def test_straight_through_gradient_reaches_the_encoder_and_vq_terms_are_the_papers():
    torch.manual_seed(0)
    model = VQVAE((8, 8, 8, 8), codebook_size=4, code_dim=8)
    roll = torch.rand(2, 4, 52, 16).round()
    logits, codes, vq_loss = model(roll)
    assert logits.shape == roll.shape and codes.shape == (2, 13, 4)
    reconstruction_loss(logits, roll).backward()
    first = model.encoder[0][0].weight.grad
    assert first is not None and first.abs().sum() > 0, "no gradient reached the encoder"
    # ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2 = (1 + beta) * mse in value
    quantizer = VectorQuantizer(3, 2, beta=0.25)
    quantizer.codebook.weight.data = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    z_e = torch.tensor([[[[0.9]], [[1.2]]]])  # [1, 2, 1, 1]: nearest code 1
    z_q, k, loss = quantizer(z_e)
    assert k.item() == 1
    assert torch.allclose(z_q, torch.tensor([[[[1.0]], [[1.0]]]]))
    assert math.isclose(loss.item(), 1.25 * (0.1**2 + 0.2**2) / 2, rel_tol=1e-5)


def test_reconstruction_loss_sums_voices_of_space_averaged_bce():
    logits = torch.zeros(1, 4, 52, 16)
    roll = torch.zeros(1, 4, 52, 16)
    assert math.isclose(reconstruction_loss(logits, roll).item(), 4 * math.log(2), rel_tol=1e-6)


def test_codebook_perplexity_is_exp_entropy_of_usage():
    assert math.isclose(codebook_perplexity(torch.zeros(10, dtype=torch.long), 8), 1.0)
    assert math.isclose(codebook_perplexity(torch.arange(8).repeat(3), 8), 8.0, rel_tol=1e-9)


def test_images_and_voices_round_trip_and_decoding_gives_one_note_per_voice_and_step():
    voices = np.array([[[60, 60, -1, 84], [33, 40, 41, -1], [50, 50, 50, 50], [-1, -1, -1, -1]]])
    image = voices_to_image(voices, 33, 52)
    assert image.shape == (1, 4, 52, 4) and image.sum() == 10
    assert np.array_equal(image_to_voices(image, 33), voices)
    probs = torch.rand(5, 4, 52, 16)
    decoded = image_to_voices(probs, 33, threshold=0.5)
    best = probs.max(2).values.numpy()
    assert ((decoded == -1) == (best <= 0.5)).all(), "a rest exactly where no pitch passes 0.5"
    assert decoded.shape == (5, 4, 16), "one pitch (or rest) per voice and step"
    with pytest.raises(ValueError, match="outside"):
        voices_to_image(np.array([[[90]]]), 33, 52)


def test_fold_moves_notes_by_octaves_into_the_rows():
    folded = fold_into_rows(np.array([31, 33, 84, 86, -1]), 33, 52)
    assert folded.tolist() == [43, 33, 84, 74, -1]


def test_chord_labels_of_hand_checked_sonorities():
    def label(*pitches):
        return chord_name(frame_chords(np.array(pitches)[:, None])[0])

    assert label(72, 64, 55, 48) == "C:maj"
    assert label(65, 59, 50, 43) == "G:dom7"
    assert label(72, 69, 65, 50) == "D:min7"
    assert label(69, 65, 62, 59) == "B:hdim7"
    assert label(72, 64, 57, 45) == "A:min"
    assert label(69, 64, 57, 45) == "other"  # a bare fifth has no quality
    assert label(-1, -1, -1, -1) == "N"
    assert label(61, 60, 55, 48) == "other"  # C-C#-G-C is no vocabulary chord
    assert label(68, 65, 62, 59) == "B:dim7"  # symmetric: the bass is the root
    assert label(68, 62, 59, 53) == "F:dim7"


def test_measure_chord_is_the_commonest_vocabulary_chord_with_the_downbeat_winning_ties():
    c_major, g_major = [72, 67, 64, 48], [71, 67, 62, 43]
    measure = np.array([c_major] * 8 + [g_major] * 8).T[None]
    assert chord_name(measure_chord(measure)[0]) == "C:maj"
    measure = np.array([c_major] * 6 + [g_major] * 10).T[None]
    assert chord_name(measure_chord(measure)[0]) == "G:maj"
    silent = np.full((1, 4, 16), -1)
    assert chord_name(measure_chord(silent)[0]) == "N"


def test_vocabulary_neighbours_and_triplets():
    vocabulary = ChordVocabulary.fit(np.array([5, 5, 5, 7, 7, 9]), min_count=2)
    assert vocabulary.classes.tolist() == [5, 7] and len(vocabulary) == 3
    assert vocabulary.ids(np.array([7, 9, 5])).tolist() == [1, 2, 0]
    prev, nxt = neighbours(np.array([0, 0, 0, 1]), np.array([1, 2, 4, 0]))
    assert prev.tolist() == [-1, 0, -1, -1] and nxt.tolist() == [1, -1, -1, -1]
    triplets = chord_triplets(np.array([10, 11, 12, 13]), prev, nxt)
    assert triplets.tolist() == [[10, 10, 11], [10, 11, 11], [12, 12, 12], [13, 13, 13]]
    assert passage_depth(np.array([-1, 0, 1, -1, 3])).tolist() == [0, 1, 2, 0, 1]


def test_per_position_unigram_cross_entropy_with_add_one_smoothing():
    train = torch.tensor([[[0, 1]], [[0, 1]]])  # two maps of 1 x 2 codes, K = 2
    valid = torch.tensor([[[0, 0]]])
    # position 0: counts (1+2, 1) -> p(0) = 3/4; position 1: counts (1, 1+2) -> p(0) = 1/4
    expected = -(math.log(3 / 4) + math.log(1 / 4)) / 2
    assert math.isclose(per_position_unigram_nll(train, valid, 2), expected, rel_tol=1e-9)


def test_unrelated_labels_come_from_other_measures():
    chords = np.arange(7)
    labels = unrelated_labels(chords, 21, np.random.default_rng(0))
    assert (labels != np.tile(chords, 3)).all()


def test_rest_dissonance_gap_and_diversity_statistics():
    voices = np.array([[[72, 72, -1, -1], [66, 67, -1, -1], [60, 60, 60, -1], [48, 48, 48, -1]]])
    assert rest_rate(voices) == 6 / 16
    # step 0: 72-66 tritone; step 1: C-G-C-C consonant; step 2: one pitch class; step 3: silence
    assert dissonance_rate(voices) == 1 / 4
    assert longest_rest_runs(voices[0]).tolist() == [2, 2, 1, 1]
    a = np.zeros((1, 4, 4))
    assert mean_pairwise_difference(np.stack([a, a + 1])) == 1.0


def test_sampling_fills_every_position_and_respects_the_temperature():
    torch.manual_seed(0)
    prior = ConditionalPixelCNN(6, 3, channels=8, layers=2)
    chords = torch.tensor([[0, 1, 2]] * 4)
    a = sample_codes(prior, chords, (3, 2), generator=torch.Generator().manual_seed(1))
    b = sample_codes(prior, chords, (3, 2), generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 2) and torch.equal(a, b) and a.max() < 6
    cold = sample_codes(prior, chords, (3, 2), temperature=1e-4)
    assert (cold == cold[0]).all(), "near-zero temperature is greedy: identical samples"


def test_a_passage_round_trips_through_midi(tmp_path):
    from common.music.midi import read_midi
    from vqvae_recompose.render import passage, write_passage

    measures = np.random.default_rng(0).integers(40, 80, size=(3, 4, 16))
    measures[0, 1, 3:6] = -1
    music = passage(measures)
    assert music.shape == (4, 48) and np.array_equal(music[:, 16:32], measures[1])
    written = write_passage(music, tmp_path / "x", wav=True)
    assert written[1].stat().st_size > 1000
    assert np.array_equal(read_midi(written[0], n_voices=4), music)
