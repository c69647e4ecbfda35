// Entry point: loads the state and history, opens the one event stream of this tab and hands
// each event to its panel. Presenter panels exist only when the page was rendered for the
// presenter (the template leaves them out for viewers; the server checks every request too).
//
// The page runs for an hour on a phone: nothing it keeps grows with time (charts and markers
// are bounded, the log keeps 60 lines), it asks the stream only for what is in view
// (wishes.js), and it refetches nothing per event: /api/history at most once per
// REFETCH_GAP_MS when it missed a history event, /api/state only on (re)connecting.

import { api } from "./api.js";
import { Stream } from "./stream.js";
import { Charts } from "./charts.js";
import { NetView } from "./netview.js";
import { NetStrip } from "./strip.js";
import { renderGallery } from "./gallery.js";
import { Upload } from "./upload.js";
import { Log, Stats } from "./stats.js";
import { setConnection, setJoinUrl, setupHeader } from "./header.js";
import { ResumeOffer } from "./resume.js";
import { ArchViewer } from "./summary.js";
import { Controls } from "./controls.js";
import { Editor } from "./editor.js";
import { labelName } from "./format.js";
import { watchWish } from "./wishes.js";
import { Scrubber } from "./scrubber.js";
import { Runs } from "./runs.js";
import { Race } from "./race.js";
import { Explorer } from "./explorer.js";
import { Challenge } from "./challenge.js";
import { Polls } from "./poll.js";

const $ = (id) => document.getElementById(id);
const REFETCH_GAP_MS = 5000;  // at most one /api/history (or /api/gallery) per this
const MAX_GALLERY_IMAGES = 500;  // test images kept for gallery events (they carry none)
const presenter = document.body.dataset.role === "presenter";

const app = {
  status: null,
  net: null,
  classes: [],
  imageSize: [32, 32],
  runId: null,
  limits: {},
  optimizers: null,
  layerMs: null,
  frame: null,
  gallery: null,
  pastFrame: null,    // while the scrubber looks back: the checkpoint's frame and gallery
  pastGallery: null,
  loaded: false,
  summaryLayers() { return (this.net && this.net.summary && this.net.summary.layers) || []; },
  setStatus(status) {
    if (!status) return;
    if (status === "error" && this.status !== "error" && this.loaded) loadAll();  // for its message
    this.status = status;
    stats.setStatus(status);
    if (controls) controls.setStatus(status);
  },
};

const stats = new Stats($("stats"));
const log = new Log($("log"));
const charts = new Charts({ lossEl: $("loss-chart"), accEl: $("acc-chart"), slider: $("smoothing"), sliderOut: $("smoothing-value"), logToggle: $("log-loss") });
const netView = new NetView($("netview"));
const scrubber = new Scrubber($("scrubber"), {
  onView: ({ frame, gallery }) => {
    if (frame) { app.pastFrame = frame; renderFrame(); }
    if (gallery) { app.pastGallery = gallery; renderGalleryNow(); }
  },
  onLive: () => { app.pastFrame = null; app.pastGallery = null; renderFrame(); renderGalleryNow(); },
  onMark: (checkpoint) => { charts.setScrub(checkpoint); runs.setForkPoint(checkpoint); },
});
// another run became the active one: its state, history and checkpoints are another run's
const runs = new Runs($("runs"), app, { charts, presenter, scrubber, onActiveChange: () => { scrubber.forget(); loadAll(); } });
const race = new Race($("race"), { presenter });
// projector mode on a wide screen shows the network as a strip (strip.css): only it is drawn
const strip = new NetStrip($("netstrip"));
const wideScreen = window.matchMedia("(min-width: 1001px)");
const stripShown = () => document.documentElement.classList.contains("projector") && wideScreen.matches;
const upload = new Upload($("upload"), app);
const challenge = new Challenge($("challenge"), { presenter });
const controls = presenter && $("controls") ? new Controls($("controls"), app) : null;
const arch = presenter ? new Editor($("arch"), app) : new ArchViewer($("arch"), app);
const resumeOffer = presenter && $("resume-offer") ? new ResumeOffer($("resume-offer"), () => loadAll()) : null;
const notice = $("notice");
const polls = new Polls(presenter ? $("poll-form") : null, app, { presenter });
new Explorer($("explorer"));  // arithmetic only: no state, no stream events

setupHeader(() => { charts.build(); renderFrame(); });
wideScreen.addEventListener("change", () => renderFrame());
setJoinUrl(document.body.dataset.joinUrl);

function showNotice(text) {
  notice.hidden = !text;
  notice.textContent = text || "";
}

function applyState(state) {
  app.classes = state.classes || app.classes;
  app.limits = state.limits || app.limits;
  app.optimizers = state.optimizers || null;
  if (app.runId && state.run_id && state.run_id !== app.runId) {
    // the server restarted: the old run's frame, gallery and figures must not linger
    app.frame = null;
    app.gallery = null;
    galleryImages.clear();
    stats.reset();
    renderFrame();
    renderGalleryNow();
  }
  app.runId = state.run_id || app.runId;
  if (Array.isArray(state.image_size)) {
    app.imageSize = state.image_size;
    const [h, w] = state.image_size;
    document.querySelectorAll(".input-size").forEach((node) => { node.textContent = `${w}×${h}`; });
  }
  if (state.data_title) {
    $("data-title").textContent = `· ${state.data_title}`;
    document.title = `ConvNet live · ${state.data_title}`;
  }
  $("join-hint").hidden = !state.join_local_only;
  setJoinUrl(state.join_url);
  showNotice("");
  if (state.error) {
    showNotice(`The server could not start training: ${state.error}`);
  } else if (presenter && state.role && state.role !== "presenter") {
    showNotice("This page was opened as the presenter, but the server no longer accepts this browser's presenter cookie: use “Presenter login” again (reload the page).");
  }
  arch.setPresets(state.presets || []);
  if (resumeOffer) resumeOffer.set(state.resumable);
  runs.setSettings(state.settings, state.optimizers);
  race.setSettings(state.settings);
  if (controls) {
    controls.setOptimizers(state.optimizers);
    controls.setSchedules(state.schedules);
    controls.setPretrained(state.pretrained);
    controls.setSettings(state.settings);
  }
  upload.updateHint();
  if (state.net) setNet(state.net);
  if (state.metrics) onMetrics(state.metrics);
  app.setStatus(state.status || (state.metrics && state.metrics.status));
}

function setNet(net) {
  app.net = net;
  polls.setNet(net);
  arch.setNet(net);
  renderFrame();
  upload.render();  // an earlier upload's pictures belong to the previous net: say so
}

function onMetrics(metrics) {
  stats.update(metrics);
  if (metrics.status) app.setStatus(metrics.status);
  if (controls) {
    controls.setMetrics(metrics);
    // another presenter tab may change the batch size: the field follows (unless in use)
    if (metrics.batch_size !== undefined) controls.setSettings({ batch_size: metrics.batch_size });
  }
  app.layerMs = metrics.layer_ms || null;
  netView.renderTimes(app.layerMs);
}

function renderFrame() {
  const frame = app.pastFrame || app.frame;
  if (document.visibilityState === "hidden") return;  // drawn when the tab is visible again
  const when = app.pastFrame ? " (looking back: the weights of that checkpoint)" : frame && frame.pinned ? " (chosen by the presenter)" : "";
  const example = frame && frame.example ? {
    image: frame.example.image,
    label: labelName(frame.example.label, app.classes),
    top: (frame.example.top || []).map((t) => ({ ...t, label: labelName(t.label, app.classes) })),
    title: `Test image #${frame.example.index ?? "?"}, step ${frame.step ?? "?"}${when}`,
    index: frame.example.index,
    step: frame.step,
  } : null;
  const unpin = $("unpin");
  if (unpin) unpin.hidden = !(frame && frame.pinned);
  const layers = app.summaryLayers();
  const visuals = (frame && frame.layers) || [];
  // a frame of the previous net (the net changed, its first frame is not here yet): no maps
  const matches = visuals.length === layers.length && visuals.every((v, i) => v.type === layers[i].type);
  const view = { summaryLayers: layers, visuals: matches ? visuals : [], example: matches ? example : null, layerMs: app.layerMs };
  if (stripShown()) strip.render(view); else netView.render(view);
}

function renderGalleryNow() {
  if (document.visibilityState === "hidden") return;
  renderGallery($("gallery"), app.pastGallery || app.gallery, app.classes, presenter ? showExample : null);
}

// Gallery events leave out the test images (the same ones all run long): they come once
// from the JSON twin, /api/gallery, and are kept here by test-set index.
const galleryImages = new Map();
let galleryFetch = null;

function keepImages(gallery) {
  for (const item of (gallery && gallery.items) || []) {
    if (item.image) galleryImages.set(item.index, item.image);
  }
  if (galleryImages.size > MAX_GALLERY_IMAGES) galleryImages.clear();
}

function onGallery(gallery) {
  keepImages(gallery);
  const items = gallery.items.map((item) => (item.image ? item : { ...item, image: galleryImages.get(item.index) }));
  app.gallery = { ...gallery, items };
  renderGalleryNow();
  if (items.some((item) => !item.image) && !galleryFetch) {
    galleryFetch = api("/api/gallery").then((full) => {
      keepImages(full);
      if (app.gallery) onGallery(app.gallery);
    }).catch((err) => console.warn("gallery:", err.detail))
      .finally(() => { setTimeout(() => { galleryFetch = null; }, REFETCH_GAP_MS); });
  }
}

// Presenter: pin everyone's network view to a test image (null: one image per class again).
async function showExample(index) {
  try {
    const result = await api("/api/example", { method: "PUT", json: { index } });
    if (result && result.frame) { app.frame = result.frame; renderFrame(); }
    if (index !== null) $("net-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    showNotice(`Could not change the example: ${err.detail}`);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") { renderFrame(); renderGalleryNow(); }
});

// The whole history: on (re)connecting, and when a history event cannot be merged (this tab
// missed one: a slow client keeps only the latest). One fetch at a time, and a missed event
// waits until REFETCH_GAP_MS after the last one started: a slow phone that misses every
// other event must not download the whole history every second.
let historyFetch = null;
let historyTimer = null;
let historyStarted = -Infinity;

function loadHistory({ soon = false } = {}) {
  if (historyFetch) return historyFetch;
  if (soon) {
    if (historyTimer) return null;
    const wait = historyStarted + REFETCH_GAP_MS - Date.now();
    if (wait > 0) {
      historyTimer = setTimeout(() => { historyTimer = null; loadHistory(); }, wait);
      return null;
    }
  }
  clearTimeout(historyTimer);
  historyTimer = null;
  historyStarted = Date.now();
  historyFetch = api("/api/history").then((history) => { charts.replace(history); scrubber.setLatest(charts.latestStep()); })
    .catch((err) => console.warn("history:", err.detail))
    .finally(() => { historyFetch = null; });
  return historyFetch;
}

let loading = null;
function loadAll() {
  loading = loading || fetchAll().finally(() => { loading = null; });
  return loading;
}

async function fetchAll() {
  try {
    applyState(await api("/api/state"));
    app.loaded = true;
  } catch (err) {
    showNotice(`Could not load the state: ${err.detail}`);
    return;
  }
  // The frame and the gallery come on the stream once their panels are in view.
  await Promise.all([loadHistory(), runs.load()]);
  if (runs.listing) race.render(runs.listing.race, runs.listing.active);
}

const handlers = {
  metrics: onMetrics,
  markers: (event) => { if (event && Array.isArray(event.markers)) charts.setMarkers(event.markers); },
  history: (event) => {
    // while a fetch is on its way, it brings what this event would
    if (event && event.reset) scrubber.forget();
    if (!charts.merge(event) && !historyFetch) loadHistory({ soon: true });
    scrubber.setLatest(charts.latestStep());
  },
  frame: (frame) => { if (frame && frame.layers) { app.frame = frame; renderFrame(); } },
  gallery: (gallery) => { if (gallery && gallery.items) onGallery(gallery); },
  net: (net) => { if (net && net.summary) setNet(net); },
  log: (entry) => log.add(entry),
  runs: (event) => {
    if (!event) return;
    runs.apply(event, event.points);
    if (runs.listing) race.render(runs.listing.race, runs.listing.active);  // the newest listing
  },
  leaderboard: (board) => challenge.setBoard(board),
  poll: (poll) => polls.show(poll),
  // status changes, and the settings whenever they change (a preset's training defaults,
  // another presenter tab's edit): the controls follow without asking for /api/state
  state: (state) => {
    app.setStatus(state && state.status);
    if (state && state.settings && controls) controls.setSettings(state.settings);
    if (state && state.settings) { runs.setSettings(state.settings, app.optimizers); race.setSettings(state.settings); }
    if (state && "resumable" in state && resumeOffer) resumeOffer.set(state.resumable);
  },
};

// The status pill says "disconnected" while the stream is down or requests cannot reach the
// server (api.js tells), and the real status again once the stream is back.
let streamLost = false;
let requestsFailing = false;
function showConnected() { stats.setConnected(!streamLost && !requestsFailing); }
window.addEventListener("convnet:reach", (event) => {
  requestsFailing = !event.detail.reached;
  showConnected();
});

const wish = watchWish({ presenter, onChange: (next) => stream.setWish(next) });
const stream = new Stream("/api/stream", Object.keys(handlers), {
  wish,
  onEvent: (kind, data) => handlers[kind](data),
  onConnection: (info) => {
    setConnection($("conn-badge"), info);
    streamLost = info.state === "reconnecting";
    if (info.state === "open") requestsFailing = false;
    showConnected();
    if (info.state === "open" && !app.loaded) loadAll();
  },
  onReconnect: () => loadAll(),  // missed events: refetch the state and the whole history
});

renderGallery($("gallery"), null, []);
if ($("unpin")) $("unpin").addEventListener("click", () => showExample(null));
loadAll();
polls.load();
stream.start();
