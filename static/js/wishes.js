// What this tab asks the stream for, from what it shows: 300 phones share one access point,
// and a frame of the network view is ~90 kB. Panels in view (or about to be) get their events;
// the rest do not; a hidden tab hears only what changes the run (state, net, log).
//
// The text is the server's subscription syntax in its canonical form (kinds in the server's
// order, seconds only where set), so the server's confirmation compares equal to it.
// server/measure.py measures the same two wishes (VIEWER_TOP, VIEWER_ALL); the browser tests
// check that this page asks for exactly those.

const ORDER = ["state", "net", "log", "markers", "history", "metrics", "frame", "gallery", "runs",
  "poll", "leaderboard"];
// A viewer's network view: a new picture every 10 s is live enough; the presenter (on the
// projector, explaining it) gets every frame.
const VIEWER_FRAME_S = 10;
// The figures twice a second on a viewer's screen (the server has four a second: the
// presenter's); every 5 s while only the status pill shows them.
const VIEWER_METRICS_S = 0.5;
const BACKGROUND_METRICS_S = 5;
const PANELS = ["stats-panel", "charts-panel", "runs-panel", "net-panel", "gallery-panel",
  "controls-panel", "challenge-panel"];
const MARGIN_PX = 200;  // subscribe a little before a panel scrolls in

export function wishText(rates) {
  return ORDER.filter((kind) => kind in rates)
    .map((kind) => (rates[kind] ? `${kind}:${rates[kind]}` : kind)).join(",");
}

export function wishFor({ shown, presenter, hidden }) {
  if (hidden) return wishText({ state: 0, net: 0, log: 0 });
  const rates = { state: 0, net: 0, log: 0, markers: 0, history: 0 };
  const figures = shown.has("stats-panel") || shown.has("net-panel") || shown.has("controls-panel");
  rates.metrics = !figures ? BACKGROUND_METRICS_S : presenter ? 0 : VIEWER_METRICS_S;
  if (shown.has("net-panel")) rates.frame = presenter ? 0 : VIEWER_FRAME_S;
  if (shown.has("gallery-panel")) rates.gallery = 0;
  // the other runs' points (overlaid on the charts) and the race's table
  if (shown.has("charts-panel") || shown.has("runs-panel")) rates.runs = 0;
  rates.poll = 0;  // a question the presenter opens shows at once, wherever the page is
  if (shown.has("challenge-panel")) rates.leaderboard = 0;
  return wishText(rates);
}

// Calls onChange(wish) whenever the panels in view or the tab's visibility change the wish.
export function watchWish({ presenter, onChange }) {
  const shown = new Set();
  const panels = PANELS.map((id) => document.getElementById(id)).filter(Boolean);
  // The first wish is known before the stream opens: measured here, not by the observer,
  // whose first report comes a frame later.
  for (const panel of panels) {
    const box = panel.getBoundingClientRect();
    if (box.bottom > -MARGIN_PX && box.top < window.innerHeight + MARGIN_PX) shown.add(panel.id);
  }
  const current = () => wishFor({ shown, presenter, hidden: document.visibilityState === "hidden" });
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) shown.add(entry.target.id);
      else shown.delete(entry.target.id);
    }
    onChange(current());
  }, { rootMargin: `${MARGIN_PX}px 0px` });
  panels.forEach((panel) => observer.observe(panel));
  document.addEventListener("visibilitychange", () => onChange(current()));
  return current();
}
