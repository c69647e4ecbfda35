"""Central differences in float64: the reference every backward is checked against."""

import numpy as np


def numerical_grad(f, a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f() / d a by central differences, perturbing a in place (restored afterwards)."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        f_plus = f()
        a[idx] = old - h
        f_minus = f()
        a[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """CS231n's relative error: max |a-b| / max(|a|+|b|, tiny)."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b))))
