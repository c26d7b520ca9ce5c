// Audio off the main thread: the microphone as 20 ms PCM16 frames, and a playback
// buffer that empties at once on "clear" and counts what it really played.

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 50); // 20 ms at the context's rate
    this.frame = new Int16Array(this.size);
    this.filled = 0;
    this.energy = 0;
  }
  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const s = Math.max(-1, Math.min(1, input[i]));
      this.energy += s * s;
      this.frame[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === this.size) {
        const db = 10 * Math.log10(this.energy / this.size + 1e-10);
        // The buffer is handed over, not copied: the next frame gets a new one.
        this.port.postMessage({ pcm: this.frame.buffer, db }, [this.frame.buffer]);
        this.frame = new Int16Array(this.size);
        this.filled = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];   // Float32Array pieces still to play
    this.offset = 0;   // into queue[0]
    this.played = 0;   // samples of agent audio played (the tap the tests read)
    this.blocks = 0;
    this.port.onmessage = (e) => {
      if (e.data === "clear") { this.queue = []; this.offset = 0; }
      else this.queue.push(new Float32Array(e.data));
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n; this.offset += n; this.played += n;
      if (this.offset === head.length) { this.queue.shift(); this.offset = 0; }
    }
    out.fill(0, i);
    if (++this.blocks % 8 === 0) this.port.postMessage({ played: this.played, queued: this.queue.length });
    return true;
  }
}

registerProcessor("capture", Capture);
registerProcessor("playback", Playback);
