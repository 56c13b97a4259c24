// Keeps the Routes page live: every sampling interval, fetch the page again and swap in the routes
// (counters, rates, charts). The HTML comes from the console itself, rendered and escaped on the server.
"use strict";
(function () {
  const routes = document.getElementById("routes");
  if (!routes) return;
  const seconds = Number(routes.dataset.refresh) || 5;
  setInterval(async function () {
    try {
      const answer = await fetch(window.location.href, { headers: { "Accept": "text/html" } });
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("routes");
      if (fresh) routes.replaceChildren(...fresh.childNodes);
    } catch (error) {
      // The daemon is restarting or the network blinked: keep the last figures and try again later.
    }
  }, seconds * 1000);
})();
