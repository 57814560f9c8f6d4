"""Pictures and sounds of measures: pianoroll PNGs of bar sequences, MIDI and WAV files.

A passage is an int array ``[4, T]`` (MIDI pitch or REST = -1 per voice and sixteenth); MIDI and audio go
through ``common.music.midi`` (its dependency-free additive synthesiser unless FluidSynth is installed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

VOICE_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:purple")
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")


def passage(measures: np.ndarray) -> np.ndarray:
    """``[M, 4, 16]`` measures -> one ``[4, 16 M]`` passage."""
    measures = np.asarray(measures)
    return measures.transpose(1, 0, 2).reshape(measures.shape[1], -1)


def pianorolls(path, passages, titles, bar: int = 16, suptitle: str = "", labels=None) -> Path:
    """One panel per passage (rows), one colour per voice, bar lines every ``bar`` steps; ``labels``
    (a list of chord names per bar, shared by all panels) are written above the bars of the first."""
    fig, axes = plt.subplots(
        len(passages),
        1,
        figsize=(max(6, np.shape(passages[0])[1] / 14), 2.1 * len(passages)),
        squeeze=False,
    )
    for ax, music, title in zip(axes[:, 0], passages, titles):
        music = np.asarray(music)
        time = np.arange(music.shape[1])
        for v in range(music.shape[0]):
            sounding = music[v] >= 0
            ax.scatter(time[sounding], music[v][sounding], s=7, marker="s", c=VOICE_COLOURS[v])
        for x in range(0, music.shape[1] + 1, bar):
            ax.axvline(x - 0.5, color="gray", linewidth=0.6)
        ax.set_ylim(30, 86)
        ax.set_xlim(-0.5, music.shape[1] - 0.5)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("MIDI pitch", fontsize=7)
        ax.tick_params(labelsize=6)
    if labels is not None:
        for m, name in enumerate(labels):
            axes[0, 0].text(m * bar + bar / 2 - 0.5, 85, name, ha="center", va="top", fontsize=6)
    axes[-1, 0].set_xlabel("sixteenth", fontsize=7)
    handles = [plt.Line2D([], [], color=c, marker="s", ls="") for c in VOICE_COLOURS]
    fig.legend(handles, VOICE_NAMES, loc="lower center", ncol=4, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_passage(music: np.ndarray, stem, wav: bool = True, bpm: float = 60.0) -> list[Path]:
    """``stem``.mid (and ``stem``.wav) of a ``[4, T]`` passage (60 qpm as in the authors' writer)."""
    from common.music.midi import render_wav, write_midi

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = [write_midi(np.asarray(music), stem.with_suffix(".mid"), bpm=bpm)]
    if wav:
        written.append(
            render_wav(np.asarray(music), stem.with_suffix(".wav"), bpm=bpm, synth="simple")
        )
    return [Path(p) for p in written]
