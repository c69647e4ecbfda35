"""The scale layer (a constant factor) against NumPy and central differences, and the
learning-rate multipliers and fixed parameters that blocks pass on from their children."""

import numpy as np
import pytest

from engine.layers.base import Context, Workspace
from engine.layers.core import ScaleLayer
from engine.net import Net
from engine.spec.net_spec import parse_spec
from engine.train.param_groups import fixed_params, lr_multipliers
from tests.gradcheck import numerical_grad, rel_error


def scale_layer(shape, factor):
    return ScaleLayer({"type": "scale", "factor": factor, "in_shape": shape,
                       "out_shape": shape})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_forward_is_the_product(rng, dtype):
    layer = scale_layer((3, 2, 2), 1 / 9)
    x = rng.standard_normal((4, 3, 2, 2)).astype(dtype)
    out, _ = layer.forward(x, Context(training=True, workspace=Workspace()))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, x * dtype(1 / 9))


def test_scale_backward_matches_central_differences(rng):
    layer = scale_layer((2, 3, 1), -2.5)
    x = rng.standard_normal((3, 2, 3, 1))
    dout = rng.standard_normal(x.shape)
    ctx = Context(training=True, workspace=Workspace())

    def loss():
        out, _ = layer.forward(x, ctx)
        return float(np.sum(out * dout))
    _, cache = layer.forward(x, ctx)
    dx = layer.backward(dout, cache, {}, ctx)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-8


def test_scale_refuses_a_batch_of_the_wrong_shape(rng):
    with pytest.raises(ValueError, match=r"scale expects a batch of shape \(N, 3, 2, 2\)"):
        scale_layer((3, 2, 2), 2.0).forward(np.zeros((1, 2, 2, 2)), Context(training=False))


def test_blocks_pass_on_their_childrens_multipliers_and_fixed_gammas():
    bn = {"type": "batchnorm", "scale": False, "lr_mul": 16}
    spec = parse_spec([{"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 2},
                       {"type": "conv", "sx": 3, "pad": 1, "filters": 2, "bias": False},
                       {"type": "batchnorm"},
                       {"type": "residual", "layers": [
                           {"type": "conv", "sx": 3, "pad": 1, "filters": 2}, bn]},
                       {"type": "softmax", "num_classes": 2}])
    net = Net(spec, rng=np.random.default_rng(0))
    assert lr_multipliers(net) == {"3.layers.1.gamma": 16.0, "3.layers.1.beta": 16.0}
    assert fixed_params(net, 0) == ("3.layers.1.gamma",)
    names = {name for name, _, _ in net.named_params()}
    assert set(lr_multipliers(net)) <= names
