import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.data.images import (MAX_IMAGE_PIXELS, DataError, decode_images, load_image_file,
                                to_net_image)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixel data behind it."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_rgb_png_round_trips_exactly_at_net_size(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    from_path = load_image_file(path)
    assert from_path.dtype == np.uint8 and from_path.shape == (32, 32, 3)
    np.testing.assert_array_equal(from_path, pixels)
    np.testing.assert_array_equal(load_image_file(path.read_bytes()), pixels)
    assert from_path.flags.writeable


@pytest.mark.parametrize("mode, colour, expected", [
    ("L", 100, (100, 100, 100)),
    ("1", 1, (255, 255, 255)),
    ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
    ("RGBA", (255, 0, 0, 0), (255, 255, 255)),       # fully transparent -> white
    ("RGBA", (255, 0, 0, 255), (255, 0, 0)),
    ("RGBA", (0, 0, 0, 128), (127, 127, 127)),       # half black over white
    ("LA", (0, 0), (255, 255, 255)),
])
def test_modes_become_rgb_alpha_on_white(mode, colour, expected):
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    out = load_image_file(encode(Image.new(mode, (40, 40), colour), fmt))
    assert out.shape == (32, 32, 3)
    np.testing.assert_allclose(out[16, 16], expected, atol=1)


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (16, 16), 0)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((0, 0), 1)
    out = load_image_file(encode(image, "PNG", transparency=0), size=(16, 16))
    np.testing.assert_array_equal(out[5, 5], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 0], (200, 100, 50))


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    image = Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16))
    out = load_image_file(encode(image, "PNG"), size=(20, 20))
    np.testing.assert_array_equal(out, 255)


def test_exif_orientation_is_applied():
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)                     # left half red
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6                                 # stored rotated: display rotates 90 cw
    out = load_image_file(encode(image, "JPEG", exif=exif, quality=95), size=(40, 20))
    # Displayed 20 wide, 40 high; the red half (left) ends up on top after a 90 cw turn.
    assert out.shape == (40, 20, 3)
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60


def test_non_square_photo_is_centre_cropped_then_resized():
    pixels = np.zeros((100, 300, 3), dtype=np.uint8)
    pixels[:, 100:200] = 255                         # only the centre square is white
    out = load_image_file(encode(Image.fromarray(pixels), "PNG"))
    assert out.shape == (32, 32, 3)
    # Resampling filters reach a pixel or so past the crop box, into the black sides.
    assert out[:, 2:-2].min() == 255 and out.min() > 200


def test_large_jpeg_uses_reduced_decoding_and_matches_a_plain_resize():
    rng = np.random.default_rng(1)
    smooth = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(smooth).resize((1024, 1024), Image.Resampling.BICUBIC)
    out = load_image_file(encode(image, "JPEG", quality=95))
    reference = to_net_image(image)
    assert np.abs(out.astype(int) - reference).mean() < 4


def test_animated_gif_gives_frame_zero():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    out = load_image_file(buffer.getvalue(), size=(16, 16))
    assert out[8, 8, 0] > 200 and out[8, 8, 2] < 50


@pytest.mark.parametrize("data, message", [
    (b"", "not an image"),
    (b"hello, not an image", "not an image"),
    (encode(Image.new("RGB", (32, 32)), "ICO"), "not an image"),   # not on the allowlist
    (png_header_only(10000, 10000), "too large"),
    (png_header_only(5000, 4000), "too large"),       # between the limit and Pillow's 2x
])
def test_bad_images_raise_data_error_naming_the_image(data, message):
    with pytest.raises(DataError, match="upload.png: .*" + message.replace("(", r"\(")):
        load_image_file(data, name="upload.png")


@pytest.mark.parametrize("side", [(1, 1), (2, 2), (1, 5), (3, 2)])
def test_a_tiny_image_is_scaled_up_to_the_net_size(side):
    colour = (200, 30, 90)
    for fmt in ("PNG", "GIF", "JPEG"):
        out = load_image_file(encode(Image.new("RGB", side, colour), fmt), size=(32, 32))
        assert out.shape == (32, 32, 3)
        assert np.abs(out.astype(int) - colour).max() <= (40 if fmt != "PNG" else 0), fmt


def test_pixel_limit_is_4096_squared():
    assert MAX_IMAGE_PIXELS == 4096 * 4096


def test_truncated_jpeg_is_an_error_not_a_grey_image():
    data = encode(Image.new("RGB", (64, 64), (200, 10, 10)), "JPEG")
    with pytest.raises(DataError, match="cut.jpg: cannot decode"):
        load_image_file(data[:len(data) // 2], name="cut.jpg")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="nothing.png: no such file"):
        load_image_file(tmp_path / "nothing.png")


def test_decode_images_reports_failures_by_index():
    good = encode(Image.new("RGB", (32, 32), (1, 2, 3)), "PNG")
    images, problems = decode_images([("a", good), ("b", b"junk"), ("c", good)], (32, 32))
    assert images.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(images[2, 0, 0], (1, 2, 3))
    assert [index for index, _ in problems] == [1]
    assert problems[0][1].startswith("b: ")
    assert not images[1].any()
