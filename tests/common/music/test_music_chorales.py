"""Chorale dataset: shapes, pitch range, split rule, cache behaviour, rolls and augmentation.

Fast tests build a small cache of the first SUBSET distinct Riemenschneider files into a temporary
folder (about a second); the full-corpus counts are in the slow tests at the bottom.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from common.music import (
    N_PITCHES,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    MusicFileError,
    chorale_ids,
    load_chorale,
    load_chorale_dataset,
    load_chorale_onsets,
    load_chorales,
    pianoroll_to_voices,
    random_crop,
    random_transpose,
    subsample,
    transpose,
    valid_shifts,
    voices_to_pianoroll,
)
from common.music.chorales import _cache_path, build_chorales, corpus_entries, split_of_number

SUBSET = 12  # Riemenschneider 1..12 (files 1..12): bwv41.6 (9 parts) is skipped


@pytest.fixture(scope="module")
def subset_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("music_cache")
    with pytest.warns(UserWarning, match="bwv41.6: has 9 parts"):
        load_chorale_dataset(limit=SUBSET, directory=directory)
    return directory


def test_subset_pieces_are_int16_four_voice_arrays_in_range(subset_dir):
    pieces = load_chorales("all", limit=SUBSET, directory=subset_dir)
    assert len(pieces) == SUBSET - 1, "12 files, one of them (bwv41.6) not four-part"
    for voices in pieces:
        assert voices.dtype == np.int16 and voices.ndim == 2 and voices.shape[0] == 4
        notes = voices[voices != REST]
        assert notes.min() >= PITCH_LOW and notes.max() <= PITCH_HIGH
        assert (voices == REST).mean() < 0.1, "chorales rest about 1% of the time"
        # SATB order: each voice sits higher on average than the one below it
        means = [v[v != REST].mean() for v in voices]
        assert means == sorted(means, reverse=True)


def test_bwv66_6_starts_with_the_hand_checked_pickup():
    voices = load_chorale("bach/bwv66.6")
    assert voices.shape == (4, 36 * 4), "36 quarter notes long"
    # soprano C#5 B4 (eighths) then A4 (quarter); bass A3 G#3 F#3: read off the score
    assert voices[0, :8].tolist() == [73, 73, 71, 71, 69, 69, 69, 69]
    assert voices[3, :8].tolist() == [57, 57, 56, 56, 54, 54, 54, 54]
    assert voices[1, :4].tolist() == [64] * 4


def test_onsets_mark_struck_notes_not_held_or_tied_ones(subset_dir):
    from music21 import corpus, note, stream, tie

    from common.music.chorales import score_to_voices

    data = load_chorale_dataset(limit=SUBSET, directory=subset_dir)
    for i in range(len(data)):
        voices, onsets = data.piece(i), data.piece_onsets(i)
        changed = np.concatenate([voices[:, :1] != REST, voices[:, 1:] != voices[:, :-1]], axis=1)
        assert np.all(onsets[changed & (voices != REST)]), "every new pitch is a struck note"
        assert not onsets[voices == REST].any(), "rests strike nothing"
    # BWV 66.6: the alto strikes E4 again on beats 3 and 4 (frames 8 and 12) without a change
    bwv66 = score_to_voices(corpus.parse("bach/bwv66.6"), "bwv66.6")
    assert bwv66.voices[1, 8:16].tolist() == [64] * 8
    assert bwv66.onsets[1, 8:16].tolist() == [True, False, False, False] * 2
    # a tied pair is one struck note
    tied = [note.Note("C4", quarterLength=2), note.Note("C4", quarterLength=2)]
    tied[0].tie, tied[1].tie = tie.Tie("start"), tie.Tie("stop")
    single = score_to_voices(stream.Score([stream.Part(tied)]), "tied", n_voices=1)
    assert single.onsets[0].tolist() == [True] + [False] * 15
    assert load_chorale_onsets("all", limit=SUBSET, directory=subset_dir)[0].dtype == bool


def test_split_follows_riemenschneider_rule_and_keeps_works_together():
    entries = corpus_entries()
    assert len(entries) == 350, "371 Riemenschneider numbers name 350 distinct files"
    assert [split_of_number(n) for n in (10, 15, 17, 370)] == ["valid", "test", "train", "valid"]
    split_of_work: dict[str, set[str]] = {}
    for e in entries:
        split_of_work.setdefault(e.bwv.split(".")[0], set()).add(e.split)
    assert all(len(s) == 1 for s in split_of_work.values()), "a BWV work spans two splits"
    by_id = {e.corpus_id: e for e in entries}
    assert by_id["bach/bwv267"].riemenschneider == (5, 309) and by_id["bach/bwv267"].split == "test"
    assert len(by_id) == len(entries), "duplicate files must be listed once"


def test_subset_split_ids_are_disjoint_and_parallel_to_pieces(subset_dir):
    ids = {
        s: chorale_ids(s, limit=SUBSET, directory=subset_dir) for s in ("train", "valid", "test")
    }
    assert ids["valid"] == ["bach/bwv38.6"] and ids["test"] == ["bach/bwv267"]
    assert not set(ids["train"]) & set(ids["valid"]) | set(ids["train"]) & set(ids["test"])
    assert len(load_chorales("train", limit=SUBSET, directory=subset_dir)) == len(ids["train"])
    everything = chorale_ids("all", limit=SUBSET, directory=subset_dir)
    assert sorted(everything) == sorted(ids["train"] + ids["valid"] + ids["test"])
    with pytest.raises(ValueError, match="split must be one of"):
        load_chorales("validation", limit=SUBSET, directory=subset_dir)


def test_build_is_deterministic(subset_dir, tmp_path):
    again = build_chorales(limit=4, directory=tmp_path)
    first = load_chorale_dataset(limit=SUBSET, directory=subset_dir)
    # the first 4 files are the first 4 pieces of the 12-file build (none of them skipped)
    np.testing.assert_array_equal(again.voices, first.voices[:, : again.offsets[-1]])
    np.testing.assert_array_equal(again.ids, first.ids[:4])


def test_cached_load_is_fast_and_returns_fresh_copies(subset_dir):
    from common.music import chorales

    chorales._MEMORY.clear()  # force a read of the npz, not the in-process copy
    started = time.perf_counter()
    pieces = load_chorales("all", limit=SUBSET, directory=subset_dir)
    assert time.perf_counter() - started < 2.0
    pieces[0][:] = 0
    assert load_chorales("all", limit=SUBSET, directory=subset_dir)[0].max() > 0


def test_corrupt_and_stale_caches_are_rebuilt(subset_dir, tmp_path):
    import warnings

    import music21

    from common.music import chorales

    limit = 3
    path = _cache_path(limit, tmp_path)
    good = load_chorale_dataset(limit=limit, directory=tmp_path)
    for damage in ("truncate", "garbage", "stale"):
        chorales._MEMORY.clear()
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:200])
        elif damage == "garbage":
            path.write_bytes(b"not a zip file at all")
        else:
            stale_meta = {"version": -1, "music21": music21.__version__, "limit": limit}
            np.savez(path, meta=np.array(json.dumps(stale_meta)))
        assert chorales._read_cache(path, limit) is None, f"{damage} cache was trusted"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rebuilt = load_chorale_dataset(limit=limit, directory=tmp_path)
        np.testing.assert_array_equal(rebuilt.voices, good.voices)
        assert chorales._read_cache(path, limit) is not None, "rebuild did not rewrite the file"


def test_pianoroll_round_trip_numpy_and_torch(subset_dir):
    import torch

    voices = load_chorales("all", limit=SUBSET, directory=subset_dir)[0]
    roll = voices_to_pianoroll(voices)
    assert roll.shape == (4, voices.shape[1], N_PITCHES) and roll.dtype == np.float32
    assert np.all(roll.sum(-1) == (voices != REST)), "one-hot per sounding cell, zero for rests"
    np.testing.assert_array_equal(pianoroll_to_voices(roll), voices)
    batch = torch.as_tensor(np.stack([voices[:, :32], voices[:, 32:64]]).astype(np.int64))
    troll = voices_to_pianoroll(batch)
    assert troll.shape == (2, 4, 32, N_PITCHES) and troll.dtype == torch.float32
    assert torch.equal(pianoroll_to_voices(troll), batch)
    with pytest.raises(ValueError, match="outside MIDI 36..81"):
        voices_to_pianoroll(np.array([[35, 60]]))
    with pytest.raises(ValueError, match="last axis must be 46"):
        pianoroll_to_voices(np.zeros((4, 8, 128)))


def test_transposition_stays_in_range_and_refuses_to_leave_it():
    voices = np.array([[60, REST, 81], [36, 50, REST]], dtype=np.int16)
    assert valid_shifts(voices, 6) == [0]
    with pytest.raises(ValueError, match=r"transposing by \+1"):
        transpose(voices, 1)
    up = transpose(np.array([[60, REST, 70]], dtype=np.int16), 5)
    assert up.tolist() == [[65, REST, 75]] and up.dtype == np.int16
    rng = np.random.default_rng(0)
    melody = np.array([[70, 72, REST, 77]], dtype=np.int16)  # room: -34 .. +4
    shifts = {int(random_transpose(melody, rng, max_shift=6)[0, 0]) - 70 for _ in range(300)}
    assert shifts == set(range(-6, 5)), "every in-range shift, and only those, is drawn"


def test_random_crop_and_subsample():
    voices = np.arange(4 * 100, dtype=np.int16).reshape(4, 100) % 40 + 40
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(200):
        crop = random_crop(voices, 32, rng)
        assert crop.shape == (4, 32)
        starts.add(int(np.flatnonzero(voices[0] == crop[0, 0])[0]))
    assert len(starts) > 30, "crop starts should spread over the piece"
    short = random_crop(voices[:, :10], 16, rng)
    assert short.shape == (4, 16) and np.all(short[:, 10:] == REST)
    assert subsample(voices, 1).shape == (4, 25) and subsample(voices, 2)[0, 1] == voices[0, 2]
    with pytest.raises(ValueError, match="frames_per_quarter"):
        subsample(voices, 3)


def test_load_chorale_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(MusicFileError, match="empty.xml: empty file"):
        load_chorale(empty)
    with pytest.raises(MusicFileError, match="not a file and not a music21 corpus id"):
        load_chorale("bach/bwv_does_not_exist")
    with pytest.raises(MusicFileError, match="bwv41.6: has 9 parts, expected 4"):
        load_chorale("bach/bwv41.6")


def test_a_score_of_rests_is_an_empty_score():
    from music21 import note, stream

    from common.music.chorales import score_to_voices

    rests = stream.Score([stream.Part([note.Rest(quarterLength=4)]) for _ in range(4)])
    with pytest.raises(MusicFileError, match="rests.xml: empty score: no notes"):
        score_to_voices(rests, "rests.xml")


# ---------------------------------------------------------------------------------------------
# Full corpus (parses all 350 files on a cold cache: tens of seconds)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_corpus_counts_and_split_sizes():
    data = load_chorale_dataset()
    assert len(data) == 331 and len(data.skipped_ids) == 19
    assert all("expected 4" in r for r in data.skipped_reasons), "only non-four-part files skipped"
    assert data.meta["split_sizes"] == {"train": 261, "valid": 41, "test": 29}
    assert data.voices.shape == (4, 70644)
    notes = data.voices[data.voices != REST]
    assert notes.min() == PITCH_LOW and notes.max() == PITCH_HIGH, (
        "exactly Coconet's 46-pitch window"
    )
    lengths = np.diff(data.offsets)
    assert lengths.min() == 96 and lengths.max() == 772
    ids = {s: set(chorale_ids(s)) for s in ("train", "valid", "test")}
    assert not (
        ids["train"] & ids["valid"] or ids["train"] & ids["test"] or ids["valid"] & ids["test"]
    )
    assert data.meta["counts"]["off_grid_notes"] == 6 and data.meta["counts"]["grace_notes"] == 3
    assert os.path.exists(_cache_path(None, None))
