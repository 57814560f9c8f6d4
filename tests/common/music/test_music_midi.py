"""MIDI write/read round trips, WAV rendering, and one-line errors for bad files.

The fixtures in data/ were written once with write_midi / by hand: four_voices.mid (a C major chord
held for 8 frames), three_voices.mid, out_of_range.mid (bass at MIDI 30), no_notes.mid (an empty
instrument), truncated.mid (its first 30 bytes), empty.mid, not_midi.mid (text),
truncated.musicxml.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from common.music import (
    REST,
    MusicFileError,
    load_chorale,
    load_chorale_files,
    load_chorale_onsets,
    load_chorales,
    read_midi,
    render_wav,
    voices_to_pianoroll,
    write_midi,
)
from common.music.midi import find_soundfont, to_notes, to_pretty_midi

DATA = Path(__file__).parent / "data"
SUBSET = 6


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    directory = tmp_path_factory.mktemp("music_cache")
    return load_chorales("all", limit=SUBSET, directory=directory)


@pytest.mark.parametrize("bpm", [120, 97.5])
def test_voice_round_trip_is_exact_on_chorales(pieces, tmp_path, bpm):
    for i, voices in enumerate(pieces):
        path = write_midi(voices, tmp_path / f"{i}.mid", bpm=bpm)
        back = read_midi(path, n_voices=4)
        np.testing.assert_array_equal(back, voices, err_msg=f"piece {i} at {bpm} bpm")


def test_onsets_round_trip_through_midi(tmp_path):
    directory = tmp_path / "cache"
    pieces = load_chorales("all", limit=3, directory=directory)
    onsets = load_chorale_onsets("all", limit=3, directory=directory)
    for i, (voices, struck) in enumerate(zip(pieces, onsets)):
        back, back_onsets = read_midi(
            write_midi(voices, tmp_path / f"{i}.mid", onsets=struck), with_onsets=True
        )
        np.testing.assert_array_equal(back, voices)
        np.testing.assert_array_equal(back_onsets, struck)
        merged = read_midi(write_midi(voices, tmp_path / "m.mid"), with_onsets=True)[1]
        assert merged.sum() < struck.sum(), "without onsets repeated notes merge"
    with pytest.raises(ValueError, match="onsets shape"):
        write_midi(pieces[0], tmp_path / "x.mid", onsets=onsets[0][:, :5])


def test_pianoroll_round_trip_and_trailing_rests_survive(pieces, tmp_path):
    voices = pieces[0].copy()
    voices[:, -5:] = REST  # a final rest in every voice must not shorten the piece
    back = read_midi(write_midi(voices_to_pianoroll(voices), tmp_path / "roll.mid"))
    np.testing.assert_array_equal(back, voices)


def test_repeated_pitches_merge_into_one_note_and_rests_split_notes():
    parts, n_frames = to_notes(np.array([[60, 60, 60, REST, 60, 62, 62]], dtype=np.int16))
    assert n_frames == 7 and parts == [[(0, 3, 60), (4, 5, 60), (5, 7, 62)]]
    pm = to_pretty_midi(np.array([[60, 60, 62, 62]]), bpm=120)
    notes = pm.instruments[0].notes
    assert [(n.start, n.end, n.pitch) for n in notes] == [(0.0, 0.25, 60), (0.25, 0.5, 62)]


def test_polyphonic_single_part_roll_writes_every_pitch(tmp_path):
    roll = np.zeros((8, 128), dtype=bool)
    roll[0:4, 60] = roll[0:8, 64] = roll[4:8, 67] = True
    parts, _ = to_notes(roll)
    assert parts == [[(0, 4, 60), (0, 8, 64), (4, 8, 67)]]
    # reading it back as a voice keeps the latest onset where notes overlap
    back = read_midi(write_midi(roll, tmp_path / "poly.mid"))
    assert back.tolist() == [[64, 64, 64, 64, 67, 67, 67, 67]]


def test_torch_input_and_bad_shapes():
    import torch

    parts, n = to_notes(torch.tensor([[60, 62]]))
    assert n == 2 and parts == [[(0, 1, 60), (1, 2, 62)]]
    with pytest.raises(ValueError, match="last axis must be 46"):
        to_notes(np.zeros((4, 8, 50), dtype=bool))
    with pytest.raises(ValueError, match="expected voices"):
        to_notes(np.zeros((1, 4, 8, 46)))
    with pytest.raises(ValueError, match="MIDI pitches must be 0..127"):
        to_notes(np.array([[200]]))
    with pytest.raises(ValueError, match="bpm must be a positive"):
        to_pretty_midi(np.array([[60]]), bpm=0)


def test_simple_wav_render_has_the_right_length_and_sound(pieces, tmp_path):
    voices = pieces[0][:, :64]  # 16 quarter notes = 8 s at 120 bpm
    path = render_wav(voices, tmp_path / "x.wav", bpm=120, sample_rate=8000, synth="simple")
    with wave.open(str(path)) as f:
        assert f.getframerate() == 8000 and f.getnchannels() == 1 and f.getsampwidth() == 2
        seconds = f.getnframes() / 8000
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    assert 8.0 <= seconds <= 8.1
    assert np.abs(audio).max() > 10000, "audible"
    silent = render_wav(
        np.full((4, 16), REST), tmp_path / "s.wav", sample_rate=8000, synth="simple"
    )
    with wave.open(str(silent)) as f:
        assert not np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").any()
    with pytest.raises(ValueError, match="synth must be"):
        render_wav(voices, tmp_path / "y.wav", synth="timidity")


def test_fluidsynth_render_or_a_clear_refusal(pieces, tmp_path):
    import shutil

    if find_soundfont() and shutil.which("fluidsynth"):
        path = render_wav(pieces[0][:, :32], tmp_path / "fs.wav", synth="fluidsynth")
        assert path.stat().st_size > 1000
    else:
        with pytest.raises(RuntimeError, match="needs the fluidsynth binary"):
            render_wav(pieces[0], tmp_path / "fs.wav", synth="fluidsynth")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("empty.mid", "empty file"),
        ("not_midi.mid", r"not a MIDI file \(no MThd header\)"),
        ("truncated.mid", "corrupt MIDI file"),
        ("no_notes.mid", "no notes"),
        ("three_voices.mid", "has 3 voices .*expected 4"),
        ("out_of_range.mid", "pitch 30 outside MIDI 36..81"),
        ("truncated.musicxml", "cannot parse file"),
        ("missing.mid", "no such file"),
    ],
)
def test_bad_files_raise_one_line_naming_file_and_problem(name, problem):
    with pytest.raises(MusicFileError, match=f"{name}: {problem}") as info:
        load_chorale(DATA / name)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_midi_without_voice_count_accepts_three_voices():
    voices = read_midi(DATA / "three_voices.mid")
    assert voices.shape == (3, 8) and voices[:, 0].tolist() == [72, 67, 64]


def test_a_batch_load_skips_bad_files_with_warnings_and_goes_on():
    paths = sorted(DATA.iterdir())
    with pytest.warns(UserWarning, match="skipping") as record:
        pieces, kept = load_chorale_files(paths)
    assert kept == [str(DATA / "four_voices.mid")]
    assert pieces[0].shape == (4, 8) and pieces[0][:, 0].tolist() == [72, 67, 64, 48]
    assert len(record) == len(paths) - 1, "one warning per bad file"


@pytest.mark.slow
def test_round_trip_is_exact_on_every_chorale(tmp_path):
    for i, voices in enumerate(load_chorales("all")):
        back = read_midi(write_midi(voices, tmp_path / "x.mid"), n_voices=4)
        np.testing.assert_array_equal(back, voices, err_msg=f"piece {i}")
