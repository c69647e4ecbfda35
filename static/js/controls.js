// The presenter's controls: run control (POST /api/control), hyperparameters and
// augmentation (PATCH /api/params, a refusal's detail shown next to its field), snapshots
// (download ours or ConvNetJS's, save on the server, load a file) and the pretrained net.

import { api, download } from "./api.js";
import { el } from "./format.js";

const FALLBACK_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "windowgrad", "adadelta", "adam"];

// name, label, input kind, attributes, help
const FIELDS = [
  ["learning_rate", "Learning rate", "number", { step: "any", min: "0" }, "sgd, momentum: try 0.01; adadelta: 1.0"],
  ["momentum", "Momentum", "number", { step: "any", min: "0", max: "1" }, "momentum and nesterov"],
  ["batch_size", "Batch size", "number", { step: "1", min: "1" }, ""],
  ["l2_decay", "Weight decay (L2)", "number", { step: "any", min: "0" }, "λ in ½·λ·Σw²"],
  ["method", "Optimizer", "select", {}, ""],
  ["flip", "Random horizontal flips", "checkbox", {}, "data augmentation"],
  ["shift", "Random shift (± pixels)", "number", { step: "1", min: "0", max: "8" }, "0 turns it off"],
];

export class Controls {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.inputs = {};
    this.notes = {};
    this.refused = new Set();  // fields showing a refusal keep the typed value until edited
    this.pauseButton = el("button", { type: "button", class: "btn primary" }, "Pause");
    this.pauseButton.addEventListener("click", () => this.control(this.app.status === "training" ? "pause" : "resume"));
    const step = el("button", { type: "button", class: "btn", title: "One batch: forward, backward, update" }, "Step");
    step.addEventListener("click", () => this.control("step"));
    const reset = el("button", { type: "button", class: "btn danger", title: "Fresh weights, cleared history" }, "Reset");
    reset.addEventListener("click", () => {
      if (confirm("Reset the run? The weights start fresh and the charts are cleared.")) this.control("reset");
    });
    this.runNote = el("p", { class: "field-note", role: "status", "aria-live": "polite" });
    root.append(el("div", { class: "button-row" }, this.pauseButton, step, reset), this.runNote);
    const form = el("form", { class: "params-form", onsubmit: (e) => e.preventDefault() });
    for (const [name, label, kind, attrs, help] of FIELDS) form.append(this.field(name, label, kind, attrs, help));
    root.append(form);
    root.append(this.snapshotTools());
  }

  field(name, label, kind, attrs, help) {
    const id = `param-${name}`;
    let input;
    if (kind === "select") {
      input = el("select", { id, name });
    } else {
      input = el("input", { id, name, type: kind, inputmode: kind === "number" ? "decimal" : undefined, ...attrs });
    }
    const note = el("span", { class: "field-note", id: `${id}-note`, "aria-live": "polite" });
    input.setAttribute("aria-describedby", note.id);
    input.addEventListener("change", () => this.send(name, input, kind));
    this.inputs[name] = input;
    this.notes[name] = note;
    const title = help ? el("span", { class: "muted small" }, help) : null;
    if (kind === "checkbox") {
      return el("div", { class: "field check-field" }, el("label", { for: id }, input, " ", label), title, note);
    }
    return el("div", { class: "field" }, el("label", { for: id }, label), input, title, note);
  }

  async send(name, input, kind) {
    let value = kind === "checkbox" ? input.checked : input.value;
    if (kind === "number") {
      if (input.value.trim() === "" || !Number.isFinite(Number(input.value))) {
        this.note(name, "enter a number", "error");
        return;
      }
      value = Number(input.value);
    }
    this.note(name, "…");
    this.refused.delete(name);
    try {
      const body = await api("/api/params", { method: "PATCH", json: { [name]: value } });
      this.note(name, "✓ applied", "ok");
      if (body && body.settings) this.setSettings(body.settings, { force: true });
    } catch (err) {
      this.refused.add(name);
      this.note(err.field && err.field !== name && this.notes[err.field] ? err.field : name, err.detail, "error");
    }
  }

  note(name, text, kind = "") {
    const note = this.notes[name];
    note.textContent = text;
    note.className = `field-note ${kind}`;
    if (kind === "ok") setTimeout(() => { if (note.textContent === text) note.textContent = ""; }, 2500);
  }

  setOptimizers(names) {
    const select = this.inputs.method;
    const list = names && names.length ? names : FALLBACK_OPTIMIZERS;
    const current = select.value;
    select.replaceChildren(...list.map((n) => el("option", { value: n }, n)));
    if (current) select.value = current;
  }

  // Fill the fields from the server's settings, except the one being edited.
  setSettings(settings, { force = false } = {}) {
    if (!settings) return;
    if (!this.inputs.method.options.length) this.setOptimizers(this.app.optimizers);
    for (const [name, input] of Object.entries(this.inputs)) {
      if (!(name in settings) || (!force && (document.activeElement === input || this.refused.has(name)))) continue;
      const v = settings[name];
      if (input.type === "checkbox") input.checked = Boolean(v);
      else if (name === "method" && ![...input.options].some((o) => o.value === v)) {
        input.append(el("option", { value: v }, v));
        input.value = v;
      } else input.value = v === null || v === undefined ? "" : String(v);
    }
  }

  setStatus(status) {
    const running = status === "training";
    this.pauseButton.textContent = running ? "Pause" : "Resume";
    this.pauseButton.disabled = ["loading", "compiling", "stopped", "error"].includes(status);
  }

  async control(action) {
    this.runNote.textContent = "";
    try {
      const body = await api("/api/control", { method: "POST", json: { action } });
      if (body && body.status) this.app.setStatus(body.status);
    } catch (err) {
      this.runNote.textContent = err.detail;
      this.runNote.className = "field-note error";
    }
  }

  snapshotTools() {
    const note = el("p", { class: "field-note", role: "status", "aria-live": "polite" });
    const say = (text, kind = "") => { note.textContent = text; note.className = `field-note ${kind}`; };
    const run = (label, fn) => el("button", { type: "button", class: "btn", onclick: async () => {
      say(`${label}…`);
      try { say(await fn(), "ok"); } catch (err) { say(err.detail || String(err), "error"); }
    } }, label);
    const file = el("input", { type: "file", id: "snapshot-file", accept: ".json,application/json", class: "visually-hidden" });
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (!chosen) return;
      const form = new FormData();
      form.append("file", chosen, chosen.name);
      say(`Loading ${chosen.name}…`);
      try {
        const body = await api("/api/snapshot", { method: "PUT", form });
        say(`Loaded ${chosen.name}${body && body.net ? ` (${body.net.name || "net"})` : ""}.`, "ok");
      } catch (err) { say(err.detail, "error"); }
      file.value = "";
    });
    this.pretrained = el("select", { id: "pretrained-name" });
    return el("div", { class: "snapshots" },
      el("h3", {}, "Snapshots"),
      el("div", { class: "button-row" },
        run("Download", async () => { const r = await download("/api/snapshot", "snapshot.json"); return `Downloaded ${r.name}.`; }),
        run("Download ConvNetJS JSON", async () => { const r = await download("/api/snapshot?format=convnetjs", "convnetjs.json"); return `Downloaded ${r.name}.`; }),
        run("Save on server", async () => { const r = await api("/api/snapshot", { method: "POST" }); return `Saved ${r.file} (${(r.bytes / 1024).toFixed(0)} KiB).`; }),
        el("label", { for: "snapshot-file", class: "btn" }, "Load file…"), file),
      el("div", { class: "field-row" },
        el("label", { for: "pretrained-name" }, "Pretrained"), this.pretrained,
        run("Load pretrained", async () => {
          const name = this.pretrained.value;
          const r = await api("/api/pretrained", { method: "POST", json: name ? { name } : {} });
          return `Loaded pretrained ${(r && r.net && r.net.name) || name}.`;
        })),
      note);
  }

  setPretrained(names) {
    const list = names || [];
    this.pretrained.replaceChildren(...(list.length ? list : [""]).map((n) => el("option", { value: n }, n || "default")));
  }
}
