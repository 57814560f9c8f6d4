"""uoro: not yet implemented (its issue has not landed)."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
