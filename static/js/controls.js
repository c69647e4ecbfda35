// The presenter's controls: run control (POST /api/control), hyperparameters, augmentation and
// the learning-rate schedule (PATCH /api/params, a refusal's detail shown next to its field),
// snapshots (download ours or ConvNetJS's, save on the server, load a file) and the
// pretrained net.
//
// A field never lies and is never pulled from under the presenter's fingers: a response or a
// stream event fills only fields that have no focus, no edit in flight and no unsent or refused
// edit (a refused value stays, with its note, until it is edited and accepted, or Escape puts
// the server's value back). A note says what happened to the field's latest edit: it clears
// once the field is accepted.

import { api, download } from "./api.js";
import { el, int, isNum, setText, sig } from "./format.js";

const FALLBACK_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "windowgrad", "adadelta", "adam"];
const FALLBACK_SCHEDULES = ["constant", "step", "cosine", "linear"];
const APPLIED_NOTE_MS = 2500;

// name, label, input kind, attributes, help, shown only for this schedule
const FIELDS = [
  ["learning_rate", "Learning rate", "number", { step: "any", min: "0" }, "sgd, momentum: try 0.01; adadelta: 1.0"],
  ["momentum", "Momentum", "number", { step: "any", min: "0", max: "1" }, "momentum and nesterov"],
  ["batch_size", "Batch size", "number", { step: "1", min: "1" }, ""],
  ["l2_decay", "Weight decay (L2)", "number", { step: "any", min: "0" }, "λ in ½·λ·Σw²"],
  ["method", "Optimizer", "select", {}, ""],
  ["flip", "Horizontal flips", "select", {}, "data augmentation; alternate: each image the other way round every epoch"],
  ["shift", "Random shift (± pixels)", "number", { step: "1", min: "0", max: "8" }, "0 turns it off"],
  ["shift_fill", "A shift uncovers", "select", {}, "zeros (the mean colour) or the image reflected"],
  ["tta", "Test-time augmentation", "select", {}, "test accuracy averaged over mirrored (and moved) copies: 2 or 6 passes"],
];
// Fixed choices of a select field: [value as the server writes it, label].
const CHOICES = {
  flip: [["false", "off"], ["true", "random"], ["alternate", "alternate"]],
  shift_fill: [["zero", "zeros"], ["reflect", "reflection"]],
  tta: [["none", "none"], ["flip", "mirror"], ["flip_translate", "mirror and move"]],
};
const SCHEDULE_FIELDS = [
  ["schedule", "Schedule", "select", {}, "constant, step, cosine or linear"],
  ["warmup_steps", "Warmup (steps)", "number", { step: "1", min: "0" }, "rises to the rate first; 0: none"],
  ["warmup_from", "Warmup from (× rate)", "number", { step: "any", min: "0", max: "1" }, "where the warmup starts: 0 (the default) or the speedrun's 0.2"],
  ["step_size", "Every (steps)", "number", { step: "1", min: "1" }, "multiply the rate by γ this often", "step"],
  ["gamma", "By γ", "number", { step: "any", min: "0", max: "1" }, "e.g. 0.1", "step"],
  ["total_steps", "Length (steps)", "number", { step: "1", min: "1" }, "down to the floor after this many", ["cosine", "linear"]],
  ["min_lr_factor", "Floor (× rate)", "number", { step: "any", min: "0", max: "1" }, "0: down to zero", ["cosine", "linear"]],
  ["lookahead", "Lookahead (decay)", "number", { step: "any", min: "0", max: "0.999" }, "0: off; the weights are pulled back to a moving average of themselves, its decay rising to this over the length"],
  ["lookahead_every", "Pull back every (steps)", "number", { step: "1", min: "1" }, "lookahead: steps between pull-backs"],
];

export class Controls {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.inputs = {};
    this.kinds = {};
    this.notes = {};
    this.fieldBoxes = {};
    this.onlyFor = {};       // field -> the schedule it belongs to
    this.server = {};        // field -> the server's latest value
    this.dirty = new Set();  // edited (or refused) and not accepted: never overwritten
    this.sending = new Map();  // field -> number of its latest PATCH (the one that decides)
    this.sends = 0;
    this.scheduleStart = null;
    this.metrics = {};
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
    for (const spec of FIELDS) form.append(this.field(...spec));
    for (const [name, choices] of Object.entries(CHOICES)) {
      this.inputs[name].replaceChildren(...choices.map(([value, label]) => el("option", { value }, label)));
    }
    this.rateNow = el("span", { class: "rate-now muted small num", id: "param-learning_rate-now" });
    this.fieldBoxes.learning_rate.append(this.rateNow);
    root.append(form, this.scheduleTools(), this.snapshotTools());
  }

  field(name, label, kind, attrs, help, onlyFor = null) {
    const id = `param-${name}`;
    const input = kind === "select" ? el("select", { id, name })
      : el("input", { id, name, type: kind, inputmode: kind === "number" ? "decimal" : undefined, ...attrs });
    const note = el("span", { class: "field-note", id: `${id}-note`, "aria-live": "polite" });
    input.setAttribute("aria-describedby", note.id);
    input.addEventListener("input", () => {
      this.dirty.add(name);
      if (name === "schedule") this.showScheduleFields();
    });
    input.addEventListener("change", () => this.send(name));
    input.addEventListener("keydown", (e) => { if (e.key === "Escape" && this.dirty.has(name)) this.revert(name); });
    // A value the server changed while the field had focus (and no edit) shows once it leaves.
    input.addEventListener("blur", () => {
      if (!this.dirty.has(name) && !this.sending.has(name) && name in this.server) this.write(name, this.server[name]);
    });
    this.inputs[name] = input;
    this.kinds[name] = kind;
    this.notes[name] = note;
    if (onlyFor) this.onlyFor[name] = [].concat(onlyFor);
    const title = help ? el("span", { class: "muted small" }, help) : null;
    const box = kind === "checkbox"
      ? el("div", { class: "field check-field" }, el("label", { for: id }, input, " ", label), title, note)
      : el("div", { class: "field" }, el("label", { for: id }, label), input, title, note);
    this.fieldBoxes[name] = box;
    return box;
  }

  // What the field shows, as sent (text for numbers, so "0.10" and "0.1" differ as typed).
  raw(name) {
    const input = this.inputs[name];
    return input.type === "checkbox" ? input.checked : input.value;
  }

  async send(name) {
    const input = this.inputs[name];
    const kind = this.kinds[name];
    let value = this.raw(name);
    if (kind === "number") {
      if (input.value.trim() === "" || !Number.isFinite(Number(input.value))) {
        this.dirty.add(name);
        this.note(name, "enter a number (Esc: back to the server's value)", "error");
        return;
      }
      value = Number(input.value);
    }
    if (name === "flip" && value !== "alternate") value = value === "true";  // JSON true/false
    const sent = this.raw(name);
    const number = ++this.sends;
    this.sending.set(name, number);
    this.note(name, "…");
    let body;
    try {
      body = await api("/api/params", { method: "PATCH", json: { [name]: value } });
    } catch (err) {
      if (this.sending.get(name) !== number) return;  // a later edit of this field decides
      this.sending.delete(name);
      this.dirty.add(name);  // the field shows a value the server does not use
      this.note(name, `${err.detail} (Esc: back to the server's value)`, "error");
      return;
    }
    const unchanged = this.raw(name) === sent;  // not edited again while this was on its way
    if (this.sending.get(name) === number) {
      this.sending.delete(name);
      if (unchanged) {
        this.dirty.delete(name);
        this.note(name, "✓ applied", "ok");
      }
    }
    if (body && body.settings) this.setSettings(body.settings, { accepted: unchanged ? name : null });
  }

  revert(name) {
    this.dirty.delete(name);
    this.sending.delete(name);
    this.note(name, "");
    if (name in this.server) this.write(name, this.server[name]);
    if (name === "schedule") this.showScheduleFields();
  }

  note(name, text, kind = "") {
    const note = this.notes[name];
    note.textContent = text;
    note.className = `field-note ${kind}`;
    if (kind === "ok") setTimeout(() => { if (note.textContent === text) note.textContent = ""; }, APPLIED_NOTE_MS);
  }

  write(name, v) {
    const input = this.inputs[name];
    if (input.type === "checkbox") {
      input.checked = Boolean(v);
    } else if (input.tagName === "SELECT" && v !== null && v !== undefined && ![...input.options].some((o) => o.value === String(v))) {
      input.append(el("option", { value: String(v) }, String(v)));
      input.value = String(v);
    } else {
      input.value = v === null || v === undefined ? "" : String(v);
    }
  }

  setOptimizers(names) { this.setChoices("method", names, FALLBACK_OPTIMIZERS); }

  setSchedules(names) { this.setChoices("schedule", names, FALLBACK_SCHEDULES); }

  setChoices(name, names, fallback) {
    const select = this.inputs[name];
    const list = names && names.length ? names : fallback;
    const current = select.value;
    if ([...select.options].map((o) => o.value).join() === list.join()) return;
    select.replaceChildren(...list.map((n) => el("option", { value: n }, n)));
    if (current) select.value = current;
  }

  // The server's settings (a response, /api/state or a stream event). `accepted`: the field
  // whose edit this response accepted; it takes the server's value even while focused.
  setSettings(settings, { accepted = null } = {}) {
    if (!settings) return;
    if (!this.inputs.method.options.length) this.setOptimizers(this.app.optimizers);
    if (!this.inputs.schedule.options.length) this.setSchedules(null);
    if ("schedule_start" in settings) this.scheduleStart = settings.schedule_start;
    for (const name of Object.keys(this.inputs)) {
      if (!(name in settings)) continue;
      this.server[name] = settings[name];
      const busy = document.activeElement === this.inputs[name] || this.dirty.has(name) || this.sending.has(name);
      if (busy && name !== accepted) continue;
      this.write(name, settings[name]);
      if (this.notes[name].classList.contains("error")) this.note(name, "");
    }
    this.showScheduleFields();
    this.describeRate();
  }

  // The rate the next step uses (metrics.lr) beside the field, when the schedule makes it differ.
  setMetrics(metrics) {
    this.metrics = { ...this.metrics, ...metrics };
    this.describeRate();
  }

  describeRate() {
    const lr = this.metrics.lr;
    const base = this.server.learning_rate;
    const differs = isNum(lr) && isNum(base) && Math.abs(lr - base) > 1e-9 * Math.max(1, Math.abs(base));
    setText(this.rateNow, differs ? `the next step uses ${sig(lr)} (${this.server.schedule || "schedule"})` : "");
    setText(this.scheduleNote, this.scheduleText());
  }

  scheduleText() {
    const s = this.server;
    const start = isNum(this.scheduleStart) ? this.scheduleStart : 0;
    const now = this.metrics.step;
    const from = isNum(s.warmup_from) && s.warmup_from > 0 ? ` from ${s.warmup_from}× the rate` : "";
    const warm = s.warmup_steps > 0 ? `, after ${int(s.warmup_steps)} warmup steps${from}` : "";
    let text;
    if (s.schedule === "step") {
      text = `Step schedule: the rate is multiplied by ${s.gamma} every ${int(s.step_size)} steps${warm}, counting from step ${int(start)}.`;
    } else if (s.schedule === "cosine") {
      const end = start + (s.total_steps || 0);
      const over = isNum(now) && now >= end ? ` It ended at step ${int(end)}: the rate stays at its floor until you restart it or type a new rate.` : "";
      text = `Cosine schedule: down to ${s.min_lr_factor}× the rate over ${int(s.total_steps)} steps${warm}, from step ${int(start)}.${over}`;
    } else if (s.schedule === "linear") {
      const end = start + (s.total_steps || 0);
      const over = isNum(now) && now >= end ? ` It ended at step ${int(end)}: the rate stays at its floor until you restart it or type a new rate.` : "";
      text = `Linear schedule: straight down to ${s.min_lr_factor}× the rate over ${int(s.total_steps)} steps${warm}, from step ${int(start)}.${over}`;
    } else {
      text = `Constant: every step uses the learning rate${warm}.`;
    }
    return isNum(this.metrics.lr) ? `${text} Next step's rate: ${sig(this.metrics.lr)}.` : text;
  }

  showScheduleFields() {
    const chosen = this.inputs.schedule.value;
    for (const [name, only] of Object.entries(this.onlyFor)) this.fieldBoxes[name].hidden = !only.includes(chosen);
  }

  scheduleTools() {
    const form = el("form", { class: "params-form", onsubmit: (e) => e.preventDefault() });
    for (const spec of SCHEDULE_FIELDS) form.append(this.field(...spec));
    this.scheduleNote = el("p", { class: "schedule-now small", id: "schedule-now", role: "status" });
    const restartNote = el("span", { class: "field-note", id: "restart-schedule-note", "aria-live": "polite" });
    const restart = el("button", { type: "button", class: "btn", id: "restart-schedule",
      title: "Warmup and decay start over at the current step" }, "Restart the schedule from here");
    restart.addEventListener("click", () => this.control("restart_schedule", restartNote));
    return el("fieldset", { class: "schedule-tools" },
      el("legend", {}, "Learning-rate schedule"),
      form, this.scheduleNote, el("div", { class: "button-row" }, restart, restartNote));
  }

  setStatus(status) {
    const running = status === "training";
    this.pauseButton.textContent = running ? "Pause" : "Resume";
    this.pauseButton.disabled = ["loading", "compiling", "stopped", "error"].includes(status);
  }

  async control(action, noteEl = this.runNote) {
    noteEl.textContent = "";
    noteEl.className = "field-note";
    try {
      const body = await api("/api/control", { method: "POST", json: { action } });
      if (body && body.status) this.app.setStatus(body.status);
      if (body && body.settings) this.setSettings(body.settings);
      if (action === "restart_schedule") {
        const from = body && body.settings && isNum(body.settings.schedule_start) ? body.settings.schedule_start : this.metrics.step;
        noteEl.textContent = isNum(from) ? `✓ counting from step ${int(from)} again` : "✓ restarted";
        noteEl.className = "field-note ok";
      }
    } catch (err) {
      noteEl.textContent = err.detail;
      noteEl.className = "field-note error";
    }
  }

  snapshotTools() {
    const note = el("p", { class: "field-note", role: "status", "aria-live": "polite" });
    const say = (target, text, kind = "") => { target.textContent = text; target.className = `field-note ${kind}`; };
    const run = (label, fn) => el("button", { type: "button", class: "btn", onclick: async () => {
      say(note, `${label}…`);
      try { say(note, await fn(), "ok"); } catch (err) { say(note, err.detail || String(err), "error"); }
    } }, label);
    // A file's outcome sits right beside the button that chose it, in plain words.
    const fileNote = el("span", { class: "field-note snapshot-file-note", id: "snapshot-file-note", role: "status", "aria-live": "polite" });
    const file = el("input", { type: "file", id: "snapshot-file", accept: ".json,application/json", class: "visually-hidden" });
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (!chosen) return;
      const form = new FormData();
      form.append("file", chosen, chosen.name);
      say(fileNote, `Loading ${chosen.name}…`);
      try {
        const body = await api("/api/snapshot", { method: "PUT", form });
        say(fileNote, `✓ Loaded ${chosen.name}${body && body.net ? ` (${body.net.name || "net"})` : ""}.`, "ok");
      } catch (err) { say(fileNote, `${chosen.name} was not loaded: ${err.detail}`, "error"); }
      file.value = "";
    });
    this.pretrained = el("select", { id: "pretrained-name" });
    return el("div", { class: "snapshots" },
      el("h3", {}, "Snapshots"),
      el("div", { class: "button-row" },
        run("Download", async () => { const r = await download("/api/snapshot", "snapshot.json"); return `Downloaded ${r.name}.`; }),
        run("Download ConvNetJS JSON", async () => {
          // Say so before the download when ConvNetJS cannot compute what this net computes.
          const cj = ((await api("/api/state")).exports || {}).convnetjs;
          if (cj && cj.possible && !cj.exact) {
            const a = cj.agreement;
            const measured = a ? ` On ${a.images} test images it gives the same class for ${a.same_class}; outputs differ by up to ${sig(a.max_abs_diff)}.` : "";
            if (!window.confirm(`ConvNetJS will not compute exactly what this net computes: ${cj.detail}.${measured} Download anyway?`)) return "Not downloaded.";
          }
          const r = await download("/api/snapshot?format=convnetjs", "convnetjs.json"); return `Downloaded ${r.name}.`;
        }),
        run("Download ONNX", async () => { const r = await download("/api/snapshot?format=onnx", "net.onnx"); return `Downloaded ${r.name}.`; }),
        run("Save on server", async () => { const r = await api("/api/snapshot", { method: "POST" }); return `Saved ${r.file} (${(r.bytes / 1024).toFixed(0)} KiB).`; })),
      el("div", { class: "button-row snapshot-file-row" },
        el("label", { for: "snapshot-file", class: "btn" }, "Load file…"), file, fileNote),
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
