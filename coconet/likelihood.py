"""Likelihood evaluation of Coconet (arXiv 1903.07227, the log-likelihood evaluation section).

Two estimators, with their normalisations named:

- ``masked_cell_nll``: the training objective on fixed crops and orderless masks; NLL *per masked sounding
  cell*, pooled over cells (the issue's ``valid/nll_per_masked_cell``) or binned by mask fraction. Its
  expectation over masks is the per-cell NLL of the chain rule under a uniformly random ordering.
- ``chain_rule_cell_log_probs``: the exact log p(x) = sum_k log p(x_{o_k} | x_{o_<k}) along an ordering o
  (random cells; or frames in turn, voices in random order within a frame), one cell per model call,
  ensembled over K orderings in probability space: log p_hat = logsumexp(l_1..l_K) - log K, over the
  whole example (a proper likelihood of the mixture) or per unit (the authors' released ensembling evaluator);
- ``framewise_paper_log_probs``: the authors' released framewise evaluator with its quirk (voices already predicted in
  the current frame are filled with the model's argmax, not the ground truth).
"""

from __future__ import annotations

import math

import torch

from coconet.model import Coconet, cell_nll
from common.music import voices_to_pianoroll


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
        roll = voices_to_pianoroll(voices[start : start + batch_size].to(device))
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


def _predict_log_probs(model: Coconet, roll: torch.Tensor, known: torch.Tensor, batch_size: int):
    """log p(x_{t,i} = true pitch | known) per cell ``[N, I, T]``, in chunks of ``batch_size``."""
    return torch.cat(
        [
            -cell_nll(
                model(roll[i : i + batch_size], known[i : i + batch_size]), roll[i : i + batch_size]
            )
            for i in range(0, len(roll), batch_size)
        ]
    )


@torch.no_grad()
def chain_rule_cell_log_probs(
    model: Coconet,
    voices: torch.Tensor,
    orderings: int = 5,
    kind: str = "random",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """log p(x_{o_k} | x_{o_<k}) of every cell along K orderings: ``[K, B, I, T]``.

    ``voices`` ``[B, I, T]``; I*T model calls, each on the K*B (ordering, example) pairs, each call
    revealing one more ground-truth cell. Rests are revealed as rests and contribute log 1 = 0.
    """
    generator = generator or torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    batch, n_voices, time = voices.shape
    pairs = orderings * batch
    roll = voices_to_pianoroll(voices.to(device)).repeat(orderings, 1, 1, 1)  # [K*B, I, T, P]
    order = _orderings(pairs, n_voices, time, kind, generator).to(device)
    known = torch.zeros(pairs, n_voices * time, dtype=torch.bool, device=device)
    cell_log_p = torch.zeros(pairs, n_voices * time, device=device)
    rows = torch.arange(pairs, device=device)
    for step in range(n_voices * time):
        cell = order[:, step]
        log_p = _predict_log_probs(model, roll, known.view(-1, n_voices, time), batch_size)
        cell_log_p[rows, cell] = log_p.view(pairs, -1)[rows, cell]
        known[rows, cell] = True
    return cell_log_p.view(orderings, batch, n_voices, time).cpu()


def ensemble(log_p: torch.Tensor) -> torch.Tensor:
    """Average K orderings' likelihoods in probability space: logsumexp over dim 0, minus log K."""
    return torch.logsumexp(log_p, 0) - math.log(log_p.shape[0])


def chain_rule_log_likelihood(
    model: Coconet,
    voices: torch.Tensor,
    orderings: int = 5,
    kind: str = "random",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ensembled log p_hat(x) ``[B]`` (a mixture over orderings: a proper likelihood of the whole
    example) and the single-ordering log-likelihoods ``[K, B]``."""
    single = chain_rule_cell_log_probs(model, voices, orderings, kind, generator).sum((2, 3))
    return ensemble(single), single


@torch.no_grad()
def framewise_paper_log_probs(
    model: Coconet,
    voices: torch.Tensor,
    orderings: int = 5,
    chronological: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """The released code's framewise evaluator ("paper-faithful"): log-likelihood of each frame ``[K, B, T]``.

    Frames in random (or chronological) order; frame j is predicted knowing the ground truth of the
    frames before it, voice by voice in random order, where the voices already predicted in the frame
    are filled with the model's *argmax*, not the ground truth (the quirk). All frames of all (ordering,
    example) pairs form one batch, so it takes I model calls.
    """
    generator = generator or torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    batch, n_voices, time = voices.shape
    pairs = orderings * batch
    if chronological:
        frame_order = torch.arange(time).expand(pairs, time)
    else:
        frame_order = torch.rand(pairs, time, generator=generator).argsort(1)
    rank = frame_order.argsort(1)  # rank[p, t]: when frame t comes in pair p's ordering
    voice_order = torch.rand(pairs, time, n_voices, generator=generator).argsort(2)  # [pairs, j, I]
    # One example per (pair, position j): it knows the frames ranked before j and predicts frame_order[j].
    known_frames = rank[:, None, :] < torch.arange(time)[None, :, None]  # [pairs, j, t]
    known = (
        known_frames[:, :, None, :].expand(pairs, time, n_voices, time).reshape(-1, n_voices, time)
    )
    known = known.clone().to(device)
    truth = voices_to_pianoroll(voices.to(device)).repeat(orderings, 1, 1, 1)  # [pairs, I, T, P]
    truth = truth.repeat_interleave(time, dim=0)  # [pairs * T, I, T, P]
    scratch = truth.clone()
    rows = torch.arange(pairs * time, device=device)
    frame = frame_order.reshape(-1).to(device)
    frame_log_p = torch.zeros(pairs * time, device=device)
    for d in range(n_voices):
        voice = voice_order.reshape(-1, n_voices)[:, d].to(device)
        logits = torch.cat(
            [
                model(scratch[i : i + batch_size], known[i : i + batch_size])
                for i in range(0, len(scratch), batch_size)
            ]
        )
        log_p = -cell_nll(logits, truth)  # scored against the ground truth
        frame_log_p += log_p[rows, voice, frame]
        best = logits[rows, voice, frame].argmax(-1)
        scratch[rows, voice, frame] = torch.nn.functional.one_hot(best, scratch.shape[-1]).to(
            scratch.dtype
        )
        known[rows, voice, frame] = True
    # Position j predicted frame_order[j]: put each frame's log-likelihood back in time order.
    by_position = frame_log_p.view(pairs, time).cpu()
    by_time = torch.zeros_like(by_position).scatter_(1, frame_order, by_position)
    return by_time.view(orderings, batch, time)
