"""Safe image decoding: every path from a file (or upload) to a net-sized uint8 RGB array.

The data set loaders, the server's upload classifier and the classify command all call
`load_image_file`, so a photo is decoded, oriented, converted and resized the same way
wherever it comes from.

Safety, because uploads and user folders are untrusted:
- only the formats in ALLOWED_FORMATS are tried (`Image.open(formats=...)`);
- images over MAX_IMAGE_PIXELS are refused from their header, before any pixel is decoded,
  and Pillow's DecompressionBombWarning is turned into an error as a second fence;
- only frame 0 of an animated GIF/WebP/TIFF is decoded;
- truncated files are errors (ImageFile.LOAD_TRUNCATED_IMAGES is never set).

Colour: grey, palette, CMYK and 16-bit grey become RGB; transparent pixels are composited
on WHITE (a transparent logo looks the way a browser shows it), then the alpha is dropped.
EXIF orientation is applied. Size: the image is centre-cropped to the net's aspect ratio and
resized with Pillow's antialiased bicubic filter (ImageOps.fit); a tiny image (even 1x1) is
scaled up like any other, as ConvNetJS draws any picture onto its 32x32 canvas.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

NET_IMAGE_SIZE = (32, 32)                   # (height, width) of the nets this demo trains
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_FILE_BYTES = 128 * 1024 * 1024
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp",
                            ".webp", ".tif", ".tiff"})

# Process-wide, deliberately: any Pillow decode in this process gets the same fence.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)

_ORIENTATION = ExifTags.Base.Orientation.value
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class DataError(ValueError):
    """Data that cannot be used; the message names the file and says why."""


def load_image_file(source: str | os.PathLike | bytes, size: tuple[int, int] = NET_IMAGE_SIZE,
                    name: str | None = None) -> np.ndarray:
    """Decode an image file (path or its bytes) to uint8 (height, width, 3) RGB at `size`.

    `name` is what error messages call the image (default: the path, or "image").
    Raises DataError for anything that is not a usable image.
    """
    if name is None:
        name = "image" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = _read_file(Path(source), name)
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            return _decode_opened(image, size, name)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{name}: not an image in a supported format "
                        f"({', '.join(ALLOWED_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{name}: image too large ({exc})") from None
    except Exception as exc:  # Pillow's plugins raise many types on malformed data
        raise DataError(f"{name}: cannot decode image: {exc}") from exc


def to_net_image(image: Image.Image, size: tuple[int, int] = NET_IMAGE_SIZE) -> np.ndarray:
    """An already decoded PIL image -> uint8 (height, width, 3), as load_image_file does it."""
    image = _to_rgb(_apply_exif_orientation(image))
    height, width = size
    if image.size != (width, height):
        image = ImageOps.fit(image, (width, height), method=Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).copy()


def decode_images(items: list[tuple[str, str | bytes]], size: tuple[int, int]
                  ) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode many (name, path or bytes) items -> (uint8 (n, h, w, 3), [(index, problem)]).

    A failed image leaves zeros in its row and one entry in the problem list, so a caller can
    skip and count it. Module-level so a process pool can run it on chunks.
    """
    images = np.zeros((len(items), size[0], size[1], 3), dtype=np.uint8)
    problems = []
    for index, (name, source) in enumerate(items):
        try:
            images[index] = load_image_file(source, size, name)
        except DataError as exc:
            problems.append((index, str(exc)))
    return images, problems


def _read_file(path: Path, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise DataError(f"{name}: file larger than {MAX_IMAGE_FILE_BYTES // 2**20} MiB")
    return data


def _decode_opened(image: Image.Image, size: tuple[int, int], name: str) -> np.ndarray:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{name}: image too large ({width}x{height} pixels; the limit is "
                        f"{MAX_IMAGE_PIXELS:,} pixels, e.g. 4096x4096)")
    side = 2 * max(size)
    if image.format == "JPEG" and min(width, height) >= 2 * side:
        # Let libjpeg decode at 1/2..1/8 scale (never below 2x the net's size) when the photo
        # is much bigger than the net.
        image.draft("RGB", (side, side))
    image.load()                            # frame 0 only: we never seek
    return to_net_image(image, size)


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    if image.getexif().get(_ORIENTATION, 1) in (1, None):
        return image                        # exif_transpose would copy even then
    return ImageOps.exif_transpose(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if mode != "F" and values.max(initial=0) > 255:
            values = values / 257.0         # 16-bit grey -> 8-bit
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
