"""ReaLchords, the agent inside ReaLJam (Scarlatos et al., arXiv 2502.21267; Wu et al., ReaLchords, ICML 2024).

The algorithm, top to bottom:
  1. Online model pi_theta: a decoder-only transformer over [BOS, c_1, m_1, c_2, m_2, ...] (chord first,
     so chord c_t is predicted from melody m_<t only: the agent never hears the note it accompanies).
     Maximum-likelihood pretraining on (melody, chord) pairs, loss on chord AND melody tokens, so that
     the model can also anticipate the user's melody (ReaLchords §3; ReaLJam §3 "anticipation").
  2. Offline teacher phi: an encoder-decoder whose encoder sees the whole melody; it predicts chords
     as an offline harmoniser would. It anchors RL (KL term) and fills ReaLJam's intro retroactively.
  3. Reward models: a contrastive melody/chord model (two encoders, InfoNCE over in-batch mismatches,
     ReaLchords §4.1) plus rule terms: note-in-chord harmony, silence, repetition, rapid changes.
  4. RL fine-tuning (ReaLchords §4, eq. 1): maximise E_pi[R] - beta * KL(pi_theta || phi) over chord
     tokens only (melody tokens are the environment), here with REINFORCE and a learned value baseline
     (rl.py) instead of PPO.
This file holds the networks and the losses; sampling with a KV cache and the live plan API are in
sampling.py, rewards in rewards.py, the RL update in rl.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from realjam.tokens import (
    CHORD_BASE,
    CHORD_SILENCE,
    MELODY_BASE,
    MELODY_LOW,
    MELODY_REST,
    PAD,
    VOCAB_SIZE,
)


def _token_features() -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: its pitch class (chord root / melody pitch mod 12; 12 = none) and a detail index
    (chord quality 0-3, silence 4, melody octave 5-10, rest 11, special 12)."""
    ids = torch.arange(VOCAB_SIZE)
    pitch_class = torch.full((VOCAB_SIZE,), 12)
    detail = torch.full((VOCAB_SIZE,), 12)
    chord = (ids >= CHORD_BASE) & (ids < MELODY_REST)
    symbol = (ids - CHORD_BASE) // 2
    pitch_class[chord], detail[chord] = symbol[chord] // 4, symbol[chord] % 4
    detail[CHORD_SILENCE], detail[MELODY_REST] = 4, 11
    note = ids >= MELODY_BASE
    pitch = MELODY_LOW + (ids - MELODY_BASE) // 2
    pitch_class[note], detail[note] = pitch[note] % 12, 5 + (pitch[note] - MELODY_LOW) // 12
    return pitch_class, detail


class TokenEmbedding(nn.Module):
    """Token embedding plus shared pitch-class and quality/octave embeddings (ours): a chord root and a
    melody note of the same pitch class share a vector, so note-in-chord relations need not be learned
    separately in every key from little data."""

    def __init__(self, dim: int):
        super().__init__()
        self.token, self.pitch_class, self.detail = (
            nn.Embedding(VOCAB_SIZE, dim),
            nn.Embedding(13, dim),
            nn.Embedding(13, dim),
        )
        pitch_class, detail = _token_features()
        self.register_buffer("pc_of", pitch_class, persistent=False)
        self.register_buffer("detail_of", detail, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return (
            self.token(tokens)
            + self.pitch_class(self.pc_of[tokens])
            + self.detail(self.detail_of[tokens])
        )


class KVCache:
    """Keys and values of every layer for the tokens seen so far (incremental decoding)."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        """Tokens cached so far (read before a forward pass: layers fill up one after another)."""
        return self.layer_length(0)

    def layer_length(self, layer: int) -> int:
        return 0 if self.keys[layer] is None else self.keys[layer].shape[2]

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def select(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (e.g. to repeat a prompt for several samples)."""
        self.keys = [k[index] for k in self.keys]
        self.values = [v[index] for v in self.values]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x, source=None, causal=False, cache=None, layer=0, pad_mask=None):
        """Self-attention (``source`` None) or cross-attention; ``cache`` extends keys incrementally."""
        q = self._split(self.q(x))
        k, v = (self._split(t) for t in self.kv(x if source is None else source).chunk(2, dim=-1))
        past = 0
        if cache is not None:
            past = cache.layer_length(layer)
            k, v = cache.append(layer, k, v)
        mask = None
        if causal and x.shape[1] > 1:  # query i (absolute past + i) sees keys 0..past + i
            n, total = x.shape[1], k.shape[2]
            mask = torch.ones(n, total, dtype=torch.bool, device=x.device).tril(past)
        if pad_mask is not None:  # [B, keys] True = real token
            keep = pad_mask[:, None, None, :]
            mask = keep if mask is None else mask & keep
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(self, dim: int, heads: int, dropout: float, cross: bool = False):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, dropout)
        self.cross = Attention(dim, heads, dropout) if cross else None
        self.norm_cross = nn.LayerNorm(dim) if cross else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, causal=True, cache=None, layer=0, memory=None, pad_mask=None):
        x = x + self.drop(
            self.attn(self.norm1(x), causal=causal, cache=cache, layer=layer, pad_mask=pad_mask)
        )
        if self.cross is not None:
            x = x + self.drop(self.cross(self.norm_cross(x), source=memory))
        return x + self.drop(self.mlp(self.norm2(x)))


def typed_logits(logits: torch.Tensor, predicts_chord: torch.Tensor | bool) -> torch.Tensor:
    """Keep only chord tokens where a chord comes next and only melody tokens where a note comes next."""
    ids = torch.arange(logits.shape[-1], device=logits.device)
    chord_ids = (ids >= CHORD_SILENCE) & (ids < MELODY_REST)
    allowed = torch.where(
        torch.as_tensor(predicts_chord, device=logits.device)[..., None],
        chord_ids,
        ~chord_ids & (ids >= MELODY_REST),
    )
    return logits.masked_fill(~allowed, float("-inf"))


class OnlineModel(nn.Module):
    """Decoder-only transformer over interleaved chord/melody tokens (step 1 of the algorithm)."""

    def __init__(self, dim: int, layers: int, heads: int, max_frames: int, dropout: float):
        super().__init__()
        self.max_tokens = 1 + 2 * max_frames
        self.embed = TokenEmbedding(dim)
        self.position = nn.Embedding(self.max_tokens, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, VOCAB_SIZE)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))

    def features(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        if start + tokens.shape[1] > self.max_tokens:
            raise ValueError(
                f"sequence of {start + tokens.shape[1]} tokens exceeds the context {self.max_tokens}"
            )
        pos = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.position(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=cache, layer=i)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits ``[B, N, V]``, restricted to the token type that comes next."""
        start = 0 if cache is None else cache.length
        logits = self.head(self.features(tokens, cache))
        index = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        return typed_logits(logits, index % 2 == 0)  # even index (BOS, m_t) -> next is a chord

    def chord_logits(self, seq: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every chord position of an interleaved sequence: ``[B, T, V]``."""
        return F.log_softmax(self(seq[:, :-1])[:, 0::2], dim=-1)


def mle_loss(model: OnlineModel, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on all next tokens (chords and melody), PAD ignored; also the chord part alone."""
    logits = model(seq[:, :-1])
    target = seq[:, 1:]
    nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction="none")
    real = (target != PAD).float()
    chord_nll = (nll[:, 0::2] * real[:, 0::2]).sum() / real[:, 0::2].sum().clamp(min=1)
    return (nll * real).sum() / real.sum().clamp(min=1), chord_nll


class Teacher(nn.Module):
    """Offline encoder-decoder (step 2): the encoder reads the whole melody, the decoder writes chords."""

    def __init__(self, dim: int, layers: int, heads: int, max_frames: int, dropout: float):
        super().__init__()
        self.embed = TokenEmbedding(dim)
        self.position = nn.Embedding(max_frames, dim)  # frame t (encoder) = step t (decoder)
        self.encoder = nn.ModuleList(Block(dim, heads, dropout) for _ in range(max(layers // 2, 1)))
        self.decoder = nn.ModuleList(Block(dim, heads, dropout, cross=True) for _ in range(layers))
        self.norm_enc, self.norm_dec = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.head = nn.Linear(dim, VOCAB_SIZE)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.decoder))

    def encode(self, melody_tokens: torch.Tensor) -> torch.Tensor:
        """Bidirectional encoding of the whole melody ``[B, T]`` (PAD frames masked out).

        Melody frame t takes position t, the position of the decoder step that predicts chord t (its input
        is c_{t-1}, or BOS at t = 0), so cross-attention lines each chord up with the note it harmonises.
        """
        pos = torch.arange(melody_tokens.shape[1], device=melody_tokens.device)
        x = self.embed(melody_tokens) + self.position(pos)
        real = melody_tokens != PAD
        for block in self.encoder:
            x = block(x, causal=False, pad_mask=real)
        return self.norm_enc(x)

    def forward(
        self, chord_inputs: torch.Tensor, memory: torch.Tensor, cache: KVCache | None = None
    ):
        """Chord logits for decoder inputs [BOS, c_1, ..., c_{n-1}] (shifted chords) given the encoded melody.

        Step t also adds the encoding of melody frame t, the note its chord must fit (ours): the frames are
        aligned, so the decoder need not learn to find that note by cross-attention first.
        """
        start = 0 if cache is None else cache.length
        pos = torch.arange(start, start + chord_inputs.shape[1], device=chord_inputs.device)
        x = self.embed(chord_inputs) + self.position(pos) + memory[:, pos]
        for i, block in enumerate(self.decoder):
            x = block(x, causal=True, cache=cache, layer=i, memory=memory)
        return typed_logits(self.head(self.norm_dec(x)), True)

    def chord_logits(self, melody_tokens: torch.Tensor, chord_tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B, T, V]`` of each chord position given the whole melody and past chords."""
        inputs = torch.cat([torch.full_like(chord_tokens[:, :1], 1), chord_tokens[:, :-1]], dim=1)
        return F.log_softmax(self(inputs, self.encode(melody_tokens)), dim=-1)


def teacher_loss(
    teacher: Teacher, melody_tokens: torch.Tensor, chord_tokens: torch.Tensor
) -> torch.Tensor:
    logp = teacher.chord_logits(melody_tokens, chord_tokens)
    nll = -logp.gather(-1, chord_tokens.clamp(min=0)[..., None])[..., 0]
    nll = torch.where(
        chord_tokens != PAD, nll, 0.0
    )  # PAD targets have -inf log-prob: drop them first
    real = (chord_tokens != PAD).float()
    return nll.sum() / real.sum().clamp(min=1)


class ContrastiveReward(nn.Module):
    """Melody and chord encoders trained to tell matching pairs from in-batch mismatches (step 3)."""

    def __init__(self, dim: int, layers: int, heads: int, max_frames: int, dropout: float):
        super().__init__()
        self.embed = TokenEmbedding(dim)  # one table: melody and chord tokens are disjoint
        self.position = nn.Embedding(max_frames, dim)
        self.melody_encoder = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.chord_encoder = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.melody_out, self.chord_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.log_scale = nn.Parameter(
            torch.tensor(2.3)
        )  # InfoNCE inverse temperature, learned (CLIP)

    def _embed(self, tokens, blocks, out) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.position(pos)
        real = tokens != PAD
        for block in blocks:
            x = block(x, causal=False, pad_mask=real)
        pooled = (x * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp(min=1)
        return F.normalize(out(pooled), dim=-1)

    def forward(
        self, melody_tokens: torch.Tensor, chord_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self._embed(melody_tokens, self.melody_encoder, self.melody_out),
            self._embed(chord_tokens, self.chord_encoder, self.chord_out),
        )

    def score(self, melody_tokens: torch.Tensor, chord_tokens: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each matching pair ``[B]``, the reward (ReaLchords §4.1)."""
        m, c = self(melody_tokens, chord_tokens)
        return (m * c).sum(-1)


def contrastive_loss(
    model: ContrastiveReward, melody_tokens, chord_tokens
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE: pair i's melody must pick chord i among the batch and vice versa; also the accuracy."""
    m, c = model(melody_tokens, chord_tokens)
    logits = model.log_scale.exp().clamp(max=100) * m @ c.T
    target = torch.arange(len(m), device=m.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss, (logits.argmax(1) == target).float().mean()
