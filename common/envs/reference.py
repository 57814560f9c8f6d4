"""Plain, unbatched, obviously-correct pure-Python versions of the sampled environments.

They are the test oracles of the batched torch environments (hypothesis drives both with the same
actions and random draws and requires identical results) and the per-env baseline loop of
`bench/envs.py`. They are written straight from the rules in environments.md, with (row, col) tuples
and lists and no shared code with the batched versions, except the documented meaning of one
random draw.
"""

from __future__ import annotations

from common.envs.coin_game import MOVES

IPD_PAYOFFS = {(0, 0): (-1.0, -1.0), (0, 1): (-3.0, 0.0), (1, 0): (0.0, -3.0), (1, 1): (-2.0, -2.0)}


class ReferenceIPD:
    """One IPD episode; obs: lists [I cooperated, I defected, other cooperated, other defected]."""

    def __init__(self, episode_length: int = 50, payoffs: dict | None = None):
        self.episode_length = episode_length
        self.payoffs = payoffs or IPD_PAYOFFS
        self.reset()

    def reset(self):
        self.t = 0
        self.last = None
        return [[0.0] * 4, [0.0] * 4]

    def step(self, action_0: int, action_1: int):
        assert self.t < self.episode_length, "episode finished"
        rewards = self.payoffs[(action_0, action_1)]
        self.last = (action_0, action_1)
        self.t += 1
        obs = []
        for me, other in ((action_0, action_1), (action_1, action_0)):
            obs.append([float(me == 0), float(me == 1), float(other == 0), float(other == 1)])
        return obs, list(rewards), self.t >= self.episode_length


class ReferenceCoinGame:
    """One Coin Game on a height x width torus; positions are (row, col) tuples.

    The only randomness is the respawn: `respawn_draw` (an int) picks the (draw % n_free)-th cell,
    in row-major order, among the cells occupied by neither player -- the same meaning as in the
    batched env.
    """

    def __init__(self, height: int = 3, width: int = 3, episode_length: int = 50):
        self.height, self.width = height, width
        self.episode_length = episode_length

    def reset(self, player_pos, coin_pos, coin_owner: int):
        self.player_pos = [tuple(player_pos[0]), tuple(player_pos[1])]
        self.coin_pos = tuple(coin_pos)
        self.coin_owner = int(coin_owner)
        self.t = 0
        return self.observation()

    def free_cells(self):
        return [
            (row, col)
            for row in range(self.height)
            for col in range(self.width)
            if (row, col) not in self.player_pos
        ]

    def step(self, action_0: int, action_1: int, respawn_draw: int):
        assert self.t < self.episode_length, "episode finished"
        for seat, action in enumerate((action_0, action_1)):
            drow, dcol = MOVES[action]
            row, col = self.player_pos[seat]
            self.player_pos[seat] = ((row + drow) % self.height, (col + dcol) % self.width)
        rewards = [0.0, 0.0]
        own_pickups = [0.0, 0.0]
        other_pickups = [0.0, 0.0]
        taken = False
        for seat in (0, 1):
            if self.player_pos[seat] == self.coin_pos:
                taken = True
                rewards[seat] += 1.0
                if seat == self.coin_owner:
                    own_pickups[seat] = 1.0
                else:
                    other_pickups[seat] = 1.0
        if any(other_pickups):
            rewards[self.coin_owner] -= 2.0
        if taken:
            free = self.free_cells()
            self.coin_pos = free[respawn_draw % len(free)]
            self.coin_owner = 1 - self.coin_owner
        self.t += 1
        info = {"own_coin_pickups": own_pickups, "other_coin_pickups": other_pickups}
        return self.observation(), rewards, self.t >= self.episode_length, info

    def observation(self):
        """obs[seat][plane][row][col], planes [my pos, other's pos, my coin, other's coin]."""
        obs = []
        for seat in (0, 1):
            planes = [[[0.0] * self.width for _ in range(self.height)] for _ in range(4)]
            me, other = self.player_pos[seat], self.player_pos[1 - seat]
            planes[0][me[0]][me[1]] = 1.0
            planes[1][other[0]][other[1]] = 1.0
            coin_plane = 2 if self.coin_owner == seat else 3
            planes[coin_plane][self.coin_pos[0]][self.coin_pos[1]] = 1.0
            obs.append(planes)
        return obs


class ReferenceNegotiation:
    """One Negotiation Game (environments.md 4): 3 items, 1 unit each, utilities 5/1 per item.

    `first_values_high[j]` (bool) says whether player 0 values item j at 5 (player 1 then at 1).
    """

    num_items = 3

    def __init__(self, episode_length: int = 50):
        self.episode_length = episode_length

    def reset(self, first_values_high):
        self.t = 0
        self.previous = [[0.0] * 3, [0.0] * 3]
        self._set_utilities(first_values_high)
        return self.observation()

    def _set_utilities(self, first_values_high):
        first = [5.0 if high else 1.0 for high in first_values_high]
        self.utilities = [first, [6.0 - u for u in first]]

    def step(self, proposal_0, proposal_1, next_first_values_high):
        assert self.t < self.episode_length, "episode finished"
        proposals = [list(proposal_0), list(proposal_1)]
        rewards = [0.0, 0.0]
        allocations = [[0.0] * 3, [0.0] * 3]
        for item in range(3):
            total = max(proposals[0][item] + proposals[1][item], 5.0)
            for seat in (0, 1):
                allocations[seat][item] = proposals[seat][item] / total
                rewards[seat] += allocations[seat][item] * 1.0 * self.utilities[seat][item] / 15.0
        self.previous = proposals
        self._set_utilities(next_first_values_high)
        self.t += 1
        info = {"allocations": allocations}
        return self.observation(), rewards, self.t >= self.episode_length, info

    def observation(self):
        """Per seat, / 10: pool, own utilities, own last proposal, other's utilities, other's."""
        obs = []
        for seat in (0, 1):
            other = 1 - seat
            raw = (
                [1.0] * 3
                + self.utilities[seat]
                + self.previous[seat]
                + self.utilities[other]
                + self.previous[other]
            )
            obs.append([value / 10.0 for value in raw])
        return obs
