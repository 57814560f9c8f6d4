"""A trained Coconet, from a run directory or from the ready-to-use copy shipped in ``results/coconet/``.

    from coconet.trained import load_model
    model, cfg = load_model()                              # the shipped model (medium, else quick)
    model, cfg = load_model("runs/coconet/quick/chorales_seed0")   # a run directory of your own

A shipped model is a folder with ``weights.safetensors`` (the network's tensors) and ``config.yaml`` (the
run's resolved config), written by :func:`save_model` and copied to ``results/coconet/<scale>/model/`` by
``python -m common.results publish coconet <scale>``.
"""

from __future__ import annotations

from pathlib import Path

from coconet.model import Coconet
from common.results import REPO_ROOT
from common.results import load_model as load_tensors
from common.results import save_model as save_tensors
from common.runner import load_checkpoint, load_run_config

SHIPPED = [REPO_ROOT / "results" / "coconet" / scale / "model" for scale in ("medium", "quick")]


def default_model_dir() -> Path:
    """The shipped model: the medium one where it exists, else the quick one."""
    for path in SHIPPED:
        if (path / "weights.safetensors").is_file():
            return path
    raise FileNotFoundError(
        f"no shipped model in {SHIPPED[0]} or {SHIPPED[1]}; train one with `make coconet`"
    )


def load_model(path: Path | str | None = None) -> tuple[Coconet, object]:
    """The network (eval mode, CPU) and its config, from a model folder or a run directory
    (``None``: the shipped model). A missing or unusable folder is a one-line FileNotFoundError."""
    path = Path(path) if path is not None else default_model_dir()
    if (path / "weights.safetensors").is_file():
        tensors, cfg = load_tensors(path)
    elif (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        cfg = load_run_config(path)
        tensors = load_checkpoint(path)["objects"]["model"]
    else:
        raise FileNotFoundError(
            f"{path} is neither a trained model folder (weights.safetensors + config.yaml) "
            "nor a run directory (config.yaml + checkpoints/)"
        )
    model = Coconet.from_config(cfg.model)
    model.load_state_dict(tensors)
    return model.eval(), cfg


def save_model(run_dir: Path | str, directory: Path | str) -> Path:
    """Copy a run's trained network to ``directory`` as safetensors + its resolved config."""
    model, cfg = load_model(run_dir)
    return save_tensors(directory, model.state_dict(), cfg)
