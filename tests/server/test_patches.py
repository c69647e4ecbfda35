"""The patch collector (server/patches.py): its top nine per channel equal a brute-force NumPy
top nine over every activation of the test images; each conv's window is exactly the set of
input pixels its output position depends on (checked by perturbing every pixel of a linear
net); the convs inside residual and concat blocks are covered as the top-level ones; it
follows the run (a new test result starts a scan, a new net drops the result) and keeps to
its share of the worker's time while training."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from engine.data.normalize import preprocess
from engine.layers.base import Context
from engine.net import Net
from engine.spec.net_spec import parse_spec
from server import patches
from server.patches import (
    BATCH,
    TOP,
    PatchCollector,
    TopK,
    conv_layers,
    layer_windows,
    sample_positions,
)
from server.settings import Settings
from tests.server.tiny import tiny_dataset

TWO_CONVS = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 5, "stride": 1, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "conv", "sx": 3, "sy": 2, "filters": 6, "stride": 1, "pad_x": 1},
    {"type": "softmax", "num_classes": 2},
]
# Convs at the top level and inside a residual block and a concat, by summary-table index.
BLOCKS = [
    {"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 5, "stride": 1, "pad": 1, "activation": "relu"},
    {"type": "pool", "sx": 2, "stride": 2},
    {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 5, "pad": 1},
                                    {"type": "relu"},
                                    {"type": "conv", "sx": 3, "filters": 5, "pad": 1}],
     "shortcut": []},
    {"type": "concat", "branches": [[{"type": "conv", "sx": 1, "filters": 2}],
                                    [{"type": "conv", "sx": 3, "filters": 3, "pad": 1},
                                     {"type": "relu"}]]},
    {"type": "conv", "sx": 3, "sy": 2, "filters": 6, "stride": 1, "pad_x": 1},
    {"type": "softmax", "num_classes": 2},
]
# (the first conv's "activation" becomes a relu layer of its own: 2)
BLOCK_CONVS = {"1", "4.layers.0", "4.layers.2", "5.branches.0.0", "5.branches.1.0", "6"}
# Linear (no activation, average pooling), so every input pixel in a window moves the output.
WINDOWS = [
    {"type": "input", "out_sx": 9, "out_sy": 9, "out_depth": 3},
    {"type": "conv", "sx": 3, "filters": 2, "stride": 2, "pad": 1},
    {"type": "pool", "sx": 2, "stride": 1, "pad": 1, "mode": "avg"},
    {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 2, "pad": 1}],
     "shortcut": []},
    {"type": "conv", "sx": 3, "sy": 2, "filters": 3, "stride": 2, "pad_x": 1,
     "rounding": "floor"},
    {"type": "fc", "num_neurons": 2},
    {"type": "softmax", "num_classes": 2},
]


def trainer_of(net, dataset, step=7, test=None):
    """What the collector reads of a Trainer."""
    return SimpleNamespace(net=net, dataset=dataset, normalization=dataset.normalization,
                           step_count=step, last_test={"step": step} if test is None else test)


def outputs_of(net, x):
    """{conv index: its output} for the batch x, the convs inside blocks too."""
    ctx = Context(training=False, inner_outputs={})
    _, _, outputs = net.forward(x, ctx)
    return {index: np.array(outputs[int(index)] if index.isdigit() else
                            ctx.inner_outputs[id(layer)])
            for index, layer in conv_layers(net).items()}


def brute_force(net, dataset, positions):
    """{conv index: (values, images, positions)}: every activation of every image at once,
    then per channel the nine largest per-image maxima (ties: the lower image first)."""
    x = preprocess(dataset.test.take(positions), dataset.normalization).astype(net.dtype)
    found = {}
    for index, act in outputs_of(net, x).items():
        act = act.astype(np.float64)
        n, c, _, w = act.shape
        values, images, places = [], [], []
        for channel in range(c):
            maxima = [(act[k, channel].max(), positions[k],
                       divmod(int(np.argmax(act[k, channel])), w)) for k in range(n)]
            best = sorted(maxima, key=lambda m: (-m[0], m[1]))[:TOP]
            values.append([m[0] for m in best])
            images.append([m[1] for m in best])
            places.append([m[2] for m in best])
        found[index] = (np.array(values), np.array(images), np.array(places))
    return found


def numpy_conv(x, w, b, pad):
    """A plain NumPy stride-1 convolution (N, C, H, W) * (F, C, k, k), float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    f, _, k, _ = w.shape
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    out = np.zeros((x.shape[0], f, h, wd))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nchw,fc->nfhw", x[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
    return out + b[None, :, None, None]


@pytest.mark.parametrize("limit", [1000, 25])
def test_the_top_nine_equal_a_brute_force_top_nine(limit):
    dataset = tiny_dataset(test=40)
    net = Net(parse_spec(BLOCKS), rng=np.random.default_rng(3))
    positions = sample_positions(40, limit)
    assert len(positions) == min(40, limit) and len(positions) > BATCH  # batches merge
    collector = PatchCollector(limit, 0.05)
    collector.follow(trainer_of(net, dataset))
    collector.finish()
    result = collector.result
    assert result.images_scanned == len(positions)
    assert set(result.top) == set(result.windows) == BLOCK_CONVS
    expected = brute_force(net, dataset, positions)
    assert set(expected) == BLOCK_CONVS
    # the engine's convs agree with plain NumPy (so the reference is not the engine's): the
    # first one on the images, the residual's first inner one on the block's input
    x = preprocess(dataset.test.take(positions), dataset.normalization)
    ctx = Context(training=False, inner_outputs={})
    block_input = np.array(net.forward(x, ctx)[2][3])
    for index, inputs in (("1", x), ("4.layers.0", block_input)):
        conv = conv_layers(net)[index]
        reference = numpy_conv(inputs, conv.params["w"], conv.params["b"], 1)
        found = reference.reshape(len(x), conv.filters, -1).max(axis=2).T.max(axis=1)
        assert np.allclose(found, expected[index][0][:, 0], rtol=1e-5, atol=1e-5), index
    for index, (values, images, places) in expected.items():
        top = result.top[index]
        assert top.values.shape == (conv_layers(net)[index].out_shape[0], TOP)    # bounded
        assert np.array_equal(top.images, images), index
        assert np.array_equal(top.positions, places), index
        assert np.allclose(top.values, values, rtol=1e-6, atol=1e-6), index


def test_fewer_images_than_nine_leave_the_rest_empty_and_nan_counts_as_least():
    top = TopK(2, k=4)
    act = np.array([[[[1.0, 3.0]], [[np.nan, 0.0]]],
                    [[[2.0, 3.0]], [[-5.0, -6.0]]]])          # (N=2, C=2, 1, 2)
    top.add(act, np.array([10, 11]))
    assert top.images.tolist() == [[10, 11, -1, -1], [11, 10, -1, -1]]
    assert top.values[0, :2].tolist() == [3.0, 3.0]            # a tie: the lower image first
    assert top.positions[0, :2].tolist() == [[0, 1], [0, 1]]
    assert top.values[1, :2].tolist() == [-5.0, -np.inf]


def window_pixels(net, index: str):
    """{output position: the input pixels it depends on}, by moving each pixel in turn."""
    c, h, w = net.input_shape
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(1, c, h, w))
    base = outputs_of(net, x)[index]
    depends: dict[tuple[int, int], set] = {}
    for py in range(h):
        for px in range(w):
            moved = x.copy()
            moved[0, :, py, px] += 1.0
            changed = np.abs(outputs_of(net, moved)[index] - base)[0].max(axis=0) > 1e-9
            for y, xx in zip(*np.nonzero(changed)):
                depends.setdefault((int(y), int(xx)), set()).add((py, px))
    return depends, base.shape[2:]


def test_each_conv_window_is_exactly_what_its_output_depends_on():
    spec = parse_spec(WINDOWS)
    net = Net(spec, dtype=np.float64)
    for layer in net.layers:       # positive weights: nothing cancels inside a window
        for arr in layer.params.values():
            arr[...] = np.abs(arr) + 0.1
    windows = layer_windows(spec)
    assert set(windows) == {"1", "3.layers.0", "4"}       # the one inside the block too
    for index in windows:
        depends, (out_h, out_w) = window_pixels(net, index)
        for y in range(out_h):
            for x in range(out_w):
                top, left, h, w = windows[index].box(y, x, 9, 9)
                box = {(py, px) for py in range(top, top + h) for px in range(left, left + w)}
                assert depends[(y, x)] == box, (index, y, x, windows[index])
    # a window reaching past the image is clipped: conv 1's corner sees 2x2 of its 3x3
    assert windows["1"].box(0, 0, 9, 9) == (0, 0, 2, 2)


def test_it_follows_the_run():
    dataset = tiny_dataset(test=40)
    net = Net(parse_spec(TWO_CONVS))
    collector = PatchCollector(1000, 0.05)
    trainer = trainer_of(net, dataset, test={"step": 7})
    collector.follow(trainer)
    assert collector.scanning == {"step": 7, "test_step": 7, "done": 0, "of": 40}
    collector.finish()
    first = collector.result
    assert first.step == 7 and collector.scanning is None
    collector.follow(trainer)                            # nothing new: nothing starts
    assert collector.scanning is None and collector.result is first
    trainer.last_test, trainer.step_count = {"step": 9}, 9     # a new test result
    collector.follow(trainer)
    assert collector.scanning["step"] == 9 and collector.result is first  # answers meanwhile
    collector.finish()
    assert collector.result.step == 9 and collector.result.id > first.id
    trainer.net, trainer.last_test = Net(parse_spec(TWO_CONVS)), None    # a reset, a new net
    collector.follow(trainer)
    assert collector.result is None and collector.scanning is None


def test_a_test_result_during_a_scan_starts_the_next_one_when_it_ends():
    dataset = tiny_dataset(test=40)
    collector = PatchCollector(1000, 0.05)
    trainer = trainer_of(Net(parse_spec(TWO_CONVS)), dataset, test={"step": 7})
    collector.follow(trainer)
    collector.advance(paused=False)                      # a batch of the scan of step 7
    trainer.last_test, trainer.step_count = {"step": 9}, 10
    collector.follow(trainer)                            # it goes on: never restarted only
    assert collector.scanning["step"] == 7 and collector.scanning["done"] == BATCH
    collector.finish()
    assert collector.result.step == 7 and collector.scanning is None
    collector.follow(trainer)                            # then the newer one, on weights now
    assert collector.scanning == {"step": 10, "test_step": 9, "done": 0, "of": 40}
    collector.finish()
    collector.follow(trainer)
    assert collector.result.step == 10 and collector.scanning is None


def test_the_scan_uses_the_weights_of_its_start_not_the_live_ones():
    dataset = tiny_dataset(test=40)
    net = Net(parse_spec(TWO_CONVS), rng=np.random.default_rng(1))
    expected = brute_force(net, dataset, np.arange(40))
    collector = PatchCollector(1000, 0.05)
    collector.follow(trainer_of(net, dataset))
    for _, arr, _ in net.named_params():      # training goes on meanwhile
        arr *= -1
    collector.finish()
    assert np.array_equal(collector.result.top["1"].images, expected["1"][1])


def test_while_training_it_keeps_to_its_share_of_the_time(monkeypatch):
    dataset = tiny_dataset(test=100)
    collector = PatchCollector(1000, 0.25)
    collector.follow(trainer_of(Net(parse_spec(TWO_CONVS)), dataset))
    collector.advance(paused=False)                      # a batch at once
    assert collector.scanning["done"] == BATCH
    started = time.perf_counter()
    collector.advance(paused=False)                      # no other work since: none
    assert collector.scanning["done"] == BATCH
    spent = -collector._credit
    assert spent > 0
    time.sleep(max(0.0, spent / 0.25 + 0.05 - (time.perf_counter() - started)))
    collector.advance(paused=False)                      # the loop did 1/share of it
    assert collector.scanning["done"] == 2 * BATCH
    assert collector._credit < 0                         # ...and is in debt again
    monkeypatch.setattr(patches, "PAUSED_SECONDS", 60.0)
    collector.advance(paused=True)                       # paused: batches for that long
    assert collector.scanning is None and collector.result.images_scanned == 100


@pytest.mark.parametrize("changes", [{"patch_images": -1}, {"patch_images": 100_001},
                                     {"patch_share": 0.0}, {"patch_share": 0.6}])
def test_the_settings_are_bounded(changes):
    with pytest.raises(ValueError, match=next(iter(changes))):
        Settings(**changes)
