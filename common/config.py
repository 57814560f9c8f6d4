"""Structured configs: a dataclass schema, a YAML preset, and ``key=value`` overrides, all validated.

Every experiment describes its settings as a dataclass that inherits :class:`BaseConfig`. A preset
(``configs/quick.yaml``, ``configs/full.yaml``) and command-line overrides (``train.lr=1e-3``) are merged
onto the schema by omegaconf in struct mode, so an unknown key, a mistyped key or a value of the wrong type
is refused with one line naming the dotted key::

    cfg = parse_args(LoqaConfig, config_dir=Path(__file__).parent / "configs", description=__doc__)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config problem, as one line that names the offending key or file."""


@dataclass
class BaseConfig:
    """Fields every experiment has: where its run lives, how it is seeded, what it runs on."""

    seed: int = 0  # seeds python, numpy and torch (and the environments' own generators)
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads on CPU; >1 on a busy 2-core box is 30-100x slower
    name: str = "quick"  # the run directory is <out_dir>/<paper>/<name>
    out_dir: str = "runs"
    resume: bool = False  # continue from the latest checkpoint in the run directory
    checkpoint_every: int = 0  # steps between checkpoints; 0 saves only at the end (and on Ctrl-C)
    progress: bool = True  # tqdm progress bar (it also hides itself when stderr is not a terminal)


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
    return cfg


def _type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def describe_schema(schema: type, prefix: str = "") -> list[str]:
    """One line per leaf key: ``dotted.key (type) = default``, for ``--help``."""
    lines = []
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        tp = hints[field.name]
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(tp):
            lines.extend(describe_schema(tp, prefix=f"{key}."))
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = "???"
        lines.append(f"  {key} ({_type_name(tp)}) = {default}")
    return lines


def parse_args(
    schema: type,
    config_dir: Path | str | None,
    description: str | None = None,
    argv: Sequence[str] | None = None,
    default_preset: str | None = "quick",
    prog: str | None = None,
) -> DictConfig:
    """Command-line front end: ``--config NAME`` plus ``key=value`` overrides; exits 2 on a bad config."""
    presets = available_presets(config_dir)
    epilog = (
        f"presets: {', '.join(presets) or 'none'} (or a path to a YAML file)\n"
        "overrides: key=value, dotted for nested keys; the keys, types and defaults are:\n"
        + "\n".join(describe_schema(schema))
    )
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
    args = parser.parse_args(argv)
    try:
        return load_config(schema, args.config, args.overrides, config_dir)
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
