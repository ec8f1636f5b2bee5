// docpipe web page: live refresh of the runs list and of one run's progress.
// The pages are complete without this script (server-rendered); it only keeps them current.
// Requests are same-origin, so the sign-in cookie (when a token is required) goes along.
"use strict";

const POLL_MS = 1500;

function fmtSeconds(s) {
  if (s === null || s === undefined) return "-";
  s = Math.round(s);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

function fmtTime(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "";
}

async function fetchJson(url) {
  const response = await fetch(url, {headers: {Accept: "application/json"}, cache: "no-store"});
  if (response.status === 401) {  // the sign-in expired or the token changed
    window.location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("not signed in");
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function setField(root, name, text) {
  const el = root.querySelector(`[data-field="${name}"]`);
  if (el && el.textContent !== String(text)) el.textContent = text;
}

function renderRun(root, s) {
  const run = s.run;
  const status = root.querySelector('[data-field="status"]');
  status.textContent = run.status;
  status.className = `badge status-${run.status}`;
  setField(root, "finished", run.finished_at ? `finished ${fmtTime(run.finished_at)}` : "");
  setField(root, "paths_done", s.paths_done);
  setField(root, "paths_total", run.paths_total === null ? "listing…" : run.paths_total);
  setField(root, "remaining", s.remaining === null ? "?" : s.remaining);
  setField(root, "progress_percent", `${s.progress_percent === null ? "-" : s.progress_percent}%`);
  for (const name of ["completed", "failed", "skipped", "duplicates"]) setField(root, name, s[name]);
  setField(root, "documents_per_second", (s.documents_per_second || 0).toFixed(2));
  setField(root, "elapsed_seconds", fmtSeconds(s.elapsed_seconds));
  setField(root, "eta_seconds", fmtSeconds(s.eta_seconds));
  const categories = Object.entries(s.by_category).map(([k, v]) => `${k} ${v}`).join(", ");
  setField(root, "by_category", categories || "-");
  const bar = document.getElementById("run-progress");
  if (s.progress_percent !== null) {
    bar.value = s.progress_percent;
    bar.textContent = `${s.progress_percent}%`;
  }
  const body = root.querySelector("#failures tbody");
  body.replaceChildren(...s.failures.map((f) => {
    const tr = document.createElement("tr");
    tr.append(cell(f.stage), cell(f.reason), cell(f.documents, "num"), cell(f.examples.join("\n"), "path"));
    return tr;
  }));
  root.querySelector('[data-field="no_failures"]').hidden = s.failures.length > 0;
}

function renderRuns(table, runs) {
  const rows = runs.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.run = r.id;
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(r.id)}`;
    link.textContent = r.id;
    const first = document.createElement("td");
    first.append(link);
    const progress = r.paths_total ? `${Math.round((100 * r.paths_done) / r.paths_total)}%` : "-";
    tr.append(first, cell(r.status), cell(fmtTime(r.started_at)),
      cell(r.paths_total === null ? "?" : r.paths_total, "num"), cell(r.paths_done, "num"),
      cell(r.completed, "num"), cell(r.failed, "num"), cell(r.skipped, "num"), cell(progress, "num"));
    return tr;
  });
  table.querySelector("tbody").replaceChildren(...rows);
  const empty = document.getElementById("no-runs");
  if (empty) empty.hidden = runs.length > 0;
}

// Poll `source` and render; a run page stops once its run is no longer running.
function live(root) {
  const kind = root.dataset.live;
  let timer = null;
  async function tick() {
    try {
      const data = await fetchJson(root.dataset.source);
      if (kind === "run") {
        renderRun(root, data);
        if (data.run.status !== "running") return;  // final numbers shown; nothing changes any more
      } else {
        renderRuns(root, data);
      }
    } catch (err) {
      console.warn(err);
    }
    timer = setTimeout(tick, POLL_MS);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { clearTimeout(timer); timer = null; } else if (timer === null) tick();
  });
  timer = setTimeout(tick, kind === "run" ? 0 : POLL_MS);
}

document.querySelectorAll("[data-live]").forEach(live);

// Upload page: each file is sent on its own (POST /api/documents, multipart), so each gets its row at
// once; the row follows its batch (GET /api/batch-status/{id}) until the file is completed, failed or
// refused. Without this script the form posts all files in one request and shows the JSON answer.
const FINAL = new Set(["completed", "failed", "refused"]);

function uploadRow(name) {
  const tr = document.createElement("tr");
  tr.append(cell(name, "path"), cell("sending…"), cell(""), cell(""));
  document.querySelector("#uploads tbody").append(tr);
  document.getElementById("uploads").hidden = false;
  return tr;
}

function showOutcome(tr, file) {
  const [, arrival, outcome, details] = tr.children;
  arrival.textContent = file.arrival;
  const badge = document.createElement("span");
  badge.className = `badge status-${file.status}`;
  badge.textContent = file.status;
  outcome.replaceChildren(badge);
  tr.dataset.status = file.status;
  if (file.status === "completed" && file.document_id) {
    const link = document.createElement("a");
    link.href = `/documents/${encodeURIComponent(file.document_id)}`;
    link.textContent = file.category || "document";
    details.replaceChildren(link);
  } else {
    details.textContent = [file.error_stage, file.error].filter(Boolean).join(": ");
  }
  if (file.run_id) {  // the watch run that processed it
    const run = document.createElement("a");
    run.href = `/runs/${encodeURIComponent(file.run_id)}`;
    run.textContent = file.run_id;
    run.className = "run";
    details.append(" · ", run);
  }
}

async function follow(tr, batchId) {
  while (true) {
    try {
      const batch = await fetchJson(`/api/batch-status/${encodeURIComponent(batchId)}`);
      showOutcome(tr, batch.files[0]);
      if (FINAL.has(batch.files[0].status)) return;
    } catch (err) {
      console.warn(err);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function sendFile(file) {
  const tr = uploadRow(file.name);
  const body = new FormData();
  body.append("files", file, file.name);
  try {
    const response = await fetch("/api/documents", {method: "POST", body});
    const answer = await response.json();
    if (response.status !== 202) {  // refused as a whole: too large, unsupported type, empty
      showOutcome(tr, {arrival: "refused", status: "refused", error: `${response.status}: ${answer.detail}`});
      return;
    }
    showOutcome(tr, {...answer.files[0], status: answer.files[0].arrival === "refused" ? "refused" : "queued"});
    if (answer.files[0].arrival !== "refused") await follow(tr, answer.batch_id);
  } catch (err) {
    showOutcome(tr, {arrival: "-", status: "failed", error: String(err)});
  }
}

function uploader(form) {
  const input = form.querySelector("input[type=file]");
  const zone = form.querySelector(".dropzone");
  const send = (files) => { for (const file of files) sendFile(file); };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(Array.from(input.files));
    form.reset();
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send(Array.from(event.dataTransfer.files));
  });
}

document.querySelectorAll("form[data-upload]").forEach(uploader);
