"""A fresh `make uoro` gives, key by key, the numbers committed in results/uoro/quick.json (timings aside)."""

import pytest


@pytest.mark.slow
def test_a_fresh_quick_run_gives_the_committed_numbers(rerun_quick):
    rerun_quick("uoro")
