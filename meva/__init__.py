"""meva: Meta-Value Learning (arXiv 2307.08863) on exact matrix games; see meva/README.md."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
