"""Input checks shared by the environments: one-line ValueErrors naming shape and range."""

from __future__ import annotations

import torch
from torch import Tensor


def check_discrete_actions(
    actions: Tensor, batch_size: int, num_actions: int, name: str, check_range: bool = True
) -> None:
    """One-line ValueError naming the expected shape, dtype or range (check_range=False: the
    caller checks the range itself, e.g. inside a compiled step)."""
    if not isinstance(actions, Tensor):
        raise ValueError(f"{name} must be a torch tensor of shape [{batch_size}, 2]")
    if actions.shape != (batch_size, 2):
        raise ValueError(f"{name} must have shape [{batch_size}, 2], got {tuple(actions.shape)}")
    if torch.is_floating_point(actions) or actions.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got {actions.dtype}")
    if not check_range:
        return
    low, high = torch.aminmax(actions)
    if int(low) < 0 or int(high) >= num_actions:
        raise ValueError(
            f"{name} must be in [0, {num_actions - 1}], got values in [{int(low)}, {int(high)}]"
        )
