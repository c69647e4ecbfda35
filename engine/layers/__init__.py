"""Layer classes; importing this package registers every layer type for spec building.
May import: engine.kernels."""

from engine.layers import activations, conv, core, losses, norms, pool  # noqa: F401
from engine.layers.base import LAYER_TYPES, Context, Layer, LossLayer, Workspace

__all__ = ["LAYER_TYPES", "Context", "Layer", "LossLayer", "Workspace"]
