// Runs before the first paint (a classic script in <head>, no inline script needed): applies
// the remembered "large type" mode so the page does not jump when app.js starts.
try {
  if (localStorage.getItem("convnet.largeType") === "1") {
    document.documentElement.classList.add("large");
  }
} catch (e) { /* storage blocked: normal type */ }
