// The microphone: getUserMedia (echo cancellation, noise suppression and automatic gain on unless
// a test turns them off), the capture worklet (20 ms mono frames at 48 kHz whatever the device
// gives) and WebCodecs' Opus encoder (24 kbit/s, DTX: silence sends next to nothing). While
// `transmitting`, each encoded packet goes to onPacket(seq, data); seq counts 20 ms frames and
// keeps counting across pauses, so a listener tells a pause from a loss.

const BITRATE = 24000;
const FRAME_US = 20000;
const OPEN_MIC_GATE = 0.003; // RMS (about −50 dBFS): below it an open mic sends nothing...
const GATE_HOLD_FRAMES = 15; // ...after 300 ms, so a room of open mics is not a room of talkers

export class Microphone extends EventTarget {
  /** Why voice cannot work on this page: 'insecure', 'unsupported', or null (it can). */
  static unavailable() {
    if (!window.isSecureContext) return 'insecure';
    if (!navigator.mediaDevices?.getUserMedia || typeof AudioEncoder !== 'function' || typeof AudioWorkletNode !== 'function') {
      return 'unsupported';
    }
    return null;
  }

  /**
   * @param {AudioContext} ctx
   * @param {{processing?: boolean, onPacket: (seq: number, data: Uint8Array) => void}} opts
   */
  constructor(ctx, { processing = true, onPacket }) {
    super();
    this.ctx = ctx;
    this.processing = processing;
    this.onPacket = onPacket;
    this.transmitting = false;
    this.gate = false; // open mic: send only while there is sound
    this.level = 0;
    this.quietFrames = 0;
    this.frames = 0;
    this.sent = 0;
    this.seqBase = Math.floor(performance.now() / 20);
  }

  /**
   * Ask for the microphone and start capturing.
   * @throws {Error} with .kind 'refused' (the person or the browser said no), 'nodevice', 'failed'
   */
  async start() {
    const p = this.processing;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: p, noiseSuppression: p, autoGainControl: p, channelCount: { ideal: 1 } },
      });
    } catch (e) {
      const kind = e?.name === 'NotAllowedError' || e?.name === 'SecurityError' ? 'refused'
        : e?.name === 'NotFoundError' || e?.name === 'OverconstrainedError' ? 'nodevice' : 'failed';
      throw Object.assign(new Error(e?.message ?? String(e)), { kind });
    }
    this.settings = this.stream.getAudioTracks()[0]?.getSettings() ?? {};
    await this.ctx.audioWorklet.addModule(new URL('./CaptureProcessor.js', import.meta.url));
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, 'emachi-capture', { numberOfInputs: 1, numberOfOutputs: 0 });
    this.node.port.onmessage = (e) => this.onFrame(e.data);
    this.source.connect(this.node);
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const data = new Uint8Array(chunk.byteLength);
        chunk.copyTo(data);
        this.sent += 1;
        this.onPacket(Math.round(chunk.timestamp / FRAME_US), data);
      },
      error: (e) => { this.encoderError = String(e?.message ?? e); },
    });
    this.encoder.configure({
      codec: 'opus', sampleRate: 48000, numberOfChannels: 1, bitrate: BITRATE,
      opus: { frameDuration: FRAME_US, usedtx: true },
    });
  }

  onFrame({ pcm, level }) {
    const seq = this.seqBase + this.frames;
    this.frames += 1;
    this.level = level;
    this.dispatchEvent(new Event('level'));
    if (!this.transmitting || !this.encoder || this.encoder.state !== 'configured') return;
    if (this.gate) {
      this.quietFrames = level < OPEN_MIC_GATE ? this.quietFrames + 1 : 0;
      if (this.quietFrames > GATE_HOLD_FRAMES) return;
    }
    const data = new AudioData({
      format: 'f32-planar', sampleRate: 48000, numberOfFrames: pcm.length, numberOfChannels: 1,
      timestamp: seq * FRAME_US, data: pcm,
    });
    this.encoder.encode(data);
    data.close();
  }

  /** Whether the sound is above the open-mic gate now (the own speaking indicator). */
  get audible() {
    return this.transmitting && this.quietFrames <= GATE_HOLD_FRAMES && this.level >= OPEN_MIC_GATE;
  }

  stop() {
    this.transmitting = false;
    this.node?.port.postMessage('stop');
    this.source?.disconnect();
    this.node?.disconnect();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    if (this.encoder && this.encoder.state !== 'closed') this.encoder.close();
    this.stream = null;
    this.encoder = null;
    this.node = null;
    this.source = null;
  }

  dispose() {
    this.stop();
  }
}
