// The saved run the server offers after a restart (/api/state's `resumable`: the newest
// automatic snapshot of the same net, when the run did not start from it), for the presenter:
// what it is (net, step, test accuracy, when it was saved) and one click to go on with it
// (POST /api/resume). "Not now" hides that offer until the page is reloaded.

import { api } from "./api.js";
import { el, int, isNum, pct } from "./format.js";

const DONE_NOTE_MS = 6000;

function savedWhen(iso) {
  const when = new Date(iso);
  if (!iso || Number.isNaN(when.getTime())) return "";
  const minutes = Math.round((Date.now() - when.getTime()) / 60000);
  const ago = minutes < 1 ? "just now" : minutes < 90 ? `${minutes} min ago`
    : minutes < 36 * 60 ? `${Math.round(minutes / 60)} h ago` : `${Math.round(minutes / 1440)} days ago`;
  const text = when.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return `${text} (${ago})`;
}

export class ResumeOffer {
  // onResumed(): refetch the state (the run, its charts and settings are the saved run's now)
  constructor(root, onResumed) {
    this.root = root;
    this.onResumed = onResumed;
    this.offer = null;
    this.dismissed = null;
    this.busy = false;
    this.doneTimer = null;
  }

  set(resumable) {
    if (this.busy) return;
    const offer = resumable && typeof resumable === "object" ? resumable : null;
    const same = offer && this.offer && offer.file === this.offer.file && offer.step === this.offer.step;
    this.offer = offer;
    if (!offer) {
      if (!this.doneTimer) this.root.hidden = true;
      return;
    }
    if (this.dismissed === offer.file) { this.root.hidden = true; return; }
    if (same && !this.root.hidden) return;
    clearTimeout(this.doneTimer);
    this.doneTimer = null;
    this.render(offer);
  }

  render(offer, error = "") {
    const facts = [`step ${int(offer.step)}`,
      isNum(offer.test_acc) ? `test accuracy ${pct(offer.test_acc)}` : "not tested on the test set yet"];
    const when = savedWhen(offer.saved_at);
    if (when) facts.push(`saved ${when}`);
    this.button = el("button", { type: "button", class: "btn primary", id: "resume-saved" }, "Resume the saved run");
    this.button.addEventListener("click", () => this.resume());
    const later = el("button", { type: "button", class: "btn small" }, "Not now");
    later.addEventListener("click", () => { this.dismissed = offer.file; this.root.hidden = true; });
    this.root.replaceChildren(...[
      el("div", { class: "offer-text" },
        el("strong", {}, "A saved run of this net is here: "),
        el("span", { class: "num" }, `${offer.net || "the net"}, ${facts.join(", ")}`),
        el("span", { class: "muted small offer-file" }, ` (${offer.file})`)),
      el("div", { class: "button-row" }, this.button, later),
      error ? el("p", { class: "field-note error", role: "alert" }, error) : null].filter(Boolean));
    this.root.hidden = false;
  }

  async resume() {
    const offer = this.offer;
    if (!offer || this.busy) return;
    this.busy = true;
    this.button.disabled = true;
    this.button.textContent = "Resuming…";
    try {
      await api("/api/resume", { method: "POST" });
      this.root.replaceChildren(el("p", { class: "offer-text", role: "status" },
        `✓ Resumed the saved run: ${offer.net || "the net"} at step ${int(offer.step)}.`));
      this.offer = null;
      this.doneTimer = setTimeout(() => { this.doneTimer = null; if (!this.offer) this.root.hidden = true; }, DONE_NOTE_MS);
      this.busy = false;
      this.onResumed();
    } catch (err) {
      this.busy = false;
      this.render(offer, `Could not resume it: ${err.detail}`);
    }
  }
}
