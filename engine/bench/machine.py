"""What `convnet-demo bench` says about the machine: the CPU, how much of it other processes
took during the run (a busy neighbour slows parallel kernels most), and Numba's start-up cost
measured in fresh processes (cold compile, then a load from the disk cache)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def machine_info(threads: int) -> dict:
    model, flags = None, ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            if key.strip() == "flags" and not flags:
                flags = value
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx2", "fma") if f" {f} " in f" {flags} "]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model or platform.processor() or "unknown CPU", "simd": simd,
            "cores_available": cores, "cores": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "numpy": np.__version__, "threads": threads}


def cpu_clock() -> tuple[float, float, float] | None:
    """(wall seconds, CPU seconds the whole machine used, CPU seconds this process and its
    children used), to tell how much of the machine other processes took during a run."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(ticks) - sum(ticks[3:5])  # everything but idle and iowait
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), own


def others_share(start) -> float | None:
    """Fraction of all cores' time that OTHER processes used since `start` (a cpu_clock())."""
    end = cpu_clock()
    if start is None or end is None:
        return None
    others = (end[1] - start[1]) - (end[2] - start[2])
    return round(max(0.0, others) / ((end[0] - start[0]) * (os.cpu_count() or 1)), 3)


def jit_child(net: str) -> None:
    """Run in a fresh process: time importing the engine and its first training step."""
    from engine.presets import open_net
    started = time.perf_counter()
    from engine.layers.base import Context
    from engine.net import Net
    imported = time.perf_counter()
    spec = open_net(net)[0]
    model = Net(spec)
    x = np.zeros((2,) + model.input_shape, np.float32)
    model.loss_and_grads(x, np.zeros(2, np.int64), model.new_grads(), Context(training=True))
    model.predict(x)
    done = time.perf_counter()
    print(json.dumps({"import_s": imported - started, "first_step_s": done - imported}))


def jit_times(net: str) -> dict:
    """Cold compile (empty NUMBA_CACHE_DIR), then a disk-cache load from the same directory."""
    code = f"from engine.bench.machine import jit_child; jit_child({net!r})"
    out = {}
    with tempfile.TemporaryDirectory(prefix="convnet-demo-jit-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "cached"):
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                  text=True, check=True)
            out[label] = {k: round(v, 3) for k, v in json.loads(done.stdout).items()}
    return out
