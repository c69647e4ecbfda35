"""2-D convolution kernels (cross-correlation, as torch's conv2d): forward above backward.

Why this layout (docs/engine.md, "What made the difference inside Numba"): the inner loop
of every hot kernel runs over a long, unit-stride stretch of whole padded image planes
("grids"), never over a short output row. The input is zero padded into planes `width` wide; the output
is computed on the same grid, garbage columns and all, and cropped afterwards.

- Stride s is undone by phase decomposition: phase (ry, rx) of the padded input holds the
  pixels (y*s_y + ry, x*s_x + rx), and a strided convolution is the sum over phases of
  stride-1 correlations with the filter taps of that phase. Stride 1 has one phase.
- Backward-data is itself a stride-1 correlation, per phase of dx, of the zero-padded dout
  with the flipped, transposed taps, so forward and dx share one inner kernel.
- A row holds one channel's grids for the whole batch, one image after another (`img`
  elements each), then a zero tail, so dw's dot products run over the whole batch (short ones
  spend their time in horizontal sums). Layouts: xph (P, C, row) and dpad (F4, row), both
  flattened, grids (F4 or C4, grid_row). A forward or dx task is `group` consecutive images
  (one, unless they are small) x 4 output channels.
- Rows written in lockstep 4 KiB apart alias in the store buffer (-30%): grid_row avoids it.
- Register blocking: each pass of the inner loop updates 4 output channels with 3 taps.
  Channel counts are padded to multiples of 4 (F4, C4) with zero weights.

Everything the kernels need besides the arrays is in a `ConvGeometry` (see `conv_geometry`),
handed to them as a plain tuple `tuple(g)`: Numba types a plain tuple of ints ~2 us faster per
call than a named tuple (a dozen calls per training step), and the kernel names it again.
Kernels validate and allocate nothing; engine/layers/conv.py allocates the scratch buffers
(64-byte aligned: unaligned output rows cost ~15% in the inner loop).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import njit, prange

BLOCK = 4            # output channels per pass (the weight rows are padded to a multiple)
ALIGN = 16           # float32 elements per 64 bytes: grids and blocks start on such a boundary
GROUP_TARGET = 256   # forward/dx tasks take images until their inner loop is about this long
MAX_GROUP = 8
MIN_TASKS = 4


class ConvGeometry(NamedTuple):
    """Shapes and scratch layout as plain ints (kernels take them as `tuple(g)`, see above).
    n, c, h, w, f: batch, input channels, input size, filters; f4, c4: f, c rounded up to 4.
    phases, taps_y, taps_x: stride phases, and the filter taps of phase 0 (the most).
    width, rows, img: a grid's row length, rows per image, elements per image.
    top, left: where dout sits inside its grid. row: an xph/dpad row (the whole batch and
    a tail); grid_row: a grid row; lead: zeros that start each dpad row (dw's alignment)."""

    n: int; c: int; h: int; w: int; f: int; f4: int; c4: int    # noqa: E702
    sy: int; sx: int; stride_y: int; stride_x: int              # noqa: E702
    pad_y: int; pad_x: int; out_h: int; out_w: int              # noqa: E702
    phases: int; taps_y: int; taps_x: int                       # noqa: E702
    width: int; rows: int; img: int; top: int; left: int        # noqa: E702
    row: int; grid_row: int; lead: int; group: int              # noqa: E702


def round_up(v: int, m: int = BLOCK) -> int:
    return (v + m - 1) // m * m


@lru_cache(maxsize=256)
def conv_geometry(n, c, h, w, f, sy, sx, stride_y, stride_x, pad_y, pad_x, group=None):
    """(ConvGeometry, phase table) for these shapes; `group` (images per forward or dx task)
    is chosen unless given. Phase table rows (int64):
    ry, rx, taps_y, taps_x (taps of the filter in this phase), y0, ny, x0, nx (the phase rows
    y0..y0+ny-1 and columns x0..x0+nx-1 that land inside the unpadded input, for dx)."""
    out_h = (h + 2 * pad_y - sy) // stride_y + 1
    out_w = (w + 2 * pad_x - sx) // stride_x + 1
    table = []
    for ry in range(stride_y):
        for rx in range(stride_x):
            ty, tx = max(0, -(-(sy - ry) // stride_y)), max(0, -(-(sx - rx) // stride_x))
            y0, x0 = -(-(pad_y - ry) // stride_y), -(-(pad_x - rx) // stride_x)
            ny = (pad_y + h - 1 - ry) // stride_y + 1 - y0
            nx = (pad_x + w - 1 - rx) // stride_x + 1 - x0
            table.append((ry, rx, ty, tx, y0, ny, x0, nx))
    live = [t for t in table if t[5] > 0 and t[7] > 0]
    # dout is padded by `top` rows / `left` columns so dx never reads outside its image.
    top = max([0] + [t[2] - 1 - t[4] for t in live])
    left = max([0] + [t[3] - 1 - t[6] for t in live])
    width = max([-(-(w + 2 * pad_x) // stride_x), left + out_w]
                + [t[6] + t[7] + left for t in live])
    # Consecutive images share their zero rows (one image's bottom padding is the next one's
    # top padding): `rows` is the fewest rows per image that keep every read of one image
    # off the data of its neighbours, in x (forward, dw) and in dout (dx).
    rows = max([out_h, top + out_h] + [t[4] + t[5] for t in live]
               + [out_h + t[2] - 1 - t[4] for t in live if t[2] > 0])
    # The last image's bottom padding, and reads made for garbage columns, land in the tail.
    tail = round_up((max(0, -(-(h + 2 * pad_y) // stride_y) - rows) + 1) * width + 32, ALIGN)
    img = round_up(rows * width, ALIGN)
    f4, c4 = round_up(f), round_up(c)
    # dpad rows start `lead` zeros early so that dw's loads of dout are 64-byte aligned.
    lead = -(top * width + left) % ALIGN
    row = round_up(lead + n * img + tail, ALIGN)
    grid_row = n * img
    if group is None:
        # Small images: a few per task, or each pass of the inner loop is mostly overhead
        # (2x at 8x8). Keep at least MIN_TASKS tasks for the threads.
        group = max(1, min(n, MAX_GROUP, round(GROUP_TARGET / ((out_h - 1) * width + out_w))))
        while group > 1 and -(-n // group) * (min(f4, c4) // BLOCK) < MIN_TASKS:
            group -= 1
        group = -(-n // -(-n // group))  # same number of tasks, images spread evenly
    while any(not 512 <= k * grid_row * 4 % 4096 <= 3584 for k in range(1, BLOCK)):
        grid_row += ALIGN
    geo = ConvGeometry(n, c, h, w, f, f4, c4, sy, sx, stride_y, stride_x, pad_y, pad_x,
                       out_h, out_w, len(table), table[0][2], table[0][3], width, rows, img,
                       top, left, row, grid_row, lead, group)
    phases = np.array(table, dtype=np.int64)
    phases.setflags(write=False)  # shared by every caller of this cached geometry
    return geo, phases


@njit(cache=True, nogil=True, error_model="numpy")
def forward_weights(wf, w, phases, stride_y, stride_x):
    # w: (F, C, sy, sx) -> wf: (P, F4, C*taps), padding rows and unused columns zeroed.
    # A loop, not NumPy slicing: the weights change every step and ~10 small NumPy calls per
    # conv layer cost more than the copy.
    zero = wf.dtype.type(0)
    for p in range(phases.shape[0]):
        ry, rx, ty, tx = phases[p, 0], phases[p, 1], phases[p, 2], phases[p, 3]
        for f in range(wf.shape[1]):
            row = wf[p, f]
            _fill(row, zero)
            if f < w.shape[0]:
                for c in range(w.shape[1]):
                    for qy in range(ty):
                        for qx in range(tx):
                            row[(c * ty + qy) * tx + qx] = w[f, c, ry + qy * stride_y,
                                                             rx + qx * stride_x]


@njit(cache=True, nogil=True, error_model="numpy")
def flipped_weights(wd, w, phases, stride_y, stride_x):
    # w: (F, C, sy, sx) -> wd: (P, C4, F*taps), each phase's taps flipped in y and x, with
    # filters and channels swapped; padding rows and unused columns zeroed.
    zero = wd.dtype.type(0)
    n_f, n_c = w.shape[0], w.shape[1]
    if phases.shape[0] == 1 and stride_y == 1 and stride_x == 1:
        # Stride 1: every tap in one phase, so flipping is reversing each (f, c) block of
        # taps; flat views make that a short unit-stride loop (2x the general loop).
        n_taps = w.shape[2] * w.shape[3]
        taps = w.reshape(n_f, n_c, n_taps)
        for c in range(wd.shape[1]):
            row = wd[0, c]  # F*taps long: every element is written below, or zeroed
            if c >= n_c:
                _fill(row, zero)
            else:
                for f in range(n_f):
                    src = taps[f, c]
                    dst = row[f * n_taps:(f + 1) * n_taps]
                    for k in range(n_taps):
                        dst[k] = src[n_taps - 1 - k]
        return
    for p in range(phases.shape[0]):
        ry, rx, ty, tx = phases[p, 0], phases[p, 1], phases[p, 2], phases[p, 3]
        for c in range(wd.shape[1]):
            row = wd[p, c]
            _fill(row, zero)
            if c < n_c:
                for f in range(w.shape[0]):
                    for qy in range(ty):
                        for qx in range(tx):
                            row[(f * ty + qy) * tx + qx] = w[f, c, ry + (ty - 1 - qy) * stride_y,
                                                             rx + (tx - 1 - qx) * stride_x]


@njit(cache=True, nogil=True, error_model="numpy")
def _next_tap(off, jy, jx, taps_y, taps_x, width, sstride):
    # Step (a, jy, jx) in C order, keeping off = a*sstride + jy*width + jx (a division per
    # tap would cost as much as a short inner loop).
    jx += 1
    off += 1
    if jx == taps_x:
        jx = 0
        jy += 1
        off += width - taps_x
        if jy == taps_y:
            jy = 0
            off += sstride - taps_y * width
    return off, jy, jx


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _correlate4(out, o, obase, src, sbase, sstride, wt, n_r, taps_y, taps_x, width, length):
    # out[o+k, obase+i] += sum_r wt[o+k, r] * src[sbase + off(r) + i]   (k < 4, i < length)
    # r runs over (a, jy, jx) in C order, off(r) = a*sstride + jy*width + jx.
    # contract: a*b + c becomes one FMA (10% faster, and no less accurate).
    o0 = out[o, obase:]
    o1 = out[o + 1, obase:]
    o2 = out[o + 2, obase:]
    o3 = out[o + 3, obase:]
    off, jy, jx = sbase, 0, 0
    r = 0
    while r + 3 <= n_r:
        x0 = src[off:]
        off, jy, jx = _next_tap(off, jy, jx, taps_y, taps_x, width, sstride)
        x1 = src[off:]
        off, jy, jx = _next_tap(off, jy, jx, taps_y, taps_x, width, sstride)
        x2 = src[off:]
        off, jy, jx = _next_tap(off, jy, jx, taps_y, taps_x, width, sstride)
        a0, a1, a2 = wt[o, r], wt[o, r + 1], wt[o, r + 2]
        b0, b1, b2 = wt[o + 1, r], wt[o + 1, r + 1], wt[o + 1, r + 2]
        c0, c1, c2 = wt[o + 2, r], wt[o + 2, r + 1], wt[o + 2, r + 2]
        d0, d1, d2 = wt[o + 3, r], wt[o + 3, r + 1], wt[o + 3, r + 2]
        for i in range(length):
            v0 = x0[i]
            v1 = x1[i]
            v2 = x2[i]
            # Summed from the output on: three FMAs a row. `o += a*x + b*y + c*z` is one
            # multiply, two FMAs and an add (16 operations for 12, measured 20-35% slower).
            o0[i] = ((o0[i] + a0 * v0) + a1 * v1) + a2 * v2
            o1[i] = ((o1[i] + b0 * v0) + b1 * v1) + b2 * v2
            o2[i] = ((o2[i] + c0 * v0) + c1 * v1) + c2 * v2
            o3[i] = ((o3[i] + d0 * v0) + d1 * v1) + d2 * v2
        r += 3
    while r < n_r:
        x0 = src[off:]
        off, jy, jx = _next_tap(off, jy, jx, taps_y, taps_x, width, sstride)
        a0, b0, c0, d0 = wt[o, r], wt[o + 1, r], wt[o + 2, r], wt[o + 3, r]
        for i in range(length):
            v0 = x0[i]
            o0[i] += a0 * v0
            o1[i] += b0 * v0
            o2[i] += c0 * v0
            o3[i] += d0 * v0
        r += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _tap_after(qy, qx, taps_x):
    # The tap after (qy, qx) in C order. dw walks its taps this way: with a // and % per tap,
    # dw at 8x8x20, batch 4, took 85 us instead of 70 (the dot products there are short).
    qx += 1
    if qx == taps_x:
        return qy + 1, 0
    return qy, qx


@njit(cache=True, nogil=True, error_model="numpy")
def _image_block_task(t, n_blocks, g):
    # Task t of forward or dx (`group` images x 4 channels) -> (first channel o, images
    # n0..n1-1, their offset `base` in a grid row).
    gi = t // n_blocks
    o = (t - gi * n_blocks) * 4
    n0 = gi * g.group
    n1 = min(n0 + g.group, g.n)
    return o, n0, n1, n0 * g.img


@njit(cache=True, nogil=True, error_model="numpy")
def _vector_length(n):
    # Round a loop length up to whole 16-lane vectors: LLVM's scalar remainder loop costs as
    # much as ~10 vector iterations. The extra elements are garbage columns (never cropped;
    # dout is zero there, so dw gains nothing) and the block tails keep them in bounds.
    return (n + ALIGN - 1) // ALIGN * ALIGN


@njit(cache=True, nogil=True, error_model="numpy")
def _fill(a, value):
    # Explicit loop: a slice assignment inside prange would become a nested parfor.
    for i in range(a.shape[0]):
        a[i] = value


@njit(cache=True, nogil=True, error_model="numpy")
def _pad_plane(plane, src, ry, rx, g):
    # src: (H, W) -> plane: (img,) phase (ry, rx) of src, zero padded, on the grid.
    zero = plane.dtype.type(0)
    _fill(plane, zero)
    # phase columns xx with 0 <= xx*stride_x + rx - pad_x < W
    xx_lo = min(g.width, max(0, -(-(g.pad_x - rx) // g.stride_x)))
    n_copy = min(g.width, max(xx_lo, (g.pad_x + g.w - 1 - rx) // g.stride_x + 1)) - xx_lo
    x_lo = xx_lo * g.stride_x + rx - g.pad_x
    for yy in range(g.rows):
        y = yy * g.stride_y + ry - g.pad_y
        if 0 <= y < g.h:
            dst = plane[yy * g.width + xx_lo:]
            src_row = src[y, x_lo:]
            if g.stride_x == 1:
                for i in range(n_copy):
                    dst[i] = src_row[i]
            else:
                for i in range(n_copy):
                    dst[i] = src_row[i * g.stride_x]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def pad_phases(xph, x, geo, phases):
    # x: (N, C, H, W) -> xph: (P, C, row) flattened, image n at n*img; zero outside x.
    g = ConvGeometry(*geo)
    zero = xph.dtype.type(0)
    for t in prange(g.c * g.n):
        c = t // g.n
        n = t - c * g.n
        for p in range(g.phases):
            start = (p * g.c + c) * g.row
            _pad_plane(xph[start + n * g.img:start + (n + 1) * g.img], x[n, c],
                       phases[p, 0], phases[p, 1], g)
            if n == g.n - 1:
                _fill(xph[start + g.n * g.img:start + g.row], zero)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def conv_forward(out, relu_out, grid, xph, wf, bias, geo, phases):
    # xph (from pad_phases), wf (from forward_weights), bias: (F,) -> out: (N, F, Ho, Wo).
    # relu_out: (N, F, Ho, Wo) max(out, 0) as well, when the net fuses the relu that follows
    # (a NaN passes, as in relu_forward); an empty array when it does not.
    # grid: (F4, grid_row) scratch. One task = `group` images x 4 filters.
    g = ConvGeometry(*geo)
    relu = relu_out.size > 0
    zero = out.dtype.type(0)
    n_blocks = g.f4 // 4
    for t in prange((g.n + g.group - 1) // g.group * n_blocks):
        o, n0, n1, base = _image_block_task(t, n_blocks, g)
        length = _vector_length((n1 - n0 - 1) * g.img + (g.out_h - 1) * g.width + g.out_w)
        for k in range(4):
            _fill(grid[o + k, base:base + length], 0)
        for p in range(g.phases):
            ty, tx = phases[p, 2], phases[p, 3]
            _correlate4(grid, o, base, xph, p * g.c * g.row + base, g.row, wf[p],
                        g.c * ty * tx, ty, tx, g.width, length)
        for n in range(n0, n1):
            for f in range(o, min(o + 4, g.f)):
                bf = bias[f]
                for oy in range(g.out_h):
                    src = grid[f, n * g.img + oy * g.width:]
                    dst = out[n, f, oy]
                    if relu:
                        rdst = relu_out[n, f, oy]
                        for ox in range(g.out_w):
                            v = src[ox] + bf
                            dst[ox] = v
                            rdst[ox] = zero if v < zero else v
                    else:
                        for ox in range(g.out_w):
                            dst[ox] = src[ox] + bf


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def pad_dout(dpad, db, dout, relu_out, geo):
    # dout: (N, F, Ho, Wo) -> dpad: (F4, row) flattened: dout[n, f, oy, ox] at
    # f*row + lead + n*img + (oy + top)*width + ox + left; zero everywhere else (rows >= F too).
    # db: (F,) += the bias gradient, the sum of dout over the batch and positions (skipped when
    # db is empty: no bias), made while dout passes by. One task = one filter: it owns db[f].
    # relu_out: when not empty, the output of a fused relu; dout is then the gradient at the
    # relu's output and passes only where relu_out > 0 (relu_backward, on the way).
    # The bias sum runs over each copied image in ONE loop that both cases share: with
    # reassoc LLVM picks the order of the additions per loop and per CPU (vector width,
    # interleave), and a sum inside each copy loop gave the fused and the plain pass
    # different bits on AVX-512 Xeons (1 ulp of db). One loop, one order: the same bits on
    # every target. It runs from the image's first value to its last, over the zeros of the
    # garbage columns too: one long unit-stride loop is faster than a short one per row.
    g = ConvGeometry(*geo)
    zero = dpad.dtype.type(0)
    relu = relu_out.size > 0
    for f in prange(g.f4):
        _fill(dpad[f * g.row:(f + 1) * g.row], zero)
        if f >= g.f:
            continue
        s = zero
        for n in range(g.n):
            plane = dpad[f * g.row + g.lead + n * g.img:]
            for oy in range(g.out_h):
                dst = plane[(oy + g.top) * g.width + g.left:]
                src = dout[n, f, oy]
                if relu:
                    passes = relu_out[n, f, oy]
                    for ox in range(g.out_w):
                        dst[ox] = src[ox] if passes[ox] > 0 else zero
                else:
                    for ox in range(g.out_w):
                        dst[ox] = src[ox]
            s = _add_row(s, plane[g.top * g.width + g.left:],
                         (g.out_h - 1) * g.width + g.out_w)
        if db.shape[0] > 0:
            db[f] += s


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _add_row(s, row, n):
    # s + row[0] + ... + row[n-1]; reassoc lets the sum vectorise (it only reorders it).
    for i in range(n):
        s += row[i]
    return s


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def conv_backward_data(dx, grid, dpad, wd, geo, phases):
    # dpad (from pad_dout), wd (from flipped_weights) -> dx: (N, C, H, W), fully overwritten.
    # grid: (C4, grid_row) scratch. One task = `group` images x 4 input channels.
    g = ConvGeometry(*geo)
    n_blocks = g.c4 // 4
    for t in prange((g.n + g.group - 1) // g.group * n_blocks):
        o, n0, n1, base = _image_block_task(t, n_blocks, g)
        for p in range(g.phases):
            ry, rx, ty, tx = phases[p, 0], phases[p, 1], phases[p, 2], phases[p, 3]
            y0, ny, x0, nx = phases[p, 4], phases[p, 5], phases[p, 6], phases[p, 7]
            if ny <= 0 or nx <= 0:
                continue
            length = _vector_length((n1 - n0 - 1) * g.img + (ny - 1) * g.width + nx)
            for k in range(4):
                _fill(grid[o + k, base:base + length], 0)
            shift = (y0 + g.top - ty + 1) * g.width + x0 + g.left - tx + 1
            _correlate4(grid, o, base, dpad, g.lead + base + shift, g.row, wd[p],
                        g.f * ty * tx, ty, tx, g.width, length)
            x_lo = x0 * g.stride_x + rx - g.pad_x
            for n in range(n0, n1):
                for c in range(o, min(o + 4, g.c)):
                    for j in range(ny):
                        src = grid[c, n * g.img + j * g.width:]
                        dst = dx[n, c, (y0 + j) * g.stride_y + ry - g.pad_y, x_lo:]
                        if g.stride_x == 1:
                            for i in range(nx):
                                dst[i] = src[i]
                        else:
                            for i in range(nx):
                                dst[i * g.stride_x] = src[i]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True,
      fastmath={"reassoc", "contract"})
def conv_backward_weights(dw, xph, dpad, geo, phases):
    # dw: (F, C, sy, sx) += sum over the batch of dout x input, from xph and dpad.
    # One task = 4 filters x 1 input channel: it owns dw[f:f+4, c]. Each pass is a dot product
    # over the whole batch (chunking it only added horizontal sums); reassoc lets LLVM
    # vectorise it (it only reorders a sum).
    g = ConvGeometry(*geo)
    n_blocks = g.f4 // 4
    zero = dw.dtype.type(0)
    total = _vector_length((g.n - 1) * g.img + (g.out_h - 1) * g.width + g.out_w)
    for t in prange(n_blocks * g.c):
        bi = t // g.c
        c = t - bi * g.c
        f = bi * 4
        nf = min(4, g.f - f)
        drow = f * g.row + g.lead + g.top * g.width + g.left
        d0 = dpad[drow:]
        d1 = dpad[drow + g.row:]
        d2 = dpad[drow + 2 * g.row:]
        d3 = dpad[drow + 3 * g.row:]
        for p in range(g.phases):
            ry, rx, ty, tx = phases[p, 0], phases[p, 1], phases[p, 2], phases[p, 3]
            xrow = xph[(p * g.c + c) * g.row:]
            k = 0
            qy, qx = 0, 0  # tap k's row and column, stepped along without a division
            while k < ty * tx:
                # up to 3 taps per pass; missing taps repeat the last (sums unused)
                m = min(3, ty * tx - k)
                qy1, qx1 = _tap_after(qy, qx, tx) if m > 1 else (qy, qx)
                qy2, qx2 = _tap_after(qy1, qx1, tx) if m > 2 else (qy1, qx1)
                x0 = xrow[qy * g.width + qx:]
                x1 = xrow[qy1 * g.width + qx1:]
                x2 = xrow[qy2 * g.width + qx2:]
                s00 = s01 = s02 = s10 = s11 = s12 = zero
                s20 = s21 = s22 = s30 = s31 = s32 = zero
                for i in range(total):
                    e0, e1, e2, e3 = d0[i], d1[i], d2[i], d3[i]
                    v0, v1, v2 = x0[i], x1[i], x2[i]
                    s00 += e0 * v0
                    s01 += e0 * v1
                    s02 += e0 * v2
                    s10 += e1 * v0
                    s11 += e1 * v1
                    s12 += e1 * v2
                    s20 += e2 * v0
                    s21 += e2 * v1
                    s22 += e2 * v2
                    s30 += e3 * v0
                    s31 += e3 * v1
                    s32 += e3 * v2
                sums = ((s00, s01, s02), (s10, s11, s12), (s20, s21, s22),
                        (s30, s31, s32))
                y0, x0_ = qy * g.stride_y + ry, qx * g.stride_x + rx
                y1, x1_ = qy1 * g.stride_y + ry, qx1 * g.stride_x + rx
                y2, x2_ = qy2 * g.stride_y + ry, qx2 * g.stride_x + rx
                for j in range(nf):
                    dw[f + j, c, y0, x0_] += sums[j][0]
                    if m > 1:
                        dw[f + j, c, y1, x1_] += sums[j][1]
                    if m > 2:
                        dw[f + j, c, y2, x2_] += sums[j][2]
                qy, qx = _tap_after(qy2, qx2, tx)
                k += m
