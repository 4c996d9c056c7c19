// "Your recordings in review": the volunteer's latest clips on their way through validation (pending, the
// counted votes so far against the unanimous votes a clip needs, then valid or invalid), and this week's
// seconds of validated recordings against the weekly goal, with the streak of weeks that met it. Read from
// /api/v1/me/progress and patched in place: after each submitted set (the recorder calls refresh), and every
// few seconds while a clip is still in review and the page is in view.
import { ApiError, getJson } from "./api.js";

const STATUS_TEXT = { valid: "Valid", invalid: "Not accepted", discarded: "Set aside" };

function clipLine(clip, needed) {
  const item = document.createElement("li");
  item.dataset.clipId = String(clip.id);
  item.dataset.status = clip.status;
  const text = document.createElement("span");
  text.className = "progress-sentence";
  text.textContent = `“${clip.prompt_text}”`;
  const badge = document.createElement("span");
  badge.className = `badge badge-${clip.status}`;
  if (clip.status === "pending") {
    const votes = clip.votes_counted;
    badge.textContent = votes
      ? `In review · ${votes} of ${needed} votes (${clip.votes_valid_counted} valid)`
      : `Waiting for validators · 0 of ${needed} votes`;
  } else {
    badge.textContent = STATUS_TEXT[clip.status] || clip.status;
  }
  item.append(text, " ", badge);
  return item;
}

function seconds(value) { return `${Math.round(value)} s`; }

export function followProgress(root) {
  const list = root.querySelector("#progress-list");
  const goal = root.querySelector("#week-goal");
  const meter = root.querySelector("#week-meter");
  const intervalMs = Number(root.dataset.pollSeconds || 15) * 1000;
  let timer = null;

  function schedule(pending) {
    clearTimeout(timer);
    timer = pending ? setTimeout(refresh, intervalMs) : null;
  }

  async function refresh() {
    let data;
    try {
      data = await getJson("/api/v1/me/progress");
    } catch (error) {
      // A network blip or a busy server: try again later, keeping what is shown. A refusal (logged out
      // meanwhile) will not change by asking again.
      schedule(!(error instanceof ApiError && error.status >= 400 && error.status < 500));
      return;
    }
    const week = data.week;
    meter.max = week.goal_s;
    meter.value = Math.min(week.validated_s, week.goal_s);
    const streak = week.streak_weeks
      ? ` · goal met ${week.streak_weeks} week${week.streak_weeks === 1 ? "" : "s"} in a row`
      : "";
    goal.textContent = `This week: ${seconds(week.validated_s)} of your speech validated, goal ${seconds(week.goal_s)}${week.validated_s >= week.goal_s ? " (met!)" : ""}${streak}.`;
    root.dataset.validatedSeconds = String(week.validated_s);
    if (data.clips.length) {
      list.replaceChildren(...data.clips.map((clip) => clipLine(clip, data.votes_needed)));
    } else {
      const empty = document.createElement("li");
      empty.className = "progress-empty"; // a note, not a numbered recording
      empty.textContent = "Your submitted recordings show here, with their votes, as trustees validate them.";
      list.replaceChildren(empty);
    }
    root.hidden = false;
    const pending = data.clips.some((clip) => clip.status === "pending");
    root.dataset.pending = String(data.clips.filter((clip) => clip.status === "pending").length);
    schedule(pending && document.visibilityState === "visible");
  }

  // A hidden tab stops asking; coming back refreshes at once.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh(); else schedule(false);
  });
  refresh();
  return { refresh };
}

const root = document.getElementById("progress");
export const progress = root ? followProgress(root) : { refresh() {} };
