"""The issues' checks on a fresh quick run (`make test-slow PAPER=uoro`; about as long as `make uoro`).

One `uoro.reproduce.main("quick")` per module, in a temporary directory: the total-variance experiment (the
paper's headline, issue 13), the per-step NMSE view and our variants (issue 7, keys `nmse/...`), the cost, and
the training runs. Each test asserts the issue's bar, with its control where the issue names one.
"""

import math

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from uoro.reproduce import main

    out = tmp_path_factory.mktemp("uoro-quick")
    return main("quick", [f"out_dir={out}", "progress=false"])


# ---- issue 13: the paper's total variance, oracle shaping, REINFORCE, cost
def test_the_total_variance_estimator_sees_a_mean_of_4_as_4x_less_variance(quick):
    assert 3.4 <= quick["total/h16/uoro_over_mean4"] <= 4.6


def test_no_spatial_projection_cuts_the_total_variance(quick):
    assert quick["total/h16/noproj_over_uoro"] <= 0.10
    assert quick["total/h32/noproj_over_uoro"] <= 0.05
    assert quick["total/h32/noproj_over_proj_unrescaled"] <= 2 / 32  # the preactivation dimension


def test_rescaling_and_time_scaling_cut_the_total_variance(quick):
    assert quick["total/h16/rescaling_gain"] >= 5
    assert quick["total/h16/time_scaling_gain"] >= 5


def test_oracle_noise_shaping_with_b_to_the_minus_quarter(quick):
    assert quick["total/h16/oracle_shaping_gain"] >= 1.10
    assert quick["total/h32/oracle_shaping_gain"] >= 1.20
    assert 0.75 <= quick["total/h32/b_quarter_measured_over_predicted"] <= 1.25


def test_the_exact_variance_formula_predicts_every_unrescaled_estimator(quick):
    assert quick["theory/max_rel_error_unrescaled"] <= 0.25


def test_reinforce_with_shaped_noise_becomes_uoro_and_needs_its_baseline(quick):
    assert abs(quick["reinforce/h16/var_ratio_to_uoro_sigma_1e-3"] - 1) <= 0.01
    assert quick["reinforce/h16/no_baseline_var_ratio_sigma_1e-2_over_1e-1"] >= 10
    assert 1.5 <= quick["reinforce/h16/diff_sq_slope"] <= 2.5  # the gap falls as sigma^2


def test_every_estimator_is_unbiased(quick):
    assert quick["bias/max_abs_z_rescaled"] <= 4
    assert quick["bias/max_abs_z_unrescaled"] <= 5


def test_rtrl_costs_far_more_per_step_than_uoro(quick):
    assert quick["cost/rtrl_over_uoro_time_h64"] >= 5


# ---- issue 7 (ours: per-step NMSE view, our variants), keys under nmse/
def test_rtrl_equals_full_bptt_and_tbptt1_does_not(quick):
    assert quick["nmse/rtrl/max_abs_diff_to_bptt"] < 1e-8
    assert quick["nmse/tbptt1/relative_diff_to_bptt"] > 1e-3, (
        "control: a truncated gradient is detected"
    )


def test_uoro_is_unbiased_while_the_tbptt1_estimate_fails_with_1000_streams(quick):
    assert quick["nmse/uoro/bias_in_stderrs"] < 3
    assert quick["nmse/tbptt1_rank_one/bias_in_stderrs"] > 3, (
        "control: the same test catches a bias"
    )


def test_rho_scaling_cuts_nmse_at_least_5x(quick):
    assert quick["nmse/uoro_no_rho/nmse"] >= 5 * quick["nmse/uoro/nmse"]


def test_our_same_cost_variance_reduction_beats_the_bar_at_radius_0_9_and_0_5(quick):
    assert quick["nmse/uoro_reduced/nmse_reduction_radius_0.9"] >= 1.5
    assert quick["nmse/uoro_reduced/nmse_reduction_radius_0.5"] >= 2.0


def test_rank4_averaging_reduces_nmse_by_3_to_5x(quick):
    assert 3 <= quick["nmse/rank4/nmse_reduction"] <= 5, "rank-4 averaging must cut variance ~4x"


def test_reinforce_with_small_noise_matches_unscaled_uoro_and_large_noise_is_biased(quick):
    assert abs(quick["nmse/reinforce_small_noise/nmse_ratio_to_gaussian_uoro_no_rho"] - 1) <= 0.05
    assert quick["nmse/reinforce/bias_ratio_large_to_small_noise"] >= 10


def test_longer_memory_costs_variance(quick):
    assert quick["nmse/uoro/nmse_ratio_radius_1.1_to_0.5"] >= 1.5


# ---- training on the copy task (ours), comparisons as spreads over the paired seeds
def test_online_training_on_the_copy_task(quick):
    assert quick["train/rtrl_final_loss"] < 0.05
    assert quick["train/uoro_final_loss"] < 0.5
    assert quick["train/uoro_final_loss"] <= 0.5 * quick["train/tbptt1_final_loss"]


def test_variance_reduced_uoro_trains_no_worse_than_uoro_beyond_the_seed_spread(quick):
    seeds = 4
    for label in ("uoro_noproj", "uoro_shaped"):
        spread = quick[f"train/{label}_vs_uoro/diff_std"] / math.sqrt(seeds)
        assert quick[f"train/{label}_vs_uoro/diff_mean"] <= 2 * spread, label
