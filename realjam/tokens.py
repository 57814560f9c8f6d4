"""Tokens of the interleaved chord/melody sequence, and the frame-level metrics computed on them.

One frame = one sixteenth note. A sequence is ``[BOS, c_1, m_1, c_2, m_2, ...]``: the chord token of frame t
comes *before* the melody token of frame t, so the online model picks the chord at t having heard the melody
only up to t-1 (ReaLchords, arXiv 2506.14723 §3; ReaLJam arXiv 2502.21267 §3). Both streams use onset/hold
tokens so that a re-struck chord or note differs from a held one.

Vocabulary (ours, the paper's ~2.8k Hooktheory chord symbols reduced to what the chorales hold):
  0 PAD, 1 BOS,
  chord tokens: SILENCE, then (onset, hold) per chord symbol, 12 roots x {maj, min, dim, dom7} = 48 symbols,
  melody tokens: REST, then (onset, hold) per MIDI pitch 36..96.
"""

from __future__ import annotations

import numpy as np
import torch

PAD, BOS = 0, 1
QUALITIES = ("maj", "min", "dim", "dom7")
QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "dom7": (0, 4, 7, 10)}
N_CHORDS = 12 * len(QUALITIES)  # 48 chord symbols
CHORD_SILENCE = 2  # the first chord token
CHORD_BASE = CHORD_SILENCE + 1  # CHORD_BASE + 2*symbol = onset, + 1 = hold
N_CHORD_TOKENS = 1 + 2 * N_CHORDS
MELODY_LOW, MELODY_HIGH = 36, 96  # MIDI range of melody tokens (folk tunes reach 93)
N_MELODY_PITCHES = MELODY_HIGH - MELODY_LOW + 1
MELODY_REST = CHORD_SILENCE + N_CHORD_TOKENS
MELODY_BASE = MELODY_REST + 1  # MELODY_BASE + 2*(pitch - MELODY_LOW) = onset, + 1 = hold
VOCAB_SIZE = MELODY_BASE + 2 * N_MELODY_PITCHES
SILENT = -1  # "no chord" / "rest" in symbol and pitch arrays
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Chord tones of every symbol as a [48, 12] 0/1 table, for vectorised note-in-chord checks.
CHORD_TONES = torch.zeros(N_CHORDS, 12)
for _s in range(N_CHORDS):
    _root, _q = divmod(_s, len(QUALITIES))
    for _i in QUALITY_INTERVALS[QUALITIES[_q]]:
        CHORD_TONES[_s, (_root + _i) % 12] = 1.0


def chord_symbol_name(symbol: int) -> str:
    if symbol == SILENT:
        return "N"
    root, q = divmod(int(symbol), len(QUALITIES))
    return f"{PITCH_CLASS_NAMES[root]}:{QUALITIES[q]}"


def chord_symbol_pitches(symbol: int) -> list[int]:
    """Voicing for playback: chord tones in octave 4 plus the root in octave 3 (ReaLJam's server does so)."""
    if symbol == SILENT:
        return []
    root, q = divmod(int(symbol), len(QUALITIES))
    return [48 + root] + [60 + root + i for i in QUALITY_INTERVALS[QUALITIES[q]]]


def is_chord_token(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens >= CHORD_SILENCE) & (tokens < MELODY_REST)


def is_melody_token(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens >= MELODY_REST) & (tokens < VOCAB_SIZE)


# ------------------------------------------------------------------ encode: symbols/pitches -> tokens
def _onset_hold(values: torch.Tensor, onsets: torch.Tensor | None) -> torch.Tensor:
    """Onset where the value changes (or ``onsets`` says a note is struck), hold otherwise."""
    changed = torch.ones_like(values, dtype=torch.bool)
    changed[..., 1:] = values[..., 1:] != values[..., :-1]
    return changed if onsets is None else changed | onsets.bool()


def encode_chords(symbols: torch.Tensor, onsets: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., T]`` symbols (SILENT = -1) -> chord tokens; a symbol's first frame is its onset."""
    symbols = torch.as_tensor(symbols).long()
    hold = (~_onset_hold(symbols, onsets)).long()
    return torch.where(symbols < 0, CHORD_SILENCE, CHORD_BASE + 2 * symbols.clamp(min=0) + hold)


def encode_melody(pitches: torch.Tensor, onsets: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., T]`` MIDI pitches (REST = -1) -> melody tokens; pitches outside 36..96 move by octaves."""
    pitches = fold_pitches(torch.as_tensor(pitches).long())
    hold = (~_onset_hold(pitches, onsets)).long()
    index = 2 * (pitches - MELODY_LOW).clamp(min=0) + hold
    return torch.where(pitches < 0, MELODY_REST, MELODY_BASE + index)


def fold_pitches(pitches: torch.Tensor) -> torch.Tensor:
    """Octave-shift sounding pitches into MELODY_LOW..MELODY_HIGH (rests stay)."""
    low = pitches + 12 * ((MELODY_LOW - pitches + 11) // 12).clamp(min=0)
    high = low - 12 * ((low - MELODY_HIGH + 11) // 12).clamp(min=0)
    return torch.where(pitches < 0, pitches, high)


def interleave(chord_tokens: torch.Tensor, melody_tokens: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` + ``[B, T]`` -> ``[B, 1 + 2T]`` = BOS, c_1, m_1, c_2, m_2, ... (chord first)."""
    b, t = chord_tokens.shape
    seq = torch.empty(b, 1 + 2 * t, dtype=torch.long, device=chord_tokens.device)
    seq[:, 0] = BOS
    seq[:, 1::2] = chord_tokens
    seq[:, 2::2] = melody_tokens
    return seq


# ------------------------------------------------------------------ decode: tokens -> symbols/pitches
def chord_symbols(tokens: torch.Tensor) -> torch.Tensor:
    """Chord tokens -> symbols (SILENT for silence or any non-chord token)."""
    symbol = (tokens - CHORD_BASE) // 2
    valid = (tokens >= CHORD_BASE) & (tokens < MELODY_REST)
    return torch.where(valid, symbol, SILENT)


def chord_onsets(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens >= CHORD_BASE) & (tokens < MELODY_REST) & ((tokens - CHORD_BASE) % 2 == 0)


def melody_pitches(tokens: torch.Tensor) -> torch.Tensor:
    """Melody tokens -> MIDI pitch (SILENT for rest or any non-melody token)."""
    pitch = MELODY_LOW + (tokens - MELODY_BASE) // 2
    valid = (tokens >= MELODY_BASE) & (tokens < VOCAB_SIZE)
    return torch.where(valid, pitch, SILENT)


# ------------------------------------------------------------------ frame metrics (batched, [B, T])
def in_chord(pitches: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """1.0 where the sounding melody pitch class is a chord tone; silence or rest -> 0."""
    tones = CHORD_TONES.to(pitches.device)[symbols.clamp(min=0), pitches.clamp(min=0) % 12]
    return tones * ((pitches >= 0) & (symbols >= 0)).float()


def harmony_rate(pitches: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """Note-in-chord ratio per sequence over the frames where the melody sounds (``[B]``)."""
    sounding = (pitches >= 0).float()
    return (in_chord(pitches, symbols) * sounding).sum(-1) / sounding.sum(-1).clamp(min=1)


def chord_changes(symbols: torch.Tensor) -> torch.Tensor:
    """1.0 at frame t > 0 where the chord symbol differs from frame t-1 (frame 0: 0)."""
    change = torch.zeros_like(symbols, dtype=torch.float)
    change[:, 1:] = (symbols[:, 1:] != symbols[:, :-1]).float()
    return change


def silent_against_melody(pitches: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """1.0 where the melody sounds but the agent plays no chord."""
    return ((pitches >= 0) & (symbols < 0)).float()


def repeated_onsets(tokens: torch.Tensor, threshold: int = 4) -> torch.Tensor:
    """1.0 at a chord onset that is the ``threshold``-th (or later) consecutive strike of the same symbol.

    Re-striking one chord over and over is the repetition the authors' rule penalises (threshold 4).
    """
    onset = chord_onsets(tokens)
    symbols = chord_symbols(tokens)
    b, t = tokens.shape
    run = torch.zeros(b, dtype=torch.long, device=tokens.device)
    last = torch.full((b,), -2, dtype=torch.long, device=tokens.device)
    out = torch.zeros(b, t, device=tokens.device)
    for i in range(t):  # a scan over frames, vectorised over the batch
        same = symbols[:, i] == last
        run = torch.where(onset[:, i], torch.where(same, run + 1, torch.ones_like(run)), run)
        run = torch.where(~same & ~onset[:, i], torch.zeros_like(run), run)
        last = torch.where(onset[:, i] | ~same, symbols[:, i], last)
        out[:, i] = (onset[:, i] & (run >= threshold)).float()
    return out


def unigram(tokens: np.ndarray, size: int = VOCAB_SIZE) -> np.ndarray:
    counts = np.bincount(np.asarray(tokens).ravel(), minlength=size).astype(np.float64)
    return counts / counts.sum()
