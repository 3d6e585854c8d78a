// Quick exit: one click, or Shift pressed three times, hides the page at once and
// replaces this history entry with /exit, which clears site data and redirects to a
// neutral site. Without JavaScript the button is a plain link to /exit.
//
// And a whole visit takes one history entry: a link or a form within the site replaces
// the current entry instead of adding one (a form is sent with fetch and its answer put in
// place of this page), so after the exit, Back leads to the page before the visit, never
// to a page of this site. Without JavaScript each page adds its entry, as the
// browse-safely page says.
(function () {
  "use strict";
  var PRESSES = 3;
  var WINDOW_MS = 3000;
  var presses = [];

  // On the window, not in this script's closure: a page put in place by an answer runs
  // this script again, and an answer sent from an earlier page must see the exit too.
  function leaving() { return window.safevineLeaving === true; }

  function leave(event) {
    if (event) { event.preventDefault(); }
    window.safevineLeaving = true;
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

  function ours(url) {
    return url.origin === window.location.origin && url.pathname !== "/exit";
  }

  function show(html, url) {
    // The exit wins: a page arriving after it must not cancel the way out.
    if (leaving()) { return; }
    window.history.replaceState(null, "", url);
    document.open();
    document.write(html);
    document.close();
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) { return; }
    var link = event.target.closest ? event.target.closest("a[href]") : null;
    if (!link || link.target || link.hasAttribute("download")) { return; }
    var url = new URL(link.href, window.location.href);
    if (!ours(url) || (url.hash && url.pathname === window.location.pathname)) { return; }
    event.preventDefault();
    window.location.replace(url.href);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !window.fetch) { return; }
    // Attributes, not form.action and form.method: a control named "action" hides those.
    var url = new URL(form.getAttribute("action") || "", window.location.href);
    if (!ours(url)) { return; }
    event.preventDefault();
    var data = new FormData(form, event.submitter || undefined);
    if ((form.getAttribute("method") || "get").toLowerCase() === "get") {
      url.search = new URLSearchParams(data).toString();
      window.location.replace(url.href);
      return;
    }
    window.fetch(url.href, {
      method: "POST",
      body: new URLSearchParams(data),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      return response.text().then(function (html) { show(html, response.url); });
    }).catch(function () {
      // The network failed: send the form the ordinary way (it adds a history entry).
      if (!leaving()) { form.submit(); }
    });
  });

  // A page restored from the back-forward cache must not show earlier results.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    window.safevineLeaving = false;
    document.querySelectorAll("[data-sensitive]").forEach(function (el) { el.remove(); });
    document.querySelectorAll("form").forEach(function (form) { form.reset(); });
    document.querySelectorAll("input:not([type=hidden])").forEach(function (input) { input.value = ""; });
  });
})();
