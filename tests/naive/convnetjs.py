"""ConvNetJS, as its source does it, in plain loops: Net.toJSON() documents and their forward
pass, written from convnet_vol.js, convnet_net.js and the layer files (not from engine/). The
library itself runs in node through tests/naive/convnetjs_node.py.

A Vol is {"sx", "sy", "depth", "w"} with w[((sx * y) + x) * depth + d]; JSON.stringify of
its Float64Array w gives an object with numeric string keys, so `make_net_json` writes w
either way. `forward` runs a net in prediction mode (is_training = false) on an image the way
the ConvNetJS demos feed one: x.w[i] = pixel / 255 - 0.5.
"""

from __future__ import annotations

import math

import numpy as np


# --- writing Net.toJSON() ------------------------------------------------------------------
def vol_json(sx, sy, depth, values, as_object=False):
    w = [float(v) for v in values]
    return {"sx": sx, "sy": sy, "depth": depth,
            "w": {str(i): v for i, v in enumerate(w)} if as_object else w}


def make_net_json(layer_defs, rng, object_every=2):
    """makeLayers(layer_defs) + toJSON(), with random weights; every `object_every`-th Vol's
    w is written as an object with numeric keys (the Float64Array way)."""
    counter = [0]

    def vol(sx, sy, depth, scale):
        counter[0] += 1
        values = rng.standard_normal(sx * sy * depth) * scale
        return vol_json(sx, sy, depth, values, as_object=counter[0] % object_every == 0)

    defs = []
    for d in layer_defs:                     # desugar, as makeLayers does
        if d["type"] == "softmax":
            defs.append({"type": "fc", "num_neurons": d["num_classes"]})
        defs.append(dict(d))
        if d.get("activation") == "relu":
            defs.append({"type": "relu"})
    layers = []
    sx = sy = depth = None
    for d in defs:
        t = d["type"]
        if t == "input":
            sx, sy, depth = d["out_sx"], d["out_sy"], d["out_depth"]
            layers.append({"out_depth": depth, "out_sx": sx, "out_sy": sy, "layer_type": t})
            continue
        if t == "conv":
            fx, fy = d["sx"], d.get("sy", d["sx"])
            stride, pad = d.get("stride", 1), d.get("pad", 0)
            out_sx = math.floor((sx + pad * 2 - fx) / stride + 1)
            out_sy = math.floor((sy + pad * 2 - fy) / stride + 1)
            layer = {"sx": fx, "sy": fy, "stride": stride, "in_depth": depth,
                     "out_depth": d["filters"], "out_sx": out_sx, "out_sy": out_sy,
                     "layer_type": t, "l1_decay_mul": 0.0, "l2_decay_mul": 1.0, "pad": pad,
                     "filters": [vol(fx, fy, depth, 0.4) for _ in range(d["filters"])],
                     "biases": vol(1, 1, d["filters"], 0.1)}
            sx, sy, depth = out_sx, out_sy, d["filters"]
        elif t == "pool":
            fx, fy = d["sx"], d.get("sy", d["sx"])
            stride, pad = d.get("stride", 2), d.get("pad", 0)
            out_sx = math.floor((sx + pad * 2 - fx) / stride + 1)
            out_sy = math.floor((sy + pad * 2 - fy) / stride + 1)
            layer = {"sx": fx, "sy": fy, "stride": stride, "in_depth": depth,
                     "out_depth": depth, "out_sx": out_sx, "out_sy": out_sy,
                     "layer_type": t, "pad": pad}
            sx, sy = out_sx, out_sy
        elif t == "fc":
            n_in = sx * sy * depth
            layer = {"out_depth": d["num_neurons"], "out_sx": 1, "out_sy": 1, "layer_type": t,
                     "num_inputs": n_in, "l1_decay_mul": 0.0, "l2_decay_mul": 1.0,
                     "filters": [vol(1, 1, n_in, 0.3) for _ in range(d["num_neurons"])],
                     "biases": vol(1, 1, d["num_neurons"], 0.1)}
            sx, sy, depth = 1, 1, d["num_neurons"]
        elif t == "maxout":
            depth = depth // d.get("group_size", 2)
            layer = {"out_depth": depth, "out_sx": sx, "out_sy": sy, "layer_type": t,
                     "group_size": d.get("group_size", 2)}
        elif t == "lrn":
            layer = {"k": d["k"], "n": d["n"], "alpha": d["alpha"], "beta": d["beta"],
                     "out_sx": sx, "out_sy": sy, "out_depth": depth, "layer_type": t}
        elif t == "dropout":
            layer = {"out_depth": depth, "out_sx": sx, "out_sy": sy, "layer_type": t,
                     "drop_prob": d.get("drop_prob", 0.5)}
        elif t in ("softmax", "svm", "regression"):
            n_in = sx * sy * depth
            layer = {"out_depth": n_in, "out_sx": 1, "out_sy": 1, "layer_type": t,
                     "num_inputs": n_in}
            sx, sy, depth = 1, 1, n_in
        else:                                # relu, sigmoid, tanh
            layer = {"out_depth": depth, "out_sx": sx, "out_sy": sy, "layer_type": t}
        layers.append(layer)
    return {"layers": layers}


# --- the forward pass -------------------------------------------------------------------------
def _w(vol):
    w = vol["w"]
    n = vol["sx"] * vol["sy"] * vol["depth"]
    return [w[str(i)] for i in range(n)] if isinstance(w, dict) else list(w)


def image_to_vol(image):
    """uint8 (H, W, 3) -> (sx, sy, depth, w) with w = pixel / 255 - 0.5."""
    h, wd, c = image.shape
    w = [0.0] * (wd * h * c)
    for y in range(h):
        for x in range(wd):
            for d in range(c):
                w[((wd * y) + x) * c + d] = image[y, x, d] / 255.0 - 0.5
    return wd, h, c, w


def forward(net_json, image, dropout_scale="p"):
    """Prediction-mode output of the last layer, as a list. dropout_scale: what prediction
    multiplies by: "p", as ConvNetJS does (convnet_layers_dropout.js and every build of it), or
    "1-p", the expected value of what its training passes saw."""
    sx, sy, depth, v = image_to_vol(image)
    for layer in net_json["layers"]:
        t = layer["layer_type"]
        if t == "input":
            continue
        if t == "conv":
            out_sx, out_sy, out_depth = layer["out_sx"], layer["out_sy"], layer["out_depth"]
            stride, pad = layer["stride"], layer.get("pad", 0)
            biases = _w(layer["biases"])
            out = [0.0] * (out_sx * out_sy * out_depth)
            for d in range(out_depth):
                f = layer["filters"][d]
                fw = _w(f)
                x = -pad
                for ax in range(out_sx):
                    y = -pad
                    for ay in range(out_sy):
                        a = 0.0
                        for fx in range(f["sx"]):
                            for fy in range(f["sy"]):
                                for fd in range(f["depth"]):
                                    oy, ox = y + fy, x + fx
                                    if 0 <= oy < sy and 0 <= ox < sx:
                                        a += (fw[((f["sx"] * fy) + fx) * f["depth"] + fd]
                                              * v[((sx * oy) + ox) * depth + fd])
                        a += biases[d]
                        out[((out_sx * ay) + ax) * out_depth + d] = a
                        y += stride
                    x += stride
            sx, sy, depth, v = out_sx, out_sy, out_depth, out
        elif t == "pool":
            out_sx, out_sy = layer["out_sx"], layer["out_sy"]
            stride, pad = layer["stride"], layer.get("pad", 0)
            out = [0.0] * (out_sx * out_sy * depth)
            for d in range(depth):
                x = -pad
                for ax in range(out_sx):
                    y = -pad
                    for ay in range(out_sy):
                        a = -99999.0
                        for fx in range(layer["sx"]):
                            for fy in range(layer["sy"]):
                                oy, ox = y + fy, x + fx
                                if 0 <= oy < sy and 0 <= ox < sx:
                                    a = max(a, v[((sx * oy) + ox) * depth + d])
                        out[((out_sx * ay) + ax) * depth + d] = a
                        y += stride
                    x += stride
            sx, sy, v = out_sx, out_sy, out
        elif t == "fc":
            biases = _w(layer["biases"])
            out = []
            for i, f in enumerate(layer["filters"]):
                fw = _w(f)
                out.append(sum(v[d] * fw[d] for d in range(layer["num_inputs"])) + biases[i])
            sx, sy, depth, v = 1, 1, len(out), out
        elif t == "relu":
            v = [a if a >= 0 else 0.0 for a in v]
        elif t == "sigmoid":
            v = [1.0 / (1.0 + math.exp(-a)) for a in v]
        elif t == "tanh":
            v = [(math.exp(2 * a) - 1) / (math.exp(2 * a) + 1) for a in v]
        elif t == "maxout":
            g, n = layer["group_size"], layer["out_depth"]
            out = [0.0] * (sx * sy * n)
            for x in range(sx):
                for y in range(sy):
                    for i in range(n):
                        ix = i * g
                        out[((sx * y) + x) * n + i] = max(
                            v[((sx * y) + x) * depth + ix + j] for j in range(g))
            depth, v = n, out
        elif t == "lrn":
            n2 = layer["n"] // 2
            out = [0.0] * len(v)
            for x in range(sx):
                for y in range(sy):
                    for i in range(depth):
                        total = sum(v[((sx * y) + x) * depth + j] ** 2
                                    for j in range(max(0, i - n2), min(i + n2, depth - 1) + 1))
                        scale = layer["k"] + layer["alpha"] / layer["n"] * total
                        ix = ((sx * y) + x) * depth + i
                        out[ix] = v[ix] * scale ** -layer["beta"]
            v = out
        elif t == "dropout":
            p = layer["drop_prob"]
            v = [a * ((1 - p) if dropout_scale == "1-p" else p) for a in v]
        elif t == "softmax":
            top = max(v)
            es = [math.exp(a - top) for a in v]
            v = [e / sum(es) for e in es]
        elif t in ("svm", "regression"):
            pass
        else:
            raise ValueError(f"no such ConvNetJS layer: {t}")
    return v


def forward_batch(net_json, images, dropout_scale="p"):
    return np.array([forward(net_json, image, dropout_scale) for image in images])
