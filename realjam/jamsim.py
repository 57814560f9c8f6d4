"""Simulated players for the live server: request-to-plan latency and the protocol invariants.

A player is a WebSocket client that owns its clock like the browser does: it plays a melody at the tempo with
N(0, jitter) timing noise, quantises each key press/release to the nearest sixteenth-note frame, and asks for a
plan once a beat, sending the events of frames before the playhead. It records when each plan arrived.
:func:`check_protocol` then replays the client's plan buffer (ReaLJam §3.2 client merge) and counts

- ``committed_changes``: chords of frames an earlier plan had committed that a later plan changed;
- ``late_frames``: frames after the intro whose chord was not in the buffer ``commit`` frames before they
  played, or not yet committed when they played;
- ``plans_short_of_lookahead``: plans that did not cover ``[frame, frame + lookahead)``.

:func:`measure` runs the benchmark of ``make realjam``: one 64-beat jam at 120 BPM, then 8 at once, against a
server in its own process (as the browser would talk to it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import ClientSession, WSMsgType

from realjam.live import BEAT

SCALE = (0, 2, 4, 5, 7, 9, 11)  # C major


# Bad messages a robust server answers with an error and otherwise ignores (``r``: the request frame).
BAD_MESSAGES = (
    lambda r: "{not json",
    lambda r: "[1, 2, 3]",
    lambda r: json.dumps({"type": "dance"}),
    lambda r: json.dumps({"type": "notes", "frame": "soon"}),
    lambda r: json.dumps(
        {"type": "notes", "frame": max(r - 64, 0) - 1}
    ),  # before an earlier request
    lambda r: json.dumps(
        {"type": "notes", "frame": r, "events": [{"pitch": 999, "frame": 0, "on": 1}]}
    ),
    lambda r: json.dumps({"type": "notes", "frame": r, "events": "C major"}),
    lambda r: json.dumps({"type": "settings", "bpm": 1e9}),
    lambda r: json.dumps({"type": "settings", "lookahead": -4}),
    lambda r: json.dumps({"type": "notes", "frame": r, "pad": "x" * 70_000}),
    lambda r: b"\x00\x01binary",
)


def synthetic_melody(beats: int, seed: int) -> list[tuple[int, int, int]]:
    """(pitch, on_frame, off_frame) notes: a random walk on C major around C5 in quarters, eighths and halves,
    with a few rests (ours: no data loading in the benchmark)."""
    rng = random.Random(seed)
    notes, frame, degree = [], 0, 7
    while frame < beats * BEAT:
        length = rng.choice((2, 4, 4, 4, 8))
        if rng.random() < 0.1:  # a rest
            frame += length
            continue
        degree = min(max(degree + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0), 13)
        pitch = 60 + 12 * (degree // 7) + SCALE[degree % 7]
        end = min(frame + length, beats * BEAT)
        notes.append((pitch, frame, end))
        frame = end
    return notes


@dataclass
class JamLog:
    """What one simulated player saw: its settings, when each request left and each plan arrived."""

    settings: dict
    frames: int
    t0: float
    frame_s: float
    sent: dict[int, float] = field(default_factory=dict)  # request frame -> send time
    plans: list[tuple[float, dict]] = field(default_factory=list)  # (arrival time, plan message)
    errors: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # the note events sent
    bad_sent: int = 0  # bad messages mixed in (each must come back as an error)

    def latencies_ms(self) -> list[float]:
        return [1000 * (t - self.sent[p["start_frame"]]) for t, p in self.plans]


def check_protocol(log: JamLog) -> dict[str, int]:
    """The client's plan buffer over a jam: committed chords never change, every frame after the intro was
    planned ``commit`` frames ahead and committed before it played, every plan covers the lookahead."""
    s = log.settings
    lookahead, commit, silence = s["lookahead"], s["commit"], BEAT * s["silence_beats"]
    buffer: dict[int, int] = {}
    first_planned: dict[int, float] = {}
    committed_at: dict[int, float] = {}
    committed_until = changes = short = 0
    for arrived, plan in sorted(log.plans, key=lambda p: p[0]):
        start, tokens = plan["start_frame"], plan["tokens"]
        if len(tokens) < lookahead or start not in log.sent:
            short += 1
        for i, token in enumerate(tokens):
            f = start + i
            if f < committed_until:
                changes += buffer.get(f) != token
                continue  # the client keeps committed chords whatever a plan says
            buffer[f] = token
            first_planned.setdefault(f, arrived)
        for f in range(committed_until, plan["commit_until"]):
            committed_at.setdefault(f, arrived)
        committed_until = max(committed_until, plan["commit_until"])
    late = 0
    for f in range(silence, log.frames):
        play = log.t0 + f * log.frame_s
        planned = first_planned.get(f, float("inf")) <= play - commit * log.frame_s
        late += not (planned and committed_at.get(f, float("inf")) <= play)
    return {"late_frames": late, "committed_changes": changes, "plans_short_of_lookahead": short}


async def play_jam(
    url: str,
    settings: dict,
    beats: int = 64,
    jitter_ms: float = 20.0,
    seed: int = 0,
    request_every: int = BEAT,
    start_in: float = 0.3,
    timeout: float = 30.0,
    bad_rate: float = 0.0,
) -> JamLog:
    """Jam ``beats`` beats against the server at ``url`` (http://127.0.0.1:PORT/) and log what arrived.

    ``bad_rate``: the chance that a bad message (:data:`BAD_MESSAGES`) goes out before a request; each one
    must be answered with an error and change nothing (``log.bad_sent`` counts them)."""
    rng = random.Random(seed + 1000)
    frame_s = 60.0 / settings.get("bpm", 120.0) / BEAT
    frames = beats * BEAT
    loop = asyncio.get_running_loop()
    async with ClientSession() as http, http.ws_connect(url.rstrip("/") + "/ws") as ws:
        await ws.send_json({"type": "hello", **settings})
        config = await asyncio.wait_for(ws.receive_json(), timeout)
        if config.get("type") != "config":
            raise RuntimeError(f"server refused the settings: {config}")
        log = JamLog(config["settings"], frames, loop.time() + start_in, frame_s)
        # Key presses and releases at jittered times, quantised by the "client" to the nearest frame.
        notes = synthetic_melody(beats, seed)
        on_t = [log.t0 + on * frame_s + rng.gauss(0, jitter_ms / 1000) for _, on, _ in notes]
        pending = []
        for i, (pitch, _, off) in enumerate(notes):
            off_t = log.t0 + off * frame_s + rng.gauss(0, jitter_ms / 1000)
            if i + 1 < len(notes):  # a key is released before the next one is pressed
                off_t = min(off_t, on_t[i + 1] - 1e-3)
            for t, is_on in ((on_t[i], True), (max(off_t, on_t[i] + 1e-3), False)):
                q = max(round((t - log.t0) / frame_s), 0)
                pending.append((t, {"pitch": pitch, "frame": q, "on": is_on}))
        pending.sort(key=lambda p: p[0])
        requests = range(0, frames + 1, request_every)
        bad = {r: rng.choice(BAD_MESSAGES) for r in requests if rng.random() < bad_rate}
        log.bad_sent = len(bad)

        async def receive() -> None:  # one reply per message: plan, wait (intro) or error
            for _ in range(len(requests) + len(bad)):
                msg = await ws.receive(timeout)
                if msg.type != WSMsgType.TEXT:
                    log.errors.append(f"connection: {msg.type.name}")
                    return
                data = json.loads(msg.data)
                if data["type"] == "plan":
                    log.plans.append((loop.time(), data))
                elif data["type"] == "error":
                    log.errors.append(data["message"])

        receiver = asyncio.create_task(receive())
        for r in requests:
            await asyncio.sleep(max(log.t0 + r * frame_s - loop.time(), 0))
            now = loop.time()
            ready = [e for t, e in pending if e["frame"] < r and t <= now]
            pending = [(t, e) for t, e in pending if not (e["frame"] < r and t <= now)]
            log.events += ready
            if r in bad:
                message = bad[r](r)
                await (ws.send_bytes if isinstance(message, bytes) else ws.send_str)(message)
            log.sent[r] = now
            await ws.send_json({"type": "notes", "frame": r, "events": ready, "t": now})
        await asyncio.wait_for(receiver, timeout + 2 * len(requests) * frame_s)
    return log


async def jam_many(
    url: str, settings: dict, sessions: int, beats: int, seed: int = 0
) -> list[JamLog]:
    """``sessions`` players jamming at once, each with its own melody (their requests meet in batches)."""
    return list(
        await asyncio.gather(
            *(
                play_jam(url, {**settings, "seed": seed + i}, beats, seed=seed + i)
                for i in range(sessions)
            )
        )
    )


def summarise(logs: list[JamLog]) -> dict[str, float]:
    """Latency percentiles (ms) over every plan of the jams, and the summed protocol counts."""
    latencies = np.array([x for log in logs for x in log.latencies_ms()])
    if len(latencies) == 0:
        raise RuntimeError("no plan arrived: is the jam longer than the intro silence?")
    out = {f"p{q}_ms": round(float(np.percentile(latencies, q)), 2) for q in (50, 95, 99)}
    out["plans"] = len(latencies)
    out["errors"] = sum(len(log.errors) for log in logs)
    for log in logs:
        for key, value in check_protocol(log).items():
            out[key] = out.get(key, 0) + value
    return out


class ServerProcess:
    """``python -m realjam.server`` on 127.0.0.1 and a free port, in its own process (as in real use)."""

    def __init__(self, runs: str | Path, start_timeout: float = 120.0):
        self.runs, self.start_timeout = str(runs), start_timeout

    def __enter__(self) -> ServerProcess:
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realjam.server", "--runs", self.runs, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self.log,  # a file, not a pipe: a chatty server never blocks on a full pipe
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], self.start_timeout)
        line = self.proc.stdout.readline() if ready else ""  # "realjam server: open http://..."
        if "http://" not in line:
            self.proc.kill()
            self.proc.wait(10)
            self.log.seek(0)
            raise RuntimeError(f"the server did not start: {self.log.read()[-2000:]}")
        self.url = line.split("open ", 1)[1].split()[0]
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


DEFAULT_JAM = {
    "bpm": 120.0,
    "lookahead": 16,
    "commit": 8,
    "silence_beats": 8,
    "temperature": 1.0,
    "model": "rl",
}


def plot_latency(one: list[JamLog], many: list[JamLog], path: Path) -> None:
    """Histogram of request-to-plan latency, alone and with 8 jams, with p50/p95/p99 and the budgets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for logs, label, color in (
        (one, "1 jam", "tab:blue"),
        (many, f"{len(many)} jams at once", "tab:orange"),
    ):
        x = np.array([v for log in logs for v in log.latencies_ms()])
        ax.hist(x, bins=40, alpha=0.6, color=color, density=True, label=label)
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            ax.axvline(np.percentile(x, q), color=color, ls=style, lw=1)
    log = one[0]
    budget = 1000 * log.frame_s * (log.settings["lookahead"] - BEAT - log.settings["commit"])
    ax.axvline(1000 * log.frame_s, color="k", lw=1, label="one frame (sixteenth)")
    ax.axvline(budget, color="r", lw=1, label="budget before a frame is late")
    ax.set_xlabel("request -> plan latency (ms); lines: p50 solid, p95 dashed, p99 dotted")
    ax.set_ylabel("density")
    ax.set_title(
        f"{log.frames // BEAT}-beat jams at {log.settings['bpm']:g} BPM, lookahead {log.settings['lookahead']}"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def measure(
    runs: str | Path,
    beats: int = 64,
    sessions: int = 8,
    settings: dict | None = None,
    plot_to: Path | None = None,
) -> dict:
    """The issue-19 benchmark against the agents of ``runs`` (e.g. runs/realjam/quick): a ``beats``-beat
    jam at 120 BPM alone, then ``sessions`` at once. Result keys as in results.json (latency/..., latency8/...,
    protocol/...), plus the 1-minute load average while it ran."""
    settings = {**DEFAULT_JAM, **(settings or {})}
    started = time.time()
    with ServerProcess(runs) as server:
        one = asyncio.run(jam_many(server.url, settings, 1, beats))
        many = asyncio.run(jam_many(server.url, settings, sessions, beats, seed=100))
    a, b = summarise(one), summarise(many)
    if plot_to is not None:
        plot_latency(one, many, Path(plot_to))
    out = {f"latency/{k}": a[k] for k in ("p50_ms", "p95_ms", "p99_ms")}
    out.update({f"latency{sessions}/{k}": b[k] for k in ("p50_ms", "p95_ms", "p99_ms")})
    for key in ("late_frames", "committed_changes", "plans_short_of_lookahead"):
        out[f"protocol/{key}"] = a[key] + b[key]
    out["protocol/errors"] = a["errors"] + b["errors"]
    out["latency/load_avg_1min"] = round(os.getloadavg()[0], 2)
    out["latency/bench_s"] = round(time.time() - started, 1)
    return out
