// One EventSource per tab on /api/stream, every event kind multiplexed on it. A browser
// retries by itself after a network error, but gives up for good when the server answers
// anything but 200 (503 while starting, 404 behind a proxy...): then readyState is CLOSED and
// we re-create the EventSource ourselves with backoff 1 s, 2 s, 4 s ... 30 s.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
// The server sends a ping event every 15 s even when nothing else happens. Silence this long
// means a half-open connection (Wi-Fi dropped, laptop slept) that the browser still calls
// OPEN: drop it and connect again.
const SILENCE_MS = 40000;

export class Stream {
  // kinds: event names to listen to; onEvent(kind, data); onConnection({state, retryIn}),
  // state "connecting" | "open" | "reconnecting"; onReconnect() after a re-opened connection.
  constructor(url, kinds, { onEvent, onConnection, onReconnect }) {
    this.url = url;
    this.kinds = kinds;
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
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("ping", () => { this.lastHeard = Date.now(); });
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
