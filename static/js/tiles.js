// Tile grids on a canvas: the server sends a layer's maps (or filters) as one PNG, `count`
// tiles of `tile` = [h, w] pixels laid out `cols` per row with no gaps; here each tile is
// drawn enlarged by an integer zoom with nearest-neighbour scaling (as ConvNetJS draws its
// filters) and a gap around it. Cells past the last tile are never drawn: an empty cell is
// empty, not black (black is a value: the minimum).

const MAP_SIDE_PX = 32;      // a map or filter is drawn at least this wide...
const FILTER_SIDE_PX = 48;
const MAX_ZOOM = 48;         // ...a 1x1 map or filter at most this
export const GAPS = { map: 2, filter: 4 };

// integer zoom: small tiles large enough to see, 32x32 maps at twice their size
export function zoomFor(tile, kind = "map") {
  const side = Math.max(1, ...(Array.isArray(tile) ? tile : [1]));
  const target = kind === "filter" ? FILTER_SIDE_PX : MAP_SIDE_PX;
  return Math.min(MAX_ZOOM, Math.max(2, Math.ceil(target / side)));
}

// view (optional): draw only the first view.count tiles, view.cols a row, at view.zoom with
// view.gap, and leave the canvas's CSS size to the page (the projector's network strip)
export function layoutOf(grid, kind = "map", view = null) {
  const [h, w] = Array.isArray(grid.tile) ? grid.tile : [1, 1];
  const all = Math.max(0, grid.count ?? 0);
  const count = view ? Math.min(all, Math.max(0, view.count)) : all;
  const cols = Math.max(1, Math.min((view ? view.cols : grid.cols) || 1, count || 1));
  const zoom = view && view.zoom ? view.zoom : zoomFor(grid.tile, kind);
  const gap = view && view.gap !== undefined ? view.gap : GAPS[kind];
  const srcCols = Math.max(1, grid.cols || 1);   // the PNG's own layout
  return { h, w, count, cols, srcCols, rows: Math.max(1, Math.ceil(count / cols)), zoom, gap, sized: !view };
}

// Draw `grid` on `canvas`. Decoding a PNG takes a while on a slow phone, and frames may come
// faster: each canvas decodes one grid at a time and keeps only the latest one waiting (a
// queue of frames would grow for as long as the phone stays behind). ImageBitmaps, not
// <img> elements: no DOM nodes made per frame, and each is freed as soon as it is drawn.
export function drawGrid(canvas, grid, kind = "map", view = null) {
  const key = view ? `${view.count}/${view.cols}/${view.zoom}/${view.gap}` : "";
  canvas.waiting = canvas.drawn === grid.grid && canvas.drawnView === key ? null : { grid, kind, view, key };
  if (canvas.waiting && !canvas.decoding) decodeWaiting(canvas);
}

async function decodeWaiting(canvas) {
  canvas.decoding = true;
  while (canvas.waiting && canvas.isConnected) {    // a replaced view draws nothing more
    const { grid, kind, view, key } = canvas.waiting;
    canvas.waiting = null;
    try {
      const bitmap = await createImageBitmap(pngBlob(grid.grid));
      paint(canvas, bitmap, layoutOf(grid, kind, view));
      bitmap.close();
      canvas.drawn = grid.grid;
      canvas.drawnView = key;
    } catch {
      // a broken image: keep what the canvas shows
    }
  }
  canvas.waiting = null;
  canvas.decoding = false;
}

function pngBlob(b64) {
  const text = atob(b64.startsWith("data:") ? b64.slice(b64.indexOf(",") + 1) : b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

function paint(canvas, image, { h, w, count, cols, srcCols, rows, zoom, gap, sized }) {
  const tw = w * zoom;
  const th = h * zoom;
  canvas.width = cols * tw + (cols - 1) * gap;
  canvas.height = rows * th + (rows - 1) * gap;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let k = 0; k < count; k += 1) {
    const r = Math.floor(k / cols);
    const c = k % cols;
    const [sr, sc] = [Math.floor(k / srcCols), k % srcCols];
    ctx.drawImage(image, sc * w, sr * h, w, h, c * (tw + gap), r * (th + gap), tw, th);
  }
  Object.assign(canvas.dataset, { count: String(count), cols: String(cols), zoom: String(zoom), gap: String(gap), tile: `${h}x${w}` });
  if (sized) canvas.style.width = `${canvas.width / 15}rem`;
}

// The tile under a click (its position in the grid), or null on a gap or past the last tile.
export function tileAt(canvas, event) {
  const { count, cols, zoom, gap, tile } = canvas.dataset;
  if (!tile || !canvas.clientWidth) return null;
  const [h, w] = tile.split("x").map(Number);
  const scale = canvas.width / canvas.clientWidth;
  const x = event.offsetX * scale;
  const y = event.offsetY * scale;
  const stepX = w * Number(zoom) + Number(gap);
  const stepY = h * Number(zoom) + Number(gap);
  const c = Math.floor(x / stepX);
  const r = Math.floor(y / stepY);
  if (x - c * stepX >= w * Number(zoom) || y - r * stepY >= h * Number(zoom)) return null;
  if (c >= Number(cols)) return null;
  const k = r * Number(cols) + c;
  return k < Number(count) ? k : null;
}
