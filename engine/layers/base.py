"""The contract every layer follows.

Activations are 4-D arrays (N, C, H, W); an fc layer's output is (N, K, 1, 1). Shapes without
the batch axis are (C, H, W) tuples. Training runs in float32; gradient checks run the same
layers in float64 (`Layer.init(dtype=np.float64)`).

A layer holds its parameters (and, for batch norm, running statistics) and nothing about any
particular call: `forward` returns `(out, cache)` and `backward(dout, cache, grads, ctx)` gets
that cache back. Buffers come from the caller's `Workspace`, so the training worker and a
classify request never share (or overwrite) each other's activations.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

Shape = tuple[int, int, int]  # (C, H, W)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what layers compute in


class Workspace:
    """A caller-owned arena of reusable buffers, keyed by (owner, name).

    Training reallocates nothing from step to step while the batch size stays the same; a
    classify request uses its own Workspace and so never touches training's buffers. An array
    handed out is overwritten by the next call with the same key: copy what must outlive a step.

    Buffers live exactly as long as their owner (a layer): the workspace holds each owner
    through a weak reference whose callback drops that owner's buffers when it dies. Keys use
    id(owner), which a new object may reuse once the old one is gone, but by then its buffers
    have been dropped (the callback runs before the memory is freed). So a workspace that
    outlives many nets (a periodic test, an inspector) holds the buffers of live layers only.
    """

    ALIGN_BYTES = 64

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, str], np.ndarray] = {}
        # id(owner) -> (weak reference to the owner, the names it holds buffers under)
        self._owners: dict[int, tuple[weakref.ref, set[str]]] = {}

    def _store(self, owner: object, key: tuple[int, str], buf: np.ndarray) -> None:
        entry = self._owners.get(key[0])
        if entry is None:
            # The callback holds the workspace weakly: an owner must not keep it alive.
            this = weakref.ref(self)

            def drop(_ref, token=key[0]):
                workspace = this()
                if workspace is not None:
                    workspace._drop(token)

            entry = self._owners[key[0]] = (weakref.ref(owner, drop), set())
        entry[1].add(key[1])
        self._buffers[key] = buf

    def _drop(self, token: int) -> None:
        # May run in any thread (whichever drops the owner's last reference): single dict
        # operations only, each atomic under the GIL.
        entry = self._owners.pop(token, None)
        if entry is not None:
            for name in list(entry[1]):
                self._buffers.pop((token, name), None)

    def empty(self, owner: object, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        # Called ~30 times a training step: no conversions unless the shape comes as a list.
        shape = shape if type(shape) is tuple else tuple(shape)
        key = (id(owner), name)
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._store(owner, key, buf)
        return buf

    def empty_aligned(self, owner: object, name: str, shape: tuple[int, ...],
                      dtype) -> np.ndarray:
        """Like `empty`, but the first element sits on a 64-byte boundary. The view is kept
        too: finding the boundary again (ndarray.ctypes) would cost more than a small kernel."""
        shape = shape if type(shape) is tuple else tuple(shape)
        key = (id(owner), name)
        view = self._buffers.get(key)
        if view is None or view.shape != shape or view.dtype != dtype:
            dtype = np.dtype(dtype)
            size = int(np.prod(shape))
            buf = np.empty(size + self.ALIGN_BYTES // dtype.itemsize, dtype)
            skip = (-buf.ctypes.data) % self.ALIGN_BYTES // dtype.itemsize
            view = buf[skip:skip + size].reshape(shape)
            self._store(owner, key, view)
        return view

    def zeros(self, owner: object, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        buf = self.empty(owner, name, shape, dtype)
        buf.fill(0)
        return buf

    def owners(self) -> int:
        """How many live owners hold buffers here."""
        return len(self._owners)

    def nbytes(self) -> int:
        """Bytes of the buffers held (views count their own extent)."""
        return sum(buf.nbytes for buf in list(self._buffers.values()))

    def clear(self) -> None:
        self._buffers.clear()
        self._owners.clear()


@dataclass
class Context:
    """What one forward/backward pass needs besides the data."""

    training: bool = False
    workspace: Workspace = field(default_factory=Workspace)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    # When a list, Net appends ("forward" | "backward", layer index, seconds) per layer.
    timings: list | None = None
    # False when nobody reads dL/d(net input) (training does not; saliency maps do): the
    # net's first weighted layer then skips computing it, its largest backward product.
    input_grad: bool = True
    # When a dict, blocks record each inner layer's output under id(layer) (the patch
    # collector reads the convs inside residual and concat blocks from it).
    inner_outputs: dict | None = None


def checked_batch(layer: Layer, x: np.ndarray, shape: tuple[int, ...], what: str,
                  dtype=None) -> np.ndarray:
    """x as a C-contiguous (N, *shape) float array (of `dtype` when given, else x's own),
    or a ValueError that names the layer: kernels check nothing themselves."""
    if x.ndim != 4 or x.shape[1:] != tuple(shape) or x.shape[0] < 1:
        dims = ", ".join(map(str, shape))
        raise ValueError(f"{layer.type} layer: {what} must have shape (N, {dims}) with N >= 1, "
                         f"got {x.shape}")
    if dtype is None:
        if x.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{layer.type} layer: {what} must be float32 or float64, "
                             f"got {x.dtype}")
        dtype = x.dtype
    if x.dtype == dtype and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=dtype)


class Layer:
    """Base class. Subclasses set `type` and are built from a validated, normalised LayerDef.

    The LayerDef is a plain dict produced by `engine.spec.net_spec` (every optional key filled
    in, plus `in_shape` and `out_shape` as (C, H, W)); constructors trust it and validate
    nothing.
    """

    type: ClassVar[str] = ""
    is_loss: ClassVar[bool] = False

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.in_shape: Shape = tuple(d["in_shape"])
        self.out_shape: Shape = tuple(d["out_shape"])
        self.params: dict[str, np.ndarray] = {}
        # Per-parameter (l1_decay_mul, l2_decay_mul), as in ConvNetJS (biases: 0, 0).
        self.decay: dict[str, tuple[float, float]] = {}
        # Non-trainable state saved in snapshots (batch norm running mean/var).
        self.buffers: dict[str, np.ndarray] = {}

    def init(self, rng: np.random.Generator, dtype=np.float32) -> None:
        """Allocate and initialise parameters and buffers (no-op for parameter-free layers)."""

    def forward(self, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, cache: Any, grads: dict[str, np.ndarray],
                 ctx: Context) -> np.ndarray:
        """Return dx; ADD parameter gradients into grads[name] (same keys/shapes as params)."""
        raise NotImplementedError

    def named_params(self, prefix: str = ""):
        """Yield (name, array, (l1_mul, l2_mul)); blocks override to prefix their children."""
        for name, arr in self.params.items():
            yield prefix + name, arr, self.decay.get(name, (0.0, 0.0))

    def named_buffers(self, prefix: str = ""):
        for name, arr in self.buffers.items():
            yield prefix + name, arr

    def __repr__(self) -> str:
        c, h, w = self.out_shape
        return f"{type(self).__name__}(out={h}x{w}x{c})"


class LossLayer(Layer):
    """A final layer. forward gives what a user reads (probabilities for softmax, scores for
    svm, values for regression); `loss` gives the mean loss over the batch and its gradient."""

    is_loss: ClassVar[bool] = True

    def loss(self, out: np.ndarray, cache: Any, y: np.ndarray, ctx: Context
             ) -> tuple[float, np.ndarray]:
        """y: int64 labels (N,) for softmax/svm, float targets (N, K) for regression.
        Returns (mean data loss, dx) with dx of the input's shape."""
        raise NotImplementedError


LAYER_TYPES: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer type buildable from specs by its `type` name."""
    LAYER_TYPES[cls.type] = cls
    return cls
