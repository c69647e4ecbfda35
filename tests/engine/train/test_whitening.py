"""The patch-whitening init on real CIFAR-10 pictures: after it, the first conv's outputs on
those very patches have the identity as their second moment (up to eps), through the conv
layer's own forward pass; the optimizer leaves its weights alone."""

import numpy as np
import pytest

from engine.data.normalize import Normalization, preprocess
from engine.layers.base import Context, Workspace
from engine.net import Net
from engine.spec.net_spec import parse_spec
from engine.train.options import TrainError
from engine.train.whitening import (patch_second_moment, sample_positions, whiten_first_conv,
                                    whitened_weights, whitening_filters)
from tests.engine.cifar_sample import cifar_test_images

INPUT = {"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3}
NORMALIZATION = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


class ArraySplit:
    """What the whitening reads of a data set's split: its length and take()."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def take(self, positions):
        return self.images[positions]


@pytest.fixture(scope="module")
def images():
    return cifar_test_images(20)[0]             # 200 real pictures, uint8 (N, 32, 32, 3)


def whiten_net(sx=2, sy=None, filters=None):
    sy = sy or sx
    conv = {"type": "conv", "sx": sx, "sy": sy, "filters": filters or 2 * 3 * sx * sy,
            "init": "whiten"}
    return Net(parse_spec([INPUT, conv, {"type": "softmax", "num_classes": 10}]),
               rng=np.random.default_rng(0))


def first_conv_outputs(net, x):
    out, _ = net.layers[1].forward(x, Context(training=False, workspace=Workspace()))
    return out


@pytest.mark.parametrize("sx, sy", [(2, 2), (3, 2)])
def test_outputs_on_the_patches_are_white(images, sx, sy):
    net = whiten_net(sx, sy)
    eps = 1e-9                                   # no damping: exactly white
    eigenvalues = whiten_first_conv(net, ArraySplit(images), NORMALIZATION, count=len(images),
                                    eps=eps)
    k = 3 * sx * sy
    assert eigenvalues.shape == (k,) and np.all(np.diff(eigenvalues) <= 0)
    x = preprocess(images, NORMALIZATION)
    y = first_conv_outputs(net, x).astype(np.float64)            # (N, 2K, H', W')
    assert y.shape == (len(images), 2 * k, 33 - sy, 33 - sx)
    first = y[:, :k].transpose(1, 0, 2, 3).reshape(k, -1)
    second_moment = first @ first.T / first.shape[1]
    np.testing.assert_allclose(second_moment, np.eye(k), atol=2e-3)
    np.testing.assert_array_equal(y[:, k:], -y[:, :k])           # the +/- pair
    assert np.all(net.layers[1].params["b"] == 0)


def test_eps_damps_the_weak_directions_as_stated(images):
    net = whiten_net()
    eps = 5e-4
    eigenvalues = whiten_first_conv(net, ArraySplit(images), NORMALIZATION, count=len(images),
                                    eps=eps)
    y = first_conv_outputs(net, preprocess(images, NORMALIZATION)).astype(np.float64)
    first = y[:, :12].transpose(1, 0, 2, 3).reshape(12, -1)
    second_moment = first @ first.T / first.shape[1]
    want = np.diag(eigenvalues / (eigenvalues + eps))
    np.testing.assert_allclose(second_moment, want, atol=2e-3)
    assert want[0, 0] > 0.99 and want[-1, -1] < want[0, 0]      # the weakest is damped


def test_second_moment_matches_an_explicit_loop_over_patches(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    total, n = patch_second_moment(x, 2, 3)
    want = np.zeros((18, 18))
    count = 0
    for i in range(2):
        for r in range(3):
            for c in range(3):
                p = x[i, :, r:r + 2, c:c + 3].reshape(-1)         # (c, y, x), as conv weights
                want += np.outer(p, p)
                count += 1
    assert n == count
    np.testing.assert_allclose(total, want, rtol=1e-12)


def test_filters_are_eigenvectors_over_root_eigenvalues():
    cov = np.diag([4.0, 1.0, 9.0])
    filters, eigenvalues = whitening_filters(cov, eps=0.0)
    np.testing.assert_allclose(eigenvalues, [9.0, 4.0, 1.0])
    np.testing.assert_allclose(np.abs(filters[:3]), [[0, 0, 1 / 3], [0.5, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(filters[3:], -filters[:3])


def test_the_sample_is_seeded_spread_and_bounded():
    a = sample_positions(50000, 5000, seed=3)
    assert len(a) == 5000 and len(set(a)) == 5000 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, sample_positions(50000, 5000, seed=3))
    assert a.max() > 45000 and a.min() < 5000          # not just the first classes
    assert len(sample_positions(30, 5000)) == 30


def test_nets_without_a_whitening_conv_are_left_alone(images):
    net = Net(parse_spec([INPUT, {"type": "conv", "sx": 2, "filters": 24},
                          {"type": "softmax", "num_classes": 10}]))
    before = net.layers[1].params["w"].copy()
    assert whiten_first_conv(net, ArraySplit(images), NORMALIZATION) is None
    assert np.array_equal(net.layers[1].params["w"], before)
    assert whitened_weights(net) == ()
    assert whitened_weights(whiten_net()) == ("1.w",)


def test_an_empty_training_split_is_refused():
    with pytest.raises(TrainError, match="training split is empty"):
        whiten_first_conv(whiten_net(), ArraySplit(np.zeros((0, 32, 32, 3), np.uint8)),
                          NORMALIZATION)
