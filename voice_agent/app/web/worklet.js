// Audio off the main thread: the microphone as 20 ms PCM16 frames, and a playback
// buffer that empties at once on "clear" and counts what it really played.

class Capture extends AudioWorkletProcessor {
  // 20 ms frames of 16 kHz PCM16. A context at 16 kHz (Chrome) passes samples through;
  // at another rate (browsers that cannot resample a microphone into a 16 kHz context)
  // each output sample is the mean of the input samples it spans: a box low-pass, enough for speech.
  constructor() {
    super();
    this.size = 320;
    this.step = sampleRate / 16000;
    this.frame = new Int16Array(this.size);
    this.filled = 0;
    this.energy = 0;
    this.acc = 0;    // sum of the input samples of the output sample being made
    this.count = 0;  // how many
    this.due = this.step;  // input samples still to take for it
  }
  emit(s) {
    s = Math.max(-1, Math.min(1, s));
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
  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      if (this.step === 1) { this.emit(input[i]); continue; }
      this.acc += input[i];
      this.count++;
      if (--this.due <= 0) {
        this.emit(this.acc / this.count);
        this.acc = 0; this.count = 0;
        this.due += this.step;
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
