// The server's speech measure (contributors.audio.estimate_speech), computed on a take before upload so that
// the page flags what the server would refuse with audio_no_speech: frames of 25 ms every 10 ms; the noise
// floor is the 10th percentile of frame energy (NumPy's linear interpolation); a frame is speech when its
// energy rises 10 dB above the floor and above -55 dBFS. The browser measures at the device's rate, the
// server at 16 kHz, after soxr's filter has removed everything above 8 kHz: the take is first low-passed at
// 7.8 kHz here too (a 127-tap Blackman-windowed sinc), or a steady whistle above the band, which the server
// never hears, would raise the noise floor and hide the speech. On espeak-ng readings, with and without a
// 12 kHz tone under them, the two measures differ by at most 0.011 (benchmarks/speech_ratio.py).
const EPS = 1e-10;
const CUTOFF_HZ = 7800;
const TAPS = 127;

export function lowpassTaps(rate) {
  const taps = new Float64Array(TAPS);
  const fc = CUTOFF_HZ / rate;
  const middle = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i += 1) {
    const x = i - middle;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const window = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < TAPS; i += 1) taps[i] /= sum;
  return taps;
}

// The band the server keeps ("same" convolution: output aligned with the input, zeros beyond its ends).
function lowpass(samples, rate) {
  if (rate <= 2 * CUTOFF_HZ + 400) return samples;
  const taps = lowpassTaps(rate);
  const half = (TAPS - 1) / 2;
  const out = new Float32Array(samples.length);
  for (let n = 0; n < samples.length; n += 1) {
    let acc = 0;
    const from = Math.max(0, n - half);
    const to = Math.min(samples.length - 1, n + half);
    for (let k = from; k <= to; k += 1) acc += samples[k] * taps[k - n + half];
    out[n] = acc;
  }
  return out;
}

function percentile(sorted, q) {
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

export function speechRatio(input, rate) {
  const samples = lowpass(input, rate);
  const win = Math.trunc(0.025 * rate);
  const hop = Math.trunc(0.010 * rate);
  if (samples.length < win) return 0;
  const count = Math.floor((samples.length - win) / hop) + 1;
  const energy = new Float64Array(count);
  for (let f = 0; f < count; f += 1) {
    let sum = 0;
    const start = f * hop;
    for (let i = start; i < start + win; i += 1) sum += samples[i] * samples[i];
    energy[f] = 10 * Math.log10(sum / win + EPS);
  }
  const floor = percentile(Float64Array.from(energy).sort(), 0.1);
  const threshold = Math.max(floor + 10, -55);
  let speech = 0;
  for (let f = 0; f < count; f += 1) if (energy[f] > threshold) speech += 1;
  return speech / count;
}
