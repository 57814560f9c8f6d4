"""Importing common pins torch's CPU kernels (AVX2 dispatch, MKL's AVX2 path) so numbers repeat across
machines; a process that imports torch first would silently use other kernels."""

import subprocess
import sys


def test_a_fresh_process_that_imports_a_paper_runs_the_pinned_kernels():
    # No inherited pin (also none from a site hook): the package must set it itself.
    unpin = "import os; [os.environ.pop(k, None) for k in ('ATEN_CPU_CAPABILITY', 'MKL_CBWR')]; "
    code = unpin + "import loqa, torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("AVX2", "DEFAULT"), out.stdout
