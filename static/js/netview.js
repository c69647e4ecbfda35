// The network view: one row per top-level layer, as in ConvNetJS's demo. Left, the side
// panel: type, output volume, the window (filter size, stride, padding), the parameter
// formula, activation/gradient ranges and a timing bar. Right: the activation maps and their
// gradients and each conv layer's filters and filter gradients, as tiles on canvases
// (tiles.js: enlarged, sharp, with gaps, empty cells left empty), and for a layer of one
// value per channel (fc, softmax) bars labelled with the class names (or channel numbers).
// A frame carries at most 32 channels of a layer: "Show all" pages through the rest from the
// frame's details route; a deeper conv's filters are drawn as their mean over the input
// channels, and a click on one shows its slices, one per input channel. Used for training
// frames and for uploaded images (their layers have no details routes: no buttons there).

import { api } from "./api.js";
import { renderValueBars } from "./bars.js";
import { DASH, clear, el, fixed, formula, ms, pngSrc, setText, shape } from "./format.js";
import { openPatches } from "./patches.js";
import { renderSlices, renderSlicesError } from "./slices.js";
import { drawGrid, tileAt } from "./tiles.js";

const GRIDS = [["act", "Activations", "map"], ["grad", "Gradients", "map"],
  ["filters", "Filters", "filter"], ["filter_grads", "Filter gradients", "filter"]];
const VALUE_PARTS = ["act", "grad"];

export class NetView {
  constructor(root, { showTimes = true } = {}) {
    this.root = root;
    this.showTimes = showTimes;
    this.signature = null;
    this.rows = new Map();
    this.truth = null;
  }

  // summaryLayers: NET.summary.layers; visuals: LAYER_VISUALS (may be empty); example: the
  // input shown on top ({image, label}) or null; layerMs: [[fwd, bwd]...] or null, an entry
  // null for a relu the engine runs inside the conv above it.
  render({ summaryLayers = [], visuals = [], example = null, layerMs = null }) {
    const signature = summaryLayers.map((l) => `${l.type}:${(l.out_shape || []).join("x")}`).join("|");
    if (signature !== this.signature) this.build(summaryLayers, signature);
    this.truth = example && example.label !== undefined ? example.label : null;
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
      const row = this.buildRow(String(layer.index ?? i), layer);
      this.root.append(row.row);
      this.rows.set(row.index, row);
    }
  }

  buildRow(index, layer) {
    const ranges = el("div", { class: "nv-ranges num" });
    const time = el("div", { class: "nv-time", hidden: !this.showTimes },
      el("span", { class: "bar-track" }, el("span", { class: "bar-fwd" }), el("span", { class: "bar-bwd" })),
      el("span", { class: "nv-time-text num" }, DASH));
    const geometry = el("div", { class: "nv-geometry num", hidden: true });
    const info = el("div", { class: "nv-info" },
      el("div", { class: "nv-title" },
        el("span", { class: "nv-index num" }, index),
        el("span", { class: `nv-type type-${layer.type}` }, layer.type),
        el("span", { class: "nv-shape num", title: "output volume H×W×C" }, shape(layer.out_shape))),
      geometry,
      layer.formula ? el("div", { class: "nv-formula num", title: "parameters" }, "params ", formula(layer.formula)) : null,
      children(layer), ranges, time);
    const row = { index, layer, ranges, time, geometry, figures: {}, bars: {}, visual: null,
      page: null, detail: null, slices: null, filterStart: 0, slicesUrl: null,
      loading: new Set(), waiting: new Set() };
    const pager = buildPager(row, this);
    const maps = el("div", { class: "nv-maps" });
    for (const [key, caption, kind] of GRIDS) {
      const canvas = el("canvas", { role: "img", "aria-label": `${caption} of layer ${index} (${layer.type})` });
      const text = el("span", { class: "nv-caption" }, caption);
      const meta = el("span", { class: "nv-range num" });
      const fig = el("figure", { class: `nv-grid nv-${key}`, hidden: true }, el("figcaption", {}, text, " ", meta), canvas);
      maps.append(fig);
      row.figures[key] = { fig, canvas, text, meta, kind, caption };
    }
    row.figures.filters.canvas.addEventListener("click", (event) => {
      const k = tileAt(row.figures.filters.canvas, event);
      if (k !== null && row.slicesUrl) this.openSlices(row, row.filterStart + k);
      if (k !== null && layer.type === "conv") openPatches(index, row.filterStart + k, layer.out_shape[2]);
    });
    // a conv's map or filter: the test patches that excite that channel most (patches.js)
    row.figures.act.canvas.addEventListener("click", (event) => {
      const canvas = row.figures.act.canvas;
      const k = tileAt(canvas, event);
      if (k !== null && layer.type === "conv") openPatches(index, Number(canvas.dataset.start || 0) + k, layer.out_shape[2]);
    });
    row.figures.filters.canvas.addEventListener("keydown", (event) => {
      if (!row.slicesUrl || (event.key !== "Enter" && event.key !== " ")) return;
      event.preventDefault();
      this.openSlices(row, row.slices ? row.slices.index : row.filterStart);
    });
    for (const part of VALUE_PARTS) {
      const text = el("span", { class: "nv-caption" }, part === "act" ? "Values" : "Gradients");
      const list = el("ul", { class: "bars nv-bars" });
      const fig = el("figure", { class: `nv-values nv-values-${part}`, hidden: true }, el("figcaption", {}, text), list);
      maps.append(fig);
      row.bars[part] = { fig, list, text };
    }
    row.slicesBox = el("div", { class: "nv-slices", hidden: true, "aria-live": "polite" });
    row.row = el("div", { class: "nv-row", "data-index": index }, info,
      el("div", { class: "nv-right" }, pager, maps, row.slicesBox));
    return row;
  }

  fill(row, visual) {
    const fresh = visual !== row.visual;
    row.visual = visual;
    row.slicesUrl = visual && visual.filters ? visual.filters.slices_url || null : null;
    row.figures.filters.canvas.tabIndex = row.slicesUrl ? 0 : -1;
    row.figures.filters.fig.classList.toggle("clickable", Boolean(row.slicesUrl) || row.layer.type === "conv");
    row.figures.act.fig.classList.toggle("clickable", row.layer.type === "conv");
    const seen = row.layer.type === "conv" ? "click one: the test patches that excite its channel most" : "";
    row.figures.act.canvas.title = seen;
    row.figures.filters.canvas.title = seen;
    setText(row.geometry, geometryText(visual && visual.geometry));
    row.geometry.hidden = !row.geometry.textContent;
    setInnerGeometry(row.row, visual && visual.geometry);
    const parts = [];
    const act = visual && (visual.act || visual.values);
    const grad = visual && (visual.grad || (visual.values && rangeOf(visual.values.grad)));
    if (act) parts.push(`act ${fixed(act.min, 3)} … ${fixed(act.max, 3)}`);
    if (grad) parts.push(`grad ${fixed(grad.min, 4)} … ${fixed(grad.max, 4)}`);
    setText(row.ranges, parts.join("\n"));
    row.row.classList.toggle("no-visual", !visual);
    if (!visual) { row.page = null; row.detail = null; this.closeSlices(row); }
    this.draw(row);
    if (fresh && visual) this.follow(row);
  }

  // what the row shows: the frame's entry, or a page of every channel fetched for it
  draw(row) {
    const frame = row.visual;
    const shown = row.page !== null && row.detail ? row.detail : frame;
    for (const [key] of GRIDS) {
      const { fig, canvas, text, meta, kind, caption } = row.figures[key];
      const grid = shown ? shown[key] : null;
      fig.hidden = !grid || !grid.grid;
      if (fig.hidden) continue;
      setText(text, gridCaption(caption, key, grid, Boolean(row.slicesUrl)));
      setText(meta, `${fixed(grid.min, 3)} … ${fixed(grid.max, 3)}`);
      canvas.setAttribute("aria-label", `${caption} of layer ${row.index} (${row.layer.type}): ${grid.count} of ${grid.of}`);
      canvas.dataset.of = String(grid.of);
      canvas.dataset.start = String(grid.start || 0);
      drawGrid(canvas, grid, kind);
      if (key === "filters") row.filterStart = grid.start || 0;
    }
    const values = shown && shown.values;
    for (const part of VALUE_PARTS) {
      const { fig, list, text } = row.bars[part];
      const numbers = values && values[part];
      fig.hidden = !Array.isArray(numbers);
      if (fig.hidden) continue;
      const start = values.start || 0;
      const names = values.labels || numbers.map((_, k) => `#${start + k}`);
      setText(text, part === "grad" ? "Gradients" : valuesCaption(row.layer.type, Boolean(values.labels)));
      const probabilities = part === "act" && row.layer.type === "softmax";
      renderValueBars(list, numbers, names, { probabilities, truth: values.labels ? this.truth : null });
    }
    this.renderPager(row);
  }

  renderPager(row) {
    const { pager } = row;
    const frame = row.visual;
    const part = frame && (frame.act || frame.values || frame.filters);
    const detail = row.page !== null && row.detail ? row.detail : null;
    const shown = detail ? (detail.act || detail.values || detail.filters) : part;
    const cut = part && part.count < part.of;
    pager.box.hidden = !(cut || row.page !== null);
    if (pager.box.hidden) return;
    const of = part.of;
    const from = (shown.start || 0) + 1;
    const to = (shown.start || 0) + shown.count;
    setText(pager.text, shown.count >= of ? `All ${of} channels` : detail
      ? `Channels ${from}–${to} of ${of}` : `Showing ${shown.count} of ${of} channels`);
    const url = frame && frame.detail_url;
    pager.toggle.hidden = !url;
    setText(pager.toggle, row.page === null ? `Show all ${of}` : `Show ${part.count} again`);
    pager.toggle.setAttribute("aria-pressed", String(row.page !== null));
    pager.prev.hidden = !detail || (shown.start || 0) === 0;
    pager.next.hidden = !detail || to >= of;
  }

  setPage(row, start) {
    row.page = start;
    if (start === null) row.detail = null;
    this.draw(row);
    if (start !== null) this.follow(row, ["detail"]);
  }

  // Fetch what an open view needs for the row's current frame: the page of channels, and
  // the open filter's slices.
  follow(row, kinds = ["detail", "slices"]) {
    const url = row.visual && row.visual.detail_url;
    if (kinds.includes("detail") && row.page !== null && url) {
      const start = row.page;
      this.load(row, "detail", `${url}&start=${start}`, (answer) => {
        // the frame may have moved on meanwhile (even to another net): same layer, same page
        const same = row.visual && answer.type === row.layer.type && answer.channels === row.visual.channels;
        if (same && row.page === start) { row.detail = answer; this.draw(row); }
      });
    }
    if (kinds.includes("slices") && row.slices && row.slicesUrl) {
      const { index, start } = row.slices;
      this.load(row, "slices", `${row.slicesUrl}&index=${index}&start=${start}`, (answer) => {
        if (row.slices && row.slices.index === index && row.slices.start === start) this.showSlices(row, answer);
      });
    }
  }

  // While one is on its way, a newer need (another filter, a newer frame) waits for it and
  // then asks again: at most one request in flight and one waiting, per row and kind.
  load(row, kind, url, apply) {
    if (row.loading.has(kind)) {
      row.waiting.add(kind);
      return;
    }
    row.loading.add(kind);
    api(url).then(apply).catch((err) => {
      if (kind === "slices") this.showSlicesError(row, err.detail);
      else setText(row.pager.text, `Could not load the channels: ${err.detail}`);
    }).finally(() => {
      row.loading.delete(kind);
      if (row.waiting.delete(kind)) this.follow(row, [kind]);
    });
  }

  openSlices(row, index, start = 0) {
    row.slices = { index, start };
    row.slicesBox.hidden = false;
    if (!row.slicesBox.firstChild) row.slicesBox.append(el("p", { class: "muted" }, `Loading filter ${index}…`));
    this.follow(row, ["slices"]);
  }

  closeSlices(row) {
    row.slices = null;
    row.slicesBox.hidden = true;
    clear(row.slicesBox);
  }

  showSlicesError(row, detail) {
    renderSlicesError(row.slicesBox, detail, this.slicesActions(row, null));
  }

  showSlices(row, answer) {
    renderSlices(row.slicesBox, answer, this.slicesActions(row, answer));
  }

  slicesActions(row, answer) {
    return { index: row.slices ? row.slices.index : 0, filters: answer ? answer.filters : null,
      open: (index, start = 0) => this.openSlices(row, index, start), close: () => this.closeSlices(row) };
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

// "Showing 32 of 64 channels [Show all 64]", and paging buttons while every channel shows
function buildPager(row, view) {
  const text = el("span", { class: "nv-count-text" });
  const prev = el("button", { type: "button", class: "btn small", hidden: true }, "◀ Previous");
  const toggle = el("button", { type: "button", class: "btn small nv-show-all", hidden: true });
  const next = el("button", { type: "button", class: "btn small", hidden: true }, "Next ▶");
  const pageOf = (answer) => (answer && (answer.act || answer.values || answer.filters)) || null;
  toggle.addEventListener("click", () => view.setPage(row, row.page === null ? 0 : null));
  prev.addEventListener("click", () => {
    const part = pageOf(row.detail);
    if (part) view.setPage(row, Math.max(0, part.start - part.count));
  });
  next.addEventListener("click", () => {
    const part = pageOf(row.detail);
    if (part) view.setPage(row, part.start + part.count);
  });
  row.pager = { box: el("div", { class: "nv-count", hidden: true }, text, prev, toggle, next), text, prev, toggle, next };
  return row.pager.box;
}

function gridCaption(caption, key, grid, clickable) {
  if (key !== "filters" && key !== "filter_grads") return caption;
  if (grid.color) return `${caption} (in colour: R, G, B)`;
  const mean = grid.mean_over ? ` (mean over ${grid.mean_over} input channels${key === "filters" && clickable ? "; click one to see its slices" : ""})` : "";
  return caption + mean;
}

function valuesCaption(type, classes) {
  if (type === "softmax") return "Probabilities";
  if (type === "svm") return "Class scores";
  return classes ? "Values (one per class)" : "Values";
}

// the smallest and largest finite number of a list, or null
function rangeOf(numbers) {
  const finite = (numbers || []).filter((v) => typeof v === "number" && Number.isFinite(v));
  return finite.length ? { min: Math.min(...finite), max: Math.max(...finite) } : null;
}

// [y, x] pairs as "5×5" (square: "5") for strides and paddings
function pair(p, square = false) {
  if (!Array.isArray(p)) return DASH;
  return p[0] === p[1] && square ? String(p[0]) : `${p[0]}×${p[1]}`;
}

function geometryText(g) {
  if (!g || g.inner) return "";
  if (g.filters !== undefined) {
    return `${g.filters} filters ${pair(g.size)}×${g.in_channels}, stride ${pair(g.stride, true)}, pad ${pair(g.pad, true)}`;
  }
  if (g.stride === undefined) return `${g.mode === "avg" ? "average" : g.mode} over each whole ${pair(g.size)} map`;
  return `${g.mode} pool ${pair(g.size)}, stride ${pair(g.stride, true)}, pad ${pair(g.pad, true)}`;
}

// a block's inner convs and pools: their windows beside them in the list of inner layers
function setInnerGeometry(rowEl, g) {
  for (const li of rowEl.querySelectorAll(".nv-children li[data-path]")) {
    const span = li.querySelector(".nv-geometry");
    setText(span, geometryText(g && g.inner ? g.inner[li.dataset.path] : null));
    span.hidden = !span.textContent;
  }
}

// a conv inside a block has no maps of its own in the view: a button opens its patches
function seesButton(conv) {
  const button = el("button", { type: "button", class: "btn small nv-sees", "data-layer": conv.index,
    title: "the test images that excite this conv's channels most (one channel at a time)" }, "what it sees");
  button.addEventListener("click", () => openPatches(conv.index, 0, conv.out_shape[2]));
  return button;
}

// A residual block or a concat lists its inner layers (each conv's and pool's window is
// filled in from the frame: setInnerGeometry).
function children(layer) {
  if (!layer.children || !layer.children.length) return null;
  const items = layer.children.map((c) => el("li", { "data-path": String(c.index).slice(String(layer.index).length + 1) },
    el("span", { class: "num" }, c.index), " ", c.type, " ",
    el("span", { class: "num muted" }, shape(c.out_shape)),
    c.formula ? el("span", { class: "num muted" }, " · ", formula(c.formula)) : null,
    el("span", { class: "nv-geometry num", hidden: true }),
    c.type === "conv" ? seesButton(c) : null));
  return el("details", { class: "nv-children" }, el("summary", {}, `${layer.children.length} inner layers`), el("ul", {}, items));
}
