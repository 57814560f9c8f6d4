"""The harmonisation statistics on hand-built four-voice scores (columns are sixteenth frames, REST = -1).

Semantics under test: a simultaneity is a frame where any voice changes (and the first frame); crossing is
counted per simultaneity; a voice-pair move is a pair whose voices both sound and at least one changes; a
parallel is a move of both voices in one direction keeping a perfect fifth or octave (mod 12); the
time-shifted control keeps every voice's notes and register but moves the lower voices in time.
"""

from __future__ import annotations

import numpy as np
import pytest

from coconet.harmony import (
    harmony_stats,
    out_of_range_rate,
    parallel_motion,
    simultaneities,
    time_shifted,
    voice_crossing_rate,
    voice_ranges,
)

C_MAJOR = [72, 67, 64, 48]  # C5 G4 E4 C3
D_MINOR = [74, 69, 65, 50]  # every voice up: S-B octaves and A-B fifths in parallel
CROSSED = [60, 67, 64, 48]  # the alto above the soprano


def score(*frames):
    return np.array(frames).T[None]  # [1, 4, T]


def test_simultaneities_are_frames_where_something_changes():
    held = score(C_MAJOR, C_MAJOR, C_MAJOR, D_MINOR, D_MINOR)
    assert simultaneities(held).tolist() == [[True, False, False, True, False]]
    harmony = harmony_stats(held, np.full(4, 0), np.full(4, 127))
    assert harmony["simultaneities_per_bar"] == pytest.approx(2 / (5 / 16))


def test_crossing_is_counted_per_simultaneity_not_per_frame():
    # Held for 3 frames the crossed chord is one of two simultaneities, not 3 of 4 frames.
    assert voice_crossing_rate(score(C_MAJOR, CROSSED, CROSSED, CROSSED)) == 0.5


def test_parallels_and_moves_by_hand():
    # Six pairs all move up: S-B (24, class 0) and A-B (19, class 7) are parallel; the others are not.
    assert parallel_motion(score(C_MAJOR, D_MINOR)) == (2, 6, 6)
    # Only the soprano moves: three pairs move (with at least one voice), none in parallel.
    s_only = score(C_MAJOR, [74, 67, 64, 48])
    assert parallel_motion(s_only) == (0, 3, 0)
    # A rest in the bass removes its three pairs.
    assert parallel_motion(score(C_MAJOR, [74, 69, 65, -1])) == (0, 3, 3)
    assert harmony_stats(score(C_MAJOR, D_MINOR), np.zeros(4), np.full(4, 127))[
        "parallel_5ths_8ves_per_move"
    ] == pytest.approx(2 / 6)


def test_out_of_range_counts_only_the_chosen_voices():
    low, high = voice_ranges([np.array([[60, 81], [55, 74], [48, 69], [36, 64]])])
    assert low.tolist() == [60, 55, 48, 36] and high.tolist() == [81, 74, 69, 64]
    too_high_bass = score([72, 67, 64, 70], [72, 67, 64, 48])
    assert out_of_range_rate(too_high_bass, low, high) == pytest.approx(1 / 8)
    assert out_of_range_rate(too_high_bass, low, high, voices=(0, 1, 2)) == 0.0


def test_time_shifted_control_keeps_each_voice_but_moves_the_lower_ones():
    rng = np.random.default_rng(0)
    bach = rng.integers(40, 80, (2, 4, 32))
    shifted = time_shifted(bach, beat=4)
    assert np.array_equal(shifted[:, 0], bach[:, 0])
    for v in (1, 2, 3):
        assert np.array_equal(shifted[:, v], np.roll(bach[:, v], 4 * v, axis=-1))
        assert np.array_equal(np.sort(shifted[:, v]), np.sort(bach[:, v]))
