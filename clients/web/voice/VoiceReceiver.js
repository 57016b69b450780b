// Everything the listener hears: one VoiceChannel per speaker the server subscribed it to (with
// the server's gain), all mixed into one bus that goes to the output (EchoSafeOutput) and to a
// mix analyser. Frames come from the transport; positions from the page (place()). Used by the
// hall (with panning) and by the watch-only page (the stage's PA, no panning).

import { VoiceChannel } from './VoiceChannel.js';

const FADE_OUT_MS = 300; // a removed voice fades, then its nodes go

export class VoiceReceiver {
  /**
   * @param {{ctx: AudioContext, transport: import('./WebSocketTransport.js').WebSocketTransport,
   *   codecs: import('./VoiceCodecs.js').VoiceCodecs, output: AudioNode, spatial?: boolean,
   *   hrtf?: boolean, ownGain?: (id: number) => number}} opts
   */
  constructor({ ctx, transport, codecs, output, spatial = true, hrtf = true, ownGain = () => 1 }) {
    this.ctx = ctx;
    this.codecs = codecs;
    this.transport = transport;
    this.spatial = spatial;
    this.hrtf = hrtf;
    this.ownGain = ownGain;
    this.channels = new Map(); // id -> VoiceChannel
    this.subs = new Map(); // id -> server gain
    this.leaving = new Map(); // id -> timer
    this.framesIn = 0;
    this.framesBy = new Map(); // id -> frames that came over the wire (subscribed or not)
    this.bus = ctx.createGain();
    this.bus.connect(output);
    this.mix = ctx.createAnalyser();
    this.mix.fftSize = 8192;
    this.mix.smoothingTimeConstant = 0;
    this.bus.connect(this.mix);
    this.ready = ctx.audioWorklet.addModule(new URL('./PlayoutProcessor.js', import.meta.url)).then(() => {
      this.isReady = true;
      for (const [id, g] of this.subs) this.channel(id).setServerGain(g);
    });
    transport.onSubs((m) => this.onSubs(m));
    transport.onFrames((frames, now) => this.onFrames(frames, now));
  }

  channel(id) {
    let ch = this.channels.get(id);
    if (!ch) {
      ch = new VoiceChannel(this.ctx, id, this.bus, this.codecs, { spatial: this.spatial, hrtf: this.hrtf });
      ch.setOwnGain(this.ownGain(id));
      this.channels.set(id, ch);
    }
    return ch;
  }

  onSubs({ add, remove }) {
    for (const [id, gain] of add) {
      this.subs.set(id, gain);
      clearTimeout(this.leaving.get(id));
      this.leaving.delete(id);
      if (this.isReady) this.channel(id).setServerGain(gain);
    }
    for (const id of remove) {
      this.subs.delete(id);
      const ch = this.channels.get(id);
      if (!ch) continue;
      ch.setServerGain(0);
      clearTimeout(this.leaving.get(id));
      this.leaving.set(id, setTimeout(() => {
        this.leaving.delete(id);
        if (this.subs.has(id)) return;
        ch.dispose();
        this.channels.delete(id);
      }, FADE_OUT_MS));
    }
  }

  onFrames(frames, now) {
    const keep = [];
    for (const f of frames) {
      const id = f[0];
      this.framesBy.set(id, (this.framesBy.get(id) ?? 0) + 1);
      if (!this.subs.has(id) || !this.isReady) continue; // a frame of a voice just removed
      this.framesIn += 1;
      this.channel(id).arrived(f[1], now);
      keep.push(f);
    }
    this.codecs.decode(keep);
  }

  /** A new socket: the server tells every subscription afresh. */
  reset() {
    this.onSubs({ add: [], remove: [...this.subs.keys()] });
  }

  /** This person changed someone's volume or mute: apply it to every voice. */
  refreshOwnGains() {
    for (const [id, ch] of this.channels) ch.setOwnGain(this.ownGain(id));
  }

  /**
   * Put the listener and the voices where they are (hall only). `me` {x, y, z, yaw} with yaw the
   * way the camera looks; `where(id)` {x, y, z} or null (not in view: heard from in front).
   */
  place(me, where) {
    if (!this.spatial || !me) return;
    const l = this.ctx.listener;
    const t = this.ctx.currentTime;
    const fx = Math.sin(me.yaw);
    const fz = Math.cos(me.yaw);
    const y = me.y + 1.6;
    if (l.positionX) {
      l.positionX.setTargetAtTime(me.x, t, 0.03);
      l.positionY.setTargetAtTime(y, t, 0.03);
      l.positionZ.setTargetAtTime(me.z, t, 0.03);
      l.forwardX.setTargetAtTime(fx, t, 0.03);
      l.forwardY.setTargetAtTime(0, t, 0.03);
      l.forwardZ.setTargetAtTime(fz, t, 0.03);
      l.upX.value = 0; l.upY.value = 1; l.upZ.value = 0;
    } else {
      l.setPosition(me.x, y, me.z);
      l.setOrientation(fx, 0, fz, 0, 1, 0);
    }
    for (const [id, ch] of this.channels) {
      const p = where(id);
      ch.place(p ? { x: p.x, y: p.y + 1.6, z: p.z } : { x: me.x + fx, y, z: me.z + fz });
    }
  }

  /** Ids heard speaking now. */
  speaking() {
    return [...this.channels.values()].filter((c) => c.speaking).map((c) => c.id);
  }

  /**
   * Average over `ms` (sampled every 50 ms): each voice's RMS after its panner and gain, the
   * mix's RMS, and the mix's level (dB) at each of `freqs` (Hz), for tests and diagnostics.
   */
  async measure(ms, freqs = []) {
    const sums = new Map();
    let mixSum = 0;
    let n = 0;
    const bins = new Float32Array(this.mix.frequencyBinCount);
    const power = new Float64Array(bins.length);
    const buf = new Float32Array(this.mix.fftSize);
    const end = performance.now() + ms;
    while (performance.now() < end) {
      for (const [id, ch] of this.channels) sums.set(id, (sums.get(id) ?? 0) + ch.level());
      this.mix.getFloatTimeDomainData(buf);
      let s = 0;
      for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
      mixSum += Math.sqrt(s / buf.length);
      this.mix.getFloatFrequencyData(bins);
      for (let i = 0; i < bins.length; i++) power[i] += 10 ** (bins[i] / 10);
      n += 1;
      await new Promise((r) => setTimeout(r, 50));
    }
    const hz = this.ctx.sampleRate / this.mix.fftSize;
    const band = (f) => {
      const c = Math.round(f / hz);
      let best = 0;
      for (let i = Math.max(0, c - 3); i <= Math.min(power.length - 1, c + 3); i++) best = Math.max(best, power[i] / n);
      return 10 * Math.log10(best || 1e-30);
    };
    return {
      rms: Object.fromEntries([...sums].map(([id, v]) => [id, v / n])),
      mix: mixSum / n,
      bands: Object.fromEntries(freqs.map((f) => [f, band(f)])),
    };
  }

  dispose() {
    this.transport.dispose();
    this.codecs.dispose();
    for (const t of this.leaving.values()) clearTimeout(t);
    for (const ch of this.channels.values()) ch.dispose();
    this.channels.clear();
    this.subs.clear();
    this.bus.disconnect();
    this.mix.disconnect();
  }
}
