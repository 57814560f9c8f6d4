"""The automatic music proxies on hand-built four-voice scores (REST = -1, one column per frame)."""

from __future__ import annotations

import numpy as np
import pytest

from coconet.proxies import music_proxies

C_MAJOR = [72, 67, 64, 48]  # soprano C5, alto G4, tenor E4, bass C3
D_MINOR = [
    74,
    69,
    65,
    50,
]  # every voice up a step: soprano/bass octaves and alto/bass fifths in parallel
REFERENCE = [
    np.array([[60, 81], [55, 74], [48, 69], [36, 64]])
]  # voice ranges S 60-81, A 55-74, ...


def score(*frames):
    return np.array(frames).T[None]  # [1, 4, T]


def test_block_chords_moving_in_parallel_are_counted_and_recognised():
    proxies = music_proxies(score(C_MAJOR, D_MINOR), REFERENCE)
    # Six voice pairs all move up; perfect classes repeated: S-B octave+... count them by hand:
    # S-A 5th (72-67=5? no: 72-67 = 5 semitones, a fourth), S-T 8 (no), S-B 24 (octave class 0, yes),
    # A-T 3 (no), A-B 19 (fifth class 7, yes), T-B 16 (no): 2 parallels in 6 motions.
    assert proxies["parallel_fifths_octaves_per_100"] == pytest.approx(100 * 2 / 6)
    assert proxies["triad_or_seventh_frames"] == 1.0
    assert proxies["voice_crossing_frames"] == 0.0
    assert proxies["out_of_range_cells"] == 0.0


def test_crossed_voices_out_of_range_notes_and_non_chords():
    crossed = [60, 67, 64, 24]  # the alto above the soprano; the bass below Bach's lowest
    proxies = music_proxies(score(crossed, [63, 62, 61, -1]), REFERENCE)
    assert proxies["voice_crossing_frames"] == 0.5
    assert proxies["out_of_range_cells"] == pytest.approx(1 / 7)
    assert proxies["triad_or_seventh_frames"] == 0.5  # C-G-E is a triad; D#-D-C# is not
