"""Recompose a piece (Sec. 3): keep its chord sequence, sample a new realisation of it, write MIDI, WAV and a
pianoroll PNG of the recomposition beside the original.

    python -m vqvae_recompose.recompose bach/bwv66.6 [--run DIR] [--out DIR] [--seed 0] [--temperature 1.0]
    python -m vqvae_recompose.recompose my_chorale.mid --spatial

The source is a music21 corpus id (a chorale of ``common.music``: its bar lines and analysed key are used) or
a four-voice MIDI / MusicXML file (4/4 bars counted from its first frame; key by Krumhansl-Schmuckler). The
piece is transposed to C major / A minor as in training, cut into full bars, labelled (previous, current,
next) chord per bar, recomposed bar by bar by the run's prior and VQ-VAE decoder, and transposed back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from common.cli import entry_point
from common.music.chords import chord_name, key_normalising_shift
from common.music.constants import REST, MusicFileError
from common.runner import RunDirError
from vqvae_recompose.data import chord_triplets, fold_into_rows, measure_chord
from vqvae_recompose.render import passage, pianorolls, write_passage
from vqvae_recompose.sampling import decode, sample_passages

DEFAULT_RUN = Path("runs/vqvae_recompose/quick/chorales_seed0")
BAR = 16
# Krumhansl-Kessler key profiles (tonic first)
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(voices: np.ndarray) -> tuple[int, str]:
    """(tonic pitch class, "major" | "minor") maximising the correlation of the piece's pitch-class
    durations with a rotated Krumhansl-Kessler profile."""
    sounding = voices[voices != REST]
    if sounding.size == 0:
        raise ValueError("the piece has no notes")
    durations = np.bincount(sounding % 12, minlength=12).astype(float)
    scores = [
        (np.corrcoef(durations, np.roll(profile, tonic))[0, 1], tonic, mode)
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE))
        for tonic in range(12)
    ]
    _, tonic, mode = max(scores)
    return tonic, mode


def load_source(source: str) -> tuple[np.ndarray, list[int], int, str]:
    """(voices [4, T], start frame of each full 4/4 bar, key tonic, key mode) of a corpus id or file."""
    from common.music.chorales import load_chorale, load_chorale_dataset

    data = load_chorale_dataset()
    match = [
        i for i, cid in enumerate(data.ids) if cid == source or str(cid).endswith("/" + source)
    ]
    if match and not Path(source).exists():
        i = match[0]
        starts, written, full = data.measures(i)
        bars = [int(s) for s, w, f in zip(starts, written, full) if w == f == BAR]
        return data.piece(i).astype(np.int64), bars, int(data.key_tonic[i]), str(data.key_mode[i])
    voices = np.asarray(load_chorale(source), dtype=np.int64)  # MusicFileError for bad input
    tonic, mode = estimate_key(voices)
    return voices, list(range(0, voices.shape[1] - BAR + 1, BAR)), tonic, mode


def recompose(source: str, run_dir: Path, out_dir: Path, seed: int = 0, temperature: float = 1.0,
              spatial: bool = False, audio: bool = True) -> dict:  # fmt: skip
    """Recompose ``source``; returns {"bars", "chords", "files"}."""
    from vqvae_recompose.eval import load_models

    cfg, vqvae, priors, vocabulary = load_models(run_dir)
    name = "spatial" if spatial else "chord"
    if name not in priors:
        raise RunDirError(f"{run_dir} has no {name} prior (trained with prior.spatial=false?)")
    voices, bars, tonic, mode = load_source(source)
    if not bars:
        raise ValueError(f"{source}: no full 4/4 bar to recompose")
    shift = key_normalising_shift(tonic, mode)
    normalised = np.where(voices == REST, REST, voices + shift)
    measures = np.stack([normalised[:, s : s + BAR] for s in bars])
    measures = fold_into_rows(measures, cfg.data.pitch_low, cfg.data.n_pitches)
    chords = measure_chord(measures)
    consecutive = np.r_[False, np.diff(bars) == BAR]  # bar i follows bar i - 1 directly
    previous = np.where(consecutive, np.arange(len(bars)) - 1, -1)
    nxt = np.r_[previous[1:] >= 0, False]
    nxt = np.where(nxt, np.arange(len(bars)) + 1, -1)
    triplets = chord_triplets(vocabulary.ids(chords), previous, nxt)
    shape = (cfg.data.n_pitches // 4, BAR // 4)
    generator = torch.Generator().manual_seed(seed)
    codes = sample_passages(priors[name], triplets, previous, shape, temperature, generator)
    new = decode(vqvae, codes, cfg.data.pitch_low, cfg.sample.threshold)
    new = np.where(new == REST, REST, new - shift)  # back to the source's key
    original = np.where(measures == REST, REST, measures - shift)

    out_dir.mkdir(parents=True, exist_ok=True)
    names = [chord_name(c) for c in chords]
    files = write_passage(passage(original), out_dir / "original", wav=audio)
    files += write_passage(passage(new), out_dir / "recomposed", wav=audio)
    files.append(
        pianorolls(
            out_dir / "recomposed.png",
            [passage(original), passage(new)],
            [f"original: {source}", f"recomposed ({name} prior, T = {temperature}, seed {seed})"],
            labels=names,
        )  # fmt: skip
    )
    (out_dir / "chords.txt").write_text(" ".join(names) + "\n")
    return {"bars": len(bars), "chords": names, "files": files}


@entry_point("python -m vqvae_recompose.recompose", also=(MusicFileError, ValueError))
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vqvae_recompose.recompose", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "source", help="music21 corpus id (bach/bwv66.6) or a 4-voice MIDI / MusicXML file"
    )
    parser.add_argument(
        "--run",
        type=Path,
        default=DEFAULT_RUN,
        help=f"trained run directory (default {DEFAULT_RUN})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default runs/vqvae_recompose/recompose/<source>)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--spatial",
        action="store_true",
        help="also condition on the previous generated bar's codes",
    )
    parser.add_argument("--no-audio", action="store_true", help="skip the WAV files")
    args = parser.parse_args(argv)
    if not args.temperature > 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}")
    out = args.out or Path("runs/vqvae_recompose/recompose") / Path(args.source).stem.replace(
        "/", "_"
    )
    torch.set_num_threads(1)
    result = recompose(
        args.source, args.run, out, args.seed, args.temperature, args.spatial, not args.no_audio
    )
    print(f"recomposed {result['bars']} bars over: {' '.join(result['chords'])}")
    for path in result["files"]:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
