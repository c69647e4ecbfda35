"""Numba checks no bounds: a wrong index corrupts memory silently. Run the kernel and whole-net
tests once more with NUMBA_BOUNDSCHECK=1 (a fresh cache, so nothing compiled without checks is
reused), so that any out-of-bounds access raises IndexError instead.

Most of that run is compiling every kernel from cold (two to three minutes on a 2-core
machine), on one core. With the suite spread over workers (pytest-xdist, the default), this
test runs first and in the foreground, so one worker's core does it while the others go on.
In a single process (`-n 0`) it starts when the session starts (tests/conftest.py), at the
lowest CPU priority, so it uses the core the rest of the suite leaves idle, and this test,
run last, waits for it and reads its result."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ["tests/engine/kernels", "tests/engine/layers", "tests/engine/test_net.py",
          "tests/engine/optim/test_lookahead.py"]
TIMEOUT_S = 1800


def start(cache_dir: Path, background: bool) -> subprocess.Popen:
    """The boundscheck run (in the background at the lowest priority); its output in a file
    beside its cache."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PYTEST_XDIST")}
    env.update(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(cache_dir))
    # The torch comparisons check numerics, not bounds, and are already run once: skip them.
    # So are the float64 runs: the kernels index float32 and float64 arrays alike, and
    # compiling every kernel twice more from a cold cache cost CI minutes.
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "0",
           "-k", "not torch and not float64", *[p for p in SUBSET if (ROOT / p).exists()]]
    with open(cache_dir / "output.txt", "w") as log:      # the child keeps its own copy
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=(lambda: os.nice(19)) if background else None)


def test_kernels_and_net_pass_with_numba_boundscheck(request, tmp_path):
    started = getattr(request.config, "boundscheck_run", None)
    process, cache_dir = started if started else (start(tmp_path, background=False), tmp_path)
    try:
        returncode = process.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    output = (cache_dir / "output.txt").read_text()
    tail = output[-4000:]
    assert returncode == 0, f"tests failed under NUMBA_BOUNDSCHECK=1:\n{tail}"
    assert " passed" in output, tail
