"""Chord labels on hand-checked sonorities, transposition equivariance, beats, pairs, measures."""

from __future__ import annotations

import numpy as np
import pytest

from common.music import REST, load_chorale, load_chorale_dataset, load_chorales, transpose
from common.music.chords import (
    CHORD_QUALITIES,
    N_QUALITIES,
    NO_CHORD,
    OTHER,
    ChordLabels,
    beat_labels,
    chorale_chords,
    chorale_measures,
    chord_name,
    chord_pitch_classes,
    frame_labels,
    key_normalising_shift,
    label_sonority,
    melody_chord_pairs,
    transpose_labels,
)

SUBSET = 8


@pytest.fixture(scope="module")
def subset_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("music_cache")
    load_chorale_dataset(limit=SUBSET, directory=directory)
    return directory


@pytest.mark.parametrize(
    ("pitches", "tonic", "mode", "name", "roman"),
    [
        ((48, 64, 67, 72), 0, "major", "C:maj", "I"),  # C E G C
        ((43, 59, 62, 65), 0, "major", "G:dom7", "V7"),  # G B D F
        ((50, 65, 69, 72), 0, "major", "D:min7", "ii7"),  # D F A C
        ((47, 62, 65, 69), 0, "major", "B:hdim7", "viiø7"),  # B D F A
        ((45, 60, 64, 67), 0, "major", "A:min7", "vi7"),  # A C E G
        ((57, 57, 64, 73), 6, "minor", "A:maj", "III"),  # BWV 66.6 beat 1 in f# minor
        ((54, 61, 66, 69), 6, "minor", "F#:min", "i"),  # BWV 66.6 beat 2
        ((48, 52, 60, 64), 0, "major", "C:maj", "I"),  # fifth omitted: still C major
        ((47, 62, 65, 68), 9, "minor", "Ab:dim7", None),  # G# B D F: leading-tone dim7 of a
    ],
)
def test_hand_checked_sonorities(pitches, tonic, mode, name, roman):
    label, figure = label_sonority(pitches, tonic, mode)
    assert chord_name(label) == name
    if roman is not None:
        assert figure == roman


def test_non_chords_and_silence():
    assert label_sonority((48, 55, 60, 67), 0, "major")[0] == OTHER, "bare fifth has no third"
    assert label_sonority((60, 61, 62), 0, "major")[0] == OTHER, "cluster"
    assert label_sonority((REST, REST, REST, REST), 0, "major") == (NO_CHORD, "")
    assert label_sonority((REST, 60, REST, 48), 0, "major")[0] != NO_CHORD
    with pytest.raises(ValueError, match="key_mode must be major or minor"):
        label_sonority((60,), 0, "dorian")
    with pytest.raises(ValueError, match="chord label must be in"):
        chord_name(500)


def test_vocabulary_names_pitch_classes_and_rotation_agree():
    symmetric = {CHORD_QUALITIES.index("dim7"), CHORD_QUALITIES.index("aug")}
    for label in range(OTHER):
        pcs = chord_pitch_classes(label)
        got = label_sonority([48 + pc for pc in sorted(pcs)], 0, "major")[0]
        if label % N_QUALITIES in symmetric:  # any chord tone may be the root; music21 picks one
            assert got % N_QUALITIES == label % N_QUALITIES and got // N_QUALITIES in pcs
        else:  # the complete chord of every other class is labelled as exactly that class
            assert got == label, chord_name(label)
        up = transpose_labels(np.array([label]), 5)[0]
        assert sorted(chord_pitch_classes(up)) == sorted((pc + 5) % 12 for pc in pcs)
    assert transpose_labels(np.array([OTHER, NO_CHORD]), 3).tolist() == [OTHER, NO_CHORD]


def test_labels_are_transposition_equivariant_on_a_chorale(subset_dir):
    data = load_chorale_dataset(limit=SUBSET, directory=subset_dir)
    voices, tonic, mode = data.piece(0), int(data.key_tonic[0]), str(data.key_mode[0])
    base = frame_labels(voices, tonic, mode)
    for shift in (-3, 2, 5):
        moved = frame_labels(transpose(voices, shift), (tonic + shift) % 12, mode)
        np.testing.assert_array_equal(moved.label, transpose_labels(base.label, shift))
        assert moved.roman == base.roman, "Roman numerals do not depend on the key's tonic"


def test_bwv66_6_first_beats():
    voices = load_chorale("bach/bwv66.6")
    beats = beat_labels(frame_labels(voices, 6, "minor"))  # f# minor (music21's analysis)
    assert len(beats.label) == voices.shape[1] // 4
    assert [chord_name(x) for x in beats.label[:3]] == ["A:maj", "F#:min", "E:maj"]
    assert beats.roman[:2] == ["III", "i"]


def test_beat_label_prefers_the_onset_then_the_commonest_chord():
    c, g, other = 0 * 10 + 0, 7 * 10 + 0, OTHER
    frames = ChordLabels(
        np.array([c, other, other, other, other, g, g, c, other, other, NO_CHORD, NO_CHORD]),
        [str(i) for i in range(12)],
    )
    beats = beat_labels(frames, frames_per_beat=4)
    assert beats.label.tolist() == [c, g, other]
    assert beats.roman == ["0", "5", "8"]


def test_melody_chord_pairs_are_soprano_and_lower_voice_chords(subset_dir):
    pieces = load_chorales("train", limit=SUBSET, directory=subset_dir)
    pairs = melody_chord_pairs("train", limit=SUBSET, directory=subset_dir)
    both = melody_chord_pairs("train", chord_voices="all", limit=SUBSET, directory=subset_dir)
    assert len(pairs) == len(pieces) > 0
    data = load_chorale_dataset(limit=SUBSET, directory=subset_dir)
    tonic, mode = int(data.key_tonic[0]), str(data.key_mode[0])
    for (melody, chords), (_, _chords_all), voices in zip(pairs, both, pieces):
        np.testing.assert_array_equal(melody, voices[0])
        assert chords.shape == melody.shape and chords.dtype == np.int16
        assert chords.min() >= 0 and chords.max() <= NO_CHORD
    np.testing.assert_array_equal(pairs[0][1], frame_labels(pieces[0][1:], tonic, mode).label)
    np.testing.assert_array_equal(both[0][1], frame_labels(pieces[0], tonic, mode).label)
    with pytest.raises(ValueError, match="chord_voices"):
        chorale_chords("train", chord_voices="upper", limit=SUBSET, directory=subset_dir)


def test_measures_are_bar_aligned_full_bars_in_c_or_a(subset_dir):
    data = load_chorale_dataset(limit=SUBSET, directory=subset_dir)
    measures = chorale_measures("all", limit=SUBSET, directory=subset_dir)
    plain = chorale_measures("all", key_normalise=False, limit=SUBSET, directory=subset_dir)
    assert measures.voices.shape[1:] == (4, 16) and len(measures.roman) == len(measures.voices) > 50
    for k in range(len(measures.voices)):
        i, b = measures.piece[k], measures.bar[k]
        starts, written, full = data.measures(i)
        assert written[b] == full[b] == 16, "only complete 4/4 bars"
        np.testing.assert_array_equal(plain.voices[k], data.piece(i)[:, starts[b] : starts[b] + 16])
        expected = key_normalising_shift(int(data.key_tonic[i]), str(data.key_mode[i]))
        assert measures.shift[k] == expected and plain.shift[k] == 0
        sounding = plain.voices[k] != REST
        np.testing.assert_array_equal(
            measures.voices[k][sounding], plain.voices[k][sounding] + expected
        )
    assert key_normalising_shift(6, "minor") == 3 and key_normalising_shift(7, "major") == 5
    assert key_normalising_shift(2, "major") == -2 and key_normalising_shift(4, "minor") == 5


def test_chord_cache_is_rebuilt_when_damaged(subset_dir):
    from common.music.chords import _labels_path

    first = chorale_chords("all", limit=SUBSET, directory=subset_dir)
    _labels_path(SUBSET, subset_dir).write_bytes(b"junk")
    again = chorale_chords("all", limit=SUBSET, directory=subset_dir)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.label, b.label)
        assert a.roman == b.roman


@pytest.mark.slow
def test_full_corpus_chord_statistics_and_measure_counts():
    labels = np.concatenate([c.label for c in chorale_chords("all")])
    assert labels.shape == (70644,)
    assert (labels == OTHER).mean() < 0.15, "most four-voice frames are vocabulary chords"
    lower = np.concatenate([c.label for c in chorale_chords("all", chord_voices="lower")])
    assert (lower == OTHER).mean() > (labels == OTHER).mean()
    assert len(chorale_measures("all").voices) == 3328
    assert len(chorale_measures("all", include_3_4=True).voices) == 4004
