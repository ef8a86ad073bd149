// Live run pages. The server renders every fragment with the page's own partials;
// this only places them, remembers the last event seq, and reconnects from it.
(function () {
  "use strict";

  // Keeps a socket to `path` open. `resume(reopened)` gives the query parameter that says what the page
  // already shows, for every (re)open: after a reconnect the server sends what the page missed.
  function connect(path, onMessage, resume) {
    let delay = 500;
    let reopened = false;
    function open() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const param = resume(reopened);
      const url = scheme + location.host + path + (param ? (path.includes("?") ? "&" : "?") + param : "");
      reopened = true;
      const socket = new WebSocket(url);
      socket.onopen = function () { delay = 500; document.body.dataset.live = "connected"; };
      socket.onmessage = function (message) { onMessage(JSON.parse(message.data)); };
      socket.onclose = function (event) {
        document.body.dataset.live = "reconnecting";
        if (event.code >= 4400 && event.code < 4500) return; // not found or not allowed: do not retry
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }
  // The lists (runs, the approvals queue, the badge) are rendered with the page; a reconnect asks for them again.
  function catchUpOnReconnect(reopened) { return reopened ? "catch_up=1" : ""; }

  function replace(id, html) {
    const target = document.getElementById(id);
    if (!target) return;
    target.innerHTML = html;
    if (window.htmx) window.htmx.process(target); // wire hx-* attributes of the new fragment
  }

  const run = document.querySelector("[data-live-run]");
  if (run) {
    connect(run.dataset.liveRun, function (data) {
      Object.entries(data.replace || {}).forEach(function ([id, html]) { replace(id, html); });
      Object.entries(data.append || {}).forEach(function ([id, html]) {
        const list = document.getElementById(id);
        if (list && html) list.insertAdjacentHTML("beforeend", html);
        // A step's memories changed (used, or a proposal's outcome): the panel asks for its partial again.
        if (html && /event-(contextused|memoryproposal)/.test(html) && window.htmx) {
          const panel = document.getElementById("run-memories");
          if (panel) window.htmx.trigger(panel, "memories-changed");
        }
      });
      if (typeof data.seq === "number") run.dataset.seq = data.seq;
    }, function () { return "after=" + (parseInt(run.dataset.seq, 10) || 0); });
  }

  // Approvals: the navigation badge everywhere; on the queue page the list too (one socket either way).
  const badge = document.getElementById("approvals-badge");
  const queue = document.querySelector("[data-live-queue]");
  function toast(text) {
    const note = document.createElement("div");
    note.className = "toast";
    note.setAttribute("role", "status");
    note.textContent = text;
    document.body.appendChild(note);
    setTimeout(function () { note.remove(); }, 4000);
  }
  // The selected request is the one the detail pane shows (j/k and clicks change it, not the socket).
  function markSelected() {
    const shown = document.querySelector("#approval-detail article[data-approval-id]");
    const id = shown ? "queue-item-" + shown.dataset.approvalId : "";
    queue.querySelectorAll(".queue-item").forEach(function (item) { item.classList.toggle("selected", item.id === id); });
  }
  // A decision posted from the pane is on its way: the list may drop the request before the answer comes,
  // and the answer (the next request) is what the pane shows then.
  let deciding = 0;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.requestConfig && event.detail.requestConfig.verb === "post") deciding += 1;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.requestConfig && event.detail.requestConfig.verb === "post") deciding = Math.max(0, deciding - 1);
  });
  if (badge || queue) {
    const shownCount = badge && badge.querySelector("[data-count]");
    let count = shownCount ? parseInt(shownCount.textContent, 10) || 0 : 0;
    connect(queue ? queue.dataset.liveQueue : badge.dataset.liveBadge, function (data) {
      if (typeof data.count === "number") {
        if (data.count > count) toast(data.count - count === 1 ? "A new request waits for approval" : (data.count - count) + " new requests wait for approval");
        count = data.count;
        if (badge) {
          shownCount.textContent = count;
          badge.hidden = count === 0;
        }
      }
      if (queue && typeof data.list === "string") {
        const shown = document.querySelector("#approval-detail article[data-open]");
        const wasListed = shown && document.getElementById("queue-item-" + shown.dataset.approvalId);
        replace(queue.id, data.list);
        markSelected();
        document.dispatchEvent(new CustomEvent("queue:changed"));  // approvals.js: the pane to fetch ahead
        // The open request left the queue while shown: someone else decided it. Show it as it now is.
        if (wasListed && !deciding && !document.getElementById("queue-item-" + shown.dataset.approvalId) && window.htmx) {
          window.htmx.ajax("GET", shown.dataset.detailUrl + "?changed=1", {target: "#approval-detail", swap: "innerHTML"});
        }
      }
    }, catchUpOnReconnect);
  }

  const list = document.querySelector("[data-live-list]");
  if (list) {
    connect(list.dataset.liveList, function (data) {
      Object.entries(data.replace || {}).forEach(function ([id, html]) { replace(id, html); });
      const row = data.replace_or_prepend;
      if (!row) return;
      const existing = document.getElementById(row.id);
      if (existing) { existing.outerHTML = row.html; return; }
      const body = document.getElementById(row.container);
      body.querySelectorAll(".empty-row").forEach(function (el) { el.remove(); });
      body.insertAdjacentHTML("afterbegin", row.html);
    }, catchUpOnReconnect);
  }
})();

// The run's elapsed time ticks while it is live, in the words the server renders it (agents/templatetags/runs.py).
(function () {
  "use strict";
  function words(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const pad = function (n) { return String(n).padStart(2, "0"); };
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + pad(seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + pad(Math.floor(seconds % 3600 / 60)) + " min";
  }
  setInterval(function () {
    document.querySelectorAll("[data-elapsed-from][data-ticking]").forEach(function (element) {
      element.textContent = words((Date.now() - Date.parse(element.dataset.elapsedFrom)) / 1000);
    });
  }, 1000);
})();
