"""Fully-connected kernels: out = x @ w.T + b, forward above backward.

x is the layer input flattened to (N, D) in (C, H, W) order; w is (K, D) as torch's
nn.Linear. The inner loops all run over D, unit stride, in both w and x. Arrays arrive
C-contiguous (the layer sees to it); accumulators take the array's dtype.
"""

from numba import njit, prange

CHUNK = 2048  # columns of dx per task, so a batch of one still keeps both cores busy


@njit(cache=True, nogil=True, error_model="numpy", parallel=True,
      fastmath={"reassoc", "contract"})
def fc_forward(out, x, w, b):
    # x: (N, D), w: (K, D), b: (K,) -> out: (N, K). One task = one output element; reassoc
    # lets LLVM vectorise the dot product (it only reorders a sum).
    n_img, n_out = out.shape
    d = x.shape[1]
    for t in prange(n_img * n_out):
        n = t // n_out
        k = t - n * n_out
        xr = x[n]
        wr = w[k]
        s = b[k]
        for j in range(d):
            s += xr[j] * wr[j]
        out[n, k] = s


@njit(cache=True, nogil=True, error_model="numpy", parallel=True,
      fastmath={"contract"})
def fc_backward_data(dx, dout, w):
    # dout: (N, K), w: (K, D) -> dx: (N, D) = dout @ w, fully overwritten.
    # One task = one image x one chunk of columns.
    n_img, d = dx.shape
    n_out = w.shape[0]
    n_chunks = (d + CHUNK - 1) // CHUNK
    zero = dx.dtype.type(0)
    for t in prange(n_img * n_chunks):
        n = t // n_chunks
        lo = (t - n * n_chunks) * CHUNK
        hi = min(lo + CHUNK, d)
        row = dx[n, lo:hi]
        for j in range(hi - lo):
            row[j] = zero
        for k in range(n_out):
            g = dout[n, k]
            wr = w[k, lo:hi]
            for j in range(hi - lo):
                row[j] += g * wr[j]


@njit(cache=True, nogil=True, error_model="numpy", parallel=True,
      fastmath={"contract"})
def fc_backward_weights(dw, db, dout, x):
    # dout: (N, K), x: (N, D) -> dw: (K, D) += dout.T @ x; db: (K,) += dout summed over N.
    # db may be an empty array (a layer without bias). One task = one output neuron.
    n_img, d = x.shape
    n_out = dw.shape[0]
    for k in prange(n_out):
        row = dw[k]
        for n in range(n_img):
            g = dout[n, k]
            xr = x[n]
            for j in range(d):
                row[j] += g * xr[j]
        if db.shape[0] > 0:
            s = db[k]
            for n in range(n_img):
                s += dout[n, k]
            db[k] = s
