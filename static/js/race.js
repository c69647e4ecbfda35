// The race: a table every viewer sees (each racer's steps, images/s, loss, validation and
// test accuracy, the winner once it is over) and the presenter's form to start one (the
// lecture's six optimizers on the current net, each with its own learning rate, for equal
// steps or equal training time) or stop it.

import { api } from "./api.js";
import { DASH, clear, el, fixed, int, pct, si } from "./format.js";
import { runColor } from "./runs.js";

// As server/race.py's DEFAULT_RACE; the sgd family gets the current learning rate.
const OPTIMIZERS = [
  ["sgd", { method: "sgd" }],
  ["momentum", { method: "momentum", momentum: 0.9 }],
  ["nesterov", { method: "nesterov", momentum: 0.9 }],
  ["adagrad", { method: "adagrad", learning_rate: 0.01 }],
  ["adadelta", { method: "adadelta", learning_rate: 1.0, ro: 0.95, eps: 1e-6 }],
  ["adam", { method: "adam", learning_rate: 0.001 }],
];

export class Race {
  constructor(root, { presenter }) {
    this.root = root;
    this.presenter = presenter;
    root.innerHTML = `
      <div class="race-table-wrap" hidden><table class="race-table"><caption></caption><thead><tr>
        <th scope="col">racer</th><th scope="col" class="num">steps</th><th scope="col" class="num">images/s</th>
        <th scope="col" class="num">loss</th><th scope="col" class="num">val</th><th scope="col" class="num">test</th><th scope="col">status</th>
      </tr></thead><tbody></tbody></table></div>
      ${presenter ? `<form class="race-form" novalidate>
        <p><strong>Race the optimizers</strong> <span class="muted small">from the same initial weights, in turns</span></p>
        <div class="race-racers"></div>
        <p class="race-length">
          <label>equal <select id="race-equal"><option value="steps">steps</option><option value="time">training time</option></select></label>
          <label><input id="race-amount" type="text" inputmode="numeric" size="6" value="500"> <span class="race-unit">steps</span> each</label>
          <button type="submit" class="btn">Start the race</button>
          <button type="button" class="btn race-stop" hidden>Stop the race</button>
        </p>
        <output class="race-note small" aria-live="polite"></output>
      </form>` : ""}`;
    this.wrap = root.querySelector(".race-table-wrap");
    this.caption = root.querySelector("caption");
    this.tbody = root.querySelector(".race-table tbody");
    this.form = root.querySelector(".race-form");
    if (this.form) this.buildForm();
  }

  buildForm() {
    const racers = this.form.querySelector(".race-racers");
    for (const [name, params] of OPTIMIZERS) {
      const lr = el("input", { type: "text", inputmode: "decimal", size: "7", "aria-label": `${name} learning rate`, value: params.learning_rate ?? "" , "data-lr": name });
      racers.append(el("label", { class: "race-racer" }, el("input", { type: "checkbox", checked: true, "data-racer": name }), ` ${name} `, "lr ", lr));
    }
    const equal = this.form.querySelector("#race-equal");
    const amount = this.form.querySelector("#race-amount");
    equal.addEventListener("change", () => {
      this.form.querySelector(".race-unit").textContent = equal.value === "steps" ? "steps" : "seconds";
      amount.value = equal.value === "steps" ? "500" : "60";
    });
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    this.form.querySelector(".race-stop").addEventListener("click", () => this.stop());
  }

  // The current learning rate for the sgd family's empty fields.
  setSettings(settings) {
    if (!this.form || !settings) return;
    for (const name of ["sgd", "momentum", "nesterov"]) {
      const input = this.form.querySelector(`[data-lr="${name}"]`);
      if (document.activeElement !== input && input.value === "") input.placeholder = String(settings.learning_rate);
    }
  }

  async start() {
    const note = this.form.querySelector(".race-note");
    const runs = [];
    for (const [name, params] of OPTIMIZERS) {
      if (!this.form.querySelector(`[data-racer="${name}"]`).checked) continue;
      const text = this.form.querySelector(`[data-lr="${name}"]`).value.trim();
      const extra = {};
      if (text !== "") {
        extra.learning_rate = Number(text);
        if (!Number.isFinite(extra.learning_rate)) { note.textContent = `${name}: the learning rate is not a number`; return; }
      }
      runs.push({ name, params: { ...params, ...extra } });
    }
    const equal = this.form.querySelector("#race-equal").value;
    const amount = Number(this.form.querySelector("#race-amount").value);
    const body = { runs, equal, [equal === "steps" ? "steps" : "seconds"]: amount };
    note.textContent = "starting…";
    try {
      const answer = await api("/api/race", { method: "POST", json: body });
      note.textContent = "";
      this.render(answer.race);
    } catch (err) {
      note.textContent = err.detail;
    }
  }

  async stop() {
    try {
      this.render((await api("/api/race", { method: "DELETE" })).race);
    } catch (err) {
      this.form.querySelector(".race-note").textContent = err.detail;
    }
  }

  render(race, activeId = null) {
    this.wrap.hidden = !race;
    if (this.form) this.form.querySelector(".race-stop").hidden = !(race && race.status === "running");
    if (!race) return;
    const unit = race.equal === "steps" ? `${int(race.target)} steps each` : `${int(race.target)} s of training each`;
    const state = race.status === "running" ? "running" : race.status === "stopped" ? "stopped"
      : race.winner ? "finished" : "finished · no winner: no run finished its test";
    this.caption.textContent = `Race: ${unit} · ${state}`;
    clear(this.tbody);
    for (const r of race.runs) {
      const won = race.winner === r.run;
      this.tbody.append(el("tr", { class: won ? "race-winner" : null, "data-run": r.run },
        el("th", { scope: "row" }, el("span", { class: "run-swatch", style: `background:${r.run === activeId ? "#0072B2" : runColor(r.run)}` }), `${r.run} ${r.name}`, won ? el("span", { class: "run-winner" }, " ★ winner") : null),
        el("td", { class: "num" }, int(r.steps)),
        el("td", { class: "num" }, r.images_per_s === null ? DASH : si(r.images_per_s)),
        el("td", { class: "num" }, fixed(r.loss, 3)),
        el("td", { class: "num" }, pct(r.val_acc)),
        el("td", { class: "num" }, pct(r.test_acc)),
        el("td", {}, r.status)));
    }
  }
}
