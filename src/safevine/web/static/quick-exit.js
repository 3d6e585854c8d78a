// Quick exit: one click, or Shift pressed three times, hides the page at once and
// replaces this history entry with /exit, which clears site data and redirects to a
// neutral site. Without JavaScript the button is a plain link to /exit.
(function () {
  "use strict";
  var PRESSES = 3;
  var WINDOW_MS = 3000;
  var presses = [];

  function leave(event) {
    if (event) { event.preventDefault(); }
    document.documentElement.classList.add("exiting");
    if (document.body) { document.body.hidden = true; }
    document.title = "";
    window.location.replace("/exit");
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Shift") { presses = []; return; }
    if (event.repeat) { return; }
    var now = Date.now();
    presses = presses.filter(function (t) { return now - t < WINDOW_MS; });
    presses.push(now);
    if (presses.length >= PRESSES) { leave(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("quick-exit");
    if (button) { button.addEventListener("click", leave); }
  });

  // A page restored from the back-forward cache must not show earlier results.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("[data-sensitive]").forEach(function (el) { el.remove(); });
    document.querySelectorAll("form").forEach(function (form) { form.reset(); });
    document.querySelectorAll("input:not([type=hidden])").forEach(function (input) { input.value = ""; });
  });
})();
