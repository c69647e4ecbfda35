"""Weight initialisations a spec can ask for beside He's (engine/layers/conv.py)."""

from __future__ import annotations

import numpy as np


def dirac_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype) -> np.ndarray:
    """Conv weights (F, C, sy, sx) as airbench94 starts its 3x3 convs: torch's default
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (variance 1 / (3 fan_in), a sixth of He's), then
    filter k < min(F, C) replaced by the identity on input channel k (a 1 at the centre tap,
    (sy // 2, sx // 2), as torch.nn.init.dirac_), so the layer starts by passing its input
    through next to random features."""
    f, c, sy, sx = shape
    bound = 1.0 / np.sqrt(c * sy * sx)
    w = rng.uniform(-bound, bound, shape)
    k = min(f, c)
    w[:k] = 0.0
    w[np.arange(k), np.arange(k), sy // 2, sx // 2] = 1.0
    return np.ascontiguousarray(w, dtype=dtype)
