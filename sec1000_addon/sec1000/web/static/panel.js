// Live updates: a WebSocket (relative to the page, so it works under any ingress prefix)
// pushes re-rendered fragments by element id; if it cannot stay up, poll the same data.
(function () {
  "use strict";
  var indicator = document.getElementById("live-indicator");
  var pollTimer = null;
  var socket = null;
  var retries = 0;

  function apply(message) {
    var parts = message && message.parts;
    if (!parts) return;
    Object.keys(parts).forEach(function (id) {
      var element = document.getElementById(id);
      if (element && element.innerHTML !== parts[id]) {
        element.innerHTML = parts[id];
        if (window.htmx && window.htmx.process) window.htmx.process(element);
      }
    });
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  function show(text, on) {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.className = "live " + (on ? "on" : "off");
  }

  function poll() {
    fetch("live", { cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { apply(data); show("live (polling)", true); } })
      .catch(function () { show("offline", false); });
  }

  function startPolling() {
    if (pollTimer === null) { poll(); pollTimer = setInterval(poll, 3000); }
  }

  function stopPolling() {
    if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
  }

  function connect() {
    var url = new URL("ws", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    try { socket = new WebSocket(url.href); } catch (error) { startPolling(); return; }
    socket.onopen = function () { retries = 0; stopPolling(); show("live", true); };
    socket.onmessage = function (event) { apply(JSON.parse(event.data)); };
    socket.onclose = function () {
      socket = null;
      startPolling();
      retries += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, retries)));
    };
    socket.onerror = function () { if (socket) socket.close(); };
  }

  if (document.getElementById("live-values") || document.getElementById("restore-banner")) connect();
})();
