"""Melody/chord pairs from the Bach chorales and chordless folk melodies, as token batches.

Our data deviation (ReaLchords trains on Hooktheory pop lead sheets, unavailable offline): melody = the
chorale soprano, chord = the label of all four voices (common.music: 9% "other" frames vs 25% for the lower
three), read once per eighth note and reduced to 12 roots x {maj, min, dim, dom7}; transposed to all 12 keys
on the fly (the paper transposes -6..+6). Folk melodies (music21's Essen collection) are RL prompts and an
out-of-distribution test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from common.music.chords import N_QUALITIES, NO_CHORD, OTHER, melody_chord_pairs, melody_onsets
from common.music.folk import load_folk_dataset
from realjam.tokens import SILENT, encode_chords, encode_melody, interleave

# common.music chord qualities (maj min dim aug sus4 dom7 maj7 min7 hdim7 dim7) -> ours (maj min dim dom7)
_QUALITY_MAP = np.array([0, 1, 2, 0, 0, 3, 0, 1, 2, 2])
_CARRY = -2  # an "other" sonority (passing dissonance): keep the previous chord


@dataclass
class Song:
    melody: np.ndarray  # int [T] MIDI pitch, SILENT = rest
    onsets: np.ndarray  # bool [T] a melody note is struck here
    chords: np.ndarray  # int [T] chord symbol 0..47, SILENT = no chord (empty for folk tunes)


def reduce_chord_labels(labels: np.ndarray, frames_per_label: int = 2) -> np.ndarray:
    """common.music's 122 classes per sixteenth -> our 48 symbols, one label per eighth note.

    Each eighth takes its first frame's chord when that is a vocabulary chord, else its second frame's,
    else the chord before (an "other" sonority is read as a passing dissonance over the last chord).
    """
    labels = np.asarray(labels).astype(np.int64)
    root, quality = np.divmod(labels, N_QUALITIES)
    reduced = root * 4 + _QUALITY_MAP[np.minimum(quality, N_QUALITIES - 1)]
    reduced = np.where(labels == OTHER, _CARRY, np.where(labels == NO_CHORD, SILENT, reduced))
    out = np.empty_like(reduced)
    previous = _CARRY
    for start in range(0, len(reduced), frames_per_label):
        window = [v for v in reduced[start : start + frames_per_label] if v != _CARRY]
        previous = window[0] if window else previous
        out[start : start + frames_per_label] = previous
    known = np.flatnonzero(out != _CARRY)
    if len(known) == 0:
        return np.full_like(out, SILENT)
    out[: known[0]] = out[known[0]]  # a piece opening on "other" takes its first real chord
    return out


def chorale_songs(split: str, limit: int | None = None) -> list[Song]:
    pairs = melody_chord_pairs(split, chord_voices="all", limit=limit)
    onsets = melody_onsets(split, limit=limit)
    return [
        Song(m.astype(np.int64), o.astype(bool), reduce_chord_labels(c))
        for (m, c), o in zip(pairs, onsets)
    ]


def folk_songs(split: str, limit: int, min_frames: int) -> list[Song]:
    """Essen folk tunes of at least ``min_frames`` sixteenths, moved by octaves to the soprano's range."""
    data = load_folk_dataset("essen", limit=limit)
    songs = []
    for i in range(len(data)):
        if data.split[i] != split and split != "all":
            continue
        melody = data.melody(i).astype(np.int64)
        if len(melody) < min_frames or (melody >= 0).sum() == 0:
            continue
        octave = int(round((69 - melody[melody >= 0].mean()) / 12))  # centre near A4 like a soprano
        melody = np.where(melody >= 0, melody + 12 * octave, SILENT)
        songs.append(Song(melody, data.melody_onsets(i), np.empty(0, dtype=np.int64)))
    return songs


def transpose_song(song: Song, shift: int) -> Song:
    melody = np.where(song.melody >= 0, song.melody + shift, SILENT)
    root, quality = np.divmod(np.maximum(song.chords, 0), 4)
    chords = np.where(song.chords >= 0, ((root + shift) % 12) * 4 + quality, SILENT)
    return Song(melody, song.onsets, chords)


def song_tokens(songs: list[Song], frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``frames`` frames of each song -> (melody pitches, melody tokens, chord tokens) ``[B, T]``.

    Songs must be at least ``frames`` long; folk tunes have no chords (their chord tokens are silence).
    """
    melody = torch.as_tensor(np.stack([s.melody[:frames] for s in songs]))
    onsets = torch.as_tensor(np.stack([s.onsets[:frames] for s in songs]))
    chords = torch.as_tensor(
        np.stack([s.chords[:frames] if len(s.chords) else np.full(frames, SILENT) for s in songs])
    )
    return melody, encode_melody(melody, onsets), encode_chords(chords)


def random_crops(
    songs: list[Song], batch: int, frames: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random songs, random key (-6..+5 semitones), random beat-aligned crop of ``frames`` frames.

    Returns (interleaved tokens ``[B, 1+2T]``, melody tokens ``[B, T]``, chord tokens ``[B, T]``); frames past a
    song's end are PAD (0) and drop out of the losses.
    """
    picks = torch.randint(len(songs), (batch,), generator=generator).tolist()
    shifts = torch.randint(-6, 6, (batch,), generator=generator).tolist()
    melodies, chords = [], []
    for pick, shift in zip(picks, shifts):
        song = transpose_song(songs[pick], shift)
        beats = max((len(song.melody) - frames) // 4, 0)
        start = 4 * int(torch.randint(beats + 1, (1,), generator=generator))
        sl = slice(start, start + frames)
        m = encode_melody(torch.as_tensor(song.melody[sl]), torch.as_tensor(song.onsets[sl]))
        c = encode_chords(torch.as_tensor(song.chords[sl]))
        pad = frames - len(m)
        melodies.append(torch.nn.functional.pad(m, (0, pad)))
        chords.append(torch.nn.functional.pad(c, (0, pad)))
    melody_tokens, chord_tokens = torch.stack(melodies), torch.stack(chords)
    return interleave(chord_tokens, melody_tokens), melody_tokens, chord_tokens


def random_prompts(
    songs: list[Song], batch: int, frames: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """RL prompts: melodies only (random song, key, beat-aligned crop) -> (pitches, melody tokens) ``[B, T]``."""
    picks = torch.randint(len(songs), (batch,), generator=generator).tolist()
    shifts = torch.randint(-6, 6, (batch,), generator=generator).tolist()
    pitches, onsets = [], []
    for pick, shift in zip(picks, shifts):
        song = songs[pick]
        start = 4 * int(
            torch.randint((len(song.melody) - frames) // 4 + 1, (1,), generator=generator)
        )
        m = song.melody[start : start + frames]
        pitches.append(torch.as_tensor(np.where(m >= 0, m + shift, SILENT)))
        onsets.append(torch.as_tensor(song.onsets[start : start + frames]))
    pitches_t, onsets_t = torch.stack(pitches), torch.stack(onsets)
    return pitches_t, encode_melody(pitches_t, onsets_t)
