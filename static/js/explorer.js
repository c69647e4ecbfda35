// The convolution explorer: one convolution for chosen W, H, F, S, P and channel counts,
// animated as the conv_arithmetic figures and CNN Explainer do: the zero-padded input, the
// filter window sliding, each output cell filling as the window reaches it. Beside it the
// formula with the numbers filled in and the parameter count written out. A stride that does
// not fit is shown, not hidden: the last window falls off the edge (drawn in red) and the
// explorer offers what fits, by the spec checker's rule (conv_math.js). Keyboard: the buttons,
// and on the drawing Space (play/pause), arrows (step), Home/End. Nothing here talks to the
// server except the JSON twin link.

import { clear, el, int, si } from "./format.js";
import { LIMITS, caseProblem, convNumbers, windowStarts } from "./conv_math.js";
import { drawConv } from "./explorer_draw.js";

const FIELDS = [
  ["w", "W", "input width"], ["h", "H", "input height"], ["f", "F", "filter size (F×F)"], ["s", "S", "stride"],
  ["p", "P", "zero padding"], ["c_in", "C in", "input channels"], ["c_out", "C out", "filters (output channels)"],
];
const LECTURE = [
  ["7×7, 3×3, stride 1", { w: 7, h: 7, f: 3, s: 1, p: 0, c_in: 1, c_out: 1 }],
  ["stride 2", { w: 7, h: 7, f: 3, s: 2, p: 0, c_in: 1, c_out: 1 }],
  ["stride 3?", { w: 7, h: 7, f: 3, s: 3, p: 0, c_in: 1, c_out: 1 }],
  ["7×7, pad 1", { w: 7, h: 7, f: 3, s: 1, p: 1, c_in: 1, c_out: 1 }],
  ["32×32×3, one 5×5 filter", { w: 32, h: 32, f: 5, s: 1, p: 0, c_in: 3, c_out: 1 }],
  ["32×32×3, six 5×5 filters", { w: 32, h: 32, f: 5, s: 1, p: 0, c_in: 3, c_out: 6 }],
  ["32×32×3, ten 5×5, stride 1, pad 2", { w: 32, h: 32, f: 5, s: 1, p: 2, c_in: 3, c_out: 10 }],
  ["AlexNet conv1 on 227", { w: 227, h: 227, f: 11, s: 4, p: 0, c_in: 3, c_out: 96 }],
  ["AlexNet conv1 on 224?", { w: 224, h: 224, f: 11, s: 4, p: 0, c_in: 3, c_out: 96 }],
];
const SPEEDS = [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];   // windows per second
const DEFAULT_SPEED = 3;
const dot = (...xs) => xs.join("·");

export class Explorer {
  constructor(root) {
    this.root = root;
    this.case = { ...LECTURE[6][1] };
    this.step = 0;            // windows placed so far
    this.playing = false;
    this.speed = DEFAULT_SPEED;
    this.build();
    this.setCase(this.case);
    let drawnWidth = 0;   // the drawing sets its own height: redraw on a new width only
    new ResizeObserver(() => {
      if (this.canvas.clientWidth !== drawnWidth) { drawnWidth = this.canvas.clientWidth; this.draw(); }
    }).observe(this.canvas.parentElement);
  }

  build() {
    this.inputs = {};
    const form = el("form", { class: "explorer-form", onsubmit: (e) => e.preventDefault() });
    for (const [name, short, long] of FIELDS) {
      const [low, high] = LIMITS[name];
      const input = el("input", { id: `explorer-${name}`, type: "number", inputmode: "numeric", min: low, max: high, step: 1, required: true, oninput: () => this.readForm() });
      this.inputs[name] = input;
      form.append(el("div", { class: "explorer-field" }, el("label", { for: input.id, title: long }, short, el("span", { class: "visually-hidden" }, ` (${long})`)), input));
    }
    this.formNote = el("p", { id: "explorer-form-note", class: "field-note error", role: "alert" });
    const lecture = el("div", { class: "explorer-lecture", role: "group", "aria-label": "The lecture's examples" },
      el("span", { class: "muted small" }, "The lecture's examples:"),
      LECTURE.map(([label, c], i) => el("button", { type: "button", class: "btn small", "data-example": i, onclick: () => this.setCase(c) }, label)));
    this.playButton = el("button", { type: "button", id: "explorer-play", class: "btn primary", "aria-pressed": "false", onclick: () => this.toggle() }, "Play");
    this.speedInput = el("input", { id: "explorer-speed", type: "range", min: 0, max: SPEEDS.length - 1, step: 1, value: this.speed, oninput: () => this.setSpeed(Number(this.speedInput.value)) });
    this.speedOut = el("output", { for: "explorer-speed", class: "num" });
    this.fullButton = el("button", { type: "button", id: "explorer-full", class: "btn", "aria-pressed": "false", onclick: () => this.setLarge(!this.root.closest("section").classList.contains("explorer-large")) }, "Full screen");
    const tools = el("div", { class: "explorer-tools", role: "group", "aria-label": "Animation" },
      el("button", { type: "button", id: "explorer-reset", class: "btn", onclick: () => this.goTo(0) }, "Reset"),
      el("button", { type: "button", id: "explorer-back", class: "btn", onclick: () => this.goTo(this.step - 1) }, "◀ Back"),
      this.playButton,
      el("button", { type: "button", id: "explorer-step", class: "btn", onclick: () => this.goTo(this.step + 1) }, "Step ▶"),
      el("button", { type: "button", id: "explorer-end", class: "btn", onclick: () => this.goTo(this.total) }, "End"),
      el("label", { for: "explorer-speed", class: "explorer-speed" }, "Speed", this.speedInput, this.speedOut),
      this.fullButton);
    this.canvas = el("canvas", { id: "explorer-canvas", class: "explorer-canvas", tabindex: 0, role: "img", onkeydown: (e) => this.key(e) });
    this.stepText = el("p", { id: "explorer-step-text", class: "explorer-step-text", "aria-live": "polite" });
    this.readout = el("div", { id: "explorer-readout", class: "explorer-readout" });
    this.json = el("a", { id: "explorer-json", class: "small" }, "JSON twin of this case");
    clear(this.root).append(form, this.formNote, lecture, tools,
      el("div", { class: "explorer-body" }, el("div", { class: "explorer-figure" }, this.canvas, this.stepText), this.readout), el("p", {}, this.json));
    this.setSpeed(this.speed);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") this.setLarge(false); });
  }

  // ---- the case ----
  setCase(c) {
    for (const [name] of FIELDS) this.inputs[name].value = String(c[name]);
    this.readForm();
  }

  readForm() {
    const c = {};
    for (const [name] of FIELDS) {
      const text = this.inputs[name].value.trim();
      c[name] = /^-?\d+$/.test(text) ? Number(text) : NaN;
    }
    const problem = caseProblem(c);
    for (const [name, input] of Object.entries(this.inputs)) input.setAttribute("aria-invalid", problem && problem[0] === name ? "true" : "false");
    if (problem) {   // the last good case stays drawn
      const long = FIELDS.find(([n]) => n === problem[0])[2];
      this.formNote.textContent = `${long[0].toUpperCase()}${long.slice(1)} ${problem[1]}.`;
      return;
    }
    this.formNote.textContent = "";
    this.case = c;
    this.numbers = convNumbers(c);
    const { width, height } = this.numbers.axes;
    this.xs = windowStarts(width, c.s);
    this.ys = windowStarts(height, c.s);
    this.total = this.xs.length * this.ys.length;
    this.json.href = "/api/conv?" + new URLSearchParams(Object.entries(c)).toString();
    this.goTo(this.total, { quiet: true });   // the whole result first; Reset or Play to watch it
    this.renderReadout();
  }

  // ---- the animation ----
  setSpeed(index) {
    this.speed = Math.max(0, Math.min(SPEEDS.length - 1, index));
    this.speedInput.value = String(this.speed);
    this.speedOut.textContent = `${SPEEDS[this.speed]} windows/s`;
  }

  toggle() {
    if (this.playing) { this.pause(); return; }
    if (this.step >= this.total) this.goTo(0, { quiet: true });
    this.playing = true;
    this.playButton.textContent = "Pause";
    this.playButton.setAttribute("aria-pressed", "true");
    let last = performance.now();
    let owed = 0;
    const tick = (now) => {
      if (!this.playing) return;
      owed += ((now - last) / 1000) * SPEEDS[this.speed];
      last = now;
      if (owed >= 1) {
        const whole = Math.floor(owed);
        owed -= whole;
        this.goTo(this.step + whole, { quiet: true });
      }
      if (this.step >= this.total) { this.pause(); return; }
      this.frame = requestAnimationFrame(tick);
    };
    this.goTo(Math.max(this.step, 1), { quiet: true });
    this.frame = requestAnimationFrame(tick);
  }

  pause() {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.playButton.textContent = "Play";
    this.playButton.setAttribute("aria-pressed", "false");
    this.describeStep();
  }

  goTo(step, { quiet = false } = {}) {
    this.step = Math.max(0, Math.min(this.total, step));
    this.draw();
    if (!quiet || !this.playing) this.describeStep();
  }

  key(e) {
    const moves = { ArrowRight: 1, ArrowDown: this.xs.length, ArrowLeft: -1, ArrowUp: -this.xs.length };
    if (e.key in moves) this.goTo(this.step + moves[e.key]);
    else if (e.key === " " || e.key === "Enter") this.toggle();
    else if (e.key === "Home") this.goTo(0);
    else if (e.key === "End") this.goTo(this.total);
    else return;
    e.preventDefault();
  }

  setLarge(large) {
    const section = this.root.closest("section");
    if (!section || section.classList.contains("explorer-large") === large) return;
    section.classList.toggle("explorer-large", large);
    this.fullButton.setAttribute("aria-pressed", String(large));
    this.fullButton.textContent = large ? "Leave full screen" : "Full screen";
    this.draw();
  }

  // the window of step k (1-based): its place and the output cell it fills
  windowAt(k) {
    const i = k - 1;
    const row = Math.floor(i / this.xs.length);
    const col = i % this.xs.length;
    const { width, height } = this.numbers.axes;
    return { row, col, x: this.xs[col], y: this.ys[row], offX: !width.fits && col === this.xs.length - 1, offY: !height.fits && row === this.ys.length - 1 };
  }

  draw() {
    if (!this.numbers) return;
    const current = this.step > 0 ? this.windowAt(this.step) : null;
    drawConv(this.canvas, { c: this.case, numbers: this.numbers, xs: this.xs, ys: this.ys, step: this.step, current });
    const { width, height } = this.numbers.axes;
    const out = this.numbers.fits ? `${height.out}×${width.out}×${this.case.c_out}` : "no whole-number output: the stride does not fit";
    this.canvas.setAttribute("aria-label", `Input ${this.case.h}×${this.case.w}×${this.case.c_in} padded by ${this.case.p} to ${height.padded}×${width.padded}; ${this.case.c_out} filters of ${this.case.f}×${this.case.f}×${this.case.c_in} at stride ${this.case.s}; output ${out}.`);
  }

  describeStep() {
    if (!this.numbers) return;
    if (this.step === 0) { this.stepText.textContent = `Ready: ${this.total} window positions. Play, or Step to place the first.`; return; }
    const w = this.windowAt(this.step);
    const f = this.case.f;
    const where = `rows ${w.y}–${w.y + f - 1}, columns ${w.x}–${w.x + f - 1} of the padded input`;
    const off = w.offX || w.offY ? " It falls off the edge: the stride does not fit, so there is no such output cell." : ` → output cell (${w.row}, ${w.col}): ${f}·${f}·${this.case.c_in} = ${int(f * f * this.case.c_in)} multiply-adds and the bias, once per filter.`;
    this.stepText.textContent = `Window ${this.step} of ${this.total}: ${where}.${off}`;
  }

  // ---- the numbers ----
  renderReadout() {
    const c = this.case;
    const n = this.numbers;
    const { width, height } = n.axes;
    const formulaRow = (axis, letter, a) => el("div", { class: "explorer-formula", "data-axis": axis },
      el("span", { class: "explorer-axis" }, axis),
      el("span", { class: "explorer-math" }, `(${letter} − F + 2P)/S + 1 = (${a.size} − ${c.f} + 2·${c.p})/${c.s} + 1 = `,
        el("strong", { id: `explorer-out-${axis}`, class: a.fits ? "fits" : "no-fit" }, a.value ?? "–"),
        a.fits ? "" : el("span", { class: "no-fit" }, a.value === null ? " (no window fits)" : " ✗ not a whole number")));
    const shapeText = n.fits ? `${height.out}×${width.out}×${c.c_out}` : "no whole-number size";
    const p = n.params;
    const params = el("dl", { class: "explorer-params" },
      el("dt", {}, "each filter: F·F·C", el("sub", {}, "in"), " weights + 1 bias"), el("dd", {}, `${dot(c.f, c.f, c.c_in)} + 1 = `, el("strong", { id: "explorer-per-filter" }, int(p.per_filter))),
      el("dt", {}, "weights: F·F·C", el("sub", {}, "in"), "·C", el("sub", {}, "out")), el("dd", {}, `${dot(c.f, c.f, c.c_in, c.c_out)} = `, el("strong", { id: "explorer-weights" }, int(p.weights))),
      el("dt", {}, "biases: C", el("sub", {}, "out")), el("dd", {}, el("strong", { id: "explorer-biases" }, int(p.biases))),
      el("dt", {}, "parameters"), el("dd", {}, `${int(p.weights)} + ${int(p.biases)} = `, el("strong", { id: "explorer-params" }, int(p.total))),
      el("dt", {}, "FLOPs per image (multiply-add = 2)"), el("dd", { title: n.flops === null ? "" : `${int(n.flops)} FLOPs` }, el("strong", { id: "explorer-flops", "data-value": n.flops ?? "" }, n.flops === null ? "–" : si(n.flops))));
    clear(this.readout).append(
      el("h3", {}, "Output size"), formulaRow("width", "W", width), formulaRow("height", "H", height),
      el("p", { class: "explorer-shape" }, el("span", {}, "Output volume H′×W′×C", el("sub", {}, "out"), ":"),
        el("strong", { id: "explorer-shape", class: n.fits ? "fits" : "no-fit" }, shapeText),
        el("span", { id: "explorer-fits", class: `pill ${n.fits ? "fit-yes" : "fit-no"}` }, n.fits ? "fits" : "does not fit")),
      this.renderFixes(),
      el("h3", {}, "Parameters"), params);
  }

  // what fits instead, per axis (once where both axes ask the same), each a button
  renderFixes() {
    const { width, height } = this.numbers.axes;
    if (this.numbers.fits) return el("div", { id: "explorer-fixes", hidden: true });
    const box = el("div", { id: "explorer-fixes", class: "explorer-fixes", role: "status" });
    const same = this.case.w === this.case.h;
    const axes = same ? [["both", width]] : [["width", width], ["height", height]].filter(([, a]) => !a.fits);
    for (const [name, a] of axes) {
      const label = name === "both" ? "" : `${name}: `;
      const sizeOf = (v) => (name === "both" ? { w: v, h: v } : name === "width" ? { w: v } : { h: v });
      const choose = (change) => () => this.setCase({ ...this.case, ...change });
      const buttons = (kind, values, change, text) => el("li", { "data-kind": kind }, text, " ",
        el("span", { class: "explorer-choices" }, values.map((v) => el("button", { type: "button", class: "btn small", "data-value": v, onclick: choose(change(v)) }, String(v)))));
      const list = el("ul", { class: "explorer-fix-list", "data-axis": name });
      if (a.value === null) {
        list.append(el("li", { "data-kind": "too-large" }, `${label}the ${this.case.f}×${this.case.f} filter is larger than the padded input (${a.size} + 2·${this.case.p} = ${a.padded}).`));
        list.append(buttons("max-f", [a.max_f], (v) => ({ f: v }), "A filter size of at most"));
        if (a.min_pad !== null) list.append(buttons("min-pad", [a.min_pad], (v) => ({ p: v }), "or a padding of at least"));
      } else {
        list.append(el("li", { "data-kind": "why" }, `${label}(${a.size} − ${this.case.f} + 2·${this.case.p})/${this.case.s} + 1 = ${a.value}: the last window falls off the edge (red), ${a.dropped} padded ${name === "height" ? "row" : "column"}${a.dropped > 1 ? "s" : ""} left over.`));
        list.append(buttons("strides", a.strides, (v) => ({ s: v }), "Strides that fit:"));
        if (a.pads.length) list.append(buttons("pads", a.pads, (v) => ({ p: v }), `or pad, with stride ${this.case.s}:`));
        list.append(buttons("sizes", a.sizes, sizeOf, name === "both" ? "or an input size of" : `or an input ${name} of`));
        list.append(el("li", { "data-kind": "floor", class: "muted" }, `or floor as PyTorch does: ${a.floor} outputs, the last ${a.dropped} padded ${name === "height" ? "row" : "column"}${a.dropped > 1 ? "s" : ""} never seen.`));
      }
      box.append(list);
    }
    return box;
  }
}
