// Entry point: loads the state and history, opens the one event stream of this tab and hands
// each event to its panel. Presenter panels exist only when the page was rendered for the
// presenter (the template leaves them out for viewers; the server checks every request too).

import { api } from "./api.js";
import { Stream } from "./stream.js";
import { Charts } from "./charts.js";
import { NetView } from "./netview.js";
import { renderGallery } from "./gallery.js";
import { Upload } from "./upload.js";
import { Log, Stats } from "./stats.js";
import { setConnection, setJoinUrl, setupHeader } from "./header.js";
import { ArchViewer } from "./summary.js";
import { Controls } from "./controls.js";
import { Editor } from "./editor.js";
import { debounce, labelName } from "./format.js";

const $ = (id) => document.getElementById(id);
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
const upload = new Upload($("upload"), app);
const controls = presenter && $("controls") ? new Controls($("controls"), app) : null;
const arch = presenter ? new Editor($("arch"), app) : new ArchViewer($("arch"), app);
const notice = $("notice");

setupHeader(() => { charts.build(); });
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
  if (controls) {
    controls.setOptimizers(state.optimizers);
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
  arch.setNet(net);
  renderFrame();
  upload.render();  // an earlier upload's pictures belong to the previous net: say so
}

function onMetrics(metrics) {
  stats.update(metrics);
  if (metrics.status) app.setStatus(metrics.status);
  if (controls && metrics.batch_size !== undefined && metrics.lr !== undefined) {
    // settings may change by schedule or by another presenter tab: the fields follow
    controls.setSettings({ batch_size: metrics.batch_size });
  }
  app.layerMs = metrics.layer_ms || null;
  netView.renderTimes(app.layerMs);
}

function renderFrame() {
  const frame = app.frame;
  if (document.visibilityState === "hidden") return;  // drawn when the tab is visible again
  const example = frame && frame.example ? {
    image: frame.example.image,
    label: labelName(frame.example.label, app.classes),
    top: (frame.example.top || []).map((t) => ({ ...t, label: labelName(t.label, app.classes) })),
    title: `Test image #${frame.example.index ?? "?"}, step ${frame.step ?? "?"}${frame.pinned ? " (chosen by the presenter)" : ""}`,
  } : null;
  const unpin = $("unpin");
  if (unpin) unpin.hidden = !(frame && frame.pinned);
  const layers = app.summaryLayers();
  const visuals = (frame && frame.layers) || [];
  // a frame of the previous net (the net changed, its first frame is not here yet): no maps
  const matches = visuals.length === layers.length && visuals.every((v, i) => v.type === layers[i].type);
  netView.render({ summaryLayers: layers, visuals: matches ? visuals : [], example: matches ? example : null, layerMs: app.layerMs });
}

function renderGalleryNow() {
  if (document.visibilityState === "hidden") return;
  renderGallery($("gallery"), app.gallery, app.classes, presenter ? showExample : null);
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

async function loadHistory() {
  try {
    charts.replace(await api("/api/history"));
  } catch (err) {
    console.warn("history:", err.detail);
  }
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
  await loadHistory();
  const [frame, gallery] = await Promise.allSettled([api("/api/frame"), api("/api/gallery")]);
  if (frame.status === "fulfilled" && frame.value && frame.value.layers && !app.frame) {
    app.frame = frame.value;
    renderFrame();
  }
  if (gallery.status === "fulfilled" && gallery.value && !app.gallery) {
    app.gallery = gallery.value;
    renderGalleryNow();
  }
}

const refreshSettings = debounce(async () => {
  try { controls.setSettings((await api("/api/state")).settings); } catch { /* next time */ }
}, 500);

const handlers = {
  metrics: onMetrics,
  history: (event) => { if (!charts.merge(event)) loadHistory(); },
  frame: (frame) => { if (frame && frame.layers) { app.frame = frame; renderFrame(); } },
  gallery: (gallery) => { if (gallery && gallery.items) { app.gallery = gallery; renderGalleryNow(); } },
  net: (net) => {
    if (!net || !net.summary) return;
    setNet(net);
    if (controls) refreshSettings();  // a preset brings its own training defaults
  },
  log: (entry) => {
    log.add(entry);
    if (controls) refreshSettings();  // a change from another presenter tab shows here too
  },
  state: (state) => {
    app.setStatus(state && state.status);
    if (state && state.settings && controls) controls.setSettings(state.settings);
  },
};

const stream = new Stream("/api/stream", Object.keys(handlers), {
  onEvent: (kind, data) => handlers[kind](data),
  onConnection: (info) => {
    setConnection($("conn-badge"), info);
    if (info.state === "open" && !app.loaded) loadAll();
  },
  onReconnect: () => loadAll(),  // missed events: refetch the state and the whole history
});

renderGallery($("gallery"), null, []);
if ($("unpin")) $("unpin").addEventListener("click", () => showExample(null));
loadAll();
stream.start();
