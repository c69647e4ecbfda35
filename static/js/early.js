// Runs before the first paint (a classic script in <head>, no inline script needed): applies
// projector mode (large type, and the stats, charts, network strip and predictions on one
// screen) before app.js starts, so the page does not jump. ?projector=1 (or 0) in the address
// decides for this page; otherwise the toggle's remembered choice does.
try {
  const asked = new URLSearchParams(window.location.search).get("projector");
  const on = asked !== null ? !["0", "false", "off", "no"].includes(asked)
    : localStorage.getItem("convnet.projector") === "1";
  if (on) document.documentElement.classList.add("projector", "large");
} catch (e) { /* storage blocked: normal layout */ }
