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
      else if (approve) { approve.click(); event.preventDefault(); }
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
      if (take) { take.click(); event.preventDefault(); }
    }
  });

  // After a decision the detail pane is swapped; mark the decided item in the list.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const article = event.detail.target.querySelector("article.approval");
    if (!article) return;
    const item = document.getElementById("queue-item-" + article.dataset.approvalId);
    if (item && !article.querySelector(".decide")) item.classList.add("decided");
  });
})();
