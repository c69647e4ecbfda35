"""Pooling kernels: max, average and global average, each forward above its backward.

Windows start at `o * stride - pad` and are clipped to the input: padded positions take no part
(max over in-bounds elements only; average divides by the in-bounds count, as torch's
count_include_pad=False). A window with no element in bounds gives 0 and passes no gradient.

Every loop is parallel over (image, channel) planes: a plane of the output and the same plane
of dx belong to one iteration, so overlapping windows (stride < size) accumulate into dx
without races, and a batch of one image still keeps both cores busy. Arrays arrive C-contiguous
(the layer sees to it); accumulators take the array's dtype so float32 stays float32.
"""

from numba import njit, prange


# Max pooling picks one of three loops: 2x2 stride 2 with every window inside the input (the
# usual case) has its own; other windows inside the input take the row pass below this input
# size (bytes), else the window-by-window clipped loop. Measured with 2x2 stride 2, before it
# had its own loop (2 threads): the row pass was 2.5x the clipped loop at 4x16x32x32
# (256 KiB), 2x at 4x20x16x16; but 0.6x at 32x16x32x32 (2 MiB) and 64x64x16x16, where the
# input comes from beyond L2 and the window-by-window loop streams it better.
ROW_PASS_MAX_BYTES = 512 * 1024


@njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_plane_clipped(op, ap, xp, sy, sx, stride_y, stride_x, pad_y, pad_x):
    # Any window, one at a time, clipped to the input; an empty one gives 0 and argmax -1.
    height, width = xp.shape
    zero = xp.dtype.type(0)
    for oy in range(op.shape[0]):
        y0 = oy * stride_y - pad_y
        y_lo = max(y0, 0)
        y_hi = min(y0 + sy, height)
        for ox in range(op.shape[1]):
            x0 = ox * stride_x - pad_x
            x_lo = max(x0, 0)
            x_hi = min(x0 + sx, width)
            if y_lo >= y_hi or x_lo >= x_hi:
                op[oy, ox] = zero
                ap[oy, ox] = -1
                continue
            best = xp[y_lo, x_lo]
            best_at = y_lo * width + x_lo
            for yy in range(y_lo, y_hi):
                for xx in range(x_lo, x_hi):
                    v = xp[yy, xx]
                    # v != v: a NaN wins (as in torch), so a diverged net cannot hide it.
                    if v > best or v != v:
                        best = v
                        best_at = yy * width + xx
            op[oy, ox] = best
            ap[oy, ox] = best_at


@njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_plane_row_pass(op, ap, xp, sy, sx, stride_y, stride_x):
    # Every window inside the input: one branch-free pass per tap over a whole output row,
    # which LLVM vectorises. Taps in the same order and with the same test as the clipped
    # loop: the same maxima, the same argmax, NaN wins.
    width = xp.shape[1]
    for oy in range(op.shape[0]):
        orow = op[oy]
        arow = ap[oy]
        y0 = oy * stride_y
        first = xp[y0]
        for ox in range(op.shape[1]):
            orow[ox] = first[ox * stride_x]
            arow[ox] = y0 * width + ox * stride_x
        for ky in range(sy):
            for kx in range(sx):
                if ky == 0 and kx == 0:
                    continue
                src = xp[y0 + ky, kx:]
                at = (y0 + ky) * width + kx
                for ox in range(op.shape[1]):
                    v = src[ox * stride_x]
                    b = orow[ox]
                    take = (v > b) | (v != v)
                    orow[ox] = v if take else b
                    arow[ox] = at + ox * stride_x if take else arow[ox]


@njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_plane_2x2(op, ap, xp):
    # 2x2 windows, stride 2, every window inside the input: the four taps of a window in
    # registers, one pass over each output row. LLVM vectorises it over ox (the stride-2
    # loads become shuffles), where the general loops wait on a chain of selects or make four
    # short passes. Measured (2 threads, relu'd data): 4x16x32x32 11 us vs 41 (row pass),
    # 32x16x32x32 57 us vs 694 (clipped). Same tap order and test as the clipped loop.
    width = xp.shape[1]
    for oy in range(op.shape[0]):
        top = xp[2 * oy]
        bottom = xp[2 * oy + 1]
        orow = op[oy]
        arow = ap[oy]
        at = 2 * oy * width
        for ox in range(op.shape[1]):
            best = top[2 * ox]
            best_at = at + 2 * ox
            v = top[2 * ox + 1]
            take = (v > best) | (v != v)
            best = v if take else best
            best_at = at + 2 * ox + 1 if take else best_at
            v = bottom[2 * ox]
            take = (v > best) | (v != v)
            best = v if take else best
            best_at = at + width + 2 * ox if take else best_at
            v = bottom[2 * ox + 1]
            take = (v > best) | (v != v)
            best = v if take else best
            best_at = at + width + 2 * ox + 1 if take else best_at
            orow[ox] = best
            arow[ox] = best_at


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def max_pool_forward(out, argmax, x, sy, sx, stride_y, stride_x, pad_y, pad_x):
    # x: (N, C, H, W) -> out: (N, C, Ho, Wo); argmax: (N, C, Ho, Wo) int32, the flat index
    # y * W + x of each window's maximum inside its (n, c) plane, -1 for an empty window.
    n_img, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    inside = (pad_y == 0 and pad_x == 0 and (out_h - 1) * stride_y + sy <= height
              and (out_w - 1) * stride_x + sx <= width)
    two_by_two = inside and sy == 2 and sx == 2 and stride_y == 2 and stride_x == 2
    row_pass = inside and x.size * x.itemsize <= ROW_PASS_MAX_BYTES
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        if two_by_two:
            _max_pool_plane_2x2(out[n, c], argmax[n, c], x[n, c])
        elif row_pass:
            _max_pool_plane_row_pass(out[n, c], argmax[n, c], x[n, c], sy, sx, stride_y,
                                     stride_x)
        else:
            _max_pool_plane_clipped(out[n, c], argmax[n, c], x[n, c], sy, sx, stride_y,
                                    stride_x, pad_y, pad_x)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def max_pool_backward(dx, dout, argmax):
    # dout, argmax: (N, C, Ho, Wo) -> dx: (N, C, H, W), fully overwritten.
    n_img, channels, height, width = dx.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    zero = dx.dtype.type(0)
    dx_planes = dx.reshape((n_img * channels, height * width))
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        row = dx_planes[plane]
        for i in range(height * width):
            row[i] = zero
        dp = dout[n, c]
        ap = argmax[n, c]
        for oy in range(out_h):
            for ox in range(out_w):
                at = ap[oy, ox]
                if at >= 0:
                    row[at] += dp[oy, ox]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def avg_pool_forward(out, x, sy, sx, stride_y, stride_x, pad_y, pad_x):
    # x: (N, C, H, W) -> out: (N, C, Ho, Wo), mean over each window's in-bounds elements.
    n_img, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        xp = x[n, c]
        op = out[n, c]
        for oy in range(out_h):
            y0 = oy * stride_y - pad_y
            y_lo = max(y0, 0)
            y_hi = min(y0 + sy, height)
            for ox in range(out_w):
                x0 = ox * stride_x - pad_x
                x_lo = max(x0, 0)
                x_hi = min(x0 + sx, width)
                count = max(y_hi - y_lo, 0) * max(x_hi - x_lo, 0)
                if count == 0:
                    op[oy, ox] = zero
                    continue
                acc = zero
                for yy in range(y_lo, y_hi):
                    for xx in range(x_lo, x_hi):
                        acc += xp[yy, xx]
                op[oy, ox] = acc / x.dtype.type(count)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def avg_pool_backward(dx, dout, sy, sx, stride_y, stride_x, pad_y, pad_x):
    # dout: (N, C, Ho, Wo) -> dx: (N, C, H, W), fully overwritten.
    n_img, channels, height, width = dx.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    zero = dx.dtype.type(0)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        dxp = dx[n, c]
        dp = dout[n, c]
        for yy in range(height):
            for xx in range(width):
                dxp[yy, xx] = zero
        for oy in range(out_h):
            y0 = oy * stride_y - pad_y
            y_lo = max(y0, 0)
            y_hi = min(y0 + sy, height)
            for ox in range(out_w):
                x0 = ox * stride_x - pad_x
                x_lo = max(x0, 0)
                x_hi = min(x0 + sx, width)
                count = max(y_hi - y_lo, 0) * max(x_hi - x_lo, 0)
                if count == 0:
                    continue
                share = dp[oy, ox] / dx.dtype.type(count)
                for yy in range(y_lo, y_hi):
                    for xx in range(x_lo, x_hi):
                        dxp[yy, xx] += share


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def global_avg_pool_forward(out, x):
    # x: (N, C, H, W) -> out: (N, C, 1, 1), the mean of each plane.
    n_img, channels, height, width = x.shape
    area = height * width
    x_planes = x.reshape((n_img * channels, area))
    zero = x.dtype.type(0)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        row = x_planes[plane]
        acc = zero
        for i in range(area):
            acc += row[i]
        out[n, c, 0, 0] = acc / x.dtype.type(area)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def global_avg_pool_backward(dx, dout):
    # dout: (N, C, 1, 1) -> dx: (N, C, H, W), each element gets 1/(H*W) of its plane's gradient.
    n_img, channels, height, width = dx.shape
    area = height * width
    dx_planes = dx.reshape((n_img * channels, area))
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane - n * channels
        row = dx_planes[plane]
        share = dout[n, c, 0, 0] / dx.dtype.type(area)
        for i in range(area):
            row[i] = share
