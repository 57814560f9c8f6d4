"""Configs: schema defaults <- YAML preset <- key=value overrides; every mistake is one line naming the key."""

import enum
from dataclasses import dataclass, field

import pytest

from common.cli import UsageError, entry_point, one_line_errors
from common.config import (
    BaseConfig,
    ConfigError,
    check_choice,
    check_range,
    describe_schema,
    load_config,
    parse_args,
)
from common.runner import CheckpointError


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


# ---------------------------------------------------------------- __post_init__ checks, enums, --help
class Actor(enum.Enum):
    gru = "gru"
    mlp = "mlp"


@dataclass
class CheckedTrain:
    steps: int = 100
    lr: float = 0.1

    def __post_init__(self):
        check_range("steps", self.steps, low=1)  # the section's own name: load_config adds "train."
        check_range("train.lr", self.lr, low=0, low_open=True)


@dataclass
class CheckedModel:
    actor: Actor = Actor.gru
    kind: str = "conv"

    def __post_init__(self):
        check_choice("model.kind", self.kind, ("conv", "dense"))


@dataclass
class CheckedConfig(BaseConfig):
    train: CheckedTrain = field(default_factory=CheckedTrain)
    model: CheckedModel = field(default_factory=CheckedModel)
    ratio: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        check_range("ratio", self.ratio, low=0, high=1)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.steps=-1"], "invalid config: train.steps must be >= 1, got -1"),
        (["train.lr=0"], "invalid config: train.lr must be > 0, got 0.0"),
        (["ratio=2"], "invalid config: ratio must be <= 1, got 2.0"),
        (["model.kind=rnn"], "invalid config: model.kind must be one of conv, dense; got 'rnn'"),
        (["model.actor=transformer"], "config key 'model.actor'"),
        (["device=tpu"], "invalid config: device must be auto, cpu, cuda or cuda:N; got 'tpu'"),
        (["threads=0"], "invalid config: threads must be >= 1, got 0"),
        (["checkpoint_minutes=-1"], "invalid config: checkpoint_minutes must be >= 0, got -1.0"),
        (["name=../escape"], "invalid config: name must be a relative path"),
        (["resume=true", "overwrite=true"], "invalid config: resume=true and overwrite=true"),
    ],
)
def test_range_and_choice_checks_are_one_line_naming_the_key(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(CheckedConfig, None, overrides)
    message = str(info.value)
    assert message.startswith(expected) or expected in message, message
    assert "\n" not in message


def test_valid_values_pass_the_checks():
    cfg = load_config(CheckedConfig, None, ["train.steps=1", "model.actor=mlp", "ratio=1"])
    assert cfg.train.steps == 1 and cfg.model.actor == Actor.mlp


def test_help_shows_the_presets_values_not_the_schema_defaults(config_dir, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(ToyConfig, config_dir, argv=["--config", "quick", "--help"], prog="toy")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "train.iterations (int) = 10" in out, "quick.yaml sets 10; the schema says 100"
    assert "preset 'quick'" in out
    with pytest.raises(SystemExit):
        parse_args(ToyConfig, config_dir, argv=["-c", "quick", "seed=7", "-h"], prog="toy")
    out = capsys.readouterr().out
    assert "seed (int) = 7" in out and "train.iterations (int) = 10" in out


def test_help_with_a_broken_preset_still_helps(config_dir, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(ToyConfig, config_dir, argv=["--config", "typo", "--help"], prog="toy")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "train.iterations (int) = 100" in out and "not shown with your settings" in out


def test_help_names_enum_choices(capsys):
    with pytest.raises(SystemExit):
        parse_args(CheckedConfig, None, argv=["--help"], default_preset=None, prog="toy")
    assert "model.actor (Actor: gru | mlp) = gru" in capsys.readouterr().out


# ---------------------------------------------------------------- common.cli
def test_cli_turns_user_errors_into_one_line_and_status_2(capsys):
    @entry_point("toy")
    def main(error):
        raise error

    for error, line in [
        (ConfigError("unknown config key 'x'"), "toy: error: unknown config key 'x'"),
        (CheckpointError("no checkpoint in a/b"), "toy: error: no checkpoint in a/b"),
        (UsageError("--out x.mid exists"), "toy: error: --out x.mid exists"),
        (FileNotFoundError(2, "No such file or directory", "x.mid"), "toy: error: No such file"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(error)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and err.count("\n") == 1, err


def test_cli_ctrl_c_is_one_line_and_status_130_and_bugs_keep_their_traceback(capsys):
    with pytest.raises(SystemExit) as info, one_line_errors("toy"):
        raise KeyboardInterrupt
    assert info.value.code == 130 and capsys.readouterr().err == "toy: interrupted\n"
    with pytest.raises(ZeroDivisionError), one_line_errors("toy"):
        1 / 0  # noqa: B018
