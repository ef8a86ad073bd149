// The Memory page from the keyboard: / search, j/k move, e edit (correct, or edit and confirm), p pin, d delete.
(function () {
  "use strict";

  function items() {
    return Array.from(document.querySelectorAll("#memory-list a[data-memory]"));
  }

  function select(link) {
    document.querySelectorAll("#memory-list .memory-item").forEach(function (item) {
      item.classList.toggle("selected", item.contains(link));
    });
    link.focus();
    link.click();
  }

  function press(id) {
    const button = document.getElementById(id);
    if (!button) return false;
    if (window.htmx) window.htmx.process(document.getElementById("memory-detail"));
    button.click();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (!window.Proctor.isShortcut(event)) return;  // console.js
    if (event.key === "/") {
      document.getElementById("memory-search").focus();
      event.preventDefault();
    } else if (event.key === "j" || event.key === "k") {
      const links = items();
      if (!links.length) return;
      const current = links.findIndex(function (link) { return link.closest(".memory-item").classList.contains("selected"); });
      const next = event.key === "j" ? Math.min(links.length - 1, current + 1) : Math.max(0, current - 1);
      select(links[next]);
      event.preventDefault();
    } else if (event.key === "e") {
      const edit = document.getElementById("memory-edit");
      if (edit) { edit.open = true; document.getElementById("memory-edit-content").focus(); event.preventDefault(); }
    } else if (event.key === "p") {
      if (press("memory-pin")) event.preventDefault();
    } else if (event.key === "d") {
      const remove = document.getElementById("memory-delete");
      if (remove) { remove.open = true; document.getElementById("memory-delete-confirm").focus(); event.preventDefault(); }
    }
  });

  // The "To confirm" badge, live: the server sends the count at once and after every change in the tenant.
  function badgeSocket(delay) {
    const badge = document.getElementById("memory-confirm-badge");
    if (!badge || !badge.dataset.liveMemory) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + badge.dataset.liveMemory);
    socket.onopen = function () { delay = 500; };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      const shown = document.getElementById("memory-confirm-badge");  // htmx may have swapped it
      if (!shown || typeof data.count !== "number") return;
      shown.querySelector("[data-count]").textContent = data.count;
      shown.hidden = data.count === 0;
    };
    socket.onclose = function (event) {
      if (event.code >= 4400 && event.code < 4500) return;  // not found or not allowed: do not retry
      setTimeout(function () { badgeSocket(Math.min(delay * 2, 10000)); }, delay);
    };
  }
  badgeSocket(500);

  // After a change the list shows it too (a pin, a new version, a deletion).
  document.body.addEventListener("memory-changed", function () {
    const form = document.getElementById("memory-filters");
    if (form && window.htmx) window.htmx.trigger(form, "change");
  });
})();
