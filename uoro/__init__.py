"""Cooijmans & Martens, "On the Variance of Unbiased Online Recurrent Optimization" (arXiv:1902.02405).

Reproducible numbers across CPUs: Intel MKL (torch's BLAS/LAPACK on x86) picks its code path by CPU model, and
the paths round differently in the last bit. The variance measurements barely notice (1e-15), but 20k steps of
online training amplify such bits into a different final loss (0.148 here vs 0.138 with another path). MKL reads
``MKL_CBWR`` at its first call, so we default it to the CPU-independent path before anything uses MKL; a process
that has already called MKL keeps its path (``make`` exports the variable for that reason).
"""

import os

os.environ.setdefault("MKL_CBWR", "COMPATIBLE")
