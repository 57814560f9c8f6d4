"""Non-learned yardsticks scored exactly like the model: NLL per masked sounding cell.

- uniform: log 46 per cell;
- per-voice unigram: each voice's pitch frequencies on the training pieces;
- copy the nearest visible note (the issue's baseline): predict the pitch of the nearest known, sounding
  cell in the same voice (both neighbours when they are equally near), smoothed onto nearby pitches and
  the voice's unigram:
      p(x) = w_d copy(x) + (1 - w_d) (lambda_d kernel_s(x - copied pitch) + (1 - lambda_d) unigram_i(x)),
  d the distance in sixteenths to that neighbour (tuned separately where the neighbours on both sides
  agree on the pitch, as inside a held note), kernel_s a Laplace kernel of scale s semitones. The
  smoothing (w_d, lambda_d per distance, s) is tuned on training crops by maximum likelihood (grid
  searches), so the baseline is as strong as its form allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from common.music import N_PITCHES, N_VOICES, PITCH_LOW


def unigram(pieces: list[np.ndarray], smoothing: float = 0.5) -> torch.Tensor:
    """Per-voice pitch distribution ``[I, P]`` over the pieces' sounding cells (add-``smoothing``)."""
    counts = np.full((N_VOICES, N_PITCHES), smoothing)
    for piece in pieces:
        for voice in range(N_VOICES):
            pitches = piece[voice][piece[voice] >= 0] - PITCH_LOW
            counts[voice] += np.bincount(pitches, minlength=N_PITCHES)[:N_PITCHES]
    return torch.from_numpy(counts / counts.sum(1, keepdims=True)).float()


def _nearest_visible(voices: torch.Tensor, hidden: torch.Tensor):
    """For every cell, the nearest known sounding cell to its left and right in the same voice.

    Returns (left pitch, left distance, right pitch, right distance), each ``[N, I, T]``; the distance is
    ``inf`` where there is no such cell.
    """
    time = voices.shape[-1]
    visible = ~hidden & (voices >= 0)
    position = torch.arange(time).expand_as(voices)
    left = torch.where(visible, position, torch.full_like(position, -1)).cummax(-1).values
    right_flipped = torch.where(visible, position, torch.full_like(position, time)).flip(-1)
    right = right_flipped.cummin(-1).values.flip(-1)
    left_pitch = voices.gather(-1, left.clamp(min=0))
    right_pitch = voices.gather(-1, right.clamp(max=time - 1))
    inf = torch.tensor(math.inf)
    left_dist = torch.where(left >= 0, (position - left).float(), inf)
    right_dist = torch.where(right < time, (right - position).float(), inf)
    return left_pitch, left_dist, right_pitch, right_dist


@dataclass
class CopyNeighbour:
    """The tuned copy-the-nearest-visible-note baseline (module docstring)."""

    unigram: torch.Tensor  # [I, P]
    # Per bucket: distance d = 1..max_distance (0 = no visible note), then the same distances again for
    # cells whose two neighbours agree on the pitch; 2 (max_distance + 1) buckets.
    weights: torch.Tensor  # copy mass w_d per bucket (0 where there is no visible note)
    near_share: torch.Tensor  # lambda_d per bucket, the rest's share on nearby pitches
    spread: float = 2.0  # s: scale (semitones) of the Laplace kernel around the copied pitch

    @staticmethod
    def _features(voices, hidden, unigram_probs, max_d: int, spread: float):
        """Per scored cell: distance bucket and the copy, kernel and unigram mass on the true pitch."""
        left_pitch, left_dist, right_pitch, right_dist = _nearest_visible(voices, hidden)
        distance = torch.minimum(left_dist, right_dist)
        # Both neighbours when they are equally near (inf == inf gives no neighbour: w_0 = 0 anyway).
        use_left = (left_dist <= right_dist).float()
        use_right = (right_dist <= left_dist).float()
        share = use_left + use_right

        def kernel(pitch):  # Laplace kernel around ``pitch``, normalised over the 46 pitches
            offsets = torch.arange(N_PITCHES) + PITCH_LOW - pitch.unsqueeze(-1).float()
            weights = (-offsets.abs() / spread).exp()
            true_index = (voices - PITCH_LOW).clamp(0, N_PITCHES - 1).unsqueeze(-1)
            return (weights.gather(-1, true_index) / weights.sum(-1, keepdim=True)).squeeze(-1)

        copy_mass = (
            use_left * (left_pitch == voices) + use_right * (right_pitch == voices)
        ) / share
        kernel_mass = (use_left * kernel(left_pitch) + use_right * kernel(right_pitch)) / share
        bucket = torch.where(distance.isinf(), 0, distance.clamp(max=max_d)).long()
        # A cell between two visible notes of the same pitch is most likely that held note: such
        # cells get their own smoothing, buckets max_d + 1 .. 2 max_d + 1.
        agree = right_dist.isfinite() & left_dist.isfinite() & (left_pitch == right_pitch)
        bucket = bucket + agree.long() * (max_d + 1)
        pitch_index = (voices - PITCH_LOW).clamp(0, N_PITCHES - 1)
        unigram_mass = (
            unigram_probs.gather(1, pitch_index.permute(1, 0, 2).reshape(N_VOICES, -1))
            .view(N_VOICES, voices.shape[0], voices.shape[2])
            .permute(1, 0, 2)
        )
        scored = hidden & (voices >= 0)
        return bucket[scored], copy_mass[scored], kernel_mass[scored], unigram_mass[scored]

    @staticmethod
    def _probability(w, lam, copy_mass, kernel_mass, unigram_mass):
        # p(x) = w_d copy(x) + (1 - w_d) (lambda_d kernel(x) + (1 - lambda_d) unigram_i(x))
        return w * copy_mass + (1 - w) * (lam * kernel_mass + (1 - lam) * unigram_mass)

    @classmethod
    def fit(
        cls,
        voices: torch.Tensor,
        hidden: torch.Tensor,
        unigram_probs: torch.Tensor,
        max_distance: int = 16,
        spreads: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    ) -> CopyNeighbour:
        """Tune s, w_d and lambda_d by maximum likelihood on (training) crops ``[N, I, T]`` + masks.

        For each spread s a grid search over (w_d, lambda_d) per distance d (exact: the distances do
        not interact), then the s with the best total log-likelihood.
        """
        w_grid, lam_grid = torch.linspace(0.0, 0.99, 67), torch.linspace(0.0, 1.0, 11)
        best = (-math.inf, None)
        for spread in spreads:
            bucket, copy_mass, kernel_mass, unigram_mass = cls._features(
                voices, hidden, unigram_probs, max_distance, spread
            )
            weights, shares = torch.zeros(2 * max_distance + 2), torch.zeros(2 * max_distance + 2)
            total = float(unigram_mass[bucket == 0].log().sum())  # no neighbour: unigram alone
            for d in range(1, 2 * max_distance + 2):
                here = bucket == d
                if not here.any():
                    continue
                p = cls._probability(
                    w_grid[:, None, None], lam_grid[None, :, None],
                    copy_mass[here], kernel_mass[here], unigram_mass[here],
                )  # fmt: skip
                log_lik = p.log().sum(-1)  # [w, lambda]
                flat = int(log_lik.argmax())
                weights[d], shares[d] = (
                    w_grid[flat // len(lam_grid)],
                    lam_grid[flat % len(lam_grid)],
                )
                total += float(log_lik.max())
            if total > best[0]:
                best = (total, cls(unigram_probs, weights, shares, spread))
        return best[1]

    def cell_nll(self, voices: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """-log p of every masked sounding cell, flattened ``[cells]``."""
        max_distance = len(self.weights) // 2 - 1
        bucket, copy_mass, kernel_mass, unigram_mass = self._features(
            voices, hidden, self.unigram, max_distance, self.spread
        )
        p = self._probability(
            self.weights[bucket], self.near_share[bucket], copy_mass, kernel_mass, unigram_mass
        )
        return -p.log()


def unigram_cell_nll(voices: torch.Tensor, hidden: torch.Tensor, unigram_probs: torch.Tensor):
    """-log unigram_i(x) of every masked sounding cell, flattened ``[cells]``."""
    no_copy = CopyNeighbour(unigram_probs, weights=torch.zeros(4), near_share=torch.zeros(4))
    return no_copy.cell_nll(voices, hidden)
