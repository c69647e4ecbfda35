// The architecture calculator's table (engine.calculator.summarize): per layer the output
// volume, parameters with their formula, FLOPs, activations and receptive field; totals and
// memory as the lecture computes them (VGG-16: ~24M activations, ~93 MB per image forward).
// Also the viewers' Architecture panel: the running net and the lecture's case studies.

import { api } from "./api.js";
import { bytes, clear, el, formula, int, isNum, shape, si } from "./format.js";
import { scrollBox } from "./scrollcue.js";

function* flat(rows) {
  for (const row of rows || []) {
    yield row;
    yield* flat(row.children);
  }
}

export function renderSummary(summary) {
  const table = el("table", { class: "summary-table num" });
  table.append(el("thead", {}, el("tr", {},
    [["#"], ["layer"], ["output H×W×C"], ["parameters"], ["FLOPs", "forward, per image; a multiply-add counts 2"],
      ["activations", "values per image (lecture convention)"], ["memory", "activations × 4 bytes"], ["RF", "receptive field in input pixels"]]
      .map(([h, title]) => el("th", { scope: "col", title }, h)))));
  const body = el("tbody");
  for (const row of flat(summary.layers)) {
    const rf = Array.isArray(row.receptive_field) ? row.receptive_field.join("×") : "";
    body.append(el("tr", { "data-index": row.index, class: row.depth ? "inner" : "" },
      el("td", {}, row.index),
      el("td", { class: "type", style: { paddingLeft: `${0.4 + 1.1 * (row.depth || 0)}em` } }, row.type),
      el("td", {}, shape(row.out_shape)),
      el("td", { class: "param-cell" }, row.formula ? formula(row.formula) : row.params ? int(row.params) : ""),
      el("td", { title: isNum(row.flops) ? `${int(row.flops)} FLOPs` : "" }, row.flops ? si(row.flops) : ""),
      el("td", {}, row.activations ? int(row.activations) : ""),
      el("td", {}, row.bytes ? bytes(row.bytes) : ""),
      el("td", {}, rf)));
  }
  table.append(body);
  table.append(el("tfoot", {}, el("tr", {},
    el("th", { scope: "row", colspan: 3 }, "total"),
    el("td", { class: "param-cell" }, int(summary.params)),
    el("td", { title: `${int(summary.flops)} FLOPs` }, si(summary.flops)),
    el("td", {}, int(summary.activations)),
    el("td", {}, bytes(summary.memory && summary.memory.forward_bytes_per_image)), el("td", {}))));
  const mem = summary.memory || {};
  const facts = el("dl", { class: "summary-facts" },
    fact("Input", shape(summary.input_shape)),
    fact("Parameters", int(summary.params)),
    fact("FLOPs per image (forward, multiply-add = 2)", `${si(summary.flops)} (${int(summary.flops)})`),
    fact("Activations per image", int(summary.activations)),
    fact("Forward memory per image (activations × 4 bytes)", bytes(mem.forward_bytes_per_image)),
    fact("Training memory in this engine", `${bytes(mem.training_bytes_per_image)} per image + ${bytes(mem.training_fixed_bytes)} for weights, gradients and optimizer state; ${bytes(mem.training_bytes_example_batch)} at batch ${mem.example_batch ?? "–"}`));
  const notes = (summary.notes || []).length
    ? el("ul", { class: "summary-notes" }, summary.notes.map((n) => el("li", {}, n))) : null;
  const conventions = (summary.conventions || []).length
    ? el("details", { class: "conventions" }, el("summary", {}, "How these are counted"),
      el("ul", {}, summary.conventions.map((c) => el("li", {}, c)))) : null;
  return el("div", { class: "summary" },
    summary.description ? el("p", { class: "summary-desc" }, el("strong", {}, summary.name || "net"), ": ", summary.description) : null,
    scrollBox(table, "table-scroll"), facts, notes, conventions);
}

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", { class: "num" }, value));
}

// GET /api/summary?preset=NAME -> {summary, document?, trainable?} or a bare SUMMARY
export async function fetchPreset(name) {
  const body = await api(`/api/summary?preset=${encodeURIComponent(name)}`);
  const summary = body && body.layers ? body : body && body.summary;
  return { summary, document: body && (body.document || body.spec) || null };
}

// A preset <select>: the running net first, then trainable presets, then case studies.
export function presetSelect(id, presets, { current = "Running net" } = {}) {
  const select = el("select", { id });
  if (current) select.append(el("option", { value: "" }, current));
  const groups = [["Train here", true], ["Case studies (summary only)", false]];
  for (const [label, trainable] of groups) {
    const options = (presets || []).filter((p) => Boolean(p.trainable) === trainable);
    if (!options.length) continue;
    select.append(el("optgroup", { label }, options.map((p) =>
      el("option", { value: p.name, title: p.description || "" }, p.description ? `${p.name}: ${short(p.description)}` : p.name))));
  }
  return select;
}

function short(text) {
  const first = text.split(/[.;(]/)[0];
  return first.length > 60 ? first.slice(0, 57) + "…" : first;
}

// Viewers: the running net's table, or a chosen case study's.
export class ArchViewer {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.choice = "";
    this.select = presetSelect("arch-preset", []);
    this.select.addEventListener("change", () => this.choose(this.select.value));
    this.message = el("p", { class: "error-text", role: "alert", hidden: true });
    this.body = el("div");
    root.append(el("div", { class: "field-row" }, el("label", { for: "arch-preset" }, "Show"), this.select), this.message, this.body);
  }

  setPresets(presets) {
    const fresh = presetSelect("arch-preset", presets);
    fresh.value = this.choice;
    fresh.addEventListener("change", () => this.choose(fresh.value));
    this.select.replaceWith(fresh);
    this.select = fresh;
  }

  setNet(net) {
    this.net = net;
    if (!this.choice) this.show(net && net.summary);
  }

  async choose(name) {
    this.choice = name;
    this.message.hidden = true;
    if (!name) { this.show(this.net && this.net.summary); return; }
    try {
      const { summary } = await fetchPreset(name);
      if (this.choice === name) this.show(summary);
    } catch (err) {
      this.message.textContent = err.detail;
      this.message.hidden = false;
    }
  }

  show(summary) {
    clear(this.body);
    this.body.append(summary ? renderSummary(summary) : el("p", { class: "muted" }, "No net yet."));
  }
}
