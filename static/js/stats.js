// The training figures (ConvNetJS's left column and more), the status pill and the diverged
// banner. Rows are created once; updates only change text, so nothing jumps.

import { DASH, el, fixed, int, isNum, ms, pct, setText, sig } from "./format.js";

const STATUS_TEXT = {
  loading: "loading data…",
  compiling: "compiling kernels…",
  training: "training",
  paused: "paused",
  diverged: "diverged",
  stopped: "stopped",
  error: "error",
  disconnected: "disconnected",
};

const ROWS = [
  ["status", "Status", (m) => STATUS_TEXT[m.status] || m.status || DASH],
  ["forward", "Forward time per example", (m) => ms(m.forward_ms_per_image)],
  ["backward", "Backprop time per example", (m) => ms(m.backward_ms_per_image)],
  ["speed", "Images per second", speed],
  ["loss", "Data loss", (m) => fixed(m.loss, 4)],
  ["reg", "Regularisation loss", (m) => fixed(m.reg_loss, 4)],
  ["train", "Training accuracy", (m) => pct(m.train_acc)],
  ["val", "Validation accuracy", (m) => pct(m.val_acc)],
  ["test", "Test accuracy", (m) => pct(m.test_acc)],
  ["examples", "Examples seen", (m) => int(m.examples)],
  ["epoch", "Epoch", (m) => (isNum(m.epoch) ? m.epoch.toFixed(2) : DASH)],
  ["step", "Step", (m) => int(m.step)],
  ["lr", "Learning rate (this step)", (m) => sig(m.lr)],
  ["batch", "Batch size", (m) => int(m.batch_size)],
];

function speed(m) {
  if (!isNum(m.images_per_s)) return DASH;
  const rate = Math.round(m.images_per_s).toLocaleString("en-US");
  return isNum(m.threads) ? `${rate} (${m.threads} thread${m.threads === 1 ? "" : "s"})` : rate;
}

function testWhen(m) {
  if (!isNum(m.test_acc)) return "whole test set, not evaluated yet";
  return isNum(m.test_step) ? `whole test set, at step ${int(m.test_step)}` : "whole test set";
}

export class Stats {
  constructor(root) {
    this.cells = {};
    for (const [key, label] of ROWS) {
      const dd = el("dd", { class: "num", id: `stat-${key}` }, DASH);
      const sub = key === "test" ? el("span", { class: "sub muted num" }, testWhen({})) : null;
      root.append(el("div", { class: `stat stat-${key}` }, el("dt", {}, label, sub), dd));
      this.cells[key] = dd;
      if (sub) this.testSub = sub;
    }
    this.pill = document.getElementById("status-pill");
    this.banner = document.getElementById("diverged-banner");
    this.bannerText = document.getElementById("diverged-text");
    this.metrics = {};
    this.status = null;
    this.connected = true;
  }

  // While the server cannot be reached the pill says so: it must not go on saying "training".
  setConnected(connected) {
    if (connected === this.connected) return;
    this.connected = connected;
    this.showStatus(this.status, this.metrics.diverged);
  }

  // A new run (the server restarted): forget the old figures.
  reset() {
    this.metrics = {};
    this.update({});
  }

  update(metrics) {
    this.metrics = { ...this.metrics, ...metrics };
    if (metrics.status) this.status = metrics.status;
    const m = { ...this.metrics, status: this.connected ? this.status : "disconnected" };
    for (const [key, , format] of ROWS) setText(this.cells[key], format(m));
    setText(this.testSub, testWhen(m));
    this.showStatus(this.status, m.diverged);
  }

  setStatus(status) {
    if (!status) return;
    this.status = status;
    this.showStatus(status, this.metrics.diverged);
  }

  showStatus(status, diverged) {
    const name = this.connected ? status || "loading" : "disconnected";
    setText(this.cells.status, STATUS_TEXT[name] || name);
    setText(this.pill, STATUS_TEXT[name] || name);
    this.pill.className = `pill status-${name}`;
    const isDiverged = name === "diverged" || Boolean(diverged && name !== "training");
    this.banner.hidden = !isDiverged;
    if (isDiverged) {
      const text = (diverged && diverged.message)
        || "— the loss became NaN or infinite; training paused with the last finite weights. Lower the learning rate and resume.";
      setText(this.bannerText, text.replace(/^training diverged\s*/i, ""));
    }
    document.body.dataset.status = name;
  }
}

// The activity log (log events), newest first, bounded.
export class Log {
  constructor(root, max = 60) {
    this.root = root;
    this.max = max;
    this.seen = new Set();  // the server re-sends its recent lines to every (re)connection
  }

  add(entry) {
    if (!entry || !entry.text) return;
    const key = `${entry.time}|${entry.text}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > 4 * this.max) this.seen = new Set([...this.seen].slice(-2 * this.max));
    const level = ["info", "warn", "error"].includes(entry.level) ? entry.level : "info";
    const when = entry.time ? new Date(typeof entry.time === "number" && entry.time < 1e12 ? entry.time * 1000 : entry.time) : new Date();
    const time = Number.isNaN(when.getTime()) ? "" : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    this.root.prepend(el("li", { class: `log-${level}` }, el("time", { class: "num" }, time), " ", entry.text));
    while (this.root.children.length > this.max) this.root.lastElementChild.remove();
  }
}
