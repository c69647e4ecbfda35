"""Convolution kernels against the naive loops, central differences and their own promises."""

import re
import warnings

import numba
import numpy as np
import pytest

from engine.kernels import conv as K
from tests.gradcheck import numerical_grad
from tests.naive import conv as naive

# (N, C, H, W, F, sy, sx, stride_y, stride_x, pad_y, pad_x)
CASES = [
    (2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1),      # plain 3x3, non-square input
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0),      # one pixel, one channel, 1x1 filter
    (1, 3, 1, 1, 2, 5, 5, 1, 1, 2, 2),      # one pixel, filter == padded input: 1x1 output
    (2, 3, 3, 3, 5, 3, 3, 1, 1, 0, 0),      # filter == input, no padding: 1x1 output
    (3, 3, 5, 5, 2, 3, 5, 2, 1, 2, 1),      # non-square 3x5 filter, stride_y != stride_x
    (2, 2, 9, 9, 5, 3, 3, 2, 2, 1, 1),      # stride 2
    (2, 5, 6, 6, 6, 1, 1, 2, 2, 0, 0),      # 1x1 stride 2: some phases have no taps
    (2, 4, 5, 5, 5, 1, 1, 1, 1, 2, 2),      # 1x1 with padding: a border of pure bias
    (1, 2, 4, 3, 3, 4, 2, 3, 1, 2, 0),      # stride 3 rows, even filter
    (2, 3, 9, 9, 4, 3, 3, 3, 3, 0, 0),      # stride 3
    (2, 6, 5, 7, 9, 2, 4, 1, 2, 1, 2),      # F and C not multiples of 4, even filters
    (1, 3, 32, 32, 5, 5, 5, 1, 1, 2, 2),    # the demo's first layer
    (3, 1, 8, 8, 3, 5, 5, 1, 1, 2, 2),      # C = 1
    (3, 2, 6, 5, 3, 3, 3, 1, 1, 0, 0),      # valid convolution: images share no zero rows
    (3, 2, 5, 5, 2, 3, 3, 1, 1, 3, 3),      # padding wider than the filter
    (3, 3, 7, 8, 2, 3, 2, 2, 3, 2, 1),      # strides 2 and 3 with padding
]


def run_conv(x, w, b, stride_y, stride_x, pad_y, pad_x, dout=None, group=None, relu=False):
    """The kernel sequence the layer runs, with NaN-filled scratch (nothing may read it
    before writing it). Returns out, or (out, dx, dw, db) when dout is given. relu: fuse a
    relu (out is then (conv out, relu out); dout is the gradient at the relu's output)."""
    n, c, h, wd = x.shape
    f, _, sy, sx = w.shape
    g, phases = K.conv_geometry(n, c, h, wd, f, sy, sx, stride_y, stride_x, pad_y, pad_x,
                                group)
    dt = x.dtype
    taps = g.taps_y * g.taps_x
    xph = np.full(g.phases * c * g.row, np.nan, dt)
    wf = np.full((g.phases, g.f4, c * taps), np.nan, dt)
    wdx = np.full((g.phases, g.c4, f * taps), np.nan, dt)
    grid = np.full((g.f4, g.grid_row), np.nan, dt)
    out = np.full((n, f, g.out_h, g.out_w), np.nan, dt)
    relu_out = np.full(out.shape, np.nan, dt) if relu else np.zeros((0, 0, 0, 0), dt)
    K.pad_phases(xph, x, tuple(g), phases)
    K.forward_weights(wf, w, phases, stride_y, stride_x)
    K.flipped_weights(wdx, w, phases, stride_y, stride_x)
    K.conv_forward(out, relu_out, grid, xph, wf, b, tuple(g), phases)
    if relu:
        out = (out, relu_out)
    if dout is None:
        return out
    dpad = np.full(g.f4 * g.row, np.nan, dt)
    dw, db = np.zeros_like(w), np.zeros(f, dt)
    dx = np.full(x.shape, np.nan, dt)
    K.pad_dout(dpad, db, dout, relu_out, tuple(g))
    K.conv_backward_weights(dw, xph, dpad, tuple(g), phases)
    K.conv_backward_data(dx, np.full((g.c4, g.grid_row), np.nan, dt), dpad, wdx, tuple(g), phases)
    return out, dx, dw, db


def random_case(case, rng, dtype=np.float64):
    n, c, h, w, f, sy, sx, st_y, st_x, p_y, p_x = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, sy, sx)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, wt, b, (st_y, st_x, p_y, p_x)


@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_naive_loops(case, rng):
    x, w, b, conv = random_case(case, rng)
    ref = naive.conv_forward(x, w, b, *conv)
    dout = rng.standard_normal(ref.shape)
    out, dx, dw, db = run_conv(x, w, b, *conv, dout=dout)
    ref_dx, ref_dw, ref_db = naive.conv_backward(dout, x, w, *conv)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[10],
                                  (4, 16, 8, 8, 20, 5, 5, 1, 1, 2, 2)])
def test_float32_matches_float64(case, rng):
    x, w, b, conv = random_case(case, rng)
    dout = rng.standard_normal(naive.conv_forward(x, w, b, *conv).shape)
    ref = run_conv(x, w, b, *conv, dout=dout)
    got = run_conv(*(a.astype(np.float32) for a in (x, w, b)), *conv,
                   dout=dout.astype(np.float32))
    for a, r in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@pytest.mark.parametrize("case", [
    (2, 2, 4, 5, 3, 3, 2, 2, 1, 1, 0),
    (1, 3, 3, 3, 2, 3, 3, 1, 1, 2, 2),
    (2, 1, 5, 5, 2, 1, 1, 2, 2, 0, 0),
    (1, 2, 5, 4, 5, 2, 3, 1, 1, 0, 1),
])
def test_backward_matches_central_differences(case, rng):
    x, w, b, conv = random_case(case, rng)
    dout = rng.standard_normal(run_conv(x, w, b, *conv).shape)
    _, dx, dw, db = run_conv(x, w, b, *conv, dout=dout)

    def loss():
        return float(np.sum(run_conv(x, w, b, *conv) * dout))

    # Hundreds of tiny passes: one thread spares them a barrier each (slow on a busy machine).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        num_dx, num_dw, num_db = (numerical_grad(loss, a) for a in (x, w, b))
    finally:
        numba.set_num_threads(threads)
    # The loss is linear in each array: central differences are exact up to rounding.
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, num_dw, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, num_db, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("group", [1, 2, 3, 5])
def test_images_per_task_change_nothing(group, rng):
    x, w, b, conv = random_case((5, 3, 6, 5, 6, 3, 3, 2, 1, 1, 2), rng)
    dout = rng.standard_normal(naive.conv_forward(x, w, b, *conv).shape)
    ref = run_conv(x, w, b, *conv, dout=dout, group=1)
    for got, want in zip(run_conv(x, w, b, *conv, dout=dout, group=group), ref):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("case", [CASES[3], CASES[5]], ids=["stride1", "stride2"])
def test_a_fused_relu_gives_exactly_what_the_relu_layer_would(case, rng):
    # Net runs conv + relu as one pass: out and max(out, 0) forward; backward, the gradient
    # at the relu's output masked where the relu passed nothing. NaN passes forward (as the
    # relu kernel) and stops backward.
    x, w, b, conv = random_case(case, rng, np.float32)
    x[0, 0, 0, 0] = np.nan
    plain = run_conv(x, w, b, *conv)
    dout = rng.standard_normal(plain.shape).astype(np.float32)
    (out, relu_out), dx, dw, db = run_conv(x, w, b, *conv, dout=dout, relu=True)
    np.testing.assert_array_equal(out, plain)
    expected = plain.copy()
    expected[plain < 0] = 0
    np.testing.assert_array_equal(relu_out, expected)
    masked = np.where(plain > 0, dout, np.float32(0))
    for got, want in zip((dx, dw, db), run_conv(x, w, b, *conv, dout=masked)[1:]):
        np.testing.assert_array_equal(got, want)


def test_weight_gradients_accumulate(rng):
    x, w, b, conv = random_case(CASES[5], rng)
    dout = rng.standard_normal(run_conv(x, w, b, *conv).shape)
    _, _, dw, db = run_conv(x, w, b, *conv, dout=dout)
    g, phases = K.conv_geometry(*x.shape, w.shape[0], *w.shape[2:], *conv)
    xph = np.empty(g.phases * g.c * g.row)
    dpad = np.empty(g.f4 * g.row)
    K.pad_phases(xph, x, tuple(g), phases)
    dw2, db2 = dw.copy(), db.copy()
    K.pad_dout(dpad, db2, dout, np.zeros((0, 0, 0, 0)), tuple(g))
    K.conv_backward_weights(dw2, xph, dpad, tuple(g), phases)
    np.testing.assert_allclose(dw2, 2 * dw, rtol=1e-12)
    np.testing.assert_allclose(db2, 2 * db, rtol=1e-12)


def test_geometry_keeps_grid_rows_apart_by_more_than_store_aliasing():
    # 64 images of 18x18 grids are exactly 21 x 4 KiB apart without the adjustment.
    g, _ = K.conv_geometry(64, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1)
    for k in range(1, K.BLOCK):
        assert 512 <= k * g.grid_row * 4 % 4096 <= 3584
    assert g.grid_row % K.ALIGN == 0 and g.row % K.ALIGN == 0 and g.img % K.ALIGN == 0
    assert (g.lead + g.top * g.width + g.left) % K.ALIGN == 0


def _fresh(kernel):
    """The kernel recompiled without the disk cache, so that its LLVM IR can be read."""
    opts = {k: v for k, v in kernel.targetoptions.items() if k not in ("nopython", "cache")}
    return numba.njit(**opts)(kernel.py_func)


def test_float32_kernels_do_no_float64_arithmetic(rng):
    # A stray 0.0 literal or a float64 scalar would silently promote the loops to double.
    x, w, b, conv = random_case((2, 3, 6, 6, 4, 3, 3, 2, 1, 1, 1), rng, np.float32)
    g, phases = K.conv_geometry(*x.shape, 4, 3, 3, *conv)
    geo, f32 = tuple(g), np.float32
    xph, dpad = np.zeros(g.phases * 3 * g.row, f32), np.zeros(g.f4 * g.row, f32)
    wf = np.zeros((g.phases, g.f4, 3 * g.taps_y * g.taps_x), f32)
    grid = np.zeros((g.f4, g.grid_row), f32)
    out_shape = (2, 4, g.out_h, g.out_w)
    # The kernels that do arithmetic, with the fused relu on (the others only copy); each
    # recompile takes seconds.
    calls = [
        (K._correlate4, (grid, 0, 0, xph, 0, g.row, wf[0], 9, 3, 3, g.width, 32)),
        (K.conv_forward, (np.zeros(out_shape, f32), np.zeros(out_shape, f32), grid, xph, wf, b,
                          geo, phases)),
        (K.conv_backward_weights, (np.zeros_like(w), xph, dpad, geo, phases)),
        (K.pad_dout, (dpad, np.zeros(4, f32), np.ones(out_shape, f32), np.ones(out_shape, f32),
                      geo)),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's notes about the uncached recompile
        for kernel, args in calls:
            fresh = _fresh(kernel)
            fresh(*args)
            ir = "\n".join(fresh.inspect_llvm().values())
            doubles = re.findall(r"\b(?:fadd|fsub|fmul|fdiv|fpext)\b[^\n]*\bdouble\b", ir)
            assert not doubles, f"{kernel.__name__} computes in float64: {doubles[:3]}"
