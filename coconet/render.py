"""Pictures and sounds of four-voice scores: pianoroll PNGs, MIDI files and WAV renderings.

A score here is an int array ``[4, T]`` of MIDI pitches (REST = -1). MIDI and audio go through
``common.music.midi`` (sine synthesis unless FluidSynth and a soundfont are installed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.music import PITCH_HIGH, PITCH_LOW, VOICE_NAMES  # noqa: E402

VOICE_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:purple")


def pianoroll_figure(
    path: Path | str,
    scores: list[np.ndarray],
    titles: list[str],
    regions: list[np.ndarray | None] | None = None,
    columns: int = 4,
    suptitle: str = "",
) -> Path:
    """A grid of pianorolls, one colour per voice; ``regions`` ``[4, T]`` (True = generated) are shaded
    as the cells the sampler filled, so what was given and what was generated are told apart."""
    rows = int(np.ceil(len(scores) / columns))
    panel_width = max(3.2, max(np.shape(s)[-1] for s in scores) / 20)  # long pieces get wide panels
    fig, axes = plt.subplots(
        rows, columns, figsize=(panel_width * columns, 2.4 * rows), squeeze=False
    )
    for n, ax in enumerate(axes.flat):
        if n >= len(scores):
            ax.axis("off")
            continue
        score = np.asarray(scores[n])
        time = np.arange(score.shape[1])
        region = None if regions is None else regions[n]
        for voice in range(score.shape[0]):
            sounding = score[voice] >= 0
            given = sounding if region is None else sounding & ~np.asarray(region[voice], bool)
            generated = sounding & ~given
            ax.scatter(time[given], score[voice][given], s=6, marker="s", c=VOICE_COLOURS[voice])
            ax.scatter(
                time[generated], score[voice][generated], s=6, marker="s", c=VOICE_COLOURS[voice],
                alpha=0.45,
            )  # fmt: skip
        if region is not None and np.asarray(region).any():
            filled_steps = np.asarray(region).any(0)
            ax.fill_between(
                time,
                PITCH_LOW,
                PITCH_HIGH,
                where=filled_steps,
                color="gray",
                alpha=0.12,
                step="mid",
            )
        ax.set_ylim(PITCH_LOW - 1, PITCH_HIGH + 1)
        ax.set_title(titles[n], fontsize=8)
        ax.set_xlabel("time (sixteenths)", fontsize=7)
        ax.set_ylabel("MIDI pitch", fontsize=7)
        ax.set_xticks(np.arange(0, score.shape[1] + 1, 16))
        ax.grid(alpha=0.2)
        ax.tick_params(labelsize=6)
    handles = [plt.Line2D([], [], color=c, marker="s", ls="") for c in VOICE_COLOURS]
    fig.legend(handles, VOICE_NAMES, loc="lower center", ncol=4, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_score(
    score: np.ndarray, stem: Path | str, wav: bool = True, bpm: float = 80.0
) -> list[Path]:
    """``stem``.mid (and ``stem``.wav) for one ``[4, T]`` score; returns the written paths."""
    from common.music.midi import render_wav, write_midi

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = [stem.with_suffix(".mid")]
    write_midi(np.asarray(score), written[0], bpm=bpm)
    if wav:
        written.append(stem.with_suffix(".wav"))
        render_wav(np.asarray(score), written[1], bpm=bpm)
    return written
