// The presenter's network editor: the spec as JSON, checked as they type (debounced) by
// POST /api/net/check, which answers the calculator's table or an error naming the layer and
// field; that line is highlighted. "Apply" PUTs /api/net. Case-study presets are too big to
// train here: their table is shown and "apply" is disabled.

import { api } from "./api.js";
import { clear, debounce, el } from "./format.js";
import { errorOffset, lineOf, parseWithPositions, prettySpec } from "./jsonpos.js";
import { fetchPreset, presetSelect, renderSummary } from "./summary.js";

export class Editor {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.presets = [];
    this.dirty = false;        // typed since the text was loaded or applied
    this.trainable = true;
    this.checkSeq = 0;
    this.select = presetSelect("editor-preset", []);
    this.textarea = el("textarea", { id: "spec-text", class: "code-text", wrap: "off", spellcheck: "false", autocapitalize: "off", autocomplete: "off", "aria-describedby": "editor-status" });
    this.gutter = el("pre", { class: "code-gutter", "aria-hidden": "true" });
    this.mark = el("div", { class: "code-mark", hidden: true, "aria-hidden": "true" });
    this.applyButton = el("button", { type: "button", class: "btn primary" }, "Apply (fresh weights)");
    this.runningButton = el("button", { type: "button", class: "btn" }, "Load running net");
    this.status = el("p", { id: "editor-status", class: "editor-status", role: "status", "aria-live": "polite" });
    this.error = el("pre", { class: "editor-error", role: "alert", hidden: true });
    this.table = el("div", { class: "editor-table" });
    root.append(
      el("div", { class: "field-row" }, el("label", { for: "editor-preset" }, "Preset"), this.select, this.runningButton),
      el("div", { class: "editor-grid" },
        el("div", { class: "editor-left" },
          el("label", { for: "spec-text", class: "small muted" }, "Spec (JSON: a list of layers, or {\"layers\": [...]})"),
          el("div", { class: "code" }, this.gutter, el("div", { class: "code-area" }, this.mark, this.textarea)),
          el("div", { class: "field-row" }, this.applyButton), this.status, this.error),
        el("div", { class: "editor-right" }, this.table)));
    this.select.addEventListener("change", () => this.choosePreset(this.select.value));
    this.runningButton.addEventListener("click", () => this.loadRunning());
    this.applyButton.addEventListener("click", () => this.apply());
    const check = debounce(() => this.check(), 300);
    this.textarea.addEventListener("input", () => { this.dirty = true; this.trainable = true; this.updateGutter(); check(); });
    this.textarea.addEventListener("scroll", () => this.syncScroll());
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {  // indent, not leave
        e.preventDefault();
        document.execCommand("insertText", false, "  ");
      }
    });
  }

  setPresets(presets) {
    this.presets = presets || [];
    const fresh = presetSelect("editor-preset", this.presets, { current: "Running net" });
    fresh.value = this.select.value;
    fresh.addEventListener("change", () => this.choosePreset(fresh.value));
    this.select.replaceWith(fresh);
    this.select = fresh;
  }

  // A new running net: show it unless the presenter is in the middle of an edit.
  setNet(net) {
    this.net = net;
    this.netsSeen = (this.netsSeen || 0) + 1;
    if (this.justApplied) {  // our own apply coming back: keep the text as the presenter wrote it
      this.justApplied = false;
      this.showTable(net.summary);
      return;
    }
    if (!this.dirty && !this.select.value) this.loadRunning();
  }

  loadRunning() {
    this.select.value = "";
    if (!this.net) return;
    this.setText(prettySpec(this.net.spec));
    this.trainable = true;
    this.applyButton.disabled = false;
    this.showTable(this.net.summary);
    this.say(`Running net: ${this.net.name || "custom"}.`);
  }

  setText(text) {
    this.textarea.value = text;
    this.textarea.scrollTop = 0;
    this.dirty = false;
    this.updateGutter();
    this.showError(null);
  }

  async choosePreset(name) {
    if (!name) { this.loadRunning(); return; }
    const info = this.presets.find((p) => p.name === name) || { trainable: true };
    this.say(`Loading ${name}…`);
    try {
      const { summary, document } = await fetchPreset(name);
      if (this.select.value !== name) return;
      if (document) this.setText(prettySpec(document));
      this.trainable = Boolean(info.trainable);
      this.presetOnly = document ? null : name;  // no document: apply by name
      this.showTable(summary);
      this.say(info.trainable ? `${name}: apply to train it.` : `${name}: a case study from the lecture, summary only (too big to train here).`);
      this.applyButton.disabled = !info.trainable;
    } catch (err) {
      this.say("");
      this.showError(err.detail);
    }
  }

  // Local syntax check first (exact line), then the server's check (shapes, arithmetic).
  async check() {
    const seq = ++this.checkSeq;
    this.presetOnly = null;
    const parsed = this.parse();
    if (!parsed) return;
    try {
      const body = await api("/api/net/check", { method: "POST", json: { spec: parsed.value } });
      if (seq !== this.checkSeq) return;  // an older answer arriving late
      if (body.ok) {
        this.showError(null);
        this.showTable(body.summary);
        this.applyButton.disabled = false;
        this.say("Valid: shapes fit.");
      } else {
        this.fail(parsed, body);
      }
    } catch (err) {
      if (seq === this.checkSeq) this.fail(parsed, err);
    }
  }

  parse() {
    const text = this.textarea.value;
    try {
      return parseWithPositions(text);
    } catch (err) {
      this.showError(`JSON syntax, line ${lineOf(text, err.offset) + 1}: ${err.message}`, lineOf(text, err.offset));
      this.applyButton.disabled = true;
      this.table.classList.add("stale");
      return null;
    }
  }

  fail(parsed, err) {
    const offset = errorOffset(parsed, err.layer, err.field);
    const line = offset === null ? null : lineOf(this.textarea.value, offset);
    const where = line === null ? "" : `line ${line + 1}: `;
    this.showError(where + (err.detail || err.message || "invalid spec"), line);
    this.applyButton.disabled = true;
    if (err.summary) this.showTable(err.summary);  // shapes fit, but too big or wrong size for the data
    else this.table.classList.add("stale");
    this.say("");
  }

  async apply() {
    // A preset as loaded (not edited) goes by name, so it brings its training settings too
    // (cifar_resnet: nesterov, lr 0.05, batch 64); edited text is a custom net.
    const preset = this.presetOnly || (!this.dirty && this.select.value) || null;
    const parsed = preset ? null : this.parse();
    if (!parsed && !preset) return;
    const body = preset ? { preset } : { spec: parsed.value };
    this.applyButton.disabled = true;
    this.say("Applying…");
    const seen = this.netsSeen;
    try {
      const result = await api("/api/net", { method: "PUT", json: body });
      this.dirty = false;
      // the stream's `net` event usually comes after this answer; if it came first, it found
      // the editor dirty and left the text alone already
      this.justApplied = !preset && this.netsSeen === seen;
      this.select.value = "";
      if (result && result.net) { this.net = result.net; this.showTable(result.net.summary); }
      this.say(preset
        ? `Applied ${preset} with its training settings: training continues from fresh weights.`
        : "Applied: training continues on the new net from fresh weights (settings kept).");
      this.showError(null);
      this.applyButton.disabled = false;
    } catch (err) {
      if (parsed) this.fail(parsed, err); else this.showError(err.detail);
    }
  }

  showTable(summary) {
    clear(this.table);
    this.table.classList.remove("stale");
    if (summary) this.table.append(renderSummary(summary));
  }

  showError(text, line = null) {
    this.error.hidden = !text;
    this.error.textContent = text || "";
    this.markLine(line);
  }

  say(text) {
    this.status.textContent = text;
  }

  updateGutter() {
    const lines = this.textarea.value.split("\n").length;
    if (this.gutterLines !== lines) {
      this.gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
      this.gutterLines = lines;
    }
    this.syncScroll();
  }

  markLine(line) {
    this.markedLine = line;
    this.mark.hidden = line === null || line === undefined;
    this.syncScroll();
    if (!this.mark.hidden) this.scrollToLine(line);
  }

  scrollToLine(line) {
    const { lineHeight, padTop } = this.metrics();
    const y = padTop + line * lineHeight;
    const ta = this.textarea;
    if (y < ta.scrollTop || y + lineHeight > ta.scrollTop + ta.clientHeight) {
      ta.scrollTop = Math.max(0, y - ta.clientHeight / 3);
    }
  }

  metrics() {
    const style = getComputedStyle(this.textarea);
    return { lineHeight: parseFloat(style.lineHeight) || 20, padTop: parseFloat(style.paddingTop) || 0 };
  }

  syncScroll() {
    this.gutter.scrollTop = this.textarea.scrollTop;
    if (this.mark.hidden) return;
    const { lineHeight, padTop } = this.metrics();
    this.mark.style.top = `${padTop + this.markedLine * lineHeight - this.textarea.scrollTop}px`;
    this.mark.style.height = `${lineHeight}px`;
  }
}
