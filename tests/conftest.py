import tempfile
from pathlib import Path

import numpy as np
import pytest

BOUNDSCHECK_TEST = "tests/engine/test_boundscheck.py::test_kernels_and_net_pass_with_numba_boundscheck"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(session, config, items):
    """The boundscheck run (tests/engine/test_boundscheck.py) goes in the background from the
    start of a session that includes its test, and its test runs last, waiting for it."""
    ours = [item for item in items if item.nodeid == BOUNDSCHECK_TEST]
    if not ours or len(items) == 1:
        return
    items[:] = [item for item in items if item.nodeid != BOUNDSCHECK_TEST] + ours
    from tests.engine.test_boundscheck import start
    directory = Path(tempfile.mkdtemp(prefix="boundscheck-"))
    config.boundscheck_run = (start(directory), directory)


def pytest_unconfigure(config):
    started = getattr(config, "boundscheck_run", None)
    if started is not None and started[0].poll() is None:   # the session ended early
        started[0].kill()
        started[0].wait()
