"""Train, evaluate, reproduce and recompose end to end on real chorale measures with tiny settings (seconds).

- a run directory is self-describing: ``evaluate`` needs only it and writes every issue key and plot;
- resuming from a checkpoint (in either stage) gives exactly the parameters of an uninterrupted run (CPU);
- the full (paper-size) config loads and its networks run;
- bad config keys or values, missing run directories and bad MIDI files end in one line, exit status 2.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from common.config import ConfigError, load_config
from vqvae_recompose.config import CONFIG_DIR, RecomposeConfig
from vqvae_recompose.eval import evaluate, load_models
from vqvae_recompose.reproduce import ISSUE_KEYS
from vqvae_recompose.reproduce import main as reproduce
from vqvae_recompose.train import build_prior, build_vqvae, train

TINY = [
    "vqvae.widths=[4,4,4,4]",
    "vqvae.codebook_size=8",
    "vqvae.code_dim=4",
    "vqvae.steps=4",
    "vqvae.batch_size=4",
    "prior.layers=2",
    "prior.channels=4",
    "prior.steps=3",
    "prior.batch_size=4",
    "train.eval_every=2",
    "sample.valid_measures=24",
    "sample.per_measure=2",
    "progress=false",
]


def tiny_config(tmp_path, *extra):
    return load_config(RecomposeConfig, "quick", [*TINY, f"out_dir={tmp_path}", *extra], CONFIG_DIR)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = train(tiny_config(tmp_path_factory.mktemp("runs"), "name=tiny"))
    evaluate(run_dir, audio=False)
    return run_dir


def test_smoke_run_trains_both_stages_and_eval_writes_every_issue_key(tiny_run):
    results = json.loads((tiny_run / "eval.json").read_text())
    for key in ISSUE_KEYS:
        assert key in results and math.isfinite(results[key]), f"missing or non-finite {key}"
    assert results["samples/n"] == 2 * 24
    assert 0 <= results["vqvae/heldout_pitch_accuracy"] <= 1
    assert results["prior/nll_true_chords"] > 0
    for name in ("reconstructions", "codebook_usage", "chord_adherence", "fig1_two_seeds",
                 "fig2_chord_vs_spatial", "vqvae_accuracy_curve", "prior_nll_curve"):  # fmt: skip
        assert (tiny_run / "plots" / f"{name}.png").is_file(), f"no {name}.png"
    assert (tiny_run / "samples" / "chord_only_seed0.mid").is_file()


def _parameters(run_dir):
    _, vqvae, priors, _ = load_models(run_dir)
    modules = {"vqvae": vqvae, **priors}
    return {f"{m}.{k}": v for m, mod in modules.items() for k, v in mod.state_dict().items()}


@pytest.mark.parametrize("vq_steps,prior_steps", [(4, 3), (6, 1)])  # resume in stage 2 / stage 1
def test_resuming_gives_the_same_parameters_as_an_uninterrupted_run(
    tmp_path, vq_steps, prior_steps
):
    steps = [f"vqvae.steps={vq_steps}", f"prior.steps={prior_steps}"]
    straight = train(tiny_config(tmp_path, "name=straight", *steps))
    resumed = train(tiny_config(tmp_path, "name=resumed", "checkpoint_every=1", *steps))
    for late in sorted((resumed / "checkpoints").glob("step_*.pt"))[1:]:
        late.unlink()  # keep the step-5 checkpoint only, as if the run had been killed there
    train(tiny_config(tmp_path, "name=resumed", "resume=true", *steps))
    a, b = _parameters(straight), _parameters(resumed)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"


def test_full_config_has_the_papers_sizes_and_runs(tmp_path):
    cfg = load_config(RecomposeConfig, "full", [f"out_dir={tmp_path}"], CONFIG_DIR)
    assert list(cfg.vqvae.widths) == [64, 128, 257, 256] and cfg.vqvae.codebook_size == 256
    assert (cfg.prior.layers, cfg.prior.channels, cfg.prior.first_kernel) == (15, 64, 5)
    vqvae, prior = build_vqvae(cfg), build_prior(cfg, 32, spatial=True)
    logits, codes, _ = vqvae(torch.rand(2, 4, 52, 16).round())
    assert logits.shape == (2, 4, 52, 16) and codes.shape == (2, 13, 4)
    assert prior(codes, torch.zeros(2, 3, dtype=torch.long), codes).shape == (2, 256, 13, 4)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="vqvae.step"):
        load_config(RecomposeConfig, "quick", ["vqvae.step=3"], CONFIG_DIR)
    with pytest.raises(ConfigError, match="prior.steps must be >= 1"):
        train(tiny_config(tmp_path, "prior.steps=0"))
    with pytest.raises(ConfigError, match="n_pitches"):
        train(tiny_config(tmp_path, "data.n_pitches=50"))


def test_reproduce_writes_the_results_json_and_plots(tmp_path):
    results = reproduce("quick", [*TINY, f"out_dir={tmp_path}"])
    saved = json.loads((tmp_path / "vqvae_recompose" / "quick" / "results.json").read_text())
    for key in [*ISSUE_KEYS, "wall_clock_s"]:
        assert key in saved and saved[key] == results[key]
    assert (tmp_path / "vqvae_recompose" / "quick" / "fig1_two_seeds.png").is_file()
    assert (tmp_path / "vqvae_recompose" / "quick" / "chorales_seed0" / "eval.json").is_file()


def test_recompose_keeps_the_bars_and_writes_midi_wav_and_png(tiny_run, tmp_path):
    from common.music.midi import read_midi
    from vqvae_recompose.recompose import main as recompose_main

    out = tmp_path / "out"
    assert recompose_main(["bach/bwv66.6", "--run", str(tiny_run), "--out", str(out)]) == 0
    original, new = read_midi(out / "original.mid", n_voices=4), read_midi(out / "recomposed.mid")
    assert original.shape[1] % 16 == 0 and original.shape[1] >= 16 * 8
    assert new.shape[1] == original.shape[1], "one recomposed bar per original bar"
    for name in ("original.wav", "recomposed.wav", "recomposed.png", "chords.txt"):
        assert (out / name).is_file()
    assert len((out / "chords.txt").read_text().split()) == original.shape[1] // 16
    # a MIDI file recomposes too (key estimated, bars from frame 0), with the spatial prior
    assert recompose_main([str(out / "original.mid"), "--run", str(tiny_run), "--out",
                           str(tmp_path / "again"), "--spatial", "--no-audio", "--seed", "3"]) == 0  # fmt: skip
    assert (tmp_path / "again" / "recomposed.mid").is_file()
    assert not (tmp_path / "again" / "recomposed.wav").exists(), "--no-audio writes no WAV"


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120
    )


def test_entry_points_have_help_and_refuse_bad_input_in_one_line(tiny_run, tmp_path):
    for module in ("vqvae_recompose.train", "vqvae_recompose.eval", "vqvae_recompose.recompose",
                   "vqvae_recompose.reproduce"):  # fmt: skip
        assert run_cli(module, "--help").returncode == 0, f"{module} --help failed"
    for args, needle in (
        (("vqvae_recompose.train", "vqvae.nope=1"), "vqvae.nope"),
        (
            ("vqvae_recompose.train", "vqvae.steps=0", f"out_dir={tmp_path}"),
            "vqvae.steps must be >= 1",
        ),
        (("vqvae_recompose.eval", "--run", str(tmp_path)), "not a run directory"),
        (("vqvae_recompose.reproduce", "quick", "prior.nope=2"), "prior.nope"),
    ):
        result = run_cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize("content", [b"", b"MThd\x00\x00", b"not midi at all"])
def test_recompose_refuses_a_bad_midi_file_in_one_line(tiny_run, tmp_path, content):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(content)
    result = run_cli("vqvae_recompose.recompose", str(bad), "--run", str(tiny_run), "--no-audio")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "bad.mid" in lines[0], result.stderr
