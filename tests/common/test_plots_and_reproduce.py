"""Plot helpers write PNGs; the reproduce driver validates results and tabulates them."""

import json
import types

import numpy as np
import pytest

from common import plots, reproduce
from common.reproduce import PAPER_NAMES, load_paper, summary_table, write_results


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


def test_summary_lists_every_paper(tmp_path):
    table = summary_table("quick", out_dir=tmp_path)
    for paper in PAPER_NAMES:
        assert f"`{paper}`" in table


def test_unknown_paper_is_refused():
    with pytest.raises(SystemExit, match="unknown paper 'lqoa'"):
        load_paper("lqoa")


def test_run_paper_writes_its_results_under_the_out_dir_override(tmp_path, monkeypatch):
    paper = types.ModuleType("tiny_paper")
    paper.main = lambda scale, overrides: {"game/reward": 1.5}
    paper.PAPER_NUMBERS = {"game/reward": 2.0}
    monkeypatch.setattr(reproduce, "load_paper", lambda name: paper)
    assert reproduce.run_paper("loqa", "quick", [f"out_dir={tmp_path}", "seed=1"]) == 0
    results = json.loads((tmp_path / "loqa" / "quick" / "results.json").read_text())
    assert results["game/reward"] == 1.5 and "wall_clock_s" in results


def test_publish_copies_results_and_plots_to_the_results_folder(tmp_path):
    runs, dest = tmp_path / "runs", tmp_path / "results"
    write_results("loqa", "quick", {"ipd/reward": -1.0}, out_dir=runs)
    plots.bar_chart(runs / "loqa" / "quick" / "bars.png", ["x"], [1.0])
    (runs / "loqa" / "quick" / "ipd" / "seed0").mkdir(parents=True)  # run dirs stay behind
    written = reproduce.publish("loqa", "quick", out_dir=runs, dest=dest)
    assert sorted(p.name for p in written) == ["bars.png", "quick.json"]
    assert json.loads((dest / "loqa" / "quick.json").read_text()) == {"ipd/reward": -1.0}
    with pytest.raises(SystemExit, match="make uoro"):
        reproduce.publish("uoro", "quick", out_dir=runs, dest=dest)


def test_write_between_markers_replaces_only_the_generated_part(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- a -->\nold table\n<!-- b -->\nafter\n")
    reproduce.write_between_markers(readme, "<!-- a -->", "<!-- b -->", "new table\n")
    assert readme.read_text() == "intro\n<!-- a -->\nnew table\n<!-- b -->\nafter\n"
    with pytest.raises(SystemExit, match="lacks the markers"):
        reproduce.write_between_markers(readme, "<!-- x -->", "<!-- b -->", "t\n")
