"""What each filter sees: for every channel of every conv layer (those inside residual and
concat blocks too, named by their summary-table index such as "5.layers.0"), the test images
that excite it most, as the lecture's ZFNet case study shows them: each one cut to the part of
the image that channel sees at its strongest position (its receptive field).

The collector runs in the WORKER thread only (its forward passes use the engine's parallel
kernels). It follows the trainer's `last_test`: a new test evaluation (or a loaded snapshot
that brings its own) starts a scan (or, while one runs, the next one when it ends) on the
collector's OWN copy of the weights, copied then into its own Net and Workspace (never
training's workspace, buffers or gradients); a new net or a reset drops what it had. The
scan is a forward pass in evaluation mode over a fixed spread sample of the test set
(`patch_images` of them, the same each time), a batch at a time, on a duty cycle: while
training runs it uses at most `patch_share` of the worker's time (a batch, then none until
the rest of the loop has had share's complement), while paused batches for up to
PAUSED_SECONDS per loop turn.

Per conv layer and channel it keeps only the top TOP values seen so far: (value, test image,
position), where value is the channel's largest output over the positions of that image (so
each image gives at most one patch per channel) and position the first (row-major) place it
is reached. Ties go to the lower image index; a NaN output counts as -inf. The value is the
conv's own output, before its activation function (a ReLU keeps the order of the positives).
Memory: the copied weights, TOP triples per channel, and while a scan runs one batch's
activations (its Workspace is emptied when the scan ends).

When a scan ends it becomes `result` (a PatchResult, never changed afterwards), which GET
/api/filters/{layer}/{channel} reads from any thread; cutting and PNG encoding happen there
(NumPy and Pillow in the route's thread pool, see server/routes/patches.py).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from engine.calculator import children, summarize
from engine.data.normalize import preprocess
from engine.layers.base import Context, Workspace
from engine.net import Net

TOP = 9                      # patches per channel, a 3x3 grid
BATCH = 16                   # test images per forward pass
PAUSED_SECONDS = 0.05        # while paused: batches per loop turn until this much time
SAMPLE_SEED = 0              # which test images a limited scan looks at (always the same)
PATCH_PIXELS = 64            # a patch smaller than this is enlarged (nearest neighbour)


@dataclass(frozen=True)
class Window:
    """Where an output position (y, x) of a layer looks in the input image: rows top +
    y * jump_y .. + height, columns left + x * jump_x .. + width (top and left may be negative:
    padding). height, width and the jumps are the calculator's receptive field and jump."""

    top: int
    left: int
    height: int
    width: int
    jump_y: int
    jump_x: int

    def box(self, y: int, x: int, image_h: int, image_w: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of position (y, x)'s window, clipped to the image."""
        top, left = self.top + y * self.jump_y, self.left + x * self.jump_x
        y0, x0 = max(0, top), max(0, left)
        y1, x1 = min(image_h, top + self.height), min(image_w, left + self.width)
        return y0, x0, max(0, y1 - y0), max(0, x1 - x0)


def _visit(d: dict, row: dict, start: tuple[int, int], jump: tuple[int, int],
           windows: dict) -> tuple[int, int]:
    """The top-left input pixel that output (0, 0) of layer `d` sees, given its input's
    (`start`, `jump`); `row` is the layer's summary row (a block's has its children's). Each
    conv met on the way, `d` itself or one inside a block, gets its Window in `windows`,
    under its summary-table index ("3", "5.layers.0")."""
    t = d["type"]
    if t in ("conv", "pool"):                   # window (0, 0) starts `pad` inputs before
        out = start[0] - d["pad_y"] * jump[0], start[1] - d["pad_x"] * jump[1]
        if t == "conv":
            (h, w), (jy, jx) = row["receptive_field"], row["jump"]
            windows[row["index"]] = Window(out[0], out[1], h, w, jy, jx)
        return out
    chains = children(d)
    if not chains:                              # fc, global pooling: from input (0, 0)
        return start
    kids = iter(row.get("children", []))
    ends = []                                   # per chain: (rf, offset) per axis
    for _, chain in chains:
        offset, chain_jump, field = start, jump, None
        for child in chain:
            child_row = next(kids)
            offset = _visit(child, child_row, offset, chain_jump, windows)
            chain_jump, field = tuple(child_row["jump"]), child_row["receptive_field"]
        ends.append((field, offset))
    # The calculator's block field is the largest chain's, axis by axis: that chain's start.
    picked = []
    for axis in (0, 1):
        sized = [(f[axis] if f is not None else 0, -o[axis]) for f, o in ends]
        picked.append(-max(sized)[1])
    return picked[0], picked[1]


def layer_windows(spec) -> dict[str, Window]:
    """{conv layer index as in the summary table ("3"; "5.layers.0" inside a block): its
    Window}, from the calculator's summary."""
    rows = summarize(spec)["layers"]
    start, jump = (0, 0), (1, 1)
    windows: dict[str, Window] = {}
    for d, row in zip(spec.layers, rows):
        start = _visit(d, row, start, jump, windows)
        jump = tuple(row["jump"])
    return windows


def conv_layers(net: Net) -> dict[str, object]:
    """{summary-table index: layer} of every conv, top-level or inside a block."""
    convs = {}
    for i, layer in enumerate(net.layers):
        inner = layer.walk(f"{i}.") if hasattr(layer, "walk") else ()
        for index, child in [(str(i), layer), *inner]:
            if child.type == "conv":
                convs[index] = child
    return convs


def sample_positions(total: int, limit: int) -> np.ndarray:
    """The test images a scan looks at: all, or `limit` spread over the split (splits are
    often grouped by class), in order."""
    if limit >= total:
        return np.arange(total, dtype=np.int64)
    return np.sort(np.random.default_rng(SAMPLE_SEED).permutation(total)[:limit])


class TopK:
    """The TOP largest (value, image, position) per channel seen so far, for one layer."""

    def __init__(self, channels: int, k: int = TOP) -> None:
        self.values = np.full((channels, k), -np.inf, dtype=np.float64)
        self.images = np.full((channels, k), -1, dtype=np.int64)
        self.positions = np.zeros((channels, k, 2), dtype=np.int64)

    def add(self, act: np.ndarray, images: np.ndarray) -> None:
        """act: (N, C, H, W) outputs of the test images `images` (N,)."""
        n, c, h, w = act.shape
        flat = act.reshape(n, c, h * w)
        where = np.argmax(flat, axis=2)                                   # (N, C)
        best = np.take_along_axis(flat, where[..., None], axis=2)[..., 0].astype(np.float64)
        best[np.isnan(best)] = -np.inf
        values = np.concatenate([self.values, best.T], axis=1)            # (C, k + N)
        owners = np.concatenate([self.images, np.broadcast_to(images, (c, n))], axis=1)
        new_positions = np.stack(np.divmod(where.T, w), axis=-1)          # (C, N, 2)
        positions = np.concatenate([self.positions, new_positions], axis=1)
        # Largest value first, the lower image index first among equal values; unfilled
        # slots (image -1, value -inf) sort last.
        order = np.lexsort((np.where(owners < 0, np.iinfo(np.int64).max, owners), -values),
                           axis=-1)[:, :self.values.shape[1]]
        self.values = np.take_along_axis(values, order, axis=1)
        self.images = np.take_along_axis(owners, order, axis=1)
        self.positions = np.take_along_axis(positions, order[..., None], axis=1)

    def freeze(self) -> TopK:
        for a in (self.values, self.images, self.positions):
            a.flags.writeable = False
        return self


@dataclass(frozen=True, eq=False)
class PatchResult:
    """A finished scan: what GET /api/filters answers from (never changed once made)."""

    id: int
    step: int                     # the step of the weights scanned
    test_step: int | None         # the test evaluation that started the scan
    spec_json: list               # the net's spec, as the NET view gives it
    split: object                 # the test split the image indices are positions of
    images_scanned: int
    windows: dict                 # {conv index as in the summary table ("5.layers.0"): Window}
    top: dict                     # {the same index: TopK}


class PatchCollector:
    """Worker thread only (see the module docstring)."""

    _ids = itertools.count(1)

    def __init__(self, images: int, share: float) -> None:
        self.limit = images
        self.share = share
        self.result: PatchResult | None = None
        self.scanning: dict | None = None      # {"step", "test_step", "done", "of"}
        self._net = None
        self._workspace = Workspace()
        self._followed = (None, None)          # (trainer.net, trainer.last_test)
        self._due = False                      # a newer test result waits for a scan
        self._job = None
        self._convs: dict = {}                 # {summary-table index: conv layer of _net}
        self._credit = 0.0
        self._last_end: float | None = None

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    # --- following the run ------------------------------------------------------------------
    def follow(self, trainer) -> None:
        """A new net (set, loaded or reset) drops what was found; a new test result (or a
        loaded snapshot's) asks for a scan: at once, or when the running one ends (a scan
        restarted at every test would never end where tests come faster than scans), on
        the weights of then. The last finished scan answers meanwhile."""
        net, test = trainer.net, trainer.last_test
        if net is not self._followed[0]:
            self.result = None
            self._job = None
            self.scanning = None
            self._net = None                # the old weights' copy and buffers go too
            self._workspace.clear()
            self._due = test is not None
        elif test is not self._followed[1]:
            self._due = test is not None
        self._followed = (net, test)
        if self._due and self._job is None and self.enabled:
            self._due = False
            self._start(trainer)

    def _start(self, trainer) -> None:
        source = trainer.net
        if self._net is None or self._net.spec != source.spec or self._net.dtype != source.dtype:
            self._net = None
            self._workspace.clear()
            self._net = Net(source.spec, dtype=source.dtype)
        self._net.copy_weights_from(source)
        split = trainer.dataset.test
        positions = sample_positions(len(split), self.limit)
        self._convs = conv_layers(self._net)
        test = trainer.last_test
        self._job = {"split": split, "positions": positions, "done": 0,
                     "normalization": trainer.normalization, "step": trainer.step_count,
                     "test_step": test.get("step") if isinstance(test, dict) else None,
                     "top": {index: TopK(layer.out_shape[0])
                             for index, layer in self._convs.items()}}
        self.scanning = {"step": trainer.step_count, "test_step": self._job["test_step"],
                         "done": 0, "of": len(positions)}

    # --- scanning -----------------------------------------------------------------------------
    def advance(self, paused: bool) -> None:
        """One turn of the worker's loop: a batch when the duty cycle allows (while paused,
        batches for up to PAUSED_SECONDS)."""
        now = time.perf_counter()
        if self._last_end is not None:       # the rest of the loop ran since our last batch
            self._credit = min(0.0, self._credit + self.share * (now - self._last_end))
        self._last_end = now
        if self._job is None or (not paused and self._credit < 0):
            return
        t0 = now
        while self._job is not None:
            self._batch()
            if not paused or time.perf_counter() - t0 >= PAUSED_SECONDS:
                break
        end = time.perf_counter()
        if not paused:
            self._credit -= end - t0
        self._last_end = end

    def finish(self) -> None:
        """Scan what is left at once (tests and measurements)."""
        while self._job is not None:
            self._batch()

    def _batch(self) -> None:
        job = self._job
        positions = job["positions"][job["done"]:job["done"] + BATCH]
        if len(positions):
            net = self._net
            x = preprocess(job["split"].take(positions), job["normalization"]).astype(
                net.dtype, copy=False)
            ctx = Context(training=False, workspace=self._workspace, inner_outputs={})
            with np.errstate(all="ignore"):     # a diverging net's NaN: counted as -inf
                _, _, outputs = net.forward(x, ctx)
                for index, top in job["top"].items():
                    act = (outputs[int(index)] if index.isdigit() else
                           ctx.inner_outputs[id(self._convs[index])])
                    top.add(act, positions)
            job["done"] += len(positions)
            self.scanning = {**self.scanning, "done": job["done"]}
        if job["done"] >= len(job["positions"]):
            self._publish(job)

    def _publish(self, job: dict) -> None:
        spec = self._net.spec
        self.result = PatchResult(
            id=next(self._ids), step=job["step"], test_step=job["test_step"],
            spec_json=spec.to_json(), split=job["split"], images_scanned=job["done"],
            windows=layer_windows(spec),
            top={i: top.freeze() for i, top in job["top"].items()})
        self._job = None
        self.scanning = None
        self._workspace.clear()        # one batch's activations: only while scanning
