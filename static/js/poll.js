// Live questions (server/routes/polls.py). Every page: a card pinned to the bottom of the
// screen shows an open question at once (from the `poll` stream event), with one big button
// per option; a viewer's tap answers (and may change the answer until the question closes),
// and the reveal marks the right option, the room's counts and, per wrong option, the mistake
// that gives it. The presenter's card shows the live histogram and "Close and reveal"; the
// presenter's panel opens a question of each kind (the layer from the summary table) or a
// question typed in with 2-6 options.
//
// Question and option texts reach the DOM only as text (format.js `el`), never as HTML.

import { api } from "./api.js";
import { clear, el, int, pngSrc } from "./format.js";

const LETTERS = "ABCDEF";
const KIND_NAMES = {
  output_size: "Output size of a layer",
  params: "Parameters of a layer",
  stride_fits: "Does a stride fit?",
  memory: "Memory of a layer's activations",
  predict: "What will the net predict?",
  custom: "Your own question",
};
const LAYER_KINDS = ["output_size", "params", "stride_fits", "memory"];
const MAX_QUESTION = 300;  // server/polls.py MAX_QUESTION_CHARS, MAX_OPTION_CHARS, 2-6 options
const MAX_OPTION = 120;
const MIN_OPTIONS = 2;
const MAX_OPTIONS = 6;

function flatRows(rows, out = new Map()) {
  for (const row of rows || []) {
    out.set(row.index, row);
    flatRows(row.children, out);
  }
  return out;
}

export class Polls {
  constructor(panel, app, { presenter }) {
    this.app = app;
    this.presenter = presenter;
    this.poll = null;          // the latest question (event or JSON twin)
    this.mine = null;          // this browser's answer to it
    this.images = new Map();   // question id -> picture (one question's at a time)
    this.hiddenId = null;      // the question this viewer put away
    this.fetching = null;
    this.choices = null;
    this.buildCard();
    if (presenter && panel) this.buildForm(panel);
  }

  // --- the card every page shows ---------------------------------------------------------
  buildCard() {
    this.card = el("aside", { id: "poll", class: "poll", "aria-labelledby": "poll-question", tabindex: "-1", hidden: true });
    this.tag = el("span", { class: "poll-tag" }, "Question");
    this.total = el("span", { class: "poll-total num" });
    this.hideButton = el("button", { type: "button", class: "btn small poll-hide", onclick: () => this.hide() }, "Hide");
    this.question = el("p", { id: "poll-question", class: "poll-question" });
    this.image = el("img", { class: "poll-image", alt: "the test image this question is about", hidden: true });
    this.options = el("ol", { class: "poll-options" });
    this.status = el("p", { class: "poll-status", role: "status", "aria-live": "polite" });
    this.explain = el("p", { class: "poll-explain", hidden: true });
    this.closeButton = this.presenter
      ? el("button", { type: "button", class: "btn primary poll-close", onclick: () => this.close() }, "Close and reveal")
      : null;
    this.card.append(el("div", { class: "poll-head" }, this.tag, this.total, this.hideButton),
      this.question, this.image, this.options, this.status, this.explain,
      ...(this.closeButton ? [this.closeButton] : []));
    this.reopen = el("button", { type: "button", class: "poll-reopen", hidden: true, onclick: () => this.unhide() }, "Question open: answer");
    document.body.append(this.card, this.reopen);
  }

  // A `poll` event, or the JSON twin's poll (null: no question asked yet).
  show(poll) {
    if (!poll) return;
    const fresh = !this.poll || this.poll.id !== poll.id;
    if (fresh) {
      this.mine = null;
      this.images.clear();
    }
    this.poll = poll;
    if (poll.yours !== undefined && poll.yours !== null) this.mine = poll.yours;
    if (poll.image) this.images.set(poll.id, poll.image);
    if (poll.has_image && !this.images.has(poll.id)) this.fetchTwin();
    // a question that opened while this page was away shows; one that closed before it came
    // stays put away (a late joiner needs no old reveal)
    if (fresh) this.hiddenId = poll.open ? null : poll.id;
    this.render();
  }

  // The picture (left out of the stream) and this browser's answer, once per question.
  fetchTwin() {
    if (this.fetching) return;
    this.fetching = api("/api/poll").then((twin) => {
      if (twin && twin.poll && this.poll && twin.poll.id === this.poll.id) this.show(twin.poll);
      if (twin && twin.choices) this.setChoices(twin.choices);
    }).catch((err) => console.warn("poll:", err.detail))
      .finally(() => { this.fetching = null; });
  }

  load() { this.fetchTwin(); }

  hide() {
    this.hiddenId = this.poll ? this.poll.id : null;
    this.render();
  }

  unhide() {
    this.hiddenId = null;
    this.render();
    this.card.focus();
  }

  render() {
    const poll = this.poll;
    const hidden = !poll || this.hiddenId === poll.id;
    this.card.hidden = hidden;
    this.reopen.hidden = !(poll && poll.open && hidden);
    if (!poll) return;
    const closed = !poll.open;
    this.card.classList.toggle("poll-closed", closed);
    this.tag.textContent = closed ? "Answer" : "Question";
    this.total.textContent = `${int(poll.total || 0)} answer${poll.total === 1 ? "" : "s"}`;
    this.question.textContent = poll.question;
    const image = this.images.get(poll.id);
    this.image.hidden = !image;
    if (image) this.image.src = pngSrc(image);
    const counts = poll.counts || [];
    const most = Math.max(1, ...counts);
    const showCounts = this.presenter || closed;
    clear(this.options);
    poll.options.forEach((text, i) => {
      const right = closed && poll.answer === i;
      const mine = this.mine === i;
      const count = counts[i] || 0;
      const classes = ["poll-option", mine ? "poll-mine" : "", right ? "poll-right" : "",
        closed && mine && poll.answer !== null && !right ? "poll-wrong" : ""].filter(Boolean).join(" ");
      const mistake = closed && poll.mistakes && poll.mistakes[i];
      const button = el("button", {
        type: "button", class: classes, "data-option": i, "aria-pressed": mine ? "true" : "false",
        disabled: closed || this.presenter, onclick: () => this.answer(i),
      },
      el("span", { class: "poll-letter" }, LETTERS[i] || String(i + 1)),
      el("span", { class: "poll-text" }, text,
        mistake ? el("span", { class: "poll-mistake" }, mistake) : null),
      showCounts ? el("span", { class: "poll-bar", "aria-hidden": "true" },
        el("span", { class: "poll-fill", style: { width: `${(100 * count / most).toFixed(1)}%` } })) : null,
      showCounts ? el("span", { class: "poll-count num" }, int(count)) : null,
      right ? el("span", { class: "poll-tick", "aria-label": "the right answer" }, "✓") : null);
      this.options.append(el("li", {}, button));
    });
    this.explain.hidden = !(closed && (poll.explain || poll.truth));
    this.explain.textContent = closed ? [poll.explain, poll.truth ? `The image is a ${poll.truth}.` : ""].filter(Boolean).join(" · ") : "";
    if (this.closeButton) this.closeButton.hidden = closed;
    this.status.textContent = this.statusText();
  }

  statusText() {
    const poll = this.poll;
    const letter = (i) => LETTERS[i] || String(i + 1);
    if (poll.open) {
      if (this.presenter) return "The room is answering; close the question to reveal the answer.";
      return this.mine === null ? "Tap an answer." : `Your answer: ${letter(this.mine)}. You can change it until the presenter closes the question.`;
    }
    if (poll.answer === null || poll.answer === undefined) return "Closed. This question had no right answer.";
    if (this.presenter || this.mine === null) return `The answer is ${letter(poll.answer)}.`;
    return this.mine === poll.answer ? "Right!" : `Not quite: the answer is ${letter(poll.answer)}.`;
  }

  async answer(option) {
    const poll = this.poll;
    if (!poll || !poll.open || this.presenter) return;
    const before = this.mine;
    this.mine = option;      // at once: the tap shows before the server acknowledges it
    this.render();
    try {
      await api("/api/poll/answer", { method: "POST", json: { option, poll: poll.id } });
    } catch (err) {
      this.mine = before;
      this.render();
      this.status.textContent = err.status === 429
        ? `Too many answers from this network; try again in ${err.retryAfter || 1} s.`
        : `Not counted: ${err.detail}`;
    }
  }

  async close() {
    try {
      const reveal = await api("/api/poll", { method: "DELETE" });
      if (this.poll && reveal.id === this.poll.id) this.show({ ...this.poll, ...reveal, open: false });
    } catch (err) {
      this.status.textContent = `Could not close it: ${err.detail}`;
    }
  }

  // --- the presenter's form --------------------------------------------------------------
  buildForm(panel) {
    const kind = el("select", { id: "poll-kind" },
      ...Object.entries(KIND_NAMES).map(([value, text]) => el("option", { value }, text)));
    this.kind = kind;
    this.layer = el("select", { id: "poll-layer" });
    this.layerField = el("label", { class: "poll-field" }, "Layer ", this.layer);
    this.customText = el("textarea", { id: "poll-custom-question", rows: "2", maxlength: String(MAX_QUESTION), placeholder: "Type the question" });
    this.customOptions = el("ol", { class: "poll-custom-options" });
    this.addOption = el("button", { type: "button", class: "btn small", onclick: () => this.addCustomOption() }, "Add an option");
    this.custom = el("div", { class: "poll-custom", hidden: true },
      el("label", { class: "poll-field poll-field-wide" }, "Question ", this.customText),
      this.customOptions, this.addOption,
      el("p", { class: "muted small" }, "Mark the right option, or none for a show of hands."));
    this.note = el("output", { class: "poll-note small", "aria-live": "polite" });
    const form = el("form", { class: "poll-form", novalidate: true },
      el("label", { class: "poll-field" }, "Ask about ", kind), this.layerField, this.custom,
      el("p", {}, el("button", { type: "submit", class: "btn primary" }, "Ask the room"), " ",
        el("button", { type: "button", class: "btn", onclick: () => this.close() }, "Close and reveal")),
      this.note);
    form.addEventListener("submit", (event) => { event.preventDefault(); this.ask(); });
    kind.addEventListener("change", () => this.kindChanged());
    for (let i = 0; i < MIN_OPTIONS; i++) this.addCustomOption();
    clear(panel).append(form);
    this.kindChanged();
  }

  addCustomOption() {
    const count = this.customOptions.children.length;
    if (count >= MAX_OPTIONS) return;
    const input = el("input", { type: "text", maxlength: String(MAX_OPTION), "aria-label": `option ${LETTERS[count]}`, placeholder: `Option ${LETTERS[count]}` });
    const right = el("input", { type: "checkbox", class: "poll-right-box", "aria-label": `option ${LETTERS[count]} is right` });
    right.addEventListener("change", () => {
      if (right.checked) this.customOptions.querySelectorAll(".poll-right-box").forEach((box) => { if (box !== right) box.checked = false; });
    });
    const remove = el("button", { type: "button", class: "btn small", "aria-label": `remove option ${LETTERS[count]}`, onclick: () => {
      if (this.customOptions.children.length > MIN_OPTIONS) { item.remove(); this.relabel(); }
    } }, "×");
    const item = el("li", {}, input, el("label", { class: "check" }, right, " right"), remove);
    this.customOptions.append(item);
    this.addOption.disabled = this.customOptions.children.length >= MAX_OPTIONS;
  }

  relabel() {
    [...this.customOptions.children].forEach((item, i) => {
      item.querySelector("input[type=text]").placeholder = `Option ${LETTERS[i]}`;
    });
    this.addOption.disabled = this.customOptions.children.length >= MAX_OPTIONS;
  }

  kindChanged() {
    const kind = this.kind.value;
    this.layerField.hidden = !LAYER_KINDS.includes(kind);
    this.custom.hidden = kind !== "custom";
    this.fillLayers();
  }

  setNet() {
    if (this.presenter) { this.choices = null; this.fetchTwin(); }
  }

  setChoices(choices) {
    this.choices = choices;
    this.fillLayers();
  }

  fillLayers() {
    if (!this.layer) return;
    const kind = this.kind.value;
    const wanted = this.layer.value;
    const rows = flatRows(this.app.summaryLayers());
    clear(this.layer);
    for (const index of (this.choices && this.choices[kind]) || []) {
      const row = rows.get(index);
      const shape = row ? row.out_shape.join("×") : "";
      this.layer.append(el("option", { value: index }, row ? `${index} · ${row.type} → ${shape}` : index));
    }
    if ([...this.layer.options].some((o) => o.value === wanted)) this.layer.value = wanted;
  }

  async ask() {
    const kind = this.kind.value;
    const body = { kind };
    if (LAYER_KINDS.includes(kind)) {
      if (!this.layer.value) { this.note.textContent = "This net has no layer for that question."; return; }
      body.layer = /^\d+$/.test(this.layer.value) ? Number(this.layer.value) : this.layer.value;
    } else if (kind === "custom") {
      body.question = this.customText.value;
      body.options = [...this.customOptions.querySelectorAll("input[type=text]")].map((i) => i.value);
      const boxes = [...this.customOptions.querySelectorAll(".poll-right-box")];
      const right = boxes.findIndex((box) => box.checked);
      if (right >= 0) body.answer = right;
    }
    this.note.textContent = "Asking…";
    try {
      const poll = await api("/api/poll", { method: "POST", json: body });
      this.note.textContent = "";
      this.show(poll);
    } catch (err) {
      this.note.textContent = err.detail;
    }
  }
}
