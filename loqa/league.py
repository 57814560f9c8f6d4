"""LOQA's player for the league: a trained actor that keeps its recurrent carry over an episode.

The matches and round robins themselves are generic and live in ``common.league`` (re-exported here):
IPD pairings are exact (memory-1 policies, a Markov chain), Coin Game matches are sampled, learned
agents sample from their policy (no epsilon) and scripted bots come from ``common.envs.agents``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.league import BotPlayer, coin_league, ipd_league, ipd_pair, play_coin_match
from loqa.networks import LoqaAgent, Params

__all__ = ["BotPlayer", "LearnedPlayer", "coin_league", "ipd_league", "ipd_pair", "play_coin_match"]


class LearnedPlayer:
    """A LOQA actor as a player: keeps its recurrent carry across the steps of an episode."""

    def __init__(self, agent: LoqaAgent, generator: torch.Generator, params: Params | None = None):
        self.agent, self.generator, self.params = agent, generator, params

    def reset(self, batch_size: int) -> None:
        self.carry, self.t = (None, None), 0

    @torch.no_grad()
    def act(self, obs: Tensor) -> Tensor:
        logits, self.carry = self.agent.act(obs.flatten(1), self.t, self.carry, self.params)
        self.t += 1
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)
