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

  // The next pane, fetched ahead. A decision moves the pane to the request after the decided one in the
  // list (else the first left); the page fetches that pane while the reviewer reads, with the same GET a
  // click makes, and a decision says it has it (`prefetched=<id>`): if the server moves to that one, it
  // answers with the decided note only (the event below names the id) and the kept pane is shown under
  // it, so the click costs the decision and nothing more. One pane is kept; a newer fetch replaces it.
  const PREFETCHED_PANE_EVENT = "approvals:prefetched-pane";  // approvals/views.py
  const FRESH_MS = 30000;
  let kept = null;  // {id, html, fetchedAt}
  let asking = null;  // the id being fetched

  // The pane says which request's pane the page holds (data-prefetched), for whoever looks (tests too).
  function keep(pane) {
    kept = pane;
    const detail = document.getElementById("approval-detail");
    if (pane) detail.dataset.prefetched = pane.id;
    else delete detail.dataset.prefetched;
  }

  function shownId() {
    const article = document.querySelector("#approval-detail article[data-approval-id]");
    return article && article.hasAttribute("data-open") ? article.dataset.approvalId : null;
  }

  // The request a decision on the shown one would move to, as the list shows the queue: the next one
  // still open after it, else the first one open that is not it. None when it is not listed or alone.
  function nextLink() {
    const id = shownId();
    const open = items().filter(function (link) { return !link.closest(".queue-item").classList.contains("decided"); });
    const at = open.findIndex(function (link) { return link.dataset.approval === id; });
    if (at < 0) return null;
    return open[at + 1] || open.find(function (link) { return link.dataset.approval !== id; }) || null;
  }

  function prefetchNext() {
    const link = nextLink();
    if (!link) { keep(null); return; }
    const id = link.dataset.approval;
    if (asking === id || (kept && kept.id === id && Date.now() - kept.fetchedAt < FRESH_MS / 2)) return;
    asking = id;
    fetch(link.getAttribute("hx-get"), {headers: {"HX-Request": "true"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        // Kept if it is still the one to keep (the pane may have moved on while this one was on its way).
        const next = nextLink();
        if (html !== null && next && next.dataset.approval === id) keep({id: id, html: html, fetchedAt: Date.now()});
      })
      .catch(function () {})  // no prefetch: the decision brings the whole pane, as without one
      .finally(function () { if (asking === id) asking = null; });
  }

  // A decision from the pane says which pane the page holds, if it is fresh; the answer is matched with
  // the copy offered here (a newer prefetch may replace `kept` while the decision is on its way).
  document.body.addEventListener("htmx:configRequest", function (event) {
    const form = event.detail.elt;
    if (event.detail.verb !== "post" || !form.closest("#approval-detail") || !form.querySelector("input[name=decision]")) return;
    if (kept && Date.now() - kept.fetchedAt < FRESH_MS) {
      event.detail.parameters.prefetched = kept.id;
      form.offeredPane = kept;
    } else {
      form.offeredPane = null;
    }
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target.id !== "approval-detail") return;
    const header = event.detail.xhr.getResponseHeader("HX-Trigger");
    const chosen = header && header.includes(PREFETCHED_PANE_EVENT) && JSON.parse(header)[PREFETCHED_PANE_EVENT];
    if (!chosen) return;
    const offered = event.detail.requestConfig.elt.offeredPane;
    if (offered && offered.id === String(chosen.id)) {
      event.detail.serverResponse += offered.html;  // the note, then the pane: as the whole answer would be
      if (kept === offered) keep(null);
    } else {  // not the copy offered (cannot happen with one decision at a time): ask for the pane
      const link = document.querySelector('#queue-list a[data-approval="' + chosen.id + '"]');
      if (link) window.htmx.ajax("GET", link.getAttribute("hx-get"), {target: "#approval-detail", swap: "beforeend"});
      else location.assign(event.detail.xhr.getResponseHeader("HX-Replace-Url"));  // the queue, that request shown
    }
  });

  // Moving to the request whose pane is kept (j/k or a click): show the copy, no request made.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    const link = event.detail.elt;
    if (!kept || !link.matches("#queue-list a[data-approval]") || link.dataset.approval !== kept.id
        || Date.now() - kept.fetchedAt >= FRESH_MS) return;
    event.preventDefault();
    const pane = document.getElementById("approval-detail");
    const html = kept.html;
    keep(null);
    history.pushState({htmx: true}, "", link.getAttribute("hx-push-url"));  // as hx-push-url does
    window.htmx.swap(pane, html, {swapStyle: "innerHTML"}, {eventInfo: {target: pane, elt: link}});
  });

  // The list changed live: if a decision would now move elsewhere, fetch that pane instead.
  document.addEventListener("queue:changed", prefetchNext);
  prefetchNext();

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
    prefetchNext();
  });
})();
