// Live progress of a run page: poll the run's API while it is queued or running; update the progress in place,
// and reload the page when an epoch finishes or the run ends, so the curves and results are redrawn server-side.
const section = document.getElementById("run");
const POLL_MS = 2000;

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

async function poll() {
  const response = await fetch(`/api/v1/training/runs/${section.dataset.run}`, { headers: { Accept: "application/json" } });
  if (!response.ok) return true;
  const run = await response.json();
  const progress = run.progress || {};
  text("run-status", run.status + (run.cancel_requested && !["succeeded", "failed", "cancelled"].includes(run.status) ? " (cancelling)" : ""));
  text("run-stage", progress.stage || "–");
  text("run-epoch", progress.epoch ? `${progress.epoch} of ${progress.epochs}` : "–");
  text("run-percent", run.percent === null ? "–" : `${run.percent} %`);
  if (run.percent !== null) document.getElementById("run-bar").value = run.percent;
  text("run-loss", progress.loss ? progress.loss.toFixed(4) : "–");
  text("run-eta", progress.eta_seconds ? `${Math.round(progress.eta_seconds)} s` : "–");
  if (run.log_tail !== null) text("run-log", run.log_tail); // staff only; null for everyone else
  const finished = ["succeeded", "failed", "cancelled"].includes(run.status);
  if (finished !== ["succeeded", "failed", "cancelled"].includes(section.dataset.status)
      || run.history.length !== Number(section.dataset.epochsDone)) {
    window.location.reload();
    return false;
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

if (section && !["succeeded", "failed", "cancelled"].includes(section.dataset.status)) setTimeout(loop, POLL_MS);
