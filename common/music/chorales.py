"""Bach chorales from music21's bundled corpus as ``[4, T]`` voice arrays at sixteenth-note frames.

A chorale is an int16 array ``voices[v, t]`` (v = soprano, alto, tenor, bass) holding the MIDI pitch
that voice v sounds at time t/4 quarter notes, or ``REST`` (-1). Its pianoroll is the one-hot
``[4, T, 46]`` over MIDI 36..81 (a rest is an all-zero row), Coconet's representation.

How a score becomes a voice array (the rules, applied to every piece the same way):

* only scores with exactly 4 parts are kept; SATB order = part order in the file;
* frame t holds the note *sounding at the grid point* t/4 (onset <= t/4 < onset + duration), so
  on-grid notes fill exactly round(4 x offset) .. round(4 x end); off-grid notes (two chorales have
  32nd-note pairs) are sampled at the grid instead of being dropped; grace notes fill no frame;
* offsets start at 0 at the first note of the pickup, so bar lines sit at ``measure_start`` (stored);
* ties need nothing: a tied note is two notes filling consecutive cells;
* fermatas are not in the voices (as in Coconet) but kept as a per-frame flag, ``fermata``;
* repeats are kept as written (not expanded);
* a chord inside a part (none occurs in the chorales) contributes its highest pitch.

The first call parses the corpus (tens of seconds) and caches everything as one ``.npz`` under
``cache_dir()``, keyed by ``PREPROCESS_VERSION`` and the music21 version; later loads read the npz
(milliseconds). A cache file that cannot be read, or was written by another version, is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
import warnings
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.music.constants import (
    FRAMES_PER_QUARTER,
    N_PITCHES,
    N_VOICES,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    MusicFileError,
)

# Bump when the preprocessing changes what is stored: old cache files then count as stale.
PREPROCESS_VERSION = 2  # 2: note onsets stored
SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Pianorolls, transposition, crops (numpy or torch, any leading batch dimensions)
# ---------------------------------------------------------------------------------------------


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def voices_to_pianoroll(voices, dtype=None):
    """``[..., V, T]`` MIDI pitches (REST = -1) -> one-hot ``[..., V, T, 46]`` over MIDI 36..81.

    Works on numpy arrays and torch tensors (returns the same kind; float32 unless ``dtype`` given).
    A rest becomes an all-zero pitch row. Raises ValueError for a pitch outside 36..81.
    """
    if _is_torch(voices):
        import torch

        _check_pitch_range(voices.detach().cpu().numpy())
        pitches = torch.arange(PITCH_LOW, PITCH_HIGH + 1, device=voices.device)
        return (voices.unsqueeze(-1) == pitches).to(dtype or torch.float32)
    voices = np.asarray(voices)
    if not np.issubdtype(voices.dtype, np.integer):
        raise ValueError(
            f"voices must hold integer MIDI pitches or REST=-1, got dtype {voices.dtype}"
        )
    _check_pitch_range(voices)
    pitches = np.arange(PITCH_LOW, PITCH_HIGH + 1)
    return (voices[..., None] == pitches).astype(dtype or np.float32)


def pianoroll_to_voices(roll):
    """``[..., V, T, 46]`` pianoroll (one-hot or scores) -> ``[..., V, T]`` int16 pitches.

    Each (voice, frame) takes its highest-scoring pitch (argmax), or REST where the whole row is
    <= 0 (an all-zero one-hot row). numpy in, int16 numpy out; torch in, int64 torch out.
    """
    if roll.shape[-1] != N_PITCHES:
        raise ValueError(
            f"pianoroll last axis must be {N_PITCHES} pitches (MIDI {PITCH_LOW}..{PITCH_HIGH}), "
            f"got shape {tuple(roll.shape)}"
        )
    if _is_torch(roll):
        import torch

        best = roll.argmax(-1) + PITCH_LOW
        return torch.where(roll.amax(-1) > 0, best, torch.full_like(best, REST))
    roll = np.asarray(roll)
    best = roll.argmax(-1) + PITCH_LOW
    return np.where(roll.max(-1) > 0, best, REST).astype(np.int16)


def _check_pitch_range(voices: np.ndarray) -> None:
    bad = (voices != REST) & ((voices < PITCH_LOW) | (voices > PITCH_HIGH))
    if bad.any():
        raise ValueError(
            f"pitch {int(voices[bad].flat[0])} outside MIDI {PITCH_LOW}..{PITCH_HIGH} "
            f"({int(bad.sum())} cells; rests are {REST})"
        )


def valid_shifts(voices, max_shift: int = 6) -> list[int]:
    """Semitone shifts in ``-max_shift..max_shift`` that keep every note inside MIDI 36..81."""
    v = voices.detach().cpu().numpy() if _is_torch(voices) else np.asarray(voices)
    notes = v[v != REST]
    if notes.size == 0:
        return list(range(-max_shift, max_shift + 1))
    low = max(-max_shift, PITCH_LOW - int(notes.min()))
    high = min(max_shift, PITCH_HIGH - int(notes.max()))
    return list(range(low, high + 1))


def transpose(voices, semitones: int):
    """Shift every sounding note by ``semitones`` (rests stay rests).

    Raises ValueError if a note would leave MIDI 36..81 (the pianoroll window).
    """
    semitones = int(semitones)
    if _is_torch(voices):
        shifted = voices.clone()
        mask = voices != REST
        shifted[mask] += semitones
        _check_transposed(voices.detach().cpu().numpy(), semitones)
        return shifted
    voices = np.asarray(voices)
    _check_transposed(voices, semitones)
    return np.where(voices == REST, voices, voices + semitones).astype(voices.dtype)


def _check_transposed(voices: np.ndarray, semitones: int) -> None:
    notes = voices[voices != REST]
    if notes.size and (notes.min() + semitones < PITCH_LOW or notes.max() + semitones > PITCH_HIGH):
        raise ValueError(
            f"transposing by {semitones:+d} takes notes {int(notes.min())}..{int(notes.max())} "
            f"outside MIDI {PITCH_LOW}..{PITCH_HIGH}"
        )


def _randint(rng, low: int, high: int) -> int:
    """A uniform integer in [low, high) from a numpy Generator, a torch Generator or an int seed."""
    if rng is None or isinstance(rng, int | np.integer):
        rng = np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high))
    if _is_torch(rng):
        import torch

        return int(torch.randint(low, high, (1,), generator=rng).item())
    raise TypeError(f"rng must be a numpy Generator, torch Generator or int seed, got {type(rng)}")


def random_transpose(voices, rng, *, max_shift: int = 6):
    """Transpose by a shift drawn uniformly from the in-range shifts in ``-max_shift..max_shift``.

    Shift 0 is always allowed, so this never fails on in-range input.
    """
    shifts = valid_shifts(voices, max_shift)
    return transpose(voices, shifts[_randint(rng, 0, len(shifts))])


def random_crop(voices, length: int, rng):
    """A random window of ``length`` frames from ``[..., V, T]`` (start uniform over 0..T-length).

    A piece shorter than ``length`` comes back whole, right-padded with REST (the shortest chorale
    has 96 frames, so crops of <= 96 never pad).
    """
    if length < 1:
        raise ValueError(f"crop length must be >= 1, got {length}")
    n_frames = voices.shape[-1]
    if n_frames < length:
        pad = [(0, 0)] * (np.ndim(voices) - 1) + [(0, length - n_frames)]
        if _is_torch(voices):
            import torch

            return torch.nn.functional.pad(voices, (0, length - n_frames), value=REST)
        return np.pad(voices, pad, constant_values=REST)
    start = _randint(rng, 0, n_frames - length + 1)
    return voices[..., start : start + length]


def random_crops(pieces, batch: int, length: int, generator):
    """``batch`` crops ``[B, V, length]`` (int64 torch) from a list of ``[V, T]`` pieces, as one draw.

    The batched form of :func:`random_crop` over a corpus: a uniformly random piece per crop (pieces
    are drawn uniformly, not by length), then a uniformly random start in it, both from the torch
    ``generator`` (so a training run's checkpoint carries its state). Every piece must hold at least
    ``length`` frames.
    """
    import torch

    short = [n for n, p in enumerate(pieces) if p.shape[-1] < length]
    if short:
        raise ValueError(f"piece {short[0]} is shorter than the crop length {length}")
    which = torch.randint(len(pieces), (batch,), generator=generator).tolist()
    room = torch.tensor([pieces[n].shape[-1] - length + 1 for n in which])
    starts = (torch.rand(batch, generator=generator) * room).long().tolist()
    crops = [np.asarray(pieces[n])[..., s : s + length] for n, s in zip(which, starts)]
    return torch.from_numpy(np.stack(crops).astype(np.int64))


def subsample(voices, frames_per_quarter: int):
    """Sixteenth frames -> eighth (2) or quarter (1) frames: the pitch sounding at each grid point.

    This is how the Coconet-era eighth- and quarter-note JSB data relate to the sixteenth version.
    """
    if FRAMES_PER_QUARTER % frames_per_quarter:
        raise ValueError(f"frames_per_quarter must be 1, 2 or 4, got {frames_per_quarter}")
    return voices[..., :: FRAMES_PER_QUARTER // frames_per_quarter]


# ---------------------------------------------------------------------------------------------
# Score -> voices
# ---------------------------------------------------------------------------------------------


@dataclass
class ParsedScore:
    """One score on the sixteenth grid, plus what the datasets need besides the notes."""

    voices: np.ndarray  # int16 [V, T]
    onsets: np.ndarray  # bool [V, T]: a note starts here (not a held or tied continuation)
    fermata: np.ndarray  # bool [T]: some voice holds a note or rest marked with a fermata
    measure_start: np.ndarray  # int32 [M]: frame where each written measure starts
    measure_frames: np.ndarray  # int32 [M]: its written length (a pickup is shorter)
    bar_frames: np.ndarray  # int32 [M]: its time signature's full bar length
    key_tonic: int  # pitch class 0..11 of music21's analysed key (Krumhansl-Schmuckler)
    key_mode: str  # "major" | "minor"
    time_signatures: tuple[str, ...]  # every distinct time signature, in order of appearance
    stats: dict  # counts: off_grid_notes, grace_notes, tied_notes, chords_in_parts, repeats


def _frames(quarter_offset) -> int:
    """First grid frame at or after ``quarter_offset`` (frames t with onset <= t/4)."""
    return math.ceil(round(float(quarter_offset) * FRAMES_PER_QUARTER, 9))


def score_to_voices(
    score, source: object = "<score>", *, n_voices: int | None = N_VOICES, check_range: bool = True
) -> ParsedScore:
    """Quantise a music21 Score to sixteenth-note voice arrays (the rules are in the module doc).

    Raises MusicFileError (naming ``source``) for a wrong number of parts, an empty score or
    (``check_range``) a pitch outside MIDI 36..81.
    """
    from music21 import bar, expressions, harmony, meter, stream

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    if n_voices is not None and len(parts) != n_voices:
        raise MusicFileError(source, f"has {len(parts)} parts, expected {n_voices} (SATB)")
    n_frames = _frames(score.highestTime)
    voices = np.full((len(parts), n_frames), REST, dtype=np.int16)
    onsets = np.zeros((len(parts), n_frames), dtype=bool)
    fermata = np.zeros(n_frames, dtype=bool)
    stats = Counter()
    for v, part in enumerate(parts):
        for element in part.flatten().notesAndRests:
            start = _frames(element.offset)
            end = _frames(element.offset + element.quarterLength)
            on_grid = (
                float(element.offset) * FRAMES_PER_QUARTER == start
                and float(element.offset + element.quarterLength) * FRAMES_PER_QUARTER == end
            )
            if any(isinstance(e, expressions.Fermata) for e in element.expressions):
                fermata[start:end] = True
            if element.isRest or isinstance(element, harmony.ChordSymbol):
                continue  # chord symbols (ABC "C7" annotations) are not notes of the part
            if element.quarterLength == 0:
                stats["grace_notes"] += 1
                continue
            if not on_grid:
                stats["off_grid_notes"] += 1
            tied = element.tie is not None and element.tie.type in ("stop", "continue")
            stats["tied_notes"] += int(tied)
            if element.isChord:
                stats["chords_in_parts"] += 1
                pitch = max(p.midi for p in element.pitches)
            else:
                pitch = element.pitch.midi
            voices[v, start:end] = pitch
            onsets[v, start:end] = False
            if end > start:
                onsets[v, start] = not tied

    notes = voices[voices != REST]
    if notes.size == 0:
        raise MusicFileError(source, "empty score: no notes")
    if check_range and (notes.min() < PITCH_LOW or notes.max() > PITCH_HIGH):
        raise MusicFileError(
            source,
            f"pitches {int(notes.min())}..{int(notes.max())} outside MIDI {PITCH_LOW}..{PITCH_HIGH}",
        )

    measures = list(parts[0].getElementsByClass(stream.Measure))
    measure_start = np.array([_frames(m.offset) for m in measures], dtype=np.int32)
    measure_frames = np.array([_frames(m.duration.quarterLength) for m in measures], dtype=np.int32)
    bar_frames = np.array([_frames(m.barDuration.quarterLength) for m in measures], dtype=np.int32)
    signatures = []
    for ts in parts[0].recurse().getElementsByClass(meter.TimeSignature):
        if ts.ratioString not in signatures:
            signatures.append(ts.ratioString)
    stats["repeats"] = int(
        any(isinstance(b, bar.Repeat) for b in parts[0].recurse().getElementsByClass(bar.Barline))
    )
    key = score.analyze("key")
    return ParsedScore(
        voices=voices,
        onsets=onsets,
        fermata=fermata,
        measure_start=measure_start,
        measure_frames=measure_frames,
        bar_frames=bar_frames,
        key_tonic=int(key.tonic.pitchClass),
        key_mode=str(key.mode),
        time_signatures=tuple(signatures),
        stats=dict(stats),
    )


def load_chorale(id_or_path: str | os.PathLike) -> np.ndarray:
    """One chorale as int16 ``[4, T]``: a music21 corpus id (``"bach/bwv66.6"``) or a file path.

    A path may be MusicXML/kern/ABC (anything music21 parses) or MIDI (read with ``read_midi``).
    Raises MusicFileError naming the file for an unreadable file, an empty score, a number of
    parts other than 4, or a pitch outside MIDI 36..81.
    """
    path = Path(id_or_path)
    if path.suffix.lower() in (".mid", ".midi"):
        from common.music.midi import read_midi

        voices = read_midi(path, n_voices=N_VOICES)
        try:
            _check_pitch_range(voices)
        except ValueError as err:
            raise MusicFileError(path, str(err)) from None
        return voices
    return score_to_voices(_parse_score(id_or_path), id_or_path).voices


def load_chorale_files(paths) -> tuple[list[np.ndarray], list[str]]:
    """Load many chorale files (or corpus ids) with ``load_chorale``; a bad one is skipped with a
    warning naming it and the problem. Returns (voices of the kept files, their paths/ids)."""
    pieces, kept = [], []
    for path in paths:
        try:
            pieces.append(load_chorale(path))
        except MusicFileError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
            continue
        kept.append(str(path))
    return pieces, kept


def _parse_score(id_or_path):
    from music21 import converter, corpus

    path = Path(id_or_path)
    try:
        if path.exists():
            if path.stat().st_size == 0:
                raise MusicFileError(path, "empty file")
            return converter.parse(str(path))
        return corpus.parse(str(id_or_path))
    except MusicFileError:
        raise
    except Exception as err:  # music21 raises many unrelated types for unreadable input
        what = "cannot parse file" if path.exists() else "not a file and not a music21 corpus id"
        msg = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise MusicFileError(id_or_path, f"{what} ({msg})") from None


# ---------------------------------------------------------------------------------------------
# The corpus list and the split
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusEntry:
    """One distinct chorale file of the Riemenschneider collection."""

    corpus_id: str  # music21 corpus path, e.g. "bach/bwv66.6"
    bwv: str  # e.g. "66.6", "248.12-2"
    riemenschneider: tuple[int, ...]  # every Riemenschneider number that names this file
    split: str


def split_of_number(number: int) -> str:
    """Our split rule on a Riemenschneider number: n % 10 == 0 valid, == 5 test, else train."""
    return "valid" if number % 10 == 0 else "test" if number % 10 == 5 else "train"


def corpus_entries() -> list[CorpusEntry]:
    """The distinct files of music21's 371 Riemenschneider chorales, in Riemenschneider order.

    371 numbers name 350 distinct files (20 files are listed twice or three times). Files of one
    BWV work (a cantata or passion, the part of the BWV before the dot) often reharmonise the same
    tune, so a whole work goes to the split of its lowest Riemenschneider number.
    """
    from music21.corpus.chorales import ChoraleListRKBWV

    by_number = ChoraleListRKBWV().byRiemenschneider
    numbers_of_bwv: dict[str, list[int]] = defaultdict(list)
    for number in sorted(by_number):
        numbers_of_bwv[str(by_number[number]["bwv"])].append(number)
    lowest_of_work: dict[str, int] = {}
    for bwv, numbers in numbers_of_bwv.items():
        work = bwv.split(".")[0]
        lowest_of_work[work] = min(lowest_of_work.get(work, numbers[0]), numbers[0])
    entries = [
        CorpusEntry(
            corpus_id=f"bach/bwv{bwv}",
            bwv=bwv,
            riemenschneider=tuple(numbers),
            split=split_of_number(lowest_of_work[bwv.split(".")[0]]),
        )
        for bwv, numbers in numbers_of_bwv.items()
    ]
    return sorted(entries, key=lambda e: e.riemenschneider[0])


# ---------------------------------------------------------------------------------------------
# The cached dataset
# ---------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$REPRO_CACHE/music``, default ``~/.cache/paper-repro/music``."""
    root = os.environ.get("REPRO_CACHE") or os.path.join("~", ".cache", "paper-repro")
    return Path(root).expanduser() / "music"


@dataclass
class ChoraleDataset:
    """Every kept chorale, concatenated; ``piece(i)`` slices one out. Built by ``build_chorales``."""

    voices: np.ndarray  # int16 [4, total_frames]
    onsets: np.ndarray  # bool [4, total_frames]: note starts (tells re-struck from held notes)
    offsets: np.ndarray  # int64 [n + 1]: piece i is voices[:, offsets[i]:offsets[i + 1]]
    fermata: np.ndarray  # bool [total_frames]
    ids: np.ndarray  # str [n]: music21 corpus ids
    bwv: np.ndarray  # str [n]
    riemenschneider: np.ndarray  # int32 [n]: lowest Riemenschneider number naming the file
    split: np.ndarray  # str [n]: train | valid | test
    key_tonic: np.ndarray  # int8 [n]: analysed key's tonic pitch class
    key_mode: np.ndarray  # str [n]: major | minor
    time_signature: np.ndarray  # str [n]: e.g. "4/4", or "3/4|4/4" when it changes
    measure_offsets: np.ndarray  # int64 [n + 1] into the three measure arrays below
    measure_start: np.ndarray  # int32 [M]
    measure_frames: np.ndarray  # int32 [M]
    bar_frames: np.ndarray  # int32 [M]
    skipped_ids: np.ndarray  # str [k]: pieces left out
    skipped_reasons: np.ndarray  # str [k]
    meta: dict  # version, music21 version, limit, counts, build time

    def __len__(self) -> int:
        return len(self.ids)

    def indices(self, split: str = "all") -> list[int]:
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of train, valid, test, all; got {split!r}")
        return [i for i in range(len(self)) if split == "all" or self.split[i] == split]

    def piece(self, i: int) -> np.ndarray:
        return self.voices[:, self.offsets[i] : self.offsets[i + 1]].copy()

    def piece_onsets(self, i: int) -> np.ndarray:
        return self.onsets[:, self.offsets[i] : self.offsets[i + 1]].copy()

    def piece_fermata(self, i: int) -> np.ndarray:
        return self.fermata[self.offsets[i] : self.offsets[i + 1]].copy()

    def measures(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start frame, written frames, full-bar frames) of each measure of piece i."""
        sl = slice(self.measure_offsets[i], self.measure_offsets[i + 1])
        return self.measure_start[sl], self.measure_frames[sl], self.bar_frames[sl]


_ARRAY_FIELDS = [f for f in ChoraleDataset.__dataclass_fields__ if f != "meta"]
_MEMORY: dict[tuple[str, int], ChoraleDataset] = {}


def atomic_savez(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """np.savez_compressed(arrays + JSON meta) to `path` so that readers see the old file or the
    whole new one: a temporary file in the same directory, renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays, meta=np.array(json.dumps(meta)))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the cache is shared
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _cache_path(limit: int | None, directory: Path | None) -> Path:
    suffix = f"_first{limit}" if limit is not None else ""
    return (directory or cache_dir()) / f"chorales_v{PREPROCESS_VERSION}{suffix}.npz"


def _expected_meta(limit: int | None) -> dict:
    import music21

    return {"version": PREPROCESS_VERSION, "music21": music21.__version__, "limit": limit}


def _read_cache(path: Path, limit: int | None) -> ChoraleDataset | None:
    """The cached dataset, or None when the file is missing, unreadable, stale or inconsistent."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAY_FIELDS}
            meta = json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    expected = _expected_meta(limit)
    if any(meta.get(k) != v for k, v in expected.items()):
        return None
    data = ChoraleDataset(**arrays, meta=meta)
    n = len(data.ids)
    consistent = (
        data.voices.ndim == 2
        and data.voices.shape[0] == N_VOICES
        and len(data.offsets) == n + 1
        and data.offsets[-1] == data.voices.shape[1] == len(data.fermata)
        and data.onsets.shape == data.voices.shape
        and np.all(np.diff(data.offsets) > 0)
        and len(data.measure_offsets) == n + 1
        and data.measure_offsets[-1] == len(data.measure_start)
        and all(
            len(getattr(data, f)) == n for f in ("bwv", "riemenschneider", "split", "key_tonic")
        )
    )
    return data if consistent else None


def build_chorales(limit: int | None = None, directory: Path | None = None) -> ChoraleDataset:
    """Parse the corpus and write the cache (atomically). ``limit``: only the first N distinct files
    in Riemenschneider order (a small, fast build for tests; the split rule is unchanged).

    A piece that fails (wrong number of parts, unreadable, empty, out of range) is skipped with a
    warning and recorded in ``skipped_ids`` / ``skipped_reasons``.
    """
    from music21 import corpus

    started = time.perf_counter()
    entries = corpus_entries()[:limit] if limit is not None else corpus_entries()
    kept: list[tuple[CorpusEntry, ParsedScore]] = []
    skipped: list[tuple[str, str]] = []
    totals = Counter()
    for entry in entries:
        try:
            try:
                score = corpus.parse(entry.corpus_id)
            except Exception as err:  # music21 raises many types for unreadable files
                raise MusicFileError(entry.corpus_id, f"cannot parse ({err})") from None
            parsed = score_to_voices(score, entry.corpus_id)
        except MusicFileError as err:
            warnings.warn(f"skipping chorale {err}", stacklevel=2)
            skipped.append((entry.corpus_id, err.problem))
            continue
        kept.append((entry, parsed))
        totals.update(parsed.stats)
        totals["pieces_with_off_grid_notes"] += int(parsed.stats.get("off_grid_notes", 0) > 0)
        totals["pieces_with_ties"] += int(parsed.stats.get("tied_notes", 0) > 0)
        totals["pieces_with_fermatas"] += int(parsed.fermata.any())
        totals["pieces_with_pickup"] += int(parsed.measure_frames[0] < parsed.bar_frames[0])

    if not kept:
        raise MusicFileError("music21 corpus", "no chorale could be read")
    measure_counts = [len(p.measure_start) for _, p in kept]
    data = ChoraleDataset(
        voices=np.concatenate([p.voices for _, p in kept], axis=1),
        onsets=np.concatenate([p.onsets for _, p in kept], axis=1),
        offsets=np.cumsum([0] + [p.voices.shape[1] for _, p in kept]).astype(np.int64),
        fermata=np.concatenate([p.fermata for _, p in kept]),
        ids=np.array([e.corpus_id for e, _ in kept]),
        bwv=np.array([e.bwv for e, _ in kept]),
        riemenschneider=np.array([e.riemenschneider[0] for e, _ in kept], dtype=np.int32),
        split=np.array([e.split for e, _ in kept]),
        key_tonic=np.array([p.key_tonic for _, p in kept], dtype=np.int8),
        key_mode=np.array([p.key_mode for _, p in kept]),
        time_signature=np.array(["|".join(p.time_signatures) for _, p in kept]),
        measure_offsets=np.cumsum([0, *measure_counts]).astype(np.int64),
        measure_start=np.concatenate([p.measure_start for _, p in kept]),
        measure_frames=np.concatenate([p.measure_frames for _, p in kept]),
        bar_frames=np.concatenate([p.bar_frames for _, p in kept]),
        skipped_ids=np.array([s for s, _ in skipped], dtype=str),
        skipped_reasons=np.array([r for _, r in skipped], dtype=str),
        meta={},
    )
    data.meta = {
        **_expected_meta(limit),
        "files_considered": len(entries),
        "kept": len(kept),
        "skipped": len(skipped),
        "split_sizes": {s: int((data.split == s).sum()) for s in SPLITS},
        "frames": int(data.voices.shape[1]),
        "counts": dict(totals),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    arrays = {name: getattr(data, name) for name in _ARRAY_FIELDS}
    atomic_savez(_cache_path(limit, directory), arrays, data.meta)
    return data


def load_chorale_dataset(
    *, limit: int | None = None, directory: str | os.PathLike | None = None, rebuild: bool = False
) -> ChoraleDataset:
    """The whole cached dataset (built on first use). Everything else in this module reads it."""
    path = _cache_path(limit, Path(directory) if directory is not None else None)
    key = (str(path), path.stat().st_mtime_ns if path.exists() else -1)
    if not rebuild and key in _MEMORY:
        return _MEMORY[key]
    data = None if rebuild else _read_cache(path, limit)
    if data is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # one builder at a time (parallel test workers / engineers); the others then read its file
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = None if rebuild else _read_cache(path, limit)
            if data is None:
                data = build_chorales(limit, path.parent)
    _MEMORY.clear()
    _MEMORY[(str(path), path.stat().st_mtime_ns)] = data
    return data


def load_chorales(
    split: str = "train",
    *,
    frames_per_quarter: int = FRAMES_PER_QUARTER,
    limit: int | None = None,
    directory: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """The chorales of one split (train | valid | test | all) as int16 ``[4, T]`` arrays.

    Sixteenth-note frames by default; ``frames_per_quarter=2`` or ``1`` gives the eighth- or
    quarter-note version (the pitch sounding at each grid point). Fresh copies: safe to modify.
    ``limit`` / ``directory``: a small build of the first N files / another cache folder (tests).
    """
    data = load_chorale_dataset(limit=limit, directory=directory)
    return [subsample(data.piece(i), frames_per_quarter) for i in data.indices(split)]


def load_chorale_onsets(
    split: str = "train", *, limit: int | None = None, directory: str | os.PathLike | None = None
) -> list[np.ndarray]:
    """bool ``[4, T]`` note-start flags parallel to ``load_chorales(split)``: True where a voice
    strikes a note, False where it holds (or ties over) the previous one or rests. A voice array
    alone cannot tell a repeated note from a held one; ``write_midi(voices, path, onsets=...)``
    re-strikes the repeated ones."""
    data = load_chorale_dataset(limit=limit, directory=directory)
    return [data.piece_onsets(i) for i in data.indices(split)]


def chorale_ids(
    split: str = "train", *, limit: int | None = None, directory: str | os.PathLike | None = None
) -> list[str]:
    """music21 corpus ids parallel to ``load_chorales(split)``."""
    data = load_chorale_dataset(limit=limit, directory=directory)
    return [str(data.ids[i]) for i in data.indices(split)]
