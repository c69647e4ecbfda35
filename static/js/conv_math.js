// One convolution's arithmetic, as GET /api/conv answers it (server/routes/explorer.py): the
// output size per axis, (W - F + 2P)/S + 1, whether the stride fits and what would fit
// instead, by the spec checker's own rule (engine/spec/windows.py: stride_fixes, check_axis),
// and the parameter count as the calculator writes it (engine/calculator.py: own_params).
// The explorer computes it here so that dragging a number redraws at once, on a phone too;
// tests/server/test_browser_explorer.py checks that the page shows the route's numbers.

// name: [smallest, largest]: the route's FIELDS (a test compares them)
export const LIMITS = { w: [1, 256], h: [1, 256], f: [1, 32], s: [1, 32], p: [0, 32], c_in: [1, 4096], c_out: [1, 4096] };
const MAX_LISTED_STRIDES = 8;

function divisors(n) {
  const small = [];
  const large = [];
  for (let d = 1; d * d <= n && d <= 1e5; d += 1) {
    if (n % d === 0) {
      small.push(d);
      if (d !== n / d) large.push(n / d);
    }
  }
  return small.concat(large.reverse());
}

function fittingStrides(n, stride) {
  const all = divisors(n);
  if (all.length <= MAX_LISTED_STRIDES) return all;
  // the nearest to the stride asked for (ties: the smaller, as Python's stable sort keeps)
  return all.slice().sort((a, b) => Math.abs(a - stride) - Math.abs(b - stride))
    .slice(0, MAX_LISTED_STRIDES).sort((a, b) => a - b);
}

function fittingPads(size, f, pad, stride, maxPad) {
  const reach = Math.min(stride, 64);
  const fits = [];
  for (let p = Math.max(0, pad - reach); p <= Math.min(maxPad, pad + reach); p += 1) {
    if (size + 2 * p >= f && (size - f + 2 * p) % stride === 0) fits.push(p);
  }
  fits.sort((a, b) => Math.abs(a - pad) - Math.abs(b - pad) || a - b);
  return fits.slice(0, 2).sort((a, b) => a - b);
}

// num/den to 2 decimals as Python's f"{x:.2f}" writes it: toFixed rounds the same double the
// same way except on an exact tie (x.125 in binary), where Python rounds half to even.
function fixed2(num, den) {
  const twoHundredths = num * 200;
  if (twoHundredths % den === 0) {
    const t = twoHundredths / den;            // x = t/200 exactly: a tie when t is odd,
    if (t % 2 === 1 && t % 25 === 0) {        // and a double holds it exactly when 25 | t
      const down = (t - 1) / 2;
      const hundredths = down % 2 === 0 ? down : down + 1;
      return `${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, "0")}`;
    }
  }
  return (num / den).toFixed(2);
}

// the spec checker's "2.33"; "2 + 1/300" where 2 decimals would hide that it is no integer
export function ratioText(num, den) {
  const text = fixed2(num, den).replace(/0+$/, "").replace(/\.$/, "");
  return text.includes(".") ? text : `${Math.floor(num / den)} + ${num % den}/${den}`;
}

// One axis, the keys and values of the route's `axes.width` / `axes.height` (less `message`).
export function axisNumbers(size, f, pad, stride) {
  const padded = size + 2 * pad;
  const numerator = size - f + 2 * pad;
  const out = { size, padded, numerator, fits: false, out: null, floor: null, value: null, strides: [], pads: [], sizes: [], dropped: 0, max_f: null, min_pad: null };
  if (f > padded) {
    const need = Math.floor((f - size + 1) / 2);
    return { ...out, max_f: padded, min_pad: need <= f - 1 ? need : null };
  }
  out.floor = Math.floor(numerator / stride) + 1;
  const remainder = numerator % stride;
  if (remainder === 0) return { ...out, fits: true, out: out.floor, value: String(out.floor) };
  const sizes = [size - remainder, size + stride - remainder].filter((s) => s + 2 * pad >= f && s >= 1);
  return { ...out, value: ratioText(numerator + stride, stride), strides: fittingStrides(numerator, stride), pads: fittingPads(size, f, pad, stride, f - 1), sizes, dropped: remainder };
}

// The route's answer for a case {w, h, f, s, p, c_in, c_out} (less messages and limits).
export function convNumbers(c) {
  const width = axisNumbers(c.w, c.f, c.p, c.s);
  const height = axisNumbers(c.h, c.f, c.p, c.s);
  const fits = width.fits && height.fits;
  const weights = c.f * c.f * c.c_in * c.c_out;
  return {
    case: { ...c },
    axes: { width, height },
    fits,
    output_shape: fits ? [height.out, width.out, c.c_out] : null,
    params: { weights, biases: c.c_out, total: weights + c.c_out, per_filter: c.f * c.f * c.c_in + 1, formula: `${c.c_out}x${c.f}x${c.f}x${c.c_in}+${c.c_out} = ${weights + c.c_out}` },
    flops: fits ? 2 * height.out * width.out * c.c_out * c.c_in * c.f * c.f : null,
  };
}

// A case is valid when every field is an integer within LIMITS: null, or [field, sentence].
export function caseProblem(c) {
  for (const [name, [low, high]] of Object.entries(LIMITS)) {
    const v = c[name];
    if (!Number.isInteger(v) || v < low || v > high) return [name, `must be a whole number from ${low} to ${high}`];
  }
  return null;
}

// Where the window stands along one axis at each of its steps: every window that fits, and
// where the stride does not fit, one more that falls off the edge (drawn, not hidden).
export function windowStarts(axis, stride) {
  if (axis.floor === null) return [0];
  const count = axis.fits ? axis.out : axis.floor + 1;
  return Array.from({ length: count }, (_, k) => k * stride);
}
