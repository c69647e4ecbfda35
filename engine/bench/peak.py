"""The machine's own float32 peak, as `convnet-demo bench` measures it: a loop of fused
multiply-adds on independent accumulators, compiled by Numba for the host like the engine's
kernels, one accumulator row per thread. A layer's share of this peak says how far its kernel
is from what the cores can do at all (loads, stores and shuffles aside).

Enough accumulators to keep every FMA pipe busy: a pipe takes a new FMA each cycle but gives
the result 4-5 cycles later, so with 2 pipes at least 8-10 vectors must be in flight. 12
vectors fill both pipes on every x86 we know and still fit the 16 vector registers of AVX2
(the multiplier and the addend take two more), so no accumulator spills to memory. The vectors
are as wide as LLVM makes them for the host; where it chooses narrower ones than the CPU has,
the loop is rebuilt for that width and the report names it. (Where 512-bit FMAs run as two
256-bit halves, as on AMD Zen 4, both widths give the same peak.)
"""

from __future__ import annotations

import re
import time
from functools import cache

import numpy as np

ACCUMULATOR_VECTORS = 12
# acc * MUL + ADD has the fixed point 1.0: the values never overflow or turn denormal.
MUL, ADD = np.float32(0.999999), np.float32(1e-6)
FLOPS_PER_FMA = 2
# Long enough to hide the fixed cost of a parallel call, short enough to fit between a busy
# neighbour's time slices.
RUN_S = 2e-3


def vector_lanes() -> int:
    """float32 lanes in the widest vector the host offers (what LLVM may compile for)."""
    try:
        from llvmlite import binding
        features = binding.get_host_cpu_features()
    except (ImportError, RuntimeError):
        return 4
    if features.get("avx512f"):
        return 16
    if features.get("avx2") or features.get("avx"):
        return 8
    return 4


@cache
def _fma_kernel(lanes: int):
    """Compiled once per process for a fixed accumulator count (a closure constant, so LLVM
    unrolls the inner loop fully and keeps every accumulator in a register)."""
    from numba import njit, prange

    @njit(nogil=True, error_model="numpy", fastmath={"contract"}, parallel=True)
    def fma_rows(acc, repeats, mul, add):
        for t in prange(acc.shape[0]):
            row = acc[t]
            for _ in range(repeats):
                for j in range(lanes):
                    row[j] = row[j] * mul + add

    fma_rows(np.ones((1, lanes), np.float32), 1, MUL, ADD)  # compile now, not while timed
    return fma_rows


def emitted_vector_bits(kernel) -> int | None:
    """Width of the vectors the compiled FMA loop actually uses (512 for zmm, 256 for ymm,
    128 for xmm), or None when it has no FMA instruction (a CPU without FMA)."""
    asm = "\n".join(kernel.inspect_asm(sig) for sig in kernel.signatures)
    fmas = re.findall(r"vfn?m(?:add|sub)\w*\s+[^\n]*%([xyz])mm", asm)
    widths = {"x": 128, "y": 256, "z": 512}
    return max((widths[r] for r in fmas), default=None)


def _best_rate(kernel, acc: np.ndarray, lanes: int, seconds: float,
               per_thread_gflops: float | None = None) -> float:
    """Best GFLOP/s of runs of about RUN_S over `seconds`: a neighbour that takes a core for a
    time slice spoils some runs, not the figure. Runs grow to RUN_S of arithmetic at the rate
    seen so far, or at `per_thread_gflops` per thread (the one-thread figure) where given: a
    parallel call that waits on a busy core says nothing about how long its work takes."""
    threads = acc.shape[0]
    flops_per_repeat = FLOPS_PER_FMA * lanes * threads
    repeats = 64
    kernel(acc, repeats, MUL, ADD)  # wakes the thread pool
    best, runs, started = 0.0, 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < seconds:
        start = time.perf_counter()
        kernel(acc, repeats, MUL, ADD)
        elapsed = time.perf_counter() - start
        best = max(best, flops_per_repeat * repeats / elapsed / 1e9)
        runs += 1
        expected = per_thread_gflops * threads if per_thread_gflops else best
        repeats = min(max(repeats, int(RUN_S * expected * 1e9 / flops_per_repeat)), 1 << 24)
    return best


def measure_peak(thread_counts, seconds: float = 0.3) -> dict:
    """{"gflops": {"T": best GFLOP/s with T threads}, "lanes", "accumulators", "vector_bits",
    "seconds_per_count"}: Numba's thread count is restored afterwards."""
    import numba
    lanes = vector_lanes() * ACCUMULATOR_VECTORS
    kernel = _fma_kernel(lanes)
    bits = emitted_vector_bits(kernel)
    if bits and bits // 32 * ACCUMULATOR_VECTORS != lanes:  # LLVM chose narrower vectors
        lanes = bits // 32 * ACCUMULATOR_VECTORS           # (NUMBA_CPU_NAME, prefer-256-bit)
        kernel = _fma_kernel(lanes)
    before = numba.get_num_threads()
    gflops: dict[str, float] = {}
    one_thread = None
    try:  # one thread first: its rate sizes the runs of the others
        for threads in sorted(set(thread_counts) | {1}):
            numba.set_num_threads(threads)
            acc = np.ones((threads, lanes), np.float32)
            rate = _best_rate(kernel, acc, lanes, seconds, one_thread)
            one_thread = one_thread or rate
            if threads in thread_counts:
                gflops[str(threads)] = round(rate, 2)
    finally:
        numba.set_num_threads(before)
    return {"gflops": gflops, "lanes": lanes, "accumulators": ACCUMULATOR_VECTORS,
            "vector_bits": bits, "seconds_per_count": seconds}
