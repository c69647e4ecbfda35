// One conv filter's slices, one per input channel (the network view draws a deeper conv's
// filters as their mean over the input channels; a click on one opens this): each slice
// enlarged and sharp, all on the filter's one scale, with buttons to step through the
// filters and (past 256 input channels) through the channels. The answer is GET
// /api/frame/filter's; `actions` = {index, filters, open(index, start), close()}.

import { clear, el, fixed, pngSrc } from "./format.js";
import { zoomFor } from "./tiles.js";

export function renderSlices(box, answer, actions) {
  const [h, w] = answer.size || [1, 1];
  const zoom = zoomFor(answer.size, "filter");
  const bias = answer.bias === null || answer.bias === undefined ? "" : `, bias ${fixed(answer.bias, 3)}`;
  const part = answer.count < answer.in_channels
    ? `input channels ${answer.start + 1}–${answer.start + answer.count} of ${answer.in_channels}`
    : `all ${answer.in_channels} input channels`;
  clear(box);
  box.append(
    el("div", { class: "nv-slices-head" },
      el("strong", {}, `Filter #${answer.index} of ${answer.filters}`),
      el("span", { class: "muted" }, ` (layer ${answer.layer}, step ${answer.step}): ${h}×${w} weights for each of ${part}; one scale, black ${fixed(answer.min, 3)}, white ${fixed(answer.max, 3)}${bias}`)),
    buttons(answer, actions),
    el("div", { class: "nv-slices-list" }, (answer.slices || []).map((s) => el("figure", { class: "nv-slice" },
      el("img", { src: pngSrc(s.image), alt: `filter ${answer.index}, input channel ${s.name}`, width: w * zoom, height: h * zoom, style: { width: `${(w * zoom) / 15}rem` } }),
      el("figcaption", { class: "num" }, s.name)))));
}

export function renderSlicesError(box, detail, actions) {
  clear(box);
  box.append(el("p", { class: "error" }, `Could not load the filter: ${detail}`), buttons(null, actions));
}

function buttons(answer, { index, filters, open, close }) {
  const button = (label, title, action, disabled = false) => el("button", { type: "button", class: "btn small", title, disabled, onclick: action }, label);
  const last = filters === null ? index : filters - 1;
  return el("div", { class: "nv-slices-tools" },
    button("◀ Filter", "the previous filter", () => open(index - 1), index <= 0),
    button("Filter ▶", "the next filter", () => open(index + 1), index >= last),
    answer && answer.start > 0 ? button("◀ Channels", "the previous input channels", () => open(index, Math.max(0, answer.start - answer.count))) : null,
    answer && answer.start + answer.count < answer.in_channels ? button("Channels ▶", "the next input channels", () => open(index, answer.start + answer.count)) : null,
    button("Close", "close the slices", close));
}
