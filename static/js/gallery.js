// Test-set predictions (ConvNetJS's bottom panel): images with the net's top-3 as bars, then
// the whole-test-set confusion matrix and per-class accuracy when the server has them.

import { DASH, clear, el, int, isNum, labelName, pct, pngSrc } from "./format.js";
import { probBars } from "./bars.js";
import { scrollBox } from "./scrollcue.js";

// A phone shows the first PHONE_CARDS cards (a column of 40 was 4,000 px to scroll past) and
// a button for the rest; the choice holds while the gallery is rebuilt.
const PHONE_CARDS = 12;
const narrow = window.matchMedia("(max-width: 700px)");
let showAll = false;

// onPick(index), for the presenter: a click on a card shows that image in the network view.
export function renderGallery(root, gallery, classes, onPick = null) {
  // The gallery is rebuilt as training goes: a keyboard user keeps focus on the same image,
  // and the "Show all" button is one element that stays put (a button rebuilt with every
  // gallery event slips from under a finger or a mouse).
  const focused = root.contains(document.activeElement) ? document.activeElement.dataset.index : undefined;
  const parts = galleryParts(root);
  clear(parts.summary); clear(parts.grid); clear(parts.test);
  parts.more.hidden = true;
  if (!gallery || !gallery.items || !gallery.items.length) {
    parts.summary.append(el("p", { class: "muted" }, "No test-set predictions yet: they come once the data is loaded."));
    return;
  }
  const items = gallery.items;
  const right = items.filter((it) => it.correct).length;
  parts.summary.append(el("p", { class: "gallery-summary" },
    `${items.length} test images at step ${int(gallery.step)}: `,
    el("strong", { class: "num" }, `${right} of ${items.length}`), " right."));
  const shown = narrow.matches && !showAll ? items.slice(0, PHONE_CARDS) : items;
  for (const item of shown) {
    const truth = labelName(item.label, classes);
    const card = el("figure", { class: `card ${item.correct ? "right" : "wrong"}${onPick ? " pickable" : ""}` },
      el("img", { src: item.image ? pngSrc(item.image) : undefined, alt: `test image ${item.index}: ${truth}`, width: 64, height: 64 }),
      el("figcaption", {},
        el("div", { class: "card-title" }, truth, el("span", { class: "muted num" }, ` #${item.index}`)),
        probBars(item.top, truth, classes, 0)));
    if (onPick) {
      card.dataset.index = String(item.index);
      card.tabIndex = 0;
      card.setAttribute("role", "button");
      card.title = "Show this image in everyone's network view";
      card.addEventListener("click", () => onPick(item.index));
      card.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(item.index); }
      });
    }
    parts.grid.append(card);
  }
  if (shown.length < items.length) {
    parts.more.textContent = `Show all ${items.length} test images`;
    parts.more.hidden = false;
    parts.more.onclick = () => {
      showAll = true;
      renderGallery(root, gallery, classes, onPick);
    };
  }
  if (focused !== undefined) {
    const again = parts.grid.querySelector(`[data-index="${focused}"]`);
    if (again) again.focus();
  }
  if (gallery.test) parts.test.append(testSummary(gallery.test));
}

// The gallery's four places, made once per root: summary, cards, the button, test-set tables.
function galleryParts(root) {
  if (!root.galleryParts) {
    clear(root);
    root.galleryParts = {
      summary: el("div", {}),
      grid: el("div", { class: "gallery-grid" }),
      more: el("button", { type: "button", class: "btn show-all-cards", hidden: true }),
      test: el("div", {}),
    };
    const { summary, grid, more, test } = root.galleryParts;
    root.append(summary, grid, more, test);
  }
  return root.galleryParts;
}

function testSummary(test) {
  const classes = test.classes || [];
  const wrap = el("div", { class: "test-summary" });
  wrap.append(el("h3", {}, "Whole test set: ", el("span", { class: "num" }, pct(test.accuracy)),
    isNum(test.step) ? el("span", { class: "muted small" }, ` at step ${int(test.step)}`) : null));
  const row = el("div", { class: "test-row" });
  if (Array.isArray(test.confusion) && test.confusion.length) row.append(confusion(test.confusion, classes));
  if (test.per_class) row.append(perClass(test.per_class, classes));
  wrap.append(row);
  return wrap;
}

function confusion(matrix, classes) {
  const table = el("table", { class: "confusion num" });
  table.append(el("caption", {}, "Confusion matrix (row: true class, column: predicted; colour: share of the row)"));
  const head = el("tr", {}, el("th", { scope: "col", class: "corner" }, "true \\ pred"));
  classes.forEach((c) => head.append(el("th", { scope: "col", title: c }, short(c))));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  matrix.forEach((counts, i) => {
    const total = counts.reduce((a, b) => a + b, 0) || 1;
    const tr = el("tr", {}, el("th", { scope: "row" }, classes[i] || String(i)));
    counts.forEach((n, j) => {
      const share = n / total;
      const td = el("td", { title: `true ${classes[i]}, predicted ${classes[j]}: ${n} (${pct(share)})` }, String(n));
      td.style.background = heat(share, i === j);
      if (share > 0.45) td.style.color = "#fff";
      if (i === j) td.classList.add("diag");
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  return scrollBox(table, "confusion-wrap");
}

// white -> dark blue along the diagonal (right answers), white -> dark red off it
function heat(share, diagonal) {
  const s = Math.min(1, Math.sqrt(share));  // sqrt: small confusions still visible
  const hue = diagonal ? 212 : 4;
  return `hsl(${hue}, ${diagonal ? 70 : 75}%, ${Math.round(100 - 62 * s)}%)`;
}

function perClass(perClassAcc, classes) {
  const names = classes.length ? classes : Object.keys(perClassAcc);
  const list = el("ul", { class: "bars per-class" });
  for (const name of names) {
    const acc = perClassAcc[name];
    list.append(el("li", { class: "bar" },
      el("span", { class: "bar-label" }, name),
      el("span", { class: "bar-track" }, el("span", { class: "bar-fill", style: { width: isNum(acc) ? `${(100 * acc).toFixed(1)}%` : "0" } })),
      el("span", { class: "bar-value num" }, isNum(acc) ? pct(acc) : DASH)));
  }
  return el("div", { class: "per-class-wrap" }, el("h4", {}, "Accuracy per class"), list);
}

function short(name) {
  return name.length > 5 ? name.slice(0, 4) + "." : name;
}
