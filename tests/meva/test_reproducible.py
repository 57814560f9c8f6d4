"""A fresh `make meva` gives, key by key, the numbers committed in results/meva/quick.json (timings aside)."""

import pytest


@pytest.mark.slow
def test_a_fresh_quick_run_gives_the_committed_numbers(rerun_quick):
    rerun_quick("meva")
