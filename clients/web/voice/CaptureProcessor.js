// The microphone's AudioWorklet (loaded with audioWorklet.addModule): mixes whatever the device
// gives (often 44.1 kHz stereo) down to mono, resamples it to 48 kHz when the context runs at
// another rate, and posts 20 ms frames of 960 samples ({pcm, level}) on the port it is given
// (to CodecWorker.js), where WebCodecs' Opus encoder (configured for 48 kHz mono) takes them as
// they are; the level also goes to the page every 100 ms (the own speaking indicator). Without this, an
// encoder fed the device's buffers throws "Input audio buffer is incompatible with codec parameters".

const OUT_RATE = 48000;
const FRAME = 960; // 20 ms at 48 kHz

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample (1 at 48 kHz)
    this.t = 0; // position of the next output sample, in input samples from this block's start
    this.prev = 0; // the last input sample of the previous block (index -1)
    this.mono = new Float32Array(128);
    this.frame = new Float32Array(FRAME);
    this.n = 0;
    this.out = null;
    this.count = 0;
    this.port.onmessage = (e) => {
      if (e.data === 'stop') this.stopped = true;
      else if (e.data?.type === 'port') this.out = e.data.port;
    };
  }

  emit(v) {
    this.frame[this.n++] = v;
    if (this.n === FRAME) {
      let sum = 0;
      for (let i = 0; i < FRAME; i++) sum += this.frame[i] * this.frame[i];
      const pcm = this.frame;
      const level = Math.sqrt(sum / FRAME);
      if (this.out) this.out.postMessage({ pcm, level }, [pcm.buffer]);
      if (++this.count % 5 === 0) this.port.postMessage({ level });
      this.frame = new Float32Array(FRAME);
      this.n = 0;
    }
  }

  process(inputs) {
    if (this.stopped) { this.out?.close(); return false; }
    const chans = inputs[0];
    if (!chans || chans.length === 0) return true;
    const n = chans[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const x = this.mono;
    x.fill(0);
    for (const c of chans) for (let i = 0; i < n; i++) x[i] += c[i];
    if (chans.length > 1) for (let i = 0; i < n; i++) x[i] /= chans.length;
    if (this.step === 1) {
      for (let i = 0; i < n; i++) this.emit(x[i]);
      return true;
    }
    // linear interpolation between input samples; x[-1] is the previous block's last
    let t = this.t;
    while (t < n - 1) {
      const i = Math.floor(t);
      const f = t - i;
      const a = i < 0 ? this.prev : x[i];
      this.emit(a + (x[i + 1] - a) * f);
      t += this.step;
    }
    this.t = t - n;
    this.prev = x[n - 1];
    return true;
  }
}

registerProcessor('emachi-capture', CaptureProcessor);
