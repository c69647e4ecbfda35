"""`convnet-demo bench`: our engine against PyTorch (CPU) and a plain NumPy im2col net.

Everything runs in one process on the same weights and the same random batches. For each batch
size the implementations are timed ALTERNATELY, in `--rounds` rounds of seconds/rounds each
(ours, torch, numpy, ours, torch, ...), so a noisy neighbour hurts all of them alike; the best
round is reported. Training = forward + backward + a momentum-SGD update (lr 1e-4, mu 0.9, as
torch.optim.SGD); inference = an evaluation-mode forward pass. FLOPs are the architecture
calculator's forward FLOPs (multiply-add = 2); a training step counts 3x forward. The machine's
own float32 peak (peak.py, with 1 thread and with the thread count used) sets each layer's
share of it in the per-layer table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


class BenchError(ValueError):
    """A bad benchmark request; the command line prints it as one line."""


LR, MOMENTUM = 1e-4, 0.9


def _int_list(values, default: str) -> list[int]:
    out = []
    for value in values or [default]:
        for part in str(value).split(","):
            if part.strip():
                try:
                    n = int(part)
                except ValueError:
                    raise BenchError(f"batch sizes are integers, got {part!r}") from None
                if not 1 <= n <= 4096:
                    raise BenchError(f"batch sizes must be in 1..4096, got {n}")
                out.append(n)
    return list(dict.fromkeys(out))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine benchmark's options (on the `bench` subcommand, beside --data)."""
    parser.add_argument("--net", default="convnetjs", metavar="NET",
                        help="preset name or JSON spec file (default: convnetjs)")
    parser.add_argument("--batch", action="append", metavar="B",
                        help="training batch sizes, repeatable or comma separated (default 4,32)")
    parser.add_argument("--inference-batch", action="append", metavar="B",
                        help="inference batch sizes (default 1,256)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="threads for Numba, torch and BLAS (default: measured first, all "
                             "cores against one, with our engine's training step; the report "
                             "says which)")
    parser.add_argument("--seconds", type=float, default=2.0, metavar="S",
                        help="time per implementation and batch size, split over the rounds "
                             "(default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-numpy", action="store_true", help="leave the NumPy net out")
    parser.add_argument("--jit", action="store_true",
                        help="also time Numba's cold compile and its disk-cache load (two fresh "
                             "processes, ~20 s more)")
    try:
        parser.add_argument("--json", action="store_true", help="print one JSON object")
    except argparse.ArgumentError:
        pass  # the bench parser already has it (for --data)


# --- setup -------------------------------------------------------------------------------------
def load_spec(name: str):
    from engine.presets import NetSourceError, open_net
    try:
        return open_net(name)[0]
    except NetSourceError as exc:
        raise BenchError(str(exc)) from None


def _command(args, batches, inference) -> str:
    parts = ["convnet-demo bench", f"--net {args.net}", f"--batch {','.join(map(str, batches))}",
             f"--inference-batch {','.join(map(str, inference))}"]
    parts += [f"--threads {args.threads}"] if args.threads is not None else []
    parts += [f"--seconds {args.seconds:g}", f"--rounds {args.rounds}"]
    parts += [flag for flag, on in (("--no-torch", args.no_torch), ("--no-numpy", args.no_numpy),
                                    ("--jit", args.jit), ("--json", args.json)) if on]
    return " ".join(parts)


class Contenders:
    """The three implementations on identical starting weights, each with its own optimizer."""

    def __init__(self, spec, use_torch: bool, use_numpy: bool, threads: int, notes: list):
        started = time.perf_counter()
        import numba
        from engine.net import Net
        from engine.optim import Optimizer
        self.import_s = time.perf_counter() - started
        self.torch_import_s = None
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise BenchError(f"--threads {threads} is more than Numba's pool "
                           f"({numba.config.NUMBA_NUM_THREADS}); set NUMBA_NUM_THREADS")
        self.net = Net(spec, rng=np.random.default_rng(0))
        self.grads = self.net.new_grads()
        self.opt = Optimizer(self.net.named_params(), method="momentum", learning_rate=LR,
                             momentum=MOMENTUM)
        self.impls = ["ours"]
        self.torch = self.tnet = self.numpy_net = None
        self.label_smoothing = spec.layers[-1].get("label_smoothing", 0.0)   # torch's the same
        if use_torch:
            started = time.perf_counter()
            try:
                import torch
                self.torch_import_s = time.perf_counter() - started
            except ImportError:
                notes.append("torch: not installed (pip install torch==2.13.0 for the comparison)")
            else:
                from engine.bench.torch_reference import torch_net_from_spec
                self.torch, self.tnet = torch, torch_net_from_spec(spec, self.net)
                self.topt = torch.optim.SGD(self.tnet.parameters(), lr=LR, momentum=MOMENTUM)
                self.impls.append("torch")
        if use_numpy:
            from engine.bench.numpy_net import NumpyNet
            try:
                self.numpy_net = NumpyNet(self.net)
                self.impls.append("numpy")
            except NotImplementedError as exc:
                notes.append(f"numpy: skipped: {exc}")
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            notes.append("numpy BLAS threads: left at OpenBLAS's default (the cores available); "
                         "threadpoolctl is not installed")
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Every implementation's thread count: Numba's, torch's and BLAS's."""
        import numba
        self.threads = threads
        numba.set_num_threads(threads)
        if self.torch is not None:
            self.torch.set_num_threads(threads)
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads)
        except ImportError:
            pass

    def step(self, impl: str, training: bool, x, y, ctx):
        """One training step or inference pass; returns the loss (training) or None."""
        if impl == "ours":
            if not training:
                self.net.predict(x, ctx)
                return None
            self.net.zero_grads(self.grads)
            loss, _ = self.net.loss_and_grads(x, y, self.grads, ctx)
            self.opt.step(self.net.named_grads(self.grads))
            return loss
        if impl == "torch":
            torch, (xt, yt) = self.torch, ctx
            if not training:
                self.tnet.eval()
                with torch.inference_mode():
                    self.tnet.predict(xt)
                return None
            self.tnet.train()
            self.topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.tnet(xt).flatten(1), yt,
                                                     label_smoothing=self.label_smoothing)
            loss.backward()
            self.topt.step()
            return loss.detach().item()
        if not training:
            self.numpy_net.predict(x)
            return None
        loss = self.numpy_net.loss_and_grads(x, y)
        self.numpy_net.sgd_momentum_step(LR, MOMENTUM)
        return loss

    def context(self, impl: str, training: bool, x, y):
        if impl == "ours":
            from engine.layers.base import Context
            return Context(training=training, input_grad=False)
        if impl == "torch":
            return self.torch.from_numpy(x), self.torch.from_numpy(y)
        return None


def _rate(step, seconds: float) -> float:
    """Steps per second of `step()` over at least `seconds` (at least one step)."""
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _race(c: Contenders, training: bool, batch: int, seconds: float, rounds: int, rng) -> dict:
    """images/s per implementation: best of `rounds` interleaved runs."""
    c_in = c.net.input_shape
    x = rng.standard_normal((batch,) + c_in).astype(np.float32)
    y = rng.integers(0, c.net.spec.num_outputs, batch).astype(np.int64)
    steps = {}
    for impl in c.impls:
        ctx = c.context(impl, training, x, y)
        steps[impl] = (lambda impl=impl, ctx=ctx: c.step(impl, training, x, y, ctx))
        steps[impl]()  # warm up: JIT, buffers, BLAS threads
        steps[impl]()
    best = dict.fromkeys(c.impls, 0.0)
    for _ in range(rounds):
        for impl in c.impls:
            best[impl] = max(best[impl], batch * _rate(steps[impl], seconds / rounds))
    return best


def _tune_threads(c: Contenders, batch: int, rng):
    """Our engine's training step at each thread count (all cores, then one) for half a
    second each; every implementation then runs with the faster count."""
    from engine.threads import ThreadTuner
    tuner = ThreadTuner.for_machine(None, trial_s=0.5, period_s=float("inf"))
    if not tuner.tuning:
        return tuner
    x = rng.standard_normal((batch,) + c.net.input_shape).astype(np.float32)
    y = rng.integers(0, c.net.spec.num_outputs, batch).astype(np.int64)
    ctx = c.context("ours", True, x, y)
    while tuner.trials == 0:
        tuner.run(lambda: c.step("ours", True, x, y, ctx), batch)
    c.set_threads(tuner.current)
    return tuner


def _threads_line(tuner) -> str:
    if not tuner.tuning:
        return f"{tuner.current} each (fixed by --threads)"
    return (f"{tuner.current} each, the faster for our engine's training step (measured: "
            + ", ".join(f"{n} {'thread' if n == 1 else 'threads'} {r:,.0f} images/s"
                        for n, r in tuner.rates.items()) + "); --threads T fixes it")


def _first_losses(c: Contenders, batch: int, rng) -> dict:
    """One training step each on the same batch from the same weights: the losses must agree."""
    x = rng.standard_normal((batch,) + c.net.input_shape).astype(np.float32)
    y = rng.integers(0, c.net.spec.num_outputs, batch).astype(np.int64)
    out = {}
    for impl in c.impls:
        start = time.perf_counter()
        out[impl] = c.step(impl, True, x, y, c.context(impl, True, x, y))
        if impl == "ours":
            out["ours_first_step_s"] = time.perf_counter() - start
    return out


# --- report --------------------------------------------------------------------------------
def _table(title: str, rows: list[dict], impls: list[str], flops_per_image: float) -> list[str]:
    head = "batch" + "".join(f"{i + ' img/s':>14}" for i in impls)
    head += "".join(f"{'ours/' + i:>12}" for i in impls[1:])
    head += "".join(f"{i + ' GFLOP/s':>15}" for i in impls)
    lines = [title, head]
    for row in rows:
        ips = row["images_per_s"]
        line = f"{row['batch']:>5}" + "".join(f"{ips[i]:>14.1f}" for i in impls)
        line += "".join(f"{ips['ours'] / ips[i]:>11.2f}x" for i in impls[1:])
        line += "".join(f"{ips[i] * flops_per_image / 1e9:>15.1f}" for i in impls)
        lines.append(line)
    return lines


def _results(kind_rows, impls, flops_per_image):
    return [{"batch": b, "images_per_s": {i: round(ips[i], 2) for i in impls},
             "gflops": {i: round(ips[i] * flops_per_image / 1e9, 3) for i in impls},
             "ratios": {f"ours/{i}": round(ips["ours"] / ips[i], 3) for i in impls[1:]}}
            for b, ips in kind_rows]


def run(args: argparse.Namespace) -> int:
    from engine.bench.per_layer import profile_layers, render_layers
    from engine.bench.machine import cpu_clock, jit_times, machine_info, others_share
    from engine.bench.peak import measure_peak
    from engine.calculator import summarize
    batches = _int_list(args.batch, "4,32")
    inference = _int_list(args.inference_batch, "1,256")
    if (args.threads is not None and args.threads < 1) or args.seconds <= 0 or args.rounds < 1:
        raise BenchError("--threads and --rounds must be at least 1 and --seconds positive")
    spec = load_spec(args.net)
    notes: list[str] = []
    cpu_at_start = cpu_clock()
    from engine.threads import ThreadTuner, machine_threads
    c = Contenders(spec, not args.no_torch, not args.no_numpy,
                   args.threads or machine_threads(), notes)
    summary = summarize(spec)
    flops = summary["flops"]
    rng = np.random.default_rng(0)
    check = _first_losses(c, batches[0], rng)
    tuner = ThreadTuner((c.threads,))
    if args.threads is None:
        tuner = _tune_threads(c, batches[0], rng)
    peak = measure_peak((1, c.threads), seconds=min(0.5, args.seconds / 4))
    peak_now = peak["gflops"][str(c.threads)]
    training = [(b, _race(c, True, b, args.seconds, args.rounds, rng)) for b in batches]
    infer = [(b, _race(c, False, b, args.seconds, args.rounds, rng)) for b in inference]
    layers = profile_layers(c, summary, max(batches), args.seconds, args.rounds, rng, LR,
                            MOMENTUM, peak_gflops=peak_now)
    jit = jit_times(args.net) if args.jit else None
    import numba
    machine = machine_info(c.threads)
    machine["others_cpu_share"] = others = others_share(cpu_at_start)
    machine["peak"] = peak
    if others is not None and others > 0.05:
        notes.append(f"other processes used {100 * others:.0f}% of the machine's CPU time during "
                     "this run: the figures understate every implementation (parallel kernels "
                     "suffer most); rerun when the machine is idle")
    machine.update(numba=numba.__version__, numba_threading_layer=numba.threading_layer(),
                   torch=c.torch.__version__ if c.torch else None)
    result = {
        "command": _command(args, batches, inference), "machine": machine,
        "net": {"name": spec.name or Path(args.net).stem, "params": summary["params"],
                "flops_per_image": flops},
        "threads": {"count": c.threads, "tuned": tuner.tuning,
                    "measured_images_per_s": {str(n): round(r, 1)
                                              for n, r in tuner.rates.items()}},
        "statistic": f"best of {args.rounds} interleaved rounds of "
                     f"{args.seconds / args.rounds:.3g} s per implementation and batch",
        "implementations": c.impls,
        "training": _results(training, c.impls, 3 * flops),
        "inference": _results(infer, c.impls, flops),
        "layers": layers,
        "check_first_loss": {i: round(check[i], 6) for i in c.impls},
        "startup": {"engine_import_s": round(c.import_s, 3),
                    "torch_import_s": round(c.torch_import_s, 3) if c.torch_import_s else None,
                    "first_training_step_s": round(check["ours_first_step_s"], 3)},
        "jit": jit,
        "notes": notes,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    m = machine
    out = [result["command"],
           f"machine: {m['cpu']} ({', '.join(m['simd']) or 'no AVX'}), {m['cores_available']} of "
           f"{m['cores']} cores available; other processes' share of the CPU during the run: "
           + (f"{100 * m['others_cpu_share']:.0f}%" if m["others_cpu_share"] is not None
              else "unknown"),
           "peak float32, an FMA loop in Numba (best short run): "
           + ", ".join(f"{v:,.1f} GFLOP/s with {n} {'thread' if n == '1' else 'threads'}"
                       for n, v in peak["gflops"].items())
           + f" ({peak['accumulators']} accumulators of "
           + (f"{peak['vector_bits']}-bit vectors)" if peak["vector_bits"]
              else "scalars or vectors without FMA)"),
           f"software: python {m['python']}, numpy {m['numpy']}, numba {m['numba']} "
           f"({m['numba_threading_layer']} layer), torch {m['torch'] or '-'}",
           f"threads: {_threads_line(tuner)}",
           f"net: {result['net']['name']}, {summary['params']:,} params, "
           f"{flops / 1e6:.1f} MFLOP/image forward (x3 for a training step)",
           f"statistic: {result['statistic']}",
           "check, first training loss on one batch from the same weights: "
           + ", ".join(f"{i} {check[i]:.6f}" for i in c.impls), ""]
    out += _table("training images/s (forward + backward + momentum SGD update):",
                  result["training"], c.impls, 3 * flops) + [""]
    out += _table("inference images/s (evaluation-mode forward):", result["inference"],
                  c.impls, flops) + [""]
    out += render_layers(layers) + [""]
    out.append(f"startup: importing the engine {c.import_s:.2f} s; its first training step "
               f"{check['ours_first_step_s']:.2f} s (Numba compiles the kernels, or loads them "
               "from its disk cache when they were compiled before)")
    if jit:
        out.append(f"JIT, fresh processes: cold compile: import {jit['cold']['import_s']:.2f} s + "
                   f"first step {jit['cold']['first_step_s']:.2f} s; from Numba's disk cache: "
                   f"import {jit['cached']['import_s']:.2f} s + first step "
                   f"{jit['cached']['first_step_s']:.2f} s")
    out += [f"note: {n}" for n in notes]
    print("\n".join(out))
    return 0
