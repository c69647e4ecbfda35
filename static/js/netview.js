// The network view: one row per top-level layer, as in ConvNetJS's demo. Left: type, output
// volume, parameter formula, activation/gradient ranges and a timing bar. Right: the
// activation maps, their gradients, the filters and the filter gradients, each a PNG grid from
// the server drawn enlarged with `image-rendering: pixelated` (a 3x3 filter or a 1x1 map is
// never shown smaller than ~24 CSS pixels). Used for training frames and for uploaded images.

import { DASH, clear, el, fixed, formula, ms, pngSrc, setText, shape } from "./format.js";

const GRIDS = [
  ["act", "Activations"],
  ["grad", "Gradients"],
  ["filters", "Filters"],
  ["filter_grads", "Filter gradients"],
];

// integer zoom so small tiles are readable and big ones do not overflow
function zoomFor(tile) {
  const side = Math.max(1, ...(Array.isArray(tile) ? tile : [1]));
  return side >= 16 ? 2 : Math.min(24, Math.ceil(24 / side));
}

export class NetView {
  constructor(root, { showTimes = true } = {}) {
    this.root = root;
    this.showTimes = showTimes;
    this.signature = null;
    this.rows = new Map();
  }

  // summaryLayers: NET.summary.layers; visuals: LAYER_VISUALS (may be empty); example: the
  // input shown on top ({image, label}) or null; layerMs: [[fwd, bwd]...] or null, an entry
  // null for a relu the engine runs inside the conv above it.
  render({ summaryLayers = [], visuals = [], example = null, layerMs = null }) {
    const signature = summaryLayers.map((l) => `${l.type}:${(l.out_shape || []).join("x")}`).join("|");
    if (signature !== this.signature) this.build(summaryLayers, signature);
    const byIndex = new Map((visuals || []).map((v) => [String(v.index), v]));
    summaryLayers.forEach((layer, i) => {
      const row = this.rows.get(String(layer.index ?? i));
      if (row) this.fill(row, byIndex.get(String(layer.index ?? i)) || visuals[i] || null);
    });
    this.renderExample(example);
    this.renderTimes(layerMs);
  }

  build(summaryLayers, signature) {
    clear(this.root);
    this.rows.clear();
    this.signature = signature;
    this.exampleBox = el("div", { class: "nv-example", hidden: true });
    this.root.append(this.exampleBox);
    if (!summaryLayers.length) {
      this.root.append(el("p", { class: "muted" }, "No network yet."));
      return;
    }
    for (const [i, layer] of summaryLayers.entries()) {
      const index = String(layer.index ?? i);
      const ranges = el("div", { class: "nv-ranges num" });
      const time = el("div", { class: "nv-time", hidden: !this.showTimes },
        el("span", { class: "bar-track" }, el("span", { class: "bar-fwd" }), el("span", { class: "bar-bwd" })),
        el("span", { class: "nv-time-text num" }, DASH));
      const info = el("div", { class: "nv-info" },
        el("div", { class: "nv-title" },
          el("span", { class: "nv-index num" }, index),
          el("span", { class: `nv-type type-${layer.type}` }, layer.type),
          el("span", { class: "nv-shape num", title: "output volume H×W×C" }, shape(layer.out_shape))),
        layer.formula ? el("div", { class: "nv-formula num", title: "parameters" }, "params ", formula(layer.formula)) : null,
        children(layer),
        ranges, time);
      const maps = el("div", { class: "nv-maps" });
      const figures = {};
      for (const [key, caption] of GRIDS) {
        const img = el("img", { alt: `${caption} of layer ${index} (${layer.type})`, decoding: "async" });
        const frame = el("span", { class: "nv-img" }, img);  // draws the lines between tiles
        img.addEventListener("load", () => sizeImage(img, frame));
        const meta = el("span", { class: "nv-range num" });
        const fig = el("figure", { class: `nv-grid nv-${key}`, hidden: true },
          el("figcaption", {}, caption, " ", meta), frame);
        maps.append(fig);
        figures[key] = { fig, img, meta };
      }
      const row = el("div", { class: "nv-row", "data-index": index }, info, maps);
      this.root.append(row);
      this.rows.set(index, { row, ranges, time, figures, layer });
    }
  }

  fill(row, visual) {
    const parts = [];
    for (const [key] of GRIDS) {
      const grid = visual ? visual[key] : null;
      const { fig, img, meta } = row.figures[key];
      fig.hidden = !grid || !grid.grid;
      if (fig.hidden) continue;
      img.dataset.zoom = String(zoomFor(grid.tile));
      img.dataset.cols = String(grid.cols || 1);
      img.dataset.tileH = String((grid.tile && grid.tile[0]) || 0);
      img.classList.toggle("color", Boolean(grid.color));
      const src = pngSrc(grid.grid);
      if (img.getAttribute("src") !== src) img.setAttribute("src", src);
      setText(meta, `${fixed(grid.min, 3)} … ${fixed(grid.max, 3)}`);
    }
    const act = visual && visual.act;
    const grad = visual && visual.grad;
    if (act) parts.push(`act ${fixed(act.min, 3)} … ${fixed(act.max, 3)}`);
    if (grad) parts.push(`grad ${fixed(grad.min, 4)} … ${fixed(grad.max, 4)}`);
    setText(row.ranges, parts.join("\n"));
    row.row.classList.toggle("no-visual", !visual);
  }

  renderExample(example) {
    const box = this.exampleBox;
    if (!box) return;
    box.hidden = !example || !example.image;
    if (box.hidden) return;
    clear(box);
    const top = (example.top || []).map((t) => `${t.label} ${(100 * (t.p ?? 0)).toFixed(0)}%`).join(", ");
    box.append(
      el("img", { class: "nv-example-img", src: pngSrc(example.image), alt: `example image, ${example.label ?? "uploaded"}` }),
      el("div", {},
        el("div", { class: "nv-example-title" }, example.title || "Example"),
        example.label !== undefined && example.label !== null ? el("div", {}, "true class: ", el("strong", {}, String(example.label))) : null,
        top ? el("div", { class: "muted" }, "net says: ", top) : null));
  }

  renderTimes(layerMs) {
    if (!this.showTimes) return;
    const totals = (layerMs || []).map((t) => (Array.isArray(t) ? (t[0] || 0) + (t[1] || 0) : 0));
    const max = Math.max(1e-9, ...totals);
    let i = 0;
    for (const { time } of this.rows.values()) {
      const t = layerMs && layerMs[i];
      const fused = Array.isArray(layerMs) && i < layerMs.length && t === null;
      time.hidden = !t && !fused;
      if (fused) {
        time.querySelector(".bar-fwd").style.width = "0%";
        time.querySelector(".bar-bwd").style.width = "0%";
        setText(time.querySelector(".nv-time-text"), "in the conv above");
        time.title = "computed in the same pass as the conv above it: its time is in the conv's";
      } else if (t) {
        const [fwd, bwd] = [t[0] || 0, t[1] || 0];
        time.querySelector(".bar-fwd").style.width = `${(100 * fwd) / max}%`;
        time.querySelector(".bar-bwd").style.width = `${(100 * bwd) / max}%`;
        setText(time.querySelector(".nv-time-text"), `${ms(fwd)} + ${ms(bwd)}`);
        time.title = `per image: forward ${ms(fwd)}, backward ${ms(bwd)}`;
      }
      i += 1;
    }
  }
}

// natural size x integer zoom (image-rendering: pixelated in app.css), in rem of the normal
// 15 px type, so the projector's large type enlarges the maps too; height follows (auto)
function sizeImage(img, frame) {
  const zoom = Number(img.dataset.zoom || 1);
  img.style.width = `${(img.naturalWidth * zoom) / 15}rem`;
  const cols = Number(img.dataset.cols || 1);
  const tileH = Number(img.dataset.tileH || 0);
  const rows = tileH ? Math.max(1, Math.round(img.naturalHeight / tileH)) : 1;
  const single = cols * rows <= 1;
  frame.classList.toggle("tiled", !single);
  frame.style.backgroundSize = "";
  frame.style.setProperty("--cell-w", `${100 / cols}%`);
  frame.style.setProperty("--cell-h", `${100 / rows}%`);
}

// A residual block or a concat lists its inner layers.
function children(layer) {
  if (!layer.children || !layer.children.length) return null;
  const items = layer.children.map((c) => el("li", {},
    el("span", { class: "num" }, c.index), " ", c.type, " ",
    el("span", { class: "num muted" }, shape(c.out_shape)),
    c.formula ? el("span", { class: "num muted" }, " · ", formula(c.formula)) : null));
  return el("details", { class: "nv-children" }, el("summary", {}, `${layer.children.length} inner layers`), el("ul", {}, items));
}
