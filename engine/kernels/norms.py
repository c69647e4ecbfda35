"""Normalisation kernels: batch normalisation and local response normalisation.

Activations come in as (N, C, P) views of contiguous (N, C, H, W) arrays, P = H*W, so the
innermost loops run over a whole plane with unit stride (the layout that vectorises).
Batch-norm statistics are owned per channel (parallel over C); LRN is parallel over the batch.
"""

import numpy as np
from numba import njit, prange


# --- batch normalisation -----------------------------------------------------------------
# The per-channel sums run in float64 with reassoc, which lets LLVM keep several vector
# accumulators (it only reorders the sum): as one strict chain of float64 adds they were a
# add's latency per value, 2.5 ms for a 32x32x16 batch-norm forward at batch 64 (torch: 2.1).

@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _plane_sum(xc, plane):
    total = 0.0
    for p in range(plane):
        total += xc[p]
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _plane_squares(xc, m, plane):
    # sum of (x - m)^2 in float64
    squares = 0.0
    for p in range(plane):
        d = xc[p] - m
        squares += d * d
    return squares


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _plane_sums(dc, hc, plane):
    # (sum of dout, sum of dout * x_hat) in float64
    sum_d = 0.0
    sum_dh = 0.0
    for p in range(plane):
        d = np.float64(dc[p])
        sum_d += d
        sum_dh += d * hc[p]
    return sum_d, sum_dh


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def batchnorm_forward_train(out, x_hat, mean, var, inv_std, x, gamma, beta, eps):
    # x, out, x_hat: (N, C, P); mean, var, inv_std, gamma, beta: (C,)
    # Writes the batch mean and the biased batch variance (the layer turns it into the
    # unbiased one for the running average), inv_std = 1/sqrt(var + eps) and x_hat.
    n_batch, channels, plane = x.shape
    count = n_batch * plane
    for c in prange(channels):
        # Statistics accumulate in float64 on purpose: one channel sums N*H*W values (10^5 at
        # batch 128), and a two-pass variance avoids the cancellation of E[x^2] - E[x]^2.
        total = 0.0
        for n in range(n_batch):
            total += _plane_sum(x[n, c], plane)
        m = total / count
        squares = 0.0
        for n in range(n_batch):
            squares += _plane_squares(x[n, c], m, plane)
        v = squares / count
        mean[c] = m
        var[c] = v
        inv_std[c] = 1.0 / np.sqrt(v + eps)
        # Normalise in the array's own dtype (read back from the typed buffers).
        m_t = mean[c]
        s_t = inv_std[c]
        g = gamma[c]
        b = beta[c]
        for n in range(n_batch):
            xc = x[n, c]
            hc = x_hat[n, c]
            oc = out[n, c]
            for p in range(plane):
                h = (xc[p] - m_t) * s_t
                hc[p] = h
                oc[p] = g * h + b


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def batchnorm_backward_train(dx, dgamma, dbeta, dout, x_hat, inv_std, gamma):
    # dout, x_hat, dx: (N, C, P); inv_std, gamma, dgamma, dbeta: (C,)
    # dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)), means over
    # (N, P) of the channel; dgamma += sum(dout * x_hat); dbeta += sum(dout).
    n_batch, channels, plane = dout.shape
    count = n_batch * plane
    for c in prange(channels):
        sum_d = 0.0  # float64 on purpose, as in the forward statistics
        sum_dh = 0.0
        for n in range(n_batch):
            d, dh = _plane_sums(dout[n, c], x_hat[n, c], plane)
            sum_d += d
            sum_dh += dh
        dbeta[c] += sum_d
        dgamma[c] += sum_dh
        k = dx.dtype.type(gamma[c] * inv_std[c])
        mean_d = dx.dtype.type(sum_d / count)
        mean_dh = dx.dtype.type(sum_dh / count)
        for n in range(n_batch):
            dc = dout[n, c]
            hc = x_hat[n, c]
            dxc = dx[n, c]
            for p in range(plane):
                dxc[p] = k * (dc[p] - mean_d - hc[p] * mean_dh)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def batchnorm_forward_eval(out, x, running_mean, running_var, gamma, beta, eps):
    # x, out: (N, C, P); running_mean, running_var, gamma, beta: (C,)
    # out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta, as one multiply-add.
    n_batch, channels, plane = x.shape
    # Parallel over (image, channel) pairs so a single image still uses every core.
    for nc in prange(n_batch * channels):
        n = nc // channels
        c = nc - n * channels
        scale_64 = gamma[c] / np.sqrt(running_var[c] + eps)
        scale = out.dtype.type(scale_64)
        shift = out.dtype.type(beta[c] - running_mean[c] * scale_64)
        xc = x[n, c]
        oc = out[n, c]
        for p in range(plane):
            oc[p] = xc[p] * scale + shift


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def batchnorm_backward_eval(dx, dgamma, dbeta, dout, x, running_mean, running_var, gamma, eps):
    # dout, x, dx: (N, C, P); running_mean, running_var, gamma, dgamma, dbeta: (C,)
    # The statistics are constants here: dx = dout * gamma * inv_std; x_hat is recomputed.
    n_batch, channels, plane = dout.shape
    for c in prange(channels):
        inv_std_64 = 1.0 / np.sqrt(running_var[c] + eps)
        inv_std = dx.dtype.type(inv_std_64)
        m = dx.dtype.type(running_mean[c])
        k = dx.dtype.type(gamma[c] * inv_std_64)
        sum_d = 0.0
        sum_dh = 0.0
        for n in range(n_batch):
            dc = dout[n, c]
            xc = x[n, c]
            dxc = dx[n, c]
            for p in range(plane):
                sum_d += dc[p]
                sum_dh += dc[p] * ((xc[p] - m) * inv_std)
                dxc[p] = k * dc[p]
        dbeta[c] += sum_d
        dgamma[c] += sum_dh


# --- local response normalisation (across channels) ---------------------------------------

@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def lrn_forward(out, scale, x, size, k, alpha, beta):
    # x, out, scale: (N, C, P)
    # scale[c] = k + alpha/size * sum of x[j]^2 over channels j in
    # max(0, c - size//2) .. min(C-1, c + size//2);  out = x * scale^-beta.
    n_batch, channels, plane = x.shape
    half = size // 2
    k_t = x.dtype.type(k)
    alpha_t = x.dtype.type(alpha / size)
    neg_beta = x.dtype.type(-beta)
    for n in prange(n_batch):
        for c in range(channels):
            sc = scale[n, c]
            for p in range(plane):
                sc[p] = 0
            for j in range(max(0, c - half), min(channels, c + half + 1)):
                xj = x[n, j]
                for p in range(plane):
                    sc[p] += xj[p] * xj[p]
            xc = x[n, c]
            oc = out[n, c]
            for p in range(plane):
                s = k_t + alpha_t * sc[p]
                sc[p] = s
                oc[p] = xc[p] * s ** neg_beta


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def lrn_backward(dx, ratio, dout, x, out, scale, size, alpha, beta):
    # dout, x, out, scale, dx, ratio (scratch): (N, C, P); out and scale from lrn_forward.
    # Each x[i] feeds out[c] for the channels c whose window holds i, which (the window being
    # symmetric) are the channels of i's own window, hence (as in Caffe):
    # dx[i] = dout[i] * scale[i]^-beta
    #         - 2*alpha*beta/size * x[i] * sum over c in window(i) of dout[c] * out[c] / scale[c]
    n_batch, channels, plane = dout.shape
    half = size // 2
    coef = dx.dtype.type(2.0 * alpha * beta / size)
    neg_beta = dx.dtype.type(-beta)
    for n in prange(n_batch):
        for c in range(channels):
            rc = ratio[n, c]
            dc = dout[n, c]
            oc = out[n, c]
            sc = scale[n, c]
            for p in range(plane):
                rc[p] = dc[p] * oc[p] / sc[p]
        for c in range(channels):
            dxc = dx[n, c]
            for p in range(plane):
                dxc[p] = 0
            for j in range(max(0, c - half), min(channels, c + half + 1)):
                rj = ratio[n, j]
                for p in range(plane):
                    dxc[p] += rj[p]
            dc = dout[n, c]
            xc = x[n, c]
            sc = scale[n, c]
            for p in range(plane):
                dxc[p] = dc[p] * sc[p] ** neg_beta - coef * xc[p] * dxc[p]
