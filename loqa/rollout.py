"""The episodes of one LOQA iteration, and the opponents' actor and critic outputs the shaping term needs.

Seat 0 is the learner, seat 1 its opponent: the current agent (IPD) or one of K past agents from the agent
buffer, opponent k playing episodes k*B/K .. (k+1)*B/K - 1 (stacked parameters [K, ...], networks.py).
Epsilon-greedy on both seats (paper's appendix); the loss uses the un-epsilon'd log-probs, as the authors do.

Why this is not a plain loop over time. At the paper's Coin Game settings each of the 512 episodes has its
own opponent, so every time step streams all 512 opponents' GRU weights (~250 MB) from memory for one
matrix-vector product each: the rollout is memory bound. Episodes are independent, so blocks of episodes
(with their opponents) play their whole episode in turn while those opponents' weights stay in the cache.
The random numbers are all drawn first, in the order the step-by-step loop draws them, so the blocks see
the same draws and the episodes are the same as with one block: `torch.multinomial(p, 1)` is
`argmax(p / q)` with q ~ Exp(1) drawn by `exponential_` on a tensor shaped like p (PyTorch's own
implementation; tests/loqa/test_rollout.py checks it), and the Coin Game's respawn draws come from the
env's generator. While a block's opponents are in the cache, their critic runs over the block's histories
and their actor's logits are kept from the rollout: the loss needs both, so they are not recomputed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.agent_buffer import AgentBuffer
from common.envs.coin_game import CoinGame, make_step_function
from loqa import native as native_rollout
from loqa.networks import LoqaAgent, Params


def draw_policy_noise(
    generator: torch.Generator, steps: int, batch_size: int, num_actions: int, epsilon: float
) -> dict[str, Tensor]:
    """q [B, T, 2, A] ~ Exp(1), and with epsilon > 0 explore [B, T, 2] bool and uniform [B, T, 2]
    actions: drawn in the order `multinomial` and the epsilon-greedy draws of a step-by-step rollout
    take them from `generator`."""
    draws: dict[str, list] = {"q": [], "explore": [], "uniform": []}
    for _ in range(steps):
        q = torch.empty(batch_size * 2, num_actions).exponential_(1, generator=generator)
        draws["q"].append(q.view(batch_size, 2, num_actions))
        if epsilon > 0:
            draws["explore"].append(torch.rand(batch_size, 2, generator=generator) < epsilon)
            uniform = torch.randint(0, num_actions, (batch_size, 2), generator=generator)
            draws["uniform"].append(uniform)
    return {key: torch.stack(values, 1) for key, values in draws.items() if values}


def sample_opponents(buffer: AgentBuffer, k: int, generator: torch.Generator):
    """AgentBuffer.sample(k) without copying any agent: (the buffer's filled storage [size, ...] (a
    view), index [k] of the agent each draw got). The same draw from `generator`; rollout plays each
    drawn agent once however often it was drawn (episode_blocks, native.py)."""
    if buffer.size == 0:
        raise ValueError("cannot sample from an empty agent buffer; push an agent first")
    device = next(iter(buffer.storage.values())).device
    draws = torch.randint(0, buffer.size, (k,), generator=generator, device=device)
    return {name: values[: buffer.size] for name, values in buffer.storage.items()}, draws


class CoinBlock:
    """Some episodes of a reset CoinGame's batch, stepped with the env's pure step function and
    pre-drawn respawns (so blocks can play in turn; the env itself stays at its reset state)."""

    def __init__(self, env: CoinGame, rows: Tensor, respawn_draws: Tensor, step_fn):
        self.env, self.step_fn, self.draws = env, step_fn, respawn_draws[:, rows]
        self.state = (env.player_cells[rows], env.coin_cell[rows], env.coin_owner[rows])

    def step(self, actions: Tensor, t: int):
        env = self.env
        *self.state, rewards, own, other, _invalid, obs = self.step_fn(
            *self.state,
            actions,
            self.draws[t],
            env.move_table,
            env.rank_table,
            *env.outcomes,
            env.obs_table,
        )
        return obs, rewards, {"own_coin_pickups": own, "other_coin_pickups": other}


class WholeEnv:
    """The env itself as the only block (the IPD: no draws in its step)."""

    def __init__(self, env):
        self.env = env

    def step(self, actions: Tensor, t: int):
        obs, rewards, _, info = self.env.step(actions)
        return obs, rewards, info


def episode_blocks(opponent_index: Tensor, group: int, per_block: int):
    """Blocks of (episode rows [n * c * group], opponents [n]): the opponents that play c groups of
    episodes each, per_block at a time, each opponent's c * group episodes in a row."""
    counts = torch.bincount(opponent_index)
    order = torch.argsort(opponent_index, stable=True)  # groups sorted by their opponent
    first_group = torch.cumsum(counts, 0) - counts
    blocks = []
    for c in torch.unique(counts[counts > 0]).tolist():
        agents = torch.nonzero(counts == c).view(-1)
        for start in range(0, len(agents), per_block):
            chosen = agents[start : start + per_block]
            groups = order[first_group[chosen].view(-1, 1) + torch.arange(c)].reshape(-1)
            rows = (groups.view(-1, 1) * group + torch.arange(group)).reshape(-1)
            blocks.append((rows, chosen))
    return blocks


@torch.no_grad()
def rollout(
    env,
    agent: LoqaAgent,
    opponents: Params,
    *,
    batch_size: int,
    epsilon: float,
    generator: torch.Generator,
    opponent_index: Tensor | None = None,
    opponents_per_block: int = 0,
    opponent_outputs: bool = True,
    native: bool = False,
) -> dict[str, Tensor]:
    """A batch of episodes against K groups of opponents, played in blocks (module docstring).

    opponents: stacked parameters [U, ...]; group k (episodes k*B/K .. (k+1)*B/K - 1) plays opponent
    opponent_index[k] (default: K = U, group k plays opponent k). opponents_per_block: distinct
    opponents per block (0: all). native: play the Coin Game's episodes in C (native.py; the same
    draws and episodes, ~4x faster at the paper's sizes) where it is supported, else in this loop.
    Returns obs [B, T+1, 2, D] (flattened observations, h_0..h_T),
    actions [B, T, 2], rewards [B, T, 2], for the Coin Game own/other coin pickups [B, T, 2], and with
    `opponent_outputs` the opponents' actor logits and critic Q over their histories h_0..h_T,
    op_logits / op_q [B, T+1, A].
    """
    if opponent_index is None:
        opponent_index = torch.arange(next(iter(opponents.values())).shape[0])
    use_native = native and native_rollout.supported(env, agent)
    if not opponents_per_block and not use_native:  # one block: repeats cost less than more blocks
        opponents = {name: value[opponent_index] for name, value in opponents.items()}
        opponent_index = torch.arange(len(opponent_index))
    group = batch_size // len(opponent_index)
    steps = env.episode_length
    obs = env.reset(batch_size).reshape(batch_size, 2, -1)
    noise = draw_policy_noise(generator, steps, batch_size, env.num_actions, epsilon)
    coin = isinstance(env, CoinGame)
    if coin:
        respawns = torch.stack([env.sample_respawn_draws(batch_size) for _ in range(steps)])
    if use_native:
        return native_rollout.play(
            env, agent, opponents, opponent_index, noise, respawns, opponent_outputs
        )
    if coin:
        step_fn = make_step_function(env.height, env.width, True, env.obs_dtype)
    blocks = episode_blocks(opponent_index, group, opponents_per_block or len(opponent_index))
    if not coin and len(blocks) > 1:
        raise ValueError("episode blocks need the Coin Game's pure step function")
    parts = []
    for rows, chosen in blocks:
        block = CoinBlock(env, rows, respawns, step_fn) if coin else WholeEnv(env)
        block_opponents = {name: value[chosen] for name, value in opponents.items()}
        block_noise = {key: value[rows] for key, value in noise.items()}
        parts.append(
            play_block(
                block, obs[rows], agent, block_opponents, block_noise, steps, opponent_outputs
            )
        )
    if len(parts) == 1 and torch.equal(blocks[0][0], torch.arange(batch_size)):
        return parts[0]
    where = torch.argsort(torch.cat([rows for rows, _ in blocks]))  # back to the episodes' order
    return {key: torch.cat([part[key] for part in parts])[where] for key in parts[0]}


def play_block(
    block, obs: Tensor, agent: LoqaAgent, opponents: Params, noise: dict, steps: int, outputs: bool
) -> dict[str, Tensor]:
    """One block's episodes from start to end (see rollout); obs [b, 2, D] at t = 0."""
    size = obs.shape[0]
    num_groups = next(iter(opponents.values())).shape[0]
    own_carry, op_carry = (None, None), (None, None)
    all_obs, all_actions, all_rewards, op_logits, own_pickups, other_pickups = (
        [obs],
        [],
        [],
        [],
        [],
        [],
    )
    for t in range(steps):
        own_logits, own_carry = agent.act(obs[:, 0], t, own_carry)
        logits, op_carry = agent.act(
            obs[:, 1].reshape(num_groups, -1, obs.shape[-1]), t, op_carry, opponents
        )
        op_logits.append(logits.reshape(size, -1))
        probs = torch.softmax(torch.stack([own_logits, op_logits[-1]], dim=1), -1)  # [b, 2, A]
        actions = (probs / noise["q"][:, t]).argmax(-1)  # = torch.multinomial(probs, 1), same draws
        if "explore" in noise:
            actions = torch.where(noise["explore"][:, t], noise["uniform"][:, t], actions)
        obs, rewards, info = block.step(actions, t)
        obs = obs.reshape(size, 2, -1)
        all_obs.append(obs)
        all_actions.append(actions)
        all_rewards.append(rewards)
        if "own_coin_pickups" in info:
            own_pickups.append(info["own_coin_pickups"])
            other_pickups.append(info["other_coin_pickups"])
    episodes = {
        "obs": torch.stack(all_obs, 1),
        "actions": torch.stack(all_actions, 1),
        "rewards": torch.stack(all_rewards, 1),
    }
    if own_pickups:
        episodes["own_pickups"] = torch.stack(own_pickups, 1)
        episodes["other_pickups"] = torch.stack(other_pickups, 1)
    if outputs:  # the opponents' outputs over h_0..h_T, while their weights are in the cache
        op_obs = episodes["obs"][:, :, 1].reshape(num_groups, -1, steps + 1, obs.shape[-1])
        last, _ = agent.act(op_obs[:, :, steps], steps, op_carry, opponents)
        op_logits.append(last.reshape(size, -1))
        episodes["op_logits"] = torch.stack(op_logits, 1)
        episodes["op_q"] = agent.critic_sequence(op_obs, opponents).reshape(size, steps + 1, -1)
    return episodes
