"""ReaLJam's live protocol (arXiv 2502.21267 §3.2): one jam session's state, and plans for many sessions in one
batched forward pass.

The client owns the clock. Every so often (once a beat by default) it sends the note events it quantised to
sixteenth-note frames and the frame its playhead reached, ``r``. The server answers with a *plan*: chords for
frames ``[r, r + lookahead)``. Frames an earlier plan committed (its ``[r', r' + commit)``) are teacher-forced,
never resampled; the rest is sampled together with the melody the agent imagines the user will play. The
first plan fills the intro the agent sat out with the offline teacher's chords (context for the online model).

    session = JamSession(Settings(lookahead=16, commit=8))
    request = session.request(frame=36, events=[NoteEvent(60, 32, True)])  # validates, updates the melody
    plan = plan_batch(agents, [request])[0]                                # one forward for every session
    session.accept(request, plan)                                          # the chord history moves on
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from realjam.model import OnlineModel, typed_logits
from realjam.sampling import FREE, Agent, Plan
from realjam.tokens import BOS, CHORD_SILENCE, MELODY_REST, encode_melody, interleave

BEAT = 4  # frames per beat (sixteenth notes)
MIN_CONTEXT = (
    16  # frames of history a plan keeps at least (lookahead <= agent.max_frames - MIN_CONTEXT)
)
LIMITS = {  # what a client may ask for; anything else is an error message, never a crash
    "bpm": (20.0, 400.0),
    "temperature": (0.0, 5.0),
    "silence_beats": (0, 64),
    "max_frame": 1_000_000,  # about 35 hours at 120 BPM
    "events_per_message": 512,
    "events_per_session": 50_000,
}


class ProtocolError(ValueError):
    """A request this session cannot serve; its message goes back to the client, the session lives on."""


@dataclass
class NoteEvent:
    pitch: int  # MIDI pitch 0..127
    frame: int  # sixteenth-note frame the client quantised the key press/release to
    on: bool


@dataclass
class Settings:
    """What a client may set (``hello`` message); lengths in frames (4 per beat)."""

    bpm: float = 120.0  # the client's tempo (the server only checks it: the client owns the clock)
    lookahead: int = 16  # frames each plan covers (ReaLJam UI: "Lookahead Beats")
    commit: int = 8  # frames ahead that never change once planned (ReaLJam UI: "Commit Beats")
    silence_beats: int = 8  # intro beats the agent listens before playing (ReaLJam default 8)
    temperature: float = 1.0  # sampling temperature (ReaLJam UI; ReaLchords samples at 0.99)
    model: str = "rl"  # which agent: "rl" (RL-tuned) or "mle"
    seed: int = 0  # the session's own sampling generator

    @property
    def silence(self) -> int:
        return BEAT * self.silence_beats

    def check(self, max_lookahead: int, models: tuple[str, ...]) -> None:
        lo, hi = LIMITS["bpm"]
        if not lo <= self.bpm <= hi:
            raise ProtocolError(f"bpm must be in {lo:g}..{hi:g}, got {self.bpm:g}")
        if not 1 <= self.lookahead <= max_lookahead:
            raise ProtocolError(
                f"lookahead must be 1..{max_lookahead} frames, got {self.lookahead}"
            )
        if not 0 <= self.commit <= self.lookahead:
            raise ProtocolError(
                f"commit must be 0..lookahead ({self.lookahead}), got {self.commit}"
            )
        lo, hi = LIMITS["silence_beats"]
        if not lo <= self.silence_beats <= hi:
            raise ProtocolError(f"silence_beats must be {lo}..{hi}, got {self.silence_beats}")
        lo, hi = LIMITS["temperature"]
        if not lo <= self.temperature <= hi:
            raise ProtocolError(f"temperature must be in {lo:g}..{hi:g}, got {self.temperature:g}")
        if not 0 <= self.seed < 2**63:
            raise ProtocolError(f"seed must be 0..2**63-1, got {self.seed}")
        if self.model not in models:
            raise ProtocolError(f"unknown model {self.model!r}; this server has {list(models)}")

    @property
    def plan_from(self) -> int:
        """The first frame the server plans at (ReaLJam §3.2 step 1 waits until min(lookahead, 4) frames
        before the silence ends). Ours: ``lookahead`` frames before, so that the first plan, which also
        waits for the teacher's intro, covers no frame the agent plays, and the next ones plan every frame
        ``lookahead - 1 beat`` ahead from the start."""
        return max(self.silence - self.lookahead, 0)


def melody_tokens(events: list[NoteEvent], frames: int) -> list[int]:
    """Monophonic melody tokens for frames ``0..frames-1`` (ReaLJam §3.2 step 2): at each frame the most
    recently struck note still held sounds; a note's first frame is its onset token."""
    pitch = torch.full((frames,), -1, dtype=torch.long)
    onset = torch.zeros(frames, dtype=torch.bool)
    held: dict[int, int] = {}  # pitch -> onset frame of the note still down
    notes = []  # (onset, end, pitch)
    for e in sorted(events, key=lambda e: e.frame):  # stable: same-frame events keep their order
        if e.on:
            if e.pitch in held:  # re-struck without a release: the old note ends here
                notes.append((held[e.pitch], e.frame, e.pitch))
            held[e.pitch] = e.frame
        elif e.pitch in held:
            start = held.pop(e.pitch)
            notes.append((start, max(e.frame, start + 1), e.pitch))
    notes += [(start, frames, p) for p, start in held.items()]
    for start, end, p in sorted(notes):  # later onsets overwrite earlier ones
        if start < frames:
            pitch[start : min(end, frames)] = p
            onset[start] = True
    return encode_melody(pitch, onset).tolist()


@dataclass
class Request:
    """One plan request of one session, validated, with everything the agent needs."""

    session: JamSession
    frame: int
    melody: list[int]  # tokens of frames 0..frame-1
    chords: list[int]  # chords played 0..frame-1, then the committed frames frame..frame+n_commit-1
    n_commit: int
    intro: bool  # first plan: the teacher fills chords[0:frame] first


@dataclass
class JamSession:
    """One client's jam: its settings, note events, chord history + current plan, commit horizon.

    Sessions share nothing; the server keys them by connection. ``honor_commit=False`` is the protocol
    check's control (a server that re-samples committed chords), never used by the server itself.
    """

    settings: Settings = field(default_factory=Settings)
    honor_commit: bool = True
    events: list[NoteEvent] = field(default_factory=list)
    chords: list[int] = field(default_factory=list)  # chord tokens, frames 0..last plan's end - 1
    committed_until: int = 0  # frames < this are fixed for good
    last_frame: int = -1
    plans: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __post_init__(self):
        self.generator.manual_seed(self.settings.seed)

    def reset(self, settings: Settings) -> None:
        """A new jam (new settings): history, events and commit horizon start over."""
        self.settings, self.events, self.chords = settings, [], []
        self.committed_until, self.last_frame, self.plans = 0, -1, 0
        self.generator.manual_seed(settings.seed)

    def update(self, settings: Settings) -> None:
        """Change settings mid-jam (tempo, lookahead, commit, temperature, model): the history stays."""
        self.settings = settings

    def request(self, frame: int, events: list[NoteEvent]) -> Request | None:
        """Validate a ``notes`` message, store its events; the plan request, or None while the agent waits."""
        if not 0 <= frame <= LIMITS["max_frame"]:
            raise ProtocolError(f"frame must be 0..{LIMITS['max_frame']}, got {frame}")
        if frame < self.last_frame:
            raise ProtocolError(f"frame {frame} is before the previous request's {self.last_frame}")
        if len(events) > LIMITS["events_per_message"]:
            raise ProtocolError(f"at most {LIMITS['events_per_message']} events per message")
        if len(self.events) + len(events) > LIMITS["events_per_session"]:
            raise ProtocolError(
                "this jam has too many note events; send 'reset' to start a new one"
            )
        for e in events:
            if not 0 <= e.pitch <= 127:
                raise ProtocolError(f"pitch must be 0..127, got {e.pitch}")
            if not 0 <= e.frame < max(frame, 1):
                raise ProtocolError(
                    f"event frame {e.frame} is not before the request frame {frame}"
                )
        self.events.extend(events)
        self.last_frame = frame
        s = self.settings
        if frame < s.plan_from:  # ReaLJam §3.2 step 1: wait for context
            return None
        intro = not self.chords
        history = self.chords[:frame] + [CHORD_SILENCE] * (frame - len(self.chords))
        n_commit = (
            min(max(self.committed_until - frame, 0), s.lookahead) if self.honor_commit else 0
        )
        committed = self.chords[frame : frame + n_commit]
        return Request(
            self, frame, melody_tokens(self.events, frame), history + committed, n_commit, intro
        )

    def accept(self, request: Request, plan: Plan) -> None:
        """Store a plan: chords up to its start are history, the plan's first ``commit`` frames are fixed."""
        self.chords = request.chords[: request.frame] + plan.chord_tokens
        self.committed_until = max(self.committed_until, request.frame + self.settings.commit)
        self.plans += 1


# ------------------------------------------------------------------ batched planning (several sessions)
def _prompt(agent: Agent, melody: list[int], chords: list[int], lookahead: int) -> torch.Tensor:
    """The interleaved history the online model reads (as Agent.plan builds it): the last
    ``max_frames - lookahead`` frames, starting on a beat like the training crops."""
    frame = len(melody)
    start = max(frame - (agent.max_frames - lookahead), 0)
    start += (-start) % BEAT
    c = torch.tensor(chords[start:frame], dtype=torch.long)[None]
    m = torch.tensor(melody[start:frame], dtype=torch.long)[None]
    return interleave(c, m)[0]


class Decoder:
    """The online model's incremental decoding for a batch, lean enough for live use (ours).

    The same math as ``OnlineModel.forward`` with a KV cache (realjam/model.py), with per-token overhead
    taken out: the three embedding tables summed into one, the q and kv projections fused, keys and values
    written into a preallocated cache instead of concatenated, and one position per row so that rows whose
    histories differ in length decode together (left-padded, padding masked out of the keys). Built once
    per model; it checks itself against ``OnlineModel.forward`` when built, and
    ``tests/realjam/test_protocol.py`` checks its plans against ``Agent.plan`` token for token.
    """

    def __init__(self, model: OnlineModel):
        self.model = model
        e = model.embed
        with torch.no_grad():
            self.table = (
                e.token.weight + e.pitch_class.weight[e.pc_of] + e.detail.weight[e.detail_of]
            )
            self.position = model.position.weight.detach().clone()
        self.heads = model.blocks[0].attn.heads
        w = lambda m: (m.weight.detach(), m.bias.detach())  # noqa: E731
        self.layers = [
            (
                (b.norm1.weight.detach(), b.norm1.bias.detach(), b.norm1.eps),
                (
                    torch.cat([b.attn.q.weight, b.attn.kv.weight]).detach(),
                    torch.cat([b.attn.q.bias, b.attn.kv.bias]).detach(),
                ),
                w(b.attn.out),
                (b.norm2.weight.detach(), b.norm2.bias.detach(), b.norm2.eps),
                w(b.mlp[0]),
                w(b.mlp[2]),
            )
            for b in model.blocks
        ]
        self.final_norm = (model.norm.weight.detach(), model.norm.bias.detach(), model.norm.eps)
        self.head = w(model.head)
        vocab = model.head.out_features
        ids = torch.zeros(1, vocab)
        self.type_bias = {  # additive masks: only chord tokens next, or only melody tokens next
            kind: torch.zeros(vocab).masked_fill(typed_logits(ids, kind)[0].isinf(), float("-inf"))
            for kind in (True, False)
        }
        self._check()

    @torch.no_grad()
    def _check(self) -> None:
        """Refuse to run if this lean copy of the forward pass no longer matches ``OnlineModel.forward``
        (say model.py changed): one short decode compared with the model's own full forward."""
        g = torch.Generator().manual_seed(0)
        seq = torch.randint(CHORD_SILENCE, MELODY_REST, (1, 7), generator=g)
        seq[0, 0], seq[0, 2::2] = BOS, MELODY_REST  # BOS, then chord / melody tokens alternating
        want = self.model(seq[:, :6])[0, 3:6]
        got = [self.start([seq[0, :4]], 3)[0]] + [self.step(seq[:, i])[0] for i in (4, 5)]
        if not torch.allclose(torch.stack(got), want, atol=1e-4, rtol=1e-4):
            raise RuntimeError("realjam.live.Decoder disagrees with OnlineModel.forward: update it")

    @torch.no_grad()
    def start(self, prompts: list[torch.Tensor], steps: int) -> torch.Tensor:
        """Prefill each prompt alone (the model's own forward), left-pad them into one cache with room for
        ``steps`` more tokens; returns the logits ``[B, V]`` of the first planned token (a chord)."""
        lengths = torch.tensor([len(p) for p in prompts])
        self.width = width = int(lengths.max())
        batch, dim = len(prompts), self.table.shape[1]
        shape = (batch, self.heads, width + steps, dim // self.heads)
        self.k = [torch.zeros(shape) for _ in self.layers]
        self.v = [torch.zeros(shape) for _ in self.layers]
        first = torch.zeros(batch, self.table.shape[0])
        for n in sorted(set(lengths.tolist())):  # prompts of one length prefill together
            rows = (lengths == n).nonzero()[:, 0]
            cache = self.model.new_cache()
            first[rows] = self.model(torch.stack([prompts[r] for r in rows]), cache)[:, -1]
            for i in range(len(self.layers)):
                self.k[i][rows, :, width - n : width] = cache.keys[i]
                self.v[i][rows, :, width - n : width] = cache.values[i]
        self.keep = torch.zeros(batch, 1, 1, width + steps, dtype=torch.bool)
        self.keep[:, 0, 0, :width] = torch.arange(width)[None] >= (width - lengths)[:, None]
        self.pos, self.col = lengths.clone(), width
        return first

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (``[B]``); next-token logits ``[B, V]`` of the type that comes next."""
        b, col = len(tokens), self.col
        x = (self.table[tokens] + self.position[self.pos])[:, None]  # [B, 1, D]
        self.keep[:, 0, 0, col] = True
        mask = self.keep[..., : col + 1]
        dim = x.shape[-1]
        for i, (norm1, qkv, out, norm2, fc1, fc2) in enumerate(self.layers):
            h = F.layer_norm(x, (dim,), *norm1)
            q, k, v = F.linear(h, *qkv).view(b, 3, self.heads, -1).unbind(1)
            self.k[i][:, :, col] = k
            self.v[i][:, :, col] = v
            y = F.scaled_dot_product_attention(
                q[:, :, None],
                self.k[i][:, :, : col + 1],
                self.v[i][:, :, : col + 1],
                attn_mask=mask,
            )
            x = x + F.linear(y.reshape(b, 1, -1), *out)
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (dim,), *norm2), *fc1)), *fc2)
        self.col += 1
        chord_next = self.pos % 2 == 0  # BOS and melody tokens sit at even positions
        self.pos = self.pos + 1
        logits = F.linear(F.layer_norm(x, (x.shape[-1],), *self.final_norm), *self.head)[:, 0]
        return logits + torch.where(
            chord_next[:, None], self.type_bias[True], self.type_bias[False]
        )


def _draw_rows(logits: torch.Tensor, temperatures: torch.Tensor, generators: list) -> torch.Tensor:
    """Sample one token per row, each session with its own temperature and generator (sessions never share
    randomness): inverse-CDF sampling with one uniform per row; temperature 0 = argmax."""
    greedy = logits.argmax(-1)
    hot = temperatures > 0
    if not bool(hot.any()):
        return greedy
    probs = torch.softmax(logits / temperatures.clamp(min=1e-6)[:, None], dim=-1)
    cdf = probs.cumsum(-1)
    u = torch.stack([torch.rand((), generator=g) for g in generators]) * cdf[:, -1]
    drawn = torch.searchsorted(cdf, u[:, None])[:, 0].clamp(max=logits.shape[-1] - 1)
    return torch.where(hot, drawn, greedy)


@torch.no_grad()
def sample_plans(
    decoder: Decoder,
    prompts: list[torch.Tensor],
    forced: torch.Tensor,
    temperatures: list[float],
    generators: list,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sample_online`` for B sessions at once (every row decodes in lock-step, one forward per token).

    ``forced`` ``[B, n]``: committed chords (FREE elsewhere); melody tokens are always imagined (the agent's
    anticipation). Returns chord and melody tokens ``[B, n]``.
    """
    n_frames = forced.shape[1]
    temps = torch.tensor(temperatures)
    logits = decoder.start(prompts, 2 * n_frames)
    out_c, out_m = [], []
    for t in range(n_frames):
        c = torch.where(forced[:, t] >= 0, forced[:, t], _draw_rows(logits, temps, generators))
        out_c.append(c)
        m = _draw_rows(decoder.step(c), temps, generators)  # the melody the agent anticipates
        out_m.append(m)
        if t + 1 < n_frames:  # the final melody token is not fed (ReaLJam §3.2 step 6)
            logits = decoder.step(m)
    return torch.stack(out_c, 1), torch.stack(out_m, 1)


@torch.no_grad()
def fill_intros(agent: Agent, requests: list[Request]) -> None:
    """ReaLJam §3.2 step 3: the offline teacher writes chords for the intro each agent sat out, seeing the
    whole intro melody; one teacher pass per intro length (sessions that started together share it)."""
    by_length: dict[int, list[Request]] = {}
    for r in requests:
        if r.frame > 0:
            by_length.setdefault(min(r.frame, agent.max_frames), []).append(r)
    for length, group in by_length.items():
        melody = torch.tensor([r.melody[-length:] for r in group])
        # One draw per session: each row's temperature and generator (the teacher samples row by row).
        logits_temps = [r.session.settings.temperature for r in group]
        memory = agent.teacher.encode(melody)
        cache = agent.teacher.new_cache()
        token = torch.full((len(group),), BOS)
        for t in range(length):
            logits = agent.teacher(token[:, None], memory, cache)[:, -1]
            token = _draw_rows(
                logits, torch.tensor(logits_temps), [r.session.generator for r in group]
            )
            for row, r in enumerate(group):
                r.chords[r.frame - length + t] = int(token[row])


DECODERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its Decoder


def plan_batch(agents: dict[str, Agent], requests: list[Request]) -> list[Plan]:
    """Plans for requests of many sessions: requests with the same model and lookahead share every
    forward pass of one batched decode (the histories may differ in length)."""
    plans: list[Plan | None] = [None] * len(requests)
    kinds = sorted({(r.session.settings.model, r.session.settings.lookahead) for r in requests})
    for name, n in kinds:  # one batch per model and lookahead: batching never changes a plan
        agent = agents[name]
        group = [
            i
            for i, r in enumerate(requests)
            if (r.session.settings.model, r.session.settings.lookahead) == (name, n)
        ]
        if agent.teacher is not None:
            fill_intros(agent, [requests[i] for i in group if requests[i].intro])
        forced = torch.full((len(group), n), FREE, dtype=torch.long)
        prompts = []
        for row, i in enumerate(group):
            r = requests[i]
            forced[row, : r.n_commit] = torch.tensor(r.chords[r.frame : r.frame + r.n_commit])
            prompts.append(_prompt(agent, r.melody, r.chords, n))
        sessions = [requests[i].session for i in group]
        if agent.model not in DECODERS:
            DECODERS[agent.model] = Decoder(agent.model)
        chords, melody = sample_plans(
            DECODERS[agent.model],
            prompts,
            forced,
            [s.settings.temperature for s in sessions],
            [s.generator for s in sessions],
        )
        for row, i in enumerate(group):
            plans[i] = Plan(requests[i].frame, chords[row].tolist(), melody[row].tolist())
    return plans
