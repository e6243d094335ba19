// llmops UI: the only script. Progressive enhancement; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Compare view: enable the button only when 2 to 5 runs are ticked.
  const form = document.querySelector("form[data-compare]");
  if (form) {
    const button = form.querySelector("button[type=submit]");
    const update = () => {
      const n = form.querySelectorAll("input[name=run]:checked").length;
      button.disabled = n < 2 || n > 5;
      button.textContent = n ? `Compare ${n} runs` : "Compare runs";
    };
    form.addEventListener("change", update);
    update();
  }
  // Confirmation for admin actions that change state.
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", (e) => { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  }
});
