// Keyboard navigation for the console: "g" then a section key, "?" for help.
(function () {
  "use strict";
  let pendingG = false;
  let pendingTimer = null;

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable=true]") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.metaKey || event.ctrlKey || event.altKey || typing(event.target)) return;
    const help = document.getElementById("keys-help");
    if (event.key === "?") {
      if (help.open) help.close(); else help.showModal();
      event.preventDefault();
      return;
    }
    if (pendingG) {
      pendingG = false;
      clearTimeout(pendingTimer);
      const link = document.querySelector('.sections a[data-key="' + CSS.escape(event.key) + '"]');
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (event.key === "g") {
      pendingG = true;
      pendingTimer = setTimeout(function () { pendingG = false; }, 1200);
    }
  });
})();
