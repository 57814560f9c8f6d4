"""Likelihood evaluation of Coconet (spec 2.5).

Two estimators, with their normalisations named:

- ``masked_cell_nll``: the training objective on fixed crops and orderless masks; NLL *per masked sounding
  cell*, pooled over cells (the issue's ``valid/nll_per_masked_cell``) or binned by mask fraction. Its
  expectation over masks is the per-cell NLL of the chain rule under a uniformly random ordering.
- ``chain_rule_log_likelihood``: the exact log p(x) = sum_k log p(x_{o_k} | x_{o_<k}) along an ordering o
  (notewise: one cell per model call; framewise: frames in turn, voices in random order within a frame),
  ensembled over K orderings in probability space: log p_hat = logsumexp(l_1..l_K) - log K.
"""

from __future__ import annotations

import math

import torch

from coconet.model import Coconet, cell_nll, voices_to_roll


@torch.no_grad()
def masked_cell_nll(
    model: Coconet, voices: torch.Tensor, hidden: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """-log p(x_{t,i} | visible cells) for every cell ``[N, I, T]`` and which cells count ``[N, I, T]``.

    A cell counts when it is hidden and sounding (a rest has no pitch to score).
    """
    device = next(model.parameters()).device
    nlls = []
    for start in range(0, len(voices), batch_size):
        roll = voices_to_roll(voices[start : start + batch_size].to(device))
        known = ~hidden[start : start + batch_size].to(device)
        nlls.append(cell_nll(model(roll, known), roll).cpu())
    return torch.cat(nlls), hidden & (voices >= 0)


def pooled(nll: torch.Tensor, counted: torch.Tensor, examples: torch.Tensor | None = None) -> float:
    """Mean NLL over all counted cells (of the selected examples): every masked cell weighs the same."""
    if examples is not None:
        nll, counted = nll[examples], counted[examples]
    return float((nll * counted).sum() / counted.sum().clamp(min=1))


def per_example(nll: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Mean NLL over each example's counted cells ``[N]`` (the training loss's normalisation)."""
    return (nll * counted).sum((1, 2)) / counted.sum((1, 2)).clamp(min=1)


def binned_by_mask_fraction(
    nll: torch.Tensor, counted: torch.Tensor, hidden: torch.Tensor, bins: int = 10
) -> tuple[list[float], list[float], list[int]]:
    """Pooled NLL per mask-fraction bin: (bin centres, NLL, examples per bin); empty bins give nan."""
    fraction = hidden.float().mean((1, 2))
    which = (fraction * bins).long().clamp(max=bins - 1)
    centres, values, sizes = [], [], []
    for b in range(bins):
        chosen = which == b
        centres.append((b + 0.5) / bins)
        values.append(pooled(nll, counted, chosen) if chosen.any() else math.nan)
        sizes.append(int(chosen.sum()))
    return centres, values, sizes


def _orderings(
    batch: int, voices: int, time: int, kind: str, generator: torch.Generator
) -> torch.Tensor:
    """Cell orders ``[B, I*T]`` (flat index v*T + t): random, chronological, or frame-by-frame."""
    cells = voices * time
    if kind == "random":
        return torch.rand(batch, cells, generator=generator).argsort(1)
    # Frames in order (chronological) or in random order, voices in random order within each frame.
    if kind == "chronological":
        frame_order = torch.arange(time).expand(batch, time)
    elif kind == "frames":
        frame_order = torch.rand(batch, time, generator=generator).argsort(1)
    else:
        raise ValueError(f"ordering must be random, chronological or frames, got '{kind}'")
    voice_order = torch.rand(batch, time, voices, generator=generator).argsort(2)  # [B, T, I]
    frames = frame_order.unsqueeze(-1).expand(batch, time, voices)
    chosen_voices = voice_order.gather(1, frames)
    return (chosen_voices * time + frames).reshape(batch, cells)


@torch.no_grad()
def chain_rule_log_likelihood(
    model: Coconet,
    voices: torch.Tensor,
    orderings: int = 5,
    kind: str = "random",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ensembled log p_hat(x) ``[B]`` and the single-ordering log-likelihoods ``[K, B]``.

    ``voices`` ``[B, I, T]``; I*T model calls, each on a batch of K*B (example, ordering) pairs, each
    call revealing one more ground-truth cell. Rests are revealed as rests and contribute log 1 = 0.
    """
    generator = generator or torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    batch, n_voices, time = voices.shape
    roll = voices_to_roll(voices.to(device)).repeat(orderings, 1, 1, 1)  # [K*B, I, T, P]
    order = _orderings(orderings * batch, n_voices, time, kind, generator).to(device)
    known = torch.zeros(orderings * batch, n_voices * time, dtype=torch.bool, device=device)
    log_likelihood = torch.zeros(orderings * batch, device=device)
    rows = torch.arange(orderings * batch, device=device)
    for step in range(n_voices * time):
        cell = order[:, step]
        log_p = -cell_nll(model(roll, known.view(-1, n_voices, time)), roll)  # [K*B, I, T]
        log_likelihood += log_p.view(orderings * batch, -1)[rows, cell]
        known[rows, cell] = True
    single = log_likelihood.view(orderings, batch).cpu()
    return torch.logsumexp(single, 0) - math.log(orderings), single
