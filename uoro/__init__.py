"""Cooijmans & Martens, "On the Variance of Unbiased Online Recurrent Optimization" (arXiv:1902.02405).

Reproducible numbers across CPUs: MKL (torch's BLAS/LAPACK on x86) and torch's own kernels pick their code path
by CPU, and the paths round differently in the last bit. The variance measurements barely notice (1e-15), but
20k steps of online training amplify such bits: the same code gave a UORO final loss of 0.148 with MKL's AVX-512
path and 0.138 with its CPU-independent path (``MKL_CBWR=COMPATIBLE``). ``common`` pins both before torch loads.
"""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
