"""Evaluate an RL run of the ReaLchords agent against its MLE start, its teacher, random and real chords.

    python -m realjam.eval --run runs/realjam/quick/rl_seed0

On held-out chorale sopranos (their first ``data.eval_frames`` frames, original key) and held-out folk tunes:
note-in-chord harmony of sampled accompaniment, chord-token NLL of the real chords, silence, repetition and
chord-change rates, the RL model's KL to its start, and adaptation to a tritone key change half-way
(ReaLchords Fig. 1: harmony per beat around the change). Writes ``eval.json`` and plots into the run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.results import print_results
from common.runner import CheckpointError, atomic_write_text, load_run_config, read_metrics  # noqa: E402
from realjam.data import chorale_songs, folk_songs, song_tokens, transpose_song  # noqa: E402
from realjam.rl import kl_per_position  # noqa: E402
from realjam.sampling import sample_online, sample_teacher  # noqa: E402
from realjam.store import load_stage  # noqa: E402
from realjam.tokens import (  # noqa: E402
    CHORD_SILENCE,
    chord_changes,
    chord_symbols,
    encode_chords,
    encode_melody,
    in_chord,
    interleave,
    repeated_onsets,
    silent_against_melody,
    unigram,
)

KEY_CHANGE_SHIFT = 6  # a tritone: the furthest key (ReaLchords Fig. 1 transposes mid-song)
BEATS_AROUND_CHANGE = 8  # harmony is compared over the 8 beats before and after the change


def frame_stats(pitches: torch.Tensor, chord_tokens: torch.Tensor) -> dict[str, float]:
    """Harmony, chord changes, silence and repetition of accompaniment ``[B, T]`` to melodies ``[B, T]``."""
    symbols = chord_symbols(chord_tokens)
    sounding = (pitches >= 0).float()
    onsets = (chord_tokens >= CHORD_SILENCE + 1) & ((chord_tokens - CHORD_SILENCE - 1) % 2 == 0)
    return {
        "harmony_rate": float((in_chord(pitches, symbols) * sounding).sum() / sounding.sum()),
        "chord_changes_per_frame": float(chord_changes(symbols)[:, 1:].mean()),
        "silence_rate": float(silent_against_melody(pitches, symbols).sum() / sounding.sum()),
        "repeat_rate": float(repeated_onsets(chord_tokens).sum() / onsets.sum().clamp(min=1)),
    }


def chord_nll(chord_logp: torch.Tensor, chord_tokens: torch.Tensor) -> float:
    """Mean NLL (nats) of the real chord tokens under ``[B, T, V]`` log-probabilities."""
    return float(-chord_logp.gather(-1, chord_tokens[..., None]).mean())


def harmony_per_beat(pitches: torch.Tensor, chord_tokens: torch.Tensor) -> np.ndarray:
    """Note-in-chord ratio of each beat (4 frames), pooled over the batch."""
    hits = in_chord(pitches, chord_symbols(chord_tokens)).reshape(len(pitches), -1, 4).sum((0, 2))
    sounding = (pitches >= 0).float().reshape(len(pitches), -1, 4).sum((0, 2))
    return (hits / sounding.clamp(min=1)).numpy()


def key_change_melodies(songs, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out melodies with everything from the half-way frame on moved up a tritone."""
    pitches, onsets = [], []
    for song in songs:
        moved = transpose_song(song, KEY_CHANGE_SHIFT)
        half = frames // 2
        melody = np.concatenate([song.melody[:half], moved.melody[half:frames]])
        onset = song.onsets[:frames].copy()
        onset[half] = True  # the first note in the new key is struck
        pitches.append(torch.as_tensor(melody))
        onsets.append(torch.as_tensor(onset))
    p = torch.stack(pitches)
    return p, encode_melody(p, torch.stack(onsets))


def recovery_beats(curve: np.ndarray, change_beat: int, tolerance: float = 0.1) -> float:
    """Beats after the change until harmony is back within ``tolerance`` of its pre-change level."""
    before = curve[max(change_beat - BEATS_AROUND_CHANGE, 0) : change_beat].mean()
    for beat in range(change_beat, len(curve)):
        if curve[beat] >= before - tolerance:
            return float(beat - change_beat)
    return float(len(curve) - change_beat)


def _repeat(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.repeat_interleave(n, dim=0)


def evaluate(run_dir: Path | str, baselines: bool = True) -> dict[str, float]:
    """All metrics of an RL run (``baselines=False``: only the RL model's own, for extra RL variants)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    rl = load_stage(run_dir, "rl")
    mle = load_stage(cfg.rl.mle_run, "mle")
    teacher = load_stage(cfg.rl.teacher_run, "teacher")
    frames, n = cfg.data.eval_frames, cfg.data.eval_samples
    limit = cfg.data.chorale_limit or None
    test = [s for s in chorale_songs("test", limit=limit) if len(s.melody) >= frames]
    pitches, melody, real_chords = song_tokens(test, frames)
    gen = torch.Generator().manual_seed(cfg.data.eval_seed)
    many_p, many_m = _repeat(pitches, n), _repeat(melody, n)
    results: dict[str, float] = {}

    def sample_and_score(name, model):
        chords, _ = sample_online(model, frames, melody=many_m, generator=gen)
        results.update({f"{name}/{k}": v for k, v in frame_stats(many_p, chords).items()})
        with torch.no_grad():
            results[f"{name}/chord_nll"] = chord_nll(
                model.chord_logits(interleave(real_chords, melody)), real_chords
            )
        return chords

    rl_chords = sample_and_score("rl", rl)
    with (
        torch.no_grad()
    ):  # KL per chord token of the RL policy to its start (and to the teacher), on its own samples
        seq = interleave(rl_chords, many_m)
        rl_logp = rl.chord_logits(seq)
        results["rl/kl_per_chord_token"] = float(
            kl_per_position(rl_logp, mle.chord_logits(seq)).mean()
        )
        results["rl/kl_to_teacher"] = float(
            kl_per_position(rl_logp, teacher.chord_logits(many_m, rl_chords)).mean()
        )

    # Held-out folk tunes: out-of-distribution melodies without chords.
    folk = folk_songs("test", cfg.data.folk_limit, frames) if cfg.data.folk_limit else []
    if folk:
        folk_p, folk_m, _ = song_tokens(folk, frames)
        names = [("rl", rl)] + ([("mle", mle)] if baselines else [])
        for name, model in names:
            chords, _ = sample_online(model, frames, melody=folk_m, generator=gen)
            results[f"{name}/folk_harmony_rate"] = frame_stats(folk_p, chords)["harmony_rate"]

    # Adaptation after a mid-song tritone key change (ReaLchords Fig. 1).
    change_beat = frames // 8
    kc_pitches, kc_melody = key_change_melodies(test, frames)
    kc_p, kc_m = _repeat(kc_pitches, n), _repeat(kc_melody, n)
    curves = {}
    for name, model in [("rl", rl)] + ([("mle", mle)] if baselines else []):
        chords, _ = sample_online(model, frames, melody=kc_m, generator=gen)
        curve = harmony_per_beat(kc_p, chords)
        curves[name] = curve
        results[f"{name}/harmony_after_key_change"] = float(
            curve[change_beat : change_beat + BEATS_AROUND_CHANGE].mean()
        )
        before = curve[max(change_beat - BEATS_AROUND_CHANGE, 0) : change_beat]
        results[f"{name}/harmony_before_key_change"] = float(before.mean())
        results[f"{name}/beats_to_recover"] = recovery_beats(curve, change_beat)

    if baselines:
        results.update({f"real/{k}": v for k, v in frame_stats(pitches, real_chords).items()})
        # Unigram of chord tokens over the training chorales in all 12 keys (the "no context" baseline).
        train = chorale_songs("train", limit=limit)
        counts = unigram(
            np.concatenate(
                [
                    encode_chords(torch.as_tensor(transpose_song(s, k).chords)).numpy()
                    for s in train
                    for k in range(12)
                ]
            )
        )
        probs = torch.as_tensor(counts, dtype=torch.float)
        results["unigram/chord_nll"] = float(-probs[real_chords].clamp(min=1e-12).log().mean())
        random_chords = torch.multinomial(
            probs, many_p.numel(), replacement=True, generator=gen
        ).view(many_p.shape)
        results.update({f"random/{k}": v for k, v in frame_stats(many_p, random_chords).items()})
        sample_and_score("mle", mle)
        with torch.no_grad():  # exposure bias: each chord sampled given the *real* chord history
            logp = mle.chord_logits(interleave(_repeat(real_chords, n), many_m))
            forced = torch.multinomial(logp.exp().flatten(0, 1), 1, generator=gen).view(
                many_p.shape
            )
        results["mle/harmony_teacher_forced"] = frame_stats(many_p, forced)["harmony_rate"]
        with torch.no_grad():
            results["teacher/chord_nll"] = chord_nll(
                teacher.chord_logits(melody, real_chords), real_chords
            )
            teacher_chords = sample_teacher(teacher, many_m, generator=gen)
        results.update({f"teacher/{k}": v for k, v in frame_stats(many_p, teacher_chords).items()})
        results["eval/held_out_melodies"] = float(len(test))

    plots = run_dir / "plots"
    plot_key_change(curves, change_beat, plots / "key_change.png")
    plot_rl_curves(read_metrics(run_dir), plots / "rl_training.png")
    if baselines:
        plot_pretraining(cfg, plots / "pretraining.png")
        plot_harmony_bars(results, plots / "harmony.png")
    results = {k: round(v, 5) for k, v in results.items()}
    atomic_write_text(
        __import__("json").dumps(results, indent=2, sort_keys=True) + "\n", run_dir / "eval.json"
    )
    return results


# ---------------------------------------------------------------------------------------------- plots
def plot_key_change(curves: dict[str, np.ndarray], change_beat: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)), curve, marker=".", label=name.upper())
    ax.axvline(change_beat, color="grey", ls="--", label="tritone key change")
    ax.set_xlabel("beat")
    ax.set_ylabel("note-in-chord ratio")
    ax.set_title("Adaptation to a mid-melody key change (held-out chorales)")
    ax.legend()
    _save(fig, path)


def plot_rl_curves(metrics: list[dict], path: Path) -> None:
    if not metrics:
        return
    steps = [m["step"] for m in metrics]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for key in [k for k in metrics[-1] if k.startswith("reward/")]:
        axes[0].plot(steps, [m.get(key, np.nan) for m in metrics], label=key.split("/")[1])
    axes[0].set(xlabel="RL update", ylabel="reward per frame", title="reward components")
    axes[0].legend(fontsize=7)
    for key in ("rl/kl_teacher", "rl/kl_start"):
        axes[1].plot(steps, [m.get(key, np.nan) for m in metrics], label=key.split("/")[1])
    axes[1].set(xlabel="RL update", ylabel="nats per chord token", title="KL")
    axes[1].legend()
    for key in ("rl/harmony_rate", "rl/changes_per_frame"):
        axes[2].plot(steps, [m.get(key, np.nan) for m in metrics], label=key.split("/")[1])
    axes[2].set(
        xlabel="RL update", ylabel="rate (training rollouts)", title="harmony and chord changes"
    )
    axes[2].legend()
    _save(fig, path)


def plot_pretraining(cfg, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for stage, key in (("mle", "losses/chord_nll"), ("teacher", "losses/chord_nll")):
        metrics = read_metrics(cfg.rl[f"{stage}_run"])
        ax.plot(
            [m["step"] for m in metrics],
            [m.get(key, np.nan) for m in metrics],
            label=f"{stage} chord NLL",
        )
    mle = read_metrics(cfg.rl.mle_run)
    ax.plot(
        [m["step"] for m in mle],
        [m.get("losses/nll", np.nan) for m in mle],
        label="mle NLL (all tokens)",
    )
    ax.set(xlabel="step", ylabel="training NLL (nats per token)", title="Pretraining")
    ax.legend()
    _save(fig, path)


def plot_harmony_bars(results: dict[str, float], path: Path) -> None:
    names = ["random", "mle", "rl", "teacher", "real"]
    values = [results.get(f"{n}/harmony_rate", np.nan) for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(names, values, color=["grey", "tab:blue", "tab:orange", "tab:green", "black"])
    ax.set(ylabel="note-in-chord ratio", title="Harmony on held-out chorale melodies", ylim=(0, 1))
    for i, v in enumerate(values):
        ax.text(i, v + 0.01, f"{v:.3f}", ha="center")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m realjam.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--run", required=True, help="an RL run directory, e.g. runs/realjam/quick/rl_seed0"
    )
    parser.add_argument("--no-baselines", action="store_true", help="score only the RL model")
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.run, baselines=not args.no_baselines)
    except CheckpointError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print_results(results)


if __name__ == "__main__":
    main(sys.argv[1:])
