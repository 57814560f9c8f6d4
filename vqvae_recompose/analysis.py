"""Descriptive statistics of measures (ours; the paper reports none): rests, dissonance, silent gaps, diversity.

All take voices ``[N, 4, T]`` (MIDI pitch or REST = -1) and return plain floats.
"""

from __future__ import annotations

import numpy as np

from common.music.constants import REST

DISSONANT_INTERVAL_CLASSES = (1, 6, 11)  # minor second / major seventh, tritone (mod 12)


def rest_rate(voices: np.ndarray) -> float:
    """Fraction of (voice, step) cells that are rests."""
    return float((np.asarray(voices) == REST).mean())


def dissonance_rate(voices: np.ndarray) -> float:
    """Fraction of steps whose sounding voices contain a minor second, major seventh or tritone (any octave)
    between some pair (spec R5)."""
    v = np.asarray(voices)
    dissonant = np.zeros(v.shape[:1] + v.shape[2:], dtype=bool)
    for a in range(v.shape[1]):
        for b in range(a + 1, v.shape[1]):
            both = (v[:, a] != REST) & (v[:, b] != REST)
            interval = np.abs(v[:, a] - v[:, b]) % 12
            dissonant |= both & np.isin(interval, DISSONANT_INTERVAL_CLASSES)
    return float(dissonant.mean())


def longest_rest_runs(music: np.ndarray) -> np.ndarray:
    """Longest run of consecutive rests of each voice of a ``[4, T]`` passage (sixteenths)."""
    runs = []
    for row in np.asarray(music) == REST:
        best = current = 0
        for resting in row:
            current = current + 1 if resting else 0
            best = max(best, current)
        runs.append(best)
    return np.array(runs)


def mean_pairwise_difference(samples: np.ndarray) -> float:
    """samples ``[S, N, 4, T]`` (S samples of the same N measures): mean fraction of cells in which two
    samples of one measure differ (Hamming distance per cell), over all pairs."""
    s = np.asarray(samples)
    pairs = [(s[i] != s[j]).mean() for i in range(len(s)) for j in range(i + 1, len(s))]
    return float(np.mean(pairs)) if pairs else 0.0
