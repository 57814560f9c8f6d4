"""Coconet (Huang et al., *Counterpoint by Convolution*, ISMIR 2017, arXiv 1903.07227): a convolutional
orderless NADE over four-voice pianorolls.

One network gives p(x_{t,i} | x_C) for every (time, voice) cell given any set C of known cells ("fill in
any erased notes given the rest"). The paper's model, in the order it happens:

- the pianoroll (paper, "Model" section): a score is ``[B, I, T, P]`` (I = 4 voices S, A, T, B; T sixteenth
  steps; P = 46 pitches, MIDI 36..81, from ``common.music``); a rest is the all-zero pitch vector;
- the input: concat(roll * known, known) -> 2I channels, the mask saying "known" (as the authors' released
  code does), so the convolution's zero padding beyond the score reads as unknown;
- the residual CNN: conv 3x3, (L-3) x conv 3x3, conv 2x2, conv 2x2 -> I logits planes, batch norm after
  every conv, a skip connection every second layer ("Model" section);
- the orderless mask distribution: k ~ U{1..D} of D = T*I cells masked uniformly (Uria et al.'s orderless
  NADE training, the paper's "Orderless modelling" section);
- the loss: the orderless-NADE estimator, the mean NLL over an example's masked cells, which equals the
  paper's D/k rescaled sum over D cells without its trivial visible-cell term.

Ours, not the paper's (``pitch_channel=True``): one more input plane holding each pitch row's absolute pitch.
The convolution is equivariant in pitch, so without it a net that sees only a few semitones knows a voice's
register only from the padding at the ends of the pitch axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.music import N_PITCHES, N_VOICES


# ---------------------------------------------------------------------------------------------- masks
def orderless_mask(
    batch: int, voices: int, time: int, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Uria et al.'s orderless-NADE training masks, ``[B, I, T]`` bool, True = hidden (to predict).

    Per example k ~ U{1..D} with D = I*T, then k distinct cells uniformly: the same distribution as
    "draw a random ordering and a random position in it; hide everything from there on" (the paper's
    orderless-modelling section, after Uria et al. 2014).
    """
    cells = voices * time
    k = torch.randint(1, cells + 1, (batch, 1), generator=generator, device=device)
    # The rank of a cell under i.i.d. uniform scores is a uniformly random permutation position.
    scores = torch.rand(batch, cells, generator=generator, device=device)
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < k).view(batch, voices, time)


# ---------------------------------------------------------------------------------------------- network
class Coconet(nn.Module):
    """The "straight" residual CNN of the paper's model section (as in the authors' released code), on
    ``[B, 2I, T, P]`` inputs (``[B, 2I + 1, T, P]`` with the pitch channel).

    Convolutions run over (time, pitch) with the voices as channels, so every output cell sees a
    window of neighbouring steps and pitches of all four voices; depth L grows that window.
    """

    def __init__(
        self,
        layers: int = 64,
        filters: int = 128,
        bn_momentum: float = 0.1,
        pitch_channel: bool = False,
    ):
        super().__init__()
        if layers < 4:
            raise ValueError(
                f"Coconet needs at least 4 layers (3x3 in, 3x3 body, 2x2, 2x2), got {layers}"
            )
        if filters < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        self.layers, self.filters, self.pitch_channel = layers, filters, pitch_channel
        # conv 3x3 (2I -> F); (L - 3) x conv 3x3 (F -> F); conv 2x2 (F -> F); conv 2x2 (F -> I).
        shapes = [(2 * N_VOICES + int(pitch_channel), filters, 3)]
        shapes += [(filters, filters, 3)] * (layers - 3)
        shapes += [(filters, filters, 2), (filters, N_VOICES, 2)]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=k // 2 if k % 2 else 0, bias=False)
            for c_in, c_out, k in shapes
        )
        # SAME padding for the even 2x2 kernels puts the extra zero after the score, as TF does.
        self.pads = [(0, 0, 0, 0) if k % 2 else (0, k - 1, 0, k - 1) for _, _, k in shapes]
        # BN after every conv, last included; the released code's decay 0.99 is momentum 0.01 in torch
        # terms, 0.1 converges faster for short runs.
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(c_out, eps=1e-7, momentum=bn_momentum) for _, c_out, _ in shapes
        )
        for conv, norm in zip(self.convs, self.norms):
            # He-normal, std sqrt(2 / fan_in)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.constant_(norm.weight, 0.1)  # BN gamma 0.1: residual branches start small
            nn.init.zeros_(norm.bias)
        # Each pitch row's absolute pitch, -1 (MIDI 36) .. 1 (MIDI 81): a constant plane, not a parameter.
        self.register_buffer(
            "pitch_coordinate", torch.linspace(-1.0, 1.0, N_PITCHES), persistent=False
        )

    @classmethod
    def from_config(cls, model_cfg) -> Coconet:
        """The network a config's ``model`` section describes."""
        return cls(
            model_cfg.layers,
            model_cfg.filters,
            bn_momentum=model_cfg.bn_momentum,
            pitch_channel=model_cfg.get("pitch_channel", False),
        )

    def forward(self, roll: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Pitch logits ``[B, I, T, P]`` from a roll ``[B, I, T, P]`` and known cells ``[B, I, T]``.

        Hidden cells are zeroed *here*, so no caller can leak them: the output depends on ``roll`` only
        through ``roll * known``.
        """
        if roll.dim() != 4 or roll.shape[1] != N_VOICES or roll.shape[3] != N_PITCHES:
            raise ValueError(
                f"roll must be [batch, {N_VOICES}, time, {N_PITCHES}], got {tuple(roll.shape)}"
            )
        if known.shape != roll.shape[:3]:
            raise ValueError(
                f"known must be [batch, voices, time] = {tuple(roll.shape[:3])}, got {tuple(known.shape)}"
            )
        # One flag per (voice, time), broadcast over pitch.
        known = known.to(roll.dtype).unsqueeze(-1)
        planes = [roll * known, known.expand_as(roll)]  # [B, 2I, T, P]
        if self.pitch_channel:  # ours: where on the pitch axis each row is
            planes.append(self.pitch_coordinate.expand(roll.shape[0], 1, roll.shape[2], N_PITCHES))
        x = torch.cat(planes, dim=1)
        last = len(self.convs) - 1
        skip = None
        for i, (conv, norm, pad) in enumerate(zip(self.convs, self.norms, self.pads)):
            h = norm(conv(F.pad(x, pad)))
            # Residual every second layer, never on the first or last (channel counts differ there).
            if 0 < i < last and i % 2 == 0 and skip is not None and skip.shape == h.shape:
                h = h + skip
            if i % 2 == 1:
                skip = x if x.shape[1] == h.shape[1] else None  # input of this layer, added two on
            x = h if i == last else F.relu(h)
        return x  # [B, I, T, P]; a softmax over the last (pitch) axis gives p(x_{t,i} | x_C)


# ---------------------------------------------------------------------------------------------- loss
def cell_nll(logits: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """-log p(x_{t,i} | x_C) per cell ``[B, I, T]``; 0 for rests (the all-zero target has no class)."""
    return -(F.log_softmax(logits, dim=-1) * roll).sum(-1)


def orderless_nade_loss(
    logits: torch.Tensor, roll: torch.Tensor, hidden: torch.Tensor
) -> torch.Tensor:
    """The orderless-NADE training loss (the paper's orderless-modelling section): L_b = (1/k_b) sum_{masked (t,i)} -log p(x_{t,i} | x_C).

    Averaged over the batch. k_b counts the example's masked *sounding* cells (rests, about 1% of cells,
    carry no pitch to predict), so every example weighs the same whatever its mask size: the D/k rescaling
    that makes this an unbiased estimate of the NADE log-likelihood per variable.
    """
    sounding = roll.sum(-1) > 0
    scored = (hidden & sounding).to(logits.dtype)  # [B, I, T]
    nll_sum = (cell_nll(logits, roll) * scored).sum(dim=(1, 2))
    k = scored.sum(dim=(1, 2)).clamp(min=1.0)
    return (nll_sum / k).mean()
