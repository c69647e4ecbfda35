"""Output sizes of windowed layers (conv, pool) along one axis, and what would fit instead.

Out = (W - F + 2P)/S + 1. CS231n's rule: when that is not an integer the stride "does not fit"
and the spec is refused, showing the arithmetic (ConvNetJS floors silently instead). A layer
that opts in with "rounding": "floor" drops the last rows/columns no window reaches, as PyTorch
and Caffe convolutions do; ResNet and GoogLeNet at 224x224 need that.
"""

from __future__ import annotations

AXIS_WORDS = {"x": ("width", "column"), "y": ("height", "row")}
MAX_LISTED_STRIDES = 8


def window_out(size: int, f: int, pad: int, stride: int) -> int:
    """Output size of a window that fits (floor division: exact when the remainder is 0)."""
    return (size - f + 2 * pad) // stride + 1


def _fmt_ratio(num: int, den: int) -> str:
    text = f"{num / den:.2f}".rstrip("0").rstrip(".")
    return text if "." in text else f"{num // den} + {num % den}/{den}"  # 2 decimals hide it


def _divisors(n: int) -> list[int]:
    """Divisors of n (those up to 10**5 and their partners: enough to suggest strides)."""
    small, large, d = [], [], 1
    while d * d <= n and d <= 10**5:
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def _fitting_strides(n: int, stride: int) -> list[int]:
    divisors = _divisors(n)
    if len(divisors) > MAX_LISTED_STRIDES:
        divisors = sorted(sorted(divisors, key=lambda s: abs(s - stride))[:MAX_LISTED_STRIDES])
    return divisors


def _fitting_pads(size: int, f: int, pad: int, stride: int, max_pad: int) -> list[int]:
    """Up to two paddings nearest to `pad` that make the output an integer."""
    reach = min(stride, 64)  # fitting pads repeat with period <= stride
    fits = [p for p in range(max(0, pad - reach), min(max_pad, pad + reach) + 1)
            if size + 2 * p >= f and (size - f + 2 * p) % stride == 0]
    return sorted(sorted(fits, key=lambda p: (abs(p - pad), p))[:2])


def stride_fixes(size: int, f: int, pad: int, stride: int, *, pool: bool) -> dict:
    """What fits where (size - f + 2*pad) % stride != 0 (f at most the padded size): the
    strides, the paddings with this stride and the input sizes that make the output an
    integer, the value it has now, and how many padded rows/columns flooring would drop.
    check_axis words exactly these; the page's convolution explorer shows them."""
    n = size - f + 2 * pad
    remainder = n % stride
    max_pad = f // 2 if pool else f - 1
    sizes = [s for s in (size - remainder, size + stride - remainder)
             if s + 2 * pad >= f and s >= 1]
    return {"value": _fmt_ratio(n + stride, stride), "strides": _fitting_strides(n, stride),
            "pads": _fitting_pads(size, f, pad, stride, max_pad), "sizes": sizes,
            "dropped": remainder}


def _or_list(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def check_axis(size: int, f: int, pad: int, stride: int, rounding: str, *, axis: str,
               pool: bool) -> tuple[str, str] | None:
    """None when the window fits along this axis, else (role, message) where role names the
    culprit: "f" (window size), "pad" or "stride"."""
    extent, line = AXIS_WORDS[axis]
    what = "window" if pool else "filter"
    max_pad = f // 2 if pool else f - 1
    if pool and pad > max_pad:
        return "pad", (f"pad {pad} is more than half the {extent} of the window ({f}), so some "
                       f"windows would cover only padding; use a pad of at most {max_pad}")
    if size + 2 * pad < f:
        hint = f"use a {what} {extent} of at most {size + 2 * pad}"
        need = (f - size + 1) // 2
        if need <= max_pad:
            hint += f", or pad {need} or more"
        return "f", (f"the {what} {extent} {f} is larger than the padded input {extent} "
                     f"{size} + 2*{pad} = {size + 2 * pad}; {hint}")
    n = size - f + 2 * pad
    remainder = n % stride
    if remainder == 0 or rounding == "floor":
        return None
    fixes = stride_fixes(size, f, pad, stride, pool=pool)
    parts = [f"({size} - {f} + 2*{pad})/{stride} + 1 = {fixes['value']} is not an integer"]
    parts.append("strides that fit: " + ", ".join(map(str, fixes["strides"])))
    if fixes["pads"]:
        parts.append(f"or pad {_or_list(fixes['pads'])} with stride {stride}")
    parts.append(f"or an input {extent} of {_or_list(fixes['sizes'])}")
    plural = "s" if remainder > 1 else ""
    parts.append(f'or "rounding": "floor" to drop the last {remainder} {line}{plural} of the '
                 "padded input, as PyTorch does")
    return "stride", "; ".join(parts)
