"""A buffer of past agents: the opponents of self-play against earlier selves (LOQA, Advantage Alignment)
and the agents a Best Response Shaping detective trains against."""

from __future__ import annotations

import torch
from torch import Tensor, nn

Params = dict[str, Tensor]


class AgentBuffer:
    """FIFO of past agents' parameters: the opponents that LOQA and Advantage Alignment sample, and the
    agents Best Response Shaping's detective trains against.

    Storage is preallocated as stacked tensors ``[capacity, ...]``, so a sample of K agents is one
    index operation and can be fed straight to the networks as stacked parameters.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"agent buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.storage: Params = {}
        self.size = 0  # filled entries
        self.next = 0  # where the next push goes

    def push(self, agent: nn.Module) -> None:
        for name, value in agent.named_parameters():
            if name not in self.storage:
                self.storage[name] = value.new_zeros(self.capacity, *value.shape)
            self.storage[name][self.next] = value.detach()
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, k: int, generator: torch.Generator | None = None) -> Params:
        """k agents drawn uniformly (with replacement) from the filled part: stacked params [k, ...]."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty agent buffer; push an agent first")
        device = next(iter(self.storage.values())).device
        index = torch.randint(0, self.size, (k,), generator=generator, device=device)
        return {name: values[index] for name, values in self.storage.items()}

    def state_dict(self) -> dict:
        return {
            "storage": {k: v[: self.size].clone() for k, v in self.storage.items()},
            "size": self.size,
            "next": self.next,
        }

    def load_state_dict(self, state: dict) -> None:
        self.size, self.next = state["size"], state["next"]
        self.storage = {}
        for name, values in state["storage"].items():
            full = torch.zeros(self.capacity, *values.shape[1:], dtype=values.dtype)
            full[: values.shape[0]] = values
            self.storage[name] = full
