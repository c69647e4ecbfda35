"""Numba kernels, one module per op family: plain loops that allocate and check nothing.
May import: nothing."""
