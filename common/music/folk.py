"""Chordless folk melodies shipped with music21 (Essen, O'Neill's, Ryan's, Aird's, misc.).

A melody is an int16 ``[T]`` array of MIDI pitches at sixteenth-note frames (REST = -1), quantised
by the chorale rules (``chorales.score_to_voices``: the note sounding at each grid point; a
double-stop gives its highest pitch; ABC chord symbols are ignored). Melodies are *not* limited to
MIDI 36..81: fiddle tunes go higher; use ``chorales.valid_shifts`` / ``transpose`` as needed.

music21 parses ABC at about 75 ms per tune, so a whole collection takes minutes (Essen: 8.5k
tunes); ``limit=N`` parses only the first N tunes. Each (collection, limit) is cached under
``cache_dir()`` like the chorales. Split (deterministic, by position in the collection):
tune index % 10 == 0 valid, == 5 test, the rest train.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.music.chorales import (
    SPLITS,
    atomic_savez,
    cache_dir,
    score_to_voices,
    split_of_number,
)
from common.music.constants import MusicFileError

FOLK_VERSION = 2  # 2: note onsets stored
COLLECTIONS = {
    "essen": "essenFolksong",  # Essen folksong collection (German, Chinese, ...), ABC
    "oneills": "oneills1850",  # O'Neill's Music of Ireland (1850)
    "ryans": "ryansMammoth",  # Ryan's Mammoth Collection (1883)
    "airds": "airdsAirs",  # Aird's Selection of Scotch, English, Irish and Foreign Airs
    "misc": "miscFolk",  # American fife tunes, Northumbrian minstrelsy
}


@dataclass
class FolkMelodies:
    melodies: np.ndarray  # int16 [total_frames], concatenated
    onsets: np.ndarray  # bool [total_frames]: a note starts here (repeated notes are re-struck)
    offsets: np.ndarray  # int64 [n + 1]
    titles: np.ndarray  # str [n]
    sources: np.ndarray  # str [n]: "<corpus file>#<tune number X:>"
    key_tonic: np.ndarray  # int8 [n]: analysed key
    key_mode: np.ndarray  # str [n]
    time_signature: np.ndarray  # str [n]: the first one; "" when the tune has none ("M: none")
    split: np.ndarray  # str [n]
    meta: dict

    def __len__(self) -> int:
        return len(self.titles)

    def melody(self, i: int) -> np.ndarray:
        return self.melodies[self.offsets[i] : self.offsets[i + 1]].copy()

    def melody_onsets(self, i: int) -> np.ndarray:
        return self.onsets[self.offsets[i] : self.offsets[i + 1]].copy()


_FIELDS = [f for f in FolkMelodies.__dataclass_fields__ if f != "meta"]


def _tunes(path: Path) -> list[tuple[str, str]]:
    """Split an ABC file into (tune number, tune text); the file header is prepended to each."""
    text = path.read_text(encoding="utf-8", errors="replace")
    chunks = re.split(r"(?m)^(?=X:)", text)
    header, tunes = (chunks[0], chunks[1:]) if not chunks[0].startswith("X:") else ("", chunks)
    out = []
    for tune in tunes:
        number = tune.split("\n", 1)[0][2:].strip()
        out.append((number, header + tune))
    return out


def _corpus_files(collection: str) -> list[Path]:
    from music21 import corpus

    if collection not in COLLECTIONS:
        raise ValueError(f"collection must be one of {sorted(COLLECTIONS)}, got {collection!r}")
    folder = f"/{COLLECTIONS[collection]}/"
    return sorted(Path(p) for p in corpus.getPaths() if folder in str(p))


def _build(collection: str, limit: int | None, path: Path) -> FolkMelodies:
    from music21 import converter

    rows, skipped = [], 0
    for file in _corpus_files(collection):
        for number, text in _tunes(file):
            if limit is not None and len(rows) >= limit:
                break
            source = f"{file.parent.name}/{file.name}#{number}"
            try:
                try:
                    score = converter.parse(text, format="abc")
                except Exception as err:  # music21's ABC parser raises many types
                    raise MusicFileError(source, f"cannot parse ABC ({err})") from None
                part = score.parts[0] if len(score.parts) else score
                parsed = score_to_voices(part, source, n_voices=None, check_range=False)
            except MusicFileError as err:
                warnings.warn(f"skipping folk tune {err}", stacklevel=2)
                skipped += 1
                continue
            title = score.metadata.title if score.metadata and score.metadata.title else ""
            rows.append((parsed, title, source))
    if not rows:
        raise MusicFileError(collection, "no folk melody could be read")
    data = FolkMelodies(
        melodies=np.concatenate([p.voices[0] for p, _, _ in rows]),
        onsets=np.concatenate([p.onsets[0] for p, _, _ in rows]),
        offsets=np.cumsum([0] + [p.voices.shape[1] for p, _, _ in rows]).astype(np.int64),
        titles=np.array([t for _, t, _ in rows]),
        sources=np.array([s for _, _, s in rows]),
        key_tonic=np.array([p.key_tonic for p, _, _ in rows], dtype=np.int8),
        key_mode=np.array([p.key_mode for p, _, _ in rows]),
        time_signature=np.array([(p.time_signatures or ("",))[0] for p, _, _ in rows]),
        split=np.array([split_of_number(i) for i in range(len(rows))]),
        meta={"version": FOLK_VERSION, "collection": collection, "limit": limit},
    )
    data.meta.update(kept=len(rows), skipped=skipped)
    atomic_savez(path, {f: getattr(data, f) for f in _FIELDS}, data.meta)
    return data


def load_folk_dataset(
    collection: str = "essen",
    *,
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> FolkMelodies:
    """All parsed melodies of one collection (built and cached on first use)."""
    if collection not in COLLECTIONS:
        raise ValueError(f"collection must be one of {sorted(COLLECTIONS)}, got {collection!r}")
    suffix = f"_first{limit}" if limit is not None else ""
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / f"folk_v{FOLK_VERSION}_{collection}{suffix}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = FolkMelodies(**{f: npz[f] for f in _FIELDS}, meta=json.loads(str(npz["meta"])))
        expected = {"version": FOLK_VERSION, "collection": collection, "limit": limit}
        if all(data.meta.get(k) == v for k, v in expected.items()) and data.offsets[-1] == len(
            data.melodies
        ):
            return data
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        pass  # missing or damaged: rebuild
    return _build(collection, limit, path)


def load_folk_melodies(
    collection: str = "essen",
    split: str = "all",
    *,
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Melodies of one collection as int16 ``[T]`` arrays (see the module doc)."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of train, valid, test, all; got {split!r}")
    data = load_folk_dataset(collection, limit=limit, directory=directory)
    return [data.melody(i) for i in range(len(data)) if split in ("all", data.split[i])]
