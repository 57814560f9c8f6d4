"""Train MeVa's meta-value network U on one game by TD learning on simulated optimisation.

    python -m meva.train --config quick [key=value ...]     # e.g. game.name=imp train.meta_gamma=0.5

Every update (Algorithm 1, reconstructed): the batch of joint policies takes the greedy MeVa step
x' = x + alpha grad_own (f + U)(x); U(x) is regressed on gamma (f(x') + U_target(x')) for both seats;
the target follows U by an EMA; the rows then move on (exploring rows with a perturbed final layer) and
finished trajectories restart from fresh N(0, 1) logits. The run directory (runs/meva/<name>/) holds the
config, metrics.jsonl (TD loss, held-out TD error) and the checkpoint ``python -m meva.eval`` needs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from common.cli import entry_point
from common.config import parse_args, validate
from common.runner import Run
from meva.config import CONFIG_DIR, MevaConfig
from meva.games import make_game
from meva.model import MetaValue, ema_update, td_loss, td_targets
from meva.rollouts import Rollouts, heldout_states


def build_value(cfg) -> MetaValue:
    n_params = make_game(cfg.game.name, cfg.game.inner_gamma).n_params
    return MetaValue(n_params, cfg.model.hidden, cfg.model.layers).double()


@torch.no_grad()
def heldout_td_error(game, value, x1, x2, lr: float, meta_gamma: float) -> float:
    """Mean squared TD error of the online U on held-out states (its own target, no EMA)."""
    y1, y2, _, _ = td_targets(game, value, value, x1, x2, lr, meta_gamma)
    return float(td_loss(value, x1, x2, y1, y2))


def train(cfg) -> Path:
    """Train with ``cfg`` (a resolved MevaConfig); returns the run directory."""
    validate(cfg)
    tc = cfg.train
    with Run(cfg, paper="meva") as run:
        # ---------------------------------------------------------------- build
        game = make_game(cfg.game.name, cfg.game.inner_gamma)
        value = build_value(cfg)
        target = copy.deepcopy(value).requires_grad_(False)
        optimizer = torch.optim.Adam(value.parameters(), lr=tc.lr)
        generator = torch.Generator().manual_seed(cfg.seed)
        rollouts = Rollouts(
            game, value, tc.batch, tc.rollout_length, tc.explore_fraction, tc.explore_std, generator
        )
        held_1, held_2 = heldout_states(
            game,
            tc.heldout_pairs,
            tc.rollout_length,
            tc.heldout_every,
            cfg.game.lr,
            cfg.seed + 10_000,
        )
        run.track(
            value=value, target=target, optimizer=optimizer, rollouts=rollouts, generator=generator
        )
        start = run.restore()
        print(f"meva: run {run.dir} | game {game.name} | meta-gamma {tc.meta_gamma}", flush=True)
        if start == 0:
            error = heldout_td_error(game, value, held_1, held_2, cfg.game.lr, tc.meta_gamma)
            run.log(0, {"td/heldout_error": error})

        # ---------------------------------------------------------------- loop
        for step in run.steps(start, tc.updates):
            # TD targets from the unperturbed greedy step (Sec. 4.1), for every row.
            y1, y2, x1_next, x2_next = td_targets(
                game, value, target, rollouts.x1, rollouts.x2, cfg.game.lr, tc.meta_gamma
            )
            x1_explore, x2_explore = rollouts.exploring_step(cfg.game.lr)
            loss = td_loss(value, rollouts.x1, rollouts.x2, y1, y2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ema_update(target, value, tc.target_rate)
            rollouts.advance(x1_next, x2_next, x1_explore, x2_explore)

            if (step + 1) % tc.log_every == 0 or step + 1 == tc.updates:
                with torch.no_grad():
                    f1, f2 = game.per_step(rollouts.x1, rollouts.x2)
                error = heldout_td_error(game, value, held_1, held_2, cfg.game.lr, tc.meta_gamma)
                run.log(
                    step + 1,
                    {
                        "td/loss": loss.item(),
                        "td/heldout_error": error,
                        "rollouts/per_step_return": 0.5 * float((f1 + f2).mean()),
                    },
                )
            run.maybe_checkpoint(step + 1)
        run.save(tc.updates)
    return run.dir


@entry_point("python -m meva.train")
def main(argv: list[str] | None = None) -> int:
    print(train(parse_args(MevaConfig, CONFIG_DIR, __doc__, argv, prog="python -m meva.train")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
