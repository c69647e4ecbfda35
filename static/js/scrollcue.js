// A wide table on a narrow screen scrolls sideways inside its box. Say so: a line above the
// table while it is wider than its box, and a faded edge on the side that has more, so nobody
// misses the columns off screen. Nothing is kept per table: each box listens to its own
// scroll, and one window listener re-checks the boxes in the page on resize.

import { el } from "./format.js";

function update(box) {
  const more = box.scrollWidth - box.clientWidth;
  const wide = more > 1 && box.clientWidth > 0;
  box.classList.toggle("more-right", wide && box.scrollLeft < more - 1);
  box.classList.toggle("more-left", wide && box.scrollLeft > 1);
  const cue = box.previousElementSibling;
  if (cue && cue.classList.contains("scroll-cue")) cue.hidden = !wide;
}

// A box (class scroll-x) that scrolls sideways gets its faded edges kept up to date.
export function followScroll(box) {
  box.addEventListener("scroll", () => update(box), { passive: true });
  requestAnimationFrame(() => update(box));
  return box;
}

// Wraps `content` (a table) in a sideways-scrolling box with its cue; returns the wrapper.
export function scrollBox(content, className = "") {
  const box = followScroll(el("div", { class: `scroll-x ${className}`.trim(), tabindex: "0" }, content));
  return el("div", { class: "scroll-wrap" },
    el("p", { class: "scroll-cue", hidden: true, "aria-hidden": "true" }, "wider than the screen: swipe the table sideways →"),
    box);
}

let pending = false;
window.addEventListener("resize", () => {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    document.querySelectorAll(".scroll-x").forEach(update);
  });
});
