"""The one preprocessing step between stored pixels and a net's input.

Training batches, evaluation, the server's test gallery and uploaded photos all go through
`preprocess`, so a net always sees its inputs scaled the way it was trained:

    uint8 (N, H, W, 3) RGB  ->  float32 (N, 3, H, W),  x = (pixel - mean[c]) / std[c]

mean and std are per channel, in pixel units (0..255), measured on the training split and
stored with the data set and in snapshots ({"mean": [r, g, b], "std": [r, g, b]}).

Nets that ConvNetJS could run train instead on CONVNETJS_INPUT, ConvNetJS's own convention
(x = pixel/255 - 0.5, the same for every channel), so that their zero padding stands for the
same colour in both engines and an export to ConvNetJS computes exactly what they compute here
(engine.convnetjs.training_normalization makes that choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.data.images import NET_IMAGE_SIZE, to_net_image


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, value: dict) -> Normalization:
        mean, std = value["mean"], value["std"]
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"normalization needs 3 means and 3 positive stds, got {value}")
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    @classmethod
    def from_stats(cls, stats: np.ndarray, pixels_per_image: int) -> Normalization:
        """From per-image channel sums, stats (N, 2, 3) = [sum, sum of squares] per channel."""
        total = stats.sum(axis=0, dtype=np.float64)
        count = max(1, len(stats) * pixels_per_image)
        mean = total[0] / count
        std = np.sqrt(np.maximum(total[1] / count - mean * mean, 0.0))
        std = np.where(std > 0, std, 1.0)   # a constant channel: leave it centred, unscaled
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    def lookup_table(self) -> np.ndarray:
        """(3, 256) float32: the normalised value of every pixel value in every channel."""
        values = np.arange(256, dtype=np.float64)
        mean = np.asarray(self.mean)[:, None]
        std = np.asarray(self.std)[:, None]
        return ((values[None, :] - mean) / std).astype(np.float32)


# ConvNetJS feeds its nets pixel/255 - 0.5: (pixel - 127.5) / 255 in every channel.
CONVNETJS_INPUT = Normalization((127.5, 127.5, 127.5), (255.0, 255.0, 255.0))


def channel_stats(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float64 (N, 2, 3): per-image channel sums and sums of squares.

    Exact (float64 holds these integer sums exactly); a matrix product with a row of ones
    sums the pixels ~10x faster than ndarray.sum over the middle axis.
    """
    pixels_per_image = images.shape[1] * images.shape[2]
    ones = np.ones(pixels_per_image)
    stats = np.empty((len(images), 2, 3), dtype=np.float64)
    for start in range(0, len(images), chunk):
        pixels = images[start:start + chunk].reshape(-1, pixels_per_image, 3)
        pixels = pixels.astype(np.float64)
        stats[start:start + chunk, 0] = ones @ pixels
        np.square(pixels, out=pixels)
        stats[start:start + chunk, 1] = ones @ pixels
    return stats


def preprocess(images: np.ndarray | Image.Image, normalization: Normalization,
               size: tuple[int, int] = NET_IMAGE_SIZE) -> np.ndarray:
    """uint8 (N, H, W, 3) or (H, W, 3), or a PIL image -> float32 (N, 3, H, W) normalised.

    A PIL image is first brought to `size` exactly as load_image_file does (orientation,
    RGB, centre crop, resize); arrays are used at the size they have.
    """
    if isinstance(images, Image.Image):
        images = to_net_image(images, size)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"preprocess takes uint8 (N, H, W, 3) images, "
                         f"got {images.dtype} {images.shape}")
    table = normalization.lookup_table()
    out = np.empty((images.shape[0], 3, images.shape[1], images.shape[2]), dtype=np.float32)
    for channel in range(3):
        out[:, channel] = table[channel][images[..., channel]]
    return out
