// Probability bars (top-3 or all classes): label, bar, percentage. Shared by the test-set
// gallery and the upload panel.

import { el, labelName } from "./format.js";

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
