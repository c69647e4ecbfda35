// Loss and accuracy over examples seen, drawn with uPlot (vendored; global `uPlot`).
// Smoothing is an exponential moving average with TensorBoard's debiasing; markers (moments
// the presenter changed something) are dashed vertical lines drawn by a small plugin, their
// text shown when the cursor is near one.

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
    new ResizeObserver(() => this.resize()).observe(lossEl);
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
    const large = document.documentElement.classList.contains("large");
    const width = large ? 3.5 : 2;
    const font = large ? "18px system-ui, sans-serif" : "12px system-ui, sans-serif";
    const markers = () => this.markers;
    const xAxis = { label: "examples seen", values: (u, ticks) => ticksText(ticks), font, labelFont: font, size: large ? 56 : 40 };
    if (this.loss) this.loss.destroy();
    if (this.acc) this.acc.destroy();
    const d = this.data();
    this.loss = new uPlot({
      ...this.size(this.lossEl),
      scales: { x: { time: false }, y: this.logLoss ? { distr: 3 } : { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
      series: [
        { label: "examples", value: latest((v) => (isNum(v) ? v.toLocaleString("en-US") : "–")) },
        { label: "data loss", stroke: COLORS.loss, width, value: latest((v) => fixed(v, 4)), spanGaps: true },
        { label: "reg loss", stroke: COLORS.reg, width, value: latest((v) => fixed(v, 4)), spanGaps: true },
      ],
      axes: [xAxis, { values: (u, ticks) => ticks.map((t) => sig(t, 3)), font, size: large ? 76 : 55 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width)],
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
      axes: [xAxis, { values: (u, ticks) => ticks.map((t) => Math.round(100 * t) + "%"), font, size: large ? 76 : 55 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width)],
    }, d.acc, this.accEl);
  }

  size(el) {
    const large = document.documentElement.classList.contains("large");
    const width = Math.max(240, Math.floor(el.clientWidth || el.parentElement.clientWidth || 600));
    const height = width < 500 ? 200 : large ? 300 : 240;
    return { width, height };
  }

  resize() {
    if (!this.loss) return;
    const s = this.size(this.lossEl);
    if (s.width === this.loss.width && s.height === this.loss.height) return;
    this.loss.setSize(s);
    this.acc.setSize(this.size(this.accEl));
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

function markerPlugin(getMarkers, width) {
  let tip = null;
  return {
    hooks: {
      init: [(u) => {
        tip = document.createElement("div");
        tip.className = "marker-tip";
        tip.hidden = true;
        u.over.append(tip);
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
