// Runs on the audio thread: copies every input block to the page and reports its peak for the meter.
class PcmCapture extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      const channel = input[0];
      let peak = 0;
      for (let i = 0; i < channel.length; i += 1) {
        const value = Math.abs(channel[i]);
        if (value > peak) peak = value;
      }
      this.port.postMessage({ samples: channel.slice(0), peak });
    }
    return true;
  }
}
registerProcessor("pcm-capture", PcmCapture);
