// One speaker's playout (an AudioWorklet, loaded with audioWorklet.addModule): the jitter buffer
// and the loss concealment. CodecWorker.js posts decoded 20 ms frames ({seq, pcm}) on the port it
// is given; the page posts the target delay (40-100 ms, from JitterEstimator). Playback starts once the target is buffered,
// then takes frames in sequence order:
// - the next frame is missing but later ones are here (lost): repeat the last frame, fading
//   (1 → 0.5 → 0), and move on;
// - nothing is here (late, or the speaker paused): conceal up to two frames, fading out, then wait
//   until the target is buffered again;
// - more than the target + 60 ms is buffered (a burst after a stall): drop the oldest frame, so
//   the delay comes back down.
// It posts its counts ({played, concealed, dropped, underruns, buffered}) twice a second.

const MAX_CONCEAL = 2;
const KEEP_MAX = 50; // frames; a speaker that restarted its sequence resets the buffer

class PlayoutProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = new Map(); // seq -> Float32Array
    this.queued = 0; // samples in the queue
    this.target = 0.06 * sampleRate;
    this.nextSeq = null;
    this.playing = false;
    this.cur = null;
    this.pos = 0;
    this.last = null;
    this.concealed = 0; // in a row
    this.fadeFrom = 1;
    this.stats = { played: 0, concealed: 0, dropped: 0, underruns: 0, buffered: 0 };
    this.reportAt = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'port') {
      this.input = m.port;
      this.input.onmessage = (e) => this.onMessage(e.data);
    } else if (m.type === 'target') {
      this.target = Math.round(m.seconds * sampleRate);
    } else if (m.type === 'stop') {
      this.stopped = true;
      this.input?.close();
    } else if (m.type === 'frame') {
      const { seq, pcm } = m;
      if (this.nextSeq !== null && (seq + KEEP_MAX < this.nextSeq || seq > this.nextSeq + 10 * KEEP_MAX)) {
        this.reset(); // the speaker's sequence restarted (a new microphone session)
      }
      if (this.nextSeq !== null && seq < this.nextSeq) { this.stats.dropped += 1; return; }
      if (this.queue.has(seq)) return;
      this.queue.set(seq, pcm);
      this.queued += pcm.length;
      if (!this.playing && this.nextSeq === null) this.nextSeq = seq;
      if (!this.playing) this.nextSeq = Math.min(this.nextSeq, seq);
      if (this.queue.size > KEEP_MAX) this.dropOldest();
    }
  }

  reset() {
    this.queue.clear();
    this.queued = 0;
    this.nextSeq = null;
    this.playing = false;
    this.cur = null;
  }

  take(seq) {
    const pcm = this.queue.get(seq);
    this.queue.delete(seq);
    this.queued -= pcm.length;
    return pcm;
  }

  dropOldest() {
    const oldest = Math.min(...this.queue.keys());
    this.take(oldest);
    this.stats.dropped += 1;
    if (this.playing && oldest >= this.nextSeq) this.nextSeq = oldest + 1;
  }

  /** A copy of the last frame, faded from the current level by half a step. */
  conceal() {
    const src = this.last;
    const out = new Float32Array(src.length);
    const g0 = this.fadeFrom;
    const g1 = Math.max(0, g0 - 0.5);
    for (let i = 0; i < src.length; i++) out[i] = src[i] * (g0 + ((g1 - g0) * i) / src.length);
    this.fadeFrom = g1;
    this.concealed += 1;
    this.stats.concealed += 1;
    return out;
  }

  nextFrame() {
    if (!this.playing) {
      if (this.queued < this.target || this.queue.size === 0) return null;
      this.playing = true;
      this.nextSeq = Math.min(...this.queue.keys());
    }
    while (this.queued - (this.queue.get(this.nextSeq)?.length ?? 0) > this.target + 0.06 * sampleRate) {
      this.dropOldest();
    }
    if (this.queue.has(this.nextSeq)) {
      const pcm = this.take(this.nextSeq);
      this.nextSeq += 1;
      this.stats.played += 1;
      if (this.concealed && this.fadeFrom < 1) {
        // fade back in over the frame after a concealment
        const g0 = this.fadeFrom;
        for (let i = 0; i < pcm.length; i++) pcm[i] *= g0 + ((1 - g0) * i) / pcm.length;
      }
      this.concealed = 0;
      this.fadeFrom = 1;
      this.last = pcm;
      return pcm;
    }
    if (this.queue.size > 0) {
      // a gap: this frame was lost; later ones are here
      this.nextSeq += 1;
      if (this.last && this.concealed < MAX_CONCEAL) return this.conceal();
      return new Float32Array(this.last?.length ?? 960);
    }
    // nothing here: late, or the speaker paused
    this.stats.underruns += 1;
    if (this.last && this.concealed < MAX_CONCEAL) return this.conceal();
    this.playing = false;
    this.last = null;
    this.concealed = 0;
    this.fadeFrom = 1;
    return null;
  }

  process(_inputs, outputs) {
    if (this.stopped) return false;
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length) {
      if (!this.cur || this.pos >= this.cur.length) {
        this.cur = this.nextFrame();
        this.pos = 0;
        if (!this.cur) break;
      }
      const n = Math.min(out.length - i, this.cur.length - this.pos);
      out.set(this.cur.subarray(this.pos, this.pos + n), i);
      i += n;
      this.pos += n;
    }
    if (i < out.length) out.fill(0, i);
    if (currentTime >= this.reportAt) {
      this.reportAt = currentTime + 0.5;
      this.stats.buffered = this.queued / sampleRate;
      this.port.postMessage(this.stats);
    }
    return true;
  }
}

registerProcessor('emachi-playout', PlayoutProcessor);
