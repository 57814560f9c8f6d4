"""Train, evaluate and harmonise end to end on real chorales with tiny settings (seconds each).

Semantics under test:
- a run directory is self-describing: ``coconet.eval`` needs only it and writes the issue's result keys;
- ``coconet.reproduce.main`` trains, evaluates, and leaves results.json, the plots and a safetensors model
  (which ``coconet.trained.load_model`` and the harmoniser load) in ``<out_dir>/coconet/<scale>/``;
- resuming from a checkpoint gives exactly the parameters of an uninterrupted run (CPU);
- the full (paper-size) config loads and trains a few steps on CPU;
- bad config keys, bad run directories and bad melody files end in a one-line error, exit status 2.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from coconet.config import CONFIG_DIR, CoconetConfig
from coconet.eval import evaluate
from coconet.harmonize import main as harmonize_main
from coconet.reproduce import HEADLINE, PAPER_NUMBERS
from coconet.reproduce import main as reproduce
from coconet.train import train
from coconet.trained import load_model
from common.config import ConfigError, load_config

TINY = [
    "model.layers=4",
    "model.filters=8",
    "train.steps=6",
    "train.batch_size=4",
    "train.eval_every=3",
    "data.valid_pieces=2",
    "data.valid_masks_per_piece=2",
    "data.baseline_masks_per_piece=1",
    "sample.num_samples=4",
    "sample.length=8",
    "eval.notewise_crops=2",
    "eval.ensemble=2",
    "eval.harmonize_pieces=2",
    "eval.harmonize_frames=16",
    "progress=false",
]
ISSUE_KEYS = [
    "valid/nll_per_masked_cell",
    "valid/nll_low_mask",
    "valid/nll_high_mask",
    "samples/nll_gibbs_mean",
    "samples/nll_ancestral_mean",
    "samples/ancestral_minus_gibbs_in_stderrs",
    "baseline/copy_neighbour_nll",
    "harmonize/voice_crossing_rate",
    "harmonize/parallel_5ths_8ves_per_move",
    "harmonize/out_of_voice_range_rate",
    "harmonize/simultaneities_ratio_to_bach",
    "harmonize_t1/voice_crossing_rate",
    "bach/voice_crossing_rate",
    "shifted_control/voice_crossing_rate",
    "shifted_control/parallel_5ths_8ves_per_move",
    "samples_gibbs/voice_crossing_rate",
    "samples_ancestral/voice_crossing_rate",
]


def tiny_config(tmp_path, *extra):
    return load_config(CoconetConfig, "quick", [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A seconds-long trained and evaluated run directory."""
    run_dir = train(tiny_config(tmp_path_factory.mktemp("runs"), "name=tiny"))
    evaluate(run_dir, audio=False)
    return run_dir


def test_smoke_run_trains_and_eval_writes_every_issue_key(tiny_run):
    results = json.loads((tiny_run / "eval.json").read_text())
    for key in ISSUE_KEYS:
        assert key in results and math.isfinite(results[key]), f"missing or non-finite {key}"
    assert 0 < results["valid/nll_per_masked_cell"] < 5, "an NLL per cell over 46 pitches"
    for name in ("nll_vs_mask_fraction", "sample_nll", "samples", "inpainting", "learning_curve",
                 "harmonization"):  # fmt: skip
        assert (tiny_run / "plots" / f"{name}.png").is_file(), f"no {name}.png"
    assert (tiny_run / "samples" / "gibbs_0.mid").is_file()
    assert (tiny_run / "eval.json").is_file()


def test_reproduce_leaves_results_plots_and_a_loadable_model(tmp_path):
    results = reproduce("quick", [*TINY, f"out_dir={tmp_path}", "model.pitch_channel=true",
                                  "train.harmony_every=3", "train.harmony_pieces=2",
                                  "train.harmony_frames=8", "reproduce.audio=false"])  # fmt: skip
    out = tmp_path / "coconet" / "quick"
    assert json.loads((out / "results.json").read_text()) == pytest.approx(results, nan_ok=True)
    assert set(HEADLINE) <= set(results) and set(HEADLINE) <= set(PAPER_NUMBERS)
    assert all(entry.source for entry in PAPER_NUMBERS.values()), (
        "every paper number names its source"
    )
    assert (out / "harmonization.png").is_file() and (
        out / "harmony_vs_training_time.png"
    ).is_file()
    assert (tmp_path / "coconet" / "quick" / "chorales_seed0" / "eval.json").is_file()
    shipped, cfg = load_model(out / "model")
    trained, _ = load_model(out / "chorales_seed0")
    assert cfg.model.pitch_channel and shipped.pitch_channel
    for (name, x), (_, y) in zip(shipped.state_dict().items(), trained.state_dict().items()):
        assert torch.equal(x, y), f"the shipped {name} is not the trained one"
    assert (out / "model" / "weights.safetensors").stat().st_size < 5_000_000


def test_resuming_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    straight = train(tiny_config(tmp_path, "name=straight"))
    train(tiny_config(tmp_path, "name=resumed", "train.steps=3"))
    resumed = train(tiny_config(tmp_path, "name=resumed", "resume=true"))
    a, _ = load_model(straight)
    b, _ = load_model(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resume"


def test_a_stopped_run_is_evaluated_where_it_stopped(tmp_path):
    """``resume=true train.steps=<step reached>``: the pipeline evaluates the run without training it."""
    stopped = train(
        tiny_config(tmp_path, "name=quick/chorales_seed0", "train.steps=3", "reproduce.audio=false")
    )
    before, _ = load_model(stopped)
    results = reproduce("quick", [*TINY, f"out_dir={tmp_path}", "resume=true", "train.steps=3",
                                  "reproduce.audio=false"])  # fmt: skip
    assert results["train/steps"] == 3 and "harmonize/voice_crossing_rate" in results
    after, _ = load_model(stopped)
    for (name, x), (_, y) in zip(before.state_dict().items(), after.state_dict().items()):
        assert torch.equal(x, y), f"{name} changed: the stopped run was trained further"


def test_full_config_loads_and_trains_a_few_steps_on_cpu(tmp_path):
    cfg = load_config(
        CoconetConfig,
        "full",
        [f"out_dir={tmp_path}", "train.steps=2", "train.batch_size=1", "train.eval_every=2",
         "data.valid_pieces=1", "data.valid_masks_per_piece=1", "progress=false"],
        CONFIG_DIR,
    )  # fmt: skip
    assert (cfg.model.layers, cfg.model.filters, cfg.data.crop_len) == (64, 128, 64)
    model, _ = load_model(train(cfg))
    assert sum(p.numel() for p in model.parameters()) > 9_000_000


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="model.layer"):
        load_config(CoconetConfig, "quick", ["model.layer=3"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(CoconetConfig, "quick", ["train.steps=many"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="model.layers must be >= 4, got 2"):
        tiny_config(tmp_path, "model.layers=2")
    with pytest.raises(ConfigError, match="sample.pmin"):
        tiny_config(tmp_path, "sample.pmin=0.95")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=60)


def test_entry_points_have_help_and_refuse_bad_input_in_one_line(tmp_path):
    for module in ("coconet.train", "coconet.eval", "coconet.harmonize", "coconet.reproduce"):
        assert run_cli(module, "--help").returncode == 0, f"{module} --help failed"
    bad_key = run_cli("coconet.train", "model.nope=1")
    assert bad_key.returncode == 2 and "model.nope" in bad_key.stderr
    bad_run = run_cli("coconet.eval", "--run", str(tmp_path))
    assert bad_run.returncode == 2 and "not a run directory" in bad_run.stderr
    bad_model = run_cli("coconet.harmonize", "bach/bwv66.6", "--run", str(tmp_path), "--no-audio")
    assert bad_model.returncode == 2 and len(bad_model.stderr.strip().splitlines()) == 1
    bad_override = run_cli("coconet.reproduce", "quick", "model.nope=1")
    assert bad_override.returncode == 2 and "model.nope" in bad_override.stderr


def test_harmonize_keeps_the_melody_and_fills_three_voices(tiny_run, tmp_path):
    from common.music.midi import read_midi, write_midi

    melody = np.array([[60] * 4 + [62] * 4 + [64] * 8 + [-1] * 2 + [67] * 6])
    write_midi(melody, tmp_path / "tune.mid")
    harmonize_main([str(tmp_path / "tune.mid"), "--run", str(tiny_run), "--out", str(tmp_path / "out"),
                    "--samples", "2", "--no-audio"])  # fmt: skip
    result = read_midi(tmp_path / "out" / "tune_1.mid")
    assert result.shape[0] == 4, "alto, tenor and bass were added"
    assert np.array_equal(result[0, : melody.shape[1]], melody[0]), (
        "the soprano is the given melody"
    )
    assert (tmp_path / "out" / "tune.png").is_file()


@pytest.mark.parametrize("content", [b"", b"MThd\x00\x00", b"not midi at all"])
def test_harmonize_refuses_a_bad_midi_file_in_one_line(tiny_run, tmp_path, content):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(content)
    result = run_cli("coconet.harmonize", str(bad), "--run", str(tiny_run), "--no-audio")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.mid" in lines[0], result.stderr


def test_harmonize_without_a_run_uses_the_shipped_model(tmp_path):
    """Right after setup: the medium model where it is published, else the quick one."""
    from coconet.trained import SHIPPED
    from common.music.midi import write_midi

    shipped = [path for path in SHIPPED if (path / "weights.safetensors").is_file()]
    if not shipped:
        pytest.skip("no model published in results/coconet/")
    write_midi(np.array([[67] * 4 + [69] * 4 + [71] * 8 + [72] * 8]), tmp_path / "tune.mid")
    result = run_cli("coconet.harmonize", str(tmp_path / "tune.mid"), "--out", str(tmp_path / "out"),
                     "--no-audio")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"model {shipped[0]} " in result.stdout, result.stdout
    assert (tmp_path / "out" / "tune_0.mid").is_file()
