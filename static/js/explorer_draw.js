// Drawing for the convolution explorer (explorer.js): the padded input, the window of the
// current step, and the output map filling in row by row, side by side (stacked on a narrow
// screen), one cell size for both so the sizes compare at a glance. A window that falls off
// the edge is drawn in red, past the input, with the output cell it would fill as a red "?".
// Cost per frame is a few rectangles per row, not per cell: a 227x227 input redraws at once.

const COLORS = {
  padding: "#eceff3", input: "#cfe2f6", grid: "rgba(80, 95, 115, 0.35)", plane: "#9aa8b8",
  window: "rgba(240, 160, 32, 0.35)", windowEdge: "#c77700", off: "rgba(179, 38, 30, 0.16)", offEdge: "#b3261e",
  empty: "#f4f6f8", filled: "#86b6e4", current: "#f0a020", text: "#17202b", muted: "#566170",
};
const MAX_CELL = 44;
const MAX_PLANES = 3;

function rootPx() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 15;
}

// Cell size and where each grid goes, in CSS pixels.
function layout(width, d) {
  const { numbers, xs, ys, c } = d;
  const { width: ax, height: ay } = numbers.axes;
  const inCols = Math.max(ax.padded, xs[xs.length - 1] + c.f);
  const inRows = Math.max(ay.padded, ys[ys.length - 1] + c.f);
  const outCols = xs.length;
  const outRows = ys.length;
  const font = Math.round(rootPx() * 0.85);
  const label = font * 1.8;
  const depth = 10;                                   // room for the planes behind each grid
  const stacked = width < 560;
  const gapPx = stacked ? label : Math.max(36, width * 0.05);
  let cell = stacked
    ? (width - depth) / Math.max(inCols, outCols)
    : (width - gapPx - 2 * depth) / (inCols + outCols);
  // the whole drawing on one screen: a projector shows it without scrolling
  const tall = window.innerHeight * (stacked ? 0.9 : 0.72) - 2 * (label + depth);
  cell = Math.min(cell, tall / (stacked ? inRows + outRows : Math.max(inRows, outRows)));
  cell = Math.max(0.5, Math.min(MAX_CELL, cell));
  const input = { x: 0, y: label + depth, cols: inCols, rows: inRows };
  const output = stacked
    ? { x: 0, y: input.y + inRows * cell + gapPx + label + depth, cols: outCols, rows: outRows }
    : { x: inCols * cell + depth + gapPx, y: label + depth, cols: outCols, rows: outRows };
  const height = Math.max(input.y + inRows * cell, output.y + outRows * cell) + 6;
  return { cell, input, output, height, font, label };
}

function planes(g, x, y, w, h, count, edge) {
  for (let k = Math.min(count, MAX_PLANES) - 1; k >= 1; k -= 1) {
    g.fillStyle = "#fff";
    g.strokeStyle = edge;
    g.lineWidth = 1;
    g.fillRect(x + 4 * k, y - 4 * k, w, h);
    g.strokeRect(x + 4 * k + 0.5, y - 4 * k + 0.5, w - 1, h - 1);
  }
}

function gridLines(g, x, y, cols, rows, cell) {
  if (cell < 5) return;
  g.strokeStyle = COLORS.grid;
  g.lineWidth = 1;
  g.beginPath();
  for (let i = 0; i <= cols; i += 1) { g.moveTo(Math.round(x + i * cell) + 0.5, y); g.lineTo(Math.round(x + i * cell) + 0.5, y + rows * cell); }
  for (let j = 0; j <= rows; j += 1) { g.moveTo(x, Math.round(y + j * cell) + 0.5); g.lineTo(x + cols * cell, Math.round(y + j * cell) + 0.5); }
  g.stroke();
}

export function drawConv(canvas, d) {
  const { c, numbers, xs, ys, step, current } = d;
  const { width: ax, height: ay } = numbers.axes;
  const cssWidth = canvas.clientWidth || 600;
  const L = layout(cssWidth, d);
  const ratio = window.devicePixelRatio || 1;
  canvas.style.height = `${L.height}px`;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(L.height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssWidth, L.height);
  const { cell, input: I, output: O } = L;
  g.font = `${L.font}px system-ui, sans-serif`;
  g.textBaseline = "alphabetic";

  // ---- input: padding, the image, channels behind ----
  planes(g, I.x, I.y, ax.padded * cell, ay.padded * cell, c.c_in, COLORS.plane);
  g.fillStyle = COLORS.padding;
  g.fillRect(I.x, I.y, ax.padded * cell, ay.padded * cell);
  g.fillStyle = COLORS.input;
  g.fillRect(I.x + c.p * cell, I.y + c.p * cell, c.w * cell, c.h * cell);
  gridLines(g, I.x, I.y, ax.padded, ay.padded, cell);
  g.fillStyle = COLORS.text;
  const pad = c.p ? ` + pad ${c.p}` : "";
  g.fillText(`input ${c.h}×${c.w}×${c.c_in}${pad}`, I.x, I.y - 10 - L.font * 0.4);

  // ---- output: cells filled so far, a red "?" where a window fell off ----
  const realCols = ax.fits ? xs.length : xs.length - 1;
  const realRows = ay.fits ? ys.length : ys.length - 1;
  planes(g, O.x, O.y, O.cols * cell, O.rows * cell, c.c_out, COLORS.plane);
  g.fillStyle = COLORS.empty;
  g.fillRect(O.x, O.y, realCols * cell, realRows * cell);
  const full = Math.floor(step / O.cols);
  const part = step % O.cols;
  g.fillStyle = COLORS.filled;
  g.fillRect(O.x, O.y, realCols * cell, Math.min(full, realRows) * cell);
  if (full < realRows) g.fillRect(O.x, O.y + full * cell, Math.min(part, realCols) * cell, cell);
  gridLines(g, O.x, O.y, realCols, realRows, cell);
  if (realCols < O.cols || realRows < O.rows) {          // where windows fall off the edge
    g.save();
    g.setLineDash([4, 3]);
    g.strokeStyle = COLORS.offEdge;
    g.lineWidth = 1.5;
    const reached = (r, k) => r * O.cols + k < step;
    for (let r = 0; r < O.rows; r += 1) {
      for (let k = 0; k < O.cols; k += 1) {
        if (r < realRows && k < realCols) continue;
        const x = O.x + k * cell;
        const y = O.y + r * cell;
        if (reached(r, k)) { g.fillStyle = COLORS.off; g.fillRect(x, y, cell, cell); }
        if (cell >= 5) g.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
        if (cell >= 14) { g.fillStyle = COLORS.offEdge; g.textAlign = "center"; g.fillText("?", x + cell / 2, y + cell / 2 + L.font * 0.35); g.textAlign = "start"; }
      }
    }
    if (cell < 5) g.strokeRect(O.x + realCols * cell, O.y, (O.cols - realCols) * cell, O.rows * cell);
    g.restore();
  }
  g.fillStyle = COLORS.text;
  let outText = numbers.fits ? `output ${ay.out}×${ax.out}×${c.c_out}` : `output ${ay.value ?? "–"}×${ax.value ?? "–"} ✗`;
  if (c.c_out > 1) outText += ` (map 1 of ${c.c_out})`;
  // a narrow output map: its label ends at the drawing's right edge rather than past it
  const textX = Math.max(0, Math.min(O.x, cssWidth - g.measureText(outText).width - 2));
  g.fillText(outText, textX, O.y - 10 - L.font * 0.4);

  // ---- the current window and the cell it fills ----
  if (current) {
    const off = current.offX || current.offY;
    const wx = I.x + current.x * cell;
    const wy = I.y + current.y * cell;
    const size = c.f * cell;
    const cx = O.x + current.col * cell;
    const cy = O.y + current.row * cell;
    g.save();
    if (!off) { g.fillStyle = COLORS.current; g.fillRect(cx, cy, cell, cell); }
    g.strokeStyle = off ? COLORS.offEdge : COLORS.windowEdge;
    g.globalAlpha = 0.6;
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(wx + size, wy);
    g.lineTo(cx, cy);
    g.moveTo(wx + size, wy + size);
    g.lineTo(cx, cy + cell);
    g.stroke();
    g.globalAlpha = 1;
    g.fillStyle = off ? COLORS.off : COLORS.window;
    g.fillRect(wx, wy, size, size);
    if (off) g.setLineDash([6, 4]);
    g.lineWidth = Math.max(2, Math.min(3, cell / 4));
    g.strokeRect(wx, wy, size, size);
    g.strokeRect(cx, cy, cell, cell);
    g.restore();
  }
}
