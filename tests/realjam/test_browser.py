"""The real page in headless Chromium (Playwright driving Debian's chromium) against the live server.

Semantics under test: a melody played on the page's computer-keyboard input reaches the server at the frames
the page's clock showed (+-1), planned chords appear above the playhead (in the page's plan buffer and as blue
pixels on the canvas), the AudioContext runs, the jam exports as a two-part MIDI file, no script error
occurs; a screenshot of the page is saved in the run directory. Skipped only where chromium or playwright is
missing (`make setup` installs both: .ci/system-packages.txt, the `web` extra).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pretty_midi
import pytest
import torch

from realjam.model import OnlineModel, Teacher
from realjam.sampling import Agent
from realjam.server import LiveServer, load_agents

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (make setup)"
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup)")

MELODY = "asdfghjk"  # C D E F G A B C from middle C (the keys' labels on the page's piano)
PITCHES = [60, 62, 64, 65, 67, 69, 71, 72]


def play_page(server, screenshot: Path, bpm: int, silence_beats: int, first_frame: int, gap: int):
    """Open the page, start a jam, play MELODY (one key every ``gap`` frames from ``first_frame``), and
    return what the page and the server (its one session's note events) saw."""
    url = server.url
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = browser.new_page(viewport={"width": 1150, "height": 760})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function("document.querySelector('#model').options.length > 0")
            page.fill("#bpm", str(bpm))
            page.fill("#silence", str(silence_beats))
            page.fill("#lookahead", "4")
            page.fill("#commit", "2")
            page.click("#start")
            pressed = []  # (pitch, page frame just before, just after the key press)
            for i, (key, pitch) in enumerate(zip(MELODY, PITCHES)):
                page.wait_for_function(f"window.__jam.frame() >= {first_frame + gap * i}")
                before = page.evaluate("window.__jam.frame()")
                page.keyboard.down(key)
                after = page.evaluate("window.__jam.frame()")
                pressed.append((pitch, before, after))
                page.wait_for_function(f"window.__jam.frame() >= {after + gap // 2}")
                if i == len(MELODY) - 1:  # the picture: a key down, chords falling toward it
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                page.keyboard.up(key)
            end = first_frame + gap * len(MELODY) + 12
            page.wait_for_function(f"window.__jam.frame() >= {end}")
            seen = page.evaluate(
                """() => ({audio: __jam.ctx.state, plans: __jam.plans, ahead: __jam.plannedAhead(),
                   blue: __jam.bluePixelsAbove(), playhead: __jam.frame(), errors: __jam.errors,
                   midi: __jam.midiBytes()})"""
            )
            seen["page_errors"] = errors
            seen["server_events"] = [list(s.events) for s in server.server.sessions.values()]
            seen["pressed"] = pressed
            return seen
        finally:
            browser.close()


def check(seen: dict) -> None:
    (events,) = seen["server_events"]  # one jam, one session
    assert seen["page_errors"] == [] and seen["errors"] == []
    assert seen["audio"] == "running"
    assert seen["plans"] >= 5
    assert seen["ahead"] >= 1  # planned chords ahead of the playhead (the page's plan buffer)
    assert seen["blue"] > 100  # ... and drawn: blue pixels above the playhead on the canvas
    ons = [e for e in events if e.on]
    assert [e.pitch for e in ons] == PITCHES
    for e, (pitch, before, after) in zip(ons, seen["pressed"]):
        assert before - 1 <= e.frame <= after + 1, (pitch, e.frame, before, after)
    offs = [e for e in events if not e.on]
    assert [e.pitch for e in offs] == PITCHES and all(
        off.frame > on.frame for on, off in zip(ons, offs)
    )
    midi = bytes(seen["midi"])
    assert midi[:4] == b"MThd" and midi.count(b"MTrk") == 3  # tempo, the user's part, the agent's
    user, agent = pretty_midi.PrettyMIDI(io.BytesIO(midi)).instruments
    assert [n.pitch for n in user.notes] == PITCHES and len(agent.notes) > 0


def test_the_page_plays_a_melody_and_shows_the_plan(tmp_path):
    torch.manual_seed(0)
    teacher = Teacher(32, 2, 2, 64, 0.0)
    agents = {"rl": Agent(OnlineModel(32, 2, 2, 64, 0.0), teacher)}
    run_dir = tmp_path / "runs" / "realjam" / "browser"
    with LiveServer(agents) as server:
        seen = play_page(
            server, run_dir / "jam.png", bpm=240, silence_beats=4, first_frame=4, gap=4
        )
    check(seen)
    assert (run_dir / "jam.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_page_with_the_quick_model(tmp_path):
    """The same with the quick run's agents at 120 BPM; its screenshot is the README's (results/)."""
    runs = Path("runs/realjam/quick")
    if not (runs / "rl_seed0").is_dir():
        pytest.skip("no quick run in runs/realjam/quick (make realjam)")
    with LiveServer(load_agents(runs)) as server:
        seen = play_page(server, runs / "jam.png", bpm=120, silence_beats=4, first_frame=2, gap=6)
    check(seen)
