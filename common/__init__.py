"""Code that two or more papers share: configs, the runner, environments, music data, plots, results.

Importing ``common`` pins torch's CPU kernels, so that the same code and config give bit-identical numbers
on any x86-64 machine: torch otherwise dispatches to AVX512 kernels where the CPU has them and to AVX2
elsewhere, and MKL picks its code path (and its summation order) by CPU and memory alignment. Measured on
a 20-iteration Coin Game run: AVX512 and AVX2 kernels give parameters that differ from the 8th digit on,
which 2500 iterations of sampled RL amplify into a different result. Both variables are read when torch
loads, so every paper package imports ``common`` before anything imports torch (its ``__init__``), and the
Makefile exports them too. They cost ~5% speed on an AVX512 machine.
"""

import os
import sys

PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT"}
for _name, _value in PINNED_KERNELS.items():
    os.environ.setdefault(_name, _value)
if "torch" in sys.modules and os.environ["ATEN_CPU_CAPABILITY"] == "avx2":
    import torch

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "DEFAULT"):
        print(
            "warning: torch was imported before `common`, so its CPU kernels are not pinned and "
            "numbers may differ from other machines' (import common first)",
            file=sys.stderr,
        )
