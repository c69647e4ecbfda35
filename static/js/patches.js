// What each filter sees: a panel with the nine test images that excite one conv channel most,
// each cut to the part of the image that channel sees (its receptive field), as in the
// lecture's ZFNet case study. The network view opens it on a click on a conv layer's filter
// or activation map, or on "what it sees" beside a conv inside a block; the answer is GET
// /api/filters/{layer}/{channel}, found by the server after each test evaluation. Before that
// (or while it is being found) the panel says when. One panel for the page, not modal:
// another click, or its previous/next buttons, show another channel in it.

import { api } from "./api.js";
import { clear, el, fixed, int } from "./format.js";

const RETRY_MAX_S = 10;     // while the server is finding them: ask again after Retry-After

let panel = null;
let shown = null;           // {layer, channel, timer}: the channel the panel is for

function build() {
  const title = el("strong", { class: "patches-title", id: "patches-title" });
  const close = el("button", { type: "button", class: "btn small patches-close", title: "close (Esc)" }, "Close");
  const previous = el("button", { type: "button", class: "btn small patches-previous", title: "the previous channel" }, "‹ channel");
  const next = el("button", { type: "button", class: "btn small patches-next", title: "the next channel" }, "channel ›");
  const note = el("p", { class: "patches-note muted" });
  const grid = el("div", { class: "patches-grid" });
  const position = el("span", { class: "patches-position num muted" });
  const box = el("section", { id: "patches-panel", class: "patches-panel", role: "dialog",
    "aria-labelledby": "patches-title", "aria-live": "polite", hidden: true },
  el("div", { class: "patches-head" }, title, close), el("div", { class: "patches-nav" }, previous, position, next), note, grid);
  close.addEventListener("click", closePatches);
  previous.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !box.hidden) closePatches();
  });
  document.body.append(box);
  panel = { box, title, note, grid, close, previous, next, position };
}

export function closePatches() {
  if (!panel) return;
  if (shown) clearTimeout(shown.timer);
  shown = null;
  panel.box.hidden = true;
  clear(panel.grid);
}

// Show channel `channel` of conv `layer`: its index as in the summary table, a number for a
// top-level layer or a path inside a block ("5.layers.0"). `channels`, when known, lets the
// previous/next buttons stop at the ends before the answer (which says it) arrives.
export function openPatches(layer, channel, channels = null) {
  if (!panel) build();
  if (shown) clearTimeout(shown.timer);
  const asked = { layer: String(layer), channel, channels: channels ?? (shown && shown.layer === String(layer) ? shown.channels : null), timer: null };
  shown = asked;
  panel.box.hidden = false;
  panel.title.textContent = `Layer ${asked.layer}, channel ${channel}: what it sees`;
  if (!panel.grid.firstChild) panel.note.textContent = "Loading…";
  setButtons();
  load(asked);
}

function step(delta) {
  if (!shown) return;
  const channel = shown.channel + delta;
  if (channel < 0 || (shown.channels !== null && channel >= shown.channels)) return;
  openPatches(shown.layer, channel, shown.channels);
}

function setButtons() {
  panel.position.textContent = shown.channels !== null ? `channel ${int(shown.channel)} of 0–${int(shown.channels - 1)}` : "";
  panel.previous.disabled = shown.channel <= 0;
  panel.next.disabled = shown.channels !== null && shown.channel >= shown.channels - 1;
}

function load(asked) {
  api(`/api/filters/${encodeURIComponent(asked.layer)}/${asked.channel}`).then((answer) => {
    if (shown !== asked) return;
    asked.channels = answer.channels;
    setButtons();
    render(answer);
  }).catch((err) => {
    if (shown !== asked) return;
    clear(panel.grid);
    panel.box.dataset.state = err.code || "error";
    panel.note.textContent = err.code === "patches_not_ready" ? `Not found yet: ${err.detail}.` : `Could not load the patches: ${err.detail}`;
    if (err.retryAfter) asked.timer = setTimeout(() => { if (shown === asked) load(asked); }, 1000 * Math.min(RETRY_MAX_S, Math.max(1, err.retryAfter)));
  });
}

function render(answer) {
  const [fh, fw] = answer.field || [0, 0];
  const patches = answer.patches || [];
  panel.box.dataset.state = "shown";
  panel.note.textContent = `The ${patches.length} of ${int(answer.images_scanned)} test images that excite this channel most, `
    + `each cut to its ${fh}×${fw} receptive field around the strongest spot (clipped at the image edge); `
    + `weights of step ${int(answer.step)}${answer.test_step !== null && answer.test_step !== undefined ? ` (test at step ${int(answer.test_step)})` : ""}. `
    + "The value is the channel's largest output in that image, before its activation function.";
  clear(panel.grid);
  for (const patch of patches) {
    const [, , h, w] = patch.box || [0, 0, 0, 0];
    panel.grid.append(el("figure", { class: "patch" },
      el("img", { src: patch.image, alt: `test image #${patch.index}, ${h}×${w} pixels around its strongest spot` }),
      el("figcaption", { class: "num" }, `#${patch.index} · ${fixed(patch.value, 3)}`)));
  }
}
