"""ReaLJam's live protocol without a network (realjam.live, realjam.jamsim.check_protocol).

Semantics under test:
- note events become monophonic melody tokens frame by frame (latest struck note wins, onset then hold);
- a session teacher-forces the chords an earlier plan committed and never lets them change; the control
  (``honor_commit=False``) does change them, and the protocol check counts it;
- the batched lean decoder gives, token for token, what ``Agent.plan`` gives (greedy), for sessions whose
  histories, commit windows and intros differ, so batching never changes a session's plan;
- bad requests raise ``ProtocolError`` and leave the session usable.
"""

from __future__ import annotations

import random

import pytest
import torch

from realjam.jamsim import JamLog, check_protocol, synthetic_melody
from realjam.live import (
    JamSession,
    NoteEvent,
    ProtocolError,
    Settings,
    melody_tokens,
    plan_batch,
)
from realjam.model import OnlineModel, Teacher
from realjam.sampling import Agent
from realjam.tokens import CHORD_SILENCE, MELODY_BASE, MELODY_REST


@pytest.fixture(scope="module")
def agents():
    torch.manual_seed(0)
    teacher = Teacher(32, 2, 2, 64, 0.0)
    return {
        "rl": Agent(OnlineModel(32, 2, 2, 64, 0.0), teacher),
        "mle": Agent(OnlineModel(32, 2, 2, 64, 0.0), teacher),
    }


def onset(pitch: int) -> int:
    return MELODY_BASE + 2 * (pitch - 36)


def test_melody_tokens_are_monophonic_onset_then_hold():
    events = [
        NoteEvent(60, 1, True),
        NoteEvent(64, 3, True),  # a second key while 60 is held: the newer note sounds
        NoteEvent(64, 4, False),  # released: 60, still held, sounds again (a new onset)
        NoteEvent(60, 5, False),
        NoteEvent(67, 6, True),
        NoteEvent(67, 6, False),  # released in the frame it was struck: one frame long
    ]
    tokens = melody_tokens(events, 8)
    rest = MELODY_REST
    assert tokens == [
        rest,
        onset(60),
        onset(60) + 1,
        onset(64),
        onset(60),
        rest,
        onset(67),
        rest,
    ]


def _jam(agents, sessions, frames, seed=0, honor=True):
    """Drive sessions through ``frames`` frames, one request a beat, all planned in batches."""
    rng = random.Random(seed)
    history = {id(s): [] for s in sessions}
    for frame in range(0, frames, 4):
        requests = []
        for k, s in enumerate(sessions):
            f = frame + 4 * k  # sessions at different frames: histories of different lengths
            events = [NoteEvent(55 + rng.randrange(20), max(f - 1 - rng.randrange(3), 0), True)]
            r = s.request(f, events if f > 0 else [])
            if r is not None:
                requests.append(r)
        for r, p in zip(requests, plan_batch(agents, requests)):
            history[id(r.session)].append((r, p))
            r.session.accept(r, p)
    return history


def test_batched_plans_equal_agent_plan_token_for_token(agents):
    settings = [
        Settings(lookahead=16, commit=8, temperature=0.0, silence_beats=2),
        Settings(lookahead=12, commit=4, temperature=0.0, silence_beats=3, model="mle"),
        Settings(lookahead=16, commit=16, temperature=0.0, silence_beats=4),
    ]
    sessions = [JamSession(s) for s in settings]
    history = _jam(agents, sessions, 80)
    checked = 0
    for s in sessions:
        assert s.plans > 5
        for r, p in history[id(s)]:
            agent = agents[s.settings.model]
            ref = agent.plan(r.melody, r.chords, s.settings.lookahead, r.n_commit, 0.0)
            assert (p.chord_tokens, p.melody_tokens) == (ref.chord_tokens, ref.melody_tokens)
            checked += 1
    assert checked > 20


def test_committed_chords_are_forced_and_the_control_breaks_them(agents):
    def changes(honor):
        s = JamSession(Settings(lookahead=16, commit=8, silence_beats=1, temperature=1.5), honor)
        history = _jam(agents, [s], 100, honor=honor)[id(s)]
        committed, changed = {}, 0
        for r, p in history:
            for i, token in enumerate(p.chord_tokens):
                f = r.frame + i
                if f in committed:
                    changed += committed[f] != token
            for i in range(s.settings.commit):  # what this plan commits
                committed.setdefault(r.frame + i, p.chord_tokens[i])
        return changed

    assert changes(True) == 0
    assert changes(False) > 0  # a server that ignores the commit window changes promised chords


def test_intro_is_filled_by_the_teacher_before_the_first_plan(agents):
    s = JamSession(Settings(lookahead=8, commit=4, silence_beats=4, temperature=0.0))
    assert s.request(0, []) is None  # the agent listens through the intro
    assert s.request(4, [NoteEvent(60, 1, True)]) is None
    r = s.request(8, [NoteEvent(60, 5, False), NoteEvent(62, 6, True)])
    assert r is not None and r.intro and r.frame == 8 == s.settings.plan_from
    p = plan_batch(agents, [r])[0]
    s.accept(r, p)
    assert len(s.chords) == 16 and s.committed_until == 12
    assert r.chords[:8] != [CHORD_SILENCE] * 8  # teacher chords, not the silence placeholder


@pytest.mark.parametrize(
    "frame, events, message",
    [
        (-1, [], "frame must be"),
        (4, [NoteEvent(200, 1, True)], "pitch must be"),
        (4, [NoteEvent(60, 4, True)], "not before the request frame"),
        (4, [NoteEvent(60, -3, True)], "not before the request frame"),
        (4, [NoteEvent(60, 1, True)] * 600, "at most"),
    ],
)
def test_bad_requests_raise_and_the_session_lives_on(agents, frame, events, message):
    s = JamSession(Settings(silence_beats=0, lookahead=8, commit=4))
    with pytest.raises(ProtocolError, match=message):
        s.request(frame, events)
    r = s.request(8, [NoteEvent(60, 2, True)])
    assert len(plan_batch(agents, [r])[0].chord_tokens) == 8


def test_frames_may_not_go_backwards():
    s = JamSession(Settings(silence_beats=8))
    s.request(12, [])
    with pytest.raises(ProtocolError, match="before the previous"):
        s.request(8, [])
    assert s.request(13, []) is None  # still listening (plans from frame 16), still fine


@pytest.mark.parametrize(
    "settings, message",
    [
        (Settings(bpm=1e6), "bpm"),
        (Settings(bpm=0), "bpm"),
        (Settings(lookahead=100), "lookahead"),
        (Settings(commit=20, lookahead=16), "commit"),
        (Settings(temperature=-1), "temperature"),
        (Settings(model="gpt"), "unknown model"),
        (Settings(silence_beats=1000), "silence_beats"),
        (Settings(seed=2**70), "seed"),
        (Settings(seed=-1), "seed"),
    ],
)
def test_absurd_settings_are_refused(settings, message):
    with pytest.raises(ProtocolError, match=message):
        settings.check(48, ("rl", "mle"))


def test_protocol_check_counts_late_changed_and_short_plans():
    # lookahead 16, commit 8, one request a beat at 120 BPM (a frame is 125 ms), agent in from frame 16
    s = {"lookahead": 16, "commit": 8, "silence_beats": 4, "bpm": 120.0}
    starts = list(range(0, 32, 4))
    log = JamLog(s, frames=32, t0=0.0, frame_s=0.125, sent={r: r * 0.125 for r in starts})

    def plan(start, at, tokens=None):
        tokens = [5] * 16 if tokens is None else tokens
        return at, {"start_frame": start, "tokens": tokens, "commit_until": start + 8}

    on_time = [plan(r, r * 0.125 + 0.01) for r in starts]
    log.plans = list(on_time)
    assert check_protocol(log) == {
        "late_frames": 0,
        "committed_changes": 0,
        "plans_short_of_lookahead": 0,
    }
    log.plans[2] = plan(8, 1.01, [7] * 16)  # frames 8..11 were committed by the plan at 4
    assert (
        check_protocol(log)["committed_changes"] == 8
    )  # and the plan at 12 changes its 12..15 back
    log.plans[2] = plan(8, 1.01, [5] * 14)
    assert check_protocol(log)["plans_short_of_lookahead"] == 1
    # The plan asked at frame 8 arrives at 1.7 s, the next one queued behind it: frames 20, 21 were first
    # planned then, after the moments they were needed (frames 12, 13 = 1.5, 1.625 s).
    log.plans = on_time[:2] + [plan(8, 1.7), plan(12, 1.71)] + on_time[4:]
    assert check_protocol(log)["late_frames"] == 2
    # The plan asked at 16 arrives at 2.6 s: it commits frame 20 after it played (2.5 s), and frame 28
    # (first planned by it) was needed by 2.5 s.
    log.plans = on_time[:4] + [plan(16, 2.6), plan(20, 2.61)] + on_time[6:]
    assert check_protocol(log)["late_frames"] == 2


def test_synthetic_melody_fills_the_jam_in_scale():
    notes = synthetic_melody(16, seed=3)
    assert notes[0][1] >= 0 and notes[-1][2] <= 64
    assert all(p % 12 in (0, 2, 4, 5, 7, 9, 11) and on < off for p, on, off in notes)
    assert all(a[2] <= b[1] for a, b in zip(notes, notes[1:]))  # monophonic


def test_the_lean_decoder_refuses_a_model_it_no_longer_matches():
    from realjam.live import Decoder

    class Changed(OnlineModel):  # say model.py's forward changed and live.py was not updated
        def forward(self, tokens, cache=None):
            return super().forward(tokens, cache) * 1.01

    Decoder(OnlineModel(16, 1, 2, 32, 0.0))  # the real one passes its self-check
    with pytest.raises(RuntimeError, match="disagrees with OnlineModel"):
        Decoder(Changed(16, 1, 2, 32, 0.0))
