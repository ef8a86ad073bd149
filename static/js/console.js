// Keyboard navigation for the console: "g" then a section key, "?" for help.
(function () {
  "use strict";
  let pendingG = false;
  let pendingTimer = null;

  // Whether a keydown is a console shortcut: no modifier key, and not typed into a field.
  // Pages with keys of their own (the approvals queue) ask the same.
  function isShortcut(event) {
    return !(event.metaKey || event.ctrlKey || event.altKey
             || event.target.closest("input, textarea, select, [contenteditable=true]") !== null);
  }
  window.Proctor = { isShortcut: isShortcut };

  document.addEventListener("keydown", function (event) {
    if (!isShortcut(event)) return;
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
