"""Harmonic recomposition (Kastner et al., arXiv 1811.07426): a VQ-VAE over measures and a conditional
gated PixelCNN prior over its codes.

    Stage 1 (Sec. 2, VQ-VAE, van den Oord et al. 2017):
        z_e = Enc(x)                          x: one measure, [4 voices, 52 pitches, 16 sixteenths], binary
        k   = argmin_j ||z_e - e_j||           per latent cell of the 13 x 4 map
        z_q = e_k   (straight-through: the decoder's gradient is copied onto z_e)
        L   = sum_v BCE_v(Dec(z_q), x) + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2,   beta = 0.25
    Stage 2 (Sec. 2, gated conditional PixelCNN, van den Oord et al. 2016):
        p(k | c) = prod_i p(k_i | k_<i, c)    raster order over the 13 x 4 code map
        c = (previous, current, next) chord of the measure; optionally also the previous measure's codes
    Recomposition (Sec. 3): keep a piece's chord sequence, sample new codes for it, decode.

Tensors: a pianoroll batch is ``[B, 4, P, T]`` (voice channels, pitch rows, time columns); a code map is
``[B, H, W]`` of integer code ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------------------------------------
# Stage 1: VQ-VAE
# ------------------------------------------------------------------------------------------------
class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup with the straight-through gradient (Sec. 2; VQ-VAE eq. 3)."""

    def __init__(self, codebook_size: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(codebook_size, code_dim)
        self.codebook.weight.data.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)

    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """``[B, D, H, W]`` encoder outputs -> ``[B, H, W]`` indices of the nearest codebook vectors."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        distances = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.weight.t()
            + self.codebook.weight.pow(2).sum(1)
        )
        return distances.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, H, W]`` indices -> ``[B, D, H, W]`` codebook vectors."""
        return self.codebook(codes).permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor):
        codes = self.codes(z_e)
        e = self.lookup(codes)
        codebook_loss = F.mse_loss(e, z_e.detach())  # ||sg(z_e) - e||^2: moves the codebook
        commitment_loss = F.mse_loss(z_e, e.detach())  # ||z_e - sg(e)||^2: keeps the encoder close
        z_q = z_e + (e - z_e).detach()  # straight-through: forward e, backward identity onto z_e
        return z_q, codes, codebook_loss + self.beta * commitment_loss


def conv_block(c_in: int, c_out: int, stride: int, relu: bool) -> nn.Sequential:
    """4x4 conv + BN (+ ReLU); stride 2 halves both axes, stride 1 keeps them ("same" padding)."""
    if stride == 2:
        layers = [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out)]
    else:
        layers = [same_conv(c_in, c_out), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def same_conv(c_in: int, c_out: int) -> nn.Sequential:
    """A stride-1 4x4 conv that keeps the size: an even kernel needs padding 1 before, 2 after."""
    return nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, 4))


class VQVAE(nn.Module):
    """Encoder 4 convs (4x4; strides 2, 2, 1, 1; BN + ReLU, the last without ReLU), codebook, mirrored
    decoder ending in a sigmoid per voice channel (Sec. 2; paper widths 64/128/257/256, K = 256)."""

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 257, 256),
        codebook_size: int = 256,
        code_dim: int = 256,
        n_voices: int = 4,
        beta: float = 0.25,
    ):
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"vqvae.widths must have 4 entries, got {list(widths)}")
        c1, c2, c3, c4 = widths
        self.encoder = nn.Sequential(
            conv_block(n_voices, c1, 2, True),
            conv_block(c1, c2, 2, True),
            conv_block(c2, c3, 1, True),
            conv_block(c3, c4, 1, False),
            nn.Conv2d(c4, code_dim, 1),  # to the codebook's dimension
        )
        self.quantizer = VectorQuantizer(codebook_size, code_dim, beta)
        self.decoder = nn.Sequential(
            same_conv(code_dim, c4),
            nn.BatchNorm2d(c4),
            nn.ReLU(),
            same_conv(c4, c3),
            nn.BatchNorm2d(c3),
            nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 4, 2, 1),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, n_voices, 4, 2, 1),  # logits; the sigmoid lives in the loss
        )

    def encode(self, roll: torch.Tensor) -> torch.Tensor:
        """``[B, 4, P, T]`` rolls -> ``[B, P/4, T/4]`` code ids."""
        return self.quantizer.codes(self.encoder(roll))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, H, W]`` code ids -> ``[B, 4, P, T]`` logits."""
        return self.decoder(self.quantizer.lookup(codes))

    def forward(self, roll: torch.Tensor):
        z_q, codes, vq_loss = self.quantizer(self.encoder(roll))
        return self.decoder(z_q), codes, vq_loss


def reconstruction_loss(logits: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """sum over the 4 voices of the BCE averaged over the voice's pitch x time image (Sec. 2)."""
    bce = F.binary_cross_entropy_with_logits(logits, roll, reduction="none")
    return bce.mean(dim=(2, 3)).sum(1).mean()


def codebook_perplexity(codes: torch.Tensor, codebook_size: int) -> float:
    """exp(entropy) of the code-usage histogram: 1 for a collapsed codebook, K when all are equally used."""
    usage = torch.bincount(codes.flatten(), minlength=codebook_size).double()
    p = usage / usage.sum()
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


# ------------------------------------------------------------------------------------------------
# Stage 2: gated PixelCNN with chord conditioning (and optional spatial conditioning)
# ------------------------------------------------------------------------------------------------
class GatedMaskedConv(nn.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016, eq. 4 and Fig. 2).

    The vertical stack at row i sees rows < i (type A zeroes the kernel's own row; later layers only
    stack features that already look strictly upwards); the horizontal stack sees the same row up to
    column j - 1 (type A) or j (type B, whose inputs already exclude j). No blind spot.
    y = tanh(W_f * x + V_f c) * sigmoid(W_g * x + V_g c), c = the conditioning bias / feature map.
    """

    def __init__(self, channels: int, kernel: int, mask_type: str, residual: bool):
        super().__init__()
        if mask_type not in ("A", "B") or kernel % 2 == 0:
            raise ValueError(f"mask type A/B and an odd kernel, got {mask_type!r}, {kernel}")
        self.mask_type, self.residual = mask_type, residual
        half = kernel // 2
        self.vertical = nn.Conv2d(channels, 2 * channels, (half + 1, kernel), padding=(half, half))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, half + 1), padding=(0, half))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        row_mask = torch.ones(half + 1, kernel)
        row_mask[-1] = 0  # the kernel's bottom row is the predicted position's own row
        column_mask = torch.ones(1, half + 1)
        column_mask[0, -1] = 0  # the kernel's last column is the predicted position itself
        self.register_buffer("row_mask", row_mask, persistent=False)
        self.register_buffer("column_mask", column_mask, persistent=False)

    def forward(self, x_v, x_h, cond):
        height, width = x_v.shape[-2:]
        v_weight, h_weight = self.vertical.weight, self.horizontal.weight
        if self.mask_type == "A":  # the first layer must not see the position it predicts
            v_weight = v_weight * self.row_mask
            h_weight = h_weight * self.column_mask
        pad = self.vertical.padding
        h_v = F.conv2d(x_v, v_weight, self.vertical.bias, padding=pad)[:, :, :height, :]
        h_h = F.conv2d(x_h, h_weight, self.horizontal.bias, padding=self.horizontal.padding)
        h_h = h_h[:, :, :, :width]  # column j sees columns j - k//2 .. j (j - 1 for type A)
        # row i of h_v sees rows < i only (type A drops the kernel's own row; type B stacks
        # features that already look strictly upwards), so it may feed row i's horizontal stack.
        out_v = gate(h_v + cond)
        out_h = self.horizontal_out(gate(self.vertical_to_horizontal(h_v) + h_h + cond))
        return out_v, (x_h + out_h) if self.residual else out_h


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half) of the channels (gated activation unit)."""
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class ConditionalPixelCNN(nn.Module):
    """Gated PixelCNN over a code map, conditioned on (previous, current, next) chord ids (Sec. 2).

    Chord conditioning: per layer, separate embeddings of the previous, current and next chord, summed
    into one 2C-vector added inside both gates. ``spatial=True`` also conditions on the previous
    measure's code map (embedded, then a 1x1 conv into each layer's gates): the paper's "markov" variant.
    """

    def __init__(
        self,
        codebook_size: int,
        n_chords: int,
        channels: int = 64,
        layers: int = 15,
        first_kernel: int = 5,
        kernel: int = 3,
        spatial: bool = False,
    ):
        super().__init__()
        self.codebook_size, self.n_chords, self.spatial = codebook_size, n_chords, spatial
        self.embed = nn.Embedding(codebook_size, channels)
        self.layers = nn.ModuleList(
            [GatedMaskedConv(channels, first_kernel, "A", residual=False)]
            + [GatedMaskedConv(channels, kernel, "B", residual=True) for _ in range(layers - 1)]
        )
        # one table of 3 * n_chords rows per layer: rows [0, n) previous, [n, 2n) current, [2n, 3n) next
        self.chord_embed = nn.ModuleList(
            [nn.Embedding(3 * n_chords, 2 * channels) for _ in range(layers)]
        )
        if spatial:  # code id K marks "no previous measure" (the first bar of a passage)
            self.previous_embed = nn.Embedding(codebook_size + 1, channels)
            self.previous_proj = nn.ModuleList(
                [nn.Conv2d(channels, 2 * channels, 1) for _ in range(layers)]
            )
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, codebook_size, 1)
        )

    def forward(self, codes, chords, previous=None):
        """codes ``[B, H, W]``, chords ``[B, 3]`` (prev, cur, next ids), previous ``[B, H, W]`` or None
        -> logits ``[B, K, H, W]``; the logits at position i depend on codes before i only."""
        offsets = torch.arange(3, device=chords.device) * self.n_chords
        x = self.embed(codes).permute(0, 3, 1, 2)
        x_v, x_h = x, x
        spatial = None
        if self.spatial:
            if previous is None:
                raise ValueError(
                    "this prior conditions on the previous measure's codes: pass previous"
                )
            spatial = self.previous_embed(previous).permute(0, 3, 1, 2)
        for n, layer in enumerate(self.layers):
            cond = self.chord_embed[n](chords + offsets).sum(1)[:, :, None, None]
            if spatial is not None:
                cond = cond + self.previous_proj[n](spatial)
            x_v, x_h = layer(x_v, x_h, cond)
        return self.head(x_h)


def prior_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Categorical cross-entropy in nats per code, ``[B]`` (the prior's training loss, Sec. 2)."""
    return F.cross_entropy(logits, codes, reduction="none").mean(dim=(1, 2))


@torch.no_grad()
def sample_codes(prior, chords, shape, temperature=1.0, previous=None, generator=None):
    """Ancestral sampling in raster order (Sec. 3): one forward pass per code position."""
    height, width = shape
    codes = torch.zeros(len(chords), height, width, dtype=torch.long, device=chords.device)
    for i in range(height):
        for j in range(width):
            logits = prior(codes, chords, previous)[:, :, i, j] / temperature
            probs = torch.softmax(logits, dim=1)
            codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return codes
