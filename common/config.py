"""Structured configs: a dataclass schema, a YAML preset, and ``key=value`` overrides, all validated.

Every experiment describes its settings as a dataclass that inherits :class:`BaseConfig`. A preset
(``configs/quick.yaml``, ``configs/full.yaml``) and command-line overrides (``train.lr=1e-3``) are merged
onto the schema by omegaconf in struct mode, so an unknown key, a mistyped key or a value of the wrong type
is refused with one line naming the dotted key::

    cfg = parse_args(LoqaConfig, config_dir=Path(__file__).parent / "configs", description=__doc__)

API (everything raises :class:`ConfigError`, a ``ValueError`` whose message is one line naming the key):

- ``load_config(schema, preset=None, overrides=(), config_dir=None) -> DictConfig``: schema defaults <- preset
  <- overrides, then the merged config is built into the dataclass objects (``OmegaConf.to_object``) so that
  every ``__post_init__`` check runs; a ``ValueError`` raised there becomes ``ConfigError("invalid config:
  train.steps must be >= 1, got -1")``. A message that starts with a field of the failing section gets the
  section's dotted path in front (``steps must be ...`` in ``train`` -> ``train.steps must be ...``).
- ``check_range(key, value, low=None, high=None, low_open=False, high_open=False)`` and
  ``check_choice(key, value, choices)``: the one-line ``ValueError`` s to raise from ``__post_init__``::

      @dataclass
      class TrainConfig:
          steps: int = 100
          actor: str = "gru"  # gru | mlp
          def __post_init__(self):
              check_range("train.steps", self.steps, low=1)
              check_choice("model.actor", self.actor, ("gru", "mlp"))

  An ``Enum``-typed field is checked by omegaconf itself (``bad value for config key 'model.actor' ...:
  Invalid value 'transformer', expected one of [gru, mlp]``).
- ``parse_args(schema, config_dir, description, argv, default_preset="quick", prog)``: the command line
  ``[--config NAME] [key=value ...]``; exits 2 with one line on stderr on a bad config. ``--help`` lists every
  key with its type and the value the chosen preset (plus any overrides given) actually uses:
  ``python -m coconet.train --config quick --help``.
- :class:`BaseConfig`: the fields every experiment has (seed, device, threads, name, out_dir, resume,
  overwrite, checkpoint_every, checkpoint_minutes, progress), checked in its ``__post_init__`` (a subclass
  that defines its own ``__post_init__`` calls ``super().__post_init__()``). ``BaseConfig.resume_may_change``
  (a ClassVar of glob patterns over dotted keys) lists the keys a ``resume=true`` run may change; a schema
  extends it, e.g. ``resume_may_change = (*BaseConfig.resume_may_change, "eval.*")``; everything else must
  equal the run's saved config (see ``common.runner``). ``RESUME_MAY_CHANGE`` is the default list:
  resume, overwrite, progress, checkpoint_every, checkpoint_minutes, device, threads, out_dir, name,
  train.steps, train.iterations, ``*log_every``, ``*eval_every``. A schema where one of these is structural
  (a buffer sized by ``train.iterations``) sets its own tuple without it.
- ``validate(cfg)``: the ``__post_init__`` pass of ``load_config`` alone (for a config built another way);
  ``may_change_on_resume(key, patterns)``: the glob test the runner uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import fnmatch
import re
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config problem, as one line that names the offending key or file."""


def check_range(
    key: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``ValueError("train.lr must be > 0, got -1")`` when ``value`` is outside [low, high] (or the open ends)."""
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{key} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{key} must be {'<' if high_open else '<='} {high}, got {value}")


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    """``ValueError("model.actor must be one of gru, mlp; got 'transformer'")`` for a value not in choices."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(
            f"{key} must be one of {', '.join(str(c) for c in choices)}; got {value!r}"
        )


DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# Keys a resumed run may set differently from the run it continues (glob patterns over dotted keys):
# how long to train, how often to log, evaluate and checkpoint, where and how to run. Everything else
# (the model, the data, the losses, the seeds) must match, or the resumed run would not be the same run.
RESUME_MAY_CHANGE: tuple[str, ...] = (
    "resume",
    "overwrite",
    "progress",
    "checkpoint_every",
    "checkpoint_minutes",
    "device",
    "threads",
    "out_dir",
    "name",
    "train.steps",
    "train.iterations",
    "*log_every",
    "*eval_every",
)


@dataclass
class BaseConfig:
    """Fields every experiment has: where its run lives, how it is seeded, what it runs on."""

    resume_may_change: ClassVar[tuple[str, ...]] = RESUME_MAY_CHANGE

    seed: int = 0  # seeds python, numpy and torch (and the environments' own generators)
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads on CPU; >1 on a busy 2-core box is 30-100x slower
    name: str = "quick"  # the run directory is <out_dir>/<paper>/<name>
    out_dir: str = "runs"
    resume: bool = False  # continue from the latest checkpoint in the run directory
    overwrite: bool = False  # start over in a run directory that already has checkpoints/metrics
    checkpoint_every: int = (
        0  # steps between checkpoints; 0: only by time, at the end and on a signal
    )
    checkpoint_minutes: float = 5.0  # wall-clock minutes between checkpoints; 0 switches it off
    progress: bool = True  # tqdm progress bar (it also hides itself when stderr is not a terminal)

    def __post_init__(self) -> None:
        if not DEVICE_PATTERN.match(str(self.device)):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        check_range("threads", self.threads, low=1)
        check_range("checkpoint_every", self.checkpoint_every, low=0)
        check_range("checkpoint_minutes", self.checkpoint_minutes, low=0)
        name = Path(str(self.name))
        if not str(self.name).strip() or name.is_absolute() or ".." in name.parts:
            raise ValueError(
                f"name must be a relative path inside out_dir without '..', got {self.name!r}"
            )
        if self.resume and self.overwrite:
            raise ValueError("resume=true and overwrite=true contradict each other; choose one")


def may_change_on_resume(key: str, patterns: Iterable[str]) -> bool:
    """Whether dotted ``key`` matches one of the glob ``patterns`` (``*log_every``, ``train.steps``)."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _describe_omegaconf_error(err: OmegaConfBaseException, source: str) -> str:
    key = getattr(err, "full_key", None) or getattr(err, "key", None)
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    if type(err).__name__ in {"ConfigKeyError", "ConfigAttributeError"}:
        return f"unknown config key '{key}' (from {source})"
    if key:
        return f"bad value for config key '{key}' (from {source}): {first_line}"
    return f"invalid config (from {source}): {first_line}"


def available_presets(config_dir: Path | str | None) -> list[str]:
    if config_dir is None or not Path(config_dir).is_dir():
        return []
    return sorted(p.stem for p in Path(config_dir).glob("*.yaml"))


def resolve_preset(preset: str, config_dir: Path | str | None) -> Path:
    """A preset is a name in ``config_dir`` (``quick``) or a path to a YAML file."""
    as_path = Path(preset)
    if as_path.suffix in {".yaml", ".yml"} and as_path.is_file():
        return as_path
    if config_dir is not None:
        candidate = Path(config_dir) / f"{preset}.yaml"
        if candidate.is_file():
            return candidate
    have = ", ".join(available_presets(config_dir)) or "none"
    raise ConfigError(f"no config preset '{preset}' (available: {have})")


def load_config(
    schema: type,
    preset: str | Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
    config_dir: Path | str | None = None,
) -> DictConfig:
    """Schema defaults <- YAML preset <- ``key=value`` overrides; raises :class:`ConfigError`.

    ``preset`` may also map sections of the schema to presets (``{"ipd": "ipd_quick", "coin":
    "coin_quick"}``): a config made of several runs' configs, each read from its own file."""
    cfg = OmegaConf.structured(schema)
    OmegaConf.set_struct(cfg, True)
    sections = preset.items() if isinstance(preset, Mapping) else [(None, preset)]
    for section, name in sections:
        if name is None:
            continue
        path = resolve_preset(name, config_dir)
        try:
            loaded = OmegaConf.load(path)
        except Exception as err:  # a YAML syntax error is as fatal as a bad key
            raise ConfigError(
                f"cannot read config file {path}: {str(err).splitlines()[0]}"
            ) from err
        try:
            cfg = OmegaConf.merge(cfg, loaded if section is None else {section: loaded})
        except OmegaConfBaseException as err:
            raise ConfigError(_describe_omegaconf_error(err, str(path))) from err
    for override in overrides:
        if "=" not in override or override.startswith("="):
            raise ConfigError(f"override '{override}' is not of the form key=value")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([override]))
        except OmegaConfBaseException as err:
            raise ConfigError(_describe_omegaconf_error(err, f"override '{override}'")) from err
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"config key '{missing[0]}' has no value; set it with {missing[0]}=...")
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Build the dataclass objects so every ``__post_init__`` check runs; one-line ConfigError naming the key."""
    try:
        OmegaConf.to_object(cfg)
    except (ValueError, OmegaConfBaseException) as err:
        section, err = _deepest_failing_section(cfg, "", err)
        raise ConfigError(f"invalid config: {_name_the_key(section, err)}") from None


def _deepest_failing_section(
    node: DictConfig, path: str, err: Exception
) -> tuple[tuple[str, DictConfig], Exception]:
    """The innermost structured section whose construction raises, with its dotted path."""
    for key in node:
        child = node._get_node(key)
        if not isinstance(child, DictConfig) or OmegaConf.get_type(child) in (None, dict):
            continue
        try:
            OmegaConf.to_object(child)
        except (ValueError, OmegaConfBaseException) as child_err:
            return _deepest_failing_section(child, f"{path}{key}.", child_err)
    return (path, node), err


def _name_the_key(section: tuple[str, DictConfig], err: Exception) -> str:
    path, node = section
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    first_word = re.split(r"[\s:,=]", message, maxsplit=1)[0]
    if path and first_word in node:
        return f"{path}{message}"
    if path and not message.startswith(path):
        return f"in section '{path.rstrip('.')}': {message}"
    return message


def _type_name(tp: object) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"{tp.__name__}: {' | '.join(member.name for member in tp)}"
    origin = typing.get_origin(tp)
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def describe_schema(schema: type, prefix: str = "", values: DictConfig | None = None) -> list[str]:
    """One line per leaf key: ``dotted.key (type) = default`` (or ``= value`` from ``values``), for ``--help``."""
    lines = []
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        tp = hints[field.name]
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(tp):
            lines.extend(describe_schema(tp, prefix=f"{key}.", values=values))
            continue
        if values is not None and OmegaConf.select(values, key, default=_ABSENT) is not _ABSENT:
            value = OmegaConf.select(values, key)
            default = (
                OmegaConf.to_container(value)
                if isinstance(value, (DictConfig, ListConfig))
                else value
            )
        elif field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = "???"
        if isinstance(default, enum.Enum):
            default = default.name
        lines.append(f"  {key} ({_type_name(tp)}) = {default}")
    return lines


_ABSENT = object()


def parse_args(
    schema: type,
    config_dir: Path | str | None,
    description: str | None = None,
    argv: Sequence[str] | None = None,
    default_preset: str | None = "quick",
    prog: str | None = None,
) -> DictConfig:
    """Command-line front end: ``--config NAME`` plus ``key=value`` overrides; exits 2 on a bad config.

    ``--help`` shows the values the chosen preset (after any overrides on the same line) uses.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _make_parser(schema, config_dir, description, default_preset, prog, epilog="")
    if any(arg in {"-h", "--help"} for arg in argv):
        known, _ = parser.parse_known_args([a for a in argv if a not in {"-h", "--help"}])
        parser.epilog = _help_epilog(schema, config_dir, known.config, known.overrides)
    args = parser.parse_args(argv)
    try:
        return load_config(schema, args.config, args.overrides, config_dir)
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _make_parser(
    schema, config_dir, description, default_preset, prog, epilog
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(description or "").strip().splitlines()[0] if description else None,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        "-c",
        default=default_preset,
        help=f"preset name or YAML path (default: {default_preset})",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def _help_epilog(schema, config_dir, preset, overrides) -> str:
    """The ``--help`` key list with the values of ``preset`` + ``overrides`` (what a run would use)."""
    presets = available_presets(config_dir)
    values, source = None, "the schema's defaults"
    attempts = [(preset, overrides, f"preset '{preset}' with your overrides")] if overrides else []
    attempts.append((preset, (), f"preset '{preset}'"))
    problem = ""
    for attempt_preset, attempt_overrides, label in attempts:
        try:
            values = load_config(schema, attempt_preset, attempt_overrides, config_dir)
        except ConfigError as err:
            problem = problem or f"\n(not shown with your settings: {err})"
            continue
        source = label if attempt_preset is not None else "the schema's defaults"
        break
    return (
        f"presets: {', '.join(presets) or 'none'} (or a path to a YAML file)\n"
        f"overrides: key=value, dotted for nested keys; the keys, types and values of {source} are:"
        f"{problem}\n" + "\n".join(describe_schema(schema, values=values))
    )


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
