// The microphone: getUserMedia (echo cancellation, noise suppression and automatic gain on unless
// a test turns them off), the capture worklet (20 ms mono frames at 48 kHz whatever the device
// gives), wired to the Opus encoder in the codec worker (24 kbit/s, DTX: silence sends next to
// nothing). While `transmitting`, each packet goes to codecs.onPacket(seq, data); seq counts
// 20 ms frames and keeps counting across pauses, so a listener tells a pause from a loss.

const OPEN_MIC_GATE = 0.003; // the worker's gate, for the own speaking indicator

export class Microphone {
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
   * @param {{processing?: boolean, codecs: import('./VoiceCodecs.js').VoiceCodecs}} opts
   */
  constructor(ctx, { processing = true, codecs }) {
    this.ctx = ctx;
    this.processing = processing;
    this.codecs = codecs;
    this.on = false;
    this.open = false; // open mic: the worker sends only while there is sound
    this.level = 0;
    this.loudAt = -Infinity;
  }

  /** Send packets or not; `open`: open mic (silence sends nothing). */
  setTransmit(on, open) {
    this.on = on;
    this.open = open;
    this.codecs.transmit(on, open);
  }

  get transmitting() {
    return this.on;
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
    this.node.port.onmessage = (e) => {
      this.level = e.data.level;
      if (this.level >= OPEN_MIC_GATE) this.loudAt = performance.now();
    };
    this.source.connect(this.node);
    this.codecs.capture(this.node);
  }

  /** Whether the sound is above the open-mic gate now (the own speaking indicator). */
  get audible() {
    return this.on && performance.now() - this.loudAt < 400;
  }

  stop() {
    if (this.node) {
      this.setTransmit(false, false);
      this.codecs.stopCapture();
    }
    this.node?.port.postMessage('stop');
    this.source?.disconnect();
    this.node?.disconnect();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.node = null;
    this.source = null;
  }

  dispose() {
    this.stop();
  }
}
