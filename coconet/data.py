"""The chorale splits and Coconet's fixed validation crops; the corpus, pianorolls and random training
crops themselves are ``common.music``'s (``load_chorales``, ``voices_to_pianoroll``, ``random_crops``).

A piece is an int array ``[4, T]`` of MIDI pitches (REST = -1) at sixteenth-note resolution; a batch is a
torch int tensor ``[B, 4, crop_len]``. Validation uses a fixed set of crops and orderless masks drawn from
their own seed (as the authors' released code does), so every validation of every run scores exactly the
same cells.
"""

from __future__ import annotations

import numpy as np
import torch

from coconet.model import orderless_mask
from common.music import N_VOICES, load_chorales


def load_split(split: str, limit: int = 0) -> list[np.ndarray]:
    """The four-part chorales of one split (``train``/``valid``/``test``) as ``[4, T]`` int arrays;
    ``limit`` > 0 keeps the first ``limit`` of them."""
    pieces = [np.asarray(p, dtype=np.int64) for p in load_chorales(split)]
    pieces = pieces[:limit] if limit > 0 else pieces
    if not pieces:
        raise ValueError(f"common.music returned no chorales for split '{split}'")
    return pieces


def check_pieces(pieces: list[np.ndarray], crop_len: int) -> list[np.ndarray]:
    """Keep the pieces a crop fits in; a wrong shape is an error naming the piece."""
    for n, piece in enumerate(pieces):
        if piece.ndim != 2 or piece.shape[0] != N_VOICES:
            raise ValueError(f"piece {n} must be [{N_VOICES}, time], got shape {piece.shape}")
    kept = [p for p in pieces if p.shape[1] >= crop_len]
    if not kept:
        raise ValueError(f"no piece is at least crop_len={crop_len} sixteenths long")
    return kept


def fixed_masked_crops(
    pieces: list[np.ndarray], per_piece: int, crop_len: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_piece`` crops of every piece with orderless masks, all from ``seed``.

    Returns voices ``[N, 4, crop_len]`` and hidden ``[N, 4, crop_len]`` (True = to predict).
    """
    rng = np.random.default_rng(seed)
    crops = []
    for piece in pieces:
        starts = rng.integers(piece.shape[1] - crop_len + 1, size=per_piece)
        crops.extend(piece[:, s : s + crop_len] for s in starts)
    voices = torch.from_numpy(np.stack(crops).astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    hidden = orderless_mask(len(crops), N_VOICES, crop_len, generator=generator)
    return voices, hidden
