// One voice the listener hears: its Opus decoder (in the codec worker), the playout worklet
// (jitter buffer and concealment), a PannerNode for the direction the speaker stands in, a GainNode for
// the server's gain times this person's own volume (smoothed with setTargetAtTime, so a gain
// change never clicks) and an AnalyserNode after both (the level for the speaking indicator and
// the tests). Distance is already in the server's gain: the panner does direction only.

import { JitterEstimator } from './JitterEstimator.js';

const SMOOTH_S = 0.05; // time constant of gain changes
const SPEAKING_LEVEL = 0.002; // RMS heard (after the gain) above which the person counts as speaking
const SPEAKING_HOLD_MS = 400;

export class VoiceChannel {
  /**
   * @param {AudioContext} ctx
   * @param {number} id the speaker's avatar id
   * @param {AudioNode} bus where the voice goes (the mix)
   * @param {import('./VoiceCodecs.js').VoiceCodecs} codecs
   * @param {{spatial: boolean, hrtf: boolean}} opts
   */
  constructor(ctx, id, bus, codecs, { spatial = true, hrtf = true } = {}) {
    this.ctx = ctx;
    this.id = id;
    this.codecs = codecs;
    this.serverGain = 0;
    this.ownGain = 1;
    this.spokeAt = -Infinity;
    this.stats = null;
    this.jitter = new JitterEstimator();
    this.targetMs = this.jitter.targetMs;
    this.node = new AudioWorkletNode(ctx, 'emachi-playout', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    this.node.port.onmessage = (e) => { this.stats = e.data; };
    this.gain = ctx.createGain();
    this.gain.gain.value = 0;
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    if (spatial) {
      this.panner = new PannerNode(ctx, {
        panningModel: hrtf ? 'HRTF' : 'equalpower', distanceModel: 'linear', rolloffFactor: 0,
        refDistance: 1, maxDistance: 10000,
      });
      this.node.connect(this.panner).connect(this.gain);
    } else {
      this.node.connect(this.gain);
    }
    this.gain.connect(this.analyser);
    this.gain.connect(bus);
    this.node.port.postMessage({ type: 'target', seconds: this.targetMs / 1000 });
    codecs.addVoice(id, this.node);
  }

  /** A packet of this speaker (sequence `seq`) came in at `nowMs`: adapt the buffer's target. */
  arrived(seq, nowMs) {
    const target = this.jitter.arrive(seq, nowMs);
    if (target !== this.targetMs) {
      this.targetMs = target;
      this.node.port.postMessage({ type: 'target', seconds: target / 1000 });
    }
  }

  /** Speaking now (heard above a whisper in the last 0.4 s), and not muted by this person. */
  get speaking() {
    if (this.ownGain > 0 && this.serverGain > 0 && this.level() > SPEAKING_LEVEL) this.spokeAt = performance.now();
    return performance.now() - this.spokeAt < SPEAKING_HOLD_MS;
  }

  setServerGain(g) {
    this.serverGain = g;
    this.applyGain();
  }

  setOwnGain(g) {
    this.ownGain = g;
    this.applyGain();
  }

  applyGain() {
    this.gain.gain.setTargetAtTime(this.serverGain * this.ownGain, this.ctx.currentTime, SMOOTH_S);
  }

  /** Where the speaker stands (metres, world coordinates); null: in front of the listener. */
  place(p) {
    if (!this.panner || !p) return;
    const t = this.ctx.currentTime;
    this.panner.positionX.setTargetAtTime(p.x, t, 0.03);
    this.panner.positionY.setTargetAtTime(p.y, t, 0.03);
    this.panner.positionZ.setTargetAtTime(p.z, t, 0.03);
  }

  /** RMS of what this voice plays now (after the panner and the gain). */
  level() {
    const buf = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  }

  dispose() {
    this.node.port.postMessage({ type: 'stop' });
    for (const n of [this.node, this.panner, this.gain, this.analyser]) n?.disconnect();
    this.codecs.dropVoice(this.id);
    this.jitter.dispose();
  }
}
