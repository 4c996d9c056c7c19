// The validate page: the server picks the clip; "Valid" unlocks only once the parts of the clip actually played
// (audio.played) cover at least 95 % of it; "Invalid" asks for the reason. What the last verdict did stays on screen until the next clip plays.
import { ApiError, getJson, postJson } from "./api.js";

const root = document.getElementById("validator");
const $ = (id) => document.getElementById(id);
const ui = {
  quota: $("quota"), prompt: $("clip-prompt"), audio: $("clip-audio"), valid: $("valid-button"),
  invalid: $("invalid-button"), skip: $("skip-button"), report: $("report"), reportForm: $("report-form"),
  reason: $("report-reason"), note: $("report-note"), status: $("status"), alert: $("alert"),
  confirmation: $("confirmation"), reasons: $("invalid-reasons"), cancel: $("invalid-cancel"),
};
const reasonButtons = Array.from(ui.reasons.querySelectorAll("button[data-reason]"));
let clip = null;

function say(message) { ui.status.textContent = message; }
// ``error`` a 401 (the session ended, in another tab perhaps): the message comes with a way back in.
function warn(message, error = null) {
  ui.alert.textContent = message;
  if (!(error instanceof ApiError && error.status === 401)) return;
  const login = document.createElement("a");
  login.href = `/login/?next=${encodeURIComponent(location.pathname)}`;
  login.textContent = "Log in again";
  ui.alert.append(" ", login);
}
function enable({ valid = false, others = false } = {}) {
  ui.valid.disabled = !valid;
  ui.invalid.disabled = !others;
  ui.skip.disabled = !others;
  for (const button of reasonButtons) button.disabled = !others;
}

function showReasons(open) {
  ui.reasons.hidden = !open;
  ui.invalid.setAttribute("aria-expanded", String(open));
  if (open) reasonButtons[0].focus();
}

// Shows the next assignment: the one a vote's answer carries, else a fresh validation/next. ``thanks``
// (what the last action did) goes in its own line, which stays until the next clip starts playing.
async function load(offer = null, thanks = "") {
  enable();
  showReasons(false);
  if (thanks) ui.confirmation.textContent = thanks;
  root.dataset.state = "loading";
  let data = offer;
  if (!data) {
    try {
      data = await getJson("/api/v1/validation/next");
    } catch (error) {
      root.dataset.state = "error";
      warn(error.message, error);
      return;
    }
  }
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
      showReasons(false);
      return;
    }
    if (error instanceof ApiError && error.status === 401) {
      root.dataset.state = "error";
      warn(error.message, error);
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

// The share of the clip that must have been played for "Valid": all of it but a few words' worth of slack (a
// player's first or last frames, a click on the seek bar that skips a fraction of a second).
const HEARD_SHARE = 0.95;

// Share of the clip actually played: audio.played holds the ranges played, merged, so a seek to the end
// adds only what then plays.
function heardShare(audio) {
  if (!Number.isFinite(audio.duration) || audio.duration <= 0) return 0;
  let total = 0;
  for (let i = 0; i < audio.played.length; i += 1) total += audio.played.end(i) - audio.played.start(i);
  return total / audio.duration;
}

function checkHeard() {
  if (!clip || root.dataset.state !== "ready" || heardShare(ui.audio) < HEARD_SHARE) return false;
  ui.valid.disabled = false;
  root.dataset.state = "listened";
  say("You listened to the clip. Is it a clear reading of the sentence?");
  return true;
}

ui.audio.addEventListener("play", () => { ui.confirmation.textContent = ""; });
ui.audio.addEventListener("timeupdate", checkHeard);
ui.audio.addEventListener("pause", checkHeard);
ui.audio.addEventListener("ended", () => {
  if (!clip || root.dataset.state !== "ready" || checkHeard()) return;
  const share = Math.round(heardShare(ui.audio) * 100);
  say(`You heard ${share}\u00a0% of the clip; "Valid" needs ${Math.round(HEARD_SHARE * 100)}\u00a0%: skipping ahead does not count. Play the rest of it.`);
});
ui.valid.addEventListener("click", () => act(() => postJson(`/api/v1/clips/${clip.id}/votes`, { verdict: "valid" }), "Thanks: counted as valid."));
ui.invalid.addEventListener("click", () => showReasons(ui.reasons.hidden));
ui.cancel.addEventListener("click", () => { showReasons(false); ui.invalid.focus(); });
for (const button of reasonButtons) {
  const label = button.textContent.replace(/^\s*\d+\s*/, "").toLowerCase();
  button.addEventListener("click", () => act(
    () => postJson(`/api/v1/clips/${clip.id}/votes`, { verdict: "invalid", reason: button.dataset.reason }),
    `Thanks: counted as invalid (${label}).`,
  ));
}
ui.skip.addEventListener("click", () => act(() => postJson(`/api/v1/clips/${clip.id}/skip`), "Skipped."));
ui.reportForm.addEventListener("submit", (event) => {
  event.preventDefault();
  act(() => postJson(`/api/v1/clips/${clip.id}/report`, { reason: ui.reason.value, note: ui.note.value }), "Thanks: reported to the operators.");
});
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  const key = event.key.toLowerCase();
  if (!ui.reasons.hidden) {
    // The reasons are open (focus is on one of them): a digit picks one, Escape goes back to the verdicts.
    const picked = reasonButtons[Number(key) - 1];
    if (/^[1-9]$/.test(key) && picked && !picked.disabled) { event.preventDefault(); picked.click(); return; }
    if (key === "escape") { event.preventDefault(); ui.cancel.click(); return; }
  }
  const target = event.target.closest ? event.target : null;
  // Typing in the report form is text, not a shortcut; the letters work wherever else focus is (on a button after
  // Escape, on the player), while Space keeps its own meaning on what it activates natively.
  if (target && target.closest("input, textarea, select, [contenteditable]")) return;
  if (key === " ") {
    if (target && target.closest("button, audio, summary, a")) return;
    event.preventDefault();
    if (ui.audio.paused) ui.audio.play(); else ui.audio.pause();
    return;
  }
  const button = { v: ui.valid, i: ui.invalid, k: ui.skip }[key];
  if (button && !button.disabled) { event.preventDefault(); button.click(); }
});

// At 0 votes left the page asks for no clip: the server said so when rendering it.
if (root.dataset.state !== "quota") load();
