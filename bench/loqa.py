"""Learning throughput of one LOQA Coin Game iteration, fast loop vs the frozen pre-speed-up loop, same process.

    python bench/loqa.py                 # quick and paper sizes, 3 timed rounds each, ~2 minutes
    python bench/loqa.py --rounds 1      # one round (seconds at quick, ~15 s at paper size)
    python bench/loqa.py --block 8 16 32 # also time other rollout block sizes at paper size

One iteration (loqa.train.train_step) = rollout of a batch of episodes against opponents from the agent
buffer, our actor/critic and the EMA target over the histories, the opponents' actor and critic, the
actor loss with the shaping term, the critic loss, gradients and the optimiser steps. Learning env-steps/s
= batch x episode length / seconds per iteration (one env-step = both players act in one env). The baseline
is bench/loqa_baseline.py: the training loop as it was when this benchmark was written (PyTorch rollout,
opponents re-run over their histories); it shares loqa/networks.py with the fast loop, so the network-level
gains (the GRU's backward, addmm) speed up both columns and the ratio counts the loop's gains only. Times
are CPU seconds of this process, with --threads 1 (default) a measure that a loaded machine's waits for a
core do not inflate (its contention for memory bandwidth still does); baseline and fast iterations
alternate, so their ratio survives a loaded machine better than the absolute rates; note the load average
anyway. With --threads 2 the C rollout splits its episodes over both threads, PyTorch its products; CPU
seconds then count both threads, so compare wall clocks (the `*_wall_*` keys) on an idle machine.
Sizes: quick = configs/coin_quick.yaml (batch 256, the paper's networks, one opponent per episode);
paper = configs/coin_full.yaml (batch 512, actor GRU 128 with 2 pre-layers, critic GRU 64, one opponent per
episode), with a buffer of 600 past agents (iteration 6000, pushes every 10; the headline) and of 300
(mid-run: more of the 512 draws repeat an agent). The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# `python bench/loqa.py` puts bench/ first on sys.path, where this file would shadow the loqa package;
# the checkout this file is in comes first instead
BENCH = Path(__file__).resolve().parent
sys.path = [str(BENCH.parent)] + [p for p in sys.path if Path(p or ".").resolve() != BENCH]

import torch  # noqa: E402

from common.agent_buffer import AgentBuffer  # noqa: E402
from common.config import load_config  # noqa: E402
from common.runner import keep_freed_memory  # noqa: E402
from loqa.config import CONFIG_DIR, LoqaConfig  # noqa: E402
from loqa.rollout import sample_opponents  # noqa: E402
from loqa.train import make_agent, make_env, make_learner, train_step  # noqa: E402

sys.path.append(str(BENCH))
import loqa_baseline  # noqa: E402

SIZES = {"quick": ("coin_quick", 100), "paper": ("coin_full", 600)}  # preset, agents in the buffer


def setup(size: str, overrides: list[str], agents: int | None = None):
    preset, end_of_run = SIZES[size]
    agents = agents or end_of_run
    cfg = load_config(LoqaConfig, preset, [*overrides, "progress=false"], CONFIG_DIR)
    torch.manual_seed(0)
    learner = make_learner(cfg)
    buffer = AgentBuffer(agents)
    for _ in range(agents):  # distinct past agents: fresh initialisations
        buffer.push(make_agent(cfg))
    env = make_env(cfg, seed=0)
    generator = torch.Generator().manual_seed(1)
    return cfg, learner, buffer, env, generator


def seconds_per_iteration(step, cfg, learner, buffer, env, generator) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one iteration."""
    start, wall = time.process_time(), time.perf_counter()
    if step is train_step:
        opponents = sample_opponents(buffer, cfg.train.opponents_per_batch, generator)
    else:
        opponents = buffer.sample(cfg.train.opponents_per_batch, generator)
    it = cfg.train.critic_warmup  # the actor trains: the full iteration
    step(cfg, learner, env, opponents, generator, it, logging=False)
    return time.process_time() - start, time.perf_counter() - wall


def measure(
    size: str, rounds: int, blocks: list[int], agents: int | None = None
) -> dict[str, float]:
    """Median seconds per iteration of the baseline and the fast loop (each block size), interleaved."""
    variants = {"baseline": (loqa_baseline.train_step, [])}
    for block in blocks:
        variants[f"fast_block{block}"] = (train_step, [f"train.rollout_block_opponents={block}"])
    variants["fast"] = (train_step, [])  # the preset's block size
    states = {name: setup(size, overrides, agents) for name, (_, overrides) in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds + 1):  # round 0 warms up
        for name, (step, _) in variants.items():
            seconds, wall = seconds_per_iteration(step, *states[name])
            if r:
                times[name].append(seconds)
                walls[name].append(wall)
    cfg = states["fast"][0]
    env_steps = cfg.train.batch_size * cfg.env.episode_length
    out = {}
    for name, values in times.items():
        median, wall = statistics.median(values), statistics.median(walls[name])
        out[f"{name}_s_per_iteration"] = round(median, 4)
        out[f"{name}_env_steps_per_s"] = round(env_steps / median, 1)
        out[f"{name}_wall_s_per_iteration"] = round(wall, 4)
        print(
            f"{size:>5} {name:<16} {median:8.3f} CPU-s/iteration {env_steps / median:10.0f} "
            f"env-steps/s  (wall {wall:.3f} s)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed iterations of each variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared box)")
    parser.add_argument(
        "--block", type=int, nargs="*", default=[], help="extra block sizes (paper)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as loqa.train does; the baseline gains from it as much as the fast loop
    print(
        f"load average {os.getloadavg()[0]:.2f}, {args.threads} thread(s), {platform.processor()}"
    )
    quick = measure("quick", args.rounds, [])
    paper = measure("paper", args.rounds, args.block)
    # Mid-run (iteration 3000: 300 past agents) more of the 512 draws repeat an agent.
    mid = measure("paper", args.rounds, [], agents=300)
    result = {
        "learning_env_steps_per_s_quick": quick["fast_env_steps_per_s"],
        "learning_env_steps_per_s_paper": paper["fast_env_steps_per_s"],
        "speedup_vs_baseline_quick": round(
            quick["baseline_s_per_iteration"] / quick["fast_s_per_iteration"], 2
        ),
        "speedup_vs_baseline_paper": round(
            paper["baseline_s_per_iteration"] / paper["fast_s_per_iteration"], 2
        ),
        "speedup_vs_baseline_paper_mid_run": round(
            mid["baseline_s_per_iteration"] / mid["fast_s_per_iteration"], 2
        ),
        "wall_speedup_vs_baseline_paper": round(
            paper["baseline_wall_s_per_iteration"] / paper["fast_wall_s_per_iteration"], 2
        ),
        # about the mean over a run's iterations: the buffer grows from 1 to 600 agents
        "paper_6000_iterations_h": round(6000 * mid["fast_wall_s_per_iteration"] / 3600, 2),
        "threads": args.threads,
        "load_average": round(os.getloadavg()[0], 2),
        **{f"quick/{k}": v for k, v in quick.items()},
        **{f"paper/{k}": v for k, v in paper.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
