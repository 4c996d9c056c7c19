// The validate page: the server picks the clip; "Valid" unlocks only after the clip has played to the end.
import { ApiError, getJson, postJson } from "./api.js";

const root = document.getElementById("validator");
const $ = (id) => document.getElementById(id);
const ui = {
  quota: $("quota"), prompt: $("clip-prompt"), audio: $("clip-audio"), valid: $("valid-button"),
  invalid: $("invalid-button"), skip: $("skip-button"), report: $("report"), reportForm: $("report-form"),
  reason: $("report-reason"), note: $("report-note"), status: $("status"), alert: $("alert"),
};
let clip = null;

function say(message) { ui.status.textContent = message; }
function warn(message) { ui.alert.textContent = message; }
function enable({ valid = false, others = false } = {}) {
  ui.valid.disabled = !valid;
  ui.invalid.disabled = !others;
  ui.skip.disabled = !others;
}

// Shows the next assignment: the one a vote's answer carries, else a fresh validation/next. ``thanks``
// (what the last action did) stays in front of the next instruction rather than being overwritten.
async function load(offer = null, thanks = "") {
  enable();
  root.dataset.state = "loading";
  let data = offer;
  if (!data) {
    try {
      data = await getJson("/api/v1/validation/next");
    } catch (error) {
      root.dataset.state = "error";
      warn(error.message);
      return;
    }
  }
  const say = (message) => { ui.status.textContent = thanks ? `${thanks} ${message}` : message; };
  ui.quota.textContent = String(data.quota_left);
  clip = data.clip;
  if (!clip) {
    ui.prompt.textContent = "";
    ui.audio.removeAttribute("src");
    if (data.reason === "quota_exhausted") {
      root.dataset.state = "quota";
      say("You have used the votes your recordings earned. Record more clips to validate more.");
    } else {
      root.dataset.state = "empty";
      say("No clips are waiting for you right now. Thank you!");
    }
    return;
  }
  root.dataset.clipId = String(clip.id);
  ui.prompt.textContent = clip.prompt_text;
  ui.audio.src = clip.audio_url;
  ui.report.open = false;
  enable({ others: true });
  root.dataset.state = "ready";
  say("Listen to the clip to the end, then give your verdict.");
}

async function act(request, thanks) {
  enable();
  let answer;
  try {
    answer = await request();
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      warn(error.message);
      ui.quota.textContent = "0";
      root.dataset.state = "quota";
      return;
    }
    // The assignment expired or the clip was decided meanwhile: nothing to fix, the next clip follows.
    warn(error instanceof ApiError && error.code === "clip_not_assigned" ? "Time ran out on that clip; here is another." : error.message);
    await load();
    return;
  }
  warn("");
  await load(answer && answer.next ? answer.next : null, thanks);
}

// Seconds of the clip actually played: seeking to the end of the player does not count as listening.
function heardSeconds(audio) {
  let total = 0;
  for (let i = 0; i < audio.played.length; i += 1) total += audio.played.end(i) - audio.played.start(i);
  return total;
}

ui.audio.addEventListener("ended", () => {
  if (!clip) return;
  if (Number.isFinite(ui.audio.duration) && heardSeconds(ui.audio) < ui.audio.duration - 0.25) {
    say("Listen to the whole clip before calling it valid: skipping ahead does not count. Play it again from the start.");
    return;
  }
  ui.valid.disabled = false;
  root.dataset.state = "listened";
  say("You listened to the whole clip. Is it a clear reading of the sentence?");
});
ui.valid.addEventListener("click", () => act(() => postJson(`/api/v1/clips/${clip.id}/votes`, { verdict: "valid" }), "Thanks: counted as valid."));
ui.invalid.addEventListener("click", () => act(() => postJson(`/api/v1/clips/${clip.id}/votes`, { verdict: "invalid" }), "Thanks: counted as invalid."));
ui.skip.addEventListener("click", () => act(() => postJson(`/api/v1/clips/${clip.id}/skip`), "Skipped."));
ui.reportForm.addEventListener("submit", (event) => {
  event.preventDefault();
  act(() => postJson(`/api/v1/clips/${clip.id}/report`, { reason: ui.reason.value, note: ui.note.value }), "Thanks: reported to the operators.");
});
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  if (event.target.closest && event.target.closest("input, textarea, select, button, audio, summary")) return;
  const key = event.key.toLowerCase();
  if (key === " ") { event.preventDefault(); if (ui.audio.paused) ui.audio.play(); else ui.audio.pause(); return; }
  const button = { v: ui.valid, i: ui.invalid, k: ui.skip }[key];
  if (button && !button.disabled) { event.preventDefault(); button.click(); }
});

load();
