"""The Coin Game as LOLA, POLA, LOQA, BRS and Advantage Alignment ran it, batched in torch.

Rules (environments.md section 3; the LOQA authors' `coin_game.py`):
- an H x W torus (grid_size x grid_size, 3x3 in every headline result, 3..7 in LOQA's scalability
  study);
- two players (seat 0 = red, seat 1 = blue) move simultaneously; 4 actions, no stay:
  0 = left (col - 1), 1 = right (col + 1), 2 = up (row - 1), 3 = down (row + 1), all wrapping
  around;
- exactly one coin, with an owner in {0, 1}; at reset the players sit on uniform random cells (they
  may overlap), the coin on a uniform cell occupied by neither, and the owner is uniform;
- a player takes the coin when its new cell is the coin's cell; both may take it in the same step;
- every taker gets +1; if the non-owner is among the takers the owner gets -2 (so when both take it
  at once the owner nets -1: the authors' code, not the "owner not among the takers" reading of AA's
  text);
- only after a pickup the coin respawns on a uniform cell occupied by neither player (their new
  cells) and its owner alternates; otherwise it stays put;
- fixed episode length (50 in the papers); `done` is True on the step that reaches it.

Observation of seat i: 4 binary planes [my position, other's position, my coin, other's coin] of
shape H x W (the coin appears in exactly one of the two coin planes). Seat 1 sees seat 0's tensor
with channels swapped 0<->1 and 2<->3: egocentric in colour, absolute in space, so one network can
play either seat.

How this differs from the pax / JaxMARL Coin Game (M-FOS lineage): those have TWO coins on the board
at once (one per colour), 5 actions including "stay", coins that respawn every pickup uniformly
(possibly on a player), payoffs set by a matrix parameter and inner/outer episode bookkeeping. Their
numbers are not comparable with the ones of this variant (environments.md 3.4).

Implementation: cells are flat indices row * W + col; a move is a gather from a precomputed
[cells x actions] table; rewards and pickup counts are lookups in a table of the 8 cases (who took
the coin x its owner) built from the rules above; the respawn cell is the k-th free cell computed
arithmetically from one integer draw per env; on grids up to 4x4 the observation is one row copied
from a table of every state's planes, on larger grids a scatter of six ones per env. A step is ~25
tensor ops whatever the batch size, with no boolean-to-float conversions (slow in eager torch).
The step is a pure function of (state, actions, draws), which TorchInductor fuses into one kernel
(`compile=True`, see CompiledStep) and which the per-env reference in `reference.py` reproduces
exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from common.envs._checks import check_discrete_actions

# (drow, dcol) of actions 0..3: left, right, up, down.
MOVES = ((0, -1), (0, 1), (-1, 0), (1, 0))
ACTION_NAMES = ("left", "right", "up", "down")


def next_cell_table(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """[H*W*4] flat table: entry cell*4 + action = the cell that `action` reaches from `cell`."""
    table = []
    for cell in range(height * width):
        row, col = divmod(cell, width)
        for drow, dcol in MOVES:
            table.append(((row + drow) % height) * width + (col + dcol) % width)
    return torch.tensor(table, dtype=torch.long, device=device)


def respawn_draw_range(num_cells: int) -> int:
    """Draws are uniform in [0, (n-1)(n-2)): divisible by both free-cell counts, so
    `draw % n_free` is exactly uniform whether the players share a cell (n-1 free cells) or not
    (n-2)."""
    return (num_cells - 1) * (num_cells - 2)


def free_cell_rank_table(num_cells: int, device: torch.device | str = "cpu") -> Tensor:
    """[2 R] lookup: entry 2 * draw + distinct = draw % (n - 1 - distinct), R the draw range.

    A lookup, because a vectorised int64 modulus is a loop of scalar divisions on the CPU (the
    compiler cannot use its constant-divisor trick inside vector code).
    """
    draws = torch.arange(respawn_draw_range(num_cells), device=device)
    return torch.stack([draws % (num_cells - 1), draws % (num_cells - 2)], 1).flatten()


def free_cell_from_draw(
    cell_a: Tensor, cell_b: Tensor, draws: Tensor, num_cells: int, rank_table: Tensor | None = None
) -> Tensor:
    """The (draw % n_free)-th cell, in increasing order, of those occupied by neither player. [B]

    rank_table: free_cell_rank_table(num_cells), to look the modulus up instead of dividing.
    """
    low = torch.minimum(cell_a, cell_b)
    high = torch.maximum(cell_a, cell_b)
    distinct = low != high
    if rank_table is None:
        k = draws % (num_cells - 1 - distinct.long())
    else:
        k = torch.take(rank_table, 2 * draws + distinct)
    # Skip the occupied cells in increasing order: the k-th free cell is k shifted past each.
    cell = k + (k >= low)
    return cell + ((cell >= high) & distinct)


def outcome_table(device: torch.device | str = "cpu") -> Tensor:
    """The pickup rules as a table: row took_0 + 2 took_1 + 4 owner -> [rewards, own pickups,
    other-coin pickups] x [seat 0, seat 1], shape [8, 3, 2]."""
    rows = []
    for code in range(8):
        took, owner = (code & 1, (code >> 1) & 1), code >> 2
        rewards = [float(took[0]), float(took[1])]  # +1 to every taker
        if took[1 - owner]:
            rewards[owner] -= 2.0  # the other player took the owner's coin
        own = [float(took[seat] and seat == owner) for seat in (0, 1)]
        other = [float(took[seat] and seat != owner) for seat in (0, 1)]
        rows.append([rewards, own, other])
    return torch.tensor(rows, device=device)


def observation_from_cells(
    player_cells: Tensor, coin_cell: Tensor, coin_owner: Tensor, height: int, width: int, dtype
) -> Tensor:
    """Egocentric planes [B, 2, 4, H, W] of both seats from the flat state.

    Global plane g = 4 * seat + channel; seat 0 has [red, blue, red coin, blue coin], seat 1 the
    same with channels 0<->1 and 2<->3 swapped. Six ones are written per env with one scatter.
    """
    batch, n = player_cells.shape[0], height * width
    red, blue = player_cells[:, 0], player_cells[:, 1]
    # The coin sits in seat 0's channel 2 + owner and in seat 1's channel 3 - owner.
    ones_at = torch.stack(
        [
            red,
            blue + n,
            coin_cell + (2 + coin_owner) * n,
            blue + 4 * n,
            red + 5 * n,
            coin_cell + (7 - coin_owner) * n,
        ],
        dim=1,
    )
    planes = torch.zeros(batch, 8 * n, dtype=dtype, device=player_cells.device)
    planes.scatter_(1, ones_at, 1)
    return planes.view(batch, 2, 4, height, width)


# Grids up to 4x4 (a 4.2 MB float32 table) look observations up instead of scattering them.
OBSERVATION_TABLE_MAX_CELLS = 16


def observation_table_index(player_cells: Tensor, coin_cell: Tensor, coin_owner: Tensor, n: int):
    """Row of the state (red, blue, coin, owner) in observation_table. [B]"""
    return ((player_cells[:, 0] * n + player_cells[:, 1]) * n + coin_cell) * 2 + coin_owner


def observation_table(height: int, width: int, dtype, device: torch.device | str = "cpu") -> Tensor:
    """The flat observation [8 * H * W] of every state (red, blue, coin, owner): [2 n^3, 8 n].

    On small grids a step copies one contiguous row per env from this table; that is ~2x faster
    than zeroing the planes and scattering six ones, eager or compiled (a scatter breaks the
    compiler's fusion, and the per-env rows of 8 planes are too short to vectorise well).
    """
    n = height * width
    state = torch.arange(2 * n**3, device=device)
    owner, coin = state % 2, (state // 2) % n
    blue, red = (state // (2 * n)) % n, state // (2 * n * n)
    planes = observation_from_cells(torch.stack([red, blue], 1), coin, owner, height, width, dtype)
    table = planes.view(2 * n**3, 8 * n).contiguous()
    assert torch.equal(observation_table_index(torch.stack([red, blue], 1), coin, owner, n), state)
    return table


def build_observation(
    player_cells: Tensor, coin_cell: Tensor, coin_owner: Tensor, height, width, dtype, obs_table
) -> Tensor:
    """[B, 2, 4, H, W]: a row of obs_table per env where there is a table, else scattered."""
    if obs_table is None:
        return observation_from_cells(player_cells, coin_cell, coin_owner, height, width, dtype)
    row = observation_table_index(player_cells, coin_cell, coin_owner, height * width)
    return obs_table.index_select(0, row).view(-1, 2, 4, height, width)


def make_step_function(height: int, width: int, observations: bool, obs_dtype) -> Callable:
    """The pure step: flat tensors in, flat tensors out (a compiler's favourite form).

    (player_cells, coin_cell, coin_owner, actions, respawn_draws, move/rank/reward/own-pickup/
    other-pickup/obs tables) -> (player_cells, coin_cell, coin_owner, rewards, own_pickups,
    other_pickups, invalid, obs). `obs_table` is observation_table(...) or None (then the planes
    are scattered). `invalid` is a 0-d bool: some action was outside 0..3 (those are wrapped into
    range so that the table lookups stay in bounds; CoinGame.step checks the range before drawing).
    """
    num_cells = height * width

    def coin_step(
        player_cells,
        coin_cell,
        coin_owner,
        actions,
        respawn_draws,
        move_table,
        rank_table,
        reward_table,
        own_pickup_table,
        other_pickup_table,
        obs_table,
    ):
        invalid = ((actions < 0) | (actions > 3)).any()
        new_cells = torch.take(move_table, player_cells * 4 + (actions & 3))  # [B, 2]
        took_0 = new_cells[:, 0] == coin_cell
        took_1 = new_cells[:, 1] == coin_cell
        # Rewards and pickup counts of the 8 cases (who took it x owner), see outcome_table;
        # three lookups keep each result a contiguous [B, 2] tensor.
        case = took_0 + 2 * took_1 + 4 * coin_owner
        rewards = reward_table.index_select(0, case)
        own_pickups = own_pickup_table.index_select(0, case)
        other_pickups = other_pickup_table.index_select(0, case)
        taken = took_0 | took_1
        respawn = free_cell_from_draw(
            new_cells[:, 0], new_cells[:, 1], respawn_draws, num_cells, rank_table
        )
        new_coin = torch.where(taken, respawn, coin_cell)
        new_owner = coin_owner ^ taken  # the owner alternates after a pickup
        obs = None
        if observations:
            obs = build_observation(
                new_cells, new_coin, new_owner, height, width, obs_dtype, obs_table
            )
        return new_cells, new_coin, new_owner, rewards, own_pickups, other_pickups, invalid, obs

    return coin_step


class CompiledStep:
    """`coin_step` compiled by TorchInductor, once per batch size, and called without TorchDynamo.

    `torch.compile(coin_step)` would run TorchDynamo's guards and wrappers on every call, ~80 us
    at B = 4096 on a CPU core: as long as the fused step itself. Tracing the pure step once with
    make_fx and handing the graph to TorchInductor skips all that. The compiled graph is
    specialised to its input shapes and dtypes, which the env fixes per batch size (it passes
    int64, contiguous actions and draws); a new batch size, or explicit respawn draws, compiles
    once more. Arguments and results are flat tuples of tensors and Nones.
    """

    def __init__(self, step_fn: Callable) -> None:
        self.step_fn = step_fn
        self.compiled: dict[tuple, Callable] = {}

    def __call__(self, *args):
        key = (args[0].shape[0], *(arg is None for arg in args))
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = self.compiled[key] = self._compile(args)
        return compiled(*[arg for arg in args if arg is not None])

    def _compile(self, args: tuple) -> Callable:
        present = [i for i, arg in enumerate(args) if arg is not None]
        none_outputs: list[int] = []

        def tensors_only_step(*tensors):
            full_args = list(args)
            for i, tensor in zip(present, tensors):
                full_args[i] = tensor
            outputs = self.step_fn(*full_args)
            none_outputs[:] = [i for i, out in enumerate(outputs) if out is None]
            return [out for out in outputs if out is not None]

        tensors = [args[i] for i in present]
        compiled = torch._inductor.compile(make_fx(tensors_only_step)(*tensors), tensors)

        def step_with_nones(*tensors):
            outputs = list(compiled(*tensors))
            for i in none_outputs:
                outputs.insert(i, None)
            return outputs

        return step_with_nones if none_outputs else compiled


class CoinGame:
    """Batched Coin Game (LOLA/POLA/LOQA variant; module docstring has the rules).

    reset(B) -> obs [B, 2, 4, H, W]; step(actions [B, 2] long in 0..3) -> obs, rewards [B, 2],
    done [B] bool, info {"t", "own_coin_pickups" [B, 2], "other_coin_pickups" [B, 2]}.
    State: player_pos [B, 2, 2] (row, col), coin_pos [B, 2], coin_owner [B], t.
    observations=False skips building the planes (step returns obs=None), for benchmarks.
    compile=True fuses the step with TorchInductor (CompiledStep, bit-identical to eager, ~2x
    faster on a CPU at B = 4096); compile="torch.compile" goes through TorchDynamo instead.
    """

    num_actions = 4

    def __init__(
        self,
        *,
        grid_size: int = 3,
        episode_length: int = 50,
        device: str | torch.device = "cpu",
        seed: int = 0,
        compile: bool | str = False,
        observations: bool = True,
        obs_dtype: torch.dtype = torch.float32,
        check_actions: bool = True,
    ) -> None:
        if grid_size < 2:
            raise ValueError(
                f"grid_size must be >= 2 (the coin needs a free cell), got {grid_size}"
            )
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.height = self.width = grid_size
        self.num_cells = grid_size * grid_size
        self.episode_length = episode_length
        self.device = torch.device(device)
        self.obs_shape = (4, grid_size, grid_size)
        self.observations = observations
        self.obs_dtype = obs_dtype
        self.check_actions = check_actions
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.move_table = next_cell_table(self.height, self.width, self.device)
        self.rank_table = free_cell_rank_table(self.num_cells, self.device)
        self.outcomes = [table.contiguous() for table in outcome_table(self.device).unbind(1)]
        self.obs_table = None
        if observations and self.num_cells <= OBSERVATION_TABLE_MAX_CELLS:
            self.obs_table = observation_table(self.height, self.width, obs_dtype, self.device)
        self._step_fn = make_step_function(self.height, self.width, observations, obs_dtype)
        if compile == "torch.compile":  # the same compiler behind TorchDynamo's guards (slower)
            self._step_fn = torch.compile(self._step_fn, dynamic=False, fullgraph=True)
        elif compile is True:
            self._step_fn = CompiledStep(self._step_fn)
        elif compile is not False:
            raise ValueError(f"compile must be False, True or 'torch.compile', got {compile!r}")
        self.batch_size = 0
        self.t = 0
        self.player_cells = self.coin_cell = self.coin_owner = torch.empty(0, device=self.device)

    # ------------------------------------------------------------------ state in (row, col) form
    @property
    def player_pos(self) -> Tensor:
        """[B, 2, 2] (row, col) of both players."""
        return torch.stack([self.player_cells // self.width, self.player_cells % self.width], -1)

    @property
    def coin_pos(self) -> Tensor:
        """[B, 2] (row, col) of the coin."""
        return torch.stack([self.coin_cell // self.width, self.coin_cell % self.width], -1)

    def observation(self) -> Tensor:
        """[B, 2, 4, H, W] planes of the current state (module docstring)."""
        return build_observation(
            self.player_cells,
            self.coin_cell,
            self.coin_owner,
            self.height,
            self.width,
            self.obs_dtype,
            self.obs_table,
        )

    # ------------------------------------------------------------------ reset / step
    def reset(self, batch_size: int) -> Tensor:
        """Players on uniform cells (may overlap), coin on a uniform free cell, uniform owner."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        gen, dev = self.generator, self.device
        player_cells = torch.randint(0, self.num_cells, (batch_size, 2), generator=gen, device=dev)
        draws = self.sample_respawn_draws(batch_size)
        coin_cell = free_cell_from_draw(
            player_cells[:, 0], player_cells[:, 1], draws, self.num_cells
        )
        coin_owner = torch.randint(0, 2, (batch_size,), generator=gen, device=dev)
        return self._set(player_cells, coin_cell, coin_owner, t=0)

    def set_state(
        self, *, player_pos: Tensor, coin_pos: Tensor, coin_owner: Tensor, t: int = 0
    ) -> Tensor:
        """Hand-built start: player_pos [B, 2, 2], coin_pos [B, 2] (row, col), coin_owner [B]."""
        player_pos = torch.as_tensor(player_pos, device=self.device).long()
        coin_pos = torch.as_tensor(coin_pos, device=self.device).long()
        coin_owner = torch.as_tensor(coin_owner, device=self.device).long()
        batch = player_pos.shape[0] if player_pos.ndim == 3 else -1
        if player_pos.shape != (batch, 2, 2) or coin_pos.shape != (batch, 2):
            raise ValueError(
                f"player_pos must be [B, 2, 2] and coin_pos [B, 2], got {tuple(player_pos.shape)} "
                f"and {tuple(coin_pos.shape)}"
            )
        if coin_owner.shape != (batch,) or not bool(((coin_owner == 0) | (coin_owner == 1)).all()):
            raise ValueError(f"coin_owner must be [{batch}] with values in {{0, 1}}")
        rows = torch.cat([player_pos[..., 0].flatten(), coin_pos[:, 0]])
        cols = torch.cat([player_pos[..., 1].flatten(), coin_pos[:, 1]])
        if bool(((rows < 0) | (rows >= self.height) | (cols < 0) | (cols >= self.width)).any()):
            raise ValueError(f"positions must be (row, col) in [0, {self.height - 1}]")
        player_cells = player_pos[..., 0] * self.width + player_pos[..., 1]
        coin_cell = coin_pos[:, 0] * self.width + coin_pos[:, 1]
        if bool((player_cells == coin_cell.unsqueeze(1)).any()):
            raise ValueError("the coin must not lie on a player's cell")
        return self._set(player_cells, coin_cell, coin_owner, t=t)

    def _set(self, player_cells: Tensor, coin_cell: Tensor, coin_owner: Tensor, t: int) -> Tensor:
        # Contiguous, as the compiled step was traced with (a user's strided view would not be).
        self.player_cells = player_cells.contiguous()
        self.coin_cell, self.coin_owner = coin_cell.contiguous(), coin_owner.contiguous()
        self.batch_size = player_cells.shape[0]
        self.t = t
        return self.observation()

    def sample_respawn_draws(self, batch_size: int) -> Tensor:
        """One integer per env from the env's own generator; see respawn_draw_range."""
        high = respawn_draw_range(self.num_cells)
        return torch.randint(0, high, (batch_size,), generator=self.generator, device=self.device)

    def step(
        self, actions: Tensor, *, respawn_draws: Tensor | None = None
    ) -> tuple[Tensor | None, Tensor, Tensor, dict]:
        """Advance every env one step; respawn_draws [B] (tests only) replace the env's draws.

        Actions outside 0..3 raise a ValueError before anything is drawn: the state and the env's
        generator are as if the call never happened.
        """
        if self.batch_size == 0:
            raise RuntimeError("call reset(batch_size) before step")
        if self.t >= self.episode_length:
            raise RuntimeError(f"episode finished after {self.episode_length} steps; call reset")
        name = "actions (0=left 1=right 2=up 3=down)"
        if self.check_actions:  # before any draw: a rejected step leaves the generator untouched
            check_discrete_actions(actions, self.batch_size, 4, name)
        # The compiled step is specialised to int64, contiguous inputs (no-ops when they are).
        actions = actions.long().contiguous()
        if respawn_draws is None:
            respawn_draws = self.sample_respawn_draws(self.batch_size)
        else:  # any integer works; the step's lookup wants [0, R), and R is a multiple of n_free
            respawn_draws = torch.as_tensor(respawn_draws, device=self.device).long()
            respawn_draws = respawn_draws.remainder(respawn_draw_range(self.num_cells))
        *new_state, rewards, own, other, _invalid, obs = self._step_fn(
            self.player_cells,
            self.coin_cell,
            self.coin_owner,
            actions,
            respawn_draws,
            self.move_table,
            self.rank_table,
            *self.outcomes,
            self.obs_table,
        )
        self.player_cells, self.coin_cell, self.coin_owner = new_state
        info = {"t": self.t, "own_coin_pickups": own, "other_coin_pickups": other}
        self.t += 1
        done = torch.full((self.batch_size,), self.t >= self.episode_length, device=self.device)
        return obs, rewards, done, info
