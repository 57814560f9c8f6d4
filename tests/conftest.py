"""Shared test setup: one torch thread (two threads on a busy 2-core box run 30-100x slower)."""

# isort: off
import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)

# isort: on
import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """Run the test with the working directory in a fresh temporary folder (runs/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _default_dtype_float32():
    """Every test starts from torch's float32 default, whatever another module set while collected."""
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(torch.float32)
