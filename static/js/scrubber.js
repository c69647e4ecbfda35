// The scrubber under the charts: drag back through the run. Each tab scrubs for itself: the
// network view, its filters and maps, and the test set show the run as it was at the
// checkpoint nearest the handle (GET /api/frame?step=K, GET /api/gallery?step=K), and both
// charts mark that moment. "Live" (or dragging to the right end) follows training again.
//
// Requests stay few however fast a hand drags: one frame and one gallery request at a time
// (the gallery once the handle rests), the handle snaps to checkpoints (a room asks for the
// same few, which the server keeps), the tab keeps the last MEMO_MAX answers (a drag back
// over the same checkpoints asks for nothing), and
// the checkpoint list is fetched when the scrubber is touched, at most every LIST_MAX_AGE_MS.

import { api } from "./api.js";

const LIST_MAX_AGE_MS = 4000;
const GALLERY_REST_MS = 300;
const MEMO_MAX = 24;        // answers a tab keeps: a drag back and forth meets the same ones

export class Scrubber {
  // onView({frame, gallery, checkpoint}) while scrubbed; onLive() when back to live.
  constructor(root, { onView, onLive, onMark }) {
    this.root = root;
    this.onView = onView;
    this.onLive = onLive;
    this.onMark = onMark;
    this.list = [];
    this.listAt = -Infinity;
    this.listFetch = null;
    this.latestStep = 0;
    this.live = true;
    this.wanted = null;      // the checkpoint step the handle points at
    this.inFlight = { frame: null, gallery: null };
    this.shown = { frame: null, gallery: null };
    this.memo = new Map();
    root.innerHTML = `
      <label for="scrub-range" class="scrub-label">Look back</label>
      <input id="scrub-range" class="scrub-range" type="range" min="0" max="0" step="1" value="0" aria-describedby="scrub-status">
      <button type="button" class="btn small scrub-live" disabled>Live</button>
      <output id="scrub-status" class="scrub-status muted small" aria-live="polite">live: the latest step</output>`;
    this.range = root.querySelector(".scrub-range");
    this.liveButton = root.querySelector(".scrub-live");
    this.status = root.querySelector(".scrub-status");
    const touch = () => this.refreshList();
    this.range.addEventListener("pointerdown", touch);
    this.range.addEventListener("focus", touch);
    this.range.addEventListener("input", () => this.moved());
    this.liveButton.addEventListener("click", () => this.goLive());
  }

  // The run's latest step (from the history): the right end of the range.
  setLatest(step) {
    if (!Number.isFinite(step)) return;
    this.latestStep = step;
    this.range.max = String(Math.max(step, 0));
    if (this.live) this.range.value = this.range.max;
  }

  // The run was reset or replaced: its old checkpoints are gone.
  forget() {
    this.list = [];
    this.memo.clear();
    this.listAt = -Infinity;
    if (!this.live) this.goLive();
  }

  refreshList() {
    if (this.listFetch || performance.now() - this.listAt < LIST_MAX_AGE_MS) return this.listFetch;
    this.listFetch = api("/api/checkpoints").then((answer) => {
      this.list = answer.checkpoints || [];
      this.listAt = performance.now();
      // the handle moved before the list came (or while it was refreshed): show that step now
      if (!this.live || this.waitingForList) { this.waitingForList = false; this.moved(); }
    }).catch((err) => { this.status.textContent = `checkpoints: ${err.detail}`; })
      .finally(() => { this.listFetch = null; });
    return this.listFetch;
  }

  nearest(step) {
    let best = null;
    for (const c of this.list) {
      if (!best || Math.abs(c.step - step) < Math.abs(best.step - step)) best = c;
    }
    return best;
  }

  moved() {
    const step = Number(this.range.value);
    if (step >= this.latestStep) { this.goLive(); return; }
    if (!this.list.length) { this.waitingForList = true; this.refreshList(); return; }
    const checkpoint = this.nearest(step);
    if (!checkpoint) return;
    this.live = false;
    this.liveButton.disabled = false;
    this.root.classList.add("scrubbed");
    this.wanted = checkpoint;
    this.describe(checkpoint, "loading…");
    this.onMark(checkpoint);
    this.request("frame");
    // the test set (40 images through the net) once the handle rests, not at every step of
    // a drag: the room's requests are what the worker's time for views is spent on
    clearTimeout(this.galleryTimer);
    this.galleryTimer = setTimeout(() => this.request("gallery"), GALLERY_REST_MS);
  }

  describe(checkpoint, note = "") {
    const test = checkpoint.test_acc === null || checkpoint.test_acc === undefined ? ""
      : ` · test ${(100 * checkpoint.test_acc).toFixed(1)}%`;
    const minutes = checkpoint.seconds >= 60 ? `${(checkpoint.seconds / 60).toFixed(1)} min`
      : `${Math.round(checkpoint.seconds)} s`;
    this.status.textContent = `step ${checkpoint.step.toLocaleString("en-US")} · `
      + `${checkpoint.examples.toLocaleString("en-US")} examples · ${minutes} of training${test}`
      + (note ? ` (${note})` : "");
  }

  // One request per kind at a time; when it ends, the latest wanted checkpoint is asked for.
  // A checkpoint seen lately is shown from this tab's memory, without asking.
  request(kind) {
    const checkpoint = this.wanted;
    if (this.live || !checkpoint || this.inFlight[kind] || this.shown[kind] === checkpoint.step) return;
    const kept = this.memo.get(`${kind}:${checkpoint.id}`);
    if (kept) { this.remember(kind, kept); this.show(kind, kept); return; }
    this.inFlight[kind] = api(`/api/${kind}?step=${checkpoint.step}`).then((answer) => {
      this.remember(kind, answer);
      if (!this.live) this.show(kind, answer);
    }).catch((err) => {
      this.shown[kind] = checkpoint.step;  // not asked again until the handle moves on
      if (err.code === "unknown_step" || err.code === "no_checkpoints") this.listAt = -Infinity;
      this.status.textContent = `Could not look back: ${err.detail}`;
    }).finally(() => {
      this.inFlight[kind] = null;
      if (!this.live && this.wanted && this.shown[kind] !== this.wanted.step) this.request(kind);
    });
  }

  show(kind, answer) {
    this.shown[kind] = answer.step;
    this.onView({ [kind]: answer, checkpoint: answer.checkpoint });
    if (this.wanted && answer.step === this.wanted.step) this.describe(answer.checkpoint);
  }

  // the latest MEMO_MAX answers, by kind and checkpoint id (a checkpoint never changes; a run
  // that starts over has new ids), the one used last kept longest
  remember(kind, answer) {
    const key = `${kind}:${answer.checkpoint.id}`;
    this.memo.delete(key);
    this.memo.set(key, answer);
    while (this.memo.size > MEMO_MAX) this.memo.delete(this.memo.keys().next().value);
  }

  goLive() {
    clearTimeout(this.galleryTimer);
    this.live = true;
    this.wanted = null;
    this.shown = { frame: null, gallery: null };
    this.range.value = this.range.max;
    this.liveButton.disabled = true;
    this.root.classList.remove("scrubbed");
    this.status.textContent = "live: the latest step";
    this.onMark(null);
    this.onLive();
  }
}
