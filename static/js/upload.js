// Classify your own image: drop, pick or paste a file. A file too large for the server's
// max_upload_bytes (a phone photo) is shrunk here first when the browser can decode it: the
// net sees 32x32 pixels anyway. POSTed to /api/classify (one retry after a 503's
// Retry-After). Shows the image the net sees, the saliency map, the top-3 (or all classes)
// and the network view for that image.

// multipart framing around the file: keep the file this far under the body limit
const FORM_MARGIN = 16 * 1024;
const SHRUNK_SIDE = 1024;

function sideText(app) {
  const [h, w] = app.imageSize || [32, 32];
  return `${w}×${h}`;
}

// A JPEG copy at most SHRUNK_SIDE pixels on its longer side, or null when the browser cannot
// decode the file (then the server's own message says why).
async function shrink(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, SHRUNK_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return blob ? new File([blob], file.name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" }) : null;
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

  // An error replaces the previous image's result: a verdict under it would read as this
  // file's.
  fail(text) {
    this.result = null;
    clear(this.output);
    this.output.hidden = true;
    this.say(text, "error");
  }

  async send(file) {
    if (this.busy) return;
    this.busy = true;
    this.zone.classList.add("busy");
    try {
      const max = this.app.limits && this.app.limits.max_upload_bytes;
      let upload = file;
      let note = "";
      if (max && file.size > max - FORM_MARGIN) {
        this.say(`${file.name} is ${bytes(file.size)}, over the server's ${bytes(max)}: shrinking it here first…`);
        upload = await shrink(file);
        if (!upload || upload.size > max - FORM_MARGIN) {
          this.fail(`${file.name} is ${bytes(file.size)}; the server accepts at most ${bytes(max)} and this browser could not shrink it. Try a screenshot or a smaller copy of the image.`);
          return;
        }
        note = ` (shrunk here from ${bytes(file.size)})`;
      }
      this.say(`Classifying ${file.name}…`);
      const form = new FormData();
      form.append("file", upload, upload.name);
      form.append("top", "3");
      let result;
      try {
        result = await api("/api/classify", { method: "POST", form });
      } catch (err) {
        if (err.status !== 503 || !err.retryAfter) throw err;
        this.say(`The server is busy; trying ${file.name} again in ${err.retryAfter} s…`);
        await sleep(1000 * Math.min(10, Number(err.retryAfter) || 1));
        result = await api("/api/classify", { method: "POST", form });
      }
      this.result = { ...result, layerTypes: this.app.summaryLayers().map((l) => l.type), netName: this.app.net && this.app.net.name };
      this.say(`${file.name}: ${result.image ? `${result.image.width}×${result.image.height} ${result.image.format || ""}` : ""}${note}`.trim(), "ok");
      this.render();
    } catch (err) {
      const retry = err.retryAfter ? ` (try again in ${err.retryAfter} s)` : "";
      this.fail(`${file.name}: ${err.detail}${retry}`);
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
    const side = sideText(this.app);
    const images = el("div", { class: "upload-images" },
      el("figure", {}, el("img", { class: "big-pixels", src: pngSrc(r.input), alt: `the ${side} image the net sees`, width: 160, height: 160 }),
        el("figcaption", {}, `What the net sees (${side})`)),
      r.saliency ? el("figure", {}, el("img", { class: "big-pixels", src: pngSrc(r.saliency), alt: "saliency map", width: 160, height: 160 }),
        el("figcaption", {}, "Saliency |∂ score / ∂ pixel|")) : null);
    const verdict = r.top && r.top[0] ? el("p", { class: "verdict" }, "Looks like ", el("strong", {}, String(r.top[0].label)),
      el("span", { class: "num" }, ` (${(100 * (r.top[0].p ?? 0)).toFixed(1)}%)`)) : null;
    // The net may have changed since: its layer table no longer describes these pictures.
    const layers = this.app.summaryLayers();
    const current = layers.length === r.layerTypes.length && layers.every((l, i) => l.type === r.layerTypes[i]);
    const stale = current ? null : el("p", { class: "muted small" },
      `Classified by the previous net (${r.netName || "custom"}); drop the image again to ask the current one.`);
    const preds = el("div", { class: "upload-preds" }, verdict, probBars(shown, null, classes), toggle, stale);
    const netRoot = el("div", { class: "netview" });
    // folded on a phone: a whole network view would push the rest of the page far down
    const wide = !window.matchMedia("(max-width: 700px)").matches;
    const net = el("details", { class: "upload-net", open: wide }, el("summary", {}, "The network on this image (activations and gradients per layer)"), netRoot);
    this.output.append(el("div", { class: "upload-row" }, images, preds));
    if (!current) return;
    this.output.append(net);
    new NetView(netRoot, { showTimes: false }).render({ summaryLayers: layers, visuals: r.layers || [] });
  }
}
