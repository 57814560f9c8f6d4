"""ReaLJam's live server (arXiv 2502.21267 §3.2): WebSocket jam sessions, batched planning, the browser client.

    python -m realjam.server --runs runs/realjam/quick          # then open the printed URL
    make realjam-serve                                          # the same, training the quick model if missing

One WebSocket (``/ws``) per jam; every connection has its own :class:`realjam.live.JamSession`, so sessions
never see or change each other's state. Messages are JSON objects with a ``type``:

    client -> server                                     server -> client
    hello {bpm, lookahead, commit, silence_beats,        config {session, settings, models, max_lookahead}
           temperature, model, seed}  (starts a new jam)
    settings {...the same...}  (change mid-jam)          config
    notes {frame, events: [{pitch, frame, on}], t}       plan {start_frame, commit_until, chords: [{symbol,
                                                           pitches, onset}], tokens, anticipated, t, server_ms}
                                                         or wait {frame, plan_from, t} (the intro silence)
    ping {t}                                             pong {t}
    reset                                                config
    state                                                state {frame, events, plans, committed_until}

Anything malformed gets ``error {message}`` back and the session carries on. Plan requests of all sessions
are queued to one worker that runs every request waiting at that moment in one batched forward pass
(``realjam.live.plan_batch``) in a thread, so the event loop keeps answering while the model runs. Static
files come only from ``realjam/client/``. The server binds to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path

import torch
from aiohttp import WSMsgType, web

from common.cli import UsageError, entry_point
from common.runner import CheckpointError
from realjam.live import JamSession, NoteEvent, ProtocolError, Request, Settings, plan_batch
from realjam.sampling import Agent
from realjam.store import load_stage

CLIENT_DIR = Path(__file__).parent / "client"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
MAX_MESSAGE = (
    64 * 1024
)  # bytes of one message we read; larger ones get an error (up to 1 MiB) or a close
MAX_SESSIONS = 64
MAX_BATCH = 16
BATCH_WINDOW = 0.004  # seconds the planner waits for more requests when several jams are open


def load_agents(runs: str | Path) -> dict[str, Agent]:
    """The quick run's agents: ``rl`` (RL-tuned) and ``mle``, both with the offline teacher for the intro."""
    runs = Path(runs)
    found = {s: sorted(runs.glob(f"{s}_seed*")) for s in ("rl", "mle", "teacher")}
    if not found["rl"] and not found["mle"]:
        raise CheckpointError(f"{runs}: no rl_seed*/mle_seed* run directories (run `make realjam`)")
    teacher = load_stage(found["teacher"][0], "teacher") if found["teacher"] else None
    return {s: Agent(load_stage(found[s][0], s), teacher) for s in ("rl", "mle") if found[s]}


class Planner:
    """Collects plan requests from every session and answers each batch with one ``plan_batch`` call."""

    def __init__(self, agents: dict[str, Agent], others_jamming=lambda: False):
        self.agents, self.others_jamming = agents, others_jamming
        self.queue: asyncio.Queue = asyncio.Queue()
        # One thread, one torch thread (CONTRACT: the box is shared; two intra-op threads fight there).
        self.pool = ThreadPoolExecutor(
            1,
            thread_name_prefix="realjam-planner",
            initializer=torch.set_num_threads,
            initargs=(1,),
        )
        self.batches: list[int] = []  # batch sizes, for the benchmark and the tests
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=True)

    async def plan(self, request: Request):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((request, future))
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            if self.others_jamming():  # players on one clock ask together: let their requests land
                await asyncio.sleep(BATCH_WINDOW)
            while not self.queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self.queue.get_nowait())
            self.batches.append(len(batch))
            requests = [r for r, _ in batch]
            try:
                plans = await loop.run_in_executor(self.pool, plan_batch, self.agents, requests)
            except (
                Exception
            ) as err:  # a bug must not kill the worker: every waiting session hears of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"planning failed: {err}"))
                continue
            for (_, future), plan in zip(batch, plans):
                if not future.done():
                    future.set_result(plan)


def _settings(message: dict, base: Settings, agents: dict[str, Agent]) -> Settings:
    """Settings from a hello/settings message on top of ``base``, type- and range-checked."""
    values = asdict(base)
    for f in fields(Settings):
        if f.name not in message:
            continue
        v = message[f.name]
        ok = isinstance(v, str) if f.type == "str" else isinstance(v, int | float)
        if not ok or isinstance(v, bool):
            raise ProtocolError(f"{f.name} must be a {'string' if f.type == 'str' else 'number'}")
        if f.type == "int" and v != int(v):
            raise ProtocolError(f"{f.name} must be a whole number, got {v}")
        values[f.name] = int(v) if f.type == "int" else float(v) if f.type == "float" else v
    settings = Settings(**values)
    max_lookahead = min(a.max_frames for a in agents.values()) - 16
    settings.check(max_lookahead, tuple(agents))
    return settings


def _events(raw) -> list[NoteEvent]:
    if not isinstance(raw, list):
        raise ProtocolError("events must be a list")
    out = []
    for e in raw:
        if not isinstance(e, dict) or not all(k in e for k in ("pitch", "frame", "on")):
            raise ProtocolError("each event needs pitch, frame and on")
        if not all(
            isinstance(e[k], int) and not isinstance(e[k], bool) for k in ("pitch", "frame")
        ):
            raise ProtocolError("event pitch and frame must be integers")
        out.append(NoteEvent(e["pitch"], e["frame"], bool(e["on"])))
    return out


class JamServer:
    """The aiohttp application: pages, the model list and one WebSocket jam per connection."""

    def __init__(self, agents: dict[str, Agent], honor_commit: bool = True):
        self.agents, self.honor_commit = agents, honor_commit
        self.planner = Planner(agents, others_jamming=lambda: len(self.sessions) > 1)
        self.sessions: dict[str, JamSession] = {}
        self.app = web.Application(client_max_size=MAX_MESSAGE)
        self.app.router.add_get("/", self.index)
        self.app.router.add_get("/models", self.models)
        self.app.router.add_get("/ws", self.websocket)
        self.app.router.add_get("/{name:.*}", self.static)
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)

    async def _start(self, app) -> None:
        self.planner.start()

    async def _stop(self, app) -> None:
        await self.planner.stop()

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(CLIENT_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        """Files of the client folder only: anything resolving elsewhere (``..``, links) is a 404."""
        root = CLIENT_DIR.resolve()
        path = (root / request.match_info["name"]).resolve()
        if not path.is_relative_to(root) or not path.is_file() or path.suffix not in STATIC_TYPES:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix]})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(self._config_body())

    def _config_body(self) -> dict:
        return {
            "models": list(self.agents),
            "max_lookahead": min(a.max_frames for a in self.agents.values()) - 16,
            "defaults": asdict(Settings()),
        }

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=1024 * 1024, heartbeat=30)
        await ws.prepare(request)
        if len(self.sessions) >= MAX_SESSIONS:
            await ws.send_json({"type": "error", "message": "server full: too many jams"})
            await ws.close()
            return ws
        sid = uuid.uuid4().hex
        session = JamSession(honor_commit=self.honor_commit)
        self.sessions[sid] = session
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await ws.send_json({"type": "error", "message": "send JSON text messages"})
                    continue
                reply = await self._handle(sid, session, msg.data)
                if ws.closed:
                    break
                await ws.send_json(reply)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            del self.sessions[sid]
        return ws

    async def _handle(self, sid: str, session: JamSession, data: str) -> dict:
        """One message in, one reply out; a bad message becomes an error reply and nothing else."""
        received = time.perf_counter()
        try:
            if len(data) > MAX_MESSAGE:
                raise ProtocolError(f"message larger than {MAX_MESSAGE} bytes")
            try:
                message = json.loads(data)
            except json.JSONDecodeError as err:
                raise ProtocolError(f"not JSON: {err.msg}") from None
            if not isinstance(message, dict):
                raise ProtocolError("a message must be a JSON object")
            kind, stamp = message.get("type"), message.get("t")
            if kind == "notes":
                frame = message.get("frame")
                if not isinstance(frame, int) or isinstance(frame, bool):
                    raise ProtocolError("notes needs an integer frame")
                request = session.request(frame, _events(message.get("events", [])))
                if request is None:
                    return {
                        "type": "wait",
                        "frame": frame,
                        "plan_from": session.settings.plan_from,
                        "t": stamp,
                    }
                plan = await self.planner.plan(request)
                session.accept(request, plan)
                return {
                    "type": "plan",
                    "start_frame": plan.start,
                    "commit_until": session.committed_until,
                    "chords": plan.chords(),
                    "tokens": plan.chord_tokens,
                    "anticipated": plan.anticipated_pitches(),
                    "t": stamp,
                    "server_ms": round(1000 * (time.perf_counter() - received), 2),
                }
            if kind in ("hello", "settings"):
                settings = _settings(
                    message, Settings() if kind == "hello" else session.settings, self.agents
                )
                if kind == "hello":
                    session.reset(settings)
                else:
                    session.update(settings)
                return {
                    "type": "config",
                    "session": sid,
                    "settings": asdict(settings),
                    **self._config_body(),
                }
            if kind == "reset":
                session.reset(session.settings)
                return {
                    "type": "config",
                    "session": sid,
                    "settings": asdict(session.settings),
                    **self._config_body(),
                }
            if kind == "ping":
                return {"type": "pong", "t": stamp}
            if kind == "state":
                return {
                    "type": "state",
                    "frame": session.last_frame,
                    "events": [asdict(e) for e in session.events[-2000:]],
                    "plans": session.plans,
                    "committed_until": session.committed_until,
                    "settings": asdict(session.settings),
                }
            raise ProtocolError(f"unknown message type {kind!r}")
        except (ProtocolError, RuntimeError) as err:
            return {"type": "error", "message": str(err)}


class LiveServer:
    """A JamServer on 127.0.0.1 in a background thread (tests, benchmarks): ``with LiveServer(agents) as s``."""

    def __init__(self, agents: dict[str, Agent], host: str = "127.0.0.1", port: int = 0, **kwargs):
        self.server = JamServer(agents, **kwargs)
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        self.runner = web.AppRunner(self.server.app)
        asyncio.run_coroutine_threadsafe(self.runner.setup(), self.loop).result(30)
        site = web.TCPSite(self.runner, self.host, self.port)
        asyncio.run_coroutine_threadsafe(site.start(), self.loop).result(30)
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _serve(agents: dict[str, Agent], host: str, port: int) -> None:
    runner = web.AppRunner(JamServer(agents).app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    print(f"realjam server: open http://{host}:{bound}/ in a browser (Ctrl-C stops it)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@entry_point("python -m realjam.server")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m realjam.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--runs",
        default="runs/realjam/quick",
        help="a reproduce's run folder (rl_seed*, mle_seed*, teacher_seed*)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: loopback only)"
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free one)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    torch.set_num_threads(1)
    agents = load_agents(args.runs)
    try:
        asyncio.run(_serve(agents, args.host, args.port))
    except OSError as err:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None


if __name__ == "__main__":
    raise SystemExit(main())
