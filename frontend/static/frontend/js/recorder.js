// The record page: sets of five prompts, each recorded through an AudioWorklet as raw PCM at the device's
// rate, encoded as WAV and uploaded losslessly (the server resamples to 16 kHz). One microphone stream per
// take, closed at stop.
import { ApiError, getJson, uploadWithRetry } from "./api.js";
import { concat, encodeWav } from "./wav.js";

const TAIL_MS = 300; // keep recording a little after Stop, so the last word is not cut
const MAX_SECONDS = 15; // the server refuses longer clips
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

function render() {
  const prompt = current();
  const recorded = state.prompts.filter((p) => state.takes.has(p.id)).length;
  const recording = state.session !== null;
  if (!prompt) {
    ui.promptText.textContent = "";
    ui.progress.textContent = "";
  } else {
    ui.promptText.textContent = prompt.text;
    ui.progress.textContent = `Sentence ${state.index + 1} of ${state.prompts.length} · ${recorded} recorded`;
  }
  const take = prompt && state.takes.get(prompt.id);
  ui.takeInfo.textContent = take ? `Your take: ${take.duration.toFixed(1)} s${take.uploaded ? " (submitted)" : ""}` : "";
  ui.record.textContent = recording ? "Stop" : take ? "Record again" : "Record";
  ui.record.setAttribute("aria-pressed", recording ? "true" : "false");
  ui.record.disabled = !prompt || state.busy || (take && take.uploaded);
  ui.play.disabled = !take || recording || state.busy;
  ui.prev.disabled = recording || state.busy || state.index === 0;
  ui.next.disabled = recording || state.busy || state.index >= state.prompts.length - 1;
  const pending = [...state.takes.values()].filter((t) => !t.uploaded).length;
  ui.submit.disabled = recording || state.busy || pending === 0;
  ui.submit.textContent = pending ? `Submit ${pending} recording${pending === 1 ? "" : "s"}` : "Submit recordings";
  ui.list.replaceChildren(...state.prompts.map((p, i) => {
    const item = document.createElement("li");
    const t = state.takes.get(p.id);
    item.textContent = `${p.text} — ${t ? (t.uploaded ? "submitted" : "recorded") : "not recorded"}`;
    if (i === state.index) item.setAttribute("aria-current", "step");
    return item;
  }));
}

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

async function startRecording() {
  warn("");
  let stream;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("unsupported");
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
  let context = new AudioContext();
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
  const chunks = [];
  let started = null;
  node.port.onmessage = ({ data }) => {
    if (started === null) { started = performance.now(); setState("recording"); say("Recording… read the sentence aloud."); }
    chunks.push(data.samples);
    ui.level.style.width = `${Math.min(100, Math.round(data.peak * 140))}%`;
    if (chunks.length * 128 > context.sampleRate * (MAX_SECONDS - 0.5) && state.session) {
      say(`Stopped at ${MAX_SECONDS} seconds, the longest a clip may be.`);
      stopRecording();
    }
  };
  source.connect(node).connect(mute).connect(context.destination);
  state.session = { stream, context, source, node, chunks, promptId: current().id };
  setState("starting");
  render();
}

async function stopRecording() {
  const session = state.session;
  if (!session) return;
  state.session = null;
  state.busy = true;
  setState("finishing");
  render();
  await new Promise((resolve) => setTimeout(resolve, TAIL_MS));
  session.source.disconnect();
  session.node.disconnect();
  session.stream.getTracks().forEach((track) => track.stop());
  const rate = session.context.sampleRate;
  await session.context.close();
  ui.level.style.width = "0%";
  const samples = concat(session.chunks);
  state.busy = false;
  if (samples.length < rate * 0.5) {
    setState("idle");
    warn("That take was too short. Press Record, read the sentence, then press Stop.");
    render();
    return;
  }
  // Uploaded at the device's own rate, losslessly: the server resamples to 16 kHz with soxr's filter.
  // (Chromium's AudioBuffer resampling is linear interpolation, which at 48 -> 16 kHz folds everything
  // above 8 kHz into the band for good.)
  const blob = encodeWav(samples, rate);
  const seconds = samples.length / rate;
  const old = state.takes.get(session.promptId);
  if (old) URL.revokeObjectURL(old.url);
  state.takes.set(session.promptId, { blob, url: URL.createObjectURL(blob), duration: seconds, uploaded: false });
  setState("recorded");
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

async function submit() {
  const pending = state.prompts.filter((p) => state.takes.has(p.id) && !state.takes.get(p.id).uploaded);
  if (!pending.length) return;
  state.busy = true;
  setState("uploading");
  warn("");
  render();
  let done = 0;
  try {
    for (const prompt of pending) {
      const take = state.takes.get(prompt.id);
      const form = new FormData();
      form.append("prompt", String(prompt.id));
      form.append("audio", take.blob, `prompt-${prompt.id}.wav`);
      say(`Uploading ${done + 1} of ${pending.length}…`);
      await uploadWithRetry("/api/v1/clips/", form, {
        onProgress: (fraction) => { ui.upload.value = Math.round(((done + fraction) / pending.length) * 100); },
      });
      take.uploaded = true;
      done += 1;
      ui.upload.value = Math.round((done / pending.length) * 100);
      render();
    }
  } catch (error) {
    state.busy = false;
    setState("upload-error");
    const message = error instanceof ApiError ? error.message : String(error);
    warn(`Submitting failed: ${message}`);
    render();
    return;
  }
  state.busy = false;
  setState("submitted");
  say(`Submitted ${done} recording${done === 1 ? "" : "s"}. Thank you!`);
  root.dataset.submitted = String(Number(root.dataset.submitted || 0) + done);
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

loadPrompts();
