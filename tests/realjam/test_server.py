"""The live server over real loopback WebSockets (realjam.server), with a tiny randomly initialised agent.

Semantics under test:
- simulated players jamming at once get plans that keep the protocol (no committed chord changes, no late
  frame, every plan covers the lookahead); the control server that ignores the commit window fails;
- malformed, oversized, out-of-order, unknown and absurd messages get an error reply, and that session and
  the others keep working; a client vanishing mid-plan harms nobody;
- sessions are isolated: one never sees another's notes or settings, and its plans do not depend on them;
- only the client folder is served: path traversal gets 404;
- the command line: --help, and a missing run folder is a one-line error (exit 2); agents load from runs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch
from aiohttp import ClientSession, WSMsgType

from common.config import load_config
from common.runner import Run
from realjam.config import CONFIG_DIR, RealJamConfig
from realjam.jamsim import BAD_MESSAGES, jam_many, measure, play_jam, summarise
from realjam.model import OnlineModel, Teacher
from realjam.sampling import Agent
from realjam.server import LiveServer, load_agents, main
from realjam.store import BUILDERS

JAM = {"bpm": 240.0, "lookahead": 16, "commit": 8, "silence_beats": 4, "temperature": 1.0}


def tiny_agents() -> dict[str, Agent]:
    torch.manual_seed(0)
    teacher = Teacher(32, 2, 2, 64, 0.0)
    return {
        "rl": Agent(OnlineModel(32, 2, 2, 64, 0.0), teacher),
        "mle": Agent(OnlineModel(32, 2, 2, 64, 0.0), teacher),
    }


@pytest.fixture(scope="module")
def server():
    with LiveServer(tiny_agents()) as s:
        yield s


async def _exchange(ws, message) -> dict:
    if isinstance(message, bytes):
        await ws.send_bytes(message)
    elif isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_json(message)
    reply = await ws.receive(10)
    assert reply.type == WSMsgType.TEXT, reply
    return json.loads(reply.data)


def _ws(http: ClientSession, server):
    return http.ws_connect(server.url + "ws")


def test_simulated_jams_keep_the_protocol(server):
    logs = asyncio.run(jam_many(server.url, JAM, sessions=3, beats=16))
    result = summarise(logs)
    assert result["plans"] == 3 * 17  # one a beat, frames 0..64 (plans start at 16 - lookahead = 0)
    assert result["errors"] == 0
    assert result["committed_changes"] == 0
    assert result["plans_short_of_lookahead"] == 0
    assert result["late_frames"] == 0, result
    assert max(server.server.planner.batches) > 1  # the three players' requests met in one batch


def test_the_control_server_ignoring_the_commit_window_is_caught():
    with LiveServer(tiny_agents(), honor_commit=False) as control:
        logs = asyncio.run(jam_many(control.url, {**JAM, "temperature": 1.5}, sessions=1, beats=8))
    assert summarise(logs)["committed_changes"] > 0


def test_bad_messages_get_errors_and_every_session_carries_on(server):
    async def go():
        async with ClientSession() as http, _ws(http, server) as ws, _ws(http, server) as other:
            assert (await _exchange(ws, {"type": "hello", **JAM, "silence_beats": 1}))[
                "type"
            ] == "config"
            assert (await _exchange(other, {"type": "hello", **JAM, "silence_beats": 1}))[
                "type"
            ] == "config"
            ok = await _exchange(ws, {"type": "notes", "frame": 8, "events": []})
            assert ok["type"] == "plan" and len(ok["chords"]) == 16
            bad = [m(8) for m in BAD_MESSAGES] + [
                {"type": "notes", "frame": 4},  # out of order: before the previous request
                {"type": "notes", "frame": True},
                {"type": "notes", "frame": 12, "events": [{"pitch": 60, "frame": 12, "on": True}]},
                {"type": "notes", "frame": 12, "events": [{"pitch": 60}]},
                {"type": "notes", "frame": 12, "events": [{"pitch": 60, "frame": 1}] * 600},
                {"type": "hello", "bpm": "fast"},
                {"type": "hello", "bpm": 0.001},
                {"type": "hello", "lookahead": 1000},
                {"type": "hello", "lookahead": 8.5},
                {"type": "settings", "model": "gpt-5"},
                {"type": "settings", "temperature": float("nan")},
                {"type": None},
                {},
            ]
            for message in bad:
                reply = await _exchange(ws, message)
                assert reply["type"] == "error" and reply["message"], (message, reply)
            state = await _exchange(ws, {"type": "state"})
            assert state["frame"] == 8 and state["events"] == [] and state["plans"] == 1
            again = await _exchange(ws, {"type": "notes", "frame": 12, "events": []})
            assert again["type"] == "plan" and again["start_frame"] == 12
            assert again["tokens"][:4] == ok["tokens"][4:8]  # committed frames 12..15 kept
            theirs = await _exchange(other, {"type": "notes", "frame": 8, "events": []})
            assert theirs["type"] == "plan"
            pong = await _exchange(ws, {"type": "ping", "t": 123.5})
            assert pong == {"type": "pong", "t": 123.5}

    asyncio.run(go())


def test_a_message_beyond_one_mebibyte_closes_only_that_connection(server):
    async def go():
        async with ClientSession() as http, _ws(http, server) as ws, _ws(http, server) as other:
            await ws.send_str(json.dumps({"type": "notes", "frame": 0, "pad": "x" * 2_000_000}))
            msg = await ws.receive(10)
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
            assert (await _exchange(other, {"type": "hello", **JAM}))["type"] == "config"

    asyncio.run(go())


def test_a_client_vanishing_mid_plan_harms_nobody(server):
    async def go():
        async with ClientSession() as http:
            for _ in range(3):
                async with _ws(http, server) as ws:
                    await _exchange(ws, {"type": "hello", **JAM, "silence_beats": 0})
                    await ws.send_json({"type": "notes", "frame": 20, "events": []})
                # closed before the plan came back
            async with _ws(http, server) as ws:
                await _exchange(ws, {"type": "hello", **JAM, "silence_beats": 0})
                assert (await _exchange(ws, {"type": "notes", "frame": 4}))["type"] == "plan"
        for _ in range(100):  # the server forgets closed sessions
            if not server.server.sessions:
                break
            await asyncio.sleep(0.05)
        assert not server.server.sessions

    asyncio.run(go())


def test_sessions_are_isolated(server):
    greedy = {**JAM, "temperature": 0.0, "silence_beats": 1}

    async def alone_and_together():
        async with ClientSession() as http:
            async with _ws(http, server) as a:
                await _exchange(a, {"type": "hello", **greedy})
                alone = await _exchange(
                    a,
                    {
                        "type": "notes",
                        "frame": 8,
                        "events": [{"pitch": 60, "frame": 2, "on": True}],
                    },
                )
            async with _ws(http, server) as a, _ws(http, server) as b:
                hello_a = await _exchange(a, {"type": "hello", **greedy})
                hello_b = await _exchange(
                    b, {"type": "hello", **greedy, "temperature": 1.5, "commit": 4, "seed": 7}
                )
                assert hello_a["session"] != hello_b["session"]
                await _exchange(
                    b,
                    {
                        "type": "notes",
                        "frame": 4,
                        "events": [{"pitch": 72, "frame": 1, "on": True}],
                    },
                )
                # both ask at once: one batch, yet each plan is its own
                together, theirs = await asyncio.gather(
                    _exchange(
                        a,
                        {
                            "type": "notes",
                            "frame": 8,
                            "events": [{"pitch": 60, "frame": 2, "on": True}],
                        },
                    ),
                    _exchange(b, {"type": "notes", "frame": 8, "events": []}),
                )
                state_a = await _exchange(a, {"type": "state"})
                state_b = await _exchange(b, {"type": "state"})
        return alone, together, theirs, state_a, state_b

    alone, together, theirs, state_a, state_b = asyncio.run(alone_and_together())
    assert (
        together["tokens"] == alone["tokens"]
    )  # B's notes, settings and model changed nothing of A's
    assert theirs["type"] == "plan" and theirs["commit_until"] == 12
    assert [e["pitch"] for e in state_a["events"]] == [60]
    assert [e["pitch"] for e in state_b["events"]] == [72]
    assert state_a["settings"]["temperature"] == 0.0 and state_b["settings"]["temperature"] == 1.5


def _http_get(port: int, raw_path: str) -> int:
    """Status of a GET sent byte for byte (no client-side path normalisation)."""

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return int(line.split()[1])

    return asyncio.run(go())


@pytest.mark.parametrize(
    "path",
    [
        "/../server.py",
        "/../../pyproject.toml",
        "/%2e%2e/server.py",
        "/..%2fserver.py",
        "/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/style.css/../../server.py",
        "//etc/passwd",
        "/etc/passwd",
        "/README.md",
        "/nothing.js",
    ],
)
def test_path_traversal_gets_404(server, path):
    assert _http_get(server.port, path) == 404


def test_the_client_and_the_model_list_are_served(server):
    async def go():
        async with ClientSession() as http:
            pages = {}
            for path in ("", "app.js", "style.css", "index.html"):
                async with http.get(server.url + path) as r:
                    pages[path] = (r.status, await r.text())
            async with http.get(server.url + "models") as r:
                return pages, await r.json()

    pages, models = asyncio.run(go())
    assert all(status == 200 for status, _ in pages.values())
    assert "<canvas" in pages[""][1] and "WebSocket" in pages["app.js"][1]
    assert "http" not in pages[""][1].replace(
        "http-equiv", ""
    )  # no CDN: nothing loaded from elsewhere
    assert models["models"] == ["rl", "mle"] and models["max_lookahead"] == 48


def test_command_line_help_and_a_missing_run_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["--runs", str(tmp_path / "nowhere")])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m realjam.server: error:") and "\n" not in err


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A runs folder like `make realjam` leaves (rl, mle, teacher run directories), with tiny networks."""
    out = tmp_path_factory.mktemp("runs")
    for stage in ("rl", "mle", "teacher"):
        overrides = [
            f"out_dir={out}",
            f"name=quick/{stage}_seed0",
            f"stage={stage}",
            "progress=false",
        ]
        overrides += ["net.dim=16", "net.layers=1", "net.heads=2"]
        cfg = load_config(RealJamConfig, "quick", overrides, CONFIG_DIR)
        with Run(cfg, paper="realjam") as run:
            run.track(model=BUILDERS[stage](cfg))
            run.save(1)
    return out / "realjam" / "quick"


def test_agents_load_from_a_runs_folder(tiny_runs):
    agents = load_agents(tiny_runs)
    assert sorted(agents) == ["mle", "rl"] and agents["rl"].teacher is not None
    assert agents["rl"].max_frames == 64


def test_the_benchmark_measures_every_issue_key(tiny_runs, tmp_path):
    """`make realjam`'s latency step: `python -m realjam.server` in its own process, jams alone and at once."""
    fast = {"bpm": 240.0, "silence_beats": 4}
    result = measure(
        tiny_runs, beats=8, sessions=2, settings=fast, plot_to=tmp_path / "latency.png"
    )
    for key in ("latency/p50_ms", "latency/p95_ms", "latency/p99_ms", "latency2/p99_ms"):
        assert 0 < result[key] < 5000
    assert result["protocol/committed_changes"] == 0
    assert result["protocol/plans_short_of_lookahead"] == 0
    assert result["protocol/errors"] == 0
    assert result["protocol/late_frames"] == 0
    assert (tmp_path / "latency.png").stat().st_size > 5000


@pytest.mark.slow
def test_soak_eight_jams_with_bad_messages_lose_no_plan():
    """Two minutes of 8 simulated jams at 120 BPM against the quick model's server in its own process,
    a bad message before one request in five: every bad message gets its error, no plan is lost or late."""
    from realjam.jamsim import ServerProcess

    runs = Path("runs/realjam/quick")
    if not (runs / "rl_seed0").is_dir():
        pytest.skip("no quick run in runs/realjam/quick (make realjam)")
    beats, sessions = 240, 8
    settings = {"bpm": 120.0, "lookahead": 16, "commit": 8, "silence_beats": 8}

    async def jams(url):
        players = (
            play_jam(url, {**settings, "seed": i}, beats, seed=i, bad_rate=0.2)
            for i in range(sessions)
        )
        return await asyncio.wait_for(asyncio.gather(*players), timeout=beats * 0.5 + 120)

    with ServerProcess(runs) as server:
        logs = asyncio.run(jams(server.url))
    result = summarise(logs)
    bad = sum(log.bad_sent for log in logs)
    assert bad > 100 and result["errors"] == bad  # each bad message answered, no good one refused
    assert result["plans"] == sessions * (beats + 1 - (32 - 16) // 4)  # from frame 16 to 4 * beats
    assert result["late_frames"] == 0, result
    assert result["committed_changes"] == 0 and result["plans_short_of_lookahead"] == 0
