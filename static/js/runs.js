// The runs panel: every run (forks, race runs) with its colour, status and latest figures;
// the other runs overlaid on the charts; the presenter's fork form ("fork at the step the
// scrubber shows") and buttons to make a run active or delete it. The race (race.js) lives
// in the same panel.
//
// What it keeps is bounded: at most the server's runs (12), each run's points as the charts
// keep them (halved past MAX_POINTS), and the histories are fetched once per run (a `runs`
// event brings the points added since).

import { api } from "./api.js";
import { DASH, clear, el, int, pct, fixed } from "./format.js";

// Okabe-Ito colours, apart from the active run's blue/green/vermilion
export const RUN_COLORS = ["#CC79A7", "#E69F00", "#56B4E9", "#999933", "#882255", "#44AA99",
  "#AA4499", "#117733", "#332288", "#DDCC77", "#888888", "#000000"];
const MAX_POINTS = 4000;
const FORK_FIELDS = [
  ["method", "optimizer"], ["learning_rate", "learning rate"], ["momentum", "momentum"],
  ["batch_size", "batch size"], ["l2_decay", "L2 decay"],
];

export function runColor(id) {
  const n = Number(String(id).slice(1)) || 0;
  return RUN_COLORS[(n + RUN_COLORS.length - 1) % RUN_COLORS.length];
}

export class Runs {
  constructor(root, app, { charts, presenter, onActiveChange, scrubber }) {
    this.root = root;
    this.app = app;
    this.charts = charts;
    this.presenter = presenter;
    this.onActiveChange = onActiveChange;
    this.scrubber = scrubber;
    this.listing = null;
    this.points = new Map();     // run id -> points (runs other than the active one)
    this.fetching = new Set();
    root.innerHTML = `
      <div class="runs-table-wrap"><table class="runs-table"><thead><tr>
        <th scope="col">run</th><th scope="col">from</th><th scope="col">status</th>
        <th scope="col" class="num">step</th><th scope="col" class="num">loss</th>
        <th scope="col" class="num">val</th><th scope="col" class="num">test</th>${presenter ? "<th scope=\"col\"></th>" : ""}
      </tr></thead><tbody></tbody></table></div>
      ${presenter ? `<form class="fork-form" novalidate>
        <p class="fork-title"><strong>Fork</strong> <span class="fork-where muted small">at the latest step</span></p>
        <div class="fork-fields"></div>
        <button type="submit" class="btn">Fork here</button>
        <output class="fork-note small" aria-live="polite"></output>
      </form>` : ""}`;
    this.tbody = root.querySelector("tbody");
    this.form = root.querySelector(".fork-form");
    if (this.form) this.buildForkForm();
  }

  buildForkForm() {
    const fields = this.form.querySelector(".fork-fields");
    for (const [name, label] of FORK_FIELDS) {
      const id = `fork-${name}`;
      const input = name === "method" ? el("select", { id, name }) : el("input", { id, name, type: "text", inputmode: "decimal", autocomplete: "off", size: "8" });
      fields.append(el("label", { for: id, class: "fork-field" }, label, input));
    }
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.fork(); });
  }

  // The current settings as the form's defaults (a changed field is what the fork changes).
  setSettings(settings, optimizers) {
    if (!this.form || !settings) return;
    this.settings = settings;
    const method = this.form.querySelector("#fork-method");
    if (optimizers && method.options.length !== optimizers.length) {
      clear(method);
      for (const name of optimizers) method.append(el("option", { value: name }, name));
    }
    for (const [name] of FORK_FIELDS) {
      const input = this.form.querySelector(`#fork-${name}`);
      if (document.activeElement !== input && !input.dataset.edited) input.value = settings[name] ?? "";
      input.oninput = () => { input.dataset.edited = "1"; };
    }
  }

  async fork() {
    const note = this.form.querySelector(".fork-note");
    const params = {};
    for (const [name] of FORK_FIELDS) {
      const input = this.form.querySelector(`#fork-${name}`);
      const text = input.value.trim();
      const current = this.settings ? this.settings[name] : undefined;
      if (text === "" || text === String(current)) continue;
      params[name] = name === "method" ? text : Number(text);
      if (name !== "method" && !Number.isFinite(params[name])) { note.textContent = `${name}: not a number`; return; }
    }
    const checkpoint = this.scrubber.wanted;
    const step = checkpoint ? checkpoint.step : this.scrubber.latestStep;
    note.textContent = "forking…";
    try {
      const answer = await api("/api/fork", { method: "POST", json: { step, params } });
      note.textContent = `${answer.run} forks from step ${answer.from_step.toLocaleString("en-US")}`;
      this.form.querySelectorAll("[data-edited]").forEach((input) => { delete input.dataset.edited; });
      this.scrubber.goLive();
      this.apply(answer.runs);
    } catch (err) {
      note.textContent = err.detail;
    }
  }

  // Where the fork form forks: the scrubbed checkpoint, or the latest step.
  setForkPoint(checkpoint) {
    if (!this.form) return;
    this.form.querySelector(".fork-where").textContent = checkpoint
      ? `at step ${checkpoint.step.toLocaleString("en-US")} (the scrubber's checkpoint)` : "at the latest step";
  }

  async load() {
    try {
      this.apply(await api("/api/runs"));
    } catch (err) {
      console.warn("runs:", err.detail);
    }
  }

  // A runs event (or /api/runs): the listing, and the points each other run added.
  apply(listing, points = null) {
    if (!listing || !Array.isArray(listing.runs)) return;
    // A GET answered before the last event arrived brings an older listing (an event that
    // arrives after a newer GET still brings new points).
    const stale = this.listing && listing.version < this.listing.version;
    const activeBefore = this.listing && this.listing.active;
    if (!stale) {
      this.listing = listing;
      const ids = new Set(listing.runs.map((r) => r.id));
      for (const id of [...this.points.keys()]) if (!ids.has(id) || id === listing.active) this.points.delete(id);
    }
    for (const [id, fresh] of Object.entries(points || {})) {
      const mine = this.points.get(id);
      if (!mine) continue;  // not fetched yet: its fetch brings these
      const last = mine.length ? mine[mine.length - 1].step : -1;
      mine.push(...fresh.filter((p) => p.step > last));
      if (mine.length > MAX_POINTS) this.points.set(id, mine.filter((_, i) => i % 2 === 0 || i === mine.length - 1));
    }
    if (stale) { this.overlay(); return; }
    for (const run of listing.runs) {
      if (run.id !== listing.active && !this.points.has(run.id)) this.fetchHistory(run.id);
    }
    if (activeBefore && activeBefore !== listing.active) this.onActiveChange();
    this.render();
    this.overlay();
  }

  fetchHistory(id) {
    if (this.fetching.has(id)) return;
    this.fetching.add(id);
    api(`/api/history?run=${encodeURIComponent(id)}`).then((history) => {
      if (this.listing && this.listing.active !== id) this.points.set(id, history.points || []);
      this.overlay();
    }).catch((err) => console.warn(`history of ${id}:`, err.detail))
      .finally(() => this.fetching.delete(id));
  }

  overlay() {
    if (!this.listing) return;
    const others = this.listing.runs.filter((r) => r.id !== this.listing.active && this.points.has(r.id))
      .map((r) => ({ id: r.id, name: r.name, color: runColor(r.id), points: this.points.get(r.id) }));
    this.charts.setOthers(others);
    this.charts.setBranches(this.listing.runs.filter((r) => r.parent && r.from_examples !== null)
      .map((r) => ({ step: r.from_step, examples: r.from_examples, text: `${r.id} forks from ${r.parent}` })));
  }

  render() {
    const listing = this.listing;
    clear(this.tbody);
    const race = listing.race;
    for (const run of listing.runs) {
      const active = run.id === listing.active;
      const last = run.last || {};
      const winner = race && race.winner === run.id;
      const name = el("th", { scope: "row", class: "run-name" },
        el("span", { class: "run-swatch", style: `background:${active ? "#0072B2" : runColor(run.id)}` }),
        `${run.id} ${run.name}`, winner ? el("span", { class: "run-winner", title: "won the race" }, " ★") : null);
      const actions = [];
      if (this.presenter) {
        const make = el("button", { type: "button", class: "btn small", disabled: active ? "" : null }, active ? "active" : "show");
        make.addEventListener("click", () => this.act(`/api/runs/active`, { method: "PUT", json: { run: run.id } }));
        actions.push(make);
        if (!active) {
          const drop = el("button", { type: "button", class: "btn small", title: `delete ${run.id}` }, "delete");
          drop.addEventListener("click", () => this.act(`/api/runs/${run.id}`, { method: "DELETE" }));
          actions.push(drop);
        }
      }
      this.tbody.append(el("tr", { class: active ? "run-active" : null, "data-run": run.id },
        name,
        el("td", {}, run.parent ? `${run.parent} @ ${int(run.from_step)}` : DASH),
        el("td", {}, run.status),
        el("td", { class: "num" }, int(last.step)),
        el("td", { class: "num" }, fixed(last.loss, 3)),
        el("td", { class: "num" }, pct(last.val_acc)),
        el("td", { class: "num" }, pct(last.test_acc)),
        this.presenter ? el("td", { class: "run-actions" }, ...actions) : null));
    }
  }

  async act(path, options) {
    try {
      const listing = await api(path, options);
      this.apply(listing);
    } catch (err) {
      const note = this.form && this.form.querySelector(".fork-note");
      if (note) note.textContent = err.detail;
    }
  }
}
