"""Generation (Sec. 3): sample code maps from a prior for given chord triplets, decode them to notes.

Chord-only conditioning samples every measure independently (its chords are all it sees). The spatial variant
conditions each measure on the codes of the previous *generated* measure, so a passage is generated bar by bar
(measures of equal depth in their passage in one batch).
"""

from __future__ import annotations

import numpy as np
import torch

from vqvae_recompose.data import image_to_voices
from vqvae_recompose.model import sample_codes


@torch.no_grad()
def decode(
    vqvae, codes: torch.Tensor, pitch_low: int, threshold: float = 0.5, batch: int = 512
) -> np.ndarray:
    """Code maps ``[N, H, W]`` -> voices ``[N, 4, 16]`` (likeliest pitch per voice and step, or rest)."""
    vqvae.eval()
    probs = torch.cat(
        [torch.sigmoid(vqvae.decode(codes[i : i + batch])) for i in range(0, len(codes), batch)]
    )
    return image_to_voices(probs, pitch_low, threshold)


def passage_depth(previous: np.ndarray) -> np.ndarray:
    """Position of each measure in its chain of consecutive bars (0 = no previous bar); measures come in
    piece and bar order, so a previous bar always has a smaller index."""
    previous = np.asarray(previous)
    if (previous >= np.arange(len(previous))).any():
        raise ValueError("measures must be in piece and bar order (previous[i] < i)")
    depth = np.zeros(len(previous), dtype=np.int64)
    for i in np.flatnonzero(previous >= 0):
        depth[i] = depth[previous[i]] + 1
    return depth


@torch.no_grad()
def sample_passages(
    prior, triplets, previous, shape, temperature=1.0, generator=None
) -> torch.Tensor:
    """Codes ``[N, H, W]`` for measures with chord ``triplets [N, 3]``; with a spatial prior each measure
    sees the codes generated for ``previous[i]`` (-1: none, the id K)."""
    triplets = torch.as_tensor(triplets)
    if not prior.spatial:
        return sample_codes(prior, triplets, shape, temperature, None, generator)
    previous = np.asarray(previous)
    depth = passage_depth(previous)
    codes = torch.zeros(len(triplets), *shape, dtype=torch.long)
    for d in range(depth.max() + 1):
        at = np.flatnonzero(depth == d)
        prev = torch.full((len(at), *shape), prior.codebook_size, dtype=torch.long)
        has = previous[at] >= 0
        if has.any():
            prev[torch.from_numpy(has)] = codes[torch.from_numpy(previous[at][has])]
        codes[torch.from_numpy(at)] = sample_codes(
            prior, triplets[at], shape, temperature, prev, generator
        )
    return codes
