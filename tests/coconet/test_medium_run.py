"""The harmonisation issue's checks on the medium run (`make coconet-medium`, an hour on an idle CPU).

They read ``runs/coconet/medium/results.json`` (a fresh medium run; skipped when there is none):
- with the harmoniser's default settings, voices cross in at most 0.05 of simultaneities, and in at most
  0.10 at temperature 1.0 (the model itself must know the registers, not only the sampler);
- parallel fifths and octaves per voice-pair move below the time-shifted control's;
- notes outside their voice's range at most 0.02; simultaneities at most 1.4x Bach's;
- NLL per masked cell at least 0.25 below the tuned copy baseline; Gibbs beats ancestral by >= 3 s.e.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parents[2] / "runs" / "coconet" / "medium" / "results.json"


@pytest.fixture(scope="module")
def medium():
    if not RESULTS.is_file():
        pytest.skip(f"no {RESULTS}: run `make coconet-medium` first")
    return json.loads(RESULTS.read_text())


def test_voices_keep_their_registers(medium):
    assert medium["harmonize/voice_crossing_rate"] <= 0.05
    assert medium["harmonize_t1/voice_crossing_rate"] <= 0.10


def test_fewer_parallels_than_the_shifted_control(medium):
    assert (
        medium["harmonize/parallel_5ths_8ves_per_move"]
        < medium["shifted_control/parallel_5ths_8ves_per_move"]
    )


def test_notes_in_range_and_not_too_choppy(medium):
    assert medium["harmonize/out_of_voice_range_rate"] <= 0.02
    assert medium["harmonize/simultaneities_ratio_to_bach"] <= 1.4


def test_likelihood_and_sampling(medium):
    margin = medium["baseline/copy_neighbour_nll"] - medium["valid/nll_per_masked_cell"]
    assert margin >= 0.25, f"model only {margin:.3f} nats below the copy baseline"
    assert medium["samples/ancestral_minus_gibbs_in_stderrs"] >= 3.0
