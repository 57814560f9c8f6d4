"""A grid of overrides x seeds, run with submitit (local processes, or SLURM), gathered into one table.

    python -m common.sweep target=common.sweep:toy_objective 'grid=[x=0|1|2]' 'seeds=[0,1,2]'
    python -m common.sweep --config loqa_full cluster=slurm slurm.partition=long   # on a cluster

``target`` is ``module:function``; the function takes a list of ``key=value`` overrides (the sweep's
``base`` overrides, one value per grid key, and ``seed=<s>``) and returns a flat dict of numbers. Each grid
entry is ``key=v1|v2|v3``. Results land in ``<out_dir>/sweeps/<name>/``: ``results.csv`` (one row a job),
``summary.md`` (mean, std and count per grid point) and ``<metric>.png``.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from common.config import ConfigError, parse_args
from common.plots import bar_chart

CLUSTERS = ("local", "slurm", "debug")


@dataclass
class SlurmConfig:
    partition: str = ""  # empty: the cluster's default partition
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: int = 16
    array_parallelism: int = 64  # at most this many jobs of the array at once


@dataclass
class SweepConfig:
    target: str = "common.sweep:toy_objective"  # module:function(overrides) -> {metric: number}
    grid: list[str] = field(default_factory=list)  # "key=v1|v2|v3", one entry per swept key
    seeds: list[int] = field(default_factory=lambda: [0])
    base: list[str] = field(default_factory=list)  # overrides every job gets
    cluster: str = "local"  # local (processes here) | slurm | debug (in this process)
    max_parallel: int = 1  # local: jobs at once (2 cores: keep 1)
    timeout_min: int = 60
    name: str = "sweep"
    out_dir: str = "runs"
    metric: str = ""  # the metric to plot; empty: the first one returned
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


def parse_grid(grid: list[str]) -> dict[str, list[str]]:
    parsed = {}
    for entry in grid:
        key, sep, values = entry.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"grid entry '{entry}' is not of the form key=v1|v2|...")
        parsed[key] = values.split("|")
    return parsed


def job_overrides(cfg: SweepConfig) -> list[tuple[dict[str, str], list[str]]]:
    """Every (grid point, seed): its parameters (for the table) and its full override list."""
    grid = parse_grid(list(cfg.grid))
    jobs = []
    for values in itertools.product(*grid.values()) if grid else [()]:
        point = dict(zip(grid.keys(), values))
        for seed in cfg.seeds:
            overrides = [*cfg.base, *(f"{k}={v}" for k, v in point.items()), f"seed={seed}"]
            jobs.append(({**point, "seed": str(seed)}, overrides))
    return jobs


def resolve_target(target: str) -> Callable[[list[str]], dict]:
    module_name, sep, function_name = target.partition(":")
    if not sep:
        raise ConfigError(f"target '{target}' is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ConfigError(f"target '{target}': no module {err.name}") from err
    if not hasattr(module, function_name):
        raise ConfigError(f"target '{target}': {module_name} has no function {function_name}")
    return getattr(module, function_name)


def make_executor(cfg: SweepConfig, folder: Path):
    import submitit

    if cfg.cluster not in CLUSTERS:
        raise ConfigError(f"cluster={cfg.cluster} is not one of {', '.join(CLUSTERS)}")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cfg.cluster)
    params = {"timeout_min": cfg.timeout_min}
    if cfg.cluster == "slurm":
        params.update(
            slurm_partition=cfg.slurm.partition or None,
            gpus_per_node=cfg.slurm.gpus_per_node,
            cpus_per_task=cfg.slurm.cpus_per_task,
            mem_gb=cfg.slurm.mem_gb,
            slurm_array_parallelism=cfg.slurm.array_parallelism,
        )
        params = {k: v for k, v in params.items() if v is not None}
    executor.update_parameters(**params)
    return executor


def run_sweep(cfg: SweepConfig) -> pd.DataFrame:
    """Submit every job, wait, and write results.csv, summary.md and a plot; returns the table."""
    function = resolve_target(cfg.target)
    jobs = job_overrides(cfg)
    sweep_dir = Path(cfg.out_dir) / "sweeps" / cfg.name
    executor = make_executor(cfg, sweep_dir / "submitit")
    # Local processes share this machine's cores: run them in waves of max_parallel.
    wave = len(jobs) if cfg.cluster == "slurm" else max(1, cfg.max_parallel)
    rows = []
    for start in range(0, len(jobs), wave):
        chunk = jobs[start : start + wave]
        submitted = executor.map_array(function, [overrides for _, overrides in chunk])
        for (params, _), job in zip(chunk, submitted):
            try:
                results = job.result()
                rows.append({**params, **results, "status": "ok"})
            except Exception as err:  # one failed job is a row, not the end of the sweep
                message = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
                print(f"job {params} failed: {message}", file=sys.stderr)
                rows.append({**params, "status": "failed"})
    table = pd.DataFrame(rows)
    write_outputs(table, cfg, sweep_dir)
    return table


def write_outputs(table: pd.DataFrame, cfg: SweepConfig, sweep_dir: Path) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(sweep_dir / "results.csv", index=False)
    grid_keys = list(parse_grid(list(cfg.grid)).keys())
    ok = table[table["status"] == "ok"]
    metrics = [c for c in ok.columns if c not in {*grid_keys, "seed", "status"}]
    metrics = [c for c in metrics if pd.api.types.is_numeric_dtype(ok[c])]
    if ok.empty or not metrics:
        (sweep_dir / "summary.md").write_text("no job finished\n")
        return
    groups = ok.groupby(grid_keys) if grid_keys else ok.assign(_all="all").groupby("_all")
    summary = groups[metrics].agg(["mean", "std", "count"])
    (sweep_dir / "summary.md").write_text(markdown_table(summary))
    metric = cfg.metric or metrics[0]
    if metric not in metrics:
        raise ConfigError(f"metric={metric} is not among the results ({', '.join(metrics)})")
    stats = groups[metric].agg(["mean", "std", "count"]).reset_index()
    labels = [
        ", ".join(f"{k}={row[k]}" for k in grid_keys) if grid_keys else "all"
        for _, row in stats.iterrows()
    ]
    stderr = (stats["std"].fillna(0) / stats["count"] ** 0.5).tolist()
    bar_chart(
        sweep_dir / f"{metric.replace('/', '_')}.png",
        labels,
        stats["mean"].tolist(),
        stderr,
        ylabel=metric,
        title=f"{cfg.name}: mean +- s.e. over seeds",
    )


def markdown_table(summary: pd.DataFrame) -> str:
    """A grouped mean/std/count frame as a markdown table (pandas' to_markdown needs tabulate)."""
    index_names = [str(n) for n in summary.index.names]
    columns = ["/".join(str(part) for part in col) for col in summary.columns]
    lines = [
        "| " + " | ".join(index_names + columns) + " |",
        "|" + "---|" * (len(index_names) + len(columns)),
    ]
    for index, row in summary.iterrows():
        keys = index if isinstance(index, tuple) else (index,)
        cells = [str(k) for k in keys] + [f"{v:.4g}" for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def toy_objective(overrides: list[str]) -> dict[str, float]:
    """A stand-in experiment for trying the sweep machinery: a noisy quadratic in ``x``."""
    import numpy as np

    values = dict(o.split("=", 1) for o in overrides)
    x = float(values.get("x", 0.0))
    rng = np.random.default_rng(int(values.get("seed", 0)))
    return {"loss": (x - 1.0) ** 2 + 0.01 * float(rng.standard_normal())}


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(
        SweepConfig,
        config_dir=Path(__file__).parent / "sweeps",
        description=__doc__,
        argv=argv,
        default_preset=None,
        prog="python -m common.sweep",
    )
    try:
        table = run_sweep(cfg)
    except ConfigError as err:
        print(f"python -m common.sweep: error: {err}", file=sys.stderr)
        return 2
    sweep_dir = Path(cfg.out_dir) / "sweeps" / cfg.name
    print((sweep_dir / "summary.md").read_text())
    print(f"{len(table)} jobs -> {sweep_dir}")
    return 0 if (table["status"] == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
