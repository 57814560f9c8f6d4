"""Plot helpers write PNGs; common.results publishes and tabulates; the driver finds the papers."""

import json
import types

import numpy as np
import pytest

from common import plots, reproduce, results
from common.reproduce import PAPER_NAMES, load_paper, summary_table
from common.results import PaperNumber, write_results


def test_plots_write_png_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = [
        plots.learning_curves(
            tmp_path / "curves.png",
            {"a": rng.random((3, 20)), "b": rng.random(20)},
            hline={"paper": 0.5},
        ),
        plots.bar_chart(tmp_path / "bars.png", ["x", "y"], [1.0, 2.0], [0.1, 0.2]),
        plots.heatmap(tmp_path / "heat.png", np.eye(2), ["r1", "r2"], ["c1", "c2"]),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmap_refuses_a_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"heatmap matrix has shape \(2, 2\), expected \(3, 2\)"):
        plots.heatmap(tmp_path / "h.png", np.eye(2), ["a", "b", "c"], ["x", "y"])


def test_results_must_be_numbers(tmp_path):
    with pytest.raises(ValueError, match="not so for ipd/label"):
        write_results("loqa", "quick", {"ipd/label": "good"}, out_dir=tmp_path)
    path = write_results("loqa", "quick", {"ipd/reward": -1.0}, out_dir=tmp_path)
    assert json.loads(path.read_text()) == {"ipd/reward": -1.0}


def test_summary_lists_every_paper_and_the_papers_values(tmp_path, monkeypatch):
    paper = types.ModuleType("tiny_paper")
    paper.PAPER_NUMBERS = {"game/reward": PaperNumber(2.5, "Table 1")}
    paper.HEADLINE = ["game/reward"]
    real = reproduce.load_paper
    monkeypatch.setattr(reproduce, "load_paper", lambda n: paper if n == "meva" else real(n))
    write_results("meva", "quick", {"game/reward": 1.25, "wall_clock_s": 3.0}, out_dir=tmp_path)
    table = summary_table("quick", out_dir=tmp_path)
    for name in PAPER_NAMES:
        assert f"`{name}`" in table
    assert "| game/reward | 2.5 | 1.25 | 3 |" in table


def test_unknown_paper_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_paper("lqoa")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "unknown paper 'lqoa'" in err


def test_run_paper_passes_scale_and_overrides_and_a_bad_key_is_one_line(monkeypatch, capsys):
    from common.config import ConfigError

    seen = {}

    def main(scale, overrides):
        seen.update(scale=scale, overrides=overrides)
        if "bad=1" in overrides:
            raise ConfigError("unknown config key 'bad' (from override 'bad=1')")
        return {"game/reward": 1.5}

    paper = types.ModuleType("tiny_paper")
    paper.main = main
    monkeypatch.setattr(reproduce, "load_paper", lambda name: paper)
    assert reproduce.run_paper("loqa", ["full", "seed=1"]) == 0
    assert seen == {"scale": "full", "overrides": ["seed=1"]}
    assert "game/reward = 1.5" in capsys.readouterr().out
    assert reproduce.run_paper("loqa", ["quick", "bad=1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "python -m loqa.reproduce: error: unknown config key 'bad' (from override 'bad=1')"
    ]


def test_publish_copies_results_plots_and_model_and_writes_the_table(tmp_path):
    runs, dest = tmp_path / "runs", tmp_path / "results"
    write_results("loqa", "quick", {"ipd/reward": -1.0}, out_dir=runs)
    plots.bar_chart(runs / "loqa" / "quick" / "bars.png", ["x"], [1.0])
    (runs / "loqa" / "quick" / "ipd" / "seed0").mkdir(parents=True)  # run dirs stay behind
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n{results.BEGIN}\nold\n{results.END}\nafter\n")
    numbers = {"ipd/reward": PaperNumber(-1.05, "Fig. 2"), "ipd/other": PaperNumber(None, "")}
    written = results.publish("loqa", "quick", numbers, out_dir=runs, dest=dest, readme=readme)
    assert sorted(p.name for p in written) == ["README.md", "bars.png", "quick.json"]
    assert json.loads((dest / "loqa" / "quick.json").read_text()) == {"ipd/reward": -1.0}
    assert (dest / "loqa" / "quick" / "bars.png").is_file()
    text = readme.read_text()
    assert "| `ipd/reward` | -1.05 | Fig. 2 | -1 |" in text
    assert "| `ipd/other` | — |  | — |" in text and text.endswith(f"{results.END}\nafter\n")
    with pytest.raises(SystemExit, match="make uoro"):
        results.publish("uoro", "quick", out_dir=runs, dest=dest)


def test_write_between_markers_replaces_only_the_generated_part(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- a -->\nold table\n<!-- b -->\nafter\n")
    results.write_between_markers(readme, "new table\n", "<!-- a -->", "<!-- b -->")
    assert readme.read_text() == "intro\n<!-- a -->\nnew table\n<!-- b -->\nafter\n"
    with pytest.raises(SystemExit, match="lacks the markers"):
        results.write_between_markers(readme, "t\n", "<!-- x -->", "<!-- b -->")


def test_a_trained_model_round_trips(tmp_path):
    import torch
    from omegaconf import OmegaConf

    tensors = {"layer.weight": torch.arange(6.0).reshape(2, 3)}
    results.save_model(tmp_path / "model", tensors, OmegaConf.create({"model": {"width": 3}}))
    loaded, cfg = results.load_model(tmp_path / "model")
    assert torch.equal(loaded["layer.weight"], tensors["layer.weight"]) and cfg.model.width == 3
    with pytest.raises(FileNotFoundError, match="no trained model in"):
        results.load_model(tmp_path / "nothing")
