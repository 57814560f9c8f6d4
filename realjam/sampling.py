"""Sampling with a KV cache, and the live API a ReaLJam server calls: plan chords, anticipate the melody.

ReaLJam (arXiv 2502.21267 §3.2): the client owns the clock and asks the agent, every so often, for a
*plan*: chords for the next ``lookahead`` frames. Chords inside the commit window (already promised to
the player) are teacher-forced, never resampled; the agent samples the rest together with the melody it
expects the user to play (its anticipation). One incremental step per token: a prompt is prefilled once,
then each new token attends to the cached keys and values of all earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from realjam.model import OnlineModel, Teacher
from realjam.tokens import (
    BOS,
    chord_onsets,
    chord_symbol_name,
    chord_symbol_pitches,
    chord_symbols,
    interleave,
    melody_pitches,
)

FREE = -1  # in a forced-token array: "sample this one"


def _draw(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def sample_online(
    model: OnlineModel,
    n_frames: int,
    melody: torch.Tensor | None = None,
    chords: torch.Tensor | None = None,
    prompt: torch.Tensor | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Continue ``prompt`` (``[B, L]``, default BOS) by ``n_frames`` frames of chord + melody tokens.

    ``melody`` / ``chords`` (``[B, n_frames]``) force tokens where >= 0 and leave FREE ones to the model:
    RL rollouts force the whole melody, a live plan forces the committed chords. Returns (chord tokens,
    melody tokens), each ``[B, n_frames]``.
    """
    batch = (melody if melody is not None else chords if chords is not None else prompt).shape[0]
    device = next(model.parameters()).device
    if prompt is None:
        prompt = torch.full((batch, 1), BOS, dtype=torch.long, device=device)
    melody = (
        torch.full((batch, n_frames), FREE, device=device) if melody is None else melody.to(device)
    )
    chords = (
        torch.full((batch, n_frames), FREE, device=device) if chords is None else chords.to(device)
    )
    cache = model.new_cache()
    logits = model(prompt.to(device), cache)[:, -1]  # predicts the first chord
    out_chords, out_melody = [], []
    for t in range(n_frames):
        c = torch.where(chords[:, t] >= 0, chords[:, t], _draw(logits, temperature, generator))
        out_chords.append(c)
        if bool((melody[:, t] >= 0).all()):  # melody known: feed chord and note in one step
            m = melody[:, t]
            if t + 1 < n_frames:
                logits = model(torch.stack([c, m], 1), cache)[:, -1]
        else:
            logits = model(c[:, None], cache)[:, -1]
            m = torch.where(melody[:, t] >= 0, melody[:, t], _draw(logits, temperature, generator))
            if t + 1 < n_frames:
                logits = model(m[:, None], cache)[:, -1]
        out_melody.append(m)
    return torch.stack(out_chords, 1), torch.stack(out_melody, 1)


@torch.no_grad()
def sample_teacher(
    teacher: Teacher,
    melody_tokens: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Chords for a whole melody ``[B, T]``, written left to right with the whole melody in view."""
    memory = teacher.encode(melody_tokens)
    cache = teacher.new_cache()
    token = torch.full_like(melody_tokens[:, :1], BOS)
    out = []
    for _ in range(melody_tokens.shape[1]):
        logits = teacher(token, memory, cache)[:, -1]
        token = _draw(logits, temperature, generator)[:, None]
        out.append(token[:, 0])
    return torch.stack(out, 1)


@dataclass
class Plan:
    """What the agent answers a live request with (frames ``start .. start + lookahead - 1``)."""

    start: int
    chord_tokens: list[int]
    melody_tokens: list[int]  # the melody the agent anticipates from the user

    def chords(self) -> list[dict]:
        """Decoded chords for the client: symbol name, pitches to sound, onset flag."""
        tokens = torch.tensor(self.chord_tokens)[None]
        symbols, onsets = chord_symbols(tokens)[0].tolist(), chord_onsets(tokens)[0].tolist()
        return [
            {"symbol": chord_symbol_name(s), "pitches": chord_symbol_pitches(s), "onset": bool(o)}
            for s, o in zip(symbols, onsets)
        ]

    def anticipated_pitches(self) -> list[int]:
        return melody_pitches(torch.tensor(self.melody_tokens)).tolist()


class Agent:
    """The online model (and optionally the teacher) behind a live jam; stateless between requests."""

    def __init__(self, model: OnlineModel, teacher: Teacher | None = None):
        self.model, self.teacher = model.eval(), teacher.eval() if teacher is not None else None
        self.max_frames = (model.max_tokens - 1) // 2

    @torch.no_grad()
    def plan(
        self,
        melody_tokens: list[int],
        chord_tokens: list[int],
        lookahead: int,
        commit: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Plan:
        """Plan chords for frames ``[frame, frame + lookahead)``, ``frame = len(melody_tokens)``.

        ``melody_tokens``: the user's melody so far, one token per frame (0..frame-1).
        ``chord_tokens``: the chords already played (0..frame-1) followed by the current plan; its first
        ``commit`` future frames are kept as they are (the commit window), the rest are re-planned.
        """
        frame = len(melody_tokens)
        if len(chord_tokens) < frame:
            raise ValueError(
                f"chord history ({len(chord_tokens)}) is shorter than the melody ({frame})"
            )
        if not 0 < lookahead < self.max_frames:
            raise ValueError(f"lookahead must be in 1..{self.max_frames - 1}, got {lookahead}")
        # Context: the last (max_frames - lookahead) frames, starting on a beat like the training crops.
        start = max(frame - (self.max_frames - lookahead), 0)
        start += (-start) % 4
        device = next(self.model.parameters()).device
        history_c = torch.tensor(chord_tokens[start:frame], dtype=torch.long, device=device)[None]
        history_m = torch.tensor(melody_tokens[start:frame], dtype=torch.long, device=device)[None]
        prompt = interleave(history_c, history_m)
        committed = chord_tokens[frame : frame + min(commit, lookahead)]
        forced = torch.full((1, lookahead), FREE, dtype=torch.long, device=device)
        if committed:
            forced[0, : len(committed)] = torch.tensor(committed, device=device)
        chords, melody = sample_online(
            self.model,
            lookahead,
            chords=forced,
            prompt=prompt,
            temperature=temperature,
            generator=generator,
        )
        return Plan(frame, chords[0].tolist(), melody[0].tolist())

    @torch.no_grad()
    def intro(self, melody_tokens: list[int], temperature: float = 1.0) -> list[int]:
        """Chords for an intro the agent sat out, written by the offline teacher with the whole intro in view."""
        if self.teacher is None or not melody_tokens:
            return []
        device = next(self.teacher.parameters()).device
        melody = torch.tensor(melody_tokens[-self.max_frames :], dtype=torch.long, device=device)[
            None
        ]
        return sample_teacher(self.teacher, melody, temperature)[0].tolist()
