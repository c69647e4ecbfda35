// Loss and accuracy over examples seen, drawn with uPlot (vendored; global `uPlot`).
// Smoothing is an exponential moving average with TensorBoard's debiasing; markers (moments
// the presenter changed something) are dashed vertical lines drawn by a small plugin, their
// latest few labelled on the chart (what changed, to what), every one's text shown when the
// cursor is near it.

import { isNum, fixed, pct, sig } from "./format.js";
import { markerPlugin, scrubPlugin } from "./chart_marks.js";

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
    this.scrub = null;
    this.others = [];  // the other runs: [{id, name, color, points}] (runs.js)
    this.othersKey = "";
    this.branches = [];  // where the shown runs forked: markers of their own
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

  // The scrubber's checkpoint ({step, examples}) or null: a solid line on both charts.
  setScrub(checkpoint) {
    this.scrub = checkpoint && isNum(checkpoint.examples) ? checkpoint : null;
    if (this.loss) { this.loss.redraw(false); this.acc.redraw(false); }
  }

  // The other runs, overlaid in their own colours (a new set of runs rebuilds the charts:
  // uPlot's series are fixed when it is made).
  setOthers(others) {
    this.others = others;
    const key = others.map((o) => `${o.id}:${o.name}:${o.color}:${otherAccuracy(o)}`).join("|");
    if (key !== this.othersKey) { this.othersKey = key; this.build(); } else this.redraw();
  }

  setBranches(branches) {
    this.branches = branches.filter((m) => m && isNum(m.examples));
    this.redraw();
  }

  latestStep() {
    const last = this.points[this.points.length - 1];
    return last ? last.step : 0;
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
    const theirs = this.others.map((o) => {
      const byX = new Map();
      for (const p of o.points) {
        byX.set(p.examples, p);
        if (!rows.has(p.examples)) rows.set(p.examples, {});
      }
      return byX;
    });
    const xs = [...rows.keys()].sort((u, v) => u - v);
    const ordered = xs.map((x) => rows.get(x));
    const a = this.smoothing;
    const get = (key) => ordered.map((r) => (r.p && isNum(r.p[key]) ? r.p[key] : null));
    const tests = ordered.map((r) => (r.t && isNum(r.t.test_acc) ? r.t.test_acc : null));
    // a log scale cannot show 0 (reg loss without weight decay): leave a gap instead
    const pos = (values) => (this.logLoss ? values.map((v) => (v > 0 ? v : null)) : values);
    const their = (byX, key) => xs.map((x) => { const p = byX.get(x); return p && isNum(p[key]) ? p[key] : null; });
    return {
      loss: [xs, pos(ema(get("loss"), a)), pos(ema(get("reg_loss"), a)),
        ...theirs.map((byX) => pos(ema(their(byX, "loss"), a)))],
      acc: [xs, ema(get("train_acc"), a), ema(get("val_acc"), a), tests,
        ...theirs.map((byX, i) => ema(their(byX, otherAccuracy(this.others[i])), a))],
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
    const markers = () => (this.branches.length ? this.markers.concat(this.branches) : this.markers);
    const scrub = () => this.scrub;
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
        ...this.others.map((o) => ({ label: `${o.id} ${o.name}`, stroke: o.color, width: width * 0.8, value: latest((v) => fixed(v, 4)), spanGaps: true })),
      ],
      axes: [xAxis,
        yAxis("data loss", COLORS.loss, (u, ticks) => ticks.map((t) => sig(t, 3))),
        yAxis("reg loss", COLORS.reg, (u, ticks) => ticks.map((t) => sig(t, 2)), { scale: "reg", side: 1, grid: { show: false } })],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width, { labels: true }), scrubPlugin(scrub, width)],
    }, d.loss, this.lossEl);
    this.acc = new uPlot({
      ...this.size(this.accEl),
      scales: { x: { time: false }, y: { range: [0, 1] } },
      series: [
        { label: "examples", value: latest((v) => (isNum(v) ? v.toLocaleString("en-US") : "–")) },
        { label: "train", stroke: COLORS.train, width, value: latest((v) => pct(v)), spanGaps: true },
        { label: "validation", stroke: COLORS.val, width, value: latest((v) => pct(v)), spanGaps: true },
        { label: "test (whole set)", stroke: COLORS.test, width, dash: [6, 4], value: latest((v) => pct(v)), spanGaps: true, points: { show: true, size: large ? 10 : 7, fill: COLORS.test } },
        ...this.others.map((o) => ({ label: `${o.id} ${o.name} (${otherAccuracy(o) === "val_acc" ? "validation" : "train"})`, stroke: o.color, width: width * 0.8, value: latest((v) => pct(v)), spanGaps: true })),
      ],
      axes: [xAxis, yAxis("accuracy", "#333", (u, ticks) => ticks.map((t) => Math.round(100 * t) + "%")),
        // an empty right axis as wide as the loss chart's reg-loss axis: the x axes line up
        yAxis("", "#333", (u, ticks) => ticks.map(() => ""), { side: 1, grid: { show: false }, ticks: { show: false } })],
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, sync: { key: "convnet-history" } },
      plugins: [markerPlugin(markers, width), scrubPlugin(scrub, width)],
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

// Another run's accuracy line: validation where it has any, else training.
function otherAccuracy(other) {
  return other.points.some((p) => isNum(p.val_acc)) ? "val_acc" : "train_acc";
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

function readNumber(key, fallback) {
  try {
    const v = Number(localStorage.getItem(key));
    return localStorage.getItem(key) !== null && Number.isFinite(v) ? v : fallback;
  } catch { return fallback; }
}

function store(key, value) {
  try { localStorage.setItem(key, value); } catch { /* storage blocked */ }
}
