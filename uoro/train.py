"""Fully online RNN training with one gradient estimator: one update per step, no unrolling (our tasks).

    python -m uoro.train --config quick train.estimator=uoro [key=value ...]   # -> runs/uoro/<name>/

Several seeds run as one batch (each seed its own parameters, Adam moments and gradient clipping; Adam is
elementwise, so one optimizer over [seeds, ...] tensors is exactly independent Adams), each seed with
``train.streams`` parallel input streams whose gradient estimates are averaged. The estimator's state (J for
RTRL, the rank-one pair for UORO, the window for TBPTT) carries over across parameter updates, as in any
online method. Logs the per-seed mean loss over every ``log_every`` steps to metrics.jsonl.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from common.config import parse_args
from common.runner import Run
from uoro.cells import init_params, loss_and_grads, make_cell
from uoro.config import CONFIG_DIR, UoroConfig, dtype_of
from uoro.estimators import make_estimator
from uoro.tasks import make_task


class OnlineRNN(torch.nn.Module):
    """Per-seed parameters and the streams' hidden states, in one module so a checkpoint holds them all."""

    def __init__(
        self, cell, n_out: int, seeds: int, streams: int, spectral_radius: float, seed: int, dtype
    ):
        super().__init__()
        inits = [
            init_params(
                cell, n_out, spectral_radius, torch.Generator().manual_seed(seed * 1000 + s), dtype
            )
            for s in range(seeds)
        ]
        theta, readout_w, readout_b = (torch.stack(parts) for parts in zip(*inits))
        self.theta = torch.nn.Parameter(theta)  # [S, P] flat recurrent parameters
        self.readout_w = torch.nn.Parameter(readout_w)  # [S, K, n]
        self.readout_b = torch.nn.Parameter(readout_b)  # [S, K]
        self.register_buffer("hidden", torch.zeros(seeds * streams, cell.n_hidden, dtype=dtype))
        self.register_buffer("seed_of_stream", torch.arange(seeds).repeat_interleave(streams))


def train(cfg) -> Path:
    """One online training run (every seed of it batched); returns its run directory."""
    tc = cfg.train
    with Run(cfg, paper="uoro") as run:
        print(f"run directory: {run.dir}")
        # ---------------------------------------------------------------- build
        dtype = dtype_of(cfg.model.dtype)
        n_examples = tc.seeds * tc.streams
        task = make_task(cfg.task, n_examples, seed=cfg.seed * 7919 + 1, dtype=dtype)
        cell = make_cell(cfg.model.cell, cfg.model.n_hidden, task.n_in)
        model = OnlineRNN(
            cell, task.n_out, tc.seeds, tc.streams, cfg.model.spectral_radius, cfg.seed, dtype
        ).to(run.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
        noise = torch.Generator().manual_seed(cfg.seed * 7919 + 2)
        estimator = make_estimator(
            tc.estimator, noise, tc.truncation, **OmegaConf.to_container(cfg.uoro)
        )
        estimator.reset(cell, n_examples, dtype=dtype, device=run.device)
        run.track(model=model, optimizer=optimizer, task=task, estimator=estimator)
        start = run.restore()
        seeds_of = model.seed_of_stream

        # ---------------------------------------------------------------- online loop
        # The loss summed over the current log window is carried across steps: checkpointed as extra.
        window_loss = run.extra.get("window_loss", torch.zeros(tc.seeds, dtype=torch.float64))
        window_start, tick = time.time(), start
        for step in run.steps(start, tc.steps, desc=f"uoro/{cfg.name}"):
            inputs, targets = (t.to(run.device) for t in task.next())
            theta = model.theta.detach()[seeds_of]  # [N, P], each stream sees its seed's parameters
            h_prev = model.hidden
            h = cell(theta, h_prev, inputs)
            loss, dloss_dh, grad_w, grad_b = loss_and_grads(
                h, model.readout_w.detach()[seeds_of], model.readout_b.detach()[seeds_of], targets
            )
            # the algorithm: the estimator's online estimate of dL_t/dtheta (the readout's is exact)
            grad_theta = estimator.step(cell, theta, h_prev, inputs, h, dloss_dh)
            grads = [
                g.reshape(tc.seeds, tc.streams, *g.shape[1:]).mean(1)
                for g in (grad_theta, grad_w, grad_b)
            ]
            # clip each seed's whole gradient at norm train.clip
            norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads))
            scale = (tc.clip / norms.clamp_min(1e-12)).clamp(max=1.0)
            for param, g in zip(model.parameters(), grads):
                param.grad = g * scale.view(-1, *([1] * (g.dim() - 1)))
            optimizer.step()
            model.hidden = h.detach()

            # ---------------------------------------------------------------- logging
            window_loss += loss.reshape(tc.seeds, tc.streams).mean(1).double()
            if run.log_due(step, tc.log_every):  # also the last step of a run shorter than a window
                per_seed = window_loss / (step % tc.log_every + 1)
                metrics = {"losses/loss": per_seed.mean(), "charts/grad_norm": norms.mean()}
                metrics.update({f"losses/loss_seed{s}": per_seed[s] for s in range(tc.seeds)})
                metrics["perf/steps_per_s"] = (step + 1 - tick) / max(
                    time.time() - window_start, 1e-9
                )
                run.log(step, metrics)  # labelled by the window's last step index
                window_loss.zero_()
                window_start, tick = time.time(), step + 1
            run.maybe_checkpoint(step + 1, window_loss=window_loss.clone())
        run.save(tc.steps, window_loss=window_loss)
    return run.dir


def main(argv=None) -> Path:
    cfg = parse_args(UoroConfig, CONFIG_DIR, __doc__, argv, prog="python -m uoro.train")
    run_dir = train(cfg)
    print(f"done; evaluate with: python -m uoro.eval --run {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
