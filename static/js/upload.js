// Classify your own image: drop, pick or paste a file; it is refused here when larger than
// the server's max_upload_bytes, otherwise POSTed to /api/classify. Shows the 32x32 the net
// sees, the saliency map, the top-3 (or all classes) and the network view for that image.

import { api } from "./api.js";
import { bytes, clear, el, pngSrc } from "./format.js";
import { probBars } from "./bars.js";
import { NetView } from "./netview.js";

export class Upload {
  constructor(root, app) {
    this.root = root;
    this.app = app;  // reads app.limits, app.classes, app.summaryLayers()
    this.showAll = false;
    this.result = null;
    this.busy = false;
    this.input = el("input", { type: "file", id: "upload-file", accept: "image/*", class: "visually-hidden" });
    this.input.addEventListener("change", () => this.input.files[0] && this.send(this.input.files[0]));
    this.zone = el("div", { class: "dropzone", tabindex: "0", role: "button", "aria-describedby": "upload-hint" },
      el("strong", {}, "Drop an image here"), " or ",
      el("label", { for: "upload-file", class: "btn primary" }, "choose a file"),
      el("p", { id: "upload-hint", class: "muted small" }, "JPEG, PNG, GIF, WebP, BMP… any size up to the limit; you can also paste an image."));
    this.zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.input.click(); }
    });
    for (const kind of ["dragenter", "dragover"]) {
      this.zone.addEventListener(kind, (e) => { e.preventDefault(); this.zone.classList.add("over"); });
    }
    for (const kind of ["dragleave", "drop"]) {
      this.zone.addEventListener(kind, () => this.zone.classList.remove("over"));
    }
    this.zone.addEventListener("drop", (e) => {
      e.preventDefault();
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) this.send(file);
    });
    document.addEventListener("paste", (e) => {
      if (e.target.closest && e.target.closest("textarea, input")) return;
      const file = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
      if (file) this.send(file);
    });
    this.message = el("p", { class: "upload-message", role: "status", "aria-live": "polite" });
    this.output = el("div", { class: "upload-result", hidden: true });
    root.append(el("div", { class: "upload-top" }, this.zone, this.input), this.message, this.output);
    this.updateHint();
  }

  updateHint() {
    const max = this.app.limits && this.app.limits.max_upload_bytes;
    const hint = this.zone.querySelector("#upload-hint");
    if (max) hint.textContent = `Any common image format up to ${bytes(max)}; you can also paste an image.`;
  }

  say(text, kind = "") {
    this.message.textContent = text;
    this.message.className = `upload-message ${kind}`;
  }

  async send(file) {
    const max = this.app.limits && this.app.limits.max_upload_bytes;
    if (max && file.size > max) {
      this.say(`${file.name} is ${bytes(file.size)}; the server accepts at most ${bytes(max)}. Try a smaller copy of the image.`, "error");
      return;
    }
    if (this.busy) return;
    this.busy = true;
    this.zone.classList.add("busy");
    this.say(`Classifying ${file.name}…`);
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("top", "3");
    try {
      const result = await api("/api/classify", { method: "POST", form });
      this.result = result;
      this.say(`${file.name}: ${result.image ? `${result.image.width}×${result.image.height} ${result.image.format || ""}` : ""}`.trim(), "ok");
      this.render();
    } catch (err) {
      const retry = err.retryAfter ? ` (try again in ${err.retryAfter} s)` : "";
      this.say(`${err.detail}${retry}`, "error");
    } finally {
      this.busy = false;
      this.zone.classList.remove("busy");
      this.input.value = "";
    }
  }

  render() {
    const r = this.result;
    if (!r) return;
    const classes = this.app.classes;
    clear(this.output);
    this.output.hidden = false;
    const all = Object.entries(r.probs || {}).map(([label, p]) => ({ label, p }))
      .sort((a, b) => (b.p ?? 0) - (a.p ?? 0));
    const shown = this.showAll && all.length ? all : r.top || [];
    const toggle = el("button", { type: "button", class: "btn small", "aria-pressed": String(this.showAll) },
      this.showAll ? "Show top 3" : `Show all ${all.length || 10}`);
    toggle.addEventListener("click", () => { this.showAll = !this.showAll; this.render(); });
    const images = el("div", { class: "upload-images" },
      el("figure", {}, el("img", { class: "big-pixels", src: pngSrc(r.input), alt: "the 32×32 image the net sees", width: 160, height: 160 }),
        el("figcaption", {}, "What the net sees (32×32)")),
      r.saliency ? el("figure", {}, el("img", { class: "big-pixels", src: pngSrc(r.saliency), alt: "saliency map", width: 160, height: 160 }),
        el("figcaption", {}, "Saliency |∂ score / ∂ pixel|")) : null);
    const verdict = r.top && r.top[0] ? el("p", { class: "verdict" }, "Looks like ", el("strong", {}, String(r.top[0].label)),
      el("span", { class: "num" }, ` (${(100 * (r.top[0].p ?? 0)).toFixed(1)}%)`)) : null;
    const preds = el("div", { class: "upload-preds" }, verdict, probBars(shown, null, classes), toggle);
    const netRoot = el("div", { class: "netview" });
    const net = el("details", { class: "upload-net", open: true }, el("summary", {}, "The network on this image (activations and gradients per layer)"), netRoot);
    this.output.append(el("div", { class: "upload-row" }, images, preds), net);
    new NetView(netRoot, { showTimes: false }).render({ summaryLayers: this.app.summaryLayers(), visuals: r.layers || [] });
  }
}
