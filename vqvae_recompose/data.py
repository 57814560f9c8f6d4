"""Measures of the Bach chorales as the paper's inputs: pianoroll images and (prev, cur, next) chord labels.

The paper cuts Josquin scores into 16-step "measures" (Sec. 2); the Josquin corpus is not available offline,
so we use the bar-aligned, key-normalised (C major / A minor) 4/4 bars of the four-part Bach chorales from
``common.music.chorale_measures`` (pickups and incomplete bars dropped). A measure is an int array
``[4, 16]`` (MIDI pitch or REST = -1 per voice and sixteenth); its image is ``[4, P, 16]`` over ``P`` pitch
rows starting at ``pitch_low`` (52 rows MIDI 33..84 by default, padded to a multiple of 4 as in the paper).

Chord labels are root + quality classes (``common.music.chords`` vocabulary: 12 roots x 10 qualities), not
the paper's Roman numerals, computed here from pitch classes alone so that real and generated measures are
labelled by exactly the same rule (see ``measure_chord``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from common.music.chords import N_QUALITIES, NO_CHORD, OTHER, QUALITY_OF_INTERVALS
from common.music.constants import REST


# ------------------------------------------------------------------------------------------------
# Pianoroll images
# ------------------------------------------------------------------------------------------------
def fold_into_rows(voices: np.ndarray, pitch_low: int, n_pitches: int) -> np.ndarray:
    """Move notes outside ``pitch_low .. pitch_low + n_pitches - 1`` by octaves into it (the few bass
    notes below MIDI 33 after key normalisation go up an octave); rests stay."""
    voices = np.asarray(voices).astype(np.int64)
    high = pitch_low + n_pitches - 1
    if n_pitches < 12:
        raise ValueError(f"data.n_pitches must cover an octave (>= 12), got {n_pitches}")
    sounding = voices != REST
    folded = voices.copy()
    while ((folded < pitch_low) & sounding).any():
        folded = np.where(sounding & (folded < pitch_low), folded + 12, folded)
    while ((folded > high) & sounding).any():
        folded = np.where(sounding & (folded > high), folded - 12, folded)
    return folded


def voices_to_image(voices, pitch_low: int, n_pitches: int) -> torch.Tensor:
    """``[N, 4, T]`` voices (already inside the rows) -> float ``[N, 4, P, T]`` one-hot images; a rest
    is an all-zero column."""
    voices = torch.as_tensor(np.asarray(voices), dtype=torch.long)
    rows = voices - pitch_low
    if ((rows < 0) | (rows >= n_pitches))[voices != REST].any():
        raise ValueError(f"a pitch lies outside MIDI {pitch_low}..{pitch_low + n_pitches - 1}")
    one_hot = torch.nn.functional.one_hot(rows.clamp(0, n_pitches - 1), n_pitches).float()
    one_hot = one_hot * (voices != REST)[..., None]
    return one_hot.permute(0, 1, 3, 2).contiguous()  # [N, 4, T, P] -> [N, 4, P, T]


def image_to_voices(probs: torch.Tensor, pitch_low: int, threshold: float = 0.5) -> np.ndarray:
    """Decode ``[N, 4, P, T]`` note probabilities to voices ``[N, 4, T]``: per voice and step the most
    probable pitch if its probability exceeds ``threshold``, else a rest (one note per voice at most)."""
    best, row = probs.max(dim=2)
    voices = torch.where(best > threshold, row + pitch_low, torch.full_like(row, REST))
    return voices.cpu().numpy().astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Chord labels (root + quality)
# ------------------------------------------------------------------------------------------------
def _chord_table() -> np.ndarray:
    """``[4096, 12]``: chord class of a pitch-class set (bit mask) over a bass pitch class.

    A set is a vocabulary chord when the intervals above one of its tones form a quality of
    ``common.music.chords`` (complete or the usual incomplete forms); the symmetric aug / dim7 chords,
    where several tones qualify, take the bass (else the lowest qualifying tone) as root. Anything else
    is OTHER; the empty set is NO_CHORD.
    """
    table = np.full((4096, 12), OTHER, dtype=np.int64)
    table[0] = NO_CHORD
    for mask in range(1, 4096):
        pcs = [pc for pc in range(12) if mask >> pc & 1]
        roots = [r for r in pcs if frozenset((p - r) % 12 for p in pcs) in QUALITY_OF_INTERVALS]
        for bass in range(12):
            if not roots:
                continue
            root = bass if bass in roots else roots[0]
            quality = QUALITY_OF_INTERVALS[frozenset((p - root) % 12 for p in pcs)]
            table[mask, bass] = root * N_QUALITIES + quality
    return table


CHORD_TABLE = _chord_table()


def frame_chords(voices: np.ndarray) -> np.ndarray:
    """Chord class of every frame: ``[..., 4, T]`` voices -> ``[..., T]``."""
    voices = np.asarray(voices).astype(np.int64)
    sounding = voices != REST
    bits = np.where(sounding, 1 << (voices % 12), 0)
    mask = np.bitwise_or.reduce(bits, axis=-2)
    bass = np.where(sounding, voices, 1 << 20).min(axis=-2) % 12
    return CHORD_TABLE[mask, bass]


def measure_chord(voices: np.ndarray) -> np.ndarray:
    """One chord per measure ``[N, 4, T] -> [N]``: the vocabulary chord sounding in most frames (the
    downbeat's chord wins a tie); OTHER when no frame holds a vocabulary chord, NO_CHORD when silent."""
    frames = frame_chords(voices)
    n, t = frames.shape
    counts = np.zeros((n, NO_CHORD + 1))
    np.add.at(counts, (np.repeat(np.arange(n), t), frames.ravel()), 1.0)
    counts[np.arange(n), frames[:, 0]] += 0.5
    in_vocabulary = counts[:, :OTHER]
    any_sounding = (frames != NO_CHORD).any(1)
    fallback = np.where(any_sounding, OTHER, NO_CHORD)
    return np.where(in_vocabulary.max(1) > 0, in_vocabulary.argmax(1), fallback)


@dataclass
class ChordVocabulary:
    """Chord classes seen at least ``min_count`` times in training; the rest share the last id."""

    classes: np.ndarray  # int64 [V - 1]: chord class of each id, most frequent first

    @classmethod
    def fit(cls, chords: np.ndarray, min_count: int) -> ChordVocabulary:
        values, counts = np.unique(chords, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return cls(values[order][counts[order] >= min_count].astype(np.int64))

    def __len__(self) -> int:
        return len(self.classes) + 1

    def ids(self, chords: np.ndarray) -> np.ndarray:
        lookup = {int(c): i for i, c in enumerate(self.classes)}
        return np.array([lookup.get(int(c), len(self.classes)) for c in chords], dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# The measures of a split
# ------------------------------------------------------------------------------------------------
@dataclass
class MeasureSet:
    """Bar-aligned measures and everything the two stages condition on; arrays parallel over N."""

    voices: np.ndarray  # int64 [N, 4, 16], folded into the pitch rows
    chords: np.ndarray  # int64 [N]: chord class of the measure (root + quality)
    triplets: np.ndarray  # int64 [N, 3]: vocabulary ids of (previous, current, next) chords
    previous: np.ndarray  # int64 [N]: index of the previous bar of the same piece, -1 if absent
    piece: np.ndarray  # int64 [N]: index into the split's pieces
    bar: np.ndarray  # int64 [N]: written bar number in the piece

    def __len__(self) -> int:
        return len(self.voices)

    def subset(self, keep: np.ndarray) -> MeasureSet:
        """The measures ``keep`` (sorted indices); neighbour links outside the subset become -1."""
        keep = np.asarray(keep)
        new_index = np.full(len(self), -1)
        new_index[keep] = np.arange(len(keep))
        previous = np.where(self.previous[keep] >= 0, new_index[self.previous[keep]], -1)
        return MeasureSet(self.voices[keep], self.chords[keep], self.triplets[keep], previous,
                          self.piece[keep], self.bar[keep])  # fmt: skip


def neighbours(piece: np.ndarray, bar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the previous / next bar of the same piece among the measures, -1 where absent (a
    dropped pickup or a piece border)."""
    where = {(int(p), int(b)): i for i, (p, b) in enumerate(zip(piece, bar))}
    prev = np.array([where.get((int(p), int(b) - 1), -1) for p, b in zip(piece, bar)])
    nxt = np.array([where.get((int(p), int(b) + 1), -1) for p, b in zip(piece, bar)])
    return prev.astype(np.int64), nxt.astype(np.int64)


def chord_triplets(chord_ids: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """(previous, current, next) ids; a missing neighbour repeats the current chord (as the authors'
    loader does at the borders)."""
    own = np.arange(len(chord_ids))
    return np.stack(
        [
            chord_ids[np.where(prev >= 0, prev, own)],
            chord_ids,
            chord_ids[np.where(nxt >= 0, nxt, own)],
        ],
        axis=1,
    )


def build_measure_set(voices, piece, bar, vocabulary: ChordVocabulary, pitch_low, n_pitches):
    voices = fold_into_rows(voices, pitch_low, n_pitches)
    chords = measure_chord(voices)
    prev, nxt = neighbours(piece, bar)
    triplets = chord_triplets(vocabulary.ids(chords), prev, nxt)
    return MeasureSet(
        voices, chords, triplets, prev, np.asarray(piece, np.int64), np.asarray(bar, np.int64)
    )


def load_measures(cfg_data, vocabulary: ChordVocabulary | None = None):
    """(train, validation, vocabulary): measures of the chorale split (common.music: valid =
    Riemenschneider number % 10 == 0) and the chord vocabulary (fitted on train unless given)."""
    from common.music import chorale_measures

    splits = {}
    for split in ("train", cfg_data.valid_split):
        m = chorale_measures(split, key_normalise=True, include_3_4=False)
        splits[split] = m
        if len(m.voices) == 0:
            raise ValueError(f"common.music returned no measures for split '{split}'")
    train_voices = fold_into_rows(splits["train"].voices, cfg_data.pitch_low, cfg_data.n_pitches)
    if vocabulary is None:
        vocabulary = ChordVocabulary.fit(measure_chord(train_voices), cfg_data.min_chord_count)
    sets = [
        build_measure_set(
            splits[s].voices,
            splits[s].piece,
            splits[s].bar,
            vocabulary,
            cfg_data.pitch_low,
            cfg_data.n_pitches,
        )
        for s in ("train", cfg_data.valid_split)
    ]
    return sets[0], sets[1], vocabulary
