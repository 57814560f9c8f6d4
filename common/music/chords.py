"""Chord labels for voice arrays, melody/chord pairs and bar-aligned measures of the chorales.

Labelling a sonority (the set of pitches sounding in one frame):

1. root and quality: the chord tone whose set of intervals above it is in ``QUALITY_OF_INTERVALS``
   (complete chords and the usual incomplete forms, e.g. a triad without its fifth); the symmetric
   dim7 / aug chords, where several tones qualify, take music21's ``Chord.root()`` of the pitches
   spelled in the piece's key (Ab vs G# changes the root); no match -> OTHER (passing dissonances,
   bare fifths), with music21's root;
2. Roman numeral: music21's ``romanNumeralFromChord`` on the chord spelled in thirds above its
   root, in closed position, in the piece's analysed key (e.g. "V65", "viio7").

The class of a chord is ``root * N_QUALITIES + quality`` (120 classes), plus OTHER (120) and
NO_CHORD (121, every voice rests). Labels are per sixteenth frame; ``beat_labels`` picks one per
beat. Roman numerals are transposition-invariant; classes rotate with ``transpose_labels``.
Labels are memoised per key-relative sonority, and the corpus-wide labels are cached on disk.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np

from common.music.chorales import (
    ChoraleDataset,
    _cache_path,
    atomic_savez,
    load_chorale_dataset,
)
from common.music.constants import FRAMES_PER_QUARTER, REST

CHORDS_VERSION = 1
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORD_QUALITIES = ("maj", "min", "dim", "aug", "sus4", "dom7", "maj7", "min7", "hdim7", "dim7")
N_QUALITIES = len(CHORD_QUALITIES)
OTHER = 12 * N_QUALITIES  # a sonority outside the vocabulary (passing dissonance, bare fifth, ...)
NO_CHORD = OTHER + 1  # silence
N_CHORD_CLASSES = NO_CHORD + 1  # 122

# intervals above the root (semitones) -> quality; the 2-3 note rows are incomplete chords
_QUALITY_ROWS = {
    "maj": [(0, 4, 7), (0, 4)],
    "min": [(0, 3, 7), (0, 3)],
    "dim": [(0, 3, 6)],
    "aug": [(0, 4, 8)],
    "sus4": [(0, 5, 7)],
    "dom7": [(0, 4, 7, 10), (0, 4, 10)],
    "maj7": [(0, 4, 7, 11), (0, 4, 11)],
    "min7": [(0, 3, 7, 10), (0, 3, 10)],
    "hdim7": [(0, 3, 6, 10)],
    "dim7": [(0, 3, 6, 9)],
}
QUALITY_OF_INTERVALS = {
    frozenset(row): CHORD_QUALITIES.index(q) for q, rows in _QUALITY_ROWS.items() for row in rows
}
# the complete chord of each quality, for chord_pitch_classes
_FULL_INTERVALS = {CHORD_QUALITIES.index(q): rows[0] for q, rows in _QUALITY_ROWS.items()}

# spelling of each pitch class relative to the tonic (index 0 = tonic), in C major / C minor
_SPELLING = {
    "major": ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B"),
    "minor": ("C", "D-", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B"),
}


def chord_name(label: int) -> str:
    """Human-readable class name: "C:maj", "F#:dom7", "other", "N" (no chord)."""
    label = int(label)
    if label == OTHER:
        return "other"
    if label == NO_CHORD:
        return "N"
    if not 0 <= label < OTHER:
        raise ValueError(f"chord label must be in 0..{N_CHORD_CLASSES - 1}, got {label}")
    return f"{PITCH_CLASS_NAMES[label // N_QUALITIES]}:{CHORD_QUALITIES[label % N_QUALITIES]}"


def chord_pitch_classes(label: int) -> tuple[int, ...]:
    """Pitch classes of a chord class's complete chord (empty for OTHER / NO_CHORD)."""
    label = int(label)
    if label in (OTHER, NO_CHORD):
        return ()
    chord_name(label)  # validates the range
    root, quality = divmod(label, N_QUALITIES)
    return tuple((root + i) % 12 for i in _FULL_INTERVALS[quality])


def transpose_labels(labels, semitones: int):
    """Rotate chord classes by ``semitones`` (OTHER and NO_CHORD stay)."""
    labels = np.asarray(labels)
    root, quality = np.divmod(labels, N_QUALITIES)
    moved = ((root + semitones) % 12) * N_QUALITIES + quality
    return np.where(labels >= OTHER, labels, moved).astype(labels.dtype)


_INTERVAL_NAMES = {0: "P1", 3: "m3", 4: "M3", 5: "P4", 6: "d5", 7: "P5", 8: "A5", 9: "d7", 10: "m7"}
_INTERVAL_NAMES[11] = "M7"


@cache
def _label_relative(pcs: tuple[int, ...], bass: int, mode: str) -> tuple[int, int, str]:
    """(root pc, quality or -1, Roman figure) of a sonority given relative to a tonic on C.

    A vocabulary chord has one root that makes it a template (the symmetric dim7 / aug have
    several: music21's root of the key-spelled chord picks one); anything else takes music21's
    root. The chord is re-spelled in thirds above its root before the Roman analysis, so that
    e.g. a diminished triad is never read as C-Eb-F#.
    """
    from music21 import chord, key, pitch, roman

    spelling = _SPELLING[mode]
    key_spelled = chord.Chord(
        [pitch.Pitch(spelling[bass] + "3")]
        + [pitch.Pitch(spelling[pc] + "4") for pc in pcs if pc != bass]
    )
    music21_root = key_spelled.root().pitchClass
    candidates = []
    for root in pcs:
        quality = QUALITY_OF_INTERVALS.get(frozenset((pc - root) % 12 for pc in pcs))
        if quality is not None:
            candidates.append((root != music21_root, root, quality))
    if candidates:
        _, root, quality = min(candidates)
        root_pitch = pitch.Pitch(spelling[root] + "4")
        spelled = []
        for pc in pcs:
            p = root_pitch.transpose(_INTERVAL_NAMES[(pc - root) % 12])
            spelled.append(p.transpose("-P8") if pc == bass else p)
        sonority = chord.Chord(spelled)
    else:
        root, quality, sonority = music21_root, -1, key_spelled
    tonic = key.Key("C" if mode == "major" else "c")
    figure = roman.romanNumeralFromChord(sonority.closedPosition(), tonic).figure
    return root, quality, figure


def label_sonority(pitches, key_tonic: int, key_mode: str) -> tuple[int, str]:
    """(chord class, Roman figure) of a set of MIDI pitches in the key (tonic pc, major|minor)."""
    sounding = sorted(int(p) for p in pitches if p != REST)
    if not sounding:
        return NO_CHORD, ""
    if key_mode not in _SPELLING:
        raise ValueError(f"key_mode must be major or minor, got {key_mode!r}")
    pcs = tuple(sorted({(p - key_tonic) % 12 for p in sounding}))
    root, quality, figure = _label_relative(pcs, (sounding[0] - key_tonic) % 12, key_mode)
    if quality < 0:
        return OTHER, figure
    return ((root + key_tonic) % 12) * N_QUALITIES + quality, figure


@dataclass
class ChordLabels:
    """Per-frame (or per-beat) labels of one piece."""

    label: np.ndarray  # int16 [T]: chord class (see chord_name)
    roman: list[str]  # [T]: Roman figure in the piece's key ("" where nothing sounds)


def frame_labels(voices, key_tonic: int, key_mode: str) -> ChordLabels:
    """Label the sonority of every frame of ``voices [V, T]`` (the sounding voices only)."""
    voices = np.asarray(voices)
    label = np.empty(voices.shape[1], dtype=np.int16)
    roman: list[str] = []
    cache: dict[tuple, tuple[int, str]] = {}
    for t, column in enumerate(map(tuple, voices.T.tolist())):
        if column not in cache:
            cache[column] = label_sonority(column, key_tonic, key_mode)
        label[t], figure = cache[column]
        roman.append(figure)
    return ChordLabels(label, roman)


def beat_labels(frames: ChordLabels, frames_per_beat: int = FRAMES_PER_QUARTER) -> ChordLabels:
    """One label per beat: the beat's first frame if it is in the vocabulary, otherwise the most
    frequent in-vocabulary label of the beat (passing notes on the off-beats are ignored), else
    the first frame's OTHER / NO_CHORD."""
    n_beats = -(-len(frames.label) // frames_per_beat)
    label = np.empty(n_beats, dtype=np.int16)
    roman = []
    for b in range(n_beats):
        window = range(b * frames_per_beat, min((b + 1) * frames_per_beat, len(frames.label)))
        chosen = window[0]
        if frames.label[chosen] >= OTHER:
            counts = Counter(int(frames.label[t]) for t in window if frames.label[t] < OTHER)
            if counts:
                best = counts.most_common(1)[0][0]
                chosen = next(t for t in window if frames.label[t] == best)
        label[b] = frames.label[chosen]
        roman.append(frames.roman[chosen])
    return ChordLabels(label, roman)


# ---------------------------------------------------------------------------------------------
# Corpus-wide labels (cached next to the chorale cache)
# ---------------------------------------------------------------------------------------------


def _labels_path(limit, directory):
    chorales = _cache_path(limit, directory)
    return chorales.with_name(chorales.stem + f"_chords_v{CHORDS_VERSION}.npz")


def _fingerprint(data: ChoraleDataset) -> dict:
    """What the labels depend on: the notes and the keys (a rebuilt chorale cache invalidates)."""
    crc = zlib.crc32(data.voices.tobytes())
    crc = zlib.crc32(data.key_tonic.tobytes() + "|".join(data.key_mode).encode(), crc)
    return {"version": CHORDS_VERSION, "frames": int(data.voices.shape[1]), "crc": crc}


def _corpus_labels(data: ChoraleDataset, limit, directory) -> dict[str, np.ndarray]:
    """Frame labels of every chorale over all 4 voices and over the lower 3 (A, T, B), cached."""
    path = _labels_path(limit, directory)
    expected = _fingerprint(data)
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
        meta = json.loads(str(stored.pop("meta")))
        if meta == expected and all(len(v) == expected["frames"] for v in stored.values()):
            return stored
    except Exception:  # missing, truncated, not an npz, old layout: rebuild, never trust
        pass
    result: dict[str, list] = {"all": [], "all_roman": [], "lower": [], "lower_roman": []}
    for i in range(len(data)):
        voices = data.piece(i)
        tonic, mode = int(data.key_tonic[i]), str(data.key_mode[i])
        for name, rows in (("all", voices), ("lower", voices[1:])):
            labels = frame_labels(rows, tonic, mode)
            result[name].append(labels.label)
            result[name + "_roman"].extend(labels.roman)
    arrays = {
        "all": np.concatenate(result["all"]),
        "lower": np.concatenate(result["lower"]),
        "all_roman": np.array(result["all_roman"]),
        "lower_roman": np.array(result["lower_roman"]),
    }
    atomic_savez(path, arrays, expected)
    return arrays


def chorale_chords(
    split: str = "train",
    *,
    chord_voices: str = "all",
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> list[ChordLabels]:
    """Per-frame chord labels of each chorale of a split, parallel to ``load_chorales(split)``.

    ``chord_voices``: "all" labels the 4-voice sonority, "lower" only alto, tenor and bass.
    """
    if chord_voices not in ("all", "lower"):
        raise ValueError(f"chord_voices must be 'all' or 'lower', got {chord_voices!r}")
    data = load_chorale_dataset(limit=limit, directory=directory)
    arrays = _corpus_labels(data, limit, directory)
    out = []
    for i in data.indices(split):
        sl = slice(data.offsets[i], data.offsets[i + 1])
        roman = arrays[chord_voices + "_roman"][sl].tolist()
        out.append(ChordLabels(arrays[chord_voices][sl].copy(), roman))
    return out


def melody_chord_pairs(
    split: str = "train",
    *,
    chord_voices: str = "lower",
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(melody, chords) per chorale at sixteenth frames, for the accompaniment model.

    melody = the soprano line, int16 [T] (REST = -1); chords = int16 [T] chord classes of the
    lower three voices (``chord_voices="all"``: of all four). Augment with ``transpose`` on the
    melody and ``transpose_labels`` on the chords, by the same shift.
    """
    pieces = load_chorale_dataset(limit=limit, directory=directory)
    chords = chorale_chords(split, chord_voices=chord_voices, limit=limit, directory=directory)
    melodies = [pieces.piece(i)[0] for i in pieces.indices(split)]
    return [(m, c.label) for m, c in zip(melodies, chords)]


def melody_onsets(
    split: str = "train", *, limit: int | None = None, directory: str | os.PathLike | None = None
) -> list[np.ndarray]:
    """bool [T] soprano note starts parallel to ``melody_chord_pairs(split)`` (onset/hold tokens)."""
    pieces = load_chorale_dataset(limit=limit, directory=directory)
    return [pieces.piece_onsets(i)[0] for i in pieces.indices(split)]


# ---------------------------------------------------------------------------------------------
# Bar-aligned, key-normalised measures (the recomposition model)
# ---------------------------------------------------------------------------------------------


def key_normalising_shift(key_tonic: int, key_mode: str) -> int:
    """Semitones (-6..+5, the smaller move) taking the tonic to C (major) or A (minor)."""
    target = 0 if key_mode == "major" else 9
    return (target - key_tonic + 6) % 12 - 6


@dataclass
class Measures:
    """Full bars of the chorales, each ``[4, 16]``; arrays are parallel over measures."""

    voices: np.ndarray  # int16 [N, 4, 16]; 3/4 bars right-padded with REST when kept
    piece: np.ndarray  # int32 [N]: index into load_chorales(split) / chorale_ids(split)
    bar: np.ndarray  # int32 [N]: 0-based index of the written measure within its piece
    roman: list[str]  # [N]: the most frequent Roman figure of the bar's frames (OTHER ignored)
    shift: np.ndarray  # int8 [N]: semitones applied to normalise the key (0 if not normalised)


def chorale_measures(
    split: str = "train",
    *,
    key_normalise: bool = True,
    include_3_4: bool = False,
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> Measures:
    """Bar-aligned measures: pickups and incomplete bars dropped, bar lines from the score.

    ``key_normalise`` transposes each piece to C major / A minor by ``key_normalising_shift`` (the
    result may leave MIDI 36..81, so these are voice arrays, not 46-pitch rolls). 4/4 bars give 16
    frames; 3/4 bars (12 frames) are dropped unless ``include_3_4`` (then right-padded with REST);
    other metres (one 3/2 chorale) are dropped.
    """
    data = load_chorale_dataset(limit=limit, directory=directory)
    chords = chorale_chords(split, chord_voices="all", limit=limit, directory=directory)
    out_voices, out_piece, out_bar, out_roman, out_shift = [], [], [], [], []
    for j, i in enumerate(data.indices(split)):
        voices = data.piece(i)
        shift = key_normalising_shift(int(data.key_tonic[i]), str(data.key_mode[i]))
        if key_normalise:
            voices = np.where(voices == REST, REST, voices + shift).astype(np.int16)
        else:
            shift = 0
        starts, written, full = data.measures(i)
        for b, (start, length, bar_length) in enumerate(zip(starts, written, full)):
            if length != bar_length or bar_length not in ((16, 12) if include_3_4 else (16,)):
                continue
            measure = np.full((4, 16), REST, dtype=np.int16)
            measure[:, :length] = voices[:, start : start + length]
            labels = chords[j].label[start : start + length]
            romans = [
                chords[j].roman[t]
                for t in range(start, start + length)
                if labels[t - start] < OTHER
            ]
            out_voices.append(measure)
            out_piece.append(j)
            out_bar.append(b)
            out_roman.append(Counter(romans).most_common(1)[0][0] if romans else "")
            out_shift.append(shift)
    return Measures(
        voices=np.stack(out_voices) if out_voices else np.zeros((0, 4, 16), np.int16),
        piece=np.array(out_piece, dtype=np.int32),
        bar=np.array(out_bar, dtype=np.int32),
        roman=out_roman,
        shift=np.array(out_shift, dtype=np.int8),
    )


__all__ = [
    "CHORD_QUALITIES",
    "NO_CHORD",
    "N_CHORD_CLASSES",
    "OTHER",
    "ChordLabels",
    "Measures",
    "beat_labels",
    "chord_name",
    "chord_pitch_classes",
    "chorale_chords",
    "chorale_measures",
    "frame_labels",
    "key_normalising_shift",
    "label_sonority",
    "melody_chord_pairs",
    "melody_onsets",
    "transpose_labels",
]
