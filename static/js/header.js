// The top bar: connection badge, join address with its QR code, and the projector toggle.

import qrcode from "../vendor/qrcode-generator/qrcode.mjs";
import { followScroll } from "./scrollcue.js";

export function setConnection(badge, { state, retryIn }) {
  if (state === "open") {
    badge.hidden = true;
    document.body.classList.remove("offline");
    return;
  }
  badge.hidden = false;
  if (state === "connecting") {
    badge.textContent = "connecting…";
    badge.className = "pill conn connecting";
    return;
  }
  document.body.classList.add("offline");
  badge.className = "pill conn lost";
  badge.textContent = retryIn ? `disconnected — reconnecting in ${retryIn} s` : "disconnected — reconnecting…";
}

function qrSvg(text, altId) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const alt = altId ? { text: `QR code of ${text}`, id: altId } : undefined;
  return qr.createSvgTag({ cellSize: 4, margin: 2, scalable: true, alt });
}

export function setJoinUrl(url) {
  if (!url) return;
  const link = document.getElementById("join-url");
  link.href = url;
  link.textContent = url.replace(/^https?:\/\//, "").replace(/\/$/, "");
  const button = document.getElementById("qr-button");
  const big = document.getElementById("qr-large");
  try {
    // generated SVG markup; the only text in it is the escaped alt
    button.innerHTML = qrSvg(url, null);
    big.innerHTML = qrSvg(url, "qr-large-alt");
  } catch (err) {
    console.warn("QR code:", err);
    button.hidden = true;
  }
  document.querySelector(".qr-dialog .join-big").textContent = url;
}

// The projector toggle: large type and the one-screen layout (app.css, html.projector). The
// choice is remembered; a ?projector= in the address is dropped once the toggle decides.
export function setupHeader(onProjector) {
  followScroll(document.querySelector("nav.jump"));   // a phone's section links run off screen
  const dialog = document.getElementById("qr-dialog");
  document.getElementById("qr-button").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
  const toggle = document.getElementById("projector-toggle");
  const root = document.documentElement;
  toggle.setAttribute("aria-pressed", String(root.classList.contains("projector")));
  toggle.addEventListener("click", () => {
    const on = !root.classList.contains("projector");
    root.classList.toggle("projector", on);
    root.classList.toggle("large", on);
    toggle.setAttribute("aria-pressed", String(on));
    try { localStorage.setItem("convnet.projector", on ? "1" : "0"); } catch { /* blocked */ }
    const url = new URL(window.location.href);
    if (url.searchParams.has("projector")) {
      url.searchParams.delete("projector");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    onProjector(on);
  });
}
