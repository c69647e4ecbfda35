"""Elementwise activation speed: forward + backward of one float32 (64, 64, 32, 32) array
(4.2 M values, the size of a wide layer's output at batch 64), ours beside PyTorch's where it
is installed, at 1 and 2 threads. The best of a few repeats, in ms.

    python -m engine.bench.activations [--ops gelu,relu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHAPE = (64, 64, 32, 32)


def _best_ms(fn, repeats: int) -> float:
    fn()                                                      # compile / warm the caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000 * best


def ours(op: str, x: np.ndarray, dout: np.ndarray, repeats: int) -> tuple[float, float]:
    from engine.kernels import activations as kernels
    forward, backward = getattr(kernels, f"{op}_forward"), getattr(kernels, f"{op}_backward")
    flat_x, flat_dout = x.reshape(-1), dout.reshape(-1)
    out, dx = np.empty_like(flat_x), np.empty_like(flat_x)
    reads = out if op in ("relu", "sigmoid", "tanh") else flat_x
    return (_best_ms(lambda: forward(out, flat_x), repeats),
            _best_ms(lambda: backward(dx, flat_dout, reads), repeats))


def theirs(op: str, x: np.ndarray, dout: np.ndarray, repeats: int) -> tuple[float, float] | None:
    """PyTorch's forward, and the backward kernel autograd would call for it (timed alone)."""
    try:
        import torch
    except ImportError:
        return None
    aten = torch.ops.aten
    tx, tdout = torch.from_numpy(x), torch.from_numpy(dout)
    forward = {"gelu": aten.gelu, "relu": aten.relu, "tanh": aten.tanh,
               "sigmoid": aten.sigmoid}[op]
    with torch.no_grad():
        out = forward(tx)
        backward = {"gelu": lambda: aten.gelu_backward(tdout, tx),
                    "relu": lambda: aten.threshold_backward(tdout, out, 0),
                    "tanh": lambda: aten.tanh_backward(tdout, out),
                    "sigmoid": lambda: aten.sigmoid_backward(tdout, out)}[op]
        return _best_ms(lambda: forward(tx), repeats), _best_ms(backward, repeats)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", default="gelu", help="comma-separated: gelu, relu, tanh, sigmoid")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    import numba
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(SHAPE) * 2).astype(np.float32)
    dout = rng.standard_normal(SHAPE).astype(np.float32)
    print(f"forward + backward of a float32 {'x'.join(map(str, SHAPE))} array, best of "
          f"{args.repeats}, ms (forward / backward / total)")
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            pass
        for op in args.ops.split(","):
            f, b = ours(op, x, dout, args.repeats)
            plural = "s" if threads > 1 else " "
            line = (f"  {threads} thread{plural} {op:8s} ours {f:7.2f} / {b:7.2f} / "
                    f"{f + b:7.2f}")
            ref = theirs(op, x, dout, args.repeats)
            if ref is not None:
                tf, tb = ref
                line += (f"   torch {tf:7.2f} / {tb:7.2f} / {tf + tb:7.2f}   ours/torch time "
                         f"{(f + b) / (tf + tb):5.2f}x")
            print(line)


if __name__ == "__main__":
    main()
