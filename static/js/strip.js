// The network strip of projector mode, after ConvNetJS's demo but readable from the back of
// a room: the current example image, then every top-level layer as one column (its type and
// output volume over a few of its activation maps, or, for a layer of one value per class,
// bars labelled with the class names), then the net's answer; in one row, or two when the
// net is long. Everything is sized to the network panel's box, never the other way round:
// each column's pictures are laid out for the room its box leaves them (measured, and again
// whenever the box changes size), so the strip never scrolls. A residual block is one
// column: its output. Drawn from the same frame as the full network view (netview.js).

import { renderValueBars } from "./bars.js";
import { clear, el, int, pct, pngSrc, setText, shape } from "./format.js";
import { drawGrid } from "./tiles.js";

const MAX_MAPS = 6;         // "a few" activation maps per layer...
const MIN_MAP_PX = 44;      // ...as many as can be drawn at least this large
const GAP_PX = 3;
const MAX_BAR_VALUES = 16;  // one value per channel: bars with names up to this many, else a chart
// A column's share of its row's width: a bar column needs room for the class names.
const WEIGHTS = { image: 1.25, maps: 1, chart: 1, bars: 2, answer: 1.4 };
const ONE_ROW_UP_TO = 8;    // total weight: a short net gets one row of tall columns

export class NetStrip {
  constructor(root) {
    this.root = root;
    this.signature = null;
    this.columns = [];
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => this.layout()).observe(root);
    }
  }

  // the same arguments as NetView.render (layerMs aside)
  render({ summaryLayers = [], visuals = [], example = null }) {
    const signature = summaryLayers.map((l) => `${l.type}:${(l.out_shape || []).join("x")}`).join("|");
    if (signature !== this.signature) this.build(summaryLayers, signature);
    const byIndex = new Map((visuals || []).map((v) => [String(v.index), v]));
    const truth = example && example.label !== undefined ? example.label : null;
    for (const column of this.columns) {
      if (column.kind === "image") fillImage(column, example);
      else if (column.kind === "answer") fillAnswer(column, example);
      else column.visual = byIndex.get(column.index) || visuals[column.position] || null;
    }
    this.truth = truth;
    this.draw();
  }

  build(summaryLayers, signature) {
    clear(this.root);
    this.signature = signature;
    this.columns = [];
    if (!summaryLayers.length) {
      this.root.append(el("p", { class: "muted" }, "No network yet."));
      return;
    }
    this.columns.push(imageColumn());
    summaryLayers.forEach((layer, position) => this.columns.push(layerColumn(layer, position)));
    this.columns.push(answerColumn());
    const weights = this.columns.map((c) => WEIGHTS[c.kind]);
    const total = weights.reduce((a, b) => a + b, 0);
    let split = this.columns.length;
    if (total > ONE_ROW_UP_TO) {   // two rows of about the same width
      let sum = 0;
      let best = Infinity;
      weights.forEach((w, i) => {
        sum += w;
        const off = Math.abs(total / 2 - sum);
        if (off < best) { best = off; split = i + 1; }
      });
    }
    const rows = [this.columns.slice(0, split), this.columns.slice(split)].filter((r) => r.length);
    for (const row of rows) {
      this.root.append(el("div", { class: "ns-row" }, row.map((c) => {
        c.box.style.flexGrow = String(WEIGHTS[c.kind]);
        return c.box;
      })));
    }
    this.root.dataset.rows = String(rows.length);
  }

  // Lay every picture out for the room its column has (after a build, a resize, a frame).
  layout() {
    for (const column of this.columns) column.room = null;
    this.draw();
  }

  draw() {
    for (const column of this.columns) {
      if (column.kind === "maps" || column.kind === "chart" || column.kind === "bars") drawLayer(column, this.truth);
    }
  }
}

function head(type, size) {
  return el("div", { class: "ns-head" },
    el("span", { class: `ns-type type-${type}` }, type.replace(/_/g, "_\u200b")),
    size ? el("span", { class: "ns-shape num" }, size) : null);
}

function imageColumn() {
  const img = el("img", { class: "ns-example", alt: "" });
  const truth = el("strong", { class: "ns-truth" });
  const note = el("span", { class: "ns-shape num" });
  const box = el("figure", { class: "ns-col ns-image-col" },
    el("div", { class: "ns-head" }, el("span", { class: "ns-type" }, "example"), note),
    el("div", { class: "ns-body" }, img), el("figcaption", { class: "ns-foot ns-truth-line" }, "true: ", truth));
  return { kind: "image", box, img, truth, note };
}

function fillImage(column, example) {
  const image = example && example.image ? pngSrc(example.image) : "";
  if (column.img.getAttribute("src") !== image) {
    if (image) column.img.src = image; else column.img.removeAttribute("src");
  }
  column.img.alt = example ? `the current example: ${example.label ?? "an image"}` : "";
  setText(column.truth, example && example.label !== undefined && example.label !== null ? String(example.label) : "");
  const where = example && example.index !== undefined && example.index !== null ? `#${example.index}` : "";
  const when = example && typeof example.step === "number" ? `step ${int(example.step)}` : "";
  setText(column.note, [where, when].filter(Boolean).join(" · "));
  column.box.title = example && example.title ? example.title : "";
}

function answerColumn() {
  const name = el("strong", { class: "ns-answer-name" });
  const p = el("span", { class: "ns-answer-p num" });
  const verdict = el("span", { class: "ns-verdict" });
  const others = el("ol", { class: "ns-others" });
  const box = el("figure", { class: "ns-col ns-answer", "aria-live": "off" },
    el("div", { class: "ns-head" }, el("span", { class: "ns-type" }, "net says")),
    el("div", { class: "ns-body ns-answer-body" }, name, p, verdict, others));
  return { kind: "answer", box, name, p, verdict, others };
}

function fillAnswer(column, example) {
  const top = (example && example.top) || [];
  const first = top[0];
  setText(column.name, first ? String(first.label) : "–");
  setText(column.p, first ? pct(first.p, 0) : "");
  const known = first && example.label !== undefined && example.label !== null;
  const right = known && String(first.label) === String(example.label);
  setText(column.verdict, !known ? "" : right ? "✓ right" : "✗ wrong");
  column.box.classList.toggle("right", Boolean(right));
  column.box.classList.toggle("wrong", Boolean(known && !right));
  const rest = top.slice(1, 3).map((t) => `${t.label} ${pct(t.p, 0)}`);
  if (column.others.dataset.shown !== rest.join("|")) {
    column.others.replaceChildren(...rest.map((t) => el("li", {}, t)));
    column.others.dataset.shown = rest.join("|");
  }
}

function layerColumn(layer, position) {
  const [h, w, c] = layer.out_shape || [0, 0, 0];
  const values = h * w === 1;
  const kind = !values ? "maps" : c <= MAX_BAR_VALUES ? "bars" : "chart";
  const index = String(layer.index ?? position);
  const label = `${layer.type} ${shape(layer.out_shape)}`;
  const picture = kind === "bars" ? el("ul", { class: "bars nv-bars ns-bars" })  // netview.css: zero line, negatives
    : el("canvas", { class: kind === "maps" ? "ns-tiles" : "ns-chart", role: "img", "aria-label": label });
  const body = el("div", { class: "ns-body" }, picture);
  const foot = el("div", { class: "ns-foot num" });
  const box = el("figure", { class: `ns-col ns-layer ns-kind-${kind} ns-type-${layer.type}`, "data-index": index, title: `layer ${index}: ${label}` },
    head(layer.type, shape(layer.out_shape)), body, foot);
  return { kind, index, position, layer, label, box, body, picture, foot, visual: null, room: null };
}

function drawLayer(column, truth) {
  const v = column.visual;
  column.box.classList.toggle("no-visual", !v);
  if (!v) { setText(column.foot, ""); return; }
  if (column.kind === "maps") drawMaps(column, v.act);
  else if (column.kind === "bars") drawBars(column, v.values, truth);
  else drawChart(column, v.values);
}

function roomOf(column) {
  // measured once per layout; a hidden strip (0 x 0) is measured again when it shows
  if (!column.room || column.room.width < 4) column.room = { width: column.body.clientWidth, height: column.body.clientHeight };
  return column.room;
}

function drawMaps(column, grid) {
  if (!grid || !grid.grid) { setText(column.foot, ""); return; }
  const { width, height } = roomOf(column);
  if (width < 4 || height < 4) return;    // not laid out (hidden): drawn on the next resize
  const [th, tw] = Array.isArray(grid.tile) ? grid.tile : [1, 1];
  const pick = mapLayout(grid.count, width, height, tw / th);
  const ratio = window.devicePixelRatio || 1;
  const zoom = Math.max(1, Math.ceil((pick.side * ratio) / Math.max(th, tw)));
  drawGrid(column.picture, grid, "map", { count: pick.count, cols: pick.cols, zoom, gap: Math.max(1, Math.round(GAP_PX * ratio)) });
  column.picture.setAttribute("aria-label", `${column.label}: ${pick.count} of its ${grid.of} activation maps`);
  setText(column.foot, `${pick.count} of ${grid.of}`);
}

// The most maps (up to MAX_MAPS) that can each be drawn MIN_MAP_PX wide or more in the room,
// in the arrangement that draws them largest; no empty row. aspect: a map's width / height.
function mapLayout(available, width, height, aspect = 1) {
  let best = null;
  for (let cols = 1; cols <= MAX_MAPS; cols += 1) {
    for (let rows = 1; cols * rows <= MAX_MAPS; rows += 1) {
      const count = Math.min(available, cols * rows);
      if (count < 1 || (rows - 1) * cols >= count || cols > count) continue;
      const side = Math.min((width - (cols - 1) * GAP_PX) / cols / aspect, (height - (rows - 1) * GAP_PX) / rows);
      const fits = side >= MIN_MAP_PX;
      const better = !best || (fits && !best.fits) || (fits === best.fits
        && (fits ? count > best.count || (count === best.count && side > best.side) : side > best.side));
      if (better) best = { count, cols, rows, side, fits };
    }
  }
  return best;
}

function drawBars(column, values, truth) {
  const numbers = values && values.act;
  if (!Array.isArray(numbers)) return;
  const start = values.start || 0;
  const names = values.labels || numbers.map((_, k) => `#${start + k}`);
  const probabilities = column.layer.type === "softmax";
  renderValueBars(column.picture, numbers, names, { probabilities, truth: values.labels ? truth : null });
  column.picture.style.setProperty("--ns-bars", String(numbers.length));
  setText(column.foot, probabilities ? "probabilities" : values.labels ? "class scores" : `${values.count} of ${values.of}`);
}

// many values, one per channel (a global average pool of 64): one thin bar each, from zero
function drawChart(column, values) {
  const numbers = values && Array.isArray(values.act) ? values.act : null;
  if (!numbers) return;
  const { width, height } = roomOf(column);
  if (width < 4 || height < 4) return;
  const ratio = window.devicePixelRatio || 1;
  const canvas = column.picture;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const finite = numbers.map((v) => (typeof v === "number" && Number.isFinite(v) ? v : 0));
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  const span = hi - lo || 1;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const step = canvas.width / finite.length;
  const zero = canvas.height * (hi / span);
  finite.forEach((v, k) => {
    ctx.fillStyle = v < 0 ? "#d55e00" : "#5b84b1";
    const y = zero - (canvas.height * v) / span;
    ctx.fillRect(k * step + step * 0.1, Math.min(y, zero), Math.max(1, step * 0.8), Math.abs(y - zero));
  });
  canvas.setAttribute("aria-label", `${column.label}: ${values.count} of its ${values.of} values`);
  setText(column.foot, `${values.count} of ${values.of}`);
}
