"""Layer pictures: tiles in a grid with no black filler cells, how many shown of how many,
one scale over every channel, colour filters for RGB input and the mean over inputs said so,
bars with class names for one-value-per-channel layers, each layer's window, the arrays a
frame's details are made from (copies), a filter's per-input-channel slices, saliency, and a
frame's size on the wire."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from engine.layers.base import Context, Workspace
from engine.net import Net
from engine.presets import load_preset
from engine.spec.net_spec import parse_spec
import server.visuals as visuals_module
from server.jsonenc import dumps
from server.visuals import (MAX_DETAIL, MAX_TILES, RECENT_FRAMES, FrameDetails, class_layers,
                            filter_slices, filter_tiles, grid_cols, layer_arrays, layer_visuals,
                            saliency_b64, tile_grid)

CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck")


def _decode(b64: str) -> np.ndarray:
    b64 = b64.removeprefix("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)), formats=["PNG"]))


def _net(layers) -> Net:
    return Net(parse_spec(layers, budget=None), rng=np.random.default_rng(0))


def _pass(net: Net, label: int = 1):
    """A frame's arrays, as the Inspector makes them: outputs, output grads, weight grads."""
    x = np.random.default_rng(1).standard_normal((1, *net.input_shape)).astype(np.float32)
    ctx = Context(training=False, workspace=Workspace())
    out, caches, outputs = net.forward(x, ctx)
    acts = [o[:1].copy() for o in outputs]
    grads = net.new_grads()
    net.zero_grads(grads)
    _, _, output_grads = net.backward(out, caches, np.array([label]), grads, ctx,
                                      keep_grads=True)
    return acts, output_grads, grads


WIDE = [{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
        {"type": "conv", "sx": 3, "filters": 40, "stride": 1, "pad": 1, "activation": "relu"},
        {"type": "pool", "sx": 2, "stride": 2},
        {"type": "conv", "sx": 3, "sy": 1, "filters": 7, "pad_x": 1},
        {"type": "fc", "num_neurons": 50}, {"type": "relu"},
        {"type": "softmax", "num_classes": 2}]          # with its own fc(2) before it


def test_columns_leave_the_fewest_empty_cells():
    assert [grid_cols(n) for n in (1, 2, 3, 5, 16, 20, 32, 40, 64)] == [1, 2, 3, 5, 4, 5, 8, 8, 8]
    assert grid_cols(7) == 4 and grid_cols(17) == 6


def test_maps_are_tiled_row_by_row_with_one_scale():
    maps = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    grid = tile_grid(maps)
    assert grid["cols"] == 3 and grid["tile"] == [2, 3]
    assert (grid["count"], grid["of"], grid["start"]) == (6, 6, 0)
    assert grid["min"] == 0 and grid["max"] == 35
    pixels = _decode(grid["grid"])
    assert pixels.shape == (4, 9)                               # full: grey, no alpha
    assert pixels[0, 0] == 0 and pixels[3, 8] == 255


def test_empty_cells_are_transparent_not_black():
    """The old grid painted the cells past the last tile black, which reads as values (the
    RGB input showed a black fourth channel)."""
    rgb = tile_grid(np.full((3, 4, 4), 7.0, dtype=np.float32))
    assert rgb["cols"] == 3 and _decode(rgb["grid"]).shape == (4, 12)   # one row, no filler
    grid = tile_grid(np.linspace(0, 1, 7 * 4, dtype=np.float32).reshape(7, 2, 2))
    assert grid["cols"] == 4 and grid["count"] == 7
    pixels = _decode(grid["grid"])
    assert pixels.shape == (4, 8, 2)                            # grey + alpha
    assert (pixels[2:, 6:, 1] == 0).all()                       # the eighth cell: see-through
    assert (pixels[:2, :, 1] == 255).all() and (pixels[2:, :6, 1] == 255).all()
    colour = filter_tiles(np.random.default_rng(0).normal(size=(5, 3, 2, 2)))
    assert colour["cols"] == 5 and _decode(colour["grid"]).shape == (2, 10, 3)
    colour = filter_tiles(np.random.default_rng(0).normal(size=(7, 3, 2, 2)))
    rgba = _decode(colour["grid"])
    assert rgba.shape == (4, 8, 4) and (rgba[2:, 6:, 3] == 0).all()


def test_at_most_32_tiles_say_how_many_of_how_many_on_one_scale():
    maps = np.ones((100, 1, 1), dtype=np.float32)
    maps[0] = np.nan
    maps[70] = 9.0                                              # not shown, still the scale
    grid = tile_grid(maps)
    assert (grid["count"], grid["of"], grid["start"]) == (MAX_TILES, 100, 0)
    assert grid["cols"] == 8
    assert grid["min"] == 0.0 and grid["max"] == 9.0
    page = tile_grid(maps, start=64, limit=MAX_DETAIL)
    assert (page["count"], page["of"], page["start"]) == (36, 100, 64)
    assert page["max"] == 9.0 and _decode(page["grid"]).max() == 255   # channel 70 is here


def test_filters_with_three_input_channels_are_colour_others_say_they_are_a_mean():
    rgb = filter_tiles(np.random.default_rng(0).normal(size=(4, 3, 5, 5)))
    assert rgb["color"] is True and rgb["mean_over"] is None
    assert _decode(rgb["grid"]).shape == (10, 10, 3)
    grey = filter_tiles(np.random.default_rng(0).normal(size=(4, 8, 3, 3)))
    assert grey["color"] is False and grey["mean_over"] == 8
    assert _decode(grey["grid"]).shape == (6, 6)


def test_one_value_per_channel_layers_are_bars_with_class_names():
    """fc and softmax (1x1x10) were a 4x3 block of unlabelled grey squares."""
    net = Net(load_preset("convnetjs"), rng=np.random.default_rng(0))
    visuals = layer_visuals(net, *_pass(net, label=3), classes=CIFAR)
    fc, softmax = visuals[-2], visuals[-1]
    for entry in (fc, softmax):
        assert entry["act"] is None and entry["grad"] is None
        assert entry["values"]["labels"] == list(CIFAR)
        assert entry["values"]["count"] == entry["values"]["of"] == 10
    assert sum(softmax["values"]["act"]) == pytest.approx(1.0, abs=1e-5)
    assert softmax["values"]["grad"] is None                      # the loss layer itself
    assert len(fc["values"]["grad"]) == 10
    assert all(v["values"] is None for v in visuals[:-2])


def test_class_names_label_only_the_class_scores():
    wide = _net(WIDE)
    assert class_layers(wide, ("dark", "light")) == {7, 8}        # fc(2), softmax
    visuals = layer_visuals(wide, *_pass(wide), classes=("dark", "light"))
    hidden = visuals[5]["values"]                                 # fc(50): numbered, bounded
    assert hidden["labels"] is None and (hidden["count"], hidden["of"]) == (MAX_TILES, 50)
    assert visuals[7]["values"]["labels"] == ["dark", "light"]
    assert visuals[6]["values"]["labels"] is None                 # relu(50)
    gap = _net([{"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 3},
                {"type": "conv", "sx": 1, "filters": 2}, {"type": "global_avg_pool"},
                {"type": "softmax", "num_classes": 2}])
    assert class_layers(gap, ("a", "b")) == {3, 4}                # not the pooled 1x1x2
    assert class_layers(gap, None) == set()


def test_each_layer_says_its_window():
    visuals = layer_visuals(_net(WIDE), *_pass(_net(WIDE)))
    assert visuals[1]["geometry"] == {"size": [3, 3], "stride": [1, 1], "pad": [1, 1],
                                      "filters": 40, "in_channels": 3}
    assert visuals[3]["geometry"] == {"size": [2, 2], "stride": [2, 2], "pad": [0, 0],
                                      "mode": "max"}
    assert visuals[4]["geometry"]["size"] == [1, 3] and visuals[4]["geometry"]["pad"] == [0, 1]
    assert visuals[0]["geometry"] is None and visuals[5]["geometry"] is None


def test_a_block_says_the_windows_inside_it():
    net = Net(load_preset("cifar_resnet"), rng=np.random.default_rng(0))
    blocks = [layer_arrays(net, *_pass(net, label=3))[i].geometry for i in (4, 8)]
    assert blocks[0] == {"inner": {path: {"size": [3, 3], "stride": [1, 1], "pad": [1, 1],
                                          "filters": 16, "in_channels": 16}
                                   for path in ("layers.0", "layers.3")}}
    assert blocks[1]["inner"]["layers.0"]["stride"] == [2, 2]        # the stage's downsampling
    assert blocks[1]["inner"]["shortcut.0"] == {"size": [1, 1], "stride": [2, 2],
                                                "pad": [0, 0], "filters": 32, "in_channels": 16}
    assert "layers.1" not in blocks[1]["inner"]                       # batchnorm: no window


def test_a_frames_details_are_copies_and_its_entries_link_them():
    net = _net(WIDE)
    acts, output_grads, grads = _pass(net)
    details = FrameDetails.capture(12, net, acts, output_grads, grads, ("dark", "light"))
    before = details.layers[4].weights.copy()
    net.layers[4].params["w"] += 1.0                  # training goes on after the frame
    grads[4]["w"][...] = 0.0                          # and the Inspector reuses its grads
    assert np.array_equal(details.layers[4].weights, before)
    assert np.abs(details.layers[4].weight_grads).max() > 0
    entries = details.visuals()
    frame = details.id
    assert entries[1]["detail_url"] == f"/api/frame/layer?layer=1&frame={frame}"  # 32 of 40
    assert entries[5]["detail_url"] == f"/api/frame/layer?layer=5&frame={frame}"  # 32 of 50
    assert "detail_url" not in entries[4] and "detail_url" not in entries[0]
    assert entries[4]["filters"]["slices_url"] == f"/api/frame/filter?layer=4&frame={frame}"
    assert entries[4]["filters"]["mean_over"] == 40
    everything = details.layer(1, 0)
    assert everything["step"] == 12 and everything["act"]["count"] == 40
    assert everything["frame"] == frame and details.filter(4, 0, 0)["frame"] == frame
    assert everything["filters"]["count"] == 40 and everything["filter_grads"]["count"] == 40


def test_a_frame_keeps_the_few_before_it_and_no_more():
    """A viewer's page shows a frame up to 10 s old: its details must be that frame's."""
    net = _net(WIDE)
    arrays = _pass(net)
    details = None
    made = []
    for step in range(RECENT_FRAMES + 3):
        net.layers[4].params["w"] += 1.0
        details = FrameDetails.capture(step, net, *arrays, ("dark", "light"), previous=details)
        made.append(details)
    assert len({d.id for d in made}) == len(made)                  # ids are unique
    kept = [made[-1]] + list(made[-1].earlier)
    assert [d.step for d in kept] == list(range(RECENT_FRAMES + 2, 2, -1))   # newest first
    assert all(not d.earlier for d in made[-1].earlier)            # no chain behind them
    older = made[-4]
    found = made[-1].find(older.id)
    assert found.step == older.step and found.layers is older.layers
    assert found.filter(4, 0, 0)["max"] == older.filter(4, 0, 0)["max"] != made[-1].filter(
        4, 0, 0)["max"]
    assert made[-1].find(None) is made[-1] and made[-1].find(made[-1].id) is made[-1]
    assert made[-1].find(made[0].id) is None                       # gone
    assert made[-1].find(10**9) is None


def test_big_frames_keep_fewer_before_them(monkeypatch):
    net = _net(WIDE)
    arrays = _pass(net)
    one = FrameDetails.capture(0, net, *arrays, None)
    size = sum(a.nbytes for layer in one.layers for a in (layer.act, layer.grad, layer.weights,
                                                          layer.weight_grads, layer.bias)
               if a is not None)
    monkeypatch.setattr(visuals_module, "KEPT_BYTES", int(3.5 * size))     # room for 3 frames
    details = None
    for step in range(6):
        details = FrameDetails.capture(step, net, *arrays, None, previous=details)
    assert [f.step for f in details.earlier] == [4, 3]


def test_a_filters_slices_are_its_input_channels_on_one_scale():
    net = _net(WIDE)
    arrays = layer_arrays(net, *_pass(net))
    answer = filter_slices(arrays[4], 5)
    w = net.layers[4].params["w"][5]                              # (40, 1, 3)
    assert (answer["index"], answer["filters"], answer["in_channels"]) == (5, 7, 40)
    assert answer["size"] == [1, 3] and answer["count"] == 40 and answer["start"] == 0
    assert answer["min"] == pytest.approx(float(w.min())) and answer["max"] == pytest.approx(
        float(w.max()))
    assert answer["bias"] == pytest.approx(float(net.layers[4].params["b"][5]))
    assert [s["name"] for s in answer["slices"][:3]] == ["0", "1", "2"]
    expected = np.rint((w - w.min()) * 255.0 / (w.max() - w.min()))
    for s in answer["slices"]:
        pixels = _decode(s["image"])
        assert pixels.shape == (1, 3)
        assert np.array_equal(pixels, expected[s["channel"]])
    page = filter_slices(arrays[4], 5, start=32, limit=8)
    assert [s["channel"] for s in page["slices"]] == list(range(32, 40))
    first = filter_slices(arrays[1], 0)
    assert [s["name"] for s in first["slices"]] == ["R", "G", "B"]


def test_saliency_is_a_heat_map_of_the_largest_gradient_over_channels():
    dx = np.zeros((3, 4, 4), dtype=np.float32)
    dx[1, 2, 3] = -5.0
    heat = _decode(saliency_b64(dx))
    assert heat.shape == (4, 4, 3)
    assert tuple(heat[2, 3]) == (255, 255, 255) and tuple(heat[0, 0]) == (0, 0, 0)


@pytest.mark.parametrize("preset,limit_kb", [("convnetjs", 130), ("cifar_resnet", 380)])
def test_a_frame_stays_about_as_small_as_it_was(preset, limit_kb):
    """Every viewer gets frames on the room's Wi-Fi: with these random weights the old
    frame's layers were 122 kB (convnetjs) and 357 kB (cifar_resnet) of JSON."""
    net = Net(load_preset(preset), rng=np.random.default_rng(0))
    details = FrameDetails.capture(0, net, *_pass(net, label=3), CIFAR)
    size = len(dumps(details.visuals()).encode())
    assert size < limit_kb * 1000, size
