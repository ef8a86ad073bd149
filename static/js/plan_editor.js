// The plan editor: rewrite, add, delete and reorder steps, with buttons or from the keyboard.
// Works on any [data-plan-editor] list, also ones swapped in later by htmx (events are delegated).
(function () {
  "use strict";

  function row(element) {
    return element.closest(".plan-edit-step");
  }

  function focusStep(step) {
    if (!step) return;
    const input = step.querySelector("input");
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function addAfter(step) {
    const fresh = step.cloneNode(true);
    const input = fresh.querySelector("input");
    input.value = "";
    input.placeholder = "Add a step";
    step.after(fresh);
    focusStep(fresh);
  }

  function remove(step) {
    const list = step.parentElement;
    const next = step.previousElementSibling || step.nextElementSibling;
    if (list.children.length === 1) {  // keep one input to type into
      step.querySelector("input").value = "";
      return focusStep(step);
    }
    step.remove();
    focusStep(next);
  }

  function move(step, direction) {
    if (direction === "up" && step.previousElementSibling) {
      step.previousElementSibling.before(step);
    } else if (direction === "down" && step.nextElementSibling) {
      step.nextElementSibling.after(step);
    }
    focusStep(step);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-plan-editor] button");
    if (!button) return;
    const step = row(button);
    if (button.dataset.planMove) move(step, button.dataset.planMove);
    else if (button.hasAttribute("data-plan-delete")) remove(step);
  });

  document.addEventListener("keydown", function (event) {
    const input = event.target.closest("[data-plan-editor] input");
    if (!input) return;
    const step = row(input);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      input.form.requestSubmit();
    } else if (event.key === "Enter") {
      event.preventDefault();  // Enter adds a step instead of submitting half an edit
      addAfter(step);
    } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      move(step, event.key === "ArrowUp" ? "up" : "down");
    } else if (event.key === "Backspace" && input.value === "") {
      event.preventDefault();
      remove(step);
    }
  });
})();
