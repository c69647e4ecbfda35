"""Per-layer times for `convnet-demo bench`: one training step split into each top-level
layer's forward and backward (and the update), for each implementation, alternated in rounds;
the median step is reported per layer. Blocks (residual, concat) count as one layer.

Torch runs layer by layer on detached inputs so each backward can be timed on its own; that
adds a little autograd overhead per layer that a plain torch training step does not pay.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

_clock = time.perf_counter


def _ours(c, x, y, ctx):
    net, grads = c.net, c.grads
    n = len(net.layers)
    fwd, bwd = [0.0] * n, [0.0] * n
    net.zero_grads(grads)
    h, caches = net.check_input(x), []
    for i, layer in enumerate(net.layers):
        t = _clock()
        h, cache = layer.forward(h, ctx)
        fwd[i] = _clock() - t
        caches.append(cache)
    t = _clock()
    _, dout = net.loss_layer.loss(h, caches[-1], y, ctx)
    bwd[-1] = _clock() - t
    for i in range(n - 2, net.backward_stop(ctx) - 1, -1):  # where Net.backward stops
        t = _clock()
        dout = net.layers[i].backward(dout, caches[i], grads[i], ctx)
        bwd[i] = _clock() - t
    t = _clock()
    c.opt.step(net.named_grads(grads))
    return fwd, bwd, _clock() - t


def _torch(c, xt, yt):
    torch, modules = c.torch, list(c.tnet.children())
    n = len(modules) + 1
    fwd, bwd = [0.0] * n, [0.0] * n
    c.tnet.train()
    c.topt.zero_grad()
    h, ins, outs = xt, [], []
    for i, module in enumerate(modules):
        inp = h.detach().requires_grad_(i >= 2)  # layer 0 is the input; layer 1 needs no dx
        t = _clock()
        h = module(inp)
        fwd[i] = _clock() - t
        ins.append(inp)
        outs.append(h)
    t = _clock()
    loss = torch.nn.functional.cross_entropy(h.flatten(1), yt)
    fwd[-1] = _clock() - t
    t = _clock()
    (g,) = torch.autograd.grad(loss, h)
    bwd[-1] = _clock() - t
    for i in range(n - 2, -1, -1):
        if g is None or not outs[i].requires_grad:
            break
        t = _clock()
        outs[i].backward(g)
        bwd[i] = _clock() - t
        g = ins[i].grad
    t = _clock()
    c.topt.step()
    return fwd, bwd, _clock() - t


def _numpy_step(c, x, y, lr, momentum):
    nn = c.numpy_net
    n = len(nn.layers) + 1
    fwd, bwd = [0.0] * n, [0.0] * n
    h, caches = x, []
    for i, layer in enumerate(nn.layers):
        t = _clock()
        h, cache = layer.forward(h, True)
        fwd[i] = _clock() - t
        caches.append(cache)
    t = _clock()
    scores = h.reshape(h.shape[0], -1)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    fwd[-1] = _clock() - t
    t = _clock()
    rows = np.arange(len(y))
    d = probs
    d[rows, y] -= 1
    d = (d / len(y)).reshape(h.shape)
    bwd[-1] = _clock() - t
    for g in nn.grads.values():
        g.fill(0)
    for i in range(n - 2, -1, -1):
        t = _clock()
        d = nn.layers[i].backward(d, caches[i], nn._layer_grads(str(i)))
        bwd[i] = _clock() - t
    t = _clock()
    nn.sgd_momentum_step(lr, momentum)
    return fwd, bwd, _clock() - t


def profile_layers(c, summary: dict, batch: int, seconds: float, rounds: int, rng,
                   lr: float = 1e-4, momentum: float = 0.9,
                   peak_gflops: float | None = None) -> dict:
    """{"batch", "steps": {impl: count}, "rows": [...], "update": {...}, "total": {...},
    "peak_gflops"}; with the machine's peak at this thread count (peak.measure_peak), every
    rate also carries "peak_share", its fraction of that peak."""
    from engine.layers.base import Context
    x = rng.standard_normal((batch,) + c.net.input_shape).astype(np.float32)
    y = rng.integers(0, c.net.spec.num_outputs, batch).astype(np.int64)
    ctx = Context(training=True, input_grad=False)  # what the race and the trainer run
    runs = {"ours": lambda: _ours(c, x, y, ctx)}
    if "torch" in c.impls:
        xt, yt = c.torch.from_numpy(x), c.torch.from_numpy(y)
        runs["torch"] = lambda: _torch(c, xt, yt)
    if "numpy" in c.impls:
        runs["numpy"] = lambda: _numpy_step(c, x, y, lr, momentum)
    samples = {impl: [] for impl in runs}
    for impl, step in runs.items():
        step()  # warm up
    for _ in range(rounds):
        for impl, step in runs.items():
            start = _clock()
            while True:
                samples[impl].append(step())
                if _clock() - start >= seconds / rounds:
                    break
    n = len(c.net.layers)
    rows = []
    for i, d in enumerate(c.net.spec.layers):
        flops = summary["layers"][i]["flops"]
        row = {"index": i, "layer": _label(d, c.net.layers[i], batch), "out_shape": summary["layers"][i]["out_shape"],
               "flops": flops}
        for impl, steps in samples.items():
            f = statistics.median(s[0][i] for s in steps) * 1e3
            b = statistics.median(s[1][i] for s in steps) * 1e3
            gflops = _gflops(3 * flops * batch, f + b)
            row[impl] = {"forward_ms": round(f, 4), "backward_ms": round(b, 4),
                         "gflops": gflops, "peak_share": _share(gflops, peak_gflops)}
        rows.append(row)
    update = {impl: round(statistics.median(s[2] for s in steps) * 1e3, 4)
              for impl, steps in samples.items()}
    total = {}
    for impl in samples:
        ms = sum(r[impl]["forward_ms"] + r[impl]["backward_ms"] for r in rows) + update[impl]
        gflops = _gflops(3 * summary["flops"] * batch, ms)
        total[impl] = {"ms": round(ms, 3), "gflops": gflops,
                       "peak_share": _share(gflops, peak_gflops)}
    assert len(rows) == n
    return {"batch": batch, "steps": {impl: len(s) for impl, s in samples.items()},
            "rows": rows, "update_ms": update, "total": total, "peak_gflops": peak_gflops}


def _gflops(flops: float, ms: float) -> float | None:
    return round(flops / (ms * 1e6), 2) if flops and ms > 0 else None


def _share(gflops: float | None, peak: float | None) -> float | None:
    return round(gflops / peak, 4) if gflops is not None and peak else None


def _label(d: dict, layer=None, batch: int = 1) -> str:
    t = d["type"]
    if t == "conv":
        winograd = layer is not None and layer.uses_winograd(batch)
        return f"conv {d['sy']}x{d['sx']} s{d['stride_y']}" + (" wino" if winograd else "")
    if t == "pool":
        return f"pool {d['mode']} {d['sy']}x{d['sx']} s{d['stride_y']}"
    if t == "fc":
        return f"fc {d['num_neurons']}"
    return t


def render_layers(p: dict) -> list[str]:
    impls = [i for i in ("ours", "torch", "numpy") if i in p["total"]]
    peak = p.get("peak_gflops")
    steps = ", ".join(f"{i} {p['steps'][i]}" for i in impls)
    lines = [f"per layer, training batch {p['batch']} (median over steps: {steps}); ms per "
             "step, GFLOP/s = 3 x forward FLOPs / (fwd + bwd)"
             + (f", % peak = GFLOP/s / the machine's measured peak ({peak:.1f} GFLOP/s at "
                "this thread count):" if peak else ":")]
    head = f"{'':3} {'layer':<20} {'out HxWxC':<10} {'MFLOP/img':>9}"
    head += "".join(f" | {i:>5} fwd {'bwd':>7} {'GFLOP/s':>7}" + (f" {'% peak':>6}" if peak else "")
                    for i in impls)
    lines.append(head)

    def gf(v):
        return f"{v:>7.1f}" if v is not None else f"{'-':>7}"

    def share(v):
        if not peak:
            return ""
        return f" {100 * v:>6.1f}" if v is not None else f" {'-':>6}"

    for r in p["rows"]:
        h, w, ch = r["out_shape"]
        line = f"{r['index']:>3} {r['layer']:<20} {f'{h}x{w}x{ch}':<10} {r['flops'] / 1e6:>9.2f}"
        for i in impls:
            line += (f" | {r[i]['forward_ms']:>9.3f} {r[i]['backward_ms']:>7.3f} "
                     f"{gf(r[i]['gflops'])}{share(r[i]['peak_share'])}")
        lines.append(line)
    pad = " " * 7 if peak else ""
    line = f"{'':3} {'update (momentum sgd)':<41}"
    lines.append(line + "".join(f" | {p['update_ms'][i]:>17.3f} {'':>7}{pad}" for i in impls))
    line = f"{'':3} {'total':<41}"
    lines.append(line + "".join(f" | {p['total'][i]['ms']:>17.3f} {gf(p['total'][i]['gflops'])}"
                                f"{share(p['total'][i]['peak_share'])}" for i in impls))
    if any(r["layer"].endswith(" wino") for r in p["rows"]):
        lines.append("    wino: our conv runs as Winograd F(4x4, 3x3), with 4x fewer multiplies "
                     "than the direct FLOPs counted here (its % peak can pass 100)")
    return lines
