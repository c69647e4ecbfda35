"""Everything the server can be told, in one place: `convnet-demo serve` flags become a Settings.

Snapshot directory: ./snapshots under the directory `serve` was started in (the same place
`convnet-demo train` writes its snapshot), created on the first save. The presenter finds the
files next to where they typed the command; `serve` prints the absolute path at start.
File names inside it are made by the server (time and step), never from request input.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.data.images import MAX_IMAGE_PIXELS

MiB = 1024 * 1024


def new_token() -> str:
    """A fresh presenter token: 24 random bytes (192 bits), URL-safe."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Settings:
    # where to listen (join_url is derived from these)
    host: str = "127.0.0.1"
    port: int = 8000
    # what to train
    data: str = "bundled"                  # bundled | official | PATH (engine.data.open_source)
    validation: str = "10"                 # held-out validation images per class (see data)
    net: str = "convnetjs"                 # a preset name or a JSON spec file
    snapshot: str | None = None            # a snapshot file, "pretrained" or "pretrained:NAME"
    hyperparams: dict[str, Any] = field(default_factory=dict)  # on top of the preset defaults
    options: dict[str, Any] = field(default_factory=dict)      # engine.trainer.TrainOptions
    seed: int = 0
    threads: int | None = None             # Numba threads (None: measured, see threads.py)
    start_paused: bool = False
    # who may steer
    token: str = field(default_factory=new_token)
    # files
    snapshot_dir: Path = Path("snapshots")
    save_on_exit: bool = True
    # limits
    max_upload_bytes: int = 4 * MiB        # an uploaded image (multipart body as a whole)
    max_snapshot_bytes: int = 64 * MiB     # an uploaded snapshot
    max_json_bytes: int = 2 * MiB          # any JSON request body (a spec is <= 1M chars)
    max_pixels: int = MAX_IMAGE_PIXELS     # 4096*4096; cannot exceed the engine's own fence
    max_classify_in_flight: int = 8        # decoding or queued; beyond: 503 + Retry-After: 1
    max_uploads_arriving: int = 32         # bodies still streaming in (4 MiB each at most)
    # how often things are published
    metrics_every_s: float = 0.25
    history_every_s: float = 1.0
    frame_every_steps: int = 100
    frame_min_interval_s: float = 3.0      # a frame every N steps or this long, whichever later
    gallery_every_s: float = 10.0
    gallery_per_class: int = 4
    ping_every_s: float = 15.0
    # tests and embedding: a ready Dataset object instead of opening `data`
    dataset: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or len(self.token) < 16:
            raise ValueError("the presenter token must be at least 16 characters")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if not 0 < self.max_pixels <= MAX_IMAGE_PIXELS:
            raise ValueError(f"max_pixels must be in 1..{MAX_IMAGE_PIXELS}")
        for name in ("max_upload_bytes", "max_snapshot_bytes", "max_json_bytes",
                     "max_classify_in_flight", "max_uploads_arriving", "frame_every_steps",
                     "gallery_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        object.__setattr__(self, "snapshot_dir", Path(self.snapshot_dir))

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)
