"""The "dirac" conv init (airbench94's): torch's default uniform bound, the identity in the
first filters; a net built from a spec with it starts so."""

import numpy as np
import pytest

from engine.layers.inits import dirac_uniform
from engine.net import Net
from engine.spec.net_spec import parse_spec


@pytest.mark.parametrize("shape", [(64, 24, 3, 3), (4, 8, 3, 3), (6, 2, 3, 5)])
def test_dirac_uniform_is_the_identity_then_uniform(shape):
    f, c, sy, sx = shape
    w = dirac_uniform(shape, np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32 and w.shape == shape and w.flags.c_contiguous
    k = min(f, c)
    for i in range(k):
        expected = np.zeros((c, sy, sx))
        expected[i, sy // 2, sx // 2] = 1.0
        np.testing.assert_array_equal(w[i], expected)
    rest = w[k:]
    bound = 1 / np.sqrt(c * sy * sx)
    assert np.all(np.abs(rest) <= bound)
    if rest.size > 1000:
        assert rest.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


def test_a_dirac_conv_passes_its_input_through_in_its_first_filters():
    spec = parse_spec([{"type": "input", "out_sx": 5, "out_sy": 5, "out_depth": 2},
                       {"type": "conv", "sx": 3, "pad": 1, "filters": 4, "bias": False,
                        "init": "dirac"},
                       {"type": "softmax", "num_classes": 2}])
    assert spec.layers[1]["init"] == "dirac" and parse_spec(spec.to_json()) == spec
    net = Net(spec, rng=np.random.default_rng(1), dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((3, 2, 5, 5))
    from engine.layers.base import Context, Workspace
    out, _ = net.layers[1].forward(x, Context(training=False, workspace=Workspace()))
    np.testing.assert_allclose(out[:, :2], x, atol=1e-12)
    assert not np.allclose(out[:, 2:], 0)
