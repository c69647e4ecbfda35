// What the charts mark on top of their lines, as uPlot plugins: the presenter's changes
// (dashed lines, the latest few labelled, any one's text when the cursor is near it) and the
// moment the scrubber shows (a solid line).

import { isNum } from "./format.js";

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

export function markerPlugin(getMarkers, width, { labels = false } = {}) {
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

// The moment the scrubber shows: a solid line across the plot.
export function scrubPlugin(getScrub, width) {
  return {
    hooks: {
      draw: [(u) => {
        const scrub = getScrub();
        if (!scrub) return;
        const { left, top, width: w, height } = u.bbox;
        const x = Math.round(u.valToPos(scrub.examples, "x", true));
        if (x < left - 1 || x > left + w + 1) return;
        const ratio = devicePixelRatio || 1;
        const { ctx } = u;
        ctx.save();
        ctx.strokeStyle = "rgba(204, 121, 167, 0.95)";
        ctx.lineWidth = Math.max(2, width) * ratio;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
        ctx.restore();
      }],
    },
  };
}

