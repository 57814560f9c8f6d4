"""The checks of issue 7 on the quick configuration (minutes; `make test-slow PAPER=uoro`).

The variance experiment runs once per module (float64, n = 32, copy task lag 4, T = 300, R = 100 noise
streams, R = 1000 for the biased control); the training runs once per estimator (20k online steps). Each
test asserts one threshold of the issue, with its control where the issue names one.
"""

import pytest

from common.config import load_config
from uoro.config import CONFIG_DIR, UoroConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def variance(tmp_path_factory):
    from uoro.variance import variance_experiment

    cfg = load_config(
        UoroConfig, "quick", [f"out_dir={tmp_path_factory.mktemp('uoro')}"], CONFIG_DIR
    )
    results, _ = variance_experiment(cfg)
    return results


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    from uoro.reproduce import training_runs
    from uoro.train import train

    out = tmp_path_factory.mktemp("uoro-train")
    finals = {}
    for label, overrides in training_runs("quick", [f"out_dir={out}", "progress=false"]):
        finals[label] = train(load_config(UoroConfig, "quick", overrides, CONFIG_DIR))
    return finals


def test_rtrl_equals_full_bptt_and_tbptt1_does_not(variance):
    assert variance["rtrl/max_abs_diff_to_bptt"] < 1e-8
    assert variance["tbptt1/relative_diff_to_bptt"] > 1e-3, (
        "control: a truncated gradient is detected"
    )


def test_uoro_is_unbiased_while_the_tbptt1_estimate_fails_with_1000_streams(variance):
    assert variance["uoro/bias_in_stderrs"] < 3
    assert variance["tbptt1_rank_one/bias_in_stderrs"] > 3, "control: the same test catches a bias"


def test_rho_scaling_cuts_nmse_at_least_5x(variance):
    assert variance["uoro_no_rho/nmse"] >= 5 * variance["uoro/nmse"]


def test_same_cost_variance_reduction_beats_the_bar_at_radius_0_9_and_0_5(variance):
    assert variance["uoro_reduced/nmse_reduction_radius_0.9"] >= 1.5
    assert variance["uoro_reduced/nmse_reduction_radius_0.5"] >= 2.0


def test_rank4_averaging_reduces_nmse_by_3_to_5x(variance):
    assert 3 <= variance["rank4/nmse_reduction"] <= 5, "rank-4 averaging must cut variance ~4x"


def test_reinforce_with_small_noise_matches_unscaled_uoro_and_large_noise_is_biased(variance):
    assert abs(variance["reinforce_small_noise/nmse_ratio_to_gaussian_uoro_no_rho"] - 1) <= 0.05
    assert variance["reinforce/bias_ratio_large_to_small_noise"] >= 10


def test_longer_memory_costs_variance(variance):
    assert variance["uoro/nmse_ratio_radius_1.1_to_0.5"] >= 1.5


def test_online_training_on_the_copy_task(training):
    assert training["rtrl"]["final_loss"] < 0.05
    assert training["uoro"]["final_loss"] < 0.5
    assert training["uoro"]["final_loss"] <= 0.5 * training["tbptt1"]["final_loss"]
    assert training["uoro_reduced"]["seeds"] >= 4
    assert training["uoro_reduced"]["final_loss"] <= 1.1 * training["uoro"]["final_loss"]
