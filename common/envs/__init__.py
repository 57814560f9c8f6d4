"""Batched torch environments shared by LOQA, BRS, Advantage Alignment and MeVa (see README.md).

from common.envs import CoinGame, IteratedPrisonersDilemma, NegotiationGame, exact_discounted_return
"""

from common.envs.agents import (
    IPD_ALWAYS_COOPERATE,
    IPD_ALWAYS_DEFECT,
    IPD_RANDOM,
    IPD_TIT_FOR_TAT,
    IPDGrimTrigger,
    coin_always_cooperate,
    coin_always_defect,
    coin_random,
    ipd_act,
    negotiation_always_cooperate,
    negotiation_always_defect,
    negotiation_random,
)
from common.envs.coin_game import CoinGame
from common.envs.ipd import IteratedPrisonersDilemma, state_index
from common.envs.matrix_games import (
    GAMES,
    STATE_NAMES,
    average_reward_finite_horizon,
    exact_discounted_return,
    exact_return_from_logits,
    markov_chain,
    one_shot_expected_reward,
)
from common.envs.metrics import (
    coin_game_summary,
    cooperation_probabilities,
    cooperation_probabilities_from_logits,
    own_coin_fraction,
    pickups_per_step,
    reward_per_step,
)
from common.envs.negotiation import NegotiationGame
from common.envs.reference import ReferenceCoinGame, ReferenceIPD, ReferenceNegotiation

__all__ = [
    "GAMES",
    "IPD_ALWAYS_COOPERATE",
    "IPD_ALWAYS_DEFECT",
    "IPD_RANDOM",
    "IPD_TIT_FOR_TAT",
    "STATE_NAMES",
    "CoinGame",
    "IPDGrimTrigger",
    "IteratedPrisonersDilemma",
    "NegotiationGame",
    "ReferenceCoinGame",
    "ReferenceIPD",
    "ReferenceNegotiation",
    "average_reward_finite_horizon",
    "coin_always_cooperate",
    "coin_always_defect",
    "coin_game_summary",
    "coin_random",
    "cooperation_probabilities",
    "cooperation_probabilities_from_logits",
    "exact_discounted_return",
    "exact_return_from_logits",
    "ipd_act",
    "markov_chain",
    "negotiation_always_cooperate",
    "negotiation_always_defect",
    "negotiation_random",
    "one_shot_expected_reward",
    "own_coin_fraction",
    "pickups_per_step",
    "reward_per_step",
    "state_index",
]
