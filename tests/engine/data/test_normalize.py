import numpy as np
import pytest
from PIL import Image

from engine.data.normalize import Normalization, channel_stats, preprocess

NORM = Normalization(mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 40.0))


def test_preprocess_is_nchw_float32_and_normalised(rng):
    images = rng.integers(0, 256, (5, 8, 6, 3), dtype=np.uint8)
    out = preprocess(images, NORM)
    assert out.dtype == np.float32 and out.shape == (5, 3, 8, 6)
    expected = (images.transpose(0, 3, 1, 2).astype(np.float64)
                - np.array(NORM.mean)[None, :, None, None]) / np.array(NORM.std)[None, :, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_preprocess_takes_one_image_a_view_and_a_pil_image(rng):
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    batch = preprocess(images, NORM)
    np.testing.assert_array_equal(preprocess(images[2], NORM), batch[2:3])
    np.testing.assert_array_equal(preprocess(images[:, ::-1][1:3], NORM), batch[1:3, :, ::-1])
    from_pil = preprocess(Image.fromarray(images[3]), NORM)
    np.testing.assert_array_equal(from_pil, batch[3:4])


def test_preprocess_resizes_a_pil_image_like_load_image_file():
    out = preprocess(Image.new("RGBA", (64, 48), (0, 0, 0, 0)), NORM)
    assert out.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(out[0, :, 0, 0], (np.array([255.0] * 3) - NORM.mean) / NORM.std,
                               rtol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8), np.uint8),
                                 np.zeros((2, 3, 8, 8), np.uint8)])
def test_preprocess_refuses_other_layouts(bad):
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        preprocess(bad, NORM)


def test_stats_give_the_mean_and_std_of_the_pixels(rng):
    images = rng.integers(0, 256, (7, 5, 4, 3), dtype=np.uint8)
    stats = channel_stats(images, chunk=3)
    norm = Normalization.from_stats(stats, 20)
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(norm.mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, pixels.std(axis=0), rtol=1e-9)


def test_constant_channel_gets_std_one():
    images = np.full((2, 4, 4, 3), 7, dtype=np.uint8)
    norm = Normalization.from_stats(channel_stats(images), 16)
    assert norm.std == (1.0, 1.0, 1.0) and norm.mean == (7.0, 7.0, 7.0)


def test_dict_round_trip_matches_the_snapshot_format():
    assert NORM.to_dict() == {"mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0]}
    assert Normalization.from_dict(NORM.to_dict()) == NORM
    with pytest.raises(ValueError):
        Normalization.from_dict({"mean": [0, 0, 0], "std": [1, 0, 1]})
