"""Coconet (Huang et al., ISMIR 2017): Counterpoint by Convolution, an orderless NADE over Bach chorales."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
