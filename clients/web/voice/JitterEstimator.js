// The adaptive target delay of one speaker's jitter buffer. Each frame's transit is its arrival
// time minus its place in the speaker's 20 ms sequence; the spread of the transits over the last
// 2 s (the latest arrival against the earliest) is how much the buffer must absorb. The target
// is that spread plus one frame, kept within 40-100 ms: it rises at once and falls slowly
// (1 ms per update), so one quiet second does not undo the cover a bursty link needs.

export const FRAME_MS = 20;
export const MIN_TARGET_MS = 40;
export const MAX_TARGET_MS = 100;
const WINDOW = 100; // frames (2 s)
const RESET_GAP = 50; // frames: a longer pause (or a restarted sequence) starts afresh

export class JitterEstimator {
  constructor() {
    this.transits = [];
    this.lastSeq = null;
    this.targetMs = MIN_TARGET_MS + FRAME_MS;
  }

  /** Note a frame of sequence `seq` that arrived at `nowMs`; returns the target delay (ms). */
  arrive(seq, nowMs) {
    if (this.lastSeq !== null && (seq < this.lastSeq - RESET_GAP || seq > this.lastSeq + RESET_GAP)) {
      this.transits = [];
    }
    this.lastSeq = seq;
    this.transits.push(nowMs - seq * FRAME_MS);
    if (this.transits.length > WINDOW) this.transits.shift();
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of this.transits) {
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const want = Math.min(MAX_TARGET_MS, Math.max(MIN_TARGET_MS, hi - lo + FRAME_MS));
    this.targetMs = want >= this.targetMs ? want : Math.max(want, this.targetMs - 1);
    return this.targetMs;
  }

  dispose() {
    this.transits = [];
  }
}
