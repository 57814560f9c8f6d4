"""Folk melodies: parsing a few tunes per collection, skipping bad ones, the cache, the split."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from common.music import REST, load_folk_melodies
from common.music.folk import _tunes, load_folk_dataset


def test_first_essen_tunes(tmp_path):
    data = load_folk_dataset("essen", limit=4, directory=tmp_path)
    assert len(data) == 4 and data.titles[0] == "Das Hildebrandslied"
    first = data.melody(0)
    assert first.dtype == np.int16 and first.ndim == 1
    # "L:1/4 ... G2 | _B2B2c2c2": G4 and Bb4 as half notes (8 sixteenths each)
    assert first[:16].tolist() == [67] * 8 + [70] * 8
    started = time.perf_counter()
    again = load_folk_melodies("essen", limit=4, directory=tmp_path)
    assert time.perf_counter() - started < 1.0, "second load must come from the cache"
    np.testing.assert_array_equal(again[0], first)
    assert [s for s in data.split] == ["valid", "train", "train", "train"]
    assert len(load_folk_melodies("essen", "valid", limit=4, directory=tmp_path)) == 1


def test_a_tune_without_notes_is_skipped_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match=r"americanfifeopus.abc#8: empty score: no notes"):
        melodies = load_folk_melodies("misc", limit=8, directory=tmp_path)
    assert len(melodies) == 8 and all((m != REST).any() for m in melodies)


def test_abc_files_split_into_tunes_with_the_header(tmp_path):
    abc = tmp_path / "two.abc"
    abc.write_text("%abc-2.1\nL:1/8\n\nX:1\nT:One\nK:C\nCDE|\n\nX: 2\nT:Two\nK:G\nGAB|\n")
    tunes = _tunes(Path(abc))
    assert [n for n, _ in tunes] == ["1", "2"]
    assert all(text.startswith("%abc-2.1\nL:1/8") for _, text in tunes)
    assert "T:Two" in tunes[1][1] and "T:One" not in tunes[1][1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="collection must be one of"):
        load_folk_melodies("nottingham")
    with pytest.raises(ValueError, match="split must be one of"):
        load_folk_melodies("essen", "dev", limit=1)
