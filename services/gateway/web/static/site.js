// Open Data Policing: what the pages do with a script; each page works without it.
"use strict";

// An import's page follows its progress until it ends (refreshed or failed).
function followImport(panel) {
  const url = panel.dataset.progress;
  const status = panel.querySelector("[data-field=status]");
  const phase = panel.querySelector("[data-field=phase]");
  const rows = panel.querySelector("[data-field=rows]");
  const error = panel.querySelector("[data-field=error]");
  const bar = panel.querySelector("progress");
  async function poll() {
    let record;
    try {
      const answer = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!answer.ok) { throw new Error(String(answer.status)); }
      record = await answer.json();
    } catch (problem) {
      setTimeout(poll, 2000);
      return;
    }
    status.textContent = record.status;
    phase.textContent = record.phase || "";
    const progress = record.progress || {};
    rows.textContent = progress.done != null ? progress.done.toLocaleString() : "";
    if (bar && progress.total) { bar.max = progress.total; bar.value = progress.done || 0; }
    error.textContent = record.error || "";
    if (record.status === "refreshed" || record.status === "failed") {
      panel.dataset.final = record.status;
      if (bar) { bar.max = 1; bar.value = 1; }
      return;
    }
    setTimeout(poll, 700);
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-progress]").forEach(followImport);
});
