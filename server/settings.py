"""Everything the server can be told, in one place: `convnet-demo serve` flags become a Settings.

Snapshot directory: the user's data directory (XDG_DATA_HOME, else ~/.local/share, then
convnet-demo/snapshots; server/snapshot_files.py), created on the first save, wherever `serve`
was started (not the folder it was typed in, which may be a repository checkout); `serve
--snapshot-dir` overrides it and prints the absolute path at start. File names inside it are
made by the server (time and step), never from request input.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.data.images import MAX_IMAGE_PIXELS
from server.snapshot_files import default_snapshot_dir

MiB = 1024 * 1024
MAX_PATCH_IMAGES = 100_000     # a scan's time grows with it (CIFAR-10's test set is 10,000)


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
    resume: bool = False                   # start from the newest saved run of the same net
    hyperparams: dict[str, Any] = field(default_factory=dict)  # on top of the preset defaults
    options: dict[str, Any] = field(default_factory=dict)      # engine.trainer.TrainOptions
    seed: int = 0
    threads: int | None = None             # Numba threads (None: measured, see threads.py)
    start_paused: bool = False
    # what one training step may cost (engine.train_options.TrainBudget: a net or batch size
    # over it is refused with the numbers and the largest batch that fits)
    max_train_bytes: int = 3_000_000_000
    max_step_flops: int = 60_000_000_000
    # who may steer
    token: str = field(default_factory=new_token)
    state_dir: Path | None = None          # presenter sessions kept across restarts here
    #                                        (server/credentials.py); None: in memory only
    # files
    snapshot_dir: Path = field(default_factory=default_snapshot_dir)
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
    # looking back (server/past.py): every run's checkpoints together stay under this
    checkpoint_mb: int = 200
    max_runs: int = 12                     # forks and race runs kept at once (server/runs.py)
    # what each filter sees (server/patches.py): test images looked at after each test
    # evaluation (0: none), and the share of the worker's time that may take while it trains
    patch_images: int = 1000
    patch_share: float = 0.05
    ping_every_s: float = 15.0
    # live questions (server/polls.py): a browser's answers per client address (a token
    # bucket: per second, burst; raise them when the room reaches the server through one NAT
    # address), the poll event's pace however many answer, and the browsers one question counts
    poll_answer_rate: float = 2.0
    poll_answer_burst: int = 10
    poll_publish_every_s: float = 1.0
    poll_max_answers: int = 5000
    # what the page costs the room's Wi-Fi (server/app.py, server/events.py)
    gzip_min_bytes: int = 1024             # smaller responses go as they are
    gzip_level: int = 6                    # zlib's 1 (fastest) .. 9 (smallest)
    # who may ask, how often, and what the server keeps (server/auth.py, server/hosts.py)
    allowed_hosts: tuple[str, ...] = ()    # Host names beyond the machine's own (--allowed-host)
    login_failures: int = 10               # wrong tokens per address per window, then 429
    login_window_s: float = 60.0
    max_sessions: int = 32                 # presenter cookies alive at once (oldest dropped)
    max_tracked_addresses: int = 4096      # the wrong-token table's rows (oldest dropped)
    keep_snapshots: int = 20               # files this server saved; older ones are deleted
    save_min_interval_s: float = 1.0       # POST /api/snapshot at most this often (else 429)
    max_spec_layers: int = 2000            # layer objects in a spec body, blocks' included
    # what one client may hold, and for how long (server/guard.py, server/bodies.py)
    header_timeout_s: float = 10.0         # a request head must be complete this soon
    body_grace_s: float = 10.0             # a body may take this long to start flowing,
    body_min_rate: int = 16 * 1024         # then must average this many bytes/s (else 408);
    #   a 4 MiB photo at 16 KiB/s (128 kbit/s) takes 4.3 min: slower than any phone on
    #   working Wi-Fi, while a client that sends nothing is cut off after the grace
    write_stall_timeout_s: float = 30.0    # a client reading nothing of a response (a frozen
    #                                        phone's event stream) is dropped after this
    keep_alive_s: float = 5.0              # idle keep-alive connections close (uvicorn's)
    max_connections: int = 4096            # in all; lowered to fit the open-file limit
    max_connections_per_client: int = 32   # per address (IPv6: per /64); a browser uses <= 6
    max_uploads_per_client: int = 4        # classify bodies arriving at once per address
    unlimited_clients: tuple[str, ...] = ("127.0.0.1", "::1")  # no per-client caps: this
    #                                        machine (presenter's browser, server.measure)
    guard_log_every_s: float = 10.0        # refusals and drops: one log line per interval
    # beat the network (server/challenge.py): images handed out and not yet answered expire
    # after challenge_ttl_s; at most challenge_open ids are kept in all (oldest forgotten
    # first; 300 viewers x challenge_per_viewer fit), challenge_per_viewer unanswered ones
    # per browser (its oldest forgotten); GET and POST /api/challenge together at most
    # challenge_rate per second per address in bursts of challenge_burst (a player answers
    # about once a second; then 429)
    challenge_ttl_s: float = 600.0
    challenge_open: int = 4096
    challenge_per_viewer: int = 4
    challenge_rate: float = 4.0
    challenge_burst: int = 16
    leaderboard_players: int = 2000        # browsers' scores kept (least recently active dropped)
    leaderboard_top: int = 10              # nicknames the leaderboard shows
    leaderboard_every_s: float = 0.5       # at most one leaderboard event per interval
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
                     "gallery_per_class", "login_failures", "max_sessions",
                     "max_tracked_addresses", "keep_snapshots", "max_spec_layers",
                     "max_connections", "max_connections_per_client",
                     "max_uploads_per_client", "max_train_bytes", "max_step_flops",
                     "checkpoint_mb", "max_runs", "poll_answer_burst", "poll_max_answers",
                     "challenge_open", "challenge_per_viewer", "challenge_burst",
                     "leaderboard_players"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("header_timeout_s", "body_grace_s", "body_min_rate",
                     "write_stall_timeout_s", "keep_alive_s", "guard_log_every_s",
                     "poll_answer_rate", "poll_publish_every_s", "challenge_ttl_s",
                     "challenge_rate", "leaderboard_every_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.patch_images <= MAX_PATCH_IMAGES:
            raise ValueError(f"patch_images must be in 0..{MAX_PATCH_IMAGES:,}")
        if not 0 < self.patch_share <= 0.5:
            raise ValueError(f"patch_share must be in (0, 0.5], got {self.patch_share}")
        object.__setattr__(self, "unlimited_clients", tuple(self.unlimited_clients))
        if not 1 <= self.gzip_level <= 9:
            raise ValueError(f"gzip_level must be in 1..9, got {self.gzip_level}")
        object.__setattr__(self, "snapshot_dir", Path(self.snapshot_dir))
        if self.resume and self.snapshot is not None:
            raise ValueError("resume and snapshot exclude each other: a run starts from one")
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        from server.hosts import pattern_problem
        for name in self.allowed_hosts:
            if pattern_problem(name):
                raise ValueError(pattern_problem(name))

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)
