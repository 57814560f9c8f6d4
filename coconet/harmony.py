"""Harmonisation statistics: how chorale-like a set of four-voice scores is, counted per simultaneity.

Ours, not the paper's (the paper asked listeners instead). A score is an int array ``[N, 4, T]`` of MIDI
pitches (REST = -1) at sixteenth-note frames. A *simultaneity* is a frame where any voice changes (its
pitch, or between sounding and resting), plus the first frame: the columns a listener hears as new chords.
With no note onsets in a sampled score, a re-struck repeated note counts as held, in Bach's scores too.

- voice-crossing rate: the fraction of simultaneities where a voice sounds above the voice written above it;
- parallel fifths and octaves per voice-pair move: over consecutive simultaneities and the 6 voice pairs,
  a *move* is a pair where both voices sound before and after and at least one changes pitch; it is a
  parallel when both move in the same direction and the interval between them is a perfect fifth or an
  octave/unison (mod 12) before and after;
- out-of-voice-range rate: the fraction of sounding cells (of the chosen voices) outside that voice's
  lowest..highest pitch in Bach's training chorales;
- simultaneities per bar (16 sixteenths), and its ratio to Bach's on the same melodies.

The time-shifted control keeps Bach's notes but delays each lower voice against the soprano (voice v by v
beats, circularly): every voice is Bach's own line, in its own register, but the vertical harmony is gone.
"""

from __future__ import annotations

import itertools

import numpy as np

FRAMES_PER_BAR = 16  # sixteenths in a 4/4 bar
PERFECT = (0, 7)  # interval classes of octaves/unisons and fifths


def simultaneities(scores: np.ndarray) -> np.ndarray:
    """``[N, T]`` bool: the frames where any voice changes, and every first frame."""
    changed = np.ones(scores.shape[::2], dtype=bool)
    changed[:, 1:] = (np.diff(scores, axis=-1) != 0).any(1)
    return changed


def crossed_frames(scores: np.ndarray) -> np.ndarray:
    """``[N, T]`` bool: frames where a voice sounds above the voice written just above it."""
    crossed = np.zeros(scores.shape[::2], dtype=bool)
    for upper in range(scores.shape[1] - 1):
        a, b = scores[:, upper], scores[:, upper + 1]
        crossed |= (a >= 0) & (b >= 0) & (b > a)
    return crossed


def voice_crossing_rate(scores: np.ndarray) -> float:
    """Fraction of simultaneities with crossed voices."""
    return float(crossed_frames(scores)[simultaneities(scores)].mean())


def parallel_motion(scores: np.ndarray) -> tuple[int, int, int]:
    """(parallel fifths/octaves, voice-pair moves with at least one voice moving, with both moving).

    Counted over consecutive frames; frames where nothing changes add no moves, so this is the same as
    counting over consecutive simultaneities.
    """
    parallels = moves_any = moves_both = 0
    for upper, lower in itertools.combinations(range(scores.shape[1]), 2):
        a, b = scores[:, upper], scores[:, lower]
        sounding = (a >= 0) & (b >= 0)
        both_sound = sounding[:, :-1] & sounding[:, 1:]
        step_a, step_b = np.diff(a, axis=-1), np.diff(b, axis=-1)
        either = both_sound & ((step_a != 0) | (step_b != 0))
        both = both_sound & (step_a != 0) & (step_b != 0)
        interval = (a - b) % 12
        repeated_perfect = np.isin(interval[:, :-1], PERFECT) & (
            interval[:, :-1] == interval[:, 1:]
        )
        parallels += int((both & (np.sign(step_a) == np.sign(step_b)) & repeated_perfect).sum())
        moves_any += int(either.sum())
        moves_both += int(both.sum())
    return parallels, moves_any, moves_both


def voice_ranges(pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each voice's lowest and highest sounding pitch ``[4]``, ``[4]`` over ``pieces`` ``[4, T]``."""
    low = np.array([min(p[v][p[v] >= 0].min() for p in pieces) for v in range(4)])
    high = np.array([max(p[v][p[v] >= 0].max() for p in pieces) for v in range(4)])
    return low, high


def out_of_range_rate(
    scores: np.ndarray, low: np.ndarray, high: np.ndarray, voices=(0, 1, 2, 3)
) -> float:
    """Fraction of the chosen voices' sounding cells outside that voice's [low, high]."""
    voices = list(voices)
    part = scores[:, voices]
    sounding = part >= 0
    outside = sounding & ((part < low[voices, None]) | (part > high[voices, None]))
    return float(outside.sum() / max(sounding.sum(), 1))


def time_shifted(scores: np.ndarray, beat: int = 4) -> np.ndarray:
    """The control: voice v delayed by v beats (circularly), so each line is Bach's but not the chords."""
    shifted = scores.copy()
    for v in range(1, scores.shape[1]):
        shifted[:, v] = np.roll(scores[:, v], v * beat, axis=-1)
    return shifted


def harmony_stats(
    scores: np.ndarray, low: np.ndarray, high: np.ndarray, range_voices=(0, 1, 2, 3)
) -> dict[str, float]:
    """The statistics above for ``scores`` ``[N, 4, T]`` (``range_voices``: the voices whose notes
    the out-of-range rate counts, e.g. the generated alto, tenor and bass of a harmonisation)."""
    scores = np.asarray(scores, dtype=np.int64)
    parallels, moves, _ = parallel_motion(scores)
    return {
        "voice_crossing_rate": voice_crossing_rate(scores),
        "parallel_5ths_8ves_per_move": parallels / max(moves, 1),
        "out_of_voice_range_rate": out_of_range_rate(scores, low, high, range_voices),
        "simultaneities_per_bar": float(simultaneities(scores).sum())
        / (scores.shape[0] * scores.shape[-1] / FRAMES_PER_BAR),
    }
