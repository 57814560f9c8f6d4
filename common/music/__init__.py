"""Music data for the papers: Bach chorales from music21, pianorolls, chords, MIDI and audio.

The API (see README.md here): ``load_chorales(split)`` -> list of int16 ``[4, T]`` voice arrays at
sixteenth-note frames (REST = -1), ``voices_to_pianoroll`` -> ``[4, T, 46]`` over MIDI 36..81,
``write_midi`` / ``read_midi`` / ``render_wav``, chord labels and folk melodies. music21 is imported
only when a score has to be parsed, so loading the cached chorales is fast.
"""

from common.music.chorales import (
    chorale_ids,
    load_chorale,
    load_chorale_dataset,
    load_chorale_files,
    load_chorale_onsets,
    load_chorales,
    pianoroll_to_voices,
    random_crop,
    random_crops,
    random_transpose,
    subsample,
    transpose,
    valid_shifts,
    voices_to_pianoroll,
)
from common.music.chords import (
    NO_CHORD,
    OTHER,
    chorale_chords,
    chorale_measures,
    chord_name,
    melody_chord_pairs,
    transpose_labels,
)
from common.music.constants import (
    FRAMES_PER_QUARTER,
    N_PITCHES,
    N_VOICES,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    VOICE_NAMES,
    MusicFileError,
)
from common.music.folk import load_folk_melodies
from common.music.midi import read_midi, render_wav, write_midi

__all__ = [
    "NO_CHORD",
    "OTHER",
    "chord_name",
    "chorale_chords",
    "chorale_measures",
    "load_folk_melodies",
    "melody_chord_pairs",
    "transpose_labels",
    "FRAMES_PER_QUARTER",
    "N_PITCHES",
    "N_VOICES",
    "PITCH_HIGH",
    "PITCH_LOW",
    "REST",
    "VOICE_NAMES",
    "MusicFileError",
    "chorale_ids",
    "load_chorale",
    "load_chorale_files",
    "load_chorale_onsets",
    "load_chorale_dataset",
    "load_chorales",
    "pianoroll_to_voices",
    "read_midi",
    "render_wav",
    "random_crop",
    "random_crops",
    "random_transpose",
    "subsample",
    "transpose",
    "valid_shifts",
    "voices_to_pianoroll",
    "write_midi",
]
