"""Issue 18's checks on the quick run (`make realjam`): minutes on a CPU, so marked slow.

The checks read runs/realjam/quick/results.json when it is newer than every file of the package (a fresh
`make realjam`); otherwise they run the quick reproduction themselves (about 15 minutes on 2 idle cores).
- MLE online model: chord NLL at least 1.0 nat below the chord-token unigram's, sampled harmony at least
  0.08 above random chords drawn from that unigram;
- teacher (sees the whole melody): chord NLL at least 0.3 below the online model's, harmony no worse than
  the online model's - 0.02;
- RL: harmony at least 0.05 above MLE on held-out melodies, silence and repetition rates at most 10%, at
  most 0.45 chord changes per frame and a KL to the starting model of at most 1.0 nat per chord token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import realjam
from realjam.reproduce import main as reproduce

pytestmark = pytest.mark.slow
RESULTS = Path("runs/realjam/quick/results.json")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    package = Path(realjam.__file__).parent
    newest_code = max(p.stat().st_mtime for p in package.rglob("*") if p.suffix in {".py", ".yaml"})
    if RESULTS.is_file() and RESULTS.stat().st_mtime > newest_code:
        return json.loads(RESULTS.read_text())
    out = tmp_path_factory.mktemp("runs")
    return reproduce("quick", [f"out_dir={out}", "progress=false"])


def test_mle_chord_nll_is_a_nat_below_the_unigram(quick):
    assert quick["mle/chord_nll"] <= quick["unigram/chord_nll"] - 1.0, (
        f"MLE {quick['mle/chord_nll']:.3f} vs unigram {quick['unigram/chord_nll']:.3f}"
    )


def test_mle_harmony_beats_random_chords(quick):
    assert quick["mle/harmony_rate"] >= quick["random/harmony_rate"] + 0.08, (
        f"MLE {quick['mle/harmony_rate']:.3f} vs random {quick['random/harmony_rate']:.3f}"
    )


def test_teacher_nll_is_below_the_online_models(quick):
    assert quick["teacher/chord_nll"] <= quick["mle/chord_nll"] - 0.3, (
        f"teacher {quick['teacher/chord_nll']:.3f} vs online {quick['mle/chord_nll']:.3f}"
    )


def test_teacher_harmony_is_no_worse_than_the_online_models(quick):
    assert quick["teacher/harmony_rate"] >= quick["mle/harmony_rate"] - 0.02, (
        f"teacher {quick['teacher/harmony_rate']:.3f} vs online {quick['mle/harmony_rate']:.3f}"
    )


def test_rl_raises_harmony_over_mle(quick):
    assert quick["rl/harmony_rate"] >= quick["mle/harmony_rate"] + 0.05, (
        f"RL {quick['rl/harmony_rate']:.3f} vs MLE {quick['mle/harmony_rate']:.3f}"
    )


def test_rl_does_not_hack_with_silence_or_repetition(quick):
    assert quick["rl/silence_rate"] <= 0.10
    assert quick["rl/repeat_rate"] <= 0.10


def test_rl_does_not_hack_by_changing_chord_every_frame(quick):
    assert quick["rl/chord_changes_per_frame"] <= 0.45, quick["rl/chord_changes_per_frame"]


def test_rl_stays_within_a_nat_of_its_start(quick):
    assert quick["rl/kl_per_chord_token"] <= 1.0, quick["rl/kl_per_chord_token"]
