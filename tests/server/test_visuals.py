"""Layer pictures: tiles in a grid, at most 32, colour filters for RGB input, saliency."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from server.visuals import MAX_TILES, filter_tiles, saliency_b64, tile_grid


def _decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)), formats=["PNG"]))


def test_maps_are_tiled_row_by_row_with_one_scale():
    maps = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    grid = tile_grid(maps)
    assert grid["cols"] == 3 and grid["tile"] == [2, 3] and grid["count"] == 5
    assert grid["min"] == 0 and grid["max"] == 29
    pixels = _decode(grid["grid"])
    assert pixels.shape == (4, 9)
    assert pixels[0, 0] == 0 and pixels[3, 5] == 255          # tile 4 ends at the maximum
    assert (pixels[2:, 6:] == 0).all()                          # the empty sixth cell


def test_at_most_32_tiles_and_non_finite_values_are_drawn():
    maps = np.ones((100, 1, 1), dtype=np.float32)
    maps[0] = np.nan
    grid = tile_grid(maps)
    assert grid["count"] == MAX_TILES and grid["cols"] == 6
    assert grid["min"] == 0.0 and grid["max"] == 1.0


def test_filters_with_three_input_channels_are_colour():
    rgb = filter_tiles(np.random.default_rng(0).normal(size=(4, 3, 5, 5)))
    assert rgb["color"] is True and _decode(rgb["grid"]).shape == (10, 10, 3)
    grey = filter_tiles(np.random.default_rng(0).normal(size=(4, 8, 3, 3)))
    assert grey["color"] is False and _decode(grey["grid"]).shape == (6, 6)


def test_saliency_is_a_heat_map_of_the_largest_gradient_over_channels():
    dx = np.zeros((3, 4, 4), dtype=np.float32)
    dx[1, 2, 3] = -5.0
    heat = _decode(saliency_b64(dx))
    assert heat.shape == (4, 4, 3)
    assert tuple(heat[2, 3]) == (255, 255, 255) and tuple(heat[0, 0]) == (0, 0, 0)
