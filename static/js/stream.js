// One EventSource per tab on /api/stream, every event kind multiplexed on it. A browser
// retries by itself after a network error, but gives up for good when the server answers
// anything but 200 (503 while starting, 404 behind a proxy...): then readyState is CLOSED and
// we re-create the EventSource ourselves with backoff 1 s, 2 s, 4 s ... 30 s.
//
// The tab asks only for what it shows (its "wish": kinds, each with the least seconds between
// two events, e.g. "state,net,log,metrics:5"): in the URL when it connects, and with a small
// PUT /api/stream/{id} when the wish changes (a panel scrolls into view), so the stream keeps
// its place. The id comes in the stream's first event, `hello`; a browser's own reconnect
// reuses the first URL, so every hello is checked against the current wish.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
// The server sends a ping event every 15 s even when nothing else happens. Silence this long
// means a half-open connection (Wi-Fi dropped, laptop slept) that the browser still calls
// OPEN: drop it and connect again.
const SILENCE_MS = 40000;
// Panels scroll in and out quickly: one PUT for the wish they settle on.
const WISH_DELAY_MS = 300;
const WISH_RETRY_MS = 5000;

export class Stream {
  // kinds: event names to listen to; onEvent(kind, data); onConnection({state, retryIn}),
  // state "connecting" | "open" | "reconnecting"; onReconnect() after a re-opened connection.
  constructor(url, kinds, { onEvent, onConnection, onReconnect, wish = null }) {
    this.url = url;
    this.kinds = kinds;
    this.wish = wish;        // null: every kind
    this.id = null;          // of the open stream, from its hello event
    this.granted = null;     // the subscription the server confirmed for that stream
    this.wishTimer = null;
    this.sending = null;
    this.onEvent = onEvent;
    this.onConnection = onConnection;
    this.onReconnect = onReconnect;
    this.source = null;
    this.delay = MIN_DELAY_MS;
    this.timer = null;
    this.countdown = null;
    this.everOpened = false;
    this.lostSinceOpen = false;
    this.lastHeard = Date.now();
  }

  start() {
    this.open();
    setInterval(() => this.checkSilence(), 5000);
    // a phone waking up, or a laptop resuming: try at once instead of waiting out the backoff
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") { this.checkSilence(); this.retryNow(); }
    });
  }

  checkSilence() {
    const source = this.source;
    if (!source || source.readyState !== EventSource.OPEN) return;
    if (Date.now() - this.lastHeard < SILENCE_MS) return;
    source.close();
    this.lostSinceOpen = true;
    this.scheduleReconnect();
  }

  retryNow() {
    if (this.source && this.source.readyState !== EventSource.CLOSED) return;
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.open();
  }

  open() {
    clearInterval(this.countdown);
    this.onConnection({ state: this.everOpened ? "reconnecting" : "connecting", retryIn: 0 });
    const url = this.wish === null ? this.url : `${this.url}?events=${encodeURIComponent(this.wish)}`;
    const source = new EventSource(url);
    this.source = source;
    this.id = null;
    source.addEventListener("ping", () => { this.lastHeard = Date.now(); });
    source.addEventListener("hello", (event) => {
      this.lastHeard = Date.now();
      try {
        const hello = JSON.parse(event.data);
        this.id = hello.id;
        this.granted = hello.events;
      } catch { return; }
      this.sendWish();
    });
    source.onopen = () => {
      this.lastHeard = Date.now();
      this.delay = MIN_DELAY_MS;
      this.onConnection({ state: "open" });
      if (this.everOpened && this.lostSinceOpen) this.onReconnect();
      this.everOpened = true;
      this.lostSinceOpen = false;
    };
    source.onerror = () => {
      this.lostSinceOpen = true;
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        this.scheduleReconnect();
      } else {
        this.onConnection({ state: "reconnecting", retryIn: 0 });  // the browser retries itself
      }
    };
    for (const kind of this.kinds) {
      source.addEventListener(kind, (event) => {
        this.lastHeard = Date.now();
        let data;
        try {
          data = JSON.parse(event.data);
        } catch (err) {
          console.warn(`stream: unreadable ${kind} event`, err);
          return;
        }
        this.onEvent(kind, data);
      });
    }
  }

  // A new wish (same syntax as the server's ?events=); sent once it has held WISH_DELAY_MS.
  setWish(wish) {
    if (wish === this.wish) return;
    this.wish = wish;
    clearTimeout(this.wishTimer);
    this.wishTimer = setTimeout(() => { this.wishTimer = null; this.sendWish(); }, WISH_DELAY_MS);
  }

  // At most one PUT in flight; whatever the wish is when it returns is checked again.
  async sendWish() {
    if (this.sending || !this.id || this.wish === null || this.wish === this.granted) return;
    const id = this.id;
    const wish = this.wish;
    this.sending = fetch(`${this.url}/${encodeURIComponent(id)}`, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ events: wish }),
    }).then(async (response) => {
      // 404: that stream has closed; the next one's hello starts over with the current wish
      if (response.ok && this.id === id) this.granted = (await response.json()).events;
      else if (response.status !== 404) this.retryWish();  // busy (429, 503): a bit later
    }).catch(() => { /* offline: the reconnect's URL carries the wish */ });
    await this.sending;
    this.sending = null;
    if (this.id === id && this.granted === wish) this.sendWish();
  }

  retryWish() {
    clearTimeout(this.wishTimer);
    this.wishTimer = setTimeout(() => { this.wishTimer = null; this.sendWish(); }, WISH_RETRY_MS);
  }

  scheduleReconnect() {
    const wait = this.delay * (0.8 + 0.4 * Math.random());  // jitter: 300 phones, not in step
    this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
    const due = Date.now() + wait;
    const tick = () => this.onConnection({
      state: "reconnecting", retryIn: Math.max(0, Math.ceil((due - Date.now()) / 1000)) });
    tick();
    clearInterval(this.countdown);
    this.countdown = setInterval(tick, 1000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, wait);
  }
}
