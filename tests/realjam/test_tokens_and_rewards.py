"""Exact checks of the token layout, the frame metrics, the reward rules and the chord-label reduction."""

from __future__ import annotations

import numpy as np
import torch

from common.music.chords import CHORD_QUALITIES, N_QUALITIES, NO_CHORD, OTHER
from realjam.data import reduce_chord_labels
from realjam.rewards import RewardWeights, frames_held, reward_terms
from realjam.rl import gae, kl_per_position, leave_one_out
from realjam.tokens import (
    BOS,
    CHORD_BASE,
    CHORD_SILENCE,
    MELODY_REST,
    SILENT,
    VOCAB_SIZE,
    chord_changes,
    chord_onsets,
    chord_symbol_name,
    chord_symbols,
    encode_chords,
    encode_melody,
    fold_pitches,
    harmony_rate,
    in_chord,
    interleave,
    is_chord_token,
    is_melody_token,
    melody_pitches,
    repeated_onsets,
)

C_MAJ, A_MIN, G_DOM7 = 0, 9 * 4 + 1, 7 * 4 + 3


def test_encode_decode_round_trip_with_onsets_and_holds():
    symbols = torch.tensor([[C_MAJ, C_MAJ, SILENT, A_MIN, A_MIN, G_DOM7]])
    tokens = encode_chords(symbols)
    assert tokens.tolist() == [
        [
            CHORD_BASE,
            CHORD_BASE + 1,
            CHORD_SILENCE,
            CHORD_BASE + 2 * A_MIN,
            CHORD_BASE + 2 * A_MIN + 1,
            CHORD_BASE + 2 * G_DOM7,
        ]
    ]
    assert torch.equal(chord_symbols(tokens), symbols)
    assert chord_onsets(tokens).tolist() == [[True, False, False, True, False, True]]
    pitches = torch.tensor([[60, 60, 60, SILENT, 62, 30]])
    struck = torch.tensor([[True, False, True, False, True, True]])  # the third 60 is re-struck
    melody = encode_melody(pitches, struck)
    assert melody_pitches(melody).tolist() == [
        [60, 60, 60, SILENT, 62, 42]
    ]  # 30 folds up an octave
    assert melody[0, 1] == melody[0, 0] + 1 and melody[0, 2] == melody[0, 0]
    assert bool(is_chord_token(tokens).all()) and bool(is_melody_token(melody).all())
    assert int(melody.max()) < VOCAB_SIZE and int(tokens.max()) < MELODY_REST


def test_interleaving_puts_each_chord_before_its_frames_note():
    seq = interleave(torch.tensor([[10, 11, 12]]), torch.tensor([[100, 101, 102]]))
    assert seq.tolist() == [[BOS, 10, 100, 11, 101, 12, 102]]


def test_fold_pitches_keeps_pitch_class_and_rests():
    pitches = torch.tensor([SILENT, 20, 36, 96, 97, 120])
    folded = fold_pitches(pitches)
    assert folded[0] == SILENT
    assert bool(((folded[1:] - pitches[1:]) % 12 == 0).all())
    assert bool(((folded[1:] >= 36) & (folded[1:] <= 96)).all())


def test_harmony_counts_only_sounding_frames_and_silence_is_a_miss():
    pitches = torch.tensor([[60, 64, 62, SILENT, 67]])  # C, E, D, rest, G
    symbols = torch.tensor([[C_MAJ, C_MAJ, C_MAJ, C_MAJ, SILENT]])
    assert in_chord(pitches, symbols).tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0]]
    assert harmony_rate(pitches, symbols).tolist() == [0.5]
    assert chord_symbol_name(G_DOM7) == "G:dom7"


def test_repeated_onsets_flag_the_fourth_consecutive_strike():
    strike = CHORD_BASE + 2 * C_MAJ
    tokens = torch.tensor(
        [[strike, strike, strike + 1, strike, strike, strike, CHORD_BASE + 2 * A_MIN, strike]]
    )
    assert repeated_onsets(tokens).tolist() == [[0, 0, 0, 0, 1, 1, 0, 0]]


def test_frames_held_and_changes():
    symbols = torch.tensor([[1, 1, 1, 2, 3, 3]])
    assert chord_changes(symbols).tolist() == [[0, 0, 0, 1, 1, 0]]
    assert frames_held(symbols).tolist() == [[0, 1, 2, 3, 1, 1]]


def test_rapid_changes_chasing_the_melody_are_penalised_but_steady_chords_are_not():
    weights = RewardWeights(
        harmony=1.0,
        contrastive=0.0,
        silence=1.0,
        silence_allowance=0.04,
        repeat=1.0,
        change=0.5,
        min_hold=4,
    )
    pitches = torch.tensor([[60, 64, 67, 60, 62, 65, 69, 62]])
    steady = encode_chords(
        torch.tensor([[C_MAJ] * 4 + [2 * 4 + 1] * 4])
    )  # C, then D minor, a bar each
    chasing = encode_chords(
        torch.tensor([[C_MAJ, 4 * 4, 7 * 4, C_MAJ, 2 * 4 + 1, 5 * 4, 9 * 4 + 1, 2 * 4 + 1]])
    )
    melody = encode_melody(pitches)
    s = reward_terms(pitches, steady, melody, weights, None)
    c = reward_terms(pitches, chasing, melody, weights, None)
    assert s["harmony"].sum() == 8 and c["harmony"].sum() == 8
    assert s["change"].sum() == 0  # the change at frame 4 follows 4 frames of C
    assert c["change"].sum() == -0.5 * 7
    silent = encode_chords(torch.full((1, 8), SILENT))
    assert (
        reward_terms(pitches, silent, melody, weights, None)["silence"].sum() == 0
    )  # first 8 exempt
    silent16 = encode_chords(torch.full((1, 16), SILENT))
    assert (
        reward_terms(
            pitches.repeat(1, 2), silent16, encode_melody(pitches.repeat(1, 2)), weights, None
        )["silence"].sum()
        == -8
    )


def test_gae_with_lambda_one_is_return_minus_value():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 0.25, 1.0]])
    assert torch.allclose(gae(rewards, values, lam=1.0), torch.tensor([[2.5, 1.75, 1.0]]))
    assert torch.allclose(gae(rewards, values, lam=0.0), torch.tensor([[0.75, 0.75, 1.0]]))


def test_kl_is_zero_for_equal_distributions_and_matches_the_formula():
    logp = torch.full((1, 1, VOCAB_SIZE), float("-inf"))
    ref = logp.clone()
    logp[..., CHORD_SILENCE : CHORD_SILENCE + 2] = torch.tensor([0.75, 0.25]).log()
    ref[..., CHORD_SILENCE : CHORD_SILENCE + 2] = torch.tensor([0.5, 0.5]).log()
    expected = 0.75 * np.log(1.5) + 0.25 * np.log(0.5)
    assert abs(kl_per_position(logp, ref).item() - expected) < 1e-6
    assert kl_per_position(logp, logp).item() == 0


def test_chord_reduction_per_eighth_with_passing_dissonances_carried():
    q = {name: i for i, name in enumerate(CHORD_QUALITIES)}
    g7, c_maj7, f_sus4 = 7 * N_QUALITIES + q["dom7"], q["maj7"], 5 * N_QUALITIES + q["sus4"]
    labels = np.array(
        [OTHER, g7, g7, OTHER, OTHER, OTHER, c_maj7, c_maj7, f_sus4, f_sus4, NO_CHORD, NO_CHORD]
    )
    out = reduce_chord_labels(labels)
    g7_ours, c_ours, f_ours = 7 * 4 + 3, 0, 5 * 4
    assert out.tolist() == [
        g7_ours,
        g7_ours,
        g7_ours,
        g7_ours,
        g7_ours,
        g7_ours,
        c_ours,
        c_ours,
        f_ours,
        f_ours,
        SILENT,
        SILENT,
    ]


def test_leave_one_out_baseline_compares_rollouts_of_the_same_melody():
    pairs = torch.tensor(
        [[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [5.0, 5.0]]
    )  # two melodies, two rollouts each
    assert torch.equal(
        leave_one_out(pairs, 2), torch.tensor([[-2.0, -2.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    )
    triple = torch.tensor(
        [[0.0], [3.0], [6.0]]
    )  # one melody, three rollouts: baseline = mean of the others
    assert torch.equal(leave_one_out(triple, 3), torch.tensor([[-4.5], [0.0], [4.5]]))
