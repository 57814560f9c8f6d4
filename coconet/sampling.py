"""Sampling from Coconet (arXiv 1903.07227, the Gibbs sampling section): ancestral, independent, and
annealed blocked Gibbs (Yao et al. 2014), and the harmonisation of a melody built on it.

All samplers fill the cells of ``region`` ``[B, I, T]`` (True = to be generated) of a pianoroll
``[B, I, T, P]`` and never touch the cells outside it, which are the conditioning context (a soprano to
harmonise, the two ends of an inpainting). Every random draw goes through an explicit generator.

- ancestral: one model call per cell; each call samples every unfilled cell but commits only one, chosen
  uniformly among them (the "orderless" selector), so it is exact sampling from the NADE under a random
  ordering -- whose early conditionals, with almost no context, are the worst-modelled ones;
- independent: one call, every cell of the block sampled at once from its conditional;
- blocked Gibbs: N rewrites; at step s each filled cell of the region is erased with probability p_s and the
  erased block refilled independently. The Yao schedule anneals the block size from p_max to p_min:
      p_s = max(p_min, p_max - (p_max - p_min) * s / (eta * N)).
"""

from __future__ import annotations

import torch

from coconet.model import Coconet
from common.music import N_VOICES, REST, pianoroll_to_voices, voices_to_pianoroll


def _sample_pitches(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One-hot draws ``[B, I, T, P]`` from softmax(logits / temperature) over pitch."""
    probs = torch.softmax(logits / temperature, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    draws = torch.multinomial(flat.cpu(), 1, generator=generator).to(logits.device)
    return torch.zeros_like(flat).scatter_(1, draws, 1.0).view_as(probs)


@torch.no_grad()
def independent_sample(
    model: Coconet,
    roll: torch.Tensor,
    block: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Resample every cell of ``block`` ``[B, I, T]`` at once, given the rest of ``roll``."""
    draws = _sample_pitches(model(roll, ~block), temperature, generator)
    return torch.where(block.unsqueeze(-1), draws, roll)


@torch.no_grad()
def ancestral_sample(
    model: Coconet,
    roll: torch.Tensor,
    region: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fill ``region`` one uniformly chosen cell per model call (as many calls as the largest region)."""
    roll = roll.clone()
    unfilled = region.clone()
    batch = roll.shape[0]
    rows = torch.arange(batch, device=roll.device)
    for _ in range(int(region.flatten(1).sum(1).max())):
        draws = _sample_pitches(model(roll, ~unfilled), temperature, generator)
        # Pick one unfilled cell per example uniformly: the argmax of random scores over unfilled cells.
        scores = torch.rand(unfilled.shape, generator=generator).to(roll.device)
        scores = torch.where(unfilled, scores, torch.full_like(scores, -1.0)).flatten(1)
        cell = scores.argmax(1)
        commit = torch.zeros_like(unfilled).flatten(1)
        commit[rows, cell] = unfilled.flatten(1)[rows, cell]  # examples already full commit nothing
        commit = commit.view_as(unfilled)
        roll = torch.where(commit.unsqueeze(-1), draws, roll)
        unfilled &= ~commit
    return roll


def yao_schedule(step: int, total: int, pmax: float, pmin: float, eta: float) -> float:
    """Yao et al.'s truncated linear annealing of the block fraction (the paper's Gibbs sampling section)."""
    return max(pmin, pmax - (pmax - pmin) * step / (eta * total))


@torch.no_grad()
def gibbs_sample(
    model: Coconet,
    roll: torch.Tensor,
    region: torch.Tensor,
    steps: int,
    pmax: float = 0.9,
    pmin: float = 0.1,
    eta: float = 0.7,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    trace: list | None = None,
) -> torch.Tensor:
    """Independent blocked Gibbs with the Yao schedule over ``region``.

    The region is first filled by one independent pass (everything in it unknown); then ``steps``
    rewrites. ``trace``, if given, receives a copy of the roll after every rewrite.
    """
    if not 0 < pmin <= pmax <= 1:
        raise ValueError(f"need 0 < pmin <= pmax <= 1, got pmin={pmin}, pmax={pmax}")
    roll = independent_sample(model, roll, region, temperature, generator)
    for step in range(steps):
        p = yao_schedule(step, steps, pmax, pmin, eta)
        block = torch.rand(region.shape, generator=generator).to(roll.device) < p
        roll = independent_sample(model, roll, block & region, temperature, generator)
        if trace is not None:
            trace.append(roll.clone())
    return roll


def harmonize(
    model: Coconet,
    melodies: torch.Tensor,
    steps: int,
    temperature: float,
    generator: torch.Generator,
    pmax: float = 0.9,
    pmin: float = 0.1,
    eta: float = 0.7,
) -> torch.Tensor:
    """Four-voice harmonisations ``[S, 4, T]`` (MIDI pitches) of soprano lines ``melodies`` ``[S, T]``.

    The soprano is the context; alto, tenor and bass are the region that annealed blocked Gibbs fills
    (the paper's harmonisation use case). Where the melody rests, so does nothing else: every frame of
    the lower voices is generated.
    """
    device = next(model.parameters()).device
    voices = torch.full((len(melodies), N_VOICES, melodies.shape[-1]), REST, dtype=torch.long)
    voices[:, 0] = melodies
    region = torch.zeros(voices.shape, dtype=torch.bool, device=device)
    region[:, 1:] = True
    roll = voices_to_pianoroll(voices).to(device)
    filled = gibbs_sample(model, roll, region, steps, pmax, pmin, eta, temperature, generator)
    return pianoroll_to_voices(filled).cpu()
