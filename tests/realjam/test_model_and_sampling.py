"""The networks' information flow (online vs offline), the KV cache, sampling and the live plan API."""

from __future__ import annotations

import pytest
import torch

from realjam.model import (
    ContrastiveReward,
    OnlineModel,
    Teacher,
    contrastive_loss,
    mle_loss,
    teacher_loss,
)
from realjam.sampling import Agent, sample_online, sample_teacher
from realjam.tokens import (
    CHORD_BASE,
    CHORD_SILENCE,
    MELODY_BASE,
    MELODY_REST,
    N_CHORD_TOKENS,
    VOCAB_SIZE,
    encode_chords,
    encode_melody,
    interleave,
    is_chord_token,
    is_melody_token,
)

FRAMES = 16


def tiny_models():
    torch.manual_seed(0)
    online = OnlineModel(dim=32, layers=2, heads=2, max_frames=FRAMES, dropout=0.0).eval()
    teacher = Teacher(dim=32, layers=2, heads=2, max_frames=FRAMES, dropout=0.0).eval()
    return online, teacher


def random_pair(batch=3, frames=FRAMES, seed=0):
    g = torch.Generator().manual_seed(seed)
    pitches = torch.randint(55, 80, (batch, frames), generator=g)
    symbols = torch.randint(0, 48, (batch, frames), generator=g)
    return encode_melody(pitches), encode_chords(symbols)


def test_chord_at_t_never_sees_the_melody_at_t_but_the_next_chord_does():
    online, _ = tiny_models()
    melody, chords = random_pair()
    seq = interleave(chords, melody)
    changed = seq.clone()
    t = 5
    changed[:, 2 + 2 * t] = MELODY_BASE + 2 * 3  # a different note at frame t
    with torch.no_grad():
        a, b = online.chord_logits(seq), online.chord_logits(changed)
    assert torch.equal(a[:, : t + 1], b[:, : t + 1])  # chords 0..t unchanged
    assert not torch.allclose(a[:, t + 1], b[:, t + 1])  # chord t+1 hears it


def test_teacher_sees_the_whole_melody():
    _, teacher = tiny_models()
    melody, chords = random_pair()
    changed = melody.clone()
    changed[:, -1] = MELODY_REST
    with torch.no_grad():
        a, b = teacher.chord_logits(melody, chords), teacher.chord_logits(changed, chords)
    assert not torch.allclose(a[:, 0], b[:, 0])  # the first chord depends on the last note


def test_teacher_aligns_melody_frame_t_with_chord_frame_t():
    """The decoder step that predicts chord t and the encoder's melody frame t carry the same position,
    and that step reads melody frame t's encoding: changing the note at t changes chord t's logits
    through the aligned input even when cross-attention is switched off."""
    _, teacher = tiny_models()
    calls = []
    teacher.position.register_forward_hook(lambda m, args, out: calls.append(args[0].tolist()))
    melody = encode_melody(torch.arange(60, 60 + FRAMES)[None])
    chords = encode_chords(torch.arange(FRAMES)[None] % 48)
    with torch.no_grad():
        teacher.chord_logits(melody, chords)
    encoder_positions, decoder_positions = calls
    assert encoder_positions == decoder_positions == list(range(FRAMES))

    for block in teacher.decoder:
        block.cross = None  # no cross-attention: only the aligned input can carry the melody
    changed = melody.clone()
    changed[0, 5] = MELODY_REST
    with torch.no_grad():
        a, b = teacher.chord_logits(melody, chords), teacher.chord_logits(changed, chords)
    assert not torch.allclose(a[:, 5], b[:, 5])


def test_kv_cache_gives_the_full_forward_pass_logits():
    online, teacher = tiny_models()
    melody, chords = random_pair()
    seq = interleave(chords, melody)
    with torch.no_grad():
        full = online(seq)
        cache = online.new_cache()
        pieces = [online(seq[:, :7], cache), online(seq[:, 7:8], cache), online(seq[:, 8:], cache)]
        step = torch.cat(pieces, 1)
        finite = torch.isfinite(full)
        assert torch.equal(finite, torch.isfinite(step))
        assert torch.allclose(full[finite], step[finite], atol=1e-5)
        memory = teacher.encode(melody)
        inputs = torch.cat([torch.ones_like(chords[:, :1]), chords[:, :-1]], 1)
        full_t = teacher(inputs, memory)
        cache_t = teacher.new_cache()
        step_t = torch.cat(
            [teacher(inputs[:, i : i + 1], memory, cache_t) for i in range(FRAMES)], 1
        )
        finite = torch.isfinite(full_t)
        assert torch.allclose(full_t[finite], step_t[finite], atol=1e-5)


def test_logits_are_typed_and_losses_are_finite():
    online, teacher = tiny_models()
    melody, chords = random_pair()
    seq = interleave(chords, melody)
    logits = online(seq)
    chord_rows, melody_rows = logits[:, 0::2], logits[:, 1::2]
    assert torch.isfinite(chord_rows[..., CHORD_SILENCE:MELODY_REST]).all()
    assert (
        torch.isinf(chord_rows[..., MELODY_REST:]).all()
        and torch.isinf(melody_rows[..., :MELODY_REST]).all()
    )
    loss, chord_nll = mle_loss(online, seq)
    assert torch.isfinite(loss) and torch.isfinite(chord_nll)
    # an untrained model is near uniform over its type: chord NLL close to log(97)
    assert abs(chord_nll.item() - torch.log(torch.tensor(float(N_CHORD_TOKENS))).item()) < 0.7
    assert torch.isfinite(teacher_loss(teacher, melody, chords))
    reward = ContrastiveReward(dim=16, layers=1, heads=2, max_frames=FRAMES, dropout=0.0)
    loss, accuracy = contrastive_loss(reward, melody, chords)
    assert torch.isfinite(loss) and 0 <= accuracy <= 1


def test_contrastive_training_separates_matching_pairs():
    torch.manual_seed(0)
    reward = ContrastiveReward(dim=16, layers=1, heads=2, max_frames=8, dropout=0.0)
    melody, chords = random_pair(batch=8, frames=8, seed=1)
    optimizer = torch.optim.Adam(reward.parameters(), lr=3e-3)
    first, _ = contrastive_loss(reward, melody, chords)
    for _ in range(60):
        loss, _ = contrastive_loss(reward, melody, chords)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first.item() - 0.5


def test_sampling_respects_forced_tokens_and_types():
    online, teacher = tiny_models()
    melody, chords = random_pair()
    g = torch.Generator().manual_seed(0)
    out_c, out_m = sample_online(online, FRAMES, melody=melody, generator=g)
    assert torch.equal(out_m, melody) and bool(is_chord_token(out_c).all())
    forced = torch.full_like(chords, -1)
    forced[:, :4] = chords[:, :4]
    out_c, out_m = sample_online(online, FRAMES, chords=forced, generator=g)
    assert torch.equal(out_c[:, :4], chords[:, :4]) and bool(is_melody_token(out_m).all())
    t_chords = sample_teacher(teacher, melody, generator=g)
    assert t_chords.shape == melody.shape and bool(is_chord_token(t_chords).all())


def test_plan_keeps_the_commit_window_and_covers_the_lookahead():
    online, teacher = tiny_models()
    agent = Agent(online, teacher)
    melody, chords = random_pair(batch=1)
    frame, lookahead, commit = 8, 6, 3
    played = chords[0, :frame].tolist()
    old_plan = [CHORD_BASE + 2 * 28] + [CHORD_BASE + 2 * 28 + 1] * 5  # G major (symbol 7 * 4) held
    plan = agent.plan(
        melody[0, :frame].tolist(),
        played + old_plan,
        lookahead,
        commit,
        generator=torch.Generator().manual_seed(0),
    )
    assert plan.start == frame and len(plan.chord_tokens) == lookahead == len(plan.melody_tokens)
    assert plan.chord_tokens[:commit] == old_plan[:commit]
    assert plan.chords()[0]["symbol"] == "G:maj" and plan.chords()[0]["pitches"] == [55, 67, 71, 74]
    assert all(36 <= p <= 96 or p == -1 for p in plan.anticipated_pitches())
    assert len(agent.intro(melody[0, :frame].tolist())) == frame
    with pytest.raises(ValueError, match="lookahead"):
        agent.plan(melody[0, :frame].tolist(), played, FRAMES, 0)
    with pytest.raises(ValueError, match="shorter"):
        agent.plan(melody[0, :frame].tolist(), played[:-1], 4, 0)
    assert VOCAB_SIZE > MELODY_BASE
