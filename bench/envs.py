"""Coin Game throughput: batched torch env vs the per-env pure-Python reference loop, same process.

    python bench/envs.py              # default sweep, under a minute (+ a cold torch.compile)
    python bench/envs.py --quick      # fewer batch sizes and repeats, no compile, seconds
    python bench/envs.py --threads 2  # only on an idle box: 2 threads on a busy 2-core box collapse

One env-step = both players act once in one environment; the batched env counts B env-steps per
call. Rows: eager batched env without / with observations, the env compiled with TorchInductor
(`compile=True`: one fused kernel, called directly) and, for comparison, the same step under
torch.compile (TorchDynamo's per-call guards included), both with observations; the env with a 64-unit GRU policy's forward pass for both seats in the loop, and the per-env
reference loop (it builds observations). A JaxMARL row (a DIFFERENT, two-coin variant; throughput
only) is added when jax and jaxmarl import. Before timing, a correctness gate replays identical
actions and respawn draws through the batched env and the reference and requires identical
observations, rewards and positions. Each cell is the median of `repeats` timed runs of `steps`
steps after warm-up. The last line of stdout is one JSON object with the numbers at batch 4096
(issue 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from common.envs import CoinGame, ReferenceCoinGame
from common.envs.coin_game import respawn_draw_range

HEADLINE_BATCH = 4096


# ------------------------------------------------------------------------------------- timing
def median_rate(run_once, env_steps: int, repeats: int, warmup: int = 2) -> float:
    """Median env-steps/s of `run_once()` (which performs `env_steps` env-steps)."""
    for _ in range(warmup):
        run_once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_once()
        times.append(time.perf_counter() - start)
    return env_steps / statistics.median(times)


def steps_for(batch: int, budget: int, low: int = 8, high: int = 256) -> int:
    """Steps per timed run so that one run does about `budget` env-steps."""
    return max(low, min(high, budget // batch))


# ----------------------------------------------------------------------------- implementations
def batched_rate(
    batch, *, observations, compile_env, repeats, budget, obs_dtype=torch.float32, seed=0
) -> float:
    steps = steps_for(batch, budget)
    env = CoinGame(
        grid_size=3,
        episode_length=steps,
        seed=seed,
        observations=observations,
        obs_dtype=obs_dtype,
        compile=compile_env,
    )
    actions = torch.randint(0, 4, (steps, batch, 2), generator=torch.Generator().manual_seed(seed))

    def run_once():
        env.reset(batch)
        for t in range(steps):
            env.step(actions[t])

    return median_rate(run_once, batch * steps, repeats)


class GRUPolicy(nn.Module):
    """GRUCell(36 -> 64) + linear head to 4 logits, both seats as one batch: ~78 kFLOP per env-step,
    the calibration's policy in performance.md (LOQA's actor adds a 2-layer encoder in front)."""

    def __init__(self, obs_size: int = 36, hidden: int = 64, actions: int = 4):
        super().__init__()
        self.gru = nn.GRUCell(obs_size, hidden)
        self.head = nn.Linear(hidden, actions)

    def forward(self, obs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.gru(obs, h)
        return self.head(h), h


def gru_rate(batch, *, repeats, budget, seed=0) -> float:
    steps = steps_for(batch, budget // 8)
    env = CoinGame(grid_size=3, episode_length=steps, seed=seed)
    policy = GRUPolicy()
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def run_once():
        obs = env.reset(batch)
        h = torch.zeros(batch * 2, 64)
        for _ in range(steps):
            logits, h = policy(obs.view(batch * 2, 36), h)
            # Gumbel-max sampling: one fused op chain, same distribution as Categorical(logits).
            gumbel = -torch.empty_like(logits).exponential_(generator=gen).log()
            actions = (logits + gumbel).argmax(dim=1).view(batch, 2)
            obs, _, _, _ = env.step(actions)

    return median_rate(run_once, batch * steps, repeats)


def learning_rate(batch, *, repeats, budget, seed=0) -> float:
    """Rollout with autograd, a REINFORCE loss for both seats, backward and an Adam step."""
    steps = steps_for(batch, budget // 16, low=16, high=16)
    env = CoinGame(grid_size=3, episode_length=steps, seed=seed)
    policy = GRUPolicy()
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)

    def run_once():
        obs = env.reset(batch)
        h = torch.zeros(batch * 2, 64)
        log_probs, rewards = [], []
        for _ in range(steps):
            logits, h = policy(obs.view(batch * 2, 36), h)
            gumbel = -torch.empty_like(logits).exponential_(generator=gen).log()
            actions = (logits.detach() + gumbel).argmax(dim=1)
            log_probs.append(logits.log_softmax(-1).gather(1, actions[:, None]).squeeze(1))
            obs, reward, _, _ = env.step(actions.view(batch, 2))
            rewards.append(reward.reshape(-1))
        returns = torch.stack(rewards).flip(0).cumsum(0).flip(0)  # reward-to-go
        loss = -(torch.stack(log_probs) * returns).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return median_rate(run_once, batch * steps, repeats, warmup=1)


def loop_rate(batch, *, repeats, budget, seed=0) -> float:
    """Per-env reference objects stepped one by one in Python (observations as nested lists)."""
    steps = max(2, min(64, budget // (8 * batch)))
    rng = random.Random(seed)
    draw_high = respawn_draw_range(9)
    envs = [ReferenceCoinGame(3, 3, episode_length=steps) for _ in range(batch)]
    actions = [[(rng.randrange(4), rng.randrange(4)) for _ in range(batch)] for _ in range(steps)]

    def run_once():
        for env in envs:
            env.reset([(0, 0), (1, 1)], (2, 2), rng.randrange(2))
        for t in range(steps):
            for env, (a0, a1) in zip(envs, actions[t]):
                env.step(a0, a1, rng.randrange(draw_high))

    return median_rate(run_once, batch * steps, repeats, warmup=1)


def jaxmarl_rate(batch, *, repeats, budget, seed=0) -> float | None:
    """JaxMARL's Coin Game (two coins, 5 actions: another variant), jit(vmap(step)) in scan."""
    try:
        import jax
        import jax.numpy as jnp
        import jaxmarl
    except ImportError:
        return None
    steps = steps_for(batch, budget)
    env = jaxmarl.make("coin_game")
    agents = env.agents
    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    _, states = jax.vmap(env.reset)(keys)

    @jax.jit
    def rollout(states, key):
        def body(carry, _):
            states, key = carry
            key, act_key, step_key = jax.random.split(key, 3)
            acts = jax.random.randint(act_key, (len(agents), batch), 0, 5)
            actions = {agent: acts[i] for i, agent in enumerate(agents)}
            step_keys = jax.random.split(step_key, batch)
            obs, states, rewards, dones, infos = jax.vmap(env.step)(step_keys, states, actions)
            return (states, key), jnp.stack([rewards[a] for a in agents]).sum()

        (states, key), total = jax.lax.scan(body, (states, key), None, length=steps)
        return states, total

    key = jax.random.PRNGKey(seed + 1)

    def run_once():
        _, total = rollout(states, key)
        total.block_until_ready()

    return median_rate(run_once, batch * steps, repeats)


# --------------------------------------------------------------------------- correctness gate
def correctness_gate(batch: int = 64, steps: int = 60, seed: int = 0) -> None:
    """Identical actions and respawn draws -> identical observations, rewards, positions."""
    env = CoinGame(grid_size=3, episode_length=steps, seed=seed)
    obs = env.reset(batch)
    refs = [ReferenceCoinGame(3, 3, episode_length=steps) for _ in range(batch)]
    for i, ref in enumerate(refs):
        ref.reset(env.player_pos[i].tolist(), env.coin_pos[i].tolist(), int(env.coin_owner[i]))
    gen = torch.Generator().manual_seed(seed)
    for t in range(steps):
        actions = torch.randint(0, 4, (batch, 2), generator=gen)
        draws = env.sample_respawn_draws(batch)
        obs, rewards, _, _ = env.step(actions, respawn_draws=draws)
        expected = [
            ref.step(int(a[0]), int(a[1]), int(d)) for ref, a, d in zip(refs, actions, draws)
        ]
        if obs.tolist() != [e[0] for e in expected] or rewards.tolist() != [e[1] for e in expected]:
            raise SystemExit(f"correctness gate failed at step {t}: batched env != reference")
    print(f"correctness gate: batched == reference on {batch} envs x {steps} steps")


# ------------------------------------------------------------------------------------- main
def format_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2e}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="B in {64, 4096}, 3 repeats, no compile"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batches", type=str, default="1,64,1024,4096,16384,131072")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median)")
    parser.add_argument(
        "--budget", type=int, default=2**19, help="env-steps per timed run (approx.)"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--out", type=str, default="", help="also write the results JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_start = time.perf_counter()
    batches = [int(b) for b in args.batches.split(",")]
    repeats, budget, do_compile = args.repeats, args.budget, not args.no_compile
    if args.quick:
        batches, repeats, budget, do_compile = [64, HEADLINE_BATCH], 3, min(budget, 2**17), False
    if HEADLINE_BATCH not in batches:
        batches.append(HEADLINE_BATCH)
    print(
        f"torch {torch.__version__} | threads {torch.get_num_threads()} | "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} | "
        f"{platform.processor() or platform.machine()} | cpus {os.cpu_count()} | "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    correctness_gate()

    rows: dict[str, dict[int, float | None]] = {}
    rows["batched eager, no obs"] = {
        b: batched_rate(b, observations=False, compile_env=False, repeats=repeats, budget=budget)
        for b in batches
    }
    rows["batched eager, obs"] = {
        b: batched_rate(b, observations=True, compile_env=False, repeats=repeats, budget=budget)
        for b in batches
    }
    if not args.quick:
        rows["batched eager, obs uint8"] = {
            b: batched_rate(
                b,
                observations=True,
                compile_env=False,
                repeats=repeats,
                budget=budget,
                obs_dtype=torch.uint8,
            )
            for b in batches
        }
    if do_compile:
        for name, mode in (("compiled", True), ("torch.compile", "torch.compile")):
            start = time.perf_counter()
            rate = batched_rate(
                HEADLINE_BATCH, observations=True, compile_env=mode, repeats=repeats, budget=budget
            )
            rows[f"batched {name}, obs"] = {HEADLINE_BATCH: rate}
            print(f"{name}: compiling + timing took {time.perf_counter() - start:.0f} s")
    rows["batched eager + GRU(64) fwd"] = {
        b: gru_rate(b, repeats=repeats, budget=budget) for b in batches if b <= 16384
    }
    if not args.quick:
        rows["GRU fwd+bwd+Adam (learning)"] = {
            b: learning_rate(b, repeats=3, budget=budget) for b in batches if 64 <= b <= 4096
        }
    rows["per-env Python loop, obs"] = {
        b: loop_rate(b, repeats=max(3, repeats // 2), budget=budget) for b in batches if b <= 4096
    }
    jax_rates = {}
    for b in (b for b in batches if b <= 16384):
        try:
            jax_rates[b] = jaxmarl_rate(b, repeats=repeats, budget=budget)
        except Exception as error:  # an optional extra must not break `make bench`
            print(f"JaxMARL row skipped at B={b}: {type(error).__name__}: {error}")
            break
    if any(rate is not None for rate in jax_rates.values()):
        rows["JaxMARL jit (two-coin variant!)"] = jax_rates

    width = max(len(name) for name in rows) + 2
    print("\nenv-steps/s (median of repeats), 3x3 Coin Game, random actions")
    print("| implementation".ljust(width + 2) + "|" + "|".join(f" B={b} " for b in batches) + "|")
    print("|" + "-" * (width + 1) + "|" + "|".join("---" for _ in batches) + "|")
    for name, rates in rows.items():
        cells = "|".join(f" {format_rate(rates.get(b))} " for b in batches)
        print(f"| {name.ljust(width)}|{cells}|")

    batched = rows["batched eager, obs"][HEADLINE_BATCH]
    loop = rows["per-env Python loop, obs"][HEADLINE_BATCH]
    print(f"\nratios at B={HEADLINE_BATCH}: batched/loop = {batched / loop:.1f}x", end="")
    compiled = rows.get("batched compiled, obs", {}).get(HEADLINE_BATCH)
    if compiled:
        print(f", compiled/eager = {compiled / batched:.2f}x", end="")
    gru = rows["batched eager + GRU(64) fwd"][HEADLINE_BATCH]
    print(f", GRU(64) row / env alone = {gru / batched:.3f}", end="")
    print(f"\nbenchmark wall time {time.perf_counter() - bench_start:.0f} s")
    result = {
        "coin_batched_steps_per_s": round(batched),
        "coin_compiled_steps_per_s": round(compiled) if compiled else None,
        "coin_loop_steps_per_s": round(loop),
        "speedup": round(batched / loop, 1),
        "coin_with_gru_steps_per_s": round(rows["batched eager + GRU(64) fwd"][HEADLINE_BATCH]),
        "batch": HEADLINE_BATCH,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table = {name: {str(b): r for b, r in rates.items()} for name, rates in rows.items()}
        Path(args.out).write_text(json.dumps({**result, "table": table}, indent=2))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
