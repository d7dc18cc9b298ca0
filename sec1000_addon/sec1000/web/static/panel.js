// SEC1000 panel: the live channel and the confirmation dialog. No build step.
//
// Live updates are HTML fragments with hx-swap-oob, applied by HTMX. They come over a WebSocket
// (its URL is built from document.baseURI, so it works under any ingress prefix). While the
// socket is not open the same fragments are polled; nothing is lost in between, because both
// ask for "what changed since sequence number N".
(function () {
  "use strict";

  var POLL_MS = 2000;
  var RETRY_MAX_MS = 30000;
  var body = document.body;
  var page = body.dataset.page || "dashboard";
  var seq = Number(body.dataset.seq || 0);
  // The controller the page is for (absent: the first one); the live channel follows it.
  var controller = body.dataset.controller || "";
  var indicator = document.getElementById("live-indicator");
  var socket = null;
  var pollTimer = null;
  var retryTimer = null;
  var retries = 0;
  var polling = false;
  // Read by the browser tests and the benchmark.
  var live = (window.sec1000Live = { mode: "connecting", updates: 0, first: null, last: null });

  var words = indicator ? JSON.parse(indicator.dataset.words || "{}") : {};

  function show(mode, text) {
    live.mode = mode;
    if (indicator) {
      indicator.dataset.mode = mode;
      var label = indicator.querySelector(".pill-text") || indicator;
      label.textContent = words[mode] || text;
    }
  }

  function apply(text) {
    if (!text) return Promise.resolve();
    return htmx
      .swap({ target: body, swap: "none", text: text, sourceElement: body, transition: false })
      .then(function () {
        live.updates += 1;
        live.last = performance.now();
        if (live.first === null) live.first = live.last;
        body.dataset.liveUpdates = String(live.updates);
      });
  }

  // -- the newest copy wins
  //
  // Every fragment carries the change number it shows (data-live-seq). A command's answer and
  // the live channel's next update travel on two connections and may arrive crossed: a copy
  // older than the one on the page (a "waiting" after the "OK") is dropped, not swapped in.

  function liveSeq(element) {
    var value = element && element.getAttribute ? element.getAttribute("data-live-seq") : null;
    return value === null ? null : Number(value);
  }

  document.addEventListener("htmx:before:swap", function (event) {
    var tasks = (event.detail && event.detail.tasks) || [];
    for (var i = tasks.length - 1; i >= 0; i--) {
      var task = tasks[i];
      if (task.type !== "oob" || !task.fragment) continue;
      var incoming = liveSeq(task.fragment.firstElementChild);
      var shown = liveSeq(task.target);
      if (incoming !== null && shown !== null && incoming < shown) tasks.splice(i, 1);
    }
  });

  // -- polling (the fallback)

  function poll() {
    if (!polling) return;
    var url = new URL("live", document.baseURI);
    url.searchParams.set("page", page);
    if (controller) url.searchParams.set("controller", controller);
    url.searchParams.set("since", String(seq));
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        var next = Number(response.headers.get("X-Live-Seq"));
        return response.text().then(function (text) {
          if (next) seq = next;
          return apply(text);
        });
      })
      .then(function () {
        if (polling) show("polling", "live (polling)");
      })
      .catch(function () {
        if (polling) show("offline", "offline");
      })
      .finally(function () {
        if (polling) pollTimer = setTimeout(poll, POLL_MS);
      });
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    poll();
  }

  function stopPolling() {
    polling = false;
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  }

  // -- the WebSocket

  function connect() {
    retryTimer = null;
    var url = new URL("ws", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("page", page);
    if (controller) url.searchParams.set("controller", controller);
    url.searchParams.set("since", String(seq));
    try {
      socket = new WebSocket(url.href);
    } catch (error) {
      startPolling();
      return;
    }
    socket.onopen = function () {
      retries = 0;
      stopPolling();
      show("live", "live");
    };
    socket.onmessage = function (event) {
      apply(event.data);
    };
    socket.onclose = function () {
      socket = null;
      startPolling();
      retries += 1;
      var delay = Math.min(RETRY_MAX_MS, 1000 * Math.pow(2, retries - 1));
      if (!document.hidden) retryTimer = setTimeout(connect, delay);
    };
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && socket === null && retryTimer === null) connect();
  });
  window.addEventListener("pagehide", function () {
    stopPolling();
    if (socket !== null) {
      socket.onclose = null;
      socket.close(1000, "page hidden");
    }
  });

  // -- the confirmation dialog (native <dialog>: focus trap, Escape, focus returns to the opener)

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.dialog);
      if (dialog && !dialog.open) dialog.showModal();
      return;
    }
    var closer = event.target.closest("dialog [data-close]");
    if (closer) {
      var parent = closer.closest("dialog");
      // A submit button closes the dialog after HTMX has taken the form's values.
      setTimeout(function () {
        parent.close();
      }, 0);
    }
  });

  // -- quick choices: a button fills its field with its value, then submits the form as the
  // field's own button does (the same command, the same checks)

  document.addEventListener("click", function (event) {
    var quick = event.target.closest("button[data-fill]");
    var input = quick && quick.form ? quick.form.elements.namedItem(quick.dataset.fill) : null;
    if (!input) return;
    input.value = quick.dataset.value;
    delete input.dataset.edited;
    input.removeAttribute("aria-invalid");
  });

  // -- the phone's page menu (the header stays one row)

  var bar = document.getElementById("bar");
  var menu = document.getElementById("menu-button");

  function openMenu(open) {
    if (!bar || !menu) return;
    bar.dataset.open = open ? "true" : "false";
    menu.setAttribute("aria-expanded", open ? "true" : "false");
  }

  if (menu) {
    menu.addEventListener("click", function () {
      openMenu(bar.dataset.open !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && bar.dataset.open === "true") {
        openMenu(false);
        menu.focus();
      }
    });
  }

  // -- a refused number marks its field (aria-invalid) and keeps its words, until the user
  // changes the field: then the mark goes and the words fade (no telemetry read fades them)

  function markFields() {
    document.querySelectorAll("form.control input.number").forEach(function (input) {
      var status = input.form.querySelector(".status");
      var refused = status && status.dataset.invalid === "true";
      var edited = input.dataset.edited === "true";
      if (refused && !edited) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      if (status && refused && edited) status.dataset.cleared = "true";
      else if (status) delete status.dataset.cleared;
    });
  }

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (input.matches && input.matches("form.control input.number")) {
      input.dataset.edited = "true";
      markFields();
    }
  });
  document.addEventListener("submit", function (event) {
    event.target.querySelectorAll("input.number").forEach(function (input) {
      delete input.dataset.edited; // the answer to this submit decides again
    });
  });

  // -- the buttons that need the controller wait while it does not answer (#controls-gate says
  // why): aria-disabled keeps them focusable and described; a press does nothing meanwhile

  function gated() {
    var gate = document.getElementById("controls-gate");
    return !!gate && gate.dataset.blocked === "true";
  }

  function markButtons() {
    var blocked = gated();
    document.querySelectorAll("[data-needs-controller]").forEach(function (button) {
      if (blocked) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    });
  }

  function refuseWhileGated(event) {
    var target = event.target;
    var button =
      event.type === "submit"
        ? event.submitter || (target.querySelector && target.querySelector("[data-needs-controller]"))
        : target.closest && target.closest("[data-needs-controller]");
    if (button && button.matches && button.matches("[data-needs-controller]") && gated()) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }

  document.addEventListener("click", refuseWhileGated, true);
  document.addEventListener("submit", refuseWhileGated, true);

  // -- results show their age, and fade once the controller gave a good read after them

  var agoWords = JSON.parse(body.dataset.ago || "{}");

  // The plural form for a count, as i18n.plural_class: Slovak has three (1, 2-4, other).
  function form(forms, n) {
    if (!Array.isArray(forms)) return forms || "{n}";
    var slovak = agoWords.lang === "sk";
    var index = n === 1 ? 0 : slovak && n >= 2 && n <= 4 ? 1 : slovak ? 2 : 1;
    return forms[Math.min(index, forms.length - 1)];
  }

  function ago(seconds, exact) {
    if (!exact && seconds < (agoWords.below || 10)) return agoWords.now || "just now";
    var n = seconds < 60 ? seconds : seconds < 3600 ? Math.floor(seconds / 60) : Math.floor(seconds / 3600);
    var unit = seconds < 60 ? agoWords.s : seconds < 3600 ? agoWords.min : agoWords.h;
    return form(unit || "{n} s ago", n).replace("{n}", String(n));
  }

  function refreshAges() {
    var pill = document.getElementById("link-status");
    var goodAt = pill ? Number(pill.dataset.goodAt || 0) : 0;
    var now = Date.now() / 1000;
    var midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    document.querySelectorAll(".status[data-at]").forEach(function (status) {
      var at = Number(status.dataset.at);
      if (goodAt > at && status.dataset.invalid !== "true") status.dataset.stale = "true";
      var time = status.querySelector("time");
      if (time && at * 1000 >= midnight.getTime()) {
        var text = ago(Math.max(0, Math.round(now - at)));
        if (time.textContent !== text) time.textContent = text;
      }
    });
    markFields();
    markButtons();
  }

  // Live updates replace or morph elements: look again after each change (a microtask later).
  var pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;
    setTimeout(function () {
      pending = false;
      refreshAges();
    }, 0);
  }).observe(body, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["data-invalid", "data-kind", "data-at", "data-good-at", "data-blocked"],
  });
  setInterval(refreshAges, 10000);

  // -- every value shows its age, and is marked old after two reads (data-old-after seconds)

  function refreshReadAges() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".read-age[data-read-at]").forEach(function (element) {
      var at = Number(element.dataset.readAt);
      if (!at) return;
      var seconds = Math.max(0, Math.round(now - at));
      var old = seconds > Number(element.dataset.oldAfter);
      var words = old ? agoWords.old || "old: read {age}" : agoWords.read || "read {age}";
      var text = words.replace("{age}", ago(seconds, old)); // old: never "just now"
      if (element.textContent !== text) element.textContent = text;
      var flag = old ? "true" : "false";
      if (element.dataset.old !== flag) element.dataset.old = flag;
      var values = element.closest("[data-values]");
      if (values && values.dataset.old !== flag) values.dataset.old = flag;
    });
  }
  setInterval(refreshReadAges, 1000);

  // -- the watchdog reset's off window: the seconds left, counted down live (silently: the
  // status line said it once when the window opened)

  function countDown() {
    var now = Date.now() / 1000;
    document.querySelectorAll(".countdown[data-until]").forEach(function (element) {
      var left = Math.max(0, Math.ceil(Number(element.dataset.until) - now));
      var text = (element.dataset.words || "{n}").replace("{n}", String(left));
      if (element.textContent !== text) element.textContent = text;
    });
  }
  setInterval(countDown, 250);

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) connect();
  });
})();
