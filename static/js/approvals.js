// The reviewer queue from the keyboard: j/k move, a approve (a question: focus the answer),
// r reject (focus the reason), e edit (arguments or plan), t take (assign to me).
(function () {
  "use strict";

  function items() {
    return Array.from(document.querySelectorAll("#queue-list a[data-approval]"));
  }

  function select(link) {
    document.querySelectorAll("#queue-list .queue-item").forEach(function (item) {
      item.classList.toggle("selected", item.contains(link));
    });
    link.focus();
    link.click();
  }

  // A button of a pane just swapped in may not be wired by htmx yet: wire it first, so a key pressed at
  // once posts through htmx (a plain form post would leave the page).
  function press(button) {
    if (window.htmx) window.htmx.process(document.getElementById("approval-detail"));
    button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (!window.Proctor.isShortcut(event)) return;  // console.js
    const links = items();
    const current = links.findIndex(function (link) { return link.closest(".queue-item").classList.contains("selected"); });
    if (event.key === "j" || event.key === "k") {
      if (!links.length) return;
      const next = event.key === "j" ? Math.min(links.length - 1, current + 1) : Math.max(0, current - 1);
      select(links[next]);
      event.preventDefault();
    } else if (event.key === "a") {
      const answer = document.getElementById("answer-text");
      const approve = document.getElementById("approve-button");
      if (answer) { answer.focus(); event.preventDefault(); }
      else if (approve) { press(approve); event.preventDefault(); }
    } else if (event.key === "r") {
      const reason = document.getElementById("reject-reason");
      if (reason) { reason.focus(); event.preventDefault(); }
    } else if (event.key === "e") {
      const edit = document.getElementById("edit-arguments");
      if (edit) {
        edit.open = true;
        edit.querySelector("input:not([type=hidden]), textarea, select").focus();
        event.preventDefault();
      }
    } else if (event.key === "t") {
      const take = document.getElementById("take-button");
      if (take) { press(take); event.preventDefault(); }
    }
  });

  // The pane was swapped (a request chosen, or a decision taken and the next one shown): the list marks
  // the request the pane shows, and the one just decided until the live list drops it.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "approval-detail") return;
    const article = event.detail.target.querySelector("article.approval");
    if (!article) return;
    const shown = document.getElementById("queue-item-" + article.dataset.approvalId);
    document.querySelectorAll("#queue-list .queue-item").forEach(function (item) {
      item.classList.toggle("selected", item === shown);
    });
    const note = event.detail.target.querySelector(".decided-note[data-decided]");
    const decided = note && document.getElementById("queue-item-" + note.dataset.decided);
    if (decided) decided.classList.add("decided");
    else if (!article.hasAttribute("data-open") && shown) shown.classList.add("decided");
    // After a decision the keyboard goes on from the next request (j/k, a, r, e, t act on it).
    if (note && shown && !event.detail.target.querySelector("[autofocus]")) shown.querySelector("a").focus();
  });
})();
