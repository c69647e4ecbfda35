// Probability bars (top-3 or all classes): label, bar, percentage. Shared by the test-set
// gallery and the upload panel.

import { el, labelName, sig } from "./format.js";

// top: [{label, p}]; truth: the true class name or null (then no right/wrong colouring)
export function probBars(top, truth, classes, digits = 1) {
  return el("ul", { class: "bars" }, (top || []).map((t) => {
    const name = labelName(t.label, classes);
    const known = typeof t.p === "number" && Number.isFinite(t.p);
    const p = known ? t.p : 0;
    const verdict = truth === null || truth === undefined ? "" : name === truth ? " right" : " wrong";
    return el("li", { class: `bar${verdict}` },
      el("span", { class: "bar-label" }, name),
      el("span", { class: "bar-track" }, el("span", { class: "bar-fill", style: { width: `${(100 * p).toFixed(1)}%` } })),
      el("span", { class: "bar-value num" }, known ? `${(100 * p).toFixed(digits)}%` : "–"));
  }));
}

// One bar per channel of a layer with one value per channel (fc, softmax, global average
// pooling), into `list` (a <ul>, its items reused while their labels stay the same: a frame
// a second must not churn the DOM). values: the numbers; names: a label per value (class
// names, or the channel numbers); probabilities: 0..1 bars and percentages, else one scale
// from min(0, smallest) to max(0, largest) with the zero line where it falls and negative
// values drawn left of it; truth: the name to mark as the true class.
export function renderValueBars(list, values, names, { probabilities = false, truth = null } = {}) {
  const known = values.map((v) => typeof v === "number" && Number.isFinite(v));
  const finite = values.filter((v, i) => known[i]);
  const lo = probabilities ? 0 : Math.min(0, ...finite);
  const hi = probabilities ? 1 : Math.max(0, ...finite);
  const span = hi - lo || 1;
  const same = list.children.length === values.length
    && [...list.children].every((li, i) => li.dataset.name === names[i]);
  if (!same) {
    list.replaceChildren(...names.map((name) => el("li", { class: "bar", "data-name": name },
      el("span", { class: "bar-label", title: name }, name),
      el("span", { class: "bar-track" }, el("span", { class: "bar-zero" }), el("span", { class: "bar-fill" })),
      el("span", { class: "bar-value num" }))));
  }
  const zero = (100 * (0 - lo)) / span;
  values.forEach((v, i) => {
    const li = list.children[i];
    const value = known[i] ? v : 0;
    const fill = li.querySelector(".bar-fill");
    fill.style.left = `${(100 * (Math.min(value, 0) - lo)) / span}%`;
    fill.style.width = `${(100 * Math.abs(value)) / span}%`;
    li.querySelector(".bar-zero").style.left = `${zero}%`;
    li.classList.toggle("negative", value < 0);
    li.classList.toggle("truth", truth !== null && names[i] === truth);
    const text = !known[i] ? "–" : probabilities ? `${(100 * v).toFixed(1)}%` : sig(v, 3);
    li.querySelector(".bar-value").textContent = text;
  });
  return list;
}
