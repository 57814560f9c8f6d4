"""The best-response probe: fresh learners trained from scratch against a frozen agent.

If the agent cannot be exploited, a learner that only maximises its own return against it ends up
cooperating; if it can, the learner learns to defect and the agent's return drops. In the IPD the learner
is a memory-1 policy (five logits) trained by plain gradient ascent on its exact value, several seeds at
once (one batched 4x4 solve per step); results report the agent's worst case over the seeds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from brs.model import ipd_values


def ipd_probe(
    agent_logits: Tensor,
    *,
    seeds: int,
    iterations: int,
    lr: float,
    init_std: float,
    gamma: float,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Train `seeds` probe learners against agent_logits [5] (seat 0); returns the probes' logits [S, 5]
    and the final exact per-step values of the agent and of each probe, [S] each."""
    agent = agent_logits.detach().expand(seeds, 5)
    probe = (init_std * torch.randn(seeds, 5, generator=generator)).requires_grad_(True)
    for _ in range(iterations):
        _, probe_value = ipd_values(agent, probe, gamma)
        (grad,) = torch.autograd.grad(probe_value.sum(), probe)  # each probe's own gradient
        with torch.no_grad():
            probe += lr * grad
    with torch.no_grad():
        agent_value, probe_value = ipd_values(agent, probe, gamma)
    return {"probe_logits": probe.detach(), "agent_value": agent_value, "probe_value": probe_value}
