// The record page: sets of five prompts, each recorded through an AudioWorklet as raw PCM at the device's
// rate, encoded as WAV and uploaded losslessly (the server resamples to 16 kHz). One microphone stream per
// take, closed at stop.
import { ApiError, getJson, uploadWithRetry } from "./api.js";
import { speechRatio } from "./speech.js";
import { concat, encodeWav } from "./wav.js";

const TAIL_MS = 300; // keep recording a little after Stop, so the last word is not cut
// The server's limits, from the page (settings.CLIP_LIMITS), so that the page and the server never disagree.
const LIMITS = document.getElementById("recorder").dataset;
const MIN_SECONDS = Number(LIMITS.minSeconds || 1);
const MAX_SECONDS = Number(LIMITS.maxSeconds || 15);
const SILENCE_DBFS = Number(LIMITS.silenceDbfs || -60);
const MIN_SPEECH_RATIO = Number(LIMITS.minSpeechRatio || 0);
const MAX_UPLOAD_RATE = 48000; // the highest sample rate the server accepts
const SET_SIZE = 5;

const root = document.getElementById("recorder");
const workletUrl = document.getElementById("recorder-script").dataset.worklet;
const $ = (id) => document.getElementById(id);
const ui = {
  promptText: $("prompt-text"), list: $("prompt-list"), progress: $("set-progress"), level: $("level"),
  takeInfo: $("take-info"), record: $("record-button"), play: $("play-button"), prev: $("prev-button"),
  next: $("next-button"), submit: $("submit-button"), upload: $("upload-progress"), status: $("status"),
  alert: $("alert"),
};

const state = { prompts: [], index: 0, takes: new Map(), session: null, player: null, busy: false };

function say(message) { ui.status.textContent = message; }
function warn(message) { ui.alert.textContent = message; }
function setState(name) { root.dataset.state = name; }
function current() { return state.prompts[state.index]; }
// A take still to upload: not sent yet, not refused by the server, not flagged by the page's own checks.
function sendable(take) { return !take.uploaded && !take.refused && !take.flagged; }

function render() {
  const prompt = current();
  const recorded = state.prompts.filter((p) => state.takes.has(p.id) && !state.takes.get(p.id).flagged).length;
  const recording = state.session !== null;
  if (!prompt) {
    ui.promptText.textContent = "";
    ui.progress.textContent = "";
  } else {
    ui.promptText.textContent = prompt.text;
    ui.progress.textContent = `Sentence ${state.index + 1} of ${state.prompts.length} · ${recorded} recorded`;
  }
  const take = prompt && state.takes.get(prompt.id);
  ui.takeInfo.textContent = take
    ? `Your take: ${take.duration.toFixed(1)} s${take.uploaded ? " (submitted)" : ""}${take.refused ? ` — not accepted: ${take.refused} Record it again.` : ""}${take.flagged ? ` — not sent: ${take.flagged}. Record it again.` : ""}`
    : "";
  ui.record.textContent = recording ? "Stop" : take ? "Record again" : "Record";
  ui.record.setAttribute("aria-pressed", recording ? "true" : "false");
  ui.record.disabled = !prompt || state.busy || (take && take.uploaded);
  ui.play.disabled = !take || recording || state.busy;
  ui.prev.disabled = recording || state.busy || state.index === 0;
  ui.next.disabled = recording || state.busy || state.index >= state.prompts.length - 1;
  const pending = [...state.takes.values()].filter(sendable).length;
  ui.submit.disabled = recording || state.busy || pending === 0;
  ui.submit.textContent = pending ? `Submit ${pending} recording${pending === 1 ? "" : "s"}` : "Submit recordings";
  ui.list.replaceChildren(...state.prompts.map((p, i) => {
    const item = document.createElement("li");
    const t = state.takes.get(p.id);
    item.textContent = `${p.text} — ${t ? (t.uploaded ? "submitted" : t.refused ? "not accepted: record again" : t.flagged ? "too little speech: record again" : "recorded") : "not recorded"}`;
    if (i === state.index) item.setAttribute("aria-current", "step");
    return item;
  }));
}

// RMS level of a take in dBFS (-Infinity for digital silence), the measure the server's silence check uses.
function levelDbfs(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  return rms > 0 ? 20 * Math.log10(rms) : -Infinity;
}

// Takes live only in this page until they are submitted: say so before the page is left.
window.addEventListener("beforeunload", (event) => {
  const unsent = [...state.takes.values()].some(sendable);
  if (unsent || state.session) {
    event.preventDefault();
    event.returnValue = "Your recordings have not been submitted."; // older browsers need a non-empty value
  }
});

function microphoneMessage(error) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return ["unsupported", "This browser cannot record here. Recording needs a secure (https) page and a current browser."];
  }
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return ["denied", "Microphone access was denied. Allow the microphone for this site in your browser's settings, then press Record again."];
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return ["absent", "No microphone was found. Connect one, then press Record again."];
  }
  if (name === "NotReadableError") {
    return ["busy", "The microphone is in use by another program. Close it, then press Record again."];
  }
  return ["error", `The microphone could not be opened (${name || "unknown error"}).`];
}

// Opening the microphone and starting the worklet take a while; the busy flag keeps a second click (a double
// click, the R key) from opening a second stream meanwhile, and every failure on the way closes what was
// opened, so that no microphone stays on (the browser's recording indicator with it).
async function startRecording() {
  if (state.busy || state.session) return;
  state.busy = true;
  warn("");
  setState("starting");
  render();
  let stream = null;
  let context = null;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("unsupported");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      const [code, message] = microphoneMessage(error);
      root.dataset.micError = code;
      setState("mic-error");
      warn(message);
      return;
    }
    delete root.dataset.micError;
    context = new AudioContext();
    if (context.sampleRate > MAX_UPLOAD_RATE) {
      // A 96 kHz device: let the browser's capture path bring it to 48 kHz, the most the server accepts.
      await context.close();
      context = new AudioContext({ sampleRate: MAX_UPLOAD_RATE });
    }
    await context.audioWorklet.addModule(workletUrl);
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "pcm-capture");
    const mute = context.createGain();
    mute.gain.value = 0; // the graph must reach the destination to be pulled; nothing is heard
    const session = { stream, context, source, node, chunks: [], samples: 0, promptId: current().id, flushed: null };
    const maxSamples = context.sampleRate * (MAX_SECONDS - 0.5);
    let started = false;
    node.port.onmessage = ({ data }) => {
      if (data.flushed) { if (session.flushed) session.flushed(); return; }
      if (!started) { started = true; setState("recording"); say("Recording… read the sentence aloud."); }
      session.chunks.push(data.samples);
      session.samples += data.samples.length;
      ui.level.style.width = `${Math.min(100, Math.round(data.peak * 140))}%`;
      if (session.samples > maxSamples && state.session === session) stopRecording({ cut: true });
    };
    source.connect(node).connect(mute).connect(context.destination);
    state.session = session;
    stream = null; // the session owns it now: stopRecording closes it
    context = null;
  } catch (error) {
    root.dataset.micError = "start";
    setState("mic-error");
    warn(`The recorder could not start (${(error && (error.message || error.name)) || "unknown error"}). Reload the page and press Record again.`);
  } finally {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (context) context.close().catch(() => {});
    state.busy = false;
    render();
  }
}

// Asks the worklet for the rest of its current batch; resolves when it has arrived (or after a second, if the
// audio thread is gone).
function flushWorklet(session) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    session.flushed = () => { clearTimeout(timer); resolve(); };
    session.node.port.postMessage("flush");
  });
}

function flag(promptId, take, reason) {
  const old = state.takes.get(promptId);
  if (old) URL.revokeObjectURL(old.url);
  state.takes.set(promptId, { ...take, flagged: reason });
}

async function stopRecording({ cut = false } = {}) {
  const session = state.session;
  if (!session) return;
  state.session = null;
  state.busy = true;
  setState("finishing");
  render();
  let samples;
  let rate;
  try {
    await new Promise((resolve) => setTimeout(resolve, TAIL_MS));
    await flushWorklet(session);
    session.source.disconnect();
    session.node.disconnect();
    rate = session.context.sampleRate;
    samples = concat(session.chunks);
  } finally {
    session.stream.getTracks().forEach((track) => track.stop());
    await session.context.close().catch(() => {});
    ui.level.style.width = "0%";
    state.busy = false;
  }
  delete root.dataset.flag;
  if (samples.length < rate * MIN_SECONDS) {
    setState(state.takes.has(session.promptId) ? "recorded" : "idle");
    warn(`That take was ${(samples.length / rate).toFixed(1)} s; a clip must be at least ${MIN_SECONDS} s. Press Record, read the whole sentence, then press Stop.`);
    render();
    return;
  }
  if (levelDbfs(samples) < SILENCE_DBFS) {
    setState(state.takes.has(session.promptId) ? "recorded" : "idle");
    warn("That take is silent: check that the right microphone is selected and not muted, then record again.");
    render();
    return;
  }
  // Uploaded at the device's own rate, losslessly: the server resamples to 16 kHz with soxr's filter.
  // (Chromium's AudioBuffer resampling is linear interpolation, which at 48 -> 16 kHz folds everything
  // above 8 kHz into the band for good.)
  const blob = encodeWav(samples, rate);
  const seconds = samples.length / rate;
  const take = { blob, url: URL.createObjectURL(blob), duration: seconds, uploaded: false, refused: "", flagged: "" };
  // The server refuses takes with too little speech (audio_no_speech) by the same measure and threshold: kept
  // to be heard, marked, and never sent.
  const ratio = speechRatio(samples, rate);
  if (ratio < MIN_SPEECH_RATIO) {
    const reason = `too little speech (${Math.round(ratio * 100)} % of the take; at least ${Math.round(MIN_SPEECH_RATIO * 100)} %)`;
    flag(session.promptId, take, reason);
    root.dataset.flag = "no_speech";
    setState("recorded");
    warn(`Sentence ${state.prompts.findIndex((p) => p.id === session.promptId) + 1}: ${reason}. Read the sentence aloud, close to the microphone, and press Stop soon after; record it again.`);
    say(`Recorded ${seconds.toFixed(1)} seconds; not sent.`);
    render();
    return;
  }
  flag(session.promptId, take, "");
  setState("recorded");
  if (cut) {
    warn(`Recording stopped at ${MAX_SECONDS} seconds, the longest a clip may be: if the sentence was cut off, record it again.`);
  } else {
    warn("");
  }
  say(`Recorded ${seconds.toFixed(1)} seconds. Play it back, record again, or go on.`);
  render();
}

function play() {
  const take = state.takes.get(current().id);
  if (!take) return;
  if (state.player) state.player.pause();
  state.player = new Audio(take.url);
  setState("playing");
  say("Playing your take…");
  state.player.addEventListener("ended", () => { setState("recorded"); say("Played back."); root.dataset.played = "true"; });
  state.player.play().catch(() => warn("The take could not be played back."));
}

function move(step) {
  state.index = Math.max(0, Math.min(state.prompts.length - 1, state.index + step));
  setState(state.takes.has(current().id) ? "recorded" : "idle");
  say("");
  render();
  ui.record.focus();
}

// A take the server refuses (too short, silent...) is marked with its reason and skipped; the others still go
// up. Only a failure to reach the server at all (after retries) stops the set.
async function submit() {
  const pending = state.prompts.filter((p) => {
    const take = state.takes.get(p.id);
    return take && sendable(take);
  });
  if (!pending.length) return;
  state.busy = true;
  setState("uploading");
  warn("");
  render();
  let done = 0;
  const refused = [];
  let unreachable = null;
  for (const [position, prompt] of pending.entries()) {
    const take = state.takes.get(prompt.id);
    const form = new FormData();
    form.append("prompt", String(prompt.id));
    form.append("audio", take.blob, `prompt-${prompt.id}.wav`);
    say(`Uploading ${position + 1} of ${pending.length}…`);
    try {
      await uploadWithRetry("/api/v1/clips/", form, {
        onProgress: (fraction) => { ui.upload.value = Math.round(((position + fraction) / pending.length) * 100); },
      });
      take.uploaded = true;
      done += 1;
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
        take.refused = error.message;
        refused.push(prompt);
      } else {
        unreachable = error instanceof ApiError ? error.message : String(error);
        break;
      }
    }
    ui.upload.value = Math.round(((position + 1) / pending.length) * 100);
    render();
  }
  state.busy = false;
  root.dataset.submitted = String(Number(root.dataset.submitted || 0) + done);
  const sent = `Submitted ${done} recording${done === 1 ? "" : "s"}.`;
  if (unreachable || refused.length) {
    setState("upload-error");
    const problems = refused.map((p) => `“${p.text}”: ${state.takes.get(p.id).refused}`);
    if (unreachable) problems.push(`The rest were not sent (${unreachable}); press Submit to try again.`);
    else problems.push("Record those again, then submit.");
    say(sent);
    warn(`${refused.length ? `Not accepted: ${problems.join(" ")}` : problems.join(" ")}`);
    if (refused.length) {
      state.index = state.prompts.indexOf(refused[0]);
    }
    render();
    return;
  }
  setState("submitted");
  say(`${sent} Thank you!`);
  if (state.prompts.every((p) => state.takes.has(p.id) && state.takes.get(p.id).uploaded)) {
    await loadPrompts();
  } else {
    render();
  }
}

async function loadPrompts() {
  try {
    state.prompts = await getJson(`/api/v1/prompts/next?count=${SET_SIZE}`);
  } catch (error) {
    warn(`Could not load sentences: ${error.message}`);
    return;
  }
  state.index = 0;
  state.takes = new Map();
  ui.upload.value = 0;
  if (!state.prompts.length) {
    setState("finished");
    say("You have recorded every sentence we have. Thank you!");
  } else {
    setState("idle");
  }
  render();
}

ui.record.addEventListener("click", () => (state.session ? stopRecording() : startRecording()));
ui.play.addEventListener("click", play);
ui.prev.addEventListener("click", () => move(-1));
ui.next.addEventListener("click", () => move(1));
ui.submit.addEventListener("click", submit);
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  if (event.target.closest && event.target.closest("input, textarea, select")) return;
  const actions = { r: ui.record, p: ui.play, n: ui.next, b: ui.prev, s: ui.submit };
  const button = actions[event.key.toLowerCase()];
  if (button && !button.disabled) { event.preventDefault(); button.click(); }
});

// sentences.js (skip / report a sentence) reads the sentence on screen and swaps it for the server's next one.
root.addEventListener("sentences:current", ({ detail }) => {
  Object.assign(detail, { prompt: current(), ids: state.prompts.map((p) => p.id), busy: state.busy || state.session !== null });
});
root.addEventListener("sentences:replace", ({ detail }) => {
  const index = state.prompts.findIndex((p) => p.id === detail.id);
  if (index < 0) return;
  if (state.takes.has(detail.id)) URL.revokeObjectURL(state.takes.get(detail.id).url);
  state.takes.delete(detail.id);
  if (detail.next) state.prompts[index] = detail.next; else state.prompts.splice(index, 1);
  if (!state.prompts.length) { loadPrompts(); return; }
  state.index = Math.min(state.index, state.prompts.length - 1);
  setState(state.takes.has(current().id) ? "recorded" : "idle");
  render();
});

loadPrompts();
