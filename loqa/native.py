"""The Coin Game rollout in C (native_rollout.c): the same episodes as rollout.py's PyTorch loop, faster.

rollout.py draws every random number first; this module hands those draws, the env's tables and the
two actors' weights to a small C function that plays each episode from start to end with its two
actors' weights in the core's cache (native_rollout.c says why that is the fast order), on
torch.get_num_threads() threads. The library is compiled with the system's C compiler on first use
and cached (~1 s, under $XDG_CACHE_HOME or ~/.cache); without a compiler, rollout.py keeps its
PyTorch loop. Fixed vector flags (AVX2 + FMA, as common/__init__.py pins PyTorch's kernels) make the
numbers the same on every x86-64 machine.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

from common.envs.coin_game import CoinGame
from loqa.networks import LoqaAgent, Params, PolaGRU

SOURCE = Path(__file__).with_name("native_rollout.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-pthread", "-fno-math-errno"]
# Fixed AVX2 + FMA (the intrinsics in native_rollout.c) for the same numbers on every x86-64 machine.
FLAGS += ["-fno-trapping-math"]
if platform.machine() in ("x86_64", "AMD64"):
    FLAGS += ["-mavx2", "-mfma"]
LAYERS = ("pre.0", "pre.1", "input_gates", "hidden_gates", "head")
_library: ctypes.CDLL | None | bool = False  # False: not tried yet


class _Net(ctypes.Structure):
    _fields_ = [
        ("w", ctypes.c_void_p * 5),
        ("b", ctypes.c_void_p * 5),
        ("w_stride", ctypes.c_int64 * 5),
        ("b_stride", ctypes.c_int64 * 5),
        ("in_dim", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("out_dim", ctypes.c_int),
        ("pre_layers", ctypes.c_int),
    ]


class _Job(ctypes.Structure):
    _fields_ = [
        *[(name, ctypes.c_int) for name in ("batch", "steps", "obs_dim", "num_actions")],
        *[(name, ctypes.c_int) for name in ("num_cells", "group")],
        ("own_actor", _Net),
        ("op_actor", _Net),
        ("op_critic", _Net),
        ("with_outputs", ctypes.c_int),
        ("time_scale", ctypes.c_float),
        *[
            (name, ctypes.c_void_p)
            for name in (
                "op_index",
                "player_cells",
                "coin_cell",
                "coin_owner",
                "respawns",
                "move_table",
                "rank_table",
                "reward_table",
                "own_table",
                "other_table",
                "obs_table",
                "noise_q",
                "explore",
                "uniform",
                "obs",
                "rewards",
                "own_pickups",
                "other_pickups",
                "op_logits",
                "op_q",
                "actions",
            )
        ],
    ]


def library() -> ctypes.CDLL | None:
    """The compiled rollout, built on first use; None (with one warning) where it cannot be built."""
    global _library
    if _library is False:
        try:
            _library = _build()
        except (OSError, subprocess.CalledProcessError) as error:
            warnings.warn(
                f"loqa: C rollout unavailable ({error}); using the PyTorch loop", stacklevel=2
            )
            _library = None
    return _library or None


def _build() -> ctypes.CDLL:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler (cc or gcc) on PATH")
    source = SOURCE.read_bytes()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(source + " ".join(FLAGS).encode() + version.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "loqa-native"
    target = cache / f"rollout-{key}.so"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        # Built next to the target and renamed: runs that start together never load half a file.
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            built = Path(tmp) / target.name
            subprocess.run(
                [compiler, *FLAGS, "-o", str(built), str(SOURCE)],
                check=True,
                capture_output=True,
            )
            os.replace(built, target)
    lib = ctypes.CDLL(str(target))
    lib.loqa_coin_rollout.argtypes = [ctypes.POINTER(_Job), ctypes.c_int]
    lib.loqa_coin_rollout.restype = ctypes.c_int
    return lib


def supported(env, agent: LoqaAgent) -> bool:
    """The C rollout covers the Coin Game with its observation table, GRU actor and critic, float32 on
    the CPU; anything else plays in rollout.py's PyTorch loop."""
    return (
        isinstance(env, CoinGame)
        and env.obs_table is not None
        and env.obs_dtype == torch.float32
        and env.device.type == "cpu"
        and env.num_actions <= 16
        and isinstance(agent.actor, PolaGRU)
        and isinstance(agent.critic, PolaGRU)
        and all(p.dtype == torch.float32 for p in agent.parameters())
        and library() is not None
    )


def _net(net: PolaGRU, params: Params | None, keep: list) -> _Net:
    """The C view of a GRU's parameters: its own (params None) or stacked [U, ...] ones."""
    own = params is None
    params = net.own_params() if own else params
    out = _Net()
    for i, layer in enumerate(LAYERS):
        if f"{layer}.weight" not in params:  # one pre-layer
            continue
        for kind, pointers, strides in (
            ("weight", out.w, out.w_stride),
            ("bias", out.b, out.b_stride),
        ):
            value = params[f"{layer}.{kind}"].detach().contiguous()
            keep.append(value)
            pointers[i] = value.data_ptr()
            strides[i] = 0 if own else value[0].numel()
    out.in_dim = net.pre[0].in_features
    out.hidden, out.out_dim, out.pre_layers = net.hidden, net.head.out_features, len(net.pre)
    return out


def _pointer(tensor: Tensor, keep: list) -> int:
    tensor = tensor.contiguous()
    keep.append(tensor)
    return tensor.data_ptr()


@torch.no_grad()
def play(
    env: CoinGame,
    agent: LoqaAgent,
    opponents: Params,
    opponent_index: Tensor,
    noise: dict[str, Tensor],
    respawns: Tensor,
    outputs: bool,
) -> dict[str, Tensor]:
    """rollout.py's episodes from the env's reset state and the pre-drawn noise and respawns [T, B];
    group k of the batch plays opponent opponent_index[k] of the stacked opponents [U, ...]."""
    lib = library()
    batch, steps, actions_n = env.batch_size, env.episode_length, env.num_actions
    obs_dim = 4 * env.num_cells
    keep: list = []
    job = _Job()
    job.batch, job.steps, job.obs_dim, job.num_actions = batch, steps, obs_dim, actions_n
    job.num_cells, job.group = env.num_cells, batch // len(opponent_index)
    job.own_actor = _net(agent.actor, None, keep)
    actor = {k[len("actor.") :]: v for k, v in opponents.items() if k.startswith("actor.")}
    critic = {k[len("critic.") :]: v for k, v in opponents.items() if k.startswith("critic.")}
    job.op_actor = _net(agent.actor, actor, keep)
    job.op_critic = _net(agent.critic, critic, keep)
    job.with_outputs, job.time_scale = int(outputs), agent.time_scale
    reward_table, own_table, other_table = env.outcomes
    for name, tensor in (
        ("op_index", opponent_index.long()),
        ("player_cells", env.player_cells),
        ("coin_cell", env.coin_cell),
        ("coin_owner", env.coin_owner),
        ("respawns", respawns.long()),
        ("move_table", env.move_table),
        ("rank_table", env.rank_table),
        ("reward_table", reward_table.float()),
        ("own_table", own_table.float()),
        ("other_table", other_table.float()),
        ("obs_table", env.obs_table),
        ("noise_q", noise["q"].float()),
    ):
        setattr(job, name, _pointer(tensor, keep))
    if "explore" in noise:
        job.explore = _pointer(noise["explore"].to(torch.uint8), keep)
        job.uniform = _pointer(noise["uniform"].long(), keep)
    out = {
        "obs": torch.empty(batch, steps + 1, 2, obs_dim),
        "actions": torch.empty(batch, steps, 2, dtype=torch.long),
        "rewards": torch.empty(batch, steps, 2, dtype=reward_table.dtype),
        "own_pickups": torch.empty(batch, steps, 2, dtype=own_table.dtype),
        "other_pickups": torch.empty(batch, steps, 2, dtype=other_table.dtype),
        "op_logits": torch.empty(batch, steps + 1, actions_n),
        "op_q": torch.empty(batch, steps + 1, actions_n),
    }
    for name, tensor in out.items():
        setattr(job, name, tensor.data_ptr())
    status = lib.loqa_coin_rollout(ctypes.byref(job), torch.get_num_threads())
    if status != 0:
        raise RuntimeError(
            f"loqa: the C rollout failed (status {status}: out of memory or threads)"
        )
    if not outputs:
        del out["op_logits"], out["op_q"]
    return out


if __name__ == "__main__":  # `python -m loqa.native`: build the library and say where it is
    lib = library()
    print(lib._name if lib is not None else "unavailable", file=sys.stderr)
