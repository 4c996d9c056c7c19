// Runs on the audio thread: gathers the 128-sample input blocks into batches of BATCH samples and hands each
// batch to the page by transferring its buffer (no copy), about 12 messages a second at 48 kHz instead of
// 375 copies, with the batch's peak and mean square for the level meter. A "flush" message from the page sends what is
// left of the current batch, then "flushed", so that Stop loses no samples.
const BATCH = 4096;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(BATCH);
    this.filled = 0;
    this.peak = 0;
    this.energy = 0;
    this.port.onmessage = ({ data }) => {
      if (data === "flush") {
        this.send();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  send() {
    if (this.filled === 0) return;
    const samples = this.filled === BATCH ? this.buffer : this.buffer.slice(0, this.filled);
    const meanSquare = this.energy / this.filled;
    this.port.postMessage({ samples, peak: this.peak, meanSquare }, [samples.buffer]);
    this.buffer = new Float32Array(BATCH);
    this.filled = 0;
    this.peak = 0;
    this.energy = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      const channel = input[0];
      let offset = 0;
      while (offset < channel.length) {
        const take = Math.min(channel.length - offset, BATCH - this.filled);
        for (let i = 0; i < take; i += 1) {
          const value = channel[offset + i];
          this.buffer[this.filled + i] = value;
          this.energy += value * value;
          const magnitude = Math.abs(value);
          if (magnitude > this.peak) this.peak = magnitude;
        }
        this.filled += take;
        offset += take;
        if (this.filled === BATCH) this.send();
      }
    }
    return true;
  }
}
registerProcessor("pcm-capture", PcmCapture);
