"""Per-frame rewards for a chord rollout: model-based (contrastive) plus rule-based terms.

ReaLchords §4.1 rewards the agent with reward models trained on real pairs and with rules that stop
degenerate accompaniment (authors' code: silence, repetition, early stop, invalid tokens). Invalid and early
stop cannot happen here (sampling is restricted to chord tokens, a rollout always covers the melody). We add
the note-in-chord harmony rule the issue asks for and a penalty on *rapid* chord changes: without it the
agent learns to change chord every frame to chase the last note (the hack our calibration found).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from realjam.model import ContrastiveReward
from realjam.tokens import (
    chord_changes,
    chord_symbols,
    in_chord,
    repeated_onsets,
    silent_against_melody,
)


@dataclass
class RewardWeights:
    harmony: float  # per frame whose sounding note is a chord tone
    contrastive: float  # cosine(melody, chords) of the contrastive model, paid on every frame
    silence: (
        float  # per silent frame against a sounding melody (when > silence_allowance of frames)
    )
    silence_allowance: float  # the authors' 4% of frames, first 8 frames exempt
    repeat: float  # per 4th+ consecutive strike of one chord
    change: float  # per chord change after a chord held fewer than min_hold frames
    min_hold: int  # "rapid": the previous chord lasted fewer frames than this


def frames_held(symbols: torch.Tensor) -> torch.Tensor:
    """How many frames the chord sounding before frame t had lasted when frame t began (``[B, T]``)."""
    b, t = symbols.shape
    held = torch.zeros(b, t, dtype=torch.long, device=symbols.device)
    run = torch.zeros(b, dtype=torch.long, device=symbols.device)
    for i in range(1, t):  # a scan over frames, vectorised over the batch
        continues = (
            symbols[:, i - 1] == symbols[:, i - 2] if i > 1 else torch.zeros_like(run).bool()
        )
        run = torch.where(continues, run + 1, torch.ones_like(run))
        held[:, i] = run
    return held


def reward_terms(
    pitches: torch.Tensor,
    chord_tokens: torch.Tensor,
    melody_tokens: torch.Tensor,
    weights: RewardWeights,
    contrastive: ContrastiveReward | None,
) -> dict[str, torch.Tensor]:
    """Each term per frame ``[B, T]`` (already weighted and signed); their sum is the reward of chord c_t."""
    symbols = chord_symbols(chord_tokens)
    sounding = (pitches >= 0).float()
    terms = {"harmony": weights.harmony * in_chord(pitches, symbols) * sounding}

    silent = silent_against_melody(pitches, symbols)
    silent[:, :8] = 0.0
    too_silent = (silent.mean(1, keepdim=True) > weights.silence_allowance).float()
    terms["silence"] = -weights.silence * silent * too_silent

    terms["repeat"] = -weights.repeat * repeated_onsets(chord_tokens)

    rapid = chord_changes(symbols) * (frames_held(symbols) < weights.min_hold).float()
    terms["change"] = -weights.change * rapid

    model_term = torch.zeros_like(sounding)
    if contrastive is not None and weights.contrastive != 0:
        with torch.no_grad():
            score = contrastive.score(melody_tokens, chord_tokens)
        # A sequence-level score, paid out evenly over the frames: a lump at the last frame would dominate
        # the normalised advantages and drown the per-frame rules (our calibration).
        model_term[:] = weights.contrastive * score[:, None]
    terms["contrastive"] = model_term
    return terms
