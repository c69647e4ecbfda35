"""A fresh client's view while others load the server: GET /api/state latencies, back to back,
for as long as some load runs (real sockets against tests/server/live.py's server)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.server.conftest import READY

ROOT = Path(__file__).resolve().parents[2]


def wait_ready_live(base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base}/api/state", timeout=30).json()["status"] not in READY:
        assert time.monotonic() < deadline, "the run did not become ready"
        time.sleep(0.05)


def in_threads(count: int, work: Callable[[int], None]) -> Callable[[], None]:
    """A load: `work(i)` for i in range(count), all at once, joined; the first error any
    raised is raised again."""
    def run() -> None:
        errors: list[BaseException] = []

        def guarded(i: int) -> None:
            try:
                work(i)
            except BaseException as exc:       # noqa: BLE001 - handed to the test below
                errors.append(exc)

        threads = [threading.Thread(target=guarded, args=(i,), daemon=True)
                   for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        if errors:
            raise errors[0]
    return run


def state_latencies_while(base: str, load: Callable[[], None]) -> list[float]:
    """Seconds each GET /api/state took while `load` ran (at least one probe)."""
    done = threading.Event()
    seconds: list[float] = []

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                started = time.perf_counter()
                status = client.get(f"{base}/api/state").status_code
                seconds.append(time.perf_counter() - started if status == 200 else math.inf)
                if done.is_set():
                    return
                time.sleep(0.01)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    time.sleep(0.05)
    try:
        load()
    finally:
        done.set()
        prober.join(120)
    return seconds


def clients_in_a_process(base: str, count: int, paths: tuple[str, ...]) -> Callable[[], None]:
    """A load: `count` clients, each GETting `paths` in turn, from another process (clients in
    this one would compete with the server for the GIL and slow it themselves)."""
    def run() -> None:
        subprocess.run([sys.executable, "-m", "tests.server.probe", base, str(count), *paths],
                       check=True, timeout=300, cwd=ROOT)
    return run


def _main(base: str, count: str, *paths: str) -> None:
    def visit(_):
        with httpx.Client(base_url=base, timeout=120) as client:
            for path in paths:
                assert client.get(path).status_code == 200, path
    in_threads(int(count), visit)()


if __name__ == "__main__":
    _main(*sys.argv[1:])
