// Loss and accuracy over examples seen, drawn with uPlot (vendored; global `uPlot`).
// Smoothing is an exponential moving average with TensorBoard's debiasing; markers (moments
// the presenter changed something) are dashed vertical lines drawn by a small plugin, their
// latest few labelled on the chart (what changed, to what), every one's text shown when the
// cursor is near it.

import { isNum, fixed, pct, sig } from "./format.js";

const COLORS = { loss: "#0072B2", reg: "#E69F00", train: "#0072B2", val: "#009E73", test: "#D55E00" };
const MAX_POINTS = 4000;
const MAX_MARKERS = 200;  // as many as the server keeps

// uPlot legend value: the hovered point's, or the latest when the cursor is off the chart
function latest(format) {
  return (u, v, seriesIdx, idx) => {
    if (idx === null || idx === undefined) {
      const data = u.data[seriesIdx] || [];
      for (let i = data.length - 1; i >= 0; i -= 1) if (data[i] !== null) return format(data[i]);
      return "–";
    }
    return format(v);
  };
}

// axis ticks: 2000 -> "2k", 1500000 -> "1.5M", with the digits the spacing of the ticks
// needs (1,352,500 and 1,355,000 -> "1.3525M", "1.355M", not "1.35M" twice)
function tick(v, step) {
  for (const [scale, prefix] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(v) >= scale) {
      let digits = 0;
      while (digits < 6 && step > 0 && Math.abs(Math.round(step / scale * 10 ** digits) - step / scale * 10 ** digits) > 1e-6) digits += 1;
      return `${Number((v / scale).toFixed(step > 0 ? digits : 2))}${prefix}`;
    }
  }
  return String(Number(v.toFixed(6)));
}

function ticksText(ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 0;
  return ticks.map((v) => tick(v, step));
}

export class Charts {
  constructor({ lossEl, accEl, slider, sliderOut, logToggle }) {
    this.lossEl = lossEl;
    this.accEl = accEl;
    this.points = [];
    this.tests = [];  // whole-test-set results, apart from the points (never thinned away)
    this.markers = [];
    this.smoothing = readNumber("convnet.smoothing", 0.5);
    this.logLoss = readNumber("convnet.logLoss", 0) === 1;
    slider.value = String(this.smoothing);
    sliderOut.value = this.smoothing.toFixed(2);
    logToggle.checked = this.logLoss;
    slider.addEventListener("input", () => {
      this.smoothing = Number(slider.value);
      sliderOut.value = this.smoothing.toFixed(2);
      store("convnet.smoothing", String(this.smoothing));
      this.redraw();
    });
    logToggle.addEventListener("change", () => {
      this.logLoss = logToggle.checked;
      store("convnet.logLoss", this.logLoss ? "1" : "0");
      this.build();
    });
    const observer = new ResizeObserver(() => this.resize());
    observer.observe(lossEl);
    observer.observe(accEl);
    this.build();
  }

  // The whole history (from /api/history).
  replace(history) {
    this.points = halved((history && history.points) || []);
    this.tests = halved((history && history.tests) || []);
    this.setMarkers((history && history.markers) || [], { redraw: false });
    this.redraw();
  }

  // A `history` event: what came since step `from`. Returns false when it cannot be merged
  // (this page missed an event: a slow client keeps only the latest one): refetch then.
  // Points older than this page's latest are ones a refetch already brought: skipped.
  merge(event) {
    if (!event) return true;
    const points = event.points || fromRows(event.columns, event.rows);
    if (event.reset) {  // the server cleared its history (reset, a loaded snapshot)
      this.points = halved(points);
      this.tests = halved(event.tests || []);
      this.redraw();
      return true;
    }
    const mine = this.points.length ? this.points[this.points.length - 1].step : 0;
    if (isNum(event.from) && event.from > mine) return false;
    for (const t of event.tests || []) {
      const last = this.tests[this.tests.length - 1];
      if (!last || t.step > last.step) this.tests.push(t);
      else if (t.step === last.step) this.tests[this.tests.length - 1] = t;
    }
    this.tests = halved(this.tests);
    for (const p of points) {
      const last = this.points[this.points.length - 1];
      if (!last || p.step > last.step) this.points.push(p);
      else if (p.step === last.step) this.points[this.points.length - 1] = p;
    }
    this.points = halved(this.points);
    if (Array.isArray(event.markers)) this.setMarkers(event.markers, { redraw: false });
    this.redraw();
    return true;
  }

  // The server's latest markers (a `markers` event or the history's): they replace ours.
  setMarkers(markers, { redraw = true } = {}) {
    this.markers = markers.filter((m) => m && isNum(m.examples)).slice(-MAX_MARKERS);
    if (redraw) this.redraw();
  }

  data() {
    // One x axis (examples seen) for the points and the test results; a test sits where its
    // weights were taken, on a point's row or a row of its own (the other series gap there).
    const rows = new Map();
    for (const p of this.points) rows.set(p.examples, { p });
    for (const t of this.tests) {
      const row = rows.get(t.examples);
      if (row) row.t = t;
      else rows.set(t.examples, { t });
    }
    const xs = [...rows.keys()].sort((u, v) => u - v);
    const ordered = xs.map((x) => rows.get(x));
    const a = this.smoothing;
    const get = (key) => ordered.map((r) => (r.p && isNum(r.p[key]) ? r.p[key] : null));
    const tests = ordered.map((r) => (r.t && isNum(r.t.test_acc) ? r.t.test_acc : null));
    // a log scale cannot show 0 (reg loss without weight decay): leave a gap instead
    const pos = (values) => (this.logLoss ? values.map((v) => (v > 0 ? v : null)) : values);
    return {
      loss: [xs, pos(ema(get("loss"), a)), pos(ema(get("reg_loss"), a))],
      acc: [xs, ema(get("train_acc"), a), ema(get("val_acc"), a), tests],
    };
  }

  build() {
    const root = document.documentElement;
    const large = root.classList.contains("large");
    const projector = root.classList.contains("projector");
    const width = large ? 3.5 : 2;
    // axis type: readable from the back of a room in projector mode (20 px at 1920x1080)
    const px = projector ? 20 : large ? 18 : 12;
    const font = `${px}px system-ui, sans-serif`;
    const markers = () => this.markers;
    // space: the least pixels between two ticks, so big type does not run "200k400k" together
    const xAxis = { label: "examples seen", values: (u, ticks) => ticksText(ticks), font, labelFont: font, labelSize: px + 8, size: Math.round(px * 2.4), space: px * 4.5 };
    // y axes as wide as their longest tick text (uPlot calls this with the formatted ticks),
    // and at least 5 characters wide: the two charts' plots then line up, markers included
    const ySize = (u, values) => Math.ceil(px * 0.65 * Math.max(5, ...(values || []).map((v) => String(v).length))) + Math.round(px * 1.4);
    const yAxis = (label, stroke, values, extra = {}) => ({ label, labelFont: font, labelSize: px + 8, stroke, values, font, size: ySize, space: px * 2.2, ...extra });
    if (this.loss) this.loss.destroy();
    if (this.acc) this.acc.destroy();
    const d = this.data();
    const fromZero = (u, min, max) => [0, max > 0 ? max * 1.08 : 1];
    // the reg loss's top at 40% of the height: below the labels and mostly below the data loss
    const regRange = (u, min, max) => [0, max > 0 ? max * 2.5 : 1];
    this.loss = new uPlot({
      ...this.size(this.lossEl),
      // the regularisation loss (0.007) has its own scale on the right: on the data loss's
      // (2.3) it would be a flat line at 0
      scales: { x: { time: false }, y: this.logLoss ? { distr: 3 } : { range: fromZero }, reg: this.logLoss ? { distr: 3 } : { range: regRange } },
      series: [
        { label: "examples", value: latest((v) => (isNum(v) ? v.toLocaleString("en-US") : "–")) },
        { label: "data loss", stroke: COLORS.loss, width, value: latest((v) => fixed(v, 4)), spanGaps: true },
        { label: "reg loss (right axis)", scale: "reg", stroke: COLORS.reg, width, value: latest((v) => fixed(v, 4)), spanGaps: true },
      ],
      axes: [xAxis,
        yAxis("data loss", COLORS.loss, (u, ticks) => ticks.map((t) => sig(t, 3))),
        yAxis("reg loss", COLORS.reg, (u, ticks) => ticks.map((t) => sig(t, 2)), { scale: "reg", side: 1, grid: { show: false } })],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width, { labels: true })],
    }, d.loss, this.lossEl);
    this.acc = new uPlot({
      ...this.size(this.accEl),
      scales: { x: { time: false }, y: { range: [0, 1] } },
      series: [
        { label: "examples", value: latest((v) => (isNum(v) ? v.toLocaleString("en-US") : "–")) },
        { label: "train", stroke: COLORS.train, width, value: latest((v) => pct(v)), spanGaps: true },
        { label: "validation", stroke: COLORS.val, width, value: latest((v) => pct(v)), spanGaps: true },
        { label: "test (whole set)", stroke: COLORS.test, width, dash: [6, 4], value: latest((v) => pct(v)), spanGaps: true, points: { show: true, size: large ? 10 : 7, fill: COLORS.test } },
      ],
      axes: [xAxis, yAxis("accuracy", "#333", (u, ticks) => ticks.map((t) => Math.round(100 * t) + "%")),
        // an empty right axis as wide as the loss chart's reg-loss axis: the x axes line up
        yAxis("", "#333", (u, ticks) => ticks.map(() => ""), { side: 1, grid: { show: false }, ticks: { show: false } })],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width)],
    }, d.acc, this.accEl);
    if (projector) this.resize();  // the legends' height is known now: fit the box exactly
  }

  // Projector mode: the CSS gives each chart box its size (one screen, no scrolling) and the
  // chart fills it, legend included. Otherwise a width-dependent fixed height.
  size(el) {
    const root = document.documentElement;
    const width = Math.max(240, Math.floor(el.clientWidth || el.parentElement.clientWidth || 600));
    if (root.classList.contains("projector") && window.innerWidth > 1000 && el.clientHeight > 0) {
      const legend = el.querySelector(".u-legend");
      const legendHeight = legend ? legend.offsetHeight : 48;
      return { width, height: Math.max(150, el.clientHeight - legendHeight - 6) };
    }
    const height = width < 500 ? 200 : root.classList.contains("large") ? 300 : 240;
    return { width, height };
  }

  resize() {
    if (!this.loss) return;
    const s = this.size(this.lossEl);
    const a = this.size(this.accEl);
    if (s.width !== this.loss.width || s.height !== this.loss.height) this.loss.setSize(s);
    if (a.width !== this.acc.width || a.height !== this.acc.height) this.acc.setSize(a);
  }

  redraw() {
    if (!this.loss) return;
    const d = this.data();
    this.loss.setData(d.loss);
    this.acc.setData(d.acc);
  }
}

// A history event's points come as columns (the keys, once) and rows (the values).
function fromRows(columns, rows) {
  if (!Array.isArray(columns) || !Array.isArray(rows)) return [];
  return rows.map((row) => Object.fromEntries(columns.map((key, i) => [key, row[i]])));
}

// Over MAX_POINTS: every other older entry goes, the latest stays (as on the server).
function halved(list) {
  let out = list;
  while (out.length > MAX_POINTS) {
    const latest = out[out.length - 1];
    out = out.slice(0, -1).filter((_, i) => i % 2 === 0).concat([latest]);
  }
  return out;
}

// EMA with debiasing (the first values are not pulled toward 0); nulls stay gaps.
function ema(values, a) {
  if (!a) return values;
  let s = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null) return null;
    s = a * s + (1 - a) * v;
    n += 1;
    return s / (1 - a ** n);
  });
}

// A marker's text on the chart: short names, so several fit ("learning_rate 0.02" -> "lr 0.02").
const SHORT_NAMES = [[/learning_rate/g, "lr"], [/batch_size/g, "batch"], [/l2_decay/g, "L2"],
  [/l1_decay/g, "L1"], [/min_lr_factor/g, "lr floor"], [/total_steps/g, "length"],
  [/warmup_steps/g, "warmup"], [/step_size/g, "every"], [/_/g, " "]];
const LABEL_CHARS = 34;
const MAX_LABELS = 6;     // the latest few markers carry a label; hover shows any
const LABEL_ROWS = 3;     // staggered: a label that overlaps one row goes to the next
const LABEL_LOOKBACK = 24;

export function markerLabel(text) {
  let out = String(text || "");
  for (const [pattern, short] of SHORT_NAMES) out = out.replace(pattern, short);
  return out.length > LABEL_CHARS ? `${out.slice(0, LABEL_CHARS - 1)}…` : out;
}

// The latest markers' labels, placed right of their line (left of it near the right edge),
// each in the first of LABEL_ROWS rows where it overlaps no newer label; older ones that fit
// nowhere are left to the hover tip.
function placeLabels(u, pool, markers) {
  const width = u.over.clientWidth;
  const visible = markers.filter((m) => isNum(m.examples)).map((m) => ({ m, x: u.valToPos(m.examples, "x") }))
    .filter(({ x }) => x >= -1 && x <= width + 1).slice(-LABEL_LOOKBACK);
  const rows = Array.from({ length: LABEL_ROWS }, () => []);
  let used = 0;
  for (let i = visible.length - 1; i >= 0 && used < MAX_LABELS; i -= 1) {
    const { m, x } = visible[i];
    const label = pool[used];
    label.textContent = markerLabel(m.text);
    label.title = `step ${m.step}: ${m.text}`;
    label.hidden = false;
    const w = label.offsetWidth;
    const h = label.offsetHeight;
    // a flag on its line: the label's thick edge touches the line it names
    let left = x + 1;
    const flipped = left + w > width;
    if (flipped) left = Math.max(0, x - 1 - w);
    label.classList.toggle("left-of-line", flipped);
    const row = rows.findIndex((taken) => taken.every(([a, b]) => left + w + 4 <= a || left >= b + 4));
    if (row < 0) { label.hidden = true; continue; }
    rows[row].push([left, left + w]);
    label.style.left = `${Math.round(left)}px`;
    label.style.top = `${row * (h + 2) + 2}px`;
    used += 1;
  }
  for (let i = used; i < pool.length; i += 1) pool[i].hidden = true;
}

function markerPlugin(getMarkers, width, { labels = false } = {}) {
  let tip = null;
  const pool = [];
  return {
    hooks: {
      init: [(u) => {
        tip = document.createElement("div");
        tip.className = "marker-tip";
        tip.hidden = true;
        u.over.append(tip);
        if (!labels) return;
        for (let i = 0; i < MAX_LABELS; i += 1) {
          const label = document.createElement("div");
          label.className = "marker-label";
          label.hidden = true;
          u.over.append(label);
          pool.push(label);
        }
      }],
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width: w, height } = u.bbox;
        const ratio = devicePixelRatio || 1;
        ctx.save();
        ctx.strokeStyle = "rgba(90, 90, 110, 0.75)";
        ctx.fillStyle = "rgba(90, 90, 110, 0.9)";
        ctx.lineWidth = Math.max(1, width / 2) * ratio;
        ctx.setLineDash([5 * ratio, 4 * ratio]);
        for (const m of getMarkers()) {
          if (!isNum(m.examples)) continue;
          const x = Math.round(u.valToPos(m.examples, "x", true));
          if (x < left - 1 || x > left + w + 1) continue;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.beginPath();  // a small flag at the top, easier to find than a thin line
          ctx.moveTo(x - 5 * ratio, top);
          ctx.lineTo(x + 5 * ratio, top);
          ctx.lineTo(x, top + 7 * ratio);
          ctx.fill();
        }
        ctx.restore();
        if (labels) placeLabels(u, pool, getMarkers());
      }],
      setCursor: [(u) => {
        const cx = u.cursor.left;
        if (!tip) return;
        if (cx === null || cx === undefined || cx < 0) { tip.hidden = true; return; }
        const near = getMarkers().filter((m) => isNum(m.examples)
          && Math.abs(u.valToPos(m.examples, "x") - cx) <= 6);
        if (!near.length) { tip.hidden = true; return; }
        tip.textContent = near.map((m) => `step ${m.step}: ${m.text}`).join("\n");
        tip.hidden = false;
        const x = u.valToPos(near[0].examples, "x");
        const right = x > u.over.clientWidth / 2;
        tip.style.left = right ? "" : `${x + 8}px`;
        tip.style.right = right ? `${u.over.clientWidth - x + 8}px` : "";
      }],
    },
  };
}

function readNumber(key, fallback) {
  try {
    const v = Number(localStorage.getItem(key));
    return localStorage.getItem(key) !== null && Number.isFinite(v) ? v : fallback;
  } catch { return fallback; }
}

function store(key, value) {
  try { localStorage.setItem(key, value); } catch { /* storage blocked */ }
}
