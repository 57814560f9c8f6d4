"""Automatic music proxies for samples, in place of the paper's human (Mechanical Turk) evaluation.

These are labelled stand-ins, not the paper's measure, counted per frame (``coconet.harmony`` counts the
same things per simultaneity). For scores ``[N, 4, T]`` (MIDI pitches, REST = -1, sixteenth-note frames):
- parallel fifths/octaves per 100 voice-pair motions: both voices move in the same direction between two
  consecutive frames and form the same perfect fifth (or octave/unison) class before and after;
- voice crossing: fraction of frames where a lower voice sounds above the voice written above it;
- out of range: fraction of sounding cells outside each voice's range in Bach's training chorales;
- triad/seventh frames: fraction of frames whose pitch-class set is exactly a major, minor, diminished or
  augmented triad, or a seventh chord;
- pitch-class Jensen-Shannon divergence to Bach (nats), and note onsets per frame per voice.
"""

from __future__ import annotations

import numpy as np

from coconet.harmony import crossed_frames, out_of_range_rate, parallel_motion, voice_ranges

CHORD_SHAPES = [  # intervals above the root, as pitch-class sets
    (0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8),  # major, minor, diminished, augmented triads
    (0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11), (0, 3, 6, 9), (0, 3, 6, 10),  # sevenths
]  # fmt: skip
CHORD_SETS = {
    frozenset((root + i) % 12 for i in shape) for shape in CHORD_SHAPES for root in range(12)
}


def pitch_class_histogram(scores: np.ndarray) -> np.ndarray:
    pitches = scores[scores >= 0]
    counts = np.bincount(pitches % 12, minlength=12).astype(float)
    return counts / max(counts.sum(), 1.0)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a, b):
        nonzero = a > 0
        return float((a[nonzero] * np.log(a[nonzero] / b[nonzero])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def music_proxies(scores: np.ndarray, reference: list[np.ndarray]) -> dict[str, float]:
    """The proxies above for ``scores`` ``[N, 4, T]``; ``reference``: Bach's training pieces ``[4, T]``."""
    scores = np.asarray(scores, dtype=np.int64)
    sounding = scores >= 0
    parallels, _, motions = parallel_motion(scores)
    low, high = voice_ranges(reference)
    chord_frames = [
        frozenset(frame[frame >= 0] % 12) in CHORD_SETS
        for frame in scores.transpose(0, 2, 1).reshape(-1, 4)
    ]
    onsets = sounding[..., 1:] & (np.diff(scores, axis=-1) != 0)
    reference_histogram = pitch_class_histogram(np.concatenate(reference, axis=1))
    return {
        "parallel_fifths_octaves_per_100": 100.0 * parallels / max(motions, 1),
        "voice_crossing_frames": float(crossed_frames(scores).mean()),
        "out_of_range_cells": out_of_range_rate(scores, low, high),
        "triad_or_seventh_frames": float(np.mean(chord_frames)),
        "pitch_class_js_to_bach": jensen_shannon(
            pitch_class_histogram(scores), reference_histogram
        ),
        "onsets_per_frame_per_voice": float(onsets.mean()),
    }
