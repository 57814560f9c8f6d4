"""Harmonise a soprano melody with a trained Coconet: the alto, tenor and bass are filled in by annealed
blocked Gibbs sampling while the melody stays fixed.

    python -m coconet.harmonize melody.mid                      # a MIDI file: its highest voice is the tune
    python -m coconet.harmonize bach/bwv66.6                    # a corpus chorale: re-harmonise its soprano
    python -m coconet.harmonize melody.mid --run runs/coconet/full --samples 3 --out harmonized/

Writes <out>/<name>_<n>.mid, .wav and a pianoroll .png per harmonisation (and the melody alone).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from coconet.eval import load_model
from coconet.model import N_PITCHES, N_VOICES, PITCH_LOW, roll_to_voices, voices_to_roll
from coconet.render import pianoroll_figure, write_score
from coconet.sampling import gibbs_sample
from common.runner import set_threads


def load_melody(source: str) -> tuple[np.ndarray, str]:
    """The tune ``[T]`` (MIDI pitches, REST = -1) from a MIDI file or a corpus chorale id, and a name."""
    from common.music.chorales import load_chorale
    from common.music.constants import MusicFileError
    from common.music.midi import read_midi

    path = Path(source)
    if path.suffix.lower() in (".mid", ".midi"):
        voices = read_midi(path)
        # Several parts: the one with the highest mean pitch carries the tune.
        means = [v[v >= 0].mean() if (v >= 0).any() else -1 for v in voices]
        melody, name = voices[int(np.argmax(means))], path.stem
    elif path.exists() or "/" in source or source.startswith("bwv"):
        melody, name = load_chorale(source)[0], Path(source).name.replace(".", "_")
    else:
        raise MusicFileError(
            source, "not a .mid/.midi file, a score file or a corpus id like bach/bwv66.6"
        )
    sounding = melody[melody >= 0]
    if sounding.size == 0:
        raise MusicFileError(source, "the melody has no notes")
    if sounding.min() < PITCH_LOW or sounding.max() >= PITCH_LOW + N_PITCHES:
        raise MusicFileError(
            source,
            f"melody spans MIDI {sounding.min()}..{sounding.max()}, outside the model's "
            f"{PITCH_LOW}..{PITCH_LOW + N_PITCHES - 1}; transpose it",
        )
    return melody.astype(np.int64), name


def harmonize(model, melody: np.ndarray, samples: int, steps: int, cfg, seed: int) -> np.ndarray:
    """``samples`` four-voice harmonisations ``[S, 4, T]`` of ``melody`` ``[T]`` (soprano kept)."""
    time = len(melody)
    voices = np.full((samples, N_VOICES, time), -1, dtype=np.int64)
    voices[:, 0] = melody
    region = torch.zeros(samples, N_VOICES, time, dtype=torch.bool)
    region[:, 1:] = True  # alto, tenor and bass are generated; the soprano is the context
    s = cfg.sample
    filled = gibbs_sample(
        model, voices_to_roll(torch.from_numpy(voices)), region, steps or int(region[0].sum()),
        s.pmax, s.pmin, s.eta, s.temperature, torch.Generator().manual_seed(seed),
    )  # fmt: skip
    return roll_to_voices(filled).numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m coconet.harmonize",
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
    )
    parser.add_argument("melody", help="a .mid file (its highest part is the tune) or a corpus id")
    parser.add_argument("--run", default="runs/coconet/quick", help="trained run directory")
    parser.add_argument("--out", default="harmonized", help="output directory")
    parser.add_argument("--samples", type=int, default=1, help="how many harmonisations")
    parser.add_argument("--steps", type=int, default=0, help="Gibbs steps (0 = 3 x melody length)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-audio", action="store_true", help="MIDI and PNG only, no WAV")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be >= 1")
    if not (Path(args.run) / "config.yaml").is_file():
        parser.error(f"{args.run} is not a trained run (no config.yaml); run `make coconet` first")
    try:
        melody, name = load_melody(args.melody)
    except (ValueError, OSError) as err:  # MusicFileError is a ValueError naming the file
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

    model, cfg = load_model(args.run)
    set_threads(cfg.threads)
    scores = harmonize(model, melody, args.samples, args.steps, cfg, args.seed)
    out = Path(args.out)
    melody_only = np.full((N_VOICES, len(melody)), -1)
    melody_only[0] = melody
    written = write_score(melody_only[:1], out / f"{name}_melody", wav=not args.no_audio)
    for n, score in enumerate(scores):
        written += write_score(score, out / f"{name}_{n}", wav=not args.no_audio)
    region = np.zeros((N_VOICES, len(melody)), dtype=bool)
    region[1:] = True
    written.append(
        pianoroll_figure(
            out / f"{name}.png",
            list(scores),
            [f"{name}: harmonisation {n}" for n in range(len(scores))],
            regions=[region] * len(scores),
            columns=1,
        )  # fmt: skip
    )
    print("\n".join(str(p) for p in written))


if __name__ == "__main__":
    main(sys.argv[1:])
