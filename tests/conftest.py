import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

BOUNDSCHECK_TEST = "tests/engine/test_boundscheck.py::test_kernels_and_net_pass_with_numba_boundscheck"
# `-n auto` (pyproject.toml) takes this many workers at most: each runs its own browser and
# servers, and past a few the suite waits on its longest files, not on the cores.
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(session, config, items):
    """The boundscheck run (tests/engine/test_boundscheck.py) takes minutes on one core. Spread
    over workers, its test goes first, so that a worker starts it at once, and the tests
    marked slow next, so that the workers end on short ones; in one process, the run goes in
    the background from the start, and its test runs last, waiting for it."""
    if hasattr(config, "workerinput"):          # a pytest-xdist worker
        first = [item for item in items if item.nodeid == BOUNDSCHECK_TEST]
        slow = [item for item in items if item.get_closest_marker("slow") is not None
                and item.nodeid != BOUNDSCHECK_TEST]
        ahead = {item.nodeid for item in first + slow}
        items[:] = first + slow + [item for item in items if item.nodeid not in ahead]
        return
    ours = [item for item in items if item.nodeid == BOUNDSCHECK_TEST]
    if not ours or len(items) == 1:
        return
    items[:] = [item for item in items if item.nodeid != BOUNDSCHECK_TEST] + ours
    from tests.engine.test_boundscheck import start
    directory = Path(tempfile.mkdtemp(prefix="boundscheck-"))
    config.boundscheck_run = (start(directory, background=True), directory)


def pytest_unconfigure(config):
    started = getattr(config, "boundscheck_run", None)
    if started is not None and started[0].poll() is None:   # the session ended early
        started[0].kill()
        started[0].wait()
