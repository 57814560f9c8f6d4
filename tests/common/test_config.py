"""Configs: schema defaults <- YAML preset <- key=value overrides; every mistake is one line naming the key."""

from dataclasses import dataclass, field

import pytest

from common.config import BaseConfig, ConfigError, describe_schema, load_config, parse_args


@dataclass
class TrainSection:
    lr: float = 1e-2  # learning rate
    iterations: int = 100
    layers: list[int] = field(default_factory=lambda: [8, 8])


@dataclass
class ToyConfig(BaseConfig):
    train: TrainSection = field(default_factory=TrainSection)
    game: str = "ipd"


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "quick.yaml").write_text("train:\n  iterations: 10\n")
    (tmp_path / "typo.yaml").write_text("train:\n  iteratoins: 10\n")
    (tmp_path / "badtype.yaml").write_text("train:\n  iterations: many\n")
    (tmp_path / "broken.yaml").write_text("train: [unclosed\n")
    return tmp_path


def test_preset_and_overrides_merge_in_order(config_dir):
    cfg = load_config(ToyConfig, "quick", ["train.lr=0.5", "seed=3"], config_dir)
    assert cfg.train.iterations == 10, "the preset overrides the schema default"
    assert cfg.train.lr == 0.5 and cfg.seed == 3, "overrides apply after the preset"
    assert cfg.train.layers == [8, 8] and cfg.game == "ipd", "untouched keys keep their defaults"


def test_preset_may_be_a_yaml_path(config_dir):
    cfg = load_config(ToyConfig, str(config_dir / "quick.yaml"))
    assert cfg.train.iterations == 10


@pytest.mark.parametrize(
    ("preset", "overrides", "expected"),
    [
        (None, ["train.lrr=1"], "unknown config key 'train.lrr'"),
        (None, ["train.iterations=ten"], "config key 'train.iterations'"),
        (None, ["seed=1.5"], "config key 'seed'"),
        (None, ["train.lr"], "override 'train.lr' is not of the form key=value"),
        ("typo", [], "unknown config key 'train.iteratoins'"),
        ("badtype", [], "config key 'train.iterations'"),
        (
            "nonexistent",
            [],
            "no config preset 'nonexistent' (available: badtype, broken, quick, typo)",
        ),
        ("broken", [], "cannot read config file"),
    ],
)
def test_every_mistake_is_one_line_naming_the_problem(config_dir, preset, overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(ToyConfig, preset, overrides, config_dir)
    message = str(info.value)
    assert expected in message, f"message {message!r} should contain {expected!r}"
    assert "\n" not in message, "a config error is one line"


def test_cli_exits_2_with_one_line_on_stderr(config_dir, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(ToyConfig, config_dir, argv=["--config", "quick", "train.lrr=1"], prog="toy")
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "toy: error: unknown config key 'train.lrr' (from override 'train.lrr=1')"


def test_help_lists_presets_and_every_key(config_dir, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(ToyConfig, config_dir, description="Toy.", argv=["--help"], prog="toy")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "quick" in out and "train.lr (float) = 0.01" in out and "seed (int) = 0" in out


def test_describe_schema_walks_nested_sections():
    keys = [line.split()[0] for line in describe_schema(ToyConfig)]
    assert {"seed", "train.lr", "train.iterations", "train.layers", "game"} <= set(keys)
