// Skip or report the sentence on the record page. The recorder (recorder.js) owns the set of sentences: this
// module asks it, through two events on #recorder, which sentence is on screen and hands it the server's
// replacement, so that neither module reaches into the other's state.
import { ApiError, postJson } from "./api.js";

const root = document.getElementById("recorder");
const $ = (id) => document.getElementById(id);
const ui = {
  skip: $("skip-sentence"), details: $("report-sentence"), form: $("report-sentence-form"),
  reason: $("report-sentence-reason"), note: $("report-sentence-note"), send: $("report-sentence-send"),
  status: $("sentence-status"),
};
let sending = false;

// { prompt, ids, busy } from the recorder: the sentence on screen, every sentence of the set, and whether a take
// is being recorded or uploaded (a sentence is not swapped from under it).
function onScreen() {
  const detail = {};
  root.dispatchEvent(new CustomEvent("sentences:current", { detail }));
  return detail;
}

function refresh() {
  const { prompt, busy } = onScreen();
  const disabled = !prompt || busy || sending;
  ui.skip.disabled = disabled;
  ui.send.disabled = disabled;
}

async function act(kind, body, done) {
  const { prompt, ids } = onScreen();
  if (!prompt || sending) return;
  sending = true;
  refresh();
  try {
    const answer = await postJson(`/api/v1/prompts/${prompt.id}/${kind}`, { ...body, on_screen: ids });
    root.dispatchEvent(new CustomEvent("sentences:replace", { detail: { id: prompt.id, next: answer.next } }));
    ui.status.textContent = `${done}${answer.next ? " Here is another sentence." : " There are no more sentences for you now."}`;
    root.dataset.sentenceAction = kind;
    return true;
  } catch (error) {
    ui.status.textContent = error instanceof ApiError ? error.message : `The sentence could not be ${kind === "skip" ? "skipped" : "reported"}: ${error}`;
    return false;
  } finally {
    sending = false;
    refresh();
  }
}

ui.skip.addEventListener("click", () => act("skip", {}, "Skipped: you will not be asked to read it again."));
ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const sent = await act("report", { reason: ui.reason.value, note: ui.note.value },
    "Thank you: the sentence is reported to the operators and will not be shown to you again.");
  if (sent) {
    ui.form.reset();
    ui.details.open = false;
  }
});
// The recorder moves through states (idle, recording, uploading...) on #recorder's data-state.
new MutationObserver(refresh).observe(root, { attributes: true, attributeFilter: ["data-state"] });
refresh();
