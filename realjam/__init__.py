"""realjam: the online accompaniment agent of ReaLJam (arXiv 2502.21267) and its RL-tuned transformer; see
realjam/README.md."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
