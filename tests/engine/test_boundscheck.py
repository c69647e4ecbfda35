"""Numba checks no bounds: a wrong index corrupts memory silently. Run the kernel and whole-net
tests once more with NUMBA_BOUNDSCHECK=1 (a fresh cache, so nothing compiled without checks is
reused), so that any out-of-bounds access raises IndexError instead."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ["tests/engine/kernels", "tests/engine/layers", "tests/engine/test_net.py",
          "tests/engine/optim/test_lookahead.py"]


def test_kernels_and_net_pass_with_numba_boundscheck(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    # The torch comparisons check numerics, not bounds, and are already run once: skip them.
    # So are the float64 runs: the kernels index float32 and float64 arrays alike, and
    # compiling every kernel twice more from a cold cache cost CI minutes.
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           "-k", "not torch and not float64", *[p for p in SUBSET if (ROOT / p).exists()]]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"tests failed under NUMBA_BOUNDSCHECK=1:\n{tail}"
    assert " passed" in result.stdout, tail
