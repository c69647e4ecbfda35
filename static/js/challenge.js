// Beat the network (server/routes/challenge.py): a test image, one button per class, then
// "you: right/wrong · the net said X (p%)" and the next image; beside it the room against
// the net on the same images, overall and per class, live from `leaderboard` events (the
// stream sends them while this panel is on screen: wishes.js).
//
// Everything a viewer typed (nicknames) reaches the DOM as text only (format.js `el` makes
// text nodes), never as HTML. The first image is asked for when the panel first comes near
// the screen, so a page that never scrolls here costs the server nothing.

import { api } from "./api.js";
import { el, int, isNum, pct } from "./format.js";

const NICKNAME_KEY = "convnet-demo-nickname";
const NICKNAME_CHARS = 24;       // server/challenge.py NICKNAME_CHARS
const RETRY_MS = 2000;           // not ready yet, or the net is busy
const GONE = new Set(["no_challenge", "challenge_expired", "already_answered"]);

function storedNickname() {
  try { return localStorage.getItem(NICKNAME_KEY) || ""; } catch { return ""; }
}

function storeNickname(text) {
  try { localStorage.setItem(NICKNAME_KEY, text); } catch { /* private mode */ }
}

// "12 of 30 (40.0%)"
function score(correct, answers) {
  return answers ? `${int(correct)} of ${int(answers)} (${pct(correct / answers)})` : "no answers yet";
}

function bar(kind, accuracy, text) {
  const width = isNum(accuracy) ? `${(100 * accuracy).toFixed(1)}%` : "0%";
  return el("div", { class: `vs-bar vs-${kind}` },
    el("span", { class: "vs-who" }, kind === "room" ? "room" : "net"),
    el("span", { class: "vs-track" }, el("span", { class: "vs-fill", style: { width } })),
    el("span", { class: "vs-value num" }, text));
}

export class Challenge {
  constructor(root, { presenter = false } = {}) {
    this.root = root;
    this.presenter = presenter;
    this.current = null;          // {id, image} waiting for this page's answer
    this.busy = false;
    this.classes = [];
    this.shownBoard = null;       // {since, version} of the board on screen
    this.timer = null;
    this.build();
    const observer = new IntersectionObserver((entries) => {
      if (!entries.some((entry) => entry.isIntersecting)) return;
      observer.disconnect();
      this.next();
      this.loadBoard();
    }, { rootMargin: "200px" });
    observer.observe(root);
  }

  build() {
    this.image = el("img", { class: "challenge-img", alt: "A test image: which class is it?", width: 32, height: 32 });
    this.status = el("p", { class: "challenge-status muted small", role: "status", "aria-live": "polite" }, "Scroll here to play.");
    this.result = el("p", { class: "challenge-result", "aria-live": "polite" });
    this.tally = el("p", { class: "challenge-tally small muted" });
    this.buttons = el("div", { class: "challenge-buttons", role: "group", "aria-label": "Your answer: the image's class" });
    this.nickname = el("input", { id: "challenge-nickname", type: "text", maxlength: String(NICKNAME_CHARS), autocomplete: "nickname", spellcheck: "false", placeholder: "optional" });
    this.nickname.value = storedNickname();
    this.nickname.addEventListener("change", () => storeNickname(this.nickname.value.trim()));
    this.nicknameNote = el("span", { class: "field-note small", role: "alert" });
    this.board = el("div", { class: "vs-board", "aria-live": "off" }, el("p", { class: "muted small" }, "No answers yet."));
    const reset = this.presenter ? el("button", { type: "button", class: "btn small", onclick: () => this.reset() }, "Start the leaderboard over") : null;
    this.resetNote = el("span", { class: "small muted" });
    this.root.replaceChildren(el("div", { class: "challenge-grid" },
      el("div", { class: "challenge-play" },
        el("div", { class: "challenge-picture" }, this.image),
        this.status,
        this.buttons,
        this.result,
        this.tally,
        el("p", { class: "challenge-nick small" },
          el("label", { for: "challenge-nickname" }, "Nickname for the leaderboard "), this.nickname, " ", this.nicknameNote)),
      el("div", { class: "challenge-board" },
        el("h3", {}, "The room against the net"),
        this.board,
        reset ? el("p", {}, reset, " ", this.resetNote) : null)));
  }

  setClasses(classes) {
    if (!Array.isArray(classes) || classes.join("\n") === this.classes.join("\n")) return;
    this.classes = classes.slice();
    this.buttons.replaceChildren(...this.classes.map((name) => el("button", {
      type: "button", class: "btn challenge-choice", "data-label": name,
      onclick: () => this.answer(name),
    }, name)));
    this.enable(!!this.current && !this.busy);
  }

  enable(on) {
    for (const button of this.buttons.children) button.disabled = !on;
  }

  later(fn, ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(fn, ms);
  }

  async next(focusLabel = null) {
    this.current = null;
    this.enable(false);
    try {
      const round = await api("/api/challenge");
      this.setClasses(round.classes);
      this.current = { id: round.id };
      this.image.src = round.image;
      this.status.textContent = "Which class is it?";
      this.enable(true);
      // a keyboard player keeps their place: disabling the button they pressed lost focus
      if (focusLabel !== null) {
        const button = [...this.buttons.children].find((b) => b.dataset.label === focusLabel);
        if (button) button.focus();
      }
    } catch (err) {
      this.status.textContent = `No image yet: ${err.detail}`;
      this.later(() => this.next(), err.retryAfter ? 1000 * err.retryAfter : RETRY_MS);
    }
  }

  async answer(label) {
    if (this.busy || !this.current) return;
    this.busy = true;
    const hadFocus = this.buttons.contains(document.activeElement);
    this.enable(false);
    const nickname = this.nickname.value.trim();
    const body = { id: this.current.id, label };
    if (nickname) body.nickname = nickname;
    this.nicknameNote.textContent = "";
    let retry = false;
    try {
      const verdict = await api("/api/challenge", { method: "POST", json: body });
      storeNickname(nickname);
      this.showVerdict(verdict, this.image.src);
    } catch (err) {
      if (err.field === "nickname") {
        this.nicknameNote.textContent = err.detail;
        retry = true;                    // the image is still this page's to answer
      } else if (GONE.has(err.code)) {
        this.status.textContent = "That image expired; here is another.";
      } else {
        this.status.textContent = `Not counted: ${err.detail}`;
        retry = err.status === 429 || err.status === 503 || err.code === "not_finite";
      }
    } finally {
      this.busy = false;
    }
    if (retry) this.enable(true); else this.next(hadFocus ? label : null);
  }

  showVerdict(verdict, picture) {
    const net = verdict.net || {};
    const you = verdict.correct ? "right" : `wrong (it was ${verdict.label})`;
    const netText = `the net said ${net.label} (${pct(net.p, 0)})`;
    this.result.replaceChildren(
      el("img", { class: "challenge-thumb", src: picture, alt: `the image you answered: ${verdict.label}` }),
      el("span", { class: verdict.correct ? "you right" : "you wrong" }, `you: ${you}`),
      " · ",
      el("span", { class: net.correct ? "net right" : "net wrong" }, netText));
    const mine = verdict.you;
    if (mine) {
      this.tally.textContent = `You so far: ${score(mine.correct, mine.answers)}; the net on your images: ${score(mine.net_correct, mine.answers)}.`;
    }
  }

  async loadBoard() {
    try {
      this.setBoard(await api("/api/leaderboard"));
    } catch (err) {
      this.later(() => this.loadBoard(), RETRY_MS);
    }
  }

  async reset() {
    try {
      this.setBoard(await api("/api/leaderboard", { method: "DELETE" }));
      this.resetNote.textContent = "";
    } catch (err) {
      this.resetNote.textContent = err.detail;
    }
  }

  // A board from the stream or the JSON twin; an older one of the same board is skipped (a
  // fetch may answer after a newer event).
  setBoard(board) {
    if (!board || !Array.isArray(board.per_class)) return;
    const since = board.covers && board.covers.since;
    const shown = this.shownBoard;
    if (shown && shown.since === since && shown.version > board.version) return;
    this.shownBoard = { since, version: board.version };
    this.setClasses(board.classes);
    this.board.replaceChildren(
      el("p", { class: "vs-covers small muted" }, coversText(board)),
      el("div", { class: "vs-overall" },
        bar("room", board.room.accuracy, score(board.room.correct, board.answers)),
        bar("net", board.net.accuracy, score(board.net.correct, board.answers))),
      el("p", { class: "vs-verdict" }, verdictText(board)),
      el("div", { class: "vs-classes" }, board.per_class.map((row) => el("div", { class: "vs-class", "data-label": row.label },
        el("span", { class: "vs-label", title: row.label }, row.label),
        el("span", { class: "vs-pair" },
          bar("room", row.room_accuracy, row.answers ? pct(row.room_accuracy, 0) : "–"),
          bar("net", row.net_accuracy, row.answers ? pct(row.net_accuracy, 0) : "–")),
        el("span", { class: "vs-count small muted num" }, int(row.answers))))),
      topList(board.top));
  }
}

function coversText(board) {
  const c = board.covers || {};
  const steps = isNum(c.first_step) ? (c.first_step === c.last_step ? `at step ${int(c.first_step)}` : `from step ${int(c.first_step)} to ${int(c.last_step)}`) : `since step ${int(c.from_step)}`;
  const mixed = c.nets > 1 ? ` · ${c.nets} different nets (the presenter can start the board over)` : "";
  return `${int(board.answers)} answer${board.answers === 1 ? "" : "s"} · the net ${c.net || "?"} (${c.run || "?"}), ${steps}${mixed}`;
}

function verdictText(board) {
  if (!board.answers) return "Answer a few images: the room's score and the net's on the same images show here.";
  const room = board.room.correct, net = board.net.correct;
  if (room > net) return `The room is ahead by ${int(room - net)}.`;
  if (net > room) return `The net is ahead by ${int(net - room)}.`;
  return "A tie.";
}

function topList(top) {
  if (!Array.isArray(top) || !top.length) return el("p", { class: "small muted" }, "Give a nickname to appear among the best players.");
  return el("ol", { class: "vs-top" }, top.map((p) => el("li", {},
    el("span", { class: "vs-nick" }, p.nickname),
    el("span", { class: "small num" }, ` ${p.beat_by >= 0 ? "+" : "−"}${int(Math.abs(p.beat_by))} vs the net · ${int(p.correct)} of ${int(p.answers)} right`))));
}
