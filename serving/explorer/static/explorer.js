// The explorer's only script (a strict CSP allows no inline script): confirmations before a
// change, and in the side-by-side view, pointing at a SKU's twin on the other side.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  const search = document.getElementById("agent-search");
  if (search && !document.querySelector("[autofocus]") && !document.querySelector(".cards")) {
    search.focus();
  }
  for (const card of document.querySelectorAll(".compare .card.overlap")) {
    const twins = () =>
      document.querySelectorAll(`.compare .card[data-sku="${CSS.escape(card.dataset.sku)}"]`);
    card.addEventListener("mouseenter", () => twins().forEach((el) => el.classList.add("twin")));
    card.addEventListener("mouseleave", () => twins().forEach((el) => el.classList.remove("twin")));
  }
});
