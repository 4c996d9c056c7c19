// Live progress of a run page: poll the run's API while it is queued or running and update the progress in place.
// When an epoch finishes or the run ends, fetch the page again and patch in the parts the server draws (curves,
// results, the outcome, throughput and hardware: the elements marked data-live), without reloading the page, so
// the scroll position, focus and anything being read stay where they are.
const section = document.getElementById("run");
const POLL_MS = 2000;
const FINISHED = ["succeeded", "failed", "cancelled"];

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

async function patch() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
  if (!response.ok) return false;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const node of fresh.querySelectorAll("[data-live][id]")) {
    const current = document.getElementById(node.id);
    if (current) current.replaceWith(document.importNode(node, true));
  }
  const freshSection = fresh.getElementById("run");
  if (freshSection) {
    section.dataset.status = freshSection.dataset.status;
    section.dataset.epochsDone = freshSection.dataset.epochsDone;
  }
  return true;
}

async function poll() {
  const response = await fetch(`/api/v1/training/runs/${section.dataset.run}`, { headers: { Accept: "application/json" } });
  if (!response.ok) return true;
  const run = await response.json();
  const progress = run.progress || {};
  const finished = FINISHED.includes(run.status);
  text("run-status", run.status + (run.cancel_requested && !finished ? " (cancelling)" : ""));
  const status = document.getElementById("run-status");
  if (status) status.className = `status-${run.status}`;
  text("run-stage", progress.stage || "–");
  const epochs = progress.epochs || (run.history.length ? run.history.length : null);
  if (finished) text("run-epoch", epochs ? `${run.history.length} of ${epochs}` : "–");
  else text("run-epoch", progress.epoch ? `${progress.epoch} of ${progress.epochs}` : "–");
  text("run-percent", run.percent === null ? "–" : `${run.percent} %`);
  if (run.percent !== null) document.getElementById("run-bar").value = run.percent;
  text("run-loss", !finished && progress.loss ? progress.loss.toFixed(4) : "–");
  text("run-eta", !finished && progress.eta_seconds ? `${Math.round(progress.eta_seconds)} s` : "–");
  if (run.log_tail !== null) text("run-log", run.log_tail); // staff only; null for everyone else
  if (finished !== FINISHED.includes(section.dataset.status)
      || run.history.length !== Number(section.dataset.epochsDone)) {
    const patched = await patch();
    if (!patched) return true; // try again at the next tick
    if (finished && !FINISHED.includes(section.dataset.status)) return true; // the page lagged: patch again
  }
  return !finished;
}

async function loop() {
  let again = true;
  try {
    again = await poll();
  } catch (error) {
    again = true; // a dropped request: try again at the next tick
  }
  if (again) setTimeout(loop, POLL_MS);
}

if (section && !FINISHED.includes(section.dataset.status)) setTimeout(loop, POLL_MS);
