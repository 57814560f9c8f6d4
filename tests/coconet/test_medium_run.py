"""The harmonisation issue's checks on the medium run (`make coconet-medium`, an hour on an idle CPU).

They read ``runs/coconet/medium/results.json`` (written by the pipeline; skipped when there is none):
- every result key the issue names is there;
- with the harmoniser's default settings, voices cross in at most 0.05 of simultaneities, and in at most
  0.10 at temperature 1.0 (the model itself must know the registers, not only the sampler);
- parallel fifths and octaves per voice-pair move below the time-shifted control's (stretch: <= 0.0015);
- notes outside their voice's range at most 0.02; simultaneities at most 1.4x Bach's;
- NLL per masked cell at least 0.25 below the tuned copy baseline; Gibbs beats ancestral by >= 3 s.e.
A threshold the run does not meet is a strict xfail whose reason gives the measured number.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parents[2] / "runs" / "coconet" / "medium" / "results.json"
ISSUE_KEYS = [
    "harmonize/voice_crossing_rate",
    "harmonize/parallel_5ths_8ves_per_move",
    "harmonize/out_of_voice_range_rate",
    "harmonize/simultaneities_ratio_to_bach",
    "harmonize_t1/voice_crossing_rate",
    "shifted_control/parallel_5ths_8ves_per_move",
    "bach/voice_crossing_rate",
    "shifted_control/voice_crossing_rate",
    "valid/nll_per_masked_cell",
    "baseline/copy_neighbour_nll",
    "samples/ancestral_minus_gibbs_in_stderrs",
    "wall_clock_s",
]


@pytest.fixture(scope="module")
def medium():
    if not RESULTS.is_file():
        pytest.skip(f"no {RESULTS}: run `make coconet-medium` first")
    return json.loads(RESULTS.read_text())


def test_every_issue_key_is_reported(medium):
    missing = [key for key in ISSUE_KEYS if key not in medium]
    assert not missing, f"missing result keys: {missing}"


def test_voices_keep_their_registers_at_the_default_temperature(medium):
    assert medium["harmonize/voice_crossing_rate"] <= 0.05


def test_voices_keep_their_registers_at_temperature_one(medium):
    assert medium["harmonize_t1/voice_crossing_rate"] <= 0.10


def test_fewer_parallels_than_the_shifted_control(medium):
    assert (
        medium["harmonize/parallel_5ths_8ves_per_move"]
        < medium["shifted_control/parallel_5ths_8ves_per_move"]
    )


@pytest.mark.xfail(
    strict=True,
    reason="stretch goal not met: 0.0204 parallel 5ths/8ves per voice-pair move at step 3662 of 7000 "
    "(Bach 0.0003, shifted control 0.0276), pinned CPU kernels, 2026-12-02; README",
)
def test_parallels_stretch_goal(medium):
    assert medium["harmonize/parallel_5ths_8ves_per_move"] <= 0.0015


def test_notes_stay_in_their_voices_range(medium):
    assert medium["harmonize/out_of_voice_range_rate"] <= 0.02


def test_not_too_choppy(medium):
    assert medium["harmonize/simultaneities_ratio_to_bach"] <= 1.4


def test_model_beats_the_copy_baseline_by_a_quarter_nat(medium):
    margin = medium["baseline/copy_neighbour_nll"] - medium["valid/nll_per_masked_cell"]
    assert margin >= 0.25, f"model only {margin:.3f} nats below the copy baseline"


def test_gibbs_beats_ancestral_by_three_standard_errors(medium):
    assert medium["samples/ancestral_minus_gibbs_in_stderrs"] >= 3.0
