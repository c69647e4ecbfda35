"""ONNX export: a net as a standard ONNX model (opset 17) that onnxruntime runs and Netron shows.

The graph takes "pixels", float32 (batch, 3, H, W): RGB values 0..255 in NCHW order, as a
decoded image gives them. Its first nodes are the net's input normalisation, (pixels - mean) /
std per channel (the snapshot's preprocess), so the model needs nothing from this project.
Then each layer becomes the standard operators that compute exactly what engine/layers does
when predicting (float rounding aside):
  conv         Conv, pads (pad_y, pad_x) on both sides, floor rounding (ONNX's, and ours)
  pool         MaxPool, or AveragePool with count_include_pad=0 (ours averages the in-bounds
               values only); padding never wins a max in either
  fc           Flatten (C, H, W order), Gemm with transB, Reshape back to (batch, K, 1, 1)
  maxout       Reshape (batch, C/g, g, H, W), ReduceMax over the group axis: ours takes the
               max over consecutive channels k*g .. k*g + g - 1
  dropout      Dropout with its ratio: the identity when predicting, as ours (inverted dropout)
  batchnorm    BatchNormalization with the running statistics (inference mode)
  lrn          LRN, bias k: both sum x^2 over the n channels centred on each (specs
               require an odd n) and scale it by alpha / n
  residual     the inner chain and the shortcut chain (the identity when empty), then Add
  concat       each branch on the same input, then Concat on the channel axis
  softmax      Flatten, Softmax -> "probabilities"; svm -> "scores"; regression -> "values"
               (the loss layers' outputs when predicting; shape (batch, outputs))
  gelu         x * 0.5 * (1 + erf(x / sqrt 2)) as Div, Erf, Add, Mul, Mul (Gelu itself
               arrives in opset 20)
  scale        Mul by the constant factor
plus Relu, LeakyRelu, Sigmoid, Tanh and GlobalAveragePool. The class names (a JSON list) and
the normalisation are in the model's metadata.

`onnx` is an optional dependency (the `export` extra); without it export says how to install
it. A layer type with no translation here is refused with an error that names it.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8           # the oldest IR that carries opset 17: what most runtimes read
INSTALL_HINT = ("ONNX export needs the onnx package: pip install 'convnet-demo[export]' "
                "(or pip install onnx onnxruntime)")
OUTPUT_NAMES = {"softmax": "probabilities", "svm": "scores", "regression": "values"}


class OnnxExportError(ValueError):
    """A net that cannot be written as ONNX; `layer` is the index path of the layer at fault."""

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


class OnnxMissingError(OnnxExportError):
    """The onnx package is not installed (INSTALL_HINT says how to get it)."""


def onnx_available() -> bool:
    """Whether the onnx package is installed (found, not imported: importing takes a second)."""
    try:
        return importlib.util.find_spec("onnx") is not None
    except (ImportError, ValueError):       # sys.modules["onnx"] set to None, or broken
        return False


class _Graph:
    """Nodes and initializers under unique names, built layer by layer."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []

    def const(self, name: str, array: np.ndarray) -> str:
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _window(layer) -> dict[str, Any]:
    d = layer.d
    return {"kernel_shape": [d["sy"], d["sx"]], "strides": [d["stride_y"], d["stride_x"]],
            "pads": [d["pad_y"], d["pad_x"], d["pad_y"], d["pad_x"]]}


def _layer(g: _Graph, layer, x: str, path: str) -> str:
    """Nodes computing `layer` (at index path `path`) on tensor x; returns the output's name."""
    kind, name = layer.type, f"{path}_{layer.type}"
    if kind == "input":
        return x
    if kind == "conv":
        inputs = [x, g.const(f"{name}.w", layer.params["w"])]
        if "b" in layer.params:
            inputs.append(g.const(f"{name}.b", layer.params["b"]))
        return g.node("Conv", inputs, name, **_window(layer))
    if kind == "fc":
        flat = g.node("Flatten", [x], f"{name}.flat", axis=1)
        inputs = [flat, g.const(f"{name}.w", layer.params["w"])]
        if "b" in layer.params:
            inputs.append(g.const(f"{name}.b", layer.params["b"]))
        out = g.node("Gemm", inputs, f"{name}.gemm", transB=1)
        shape = g.const(f"{name}.shape", np.array([0, layer.out_shape[0], 1, 1], np.int64))
        return g.node("Reshape", [out, shape], name)
    if kind == "pool":
        if layer.d["mode"] == "max":
            return g.node("MaxPool", [x], name, **_window(layer))
        return g.node("AveragePool", [x], name, count_include_pad=0, **_window(layer))
    if kind == "global_avg_pool":
        return g.node("GlobalAveragePool", [x], name)
    if kind in ("relu", "sigmoid", "tanh"):
        return g.node(kind.capitalize(), [x], name)
    if kind == "leaky_relu":
        return g.node("LeakyRelu", [x], name, alpha=float(layer.d["alpha"]))
    if kind == "gelu":
        # Gelu is an operator from opset 20 on; before it, x * 0.5 * (1 + erf(x / sqrt 2)) in
        # this node order, the pattern onnxruntime fuses back into one Gelu kernel.
        scaled = g.node("Div", [x, g.const(f"{name}.sqrt2", np.array(np.sqrt(2.0)))],
                        f"{name}.div")
        erf = g.node("Erf", [scaled], f"{name}.erf")
        cdf2 = g.node("Add", [erf, g.const(f"{name}.one", np.array(1.0))], f"{name}.add")
        doubled = g.node("Mul", [x, cdf2], f"{name}.mul")
        return g.node("Mul", [doubled, g.const(f"{name}.half", np.array(0.5))], name)
    if kind == "scale":
        return g.node("Mul", [x, g.const(f"{name}.factor", np.array(layer.factor))], name)
    if kind == "maxout":
        c, h, w = layer.in_shape
        group = layer.d["group_size"]
        if c % group:
            raise OnnxExportError(f"layer {path} (maxout): {c} channels do not split into "
                                  f"groups of {group}", path)
        shape = g.const(f"{name}.shape", np.array([0, c // group, group, h, w], np.int64))
        grouped = g.node("Reshape", [x, shape], f"{name}.groups")
        return g.node("ReduceMax", [grouped], name, axes=[2], keepdims=0)
    if kind == "dropout":
        ratio = g.const(f"{name}.ratio", np.array(layer.d["drop_prob"], np.float32))
        return g.node("Dropout", [x, ratio], name)
    if kind == "batchnorm":
        inputs = [x] + [g.const(f"{name}.{key}", arr) for key, arr in (
            ("gamma", layer.params["gamma"]), ("beta", layer.params["beta"]),
            ("running_mean", layer.buffers["running_mean"]),
            ("running_var", layer.buffers["running_var"]))]
        return g.node("BatchNormalization", inputs, name, epsilon=float(layer.d["eps"]))
    if kind == "lrn":
        # Ours sums n//2 channels each side and scales by alpha/n: for an odd n (what specs
        # allow) that is ONNX's size n, alpha; an even n would need size n+1, alpha*(n+1)/n.
        n = int(layer.d["n"])
        size = 2 * (n // 2) + 1
        return g.node("LRN", [x], name, size=size, alpha=float(layer.d["alpha"]) * size / n,
                      beta=float(layer.d["beta"]), bias=float(layer.d["k"]))
    if kind == "residual":
        inner = _chain(g, layer.children["layers"], x, f"{path}.layers")
        short = _chain(g, layer.children["shortcut"], x, f"{path}.shortcut")
        return g.node("Add", [inner, short], name)
    if kind == "concat":
        outs = [_chain(g, layers, x, f"{path}.{chain}")
                for chain, layers in layer.children.items()]
        return g.node("Concat", outs, name, axis=1)
    if kind in OUTPUT_NAMES:
        flat = g.node("Flatten", [x], f"{name}.flat", axis=1)
        if kind == "softmax":
            return g.node("Softmax", [flat], OUTPUT_NAMES[kind], axis=1)
        return g.node("Identity", [flat], OUTPUT_NAMES[kind])
    raise OnnxExportError(f"layer {path} ({kind}): there is no ONNX translation for a {kind} "
                          "layer, so this net cannot be exported to ONNX", path)


def _chain(g: _Graph, layers, x: str, path: str) -> str:
    for j, layer in enumerate(layers):
        x = _layer(g, layer, x, f"{path}.{j}")
    return x


def onnx_model(net, preprocess: dict, classes: list[str], *, name: str = "convnet-demo"):
    """The net as an onnx.ModelProto, checked by onnx.checker (see the module docstring)."""
    try:
        import onnx
    except ImportError:
        raise OnnxMissingError(INSTALL_HINT) from None
    c, h, w = net.input_shape
    if c != 3:
        raise OnnxExportError(f"the net takes {c} input channels; the exported model reads RGB "
                              "images (3 channels)", "0")
    g = _Graph(onnx)
    mean = g.const("preprocess.mean", np.array(preprocess["mean"], np.float64).reshape(1, 3, 1, 1))
    std = g.const("preprocess.std", np.array(preprocess["std"], np.float64).reshape(1, 3, 1, 1))
    x = g.node("Div", [g.node("Sub", ["pixels", mean], "centred"), std], "normalised")
    for i, layer in enumerate(net.layers):
        x = _layer(g, layer, x, str(i))
    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("pixels", float32, ["batch", 3, h, w])],
        [helper.make_tensor_value_info(x, float32, ["batch", net.spec.num_outputs])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="convnet-demo",
                              doc_string="pixels: float32 (batch, 3, H, W), RGB values 0..255; "
                                         "the first nodes normalise them as the net was trained")
    helper.set_model_props(model, {
        "classes": json.dumps(list(classes)),
        "preprocess": json.dumps({"mean": list(preprocess["mean"]),
                                  "std": list(preprocess["std"])}),
        "spec": json.dumps(net.spec.to_json())})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net, preprocess: dict, classes: list[str]) -> bytes:
    """The serialised ONNX model of `net` (see onnx_model)."""
    return onnx_model(net, preprocess, classes).SerializeToString()
