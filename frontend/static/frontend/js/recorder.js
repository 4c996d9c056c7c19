// The record page: sets of five prompts, each recorded through an AudioWorklet as raw PCM at the device's
// rate, encoded as WAV and uploaded losslessly (the server resamples to 16 kHz). One microphone stream per
// take, closed at stop. Takes not yet submitted are kept in IndexedDB (takes-store.js) and offered again after
// a reload.
import { ApiError, getJson, uploadWithRetry } from "./api.js";
import { progress } from "./progress.js";
import { speechRatio } from "./speech.js";
import { forgetTake, keepTake, keptTakes } from "./takes-store.js";
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
const OWNER = LIMITS.owner || "";
const LOGIN_URL = LIMITS.loginUrl || "/login/";

// The live meter shows each ~85 ms block's peak in dBFS, on a bar that spans METER_FLOOR_DBFS to 0 dB linearly
// in decibels, as recording software does: a normal voice peaking near -12 dBFS fills 80 % of it (a bar linear
// in amplitude showed it at 16-20 %, and a quiet one at 0-2 %).
const METER_FLOOR_DBFS = -60;
// "Too quiet": the loudest block of the last QUIET_WINDOW_S seconds stays under QUIET_DBFS RMS. The server
// counts a 25 ms frame as speech only above -55 dBFS (and 10 dB over the take's noise floor; see speech.js);
// speech whose loudest syllables stay under -40 dBFS has its softer ones, 10-20 dB lower, under -55 dBFS,
// where the server hears none of them. A normal reading's loudest blocks are around -25 to -15 dBFS.
const QUIET_DBFS = -40;
const QUIET_WINDOW_S = 2;
// "Clipping": a sample at the server's full-scale mark (contributors.audio counts |x| >= 0.999 as clipped and
// refuses a clip with more than 1 % of them). One is warned about at once: the input is at its limit, and
// the next louder word will be flattened. The warning stays CLIP_HOLD_S so that it can be read.
const CLIP_PEAK = 0.999;
const CLIP_HOLD_S = 1.5;
const PEAK_HOLD_S = 1;
const LEVEL_WARNINGS = {
  quiet: "Too quiet: move closer to the microphone or speak up.",
  clipping: "Clipping: too loud for the microphone. Move back a little or lower its input volume.",
};

const root = document.getElementById("recorder");
const workletUrl = document.getElementById("recorder-script").dataset.worklet;
const $ = (id) => document.getElementById(id);
const ui = {
  promptText: $("prompt-text"), list: $("prompt-list"), progress: $("set-progress"), level: $("level"),
  takeInfo: $("take-info"), record: $("record-button"), play: $("play-button"), prev: $("prev-button"),
  next: $("next-button"), submit: $("submit-button"), upload: $("upload-progress"), status: $("status"),
  alert: $("alert"), discard: $("discard-button"), levelDbfs: $("level-dbfs"), timer: $("timer"),
  levelWarning: $("level-warning"),
};

const state = { prompts: [], index: 0, takes: new Map(), session: null, player: null, busy: false };

function say(message) { ui.status.textContent = message; }
// ``link``, when given ({href, label}), follows the message: the way out of what it says (logging in again).
function warn(message, link = null) {
  ui.alert.textContent = message;
  if (!link) return;
  const anchor = document.createElement("a");
  anchor.href = link.href;
  anchor.textContent = link.label;
  anchor.target = "_blank"; // this page, and the takes in it, stay open; Submit sends them once logged in
  ui.alert.append(" ", anchor);
}
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
  ui.discard.disabled = !take || take.uploaded || recording || state.busy;
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

function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function showLevelWarning(kind) {
  if ((root.dataset.level || "") === kind) return; // the live region speaks only when the warning changes
  if (kind) root.dataset.level = kind; else delete root.dataset.level;
  ui.levelWarning.textContent = LEVEL_WARNINGS[kind] || "";
}

function resetMeter() {
  ui.level.style.width = "0%";
  ui.levelDbfs.textContent = "–∞ dBFS";
  showLevelWarning("");
}

// One block from the worklet: the bar, the dBFS figure, the timer, and the too-quiet and clipping warnings.
function meter(session, { peak, meanSquare }, rate) {
  const peakDb = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
  const fill = Number.isFinite(peakDb) ? (peakDb - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS : 0;
  ui.level.style.width = `${Math.round(Math.max(0, Math.min(1, fill)) * 100)}%`;
  const now = session.samples / rate;
  ui.timer.textContent = `${clock(now)} / ${clock(MAX_SECONDS)}`;
  session.blocks.push({ at: now, peakDb, rmsDb: meanSquare > 0 ? 10 * Math.log10(meanSquare) : -Infinity });
  while (session.blocks[0].at < now - QUIET_WINDOW_S) session.blocks.shift();
  // The figure holds the highest peak of the last second: twelve changes a second cannot be read.
  const held = Math.max(...session.blocks.filter((block) => block.at >= now - PEAK_HOLD_S).map((b) => b.peakDb));
  ui.levelDbfs.textContent = Number.isFinite(held) ? `${Math.round(held)} dBFS` : "–∞ dBFS";
  if (peak >= CLIP_PEAK) session.clippedAt = now;
  const clipping = session.clippedAt !== null && now - session.clippedAt < CLIP_HOLD_S;
  const loudest = Math.max(...session.blocks.map((block) => block.rmsDb));
  const quiet = now >= QUIET_WINDOW_S && loudest < QUIET_DBFS;
  showLevelWarning(clipping ? "clipping" : quiet ? "quiet" : "");
}

// Takes are kept in IndexedDB until they are submitted or discarded; leaving still asks first, since a take
// kept in this browser is not yet in the corpus.
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
    const session = {
      stream, context, source, node, chunks: [], samples: 0, promptId: current().id, flushed: null,
      blocks: [], clippedAt: null,
    };
    const maxSamples = context.sampleRate * (MAX_SECONDS - 0.5);
    let started = false;
    node.port.onmessage = ({ data }) => {
      if (data.flushed) { if (session.flushed) session.flushed(); return; }
      if (!started) { started = true; setState("recording"); say("Recording… read the sentence aloud."); }
      session.chunks.push(data.samples);
      session.samples += data.samples.length;
      meter(session, data, session.context.sampleRate);
      if (session.samples > maxSamples && state.session === session) stopRecording({ cut: true });
    };
    source.connect(node).connect(mute).connect(context.destination);
    state.session = session;
    ui.timer.textContent = `0:00 / ${clock(MAX_SECONDS)}`;
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
    resetMeter();
    state.busy = false;
  }
  delete root.dataset.flag;
  if (samples.length < rate * MIN_SECONDS) {
    setState(state.takes.has(session.promptId) ? "recorded" : "idle");
    warn(`That take was ${(samples.length / rate).toFixed(1)} s; a clip must be at least ${MIN_SECONDS} s. Press Record, read the whole sentence, then press Stop.`);
    say("Not kept: record the sentence again.");
    render();
    return;
  }
  if (levelDbfs(samples) < SILENCE_DBFS) {
    setState(state.takes.has(session.promptId) ? "recorded" : "idle");
    warn("That take is silent: check that the right microphone is selected and not muted, then record again.");
    say("Not kept: record the sentence again.");
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
    forgetTake(OWNER, session.promptId); // it replaced the take kept before, if any; it is never sent
    root.dataset.flag = "no_speech";
    setState("recorded");
    warn(`Sentence ${state.prompts.findIndex((p) => p.id === session.promptId) + 1}: ${reason}. Read the sentence aloud, close to the microphone, and press Stop soon after; record it again.`);
    say(`Recorded ${seconds.toFixed(1)} seconds; not sent.`);
    render();
    return;
  }
  flag(session.promptId, take, "");
  const prompt = state.prompts.find((p) => p.id === session.promptId);
  keepTake(OWNER, { prompt, blob, duration: seconds, position: state.prompts.indexOf(prompt) });
  setState("recorded");
  if (cut) {
    root.dataset.flag = "cut";
    warn(`Recording stopped at ${MAX_SECONDS} seconds, the longest a clip may be: if the sentence was cut off, record it again.`);
  } else if (session.clippedAt !== null) {
    root.dataset.flag = "clipping";
    warn("Parts of that take reached full scale (clipping). Play it back: if it sounds harsh or distorted, record it again a little further from the microphone.");
  } else {
    warn("");
  }
  say(`Recorded ${seconds.toFixed(1)} seconds. Play it back, record again, or go on.`);
  render();
}

// Drops the take of the sentence on screen, here and in the browser's storage.
function discard() {
  const prompt = current();
  const take = prompt && state.takes.get(prompt.id);
  if (!take || take.uploaded || state.busy || state.session) return;
  if (state.player) state.player.pause();
  URL.revokeObjectURL(take.url);
  state.takes.delete(prompt.id);
  forgetTake(OWNER, prompt.id);
  delete root.dataset.flag;
  setState("idle");
  warn("");
  say("Take discarded.");
  render();
  ui.record.focus();
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

// Answers about the session, not the take: logged out (401), CSRF or consent (403), or another account logged in
// meanwhile (409 speaker_changed). The set stops and every take is kept, to be sent once that is put right.
function aboutTheSession(error) {
  return error instanceof ApiError && (error.status === 401 || error.status === 403 || error.code === "speaker_changed");
}

// A take the server refuses (too short, silent...) is marked with its reason and skipped; the others still go
// up. A failure to reach the server at all (after retries), or an answer about the session, stops the set.
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
  let session = null;
  const held = [];
  for (const [position, prompt] of pending.entries()) {
    const take = state.takes.get(prompt.id);
    const form = new FormData();
    form.append("prompt", String(prompt.id));
    if (OWNER) form.append("speaker", OWNER); // who recorded it: refused if another account has logged in since
    form.append("audio", take.blob, `prompt-${prompt.id}.wav`);
    say(`Uploading ${position + 1} of ${pending.length}…`);
    try {
      await uploadWithRetry("/api/v1/clips/", form, {
        onProgress: (fraction) => { ui.upload.value = Math.round(((position + fraction) / pending.length) * 100); },
      });
      take.uploaded = true;
      done += 1;
      forgetTake(OWNER, prompt.id);
    } catch (error) {
      if (aboutTheSession(error)) {
        session = error.message;
        break;
      }
      if (error instanceof ApiError && error.code === "prompt_held") {
        held.push(prompt); // readers reported the sentence meanwhile: it leaves the set, another takes its place
        continue;
      }
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
        take.refused = error.message;
        refused.push(prompt);
        forgetTake(OWNER, prompt.id); // it can never be sent: the sentence is to be recorded again
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
  if (done) progress.refresh();
  const sent = `Submitted ${done} recording${done === 1 ? "" : "s"}.`;
  const withdrawn = held.length ? await replaceHeld(held) : "";
  if (session) {
    setState("upload-error");
    say(sent);
    const left = pending.length - done - refused.length;
    warn(
      `${session} ${left} recording${left === 1 ? " is" : "s are"} kept here: once you are logged in as ` +
        "yourself again, press Submit.",
      { href: LOGIN_URL, label: "Log in (new tab)" },
    );
    render();
    return;
  }
  if (unreachable || refused.length) {
    setState("upload-error");
    const problems = refused.map((p) => `“${p.text}”: ${state.takes.get(p.id).refused}`);
    if (unreachable) problems.push(`The rest were not sent (${unreachable}); press Submit to try again.`);
    else problems.push("Record those again, then submit.");
    say(`${sent}${withdrawn}`);
    warn(`${refused.length ? `Not accepted: ${problems.join(" ")}` : problems.join(" ")}`);
    if (refused.length) {
      state.index = state.prompts.indexOf(refused[0]);
    }
    render();
    return;
  }
  setState("submitted");
  say(`${sent}${withdrawn} Thank you!`);
  if (state.prompts.every((p) => state.takes.has(p.id) && state.takes.get(p.id).uploaded)) {
    await loadPrompts();
  } else {
    render();
  }
}

// A new set of sentences. With ``restore`` (the page has just opened), the takes kept from an earlier visit
// come back first, with their sentences, and the set is filled up with new ones.
async function loadPrompts({ restore = false } = {}) {
  const kept = restore ? await keptTakes(OWNER) : [];
  let fresh = [];
  try {
    fresh = await getJson(`/api/v1/prompts/next?count=${SET_SIZE}`);
  } catch (error) {
    warn(`Could not load sentences: ${error.message}`);
    if (!kept.length) return;
  }
  const keptIds = new Set(kept.map((record) => record.promptId));
  const others = fresh.filter((p) => !keptIds.has(p.id));
  state.prompts = [...kept.map((record) => record.prompt), ...others].slice(0, Math.max(SET_SIZE, kept.length));
  state.index = 0;
  state.takes = new Map(kept.map((record) => [record.promptId, {
    blob: record.blob, url: URL.createObjectURL(record.blob), duration: record.duration,
    uploaded: false, refused: "", flagged: "",
  }]));
  ui.upload.value = 0;
  if (!state.prompts.length) {
    setState("finished");
    say("You have recorded every sentence we have. Thank you!");
  } else if (kept.length) {
    root.dataset.restored = String(kept.length);
    setState("recorded");
    say(`Restored ${kept.length} recording${kept.length === 1 ? "" : "s"} you had not submitted: play ${kept.length === 1 ? "it" : "them"} back, record again or discard, then submit.`);
  } else {
    setState("idle");
  }
  render();
}

ui.record.addEventListener("click", () => (state.session ? stopRecording() : startRecording()));
ui.play.addEventListener("click", play);
ui.discard.addEventListener("click", discard);
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
root.addEventListener("sentences:replace", ({ detail }) => replacePrompt(detail.id, detail.next));

// The sentence ``id`` leaves the set (skipped, reported, or held after readers' reports) with its take, never
// sent; ``next`` takes its place, or none.
function replacePrompt(id, next) {
  const index = state.prompts.findIndex((p) => p.id === id);
  if (index < 0) return;
  if (state.takes.has(id)) URL.revokeObjectURL(state.takes.get(id).url);
  state.takes.delete(id);
  forgetTake(OWNER, id);
  if (next) state.prompts[index] = next; else state.prompts.splice(index, 1);
  if (!state.prompts.length) { loadPrompts(); return; }
  state.index = Math.min(state.index, state.prompts.length - 1);
  setState(state.takes.has(current().id) ? "recorded" : "idle");
  render();
}

// Sentences held for review while their takes waited: each is swapped for a fresh one; says what happened.
async function replaceHeld(held) {
  let fresh = [];
  try {
    fresh = await getJson(`/api/v1/prompts/next?count=${SET_SIZE}`);
  } catch {
    fresh = []; // the held ones just leave the set
  }
  const onScreen = new Set(state.prompts.map((p) => p.id));
  const spare = fresh.filter((p) => !onScreen.has(p.id));
  for (const prompt of held) replacePrompt(prompt.id, spare.shift() || null);
  const named = held.map((p) => `“${p.text}”`).join(", ");
  return held.length === 1
    ? ` ${named} was reported by other readers and is held for review: another sentence took its place.`
    : ` ${named} were reported by other readers and are held for review: other sentences took their places.`;
}

ui.timer.textContent = `0:00 / ${clock(MAX_SECONDS)}`;
loadPrompts({ restore: true });
