// The console's one script. Pages work without it; it adds what must be live: the flags
// table and a flag's page follow the change feed, a kill shows its acknowledgements as they
// arrive, and writes ask for one confirmation.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// Forms with data-confirm ask once before posting.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !form.dataset.kill && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// The revisions the page was rendered at, so no change in between is missed.
function renderedRevisions() {
  return [...document.querySelectorAll("th[data-environment][data-revision]")]
    .map((th) => `${th.dataset.environment}:${th.dataset.revision}`)
    .join(",");
}

async function replaceRow(key) {
  const table = document.querySelector("table[data-live=flags] tbody");
  const old = document.getElementById(`flag-${key}`);
  // The page's own filter goes along: a row it no longer shows comes back empty (204).
  const response = await fetch(`/ui/flags/${encodeURIComponent(key)}/row${location.search}`, { credentials: "same-origin" });
  if (response.status === 404 || response.status === 204) { old?.remove(); countRows(); return; }
  if (!response.ok) return;
  const holder = document.createElement("tbody");
  holder.innerHTML = await response.text();
  const row = holder.firstElementChild;
  if (!row) return;
  row.classList.add("flash");
  if (old) old.replaceWith(row); else table.appendChild(row);
  countRows();
}

function countRows() {
  const count = document.getElementById("flag-count");
  const shown = document.querySelectorAll("table[data-live=flags] tbody tr").length;
  if (count) count.textContent = `${shown} flags shown`;
}

async function refreshMain() {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("main");
  // Keep what is being typed and any kill in progress: swap only the read-only parts.
  for (const id of ["side-by-side", "history", "plan", "chart-evaluations", "chart-errors", "chart-latency"]) {
    const now = document.getElementById(id), next = fresh?.querySelector(`#${id}`);
    if (now && next) now.replaceWith(next);
  }
  // An environment's buttons follow its state (Kill becomes Revive), unless its forms are
  // being filled in; the kill's progress line stays as it is.
  for (const panel of document.querySelectorAll("section.actions")) {
    const next = fresh?.querySelector(`#${CSS.escape(panel.id)}`);
    if (!next || panel.contains(document.activeElement)) continue;
    const progress = panel.querySelector("output.kill-progress");
    next.querySelector("output.kill-progress")?.replaceWith(progress);
    panel.replaceWith(next);
  }
}

function followChanges() {
  const table = document.querySelector("table[data-live=flags]");
  const flagKey = document.querySelector("[data-live-flag]")?.dataset.liveFlag;
  if (!table && !flagKey) return;
  const since = renderedRevisions();
  const events = new EventSource(`/ui/events?since=${encodeURIComponent(since)}`);
  events.addEventListener("flag", (message) => {
    const change = JSON.parse(message.data);
    if (table) replaceRow(change.key);
    else if (change.key === flagKey) refreshMain();
  });
  // More changes than the feed sends one by one: the table reloads, a flag's page refreshes.
  events.addEventListener("reload", () => (table ? location.reload() : refreshMain()));
}

// A kill: posted by script, then its acknowledgements followed until all are in.
function ackText(report) {
  let text = `${report.acknowledged}/${report.connected} SDKs acknowledged, slowest ${report.slowest_ms} ms`;
  if (report.open_feature_streams) text += ` · ${report.open_feature_sent}/${report.open_feature_streams} OpenFeature streams sent`;
  if (report.missing.length) text += ` · missing: ${report.missing.join(", ")}`;
  return text;
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.dataset.kill) return;
  event.preventDefault();
  if (!window.confirm(form.dataset.confirm)) return;
  const clicked = performance.now();
  form.querySelector("button")?.blur();
  const environment = form.dataset.kill;
  const progress = document.getElementById(`kill-progress-${environment}`);
  progress.className = "kill-progress";
  progress.textContent = "killing…";
  const response = await fetch(form.action, {
    method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
    headers: { "accept": "application/json", "x-csrf-token": csrf() },
  });
  if (!response.ok) { progress.className = "kill-progress missing"; progress.textContent = await response.text(); return; }
  const killed = await response.json();
  progress.textContent = `killed at revision ${killed.revision}; waiting for SDKs…`;
  const acks = new EventSource(`/ui/acks?environment=${encodeURIComponent(environment)}&revision=${killed.revision}`);
  const show = (message, done) => {
    const report = JSON.parse(message.data);
    progress.textContent = ackText(report);
    progress.dataset.acknowledged = report.acknowledged;
    progress.dataset.connected = report.connected;
    if (done) {
      // From the confirmed click to the final report: the console's kill figure.
      progress.dataset.elapsedMs = Math.round(performance.now() - clicked);
      progress.className = `kill-progress ${report.missing.length ? "missing" : "done"}`;
      progress.dataset.done = "true";
      acks.close();
      refreshMain();
    }
  };
  acks.addEventListener("progress", (message) => show(message, false));
  acks.addEventListener("done", (message) => show(message, true));
});

followChanges();
