"""Winograd F(2x2, 3x3) kernels against the naive loops, central differences in float64, and
the direct kernels' own promises (a fused relu gives the bits of the relu layer)."""

import numpy as np
import pytest

from engine.kernels import winograd as K
from tests.gradcheck import numerical_grad
from tests.naive import conv as naive

# (N, C, H, W, F, pad_y, pad_x)
CASES = [
    (2, 3, 7, 6, 4, 1, 1),        # odd output width: the last tile column is half outside
    (1, 1, 1, 1, 1, 1, 1),        # one pixel: one tile, three quarters of it padding
    (3, 5, 8, 8, 6, 1, 1),        # C, F not multiples of 4
    (2, 4, 5, 9, 8, 0, 0),        # valid convolution, non-square
    (2, 2, 4, 4, 3, 2, 2),        # padding 2: tiles start two pixels outside
    (1, 3, 6, 5, 5, 0, 2),        # different padding per axis
    (4, 7, 3, 3, 9, 1, 1),        # 3x3 maps, as the last block of a wide net
    (2, 9, 15, 15, 16, 1, 1),     # more tiles than a vector, odd size
    (3, 21, 5, 5, 19, 1, 1),      # more channels and filters than a vector
]


def run_winograd(x, w, b, pad_y, pad_x, dout=None, relu=False, tile_major=False):
    """The kernel sequence the conv layer runs, with NaN-filled scratch (nothing may read it
    before writing it). Returns out, or (out, dx, dw, db) when dout is given; with relu the
    relu's output is fused and dout is the gradient at it. tile_major: the layout of V, M
    and dV (see the kernels' docstring)."""
    n, c, h, wd = x.shape
    f = w.shape[0]
    g = K.winograd_geometry(n, c, h, wd, f, pad_y, pad_x, tile_major)
    dt = x.dtype
    E = K.ELEMENTS
    # tile-major forward reads only U^T, and dx only U (made in backward, as the layer does)
    u = np.full((0 if tile_major else E * g.f_rows, g.c_cols), np.nan, dt)
    ut = np.full((E * g.c_rows, g.f_cols) if tile_major else (0, 0), np.nan, dt)
    v = np.full((E * g.v_rows, g.v_cols), np.nan, dt)
    m = np.full((E * g.m_rows, g.m_cols), np.nan, dt)
    out = np.full((n, f, g.out_h, g.out_w), np.nan, dt)
    relu_out = np.full(out.shape, np.nan, dt) if relu else np.zeros((0, 0, 0, 0), dt)
    K.transform_weights(u, ut, w)
    K.transform_input(v.reshape(-1), x, tuple(g))
    K.product_forward(m, v, u, ut, g)
    K.transform_output(out, relu_out, m.reshape(-1), b, tuple(g))
    result = (out, relu_out) if relu else out
    if dout is None:
        return result
    z = np.full((E * g.f_rows, g.tile_row), np.nan, dt)
    du = np.zeros((E * g.f_rows, g.c_cols), dt)   # the weight products add into it
    dv = np.full((E * g.dv_rows, g.dv_cols), np.nan, dt)
    dx = np.full(x.shape, np.nan, dt)
    dw, db = np.zeros_like(w), np.zeros(f, dt)
    K.transform_dout(z.reshape(-1), db, dout, relu_out, tuple(g))
    K.product_weights(du, z, v, g)
    K.weight_gradient(dw, du)
    if tile_major:
        u = np.full((E * g.f_rows, g.c_cols), np.nan, dt)
        K.transform_weights(u, np.zeros((0, 0), dt), w)
    K.product_input(dv, z, u, g)
    K.transform_input_grad(dx, dv.reshape(-1), tuple(g))
    return result, dx, dw, db


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile_major", [False, True], ids=["tile-rows", "tile-major"])
def test_forward_and_backward_match_the_naive_loops(case, dtype, tile_major, rng):
    n, c, h, w, f, pad_y, pad_x = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    out_h, out_w = h + 2 * pad_y - 2, w + 2 * pad_x - 2
    dout = rng.standard_normal((n, f, out_h, out_w)).astype(dtype)
    out, dx, dw, db = run_winograd(x, wt, b, pad_y, pad_x, dout, tile_major=tile_major)
    want = naive.conv_forward(x, wt, b, 1, 1, pad_y, pad_x)
    want_dx, want_dw, want_db = naive.conv_backward(dout, x, wt, 1, 1, pad_y, pad_x)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(out, want, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)
    np.testing.assert_allclose(dw, want_dw, **tol)
    np.testing.assert_allclose(db, want_db, **tol)


@pytest.mark.parametrize("tile_major", [False, True], ids=["tile-rows", "tile-major"])
def test_backward_matches_central_differences_in_float64(tile_major, rng):
    n, c, h, w, f, pad_y, pad_x = 2, 3, 5, 4, 5, 1, 0
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, 3, 3))
    b = rng.standard_normal(f)
    dout = rng.standard_normal((n, f, h + 2 * pad_y - 2, w + 2 * pad_x - 2))

    def loss():   # numerical_grad perturbs x, wt and b in place
        return float(np.sum(run_winograd(x, wt, b, pad_y, pad_x, tile_major=tile_major)
                            * dout))

    _, dx, dw, db = run_winograd(x, wt, b, pad_y, pad_x, dout, tile_major=tile_major)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(loss, wt), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("tile_major", [False, True], ids=["tile-rows", "tile-major"])
def test_a_fused_relu_gives_exactly_what_the_relu_layer_would(tile_major, rng):
    # Forward: the relu's output is max(out, 0) of the same out. Backward: the fused pass
    # masks dout where the relu's output is not positive, as relu's backward does before
    # the plain pass; every gradient has the same bits (db's sum runs in one fixed order).
    n, c, h, w, f = 3, 6, 9, 7, 8
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    dout = rng.standard_normal((n, f, h, w)).astype(np.float32)
    (out, relu_out), dx, dw, db = run_winograd(x, wt, b, 1, 1, dout, relu=True,
                                               tile_major=tile_major)
    plain_out = run_winograd(x, wt, b, 1, 1, tile_major=tile_major)
    np.testing.assert_array_equal(out, plain_out)
    np.testing.assert_array_equal(relu_out, np.maximum(plain_out, 0))
    masked = np.where(relu_out > 0, dout, np.float32(0))
    _, plain_dx, plain_dw, plain_db = run_winograd(x, wt, b, 1, 1, masked, tile_major=tile_major)
    np.testing.assert_array_equal(dx, plain_dx)
    np.testing.assert_array_equal(dw, plain_dw)
    np.testing.assert_array_equal(db, plain_db)


@pytest.mark.parametrize("shape, applies", [
    ((3, 3, 1, 1, 1, 1, 32, 32), True),
    ((3, 3, 1, 1, 0, 0, 3, 3), True),
    ((3, 3, 1, 1, 2, 2, 1, 1), True),
    ((3, 3, 2, 2, 1, 1, 32, 32), False),    # stride 2
    ((5, 5, 1, 1, 2, 2, 32, 32), False),    # 5x5
    ((3, 3, 1, 1, 3, 3, 8, 8), False),      # padding wider than two
    ((3, 3, 1, 1, 0, 0, 2, 2), False),      # no output
])
def test_it_applies_to_3x3_stride_1_only(shape, applies):
    assert K.applies(*shape) is applies
