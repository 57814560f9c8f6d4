"""Harmonise a soprano melody with a trained Coconet: the alto, tenor and bass are filled in by annealed
blocked Gibbs sampling while the melody stays fixed.

    python -m coconet.harmonize melody.mid                      # a MIDI file: its highest voice is the tune
    python -m coconet.harmonize bach/bwv66.6                    # a corpus chorale: re-harmonise its soprano
    python -m coconet.harmonize melody.mid --run runs/coconet/quick/chorales_seed0 --samples 3

Without ``--run`` it uses the model shipped in ``results/coconet/`` (medium, else quick), so it works right
after setup. The sampling settings are the model config's ``harmonize`` section unless given here.

Writes <out>/<name>_<n>.mid, .wav and a pianoroll .png per harmonisation (and the melody alone).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from coconet.render import pianoroll_figure, write_score
from coconet.sampling import harmonize
from coconet.trained import default_model_dir, load_model
from common.music import N_VOICES, PITCH_HIGH, PITCH_LOW, MusicFileError, load_chorale, read_midi
from common.runner import set_threads


def load_melody(source: str) -> tuple[np.ndarray, str]:
    """The tune ``[T]`` (MIDI pitches, REST = -1) from a MIDI file or a corpus chorale id, and a name."""
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
    if sounding.min() < PITCH_LOW or sounding.max() > PITCH_HIGH:
        raise MusicFileError(
            source,
            f"melody spans MIDI {sounding.min()}..{sounding.max()}, outside the model's "
            f"{PITCH_LOW}..{PITCH_HIGH}; transpose it",
        )
    return melody.astype(np.int64), name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m coconet.harmonize",
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
    )
    parser.add_argument("melody", help="a .mid file (its highest part is the tune) or a corpus id")
    parser.add_argument(
        "--run",
        default=None,
        help="a run directory or a trained model folder (default: the model in results/coconet/)",
    )
    parser.add_argument("--out", default="harmonized", help="output directory")
    parser.add_argument("--samples", type=int, default=1, help="how many harmonisations")
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="Gibbs steps (0 = the config's steps_per_frame x length)",
    )
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature (0 = the config's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-audio", action="store_true", help="MIDI and PNG only, no WAV")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be >= 1")
    if args.steps < 0 or args.temperature < 0:
        parser.error("--steps and --temperature must be >= 0")
    try:
        melody, name = load_melody(args.melody)
        model_dir = Path(args.run) if args.run else default_model_dir()
        model, cfg = load_model(model_dir)
    except (ValueError, OSError) as err:  # MusicFileError is a ValueError naming the file
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

    set_threads(cfg.threads)
    print(
        f"{parser.prog}: model {model_dir} ({cfg.model.layers} x {cfg.model.filters}, {cfg.name})"
    )
    steps = args.steps or max(1, round(cfg.harmonize.steps_per_frame * len(melody)))
    s = cfg.sample
    melodies = torch.from_numpy(np.repeat(melody[None], args.samples, axis=0))
    scores = harmonize(
        model, melodies, steps, args.temperature or cfg.harmonize.temperature,
        torch.Generator().manual_seed(args.seed), s.pmax, s.pmin, s.eta,
    ).numpy()  # fmt: skip
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
