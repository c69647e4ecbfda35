"""Winograd F(4x4, 3x3) convolution: 3x3 filters at stride 1, forward above backward.

A 3x3 convolution computes each 4x4 block of outputs ("tile") from a 6x6 block of input with
144 multiplies per channel pair; Winograd's minimal filtering algorithm (Lavin and Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016) does it with 36, 4x fewer:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        g: 3x3 filter, d: 6x6 input tile, *: elementwise

    B^T = [4  0 -5  0  1  0]    G = [ 1/4     0     0 ]    A^T = [1  1  1  1  1  0]
          [0 -4 -4  1  1  0]        [-1/6  -1/6  -1/6 ]          [0  1 -1  2 -2  0]
          [0  4 -4 -1  1  0]        [-1/6   1/6  -1/6 ]          [0  1  1  4  4  0]
          [0 -2 -1  2  1  0]        [1/24  1/12   1/6 ]          [0  1 -1  8 -8  1]
          [0  2 -1 -2  1  0]        [1/24 -1/12   1/6 ]
          [0  4  0 -5  0  1]        [  0     0     1  ]

Summed over input channels, the elementwise product becomes 36 independent matrix products,
one per element e of the 6x6 transformed tile: M[e] (F x T) = U[e] (F x C) @ V[e] (C x T)
over all T tiles of the batch. Those products are long unit-stride loops, register-blocked as
conv.py's `_correlate4` is (4 output rows x 3 inputs per pass), chunked so a chunk of V stays
in cache while every filter block passes over it. Unlike the direct kernels'
grids (conv.py), tiles waste nothing on padding columns, which is what made 7x7 and 3x3 maps
slow there (53% and 24% of peak at 256 channels). F(2x2, 3x3) (16 products, 2.25x fewer
multiplies) came first; F(4x4, 3x3) does 1.78x less product work again and moves 1.78x less
transformed data per output, for rounding errors some 10x larger (still ~1e-5 of the outputs'
scale in float32, see tests/engine/kernels/test_winograd.py).

Backward is the adjoint of the same three linear steps, not a second convolution:
    Z_t = A dY_t A^T               (6x6 from each 4x4 tile of dout)
    dU[e] = Z[e] @ V[e]^T          -> dw += G^T dU G
    dV[e] = U[e]^T @ Z[e]          -> dx += B dV_t B^T, each 6x6 tile added where it read x
                                      (U read transposed in place: no copy)

Layouts (flattened). Z: (36*f_rows, tile_row), rows (e, f), tile t = (n*tiles_y + ty)*tiles_x
+ tx along a row; U and dU: (36*f_rows, c_cols), the weights of row (e, f). V, M and dV take
one of two layouts, the same for a whole batch:
- tile rows: V (36*c_rows, tile_row) and dV (36*dc_rows, tile_row), rows (e, c); M as Z. The
  products' vectors run along tiles.
- tile-major, when a group has no more tiles than the layer has channels in and out (a wide
  layer on small maps, e.g. 3x3 maps at batch 64: one tile per image): V and dV
  (36*t_rows, c_cols), M (36*t_rows, f_cols), rows (e, t). The products become M^T = V^T U^T (U^T:
  (36*c_rows, f_cols), rows (e, c)), dV^T = Z^T U and dU += Z V^T as rank-1 updates, all
  with vectors along channels or filters: 64 tiles make rows too short for the setup of a
  pass to pay, 256 channels do not.
Channel counts are padded to multiples of 4 for the 4-row passes; padding rows and columns
and tail tiles are zero. Kernels validate and allocate nothing (engine/layers/conv.py does
both).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from numba import njit, prange

from engine.kernels.conv import ALIGN, _fill, _vector_length, round_up

MIN_CHUNK, MAX_CHUNK = 256, 2048   # tiles per matrix-product task
V_CHUNK_BYTES = 256 * 1024          # V's share of L2 in a product task
TILE, ALPHA = 4, 6                  # outputs per tile side; inputs per tile side (TILE + 2)
ELEMENTS = ALPHA * ALPHA            # transformed values per tile: 36 matrix products
DW_CHUNK = 1024                     # tiles per pass of the weight-gradient dot products


class WinogradGeometry(NamedTuple):
    """n, c, h, w, f: batch, input channels, input size, filters; f4, c4: rounded up to 4;
    out_h, out_w: output size; tiles_y, tiles_x: 4x4 tiles per image; tiles: in the batch;
    tile_row: tiles rounded up (a row of Z, and of V, M, dV when tile-major is 0);
    chunk: tiles per product task. f_rows, c_rows, dc_rows: rows per element e in Z and U;
    V; dV (f4, c, c4 rounded up to odd: see winograd_geometry); c_cols: a row of U and dU
    (c, spread). tile_major (0 or 1): V, M and dV hold a row per tile (see the module's
    docstring); t_rows: their rows per element then; f_cols: a row of M and U^T (whose rows per
    element are c_rows). v_rows x v_cols, m_rows x m_cols, dv_rows x dv_cols: V's, M's and
    dV's blocks per element, in whichever layout."""

    n: int; c: int; h: int; w: int; f: int; f4: int; c4: int      # noqa: E702
    pad_y: int; pad_x: int; out_h: int; out_w: int                # noqa: E702
    tiles_y: int; tiles_x: int; tiles: int; tile_row: int; chunk: int  # noqa: E702
    f_rows: int; c_rows: int; dc_rows: int; c_cols: int           # noqa: E702
    tile_major: int; t_rows: int; f_cols: int                     # noqa: E702
    v_rows: int; v_cols: int; m_rows: int; m_cols: int            # noqa: E702
    dv_rows: int; dv_cols: int                                    # noqa: E702


def applies(sy: int, sx: int, stride_y: int, stride_x: int, pad_y: int, pad_x: int,
            h: int, w: int) -> bool:
    """Whether a conv of this shape can run here: 3x3 at stride 1, padding at most 2 (so every
    tile starts at most 2 pixels outside the image), an output of at least one pixel."""
    return (sy == sx == 3 and stride_y == stride_x == 1 and 0 <= pad_y <= 2
            and 0 <= pad_x <= 2 and h + 2 * pad_y >= 3 and w + 2 * pad_x >= 3)


def tile_major_for(tiles: int, c: int, f: int) -> bool:
    """Whether a group of this many tiles runs tile-major: when neither the input channels
    nor the filters are fewer than the tiles, the products' vectors run along them instead of
    along tiles (measured: docs/engine.md, "Few tiles")."""
    return tiles <= min(c, f)


@lru_cache(maxsize=256)
def winograd_geometry(n, c, h, w, f, pad_y, pad_x, tile_major=None) -> WinogradGeometry:
    """tile_major: None picks by the number of tiles (tile_major_for); the conv layer passes
    its largest group's choice so that every group of a batch shares one layout."""
    out_h, out_w = h + 2 * pad_y - 2, w + 2 * pad_x - 2
    tiles_y, tiles_x = -(-out_h // TILE), -(-out_w // TILE)
    tiles = n * tiles_y * tiles_x
    tile_row = spread_row(tiles)
    # Long chunks amortise each pass's setup (12 weights to broadcast); V's chunk, c x chunk
    # floats, read again by every block of 4 filters, must stay in L2.
    chunk = min(tile_row, max(MIN_CHUNK, min(MAX_CHUNK, V_CHUNK_BYTES // (4 * c) // ALIGN
                                             * ALIGN)))
    # The same again for the blocks of rows, one per e, that a transform reads or writes for
    # each tile: with an even number of rows per block, 256 channels put them all in one L1
    # set (4x slower transforms). An odd number of odd-line rows spreads them.
    f4, c4 = round_up(f), round_up(c)
    f_rows, c_rows, dc_rows, c_cols = f4 + 1, c | 1, c4 + 1, spread_row(c)
    major = int(tile_major_for(tiles, c, f) if tile_major is None else tile_major)
    t_rows, f_cols = round_up(tiles) + 1, spread_row(f)
    if major:
        blocks = (t_rows, c_cols, t_rows, f_cols, t_rows, c_cols)
    else:
        blocks = (c_rows, tile_row, f_rows, tile_row, dc_rows, tile_row)
    return WinogradGeometry(n, c, h, w, f, f4, c4, pad_y, pad_x, out_h, out_w, tiles_y,
                            tiles_x, tiles, tile_row, chunk, f_rows, c_rows, dc_rows, c_cols,
                            major, t_rows, f_cols, *blocks)


def spread_row(n: int) -> int:
    """A row length for n float32 values whose rows do not collide in L1.

    Rows 4 KiB apart (a power-of-two length) share L1 sets and alias in the store buffer:
    the rows a transform touches per tile (one per element e) evicted each other, and the
    products ran at a third of their speed. An odd number of 64-byte lines spreads them over
    the sets, and rows of 4 KiB or more keep neighbours at least 512 bytes apart modulo
    4 KiB. (Short rows stay short: one tile padded to 144 made batch-1 inference 10x
    slower.)"""
    row = round_up(n, ALIGN)
    while row // ALIGN % 2 == 0 or (row * 4 >= 4096 and any(
            not 512 <= k * row * 4 % 4096 <= 3584 for k in range(1, 4))):
        row += ALIGN
    return row


# --- the 1-D transforms and their adjoints (a 6x6 transform is one along each axis) ---------
# k: the constants in the arrays' own float type (a Python 4.0 would make float32 math float64):
# k = (2, 4, 5, 8, 1/4, 1/6, 1/12, 1/24), see _constants.

@njit(cache=True, nogil=True, inline="always")
def _constants(x):
    t = x.dtype.type
    return (t(2.0), t(4.0), t(5.0), t(8.0), t(0.25), t(1.0 / 6.0), t(1.0 / 12.0),
            t(1.0 / 24.0))


@njit(cache=True, nogil=True, inline="always")
def _bt(d0, d1, d2, d3, d4, d5, k):
    # B^T d: input tile -> transformed
    two, four, five = k[0], k[1], k[2]
    return (four * d0 - five * d2 + d4,
            d3 + d4 - four * (d1 + d2),
            four * (d1 - d2) + d4 - d3,
            two * (d3 - d1) + d4 - d2,
            two * (d1 - d3) + d4 - d2,
            four * d1 - five * d3 + d5)


@njit(cache=True, nogil=True, inline="always")
def _b(g, k):
    # B g: the adjoint of _bt (gradient of a transformed tile -> of the input tile); g: 6
    g0, g1, g2, g3, g4, g5 = g
    two, four, five = k[0], k[1], k[2]
    return (four * g0,
            four * (g2 - g1 + g5) + two * (g4 - g3),
            -five * g0 - four * (g1 + g2) - g3 - g4,
            g1 - g2 + two * (g3 - g4) - five * g5,
            g0 + g1 + g2 + g3 + g4,
            g5)


@njit(cache=True, nogil=True, inline="always")
def _at(m, k):
    # A^T m: product (6 values) -> 4 outputs
    m0, m1, m2, m3, m4, m5 = m
    two, four, eight = k[0], k[1], k[3]
    return (m0 + m1 + m2 + m3 + m4,
            m1 - m2 + two * (m3 - m4),
            m1 + m2 + four * (m3 + m4),
            m1 - m2 + eight * (m3 - m4) + m5)


@njit(cache=True, nogil=True, inline="always")
def _a(y0, y1, y2, y3, k):
    # A y: the adjoint of _at
    two, four, eight = k[0], k[1], k[3]
    return (y0,
            y0 + y1 + y2 + y3,
            y0 - y1 + y2 - y3,
            y0 + two * y1 + four * y2 + eight * y3,
            y0 - two * y1 + four * y2 - eight * y3,
            y3)


@njit(cache=True, nogil=True, inline="always")
def _g(a0, a1, a2, k):
    # G a: filter taps -> transformed
    quarter, sixth, twelfth, twentyfourth = k[4], k[5], k[6], k[7]
    return (quarter * a0,
            -sixth * (a0 + a1 + a2),
            -sixth * (a0 - a1 + a2),
            twentyfourth * a0 + twelfth * a1 + sixth * a2,
            twentyfourth * a0 - twelfth * a1 + sixth * a2,
            a2)


@njit(cache=True, nogil=True, inline="always")
def _gt(u, k):
    # G^T u: the adjoint of _g; u: 6 values
    u0, u1, u2, u3, u4, u5 = u
    quarter, sixth, twelfth, twentyfourth = k[4], k[5], k[6], k[7]
    return (quarter * u0 - sixth * (u1 + u2) + twentyfourth * (u3 + u4),
            sixth * (u2 - u1) + twelfth * (u3 - u4),
            sixth * (u3 + u4 - u1 - u2) + u5)


@njit(cache=True, nogil=True, inline="always")
def _six(a, base, stride):
    # a[base + i*stride] for i < 6: one row of a tile's 36 elements, the rows e apart
    return (a[base], a[base + stride], a[base + 2 * stride], a[base + 3 * stride],
            a[base + 4 * stride], a[base + 5 * stride])


@njit(cache=True, nogil=True, inline="always")
def _input_row(plane, y, x0, h, w, k):
    # B^T applied along row y of the 6 pixels from column x0; zero outside the image (the
    # padding, and the far side of a last tile)
    zero = plane.dtype.type(0)
    if not 0 <= y < h:
        return (zero, zero, zero, zero, zero, zero)
    row = plane[y]
    if 0 <= x0 and x0 + ALPHA <= w:
        return _bt(row[x0], row[x0 + 1], row[x0 + 2], row[x0 + 3], row[x0 + 4], row[x0 + 5], k)
    p = (row[x0] if 0 <= x0 < w else zero, row[x0 + 1] if 0 <= x0 + 1 < w else zero,
         row[x0 + 2] if 0 <= x0 + 2 < w else zero, row[x0 + 3] if 0 <= x0 + 3 < w else zero,
         row[x0 + 4] if 0 <= x0 + 4 < w else zero, row[x0 + 5] if 0 <= x0 + 5 < w else zero)
    return _bt(p[0], p[1], p[2], p[3], p[4], p[5], k)


@njit(cache=True, nogil=True, inline="always")
def _dout_row(dout, relu_out, relu, n, f, y, x0, h, w, k):
    # A applied along row y of dout's 4 values from column x0: zero beyond the output and,
    # with a fused relu, where it did not pass. Also returns their sum (for db).
    zero = dout.dtype.type(0)
    if y >= h:
        return (zero, zero, zero, zero, zero, zero), zero
    d = dout[n, f, y]
    r = relu_out[n, f, y] if relu else d
    v0 = d[x0] if x0 < w and (not relu or r[x0] > zero) else zero
    v1 = d[x0 + 1] if x0 + 1 < w and (not relu or r[x0 + 1] > zero) else zero
    v2 = d[x0 + 2] if x0 + 2 < w and (not relu or r[x0 + 2] > zero) else zero
    v3 = d[x0 + 3] if x0 + 3 < w and (not relu or r[x0 + 3] > zero) else zero
    return _a(v0, v1, v2, v3, k), (v0 + v1) + (v2 + v3)


# --- forward ----------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _filter_tile(g, k):
    # 3x3 filter g -> the 6 rows of G g G^T: columns of g transformed (G g: 6 x 3), then
    # each row of that, (G g) G^T
    r0 = _g(g[0, 0], g[1, 0], g[2, 0], k)
    r1 = _g(g[0, 1], g[1, 1], g[2, 1], k)
    r2 = _g(g[0, 2], g[1, 2], g[2, 2], k)
    return (_g(r0[0], r1[0], r2[0], k), _g(r0[1], r1[1], r2[1], k),
            _g(r0[2], r1[2], r2[2], k), _g(r0[3], r1[3], r2[3], k),
            _g(r0[4], r1[4], r2[4], k), _g(r0[5], r1[5], r2[5], k))


@njit(cache=True, nogil=True, inline="always")
def _store_six(dst, row, rows, col, values):
    # dst[row + i*rows, col] = values[i], i < 6: one row of a tile's elements, e apart
    dst[row, col] = values[0]
    dst[row + rows, col] = values[1]
    dst[row + 2 * rows, col] = values[2]
    dst[row + 3 * rows, col] = values[3]
    dst[row + 4 * rows, col] = values[4]
    dst[row + 5 * rows, col] = values[5]


@njit(cache=True, nogil=True, error_model="numpy")
def _filter_tiles(dst, rows, row, filters, k):
    # dst[e*rows + row, i] = element e of G filters[i] G^T, each i. Written out element by
    # element: tuple indices that are not constants kept this loop scalar (2.6x slower).
    span = ALPHA * rows
    for i in range(filters.shape[0]):
        t = _filter_tile(filters[i], k)
        _store_six(dst, row, rows, i, t[0])
        _store_six(dst, row + span, rows, i, t[1])
        _store_six(dst, row + 2 * span, rows, i, t[2])
        _store_six(dst, row + 3 * span, rows, i, t[3])
        _store_six(dst, row + 4 * span, rows, i, t[4])
        _store_six(dst, row + 5 * span, rows, i, t[5])


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def transform_weights(u, ut, w):
    # w: (F, C, 3, 3) -> u: (36*f_rows, c_cols), row (e, f) = element e of G w[f, c] G^T for
    # each c; and its transpose ut: (36*c_rows, f_cols), row (e, c), read by tile-major
    # forward products. Either may be empty (no rows): it is skipped. Padding zero.
    # One task = one filter: it owns u's rows (e, f); then one channel: ut's rows (e, c).
    n_f, n_c = w.shape[0], w.shape[1]
    f_rows = u.shape[0] // ELEMENTS
    zero = u.dtype.type(0)
    k = _constants(u)
    for f in prange(f_rows):
        for e in range(ELEMENTS):
            _fill(u[e * f_rows + f, n_c if f < n_f else 0:], zero)
        if f < n_f:
            _filter_tiles(u, f_rows, f, w[f], k)
    ut_rows = ut.shape[0] // ELEMENTS
    for c in prange(ut_rows if ut.shape[0] > 0 else 0):
        for e in range(ELEMENTS):
            _fill(ut[e * ut_rows + c, n_f if c < n_c else 0:], zero)
        if c < n_c:
            _filter_tiles(ut, ut_rows, c, w[:, c], k)


@njit(cache=True, nogil=True, inline="always")
def _strides(tile_major, cols):
    # (channel or filter stride, tile stride) in a block of V, M or dV with rows `cols` long
    return (1, cols) if tile_major else (cols, 1)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def transform_input(v, x, geo):
    # x: (N, C, H, W) -> v, flattened: B^T d B of every 6x6 tile d (tile (ty, tx) of image n
    # starts at (4ty - pad_y, 4tx - pad_x)), element e of channel c of tile t at
    # (e*v_rows + c)*v_cols + t, or (e*v_rows + t)*v_cols + c tile-major; padding zero.
    # One task = one (image, channel): it owns those tiles' values in 36 blocks.
    g = WinogradGeometry(*geo)
    per_image = g.tiles_y * g.tiles_x
    zero = v.dtype.type(0)
    k = _constants(v)
    block = g.v_rows * g.v_cols
    cs, ts = _strides(g.tile_major, g.v_cols)
    for task in prange(g.n * g.c):
        c = task // g.n
        n = task - c * g.n
        plane = x[n, c]
        for ty in range(g.tiles_y):
            y0 = TILE * ty - g.pad_y
            for tx in range(g.tiles_x):
                x0 = TILE * tx - g.pad_x
                t = n * per_image + ty * g.tiles_x + tx
                h0 = _input_row(plane, y0, x0, g.h, g.w, k)
                h1 = _input_row(plane, y0 + 1, x0, g.h, g.w, k)
                h2 = _input_row(plane, y0 + 2, x0, g.h, g.w, k)
                h3 = _input_row(plane, y0 + 3, x0, g.h, g.w, k)
                h4 = _input_row(plane, y0 + 4, x0, g.h, g.w, k)
                h5 = _input_row(plane, y0 + 5, x0, g.h, g.w, k)
                for j in range(ALPHA):
                    col = _bt(h0[j], h1[j], h2[j], h3[j], h4[j], h5[j], k)
                    for i in range(ALPHA):
                        v[(i * ALPHA + j) * block + c * cs + t * ts] = col[i]
        if n == g.n - 1 and not g.tile_major:
            for e in range(ELEMENTS):
                start = e * block + c * g.v_cols
                _fill(v[start + g.tiles:start + g.v_cols], zero)
    for e in prange(ELEMENTS if g.tile_major else 0):
        # tile-major padding: the channels past c in every tile's row, then the tail rows
        for t in range(g.tiles):
            start = e * block + t * g.v_cols
            _fill(v[start + g.c:start + g.v_cols], zero)
        _fill(v[e * block + g.tiles * g.v_cols:(e + 1) * block], zero)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _product4(out, o, obase, src, sbase, sstride, u, wrow, wcol, transposed, n_r, length):
    # out[o+k, obase+i] += sum_r w(k, r) * src[sbase + r*sstride + i]   (k < 4, i < length)
    # w(k, r) = u[wrow + k, wcol + r], or u[wrow + r, wcol + k] when transposed (dx's
    # products read U as U^T without a copy). As conv._correlate4: 4 outputs x 3 inputs a
    # pass, summed from the output on (three FMAs a row).
    o0 = out[o, obase:]
    o1 = out[o + 1, obase:]
    o2 = out[o + 2, obase:]
    o3 = out[o + 3, obase:]
    r = 0
    while r < n_r:
        m = min(3, n_r - r)       # missing inputs repeat the last with weight 0
        r1, r2 = r + min(1, m - 1), r + m - 1
        x0 = src[sbase + r * sstride:]
        x1 = src[sbase + r1 * sstride:]
        x2 = src[sbase + r2 * sstride:]
        zero = u.dtype.type(0)
        if transposed:
            a0, b0, c0, d0 = u[wrow + r, wcol], u[wrow + r, wcol + 1], u[wrow + r, wcol + 2], \
                u[wrow + r, wcol + 3]
            a1, b1, c1, d1 = u[wrow + r1, wcol], u[wrow + r1, wcol + 1], \
                u[wrow + r1, wcol + 2], u[wrow + r1, wcol + 3]
            a2, b2, c2, d2 = u[wrow + r2, wcol], u[wrow + r2, wcol + 1], \
                u[wrow + r2, wcol + 2], u[wrow + r2, wcol + 3]
        else:
            a0, a1, a2 = u[wrow, wcol + r], u[wrow, wcol + r1], u[wrow, wcol + r2]
            b0, b1, b2 = u[wrow + 1, wcol + r], u[wrow + 1, wcol + r1], u[wrow + 1, wcol + r2]
            c0, c1, c2 = u[wrow + 2, wcol + r], u[wrow + 2, wcol + r1], u[wrow + 2, wcol + r2]
            d0, d1, d2 = u[wrow + 3, wcol + r], u[wrow + 3, wcol + r1], u[wrow + 3, wcol + r2]
        if m < 3:
            a2 = b2 = c2 = d2 = zero
        if m < 2:
            a1 = b1 = c1 = d1 = zero
        for i in range(length):
            v0 = x0[i]
            v1 = x1[i]
            v2 = x2[i]
            o0[i] = ((o0[i] + a0 * v0) + a1 * v1) + a2 * v2
            o1[i] = ((o1[i] + b0 * v0) + b1 * v1) + b2 * v2
            o2[i] = ((o2[i] + c0 * v0) + c1 * v1) + c2 * v2
            o3[i] = ((o3[i] + d0 * v0) + d1 * v1) + d2 * v2
        r += m


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def multiply(out, src, u, n_out4, n_in, transposed, geo):
    # The 36 matrix products over a chunk of tiles t, for o < n_out4:
    #   forward (M = U V):   out[(e, o), t] = sum_i u[(e, o), i] * src[(e, i), t]
    #   dx (dV = U^T Z):     out[(e, o), t] = sum_i u[(e, i), o] * src[(e, i), t]
    # out: (36*rows, tile_row), rows >= n_out4; u: (36*f_rows, c_cols); src: flattened
    # (36*rows', tile_row), rows' >= n_in. One task = (e, chunk of tiles): it owns out's
    # columns of that chunk in e's rows.
    g = WinogradGeometry(*geo)
    n_chunks = (g.tile_row + g.chunk - 1) // g.chunk
    src_rows = src.shape[0] // (ELEMENTS * g.tile_row)
    out_rows = out.shape[0] // ELEMENTS
    u_rows = u.shape[0] // ELEMENTS
    for task in prange(ELEMENTS * n_chunks):
        e = task // n_chunks
        t0 = (task - e * n_chunks) * g.chunk
        length = _vector_length(min(g.chunk, g.tile_row - t0))
        for o in range(0, n_out4, 4):
            row = e * out_rows + o
            for k in range(4):
                _fill(out[row + k, t0:t0 + length], 0)
            if transposed:
                _product4(out, row, t0, src, e * src_rows * g.tile_row + t0, g.tile_row,
                          u, e * u_rows, o, True, n_in, length)
            else:
                _product4(out, row, t0, src, e * src_rows * g.tile_row + t0, g.tile_row,
                          u, e * u_rows + o, 0, False, n_in, length)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def multiply_rows(out, src, w, n_out4, n_in, length, transposed, accumulate):
    # The 36 products with vectors along rows of src (the tile-major products):
    #   out[(e, o), :length] (+)= sum_r w_e(o, r) * src[(e, r), :length]     (o < n_out4)
    # w_e(o, r) = w[(e, o), r], or w[(e, r), o] when transposed; out, src, w: 2-D, 36 blocks
    # of rows each; out is overwritten unless accumulate. One task = one e: it owns out's
    # rows (e, o).
    out_rows = out.shape[0] // ELEMENTS
    src_rows, cols = src.shape[0] // ELEMENTS, src.shape[1]
    w_rows = w.shape[0] // ELEMENTS
    flat = src.reshape(-1)
    zero = out.dtype.type(0)
    for e in prange(ELEMENTS):
        for o in range(0, n_out4, 4):
            row = e * out_rows + o
            if not accumulate:
                for k in range(4):
                    _fill(out[row + k, :length], zero)
            if transposed:
                _product4(out, row, 0, flat, e * src_rows * cols, cols, w, e * w_rows, o,
                          True, n_in, length)
            else:
                _product4(out, row, 0, flat, e * src_rows * cols, cols, w, e * w_rows + o, 0,
                          False, n_in, length)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def transform_output(out, relu_out, m, bias, geo):
    # m: 36 blocks of m_rows x m_cols flattened (a row per filter, or per tile when
    # tile-major), bias: (F,) -> out: (N, F, Ho, Wo) = A^T m_t A + bias per tile; relu_out
    # as in conv.conv_forward (max(out, 0), or empty when no relu is fused).
    # One task = one (image, filter).
    g = WinogradGeometry(*geo)
    per_image = g.tiles_y * g.tiles_x
    relu = relu_out.size > 0
    zero = out.dtype.type(0)
    k = _constants(out)
    stride = g.m_rows * g.m_cols       # from element e to e + 1 of one tile
    fs, ts = _strides(g.tile_major, g.m_cols)
    for task in prange(g.n * g.f):
        n = task // g.f
        f = task - n * g.f
        bf = bias[f]
        for ty in range(g.tiles_y):
            for tx in range(g.tiles_x):
                base = f * fs + (n * per_image + ty * g.tiles_x + tx) * ts
                row = ALPHA * stride       # from one row of the tile's elements to the next
                r0 = _at(_six(m, base, stride), k)
                r1 = _at(_six(m, base + row, stride), k)
                r2 = _at(_six(m, base + 2 * row, stride), k)
                r3 = _at(_six(m, base + 3 * row, stride), k)
                r4 = _at(_six(m, base + 4 * row, stride), k)
                r5 = _at(_six(m, base + 5 * row, stride), k)
                for j in range(TILE):
                    ox = TILE * tx + j
                    if ox >= g.out_w:
                        break
                    col = _at((r0[j], r1[j], r2[j], r3[j], r4[j], r5[j]), k)
                    for i in range(TILE):
                        oy = TILE * ty + i
                        if oy >= g.out_h:
                            break
                        value = col[i] + bf
                        out[n, f, oy, ox] = value
                        if relu:
                            relu_out[n, f, oy, ox] = zero if value < zero else value


# --- backward ---------------------------------------------------------------------------

@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def transform_dout(z, db, dout, relu_out, geo):
    # dout: (N, F, Ho, Wo) -> z: (36*f_rows, tile_row) flattened, A dY_t A^T per 4x4 tile
    # dY_t (zero beyond the output's edge; rows f >= F and tail tiles zero). db: (F,) +=
    # dout summed (skipped when empty), in one fixed order, so a fused relu gives the bits
    # the relu layer's own backward would. relu_out: not empty when a relu is fused: dout is
    # then the gradient at its output and passes only where relu_out > 0.
    # One task = one filter: it owns z's rows (e, f) and db[f].
    g = WinogradGeometry(*geo)
    relu = relu_out.size > 0
    zero = z.dtype.type(0)
    k = _constants(z)
    stride = g.f_rows * g.tile_row
    for f in prange(g.f4):
        if f >= g.f:
            for e in range(ELEMENTS):
                _fill(z[e * stride + f * g.tile_row:e * stride + (f + 1) * g.tile_row], zero)
            continue
        s = zero
        for n in range(g.n):
            for ty in range(g.tiles_y):
                oy = TILE * ty
                for tx in range(g.tiles_x):
                    ox = TILE * tx
                    h0, s0 = _dout_row(dout, relu_out, relu, n, f, oy, ox, g.out_h, g.out_w, k)
                    h1, s1 = _dout_row(dout, relu_out, relu, n, f, oy + 1, ox, g.out_h,
                                       g.out_w, k)
                    h2, s2 = _dout_row(dout, relu_out, relu, n, f, oy + 2, ox, g.out_h,
                                       g.out_w, k)
                    h3, s3 = _dout_row(dout, relu_out, relu, n, f, oy + 3, ox, g.out_h,
                                       g.out_w, k)
                    s += (s0 + s1) + (s2 + s3)
                    base = f * g.tile_row + (n * g.tiles_y + ty) * g.tiles_x + tx
                    for j in range(ALPHA):
                        col = _a(h0[j], h1[j], h2[j], h3[j], k)
                        for i in range(ALPHA):
                            z[base + (i * ALPHA + j) * stride] = col[i]
        for e in range(ELEMENTS):
            start = e * stride + f * g.tile_row
            _fill(z[start + g.tiles:start + g.tile_row], zero)
        if db.shape[0] > 0:
            db[f] += s


@njit(cache=True, nogil=True, error_model="numpy", parallel=True,
      fastmath={"reassoc", "contract"})
def weight_products(du, z, v, geo):
    # du: (36*f_rows, c_cols) += Z[e] @ V[e]^T, dot products over all tiles (tail tiles are
    # zero); a batch in groups adds each group's. One task = (e, 4 filters): it owns du's
    # rows (e, f..f+3). reassoc lets the sums vectorise (it only reorders them).
    g = WinogradGeometry(*geo)
    n_blocks = g.f4 // 4
    zero = du.dtype.type(0)
    for task in prange(ELEMENTS * n_blocks):
        e = task // n_blocks
        row = e * g.f_rows + (task - e * n_blocks) * 4
        for t0 in range(0, g.tile_row, DW_CHUNK):
            length = min(DW_CHUNK, g.tile_row - t0)
            d0 = z[row * g.tile_row + t0:]
            d1 = z[(row + 1) * g.tile_row + t0:]
            d2 = z[(row + 2) * g.tile_row + t0:]
            d3 = z[(row + 3) * g.tile_row + t0:]
            c = 0
            while c < g.c:
                # up to 3 channels per pass; missing ones repeat the last (sums unused)
                m = min(3, g.c - c)
                x0 = v[(e * g.c_rows + c) * g.tile_row + t0:]
                x1 = v[(e * g.c_rows + c + min(1, m - 1)) * g.tile_row + t0:]
                x2 = v[(e * g.c_rows + c + m - 1) * g.tile_row + t0:]
                # The 12 dot products as conv.conv_backward_weights makes them: written out
                # here too, because through a shared function (inlined or not) this loop
                # measured 20-80% slower.
                s00 = s01 = s02 = s10 = s11 = s12 = zero
                s20 = s21 = s22 = s30 = s31 = s32 = zero
                for i in range(length):
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
                sums = ((s00, s01, s02), (s10, s11, s12), (s20, s21, s22), (s30, s31, s32))
                for q in range(4):
                    du[row + q, c] += sums[q][0]
                    if m > 1:
                        du[row + q, c + 1] += sums[q][1]
                    if m > 2:
                        du[row + q, c + 2] += sums[q][2]
                c += m


@njit(cache=True, nogil=True, inline="always")
def _load_six(src, row, rows, col):
    # src[row + i*rows, col], i < 6: the adjoint of _store_six. _six on a column view
    # du[:, c] reads the same values, but building the view per channel measured 1.5-2x
    # slower in weight_gradient.
    return (src[row, col], src[row + rows, col], src[row + 2 * rows, col],
            src[row + 3 * rows, col], src[row + 4 * rows, col], src[row + 5 * rows, col])


@njit(cache=True, nogil=True, error_model="numpy")
def _filter_gradients(dwf, du, rows, row, k):
    # dwf: (C, 3, 3) += G^T d G, d: the 6x6 elements e of (row, c) at du[e*rows + row, c].
    # Constant tuple indices throughout, as _filter_tiles.
    span = ALPHA * rows
    for c in range(dwf.shape[0]):
        r0 = _gt(_load_six(du, row, rows, c), k)
        r1 = _gt(_load_six(du, row + span, rows, c), k)
        r2 = _gt(_load_six(du, row + 2 * span, rows, c), k)
        r3 = _gt(_load_six(du, row + 3 * span, rows, c), k)
        r4 = _gt(_load_six(du, row + 4 * span, rows, c), k)
        r5 = _gt(_load_six(du, row + 5 * span, rows, c), k)
        t0 = _gt((r0[0], r1[0], r2[0], r3[0], r4[0], r5[0]), k)
        t1 = _gt((r0[1], r1[1], r2[1], r3[1], r4[1], r5[1]), k)
        t2 = _gt((r0[2], r1[2], r2[2], r3[2], r4[2], r5[2]), k)
        g = dwf[c]
        g[0, 0] += t0[0]
        g[1, 0] += t0[1]
        g[2, 0] += t0[2]
        g[0, 1] += t1[0]
        g[1, 1] += t1[1]
        g[2, 1] += t1[2]
        g[0, 2] += t2[0]
        g[1, 2] += t2[1]
        g[2, 2] += t2[2]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def weight_gradient(dw, du):
    # du: (36*f_rows, c_cols) -> dw: (F, C, 3, 3) += G^T du[:, f, c] G. One task = one filter.
    f_rows = du.shape[0] // ELEMENTS
    k = _constants(dw)
    for f in prange(dw.shape[0]):
        _filter_gradients(dw[f], du, f_rows, f, k)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def transform_input_grad(dx, dv, geo):
    # dv: 36 blocks of dv_rows x dv_cols flattened (as V) -> dx: (N, C, H, W), fully
    # overwritten: the sum over the tiles that read each pixel of B dV_t B^T (tiles overlap
    # by 2 pixels; the padding's share is dropped). One task = one (image, channel): it owns
    # dx[n, c].
    g = WinogradGeometry(*geo)
    per_image = g.tiles_y * g.tiles_x
    zero = dx.dtype.type(0)
    k = _constants(dx)
    stride = g.dv_rows * g.dv_cols
    cs, ts = _strides(g.tile_major, g.dv_cols)
    for task in prange(g.n * g.c):
        n = task // g.c
        c = task - n * g.c
        plane = dx[n, c]
        for y in range(g.h):
            _fill(plane[y], zero)
        for ty in range(g.tiles_y):
            y0 = TILE * ty - g.pad_y
            for tx in range(g.tiles_x):
                x0 = TILE * tx - g.pad_x
                b = c * cs + (n * per_image + ty * g.tiles_x + tx) * ts
                row = ALPHA * stride
                r0 = _b(_six(dv, b, stride), k)
                r1 = _b(_six(dv, b + row, stride), k)
                r2 = _b(_six(dv, b + 2 * row, stride), k)
                r3 = _b(_six(dv, b + 3 * row, stride), k)
                r4 = _b(_six(dv, b + 4 * row, stride), k)
                r5 = _b(_six(dv, b + 5 * row, stride), k)
                for j in range(ALPHA):
                    x = x0 + j
                    if 0 <= x < g.w:
                        col = _b((r0[j], r1[j], r2[j], r3[j], r4[j], r5[j]), k)
                        for i in range(ALPHA):
                            y = y0 + i
                            if 0 <= y < g.h:
                                plane[y, x] += col[i]


# --- the products of one group, in its layout ---------------------------------------------
# v, m, dv: 2-D (36 blocks of g.v_rows, g.m_rows, g.dv_rows rows); z: 2-D (36*f_rows,
# tile_row); u, du: (36*f_rows, c_cols); ut: (36*c_rows, f_cols), used tile-major only.

def product_forward(m, v, u, ut, g: WinogradGeometry):
    """M = U V, each e: a row per filter, or tile-major a row per tile (M^T = V^T U^T)."""
    if g.tile_major:
        multiply_rows(m, ut, v, round_up(g.tiles), g.c, round_up(g.f, ALIGN), False, False)
    else:
        multiply(m, v.reshape(-1), u, g.f4, g.c, False, tuple(g))


def product_weights(du, z, v, g: WinogradGeometry):
    """dU += Z V^T: dot products over tiles, or tile-major rank-1 updates along channels."""
    if g.tile_major:
        multiply_rows(du, v, z, g.f4, g.tiles, round_up(g.c, ALIGN), False, True)
    else:
        weight_products(du, z.reshape(-1), v.reshape(-1), tuple(g))


def product_input(dv, z, u, g: WinogradGeometry):
    """dV = U^T Z, each e; tile-major dV^T = Z^T U (rows of U, no transpose)."""
    if g.tile_major:
        multiply_rows(dv, u, z, round_up(g.tiles), g.f, round_up(g.c, ALIGN), True, False)
    else:
        multiply(dv, z.reshape(-1), u, g.c4, g.f, True, tuple(g))
