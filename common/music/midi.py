"""MIDI out and in, and offline WAV rendering, for voice arrays and pianorolls.

What ``write_midi`` / ``render_wav`` accept (numpy arrays or torch tensors):

* voices ``[V, T]`` (integer MIDI pitches, REST = -1) or a single voice ``[T]``: each run of one
  pitch becomes one note (a held and a re-struck note look the same in a voice array, so repeated
  notes are merged, as magenta's Coconet writer does);
* a pianoroll ``[V, T, P]`` or a single part ``[T, P]`` (bool or float, a cell sounds when > 0.5;
  P = 46 for MIDI 36..81 or 128 for the whole MIDI range): each run of one active pitch is a note,
  so a part may be polyphonic.

Integer 2-D input is read as voices, bool/float 2-D input as a one-part pianoroll.

Timing: one frame is a sixteenth note; the file has ``bpm`` quarter notes per minute and 480 ticks
per quarter (120 per frame), so frame boundaries are exact ticks and ``read_midi`` recovers frames
from ticks, independently of the tempo. A text event "end" marks the last frame, so trailing rests
survive the round trip.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from common.music.constants import (
    FRAMES_PER_QUARTER,
    N_PITCHES,
    PITCH_LOW,
    REST,
    VOICE_NAMES,
    MusicFileError,
)

TICKS_PER_QUARTER = 480
CHOIR_AAHS = 52  # General MIDI program (0-based) used for every voice by default
END_MARKER = "end"

__all__ = ["MusicFileError", "read_midi", "render_wav", "to_pretty_midi", "write_midi"]


# ---------------------------------------------------------------------------------------------
# Arrays -> notes
# ---------------------------------------------------------------------------------------------


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)] of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], active, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def to_notes(music, onsets=None) -> tuple[list[list[tuple[int, int, int]]], int]:
    """Voices or pianoroll -> per part a list of (start frame, end frame, MIDI pitch); and T.

    ``onsets`` (bool, the shape of voices; voices only): also start a new note where True, so a
    repeated pitch is re-struck instead of merged.
    """
    if hasattr(music, "detach"):
        music = music.detach().cpu().numpy()
    music = np.asarray(music)
    integer = np.issubdtype(music.dtype, np.integer)
    if music.ndim == 1 or (music.ndim == 2 and integer):  # voices [V, T] (or one voice [T])
        voices = np.atleast_2d(music)
        if not integer:
            raise ValueError(f"voice arrays must be integer MIDI pitches, got dtype {music.dtype}")
        bad = (voices != REST) & ((voices < 0) | (voices > 127))
        if bad.any():
            raise ValueError(
                f"MIDI pitches must be 0..127 or REST={REST}, got {voices[bad].flat[0]}"
            )
        if onsets is None:
            strikes = np.zeros(voices.shape, dtype=bool)
        else:
            strikes = np.atleast_2d(np.asarray(onsets, dtype=bool))
            if strikes.shape != voices.shape:
                raise ValueError(
                    f"onsets shape {strikes.shape} must equal voices shape {voices.shape}"
                )
        parts = []
        for voice, strike in zip(voices, strikes):
            change = np.flatnonzero((np.diff(voice) != 0) | strike[1:]) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(voice)]])
            parts.append([(s, e, int(voice[s])) for s, e in zip(starts, ends) if voice[s] != REST])
        return parts, voices.shape[1]
    if music.ndim in (2, 3):  # pianoroll [V, T, P] (or one part [T, P])
        roll = music if music.ndim == 3 else music[None]
        if roll.shape[-1] not in (N_PITCHES, 128):
            raise ValueError(
                f"pianoroll last axis must be {N_PITCHES} (MIDI 36..81) or 128 pitches, "
                f"got shape {music.shape}"
            )
        offset = PITCH_LOW if roll.shape[-1] == N_PITCHES else 0
        active = roll > 0.5
        parts = []
        for part in active:
            notes = [
                (s, e, p + offset)
                for p in np.flatnonzero(part.any(0))
                for s, e in _runs(part[:, p])
            ]
            parts.append(sorted(notes))
        if onsets is not None:
            raise ValueError("onsets apply to voice arrays, not to pianorolls")
        return parts, roll.shape[1]
    raise ValueError(
        f"expected voices [V, T] / [T] or a pianoroll [V, T, P] / [T, P], got shape {music.shape}"
    )


def to_pretty_midi(
    music, *, bpm: float = 120.0, program: int = CHOIR_AAHS, velocity: int = 80, onsets=None
):
    """A ``pretty_midi.PrettyMIDI`` with one instrument per voice (named Soprano..Bass for 4)."""
    import pretty_midi

    if not (bpm > 0 and math.isfinite(bpm)):
        raise ValueError(f"bpm must be a positive number, got {bpm}")
    parts, n_frames = to_notes(music, onsets)
    pm = pretty_midi.PrettyMIDI(resolution=TICKS_PER_QUARTER, initial_tempo=float(bpm))
    seconds_per_frame = 60.0 / bpm / FRAMES_PER_QUARTER
    for i, notes in enumerate(parts):
        name = VOICE_NAMES[i] if len(parts) == len(VOICE_NAMES) else f"Voice {i + 1}"
        instrument = pretty_midi.Instrument(program=program, name=name)
        instrument.notes = [
            pretty_midi.Note(velocity, pitch, s * seconds_per_frame, e * seconds_per_frame)
            for s, e, pitch in notes
        ]
        pm.instruments.append(instrument)
    pm.text_events.append(pretty_midi.Text(END_MARKER, n_frames * seconds_per_frame))
    return pm


def write_midi(
    music,
    path: str | os.PathLike,
    *,
    bpm: float = 120.0,
    program: int = CHOIR_AAHS,
    velocity: int = 80,
    onsets=None,
) -> Path:
    """Write voices or a pianoroll (see the module doc) to a .mid file; returns the path.

    ``onsets``: optional bool array shaped like the voices; a True frame re-strikes the note.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pretty_midi(music, bpm=bpm, program=program, velocity=velocity, onsets=onsets).write(
        str(path)
    )
    return path


# ---------------------------------------------------------------------------------------------
# MIDI -> voices
# ---------------------------------------------------------------------------------------------


def read_midi(path: str | os.PathLike, *, n_voices: int | None = None, with_onsets: bool = False):
    """Read a .mid file into int16 voices ``[V, T]`` at sixteenth-note frames (REST = -1).

    One voice per non-drum instrument that has notes, in file order. Frame t holds the note sounding
    at quarter t/4 (onset <= t/4 < offset), so off-grid notes are sampled at the grid; where notes
    of one instrument overlap, the later onset wins (the higher pitch on a tie).
    Raises MusicFileError naming the file: missing, empty, not MIDI / corrupt, no notes, or (when
    ``n_voices`` is given) a different number of voices. ``with_onsets``: return (voices, onsets),
    onsets a bool ``[V, T]`` marking the first frame of every note.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise MusicFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise MusicFileError(path, "empty file")
    with open(path, "rb") as f:
        if f.read(4) != b"MThd":
            raise MusicFileError(path, "not a MIDI file (no MThd header)")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido raises OSError, EOFError, KeyError, ValueError... on bad data
        detail = f"{type(err).__name__}: {err}" if str(err) else f"{type(err).__name__}, truncated?"
        raise MusicFileError(path, f"corrupt MIDI file ({detail})") from None

    def frame(seconds: float) -> int:
        quarters = pm.time_to_tick(seconds) / pm.resolution
        return math.ceil(round(quarters * FRAMES_PER_QUARTER, 6))

    parts = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not parts:
        raise MusicFileError(path, "no notes")
    if n_voices is not None and len(parts) != n_voices:
        raise MusicFileError(
            path, f"has {len(parts)} voices (instruments with notes), expected {n_voices}"
        )
    n_frames = max(frame(n.end) for i in parts for n in i.notes)
    for text in pm.text_events:
        if text.text == END_MARKER:
            n_frames = max(n_frames, frame(text.time))
    voices = np.full((len(parts), n_frames), REST, dtype=np.int16)
    onsets = np.zeros((len(parts), n_frames), dtype=bool)
    for v, instrument in enumerate(parts):
        for note in sorted(instrument.notes, key=lambda n: (n.start, n.pitch)):
            start, end = frame(note.start), frame(note.end)
            voices[v, start:end] = note.pitch
            onsets[v, start:end] = False
            if end > start:
                onsets[v, start] = True
    return (voices, onsets) if with_onsets else voices


# ---------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


def find_soundfont() -> str | None:
    """``$REPRO_SOUNDFONT`` or the first General MIDI soundfont installed by the usual packages."""
    candidates = [os.environ.get("REPRO_SOUNDFONT", ""), *SOUNDFONT_CANDIDATES]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def render_wav(
    music,
    path: str | os.PathLike,
    *,
    bpm: float = 120.0,
    sample_rate: int = 22050,
    synth: str = "auto",
    program: int = CHOIR_AAHS,
) -> Path:
    """Render voices or a pianoroll to a 16-bit WAV file; returns the path.

    ``synth``: "simple" = a dependency-free additive synthesiser (mono); "fluidsynth" = the
    fluidsynth binary with a General MIDI soundfont (``find_soundfont``; stereo); "auto" = fluidsynth
    when both are installed, else simple.
    """
    if synth not in ("auto", "simple", "fluidsynth"):
        raise ValueError(f"synth must be auto, simple or fluidsynth, got {synth!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfont, binary = find_soundfont(), shutil.which("fluidsynth")
    if synth == "fluidsynth" and not (soundfont and binary):
        raise RuntimeError(
            "synth='fluidsynth' needs the fluidsynth binary and a GM soundfont "
            "(apt install fluidsynth fluid-soundfont-gm, or set REPRO_SOUNDFONT)"
        )
    if synth != "simple" and soundfont and binary:
        with tempfile.TemporaryDirectory() as tmp:
            midi = write_midi(music, Path(tmp) / "render.mid", bpm=bpm, program=program)
            command = [binary, "-ni", "-g", "0.6", "-F", str(path), "-r", str(sample_rate)]
            subprocess.run([*command, soundfont, str(midi)], check=True, capture_output=True)
        return path
    _write_wav(path, _simple_synth(music, bpm, sample_rate), sample_rate)
    return path


def _simple_synth(music, bpm: float, sample_rate: int) -> np.ndarray:
    """Sum of notes, each three harmonics under a short attack / decay / release envelope."""
    parts, n_frames = to_notes(music)
    seconds_per_frame = 60.0 / bpm / FRAMES_PER_QUARTER
    release = 0.05
    audio = np.zeros(int((n_frames * seconds_per_frame + release) * sample_rate) + 1)
    for notes in parts:
        for s, e, pitch in notes:
            start = int(s * seconds_per_frame * sample_rate)
            held = (e - s) * seconds_per_frame
            t = np.arange(int((held + release) * sample_rate)) / sample_rate
            freq = 440.0 * 2.0 ** ((pitch - 69) / 12)
            tone = sum(
                a * np.sin(2 * np.pi * k * freq * t) for k, a in ((1, 1.0), (2, 0.4), (3, 0.2))
            )
            attack = np.clip(t / 0.01, 0, 1)
            sustain = 0.6 + 0.4 * np.exp(-t / 0.15)
            fade = np.clip((held + release - t) / release, 0, 1)
            audio[start : start + len(t)] += tone * attack * sustain * fade
    peak = np.abs(audio).max()
    return audio / peak * 0.8 if peak > 0 else audio


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
