// Plays a briefing in step with the server. The server sends the timeline as three numbers
// (offset s, anchor server-ms, rate) plus a state; every viewer computes
//   position(serverTime) = offset + (serverTime - anchor) / 1000 * rate   (while live)
// and schedules each segment's audio with Web Audio at the AudioContext time that corresponds
// to that server time, using the clock offset the Connection estimates from ping/pong. Viewers
// therefore start each sentence together however late they joined. Captions, slides and the
// speaker's mouth are read off the playback position, so they follow the voice.
//
// A viewer may also listen at their own narration speed (0.75–1.5, kept on the device) or
// replay an ended briefing: the player then follows its own timeline (`own`) instead of the
// live one, plays through an <audio> element with preservesPitch (Web Audio's playbackRate
// would shift the pitch), and reads the position off that element while it sounds, so captions,
// slides and the mouth follow that viewer's voice. Slower than live means falling behind it
// (`behind()`, and `backToLive()`); faster catches up and then rejoins live. docs/briefings.md.
//
// Emits 'state' (the merged BRIEFING state), 'questions' (the public list), 'segment' (index),
// 'own' (the viewer's own timeline started, moved or stopped).

import { MsgType, briefingJoin, question } from '../protocol.js';

const LOOKAHEAD_S = 4; // schedule segments that start within this many seconds
const PUMP_MS = 250;
const MIN_LEAD_S = 0.05; // never schedule closer to "now" than this
const RESYNC_S = 0.03; // re-align when audio and the server clock disagree by more

const MEDIA_DRIFT_S = 0.25; // an <audio> element farther than this from its timeline is moved
export const SPEEDS = [0.75, 0.9, 1, 1.25, 1.5];
const SPEED_KEY = 'emachi.briefing.speed';

const epochNow = () => performance.timeOrigin + performance.now();
const storedSpeed = () => {
  try {
    const v = Number(localStorage.getItem(SPEED_KEY));
    return SPEEDS.includes(v) ? v : 1;
  } catch { return 1; }
};
const OPUS_OK = typeof Audio !== 'undefined' && new Audio().canPlayType('audio/ogg; codecs=opus') === 'probably';

export class BriefingPlayer extends EventTarget {
  /**
   * @param {{connection: import('../Connection.js').Connection, briefingId?: string|null,
   *   audioContext?: () => AudioContext|null, connectOut?: (node: AudioNode, ctx: AudioContext) => void}} options
   *   briefingId null: follow whichever briefing the server tells this hall about.
   *   audioContext: a context to play in (the hall's voice context, so that the narration joins
   *   the voice mix); none (or null): the player makes its own. connectOut: where the narration
   *   goes (the hall: a panner at the presenter and the stage's gain); default the speakers.
   */
  constructor({ connection, briefingId = null, audioContext = null, connectOut = null }) {
    super();
    this.connection = connection;
    this.briefingId = briefingId;
    this.audioContext = audioContext;
    this.connectOut = connectOut ?? ((node, ctx) => node.connect(ctx.destination));
    this.ownCtx = true;
    this.state = null;
    this.segments = [];
    this.cast = [];
    this.questions = [];
    this.ctx = null;
    this.gain = null;
    this.buffers = new Map(); // index -> Promise<AudioBuffer>
    this.loaded = new Map(); // index -> AudioBuffer
    this.visemes = new Map(); // index -> track
    this.sources = new Map(); // index -> {src, when, bufOffset, rate}
    this.lastSegment = -1;
    /** the viewer's chosen narration speed (1: as rendered, in step with live) */
    this.speed = storedSpeed();
    /** the viewer's own timeline, or null when following live: {offset s, at epoch ms, rate, playing} */
    this.own = null;
    this.media = null; // the <audio> element of the own timeline (created on unlock)
    this.mediaIndex = -1; // the segment whose audio it holds
    this.onMessage = (ev) => this.handle(ev.detail);
    connection.addEventListener('message', this.onMessage);
    this.onWelcome = () => { if (this.briefingId) connection.sendRaw(briefingJoin(this.briefingId)); };
    connection.addEventListener('welcome', this.onWelcome);
    if (this.briefingId && connection.welcome) connection.sendRaw(briefingJoin(this.briefingId));
    this.timer = setInterval(() => this.pump(), PUMP_MS);
  }

  // -- messages --------------------------------------------------------------------------------

  handle(msg) {
    if (msg.type === MsgType.BRIEFING) {
      const s = msg.state;
      if (this.briefingId && s.id !== this.briefingId) return;
      const full = s.segments || s.segments_url;
      if (this.state && s.id !== this.state.id && !full) return; // another briefing, no data yet
      if (full && (!this.state || this.state.id !== s.id)) {
        this.resetMedia();
        this.segments = [];
      }
      if (s.segments) {
        this.segments = s.segments;
        this.cast = s.cast ?? [];
      } else if (s.segments_url && !this.segments.length) {
        // a long briefing's segments do not fit in one frame: fetch them
        fetch(s.segments_url).then((r) => r.json()).then((doc) => {
          if (this.state?.id !== s.id) return;
          this.segments = doc.segments;
          this.cast = doc.cast ?? [];
          this.reschedule();
          this.dispatchEvent(new CustomEvent('state', { detail: this.state }));
        }).catch((e) => console.warn('briefing segments', e));
      }
      if (s.state === 'scheduled') this.stopOwn(); // a new run: nothing to be behind of
      this.state = { ...(this.state?.id === s.id ? this.state : {}), ...s };
      delete this.state.segments;
      delete this.state.segments_url;
      this.reschedule();
      this.dispatchEvent(new CustomEvent('state', { detail: this.state }));
    } else if (msg.type === MsgType.QUESTIONS) {
      if (this.state && msg.briefing_id !== this.state.id) return;
      this.questions = msg.questions;
      this.dispatchEvent(new CustomEvent('questions', { detail: this.questions }));
    }
  }

  ask(text) {
    if (!this.state) return false;
    return this.connection.send(question(this.state.id, text));
  }

  // -- time ------------------------------------------------------------------------------------

  serverNow() {
    return this.connection.serverNow();
  }

  /** Seconds into the briefing at a server time (ms), from the timeline alone. */
  timelinePosition(serverMs = this.serverNow()) {
    const s = this.state;
    if (!s) return 0;
    const p = s.state === 'live' ? s.offset + ((serverMs - s.anchor) / 1000) * s.rate : s.offset;
    return Math.max(0, Math.min(s.total, p));
  }

  segmentAt(pos) {
    let k = 0;
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i].start <= pos + 1e-6) k = i;
    return k;
  }

  /** AudioContext time that corresponds to an epoch time (ms) on this machine. */
  ctxTimeAtEpoch(epochMs) {
    const ctx = this.ctx;
    const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
    if (ts && ts.performanceTime > 0) {
      return ts.contextTime + (epochMs - performance.timeOrigin - ts.performanceTime) / 1000;
    }
    return ctx.currentTime + (epochMs - epochNow()) / 1000;
  }

  /**
   * Playback position (s) at an epoch time (ms): from the audio clock when a segment is sounding,
   * else from the timeline. Two viewers on one machine compare this at the same epoch time.
   */
  positionAt(epochMs = epochNow()) {
    if (this.own) return this.ownPositionAt(epochMs);
    if (this.ctx && this.ctx.state === 'running' && this.state?.state === 'live') {
      const t = this.ctxTimeAtEpoch(epochMs);
      for (const [i, s] of this.sources) {
        const seg = this.segments[i];
        const endAt = s.when + (seg.duration - s.bufOffset) / s.rate;
        if (t >= s.when && t < endAt) return seg.start + s.bufOffset + (t - s.when) * s.rate;
      }
    }
    return this.timelinePosition(epochMs + this.connection.clockOffset);
  }

  position() {
    return this.positionAt(epochNow());
  }

  // -- the viewer's own timeline (own speed, behind live, replay) ------------------------------

  /** The live position, or the end for an ended briefing (how far an own timeline may go). */
  liveEdge() {
    const s = this.state;
    if (!s) return 0;
    return s.state === 'ended' ? s.total : this.timelinePosition();
  }

  ownPositionAt(epochMs = epochNow()) {
    const o = this.own;
    const m = this.media;
    let p;
    const seg = this.segments[this.mediaIndex];
    if (seg && m && !m.paused && !m.seeking && m.readyState >= 3 && o.playing) {
      // the voice is the clock: what is heard is where captions and slides are
      p = seg.start + m.currentTime + ((epochMs - epochNow()) / 1000) * o.rate;
    } else {
      p = o.playing ? o.offset + ((epochMs - o.at) / 1000) * o.rate : o.offset;
      const k = this.segmentAt(o.offset);
      const at = this.segments[k];
      const done = m && m.ended && this.mediaIndex === k;
      // within a segment's audio but the voice is not sounding yet (loading): wait for it
      if (at && !done && o.offset - at.start < at.duration - 0.01 && m && this.ctx?.state === 'running') p = o.offset;
    }
    return Math.max(0, Math.min(this.liveEdge(), p));
  }

  /** Seconds the viewer is behind live (0 when following it, or in a replay). */
  behind() {
    if (!this.own || !this.state || this.state.state === 'ended') return 0;
    return Math.max(0, this.liveEdge() - this.ownPositionAt());
  }

  /** Set the viewer's narration speed (kept on this device). Below 1 while live, the viewer
   * falls behind it; at 1 or above, an own timeline that reaches live rejoins it. */
  setSpeed(speed) {
    const v = Number(speed);
    if (!SPEEDS.includes(v)) throw new RangeError(`speed: expected one of ${SPEEDS}, got ${speed}`);
    this.speed = v;
    try { localStorage.setItem(SPEED_KEY, String(v)); } catch { /* private mode */ }
    if (this.own) this.startOwn(this.ownPositionAt(), this.own.playing);
    else if (v < 1 && this.state?.state === 'live') this.startOwn(this.timelinePosition());
    this.pump();
  }

  /** Listen from a position on the viewer's own timeline (a transcript jump, a replay). */
  seekTo(pos, { play = true } = {}) {
    const edge = this.liveEdge();
    this.startOwn(Math.max(0, Math.min(edge, pos)), play);
    this.pump();
  }

  /** Replay an ended briefing from the start (or from `pos`). */
  replay(pos = 0) {
    this.seekTo(pos);
  }

  /** Pause or go on with the own timeline (a replay, or listening behind live). */
  toggleOwn() {
    if (!this.own) return;
    this.startOwn(this.ownPositionAt(), !this.own.playing);
    this.pump();
  }

  /** Stop the own timeline: follow live again at speed 1. */
  backToLive() {
    this.stopOwn();
    if (this.speed !== 1) this.setSpeed(1);
    this.reschedule();
  }

  /** The <audio> element played its segment to the end: the own timeline goes on from there
   * (through the pause after it, then the next segment). */
  mediaEnded() {
    const seg = this.segments[this.mediaIndex];
    if (this.own && seg) {
      this.own.offset = Math.max(this.own.offset, seg.start + seg.duration);
      this.own.at = epochNow();
    }
    this.pump();
  }

  startOwn(offset, playing = true) {
    this.own = { offset, at: epochNow(), rate: this.speed, playing };
    this.stopAll(); // the live schedule is not heard meanwhile
    this.syncMedia(true);
    this.dispatchEvent(new CustomEvent('own', { detail: this.own }));
  }

  stopOwn() {
    if (!this.own) return;
    this.own = null;
    this.media?.pause();
    this.mediaIndex = -1;
    this.dispatchEvent(new CustomEvent('own', { detail: null }));
  }

  /** Keep the <audio> element on the own timeline: the right segment, at the right point, at
   * the viewer's speed with the pitch kept; re-anchor the timeline on what it plays. */
  syncMedia(moved = false) {
    const o = this.own;
    if (!o) return;
    const now = epochNow();
    const m = this.media;
    const edge = this.liveEdge();
    let pos = this.ownPositionAt(now);
    const i = this.segmentAt(pos);
    const seg = this.segments[i];
    if (!seg) return;
    const local = pos - seg.start;
    const sounding = m && !m.paused && !m.seeking && m.readyState >= 3 && this.mediaIndex === i;
    // the voice is the clock while it sounds; else the timeline (which waits for a voice that
    // is still loading: ownPositionAt)
    o.offset = o.playing && sounding && !moved ? seg.start + m.currentTime : pos;
    o.at = now;
    pos = o.offset;
    if (this.state.state !== 'ended' && this.speed >= 1 && pos >= edge - 0.05 && o.playing) {
      this.stopOwn(); // caught up with live: follow it again
      this.reschedule();
      return;
    }
    if (!m) return;
    const atEdge = this.state.state !== 'ended' ? pos >= edge - 0.01 : pos >= edge;
    const done = !moved && m.ended && this.mediaIndex === i; // play() would start it from 0
    const wanted = o.playing && !atEdge && !done && local < seg.duration;
    if (!wanted) {
      if (!m.paused) m.pause();
      return;
    }
    if (this.mediaIndex !== i) {
      this.mediaIndex = i;
      m.src = seg.audio_opus && OPUS_OK ? seg.audio_opus : seg.audio;
      m.currentTime = local;
    } else if (moved || Math.abs(m.currentTime - local) > MEDIA_DRIFT_S) {
      m.currentTime = local;
    }
    m.defaultPlaybackRate = o.rate;
    m.playbackRate = o.rate;
    m.preservesPitch = true;
    if (m.paused) m.play().catch(() => {});
  }

  get audible() {
    return !!this.ctx && this.ctx.state === 'running';
  }

  // -- what is on screen -----------------------------------------------------------------------

  /** {index, segment, local} at a position. */
  at(pos = this.position()) {
    if (!this.segments.length) return null;
    const index = this.segmentAt(pos);
    const segment = this.segments[index];
    return { index, segment, local: pos - segment.start };
  }

  caption(pos = this.position()) {
    const a = this.at(pos);
    const st = this.state?.state;
    if (!a || (!this.own && (st === 'scheduled' || st === 'ended'))) return '';
    const c = a.segment.captions.find(([s, e]) => a.local >= s && a.local < e);
    return c ? c[2] : '';
  }

  /** The speaking avatar and its mouth: {speaker, shape, open 0..1} (shape 'X' at rest). */
  mouth(pos = this.position()) {
    const a = this.at(pos);
    if (!a) return null;
    const track = this.visemes.get(a.index);
    const speaking = this.own ? this.own.playing : this.state?.state === 'live';
    if (!track || !speaking || a.local >= a.segment.duration) {
      this.loadVisemes(a.index);
      return { speaker: a.segment.speaker, shape: 'X', open: 0 };
    }
    const cues = track.cues;
    let lo = 0;
    let hi = cues.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (cues[mid][0] <= a.local) lo = mid; else hi = mid - 1;
    }
    const env = track.env[Math.floor(a.local * track.env_fps)] ?? 0;
    return { speaker: a.segment.speaker, shape: cues[lo][2], open: env / 255 };
  }

  // -- audio -----------------------------------------------------------------------------------

  /** Create or resume the AudioContext; call from a user gesture (autoplay rules). */
  async unlock() {
    if (!this.ctx) {
      const shared = this.audioContext?.() ?? null;
      const AC = window.AudioContext || window.webkitAudioContext;
      this.ownCtx = !shared;
      this.ctx = shared ?? new AC({ latencyHint: 'playback' });
      this.gain = this.ctx.createGain();
      this.connectOut(this.gain, this.ctx);
      this.media = new Audio();
      this.media.preservesPitch = true;
      this.media.preload = 'auto';
      this.media.addEventListener('ended', () => this.mediaEnded());
      // through the same gain and route as the live narration (the hall: from the stage)
      this.mediaSource = this.ctx.createMediaElementSource(this.media);
      this.mediaSource.connect(this.gain);
    }
    if (this.media?.paused && this.own?.playing) this.media.play().catch(() => {});
    if (this.ctx.state !== 'running') await this.ctx.resume();
    this.reschedule();
    return this.ctx.state === 'running';
  }

  resetMedia() {
    this.stopOwn();
    this.stopAll();
    this.buffers.clear();
    this.loaded.clear();
    this.visemes.clear();
    this.lastSegment = -1;
  }

  load(i) {
    if (!this.ctx || !this.segments[i]) return null;
    if (!this.buffers.has(i)) {
      const seg = this.segments[i];
      const fetchDecode = (url) => fetch(url)
        .then((r) => { if (!r.ok) throw new Error(`audio ${r.status}`); return r.arrayBuffer(); })
        .then((b) => this.ctx.decodeAudioData(b));
      // Ogg Opus is a sixteenth of the WAV; browsers that cannot decode it get the WAV
      const first = seg.audio_opus && OPUS_OK ? fetchDecode(seg.audio_opus).catch(() => fetchDecode(seg.audio))
        : fetchDecode(seg.audio);
      const p = first
        .then((buf) => { this.loaded.set(i, buf); this.pump(); return buf; })
        .catch((e) => { this.buffers.delete(i); console.warn('briefing audio', e); });
      this.buffers.set(i, p);
    }
    return this.buffers.get(i);
  }

  loadVisemes(i) {
    const seg = this.segments[i];
    if (!seg || this.visemes.has(i)) return;
    this.visemes.set(i, null);
    fetch(seg.visemes).then((r) => r.json()).then((t) => this.visemes.set(i, t))
      .catch(() => this.visemes.delete(i));
  }

  stopAll() {
    for (const { src } of this.sources.values()) {
      try { src.stop(); } catch { /* not started */ }
      src.disconnect();
    }
    this.sources.clear();
  }

  reschedule() {
    this.stopAll();
    this.pump();
  }

  schedule(i, buf) {
    const s = this.state;
    const seg = this.segments[i];
    const serverStart = s.anchor + ((seg.start - s.offset) / s.rate) * 1000;
    let when = this.ctxTimeAtEpoch(serverStart - this.connection.clockOffset);
    let bufOffset = 0;
    const earliest = this.ctx.currentTime + MIN_LEAD_S;
    if (when < earliest) {
      bufOffset = (earliest - when) * s.rate;
      when = earliest;
    }
    if (bufOffset >= buf.duration) return;
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.playbackRate.value = s.rate;
    src.connect(this.gain);
    src.start(when, bufOffset);
    const entry = { src, when, bufOffset, rate: s.rate };
    src.onended = () => { if (this.sources.get(i) === entry) this.sources.delete(i); };
    this.sources.set(i, entry);
  }

  /** Keep the next segments scheduled, fetch what they need, re-align after clock updates. */
  pump() {
    const s = this.state;
    if (!s || !this.segments.length) return;
    const p = this.timelinePosition();
    const a = this.at(this.position());
    if (a && a.index !== this.lastSegment) {
      this.lastSegment = a.index;
      this.loadVisemes(a.index);
      this.dispatchEvent(new CustomEvent('segment', { detail: a.index }));
    }
    if (this.own) {
      this.syncMedia();
      if (this.own) return;
    } else if (this.speed < 1 && s.state === 'live' && this.ctx) {
      this.startOwn(p); // slower than live: the viewer's own timeline from here
      return;
    }
    if (!this.ctx) return;
    if (s.state !== 'live' || this.ctx.state !== 'running') {
      if (this.sources.size) this.stopAll();
      this.load(this.segmentAt(p));
      return;
    }
    // the clock offset estimate improves with every pong: re-align a sounding segment if needed
    for (const [i, e] of this.sources) {
      const t = this.ctx.currentTime;
      if (t < e.when) continue;
      const heard = this.segments[i].start + e.bufOffset + (t - e.when) * e.rate;
      const should = this.timelinePosition(this.serverNowAtCtx(t));
      if (Math.abs(heard - should) > RESYNC_S) {
        try { e.src.stop(); } catch { /* already stopped */ }
        this.sources.delete(i);
      }
    }
    for (let i = this.segmentAt(p); i < this.segments.length; i++) {
      const seg = this.segments[i];
      if (seg.start > p + LOOKAHEAD_S) break;
      if (seg.start + seg.duration <= p || this.sources.has(i)) continue;
      const buf = this.loaded.get(i);
      if (buf) this.schedule(i, buf);
      else this.load(i);
      this.loadVisemes(i);
    }
  }

  serverNowAtCtx(ctxTime) {
    const ts = this.ctx.getOutputTimestamp ? this.ctx.getOutputTimestamp() : null;
    let epoch;
    if (ts && ts.performanceTime > 0) epoch = performance.timeOrigin + ts.performanceTime + (ctxTime - ts.contextTime) * 1000;
    else epoch = epochNow() + (ctxTime - this.ctx.currentTime) * 1000;
    return epoch + this.connection.clockOffset;
  }

  dispose() {
    clearInterval(this.timer);
    this.connection.removeEventListener('message', this.onMessage);
    this.connection.removeEventListener('welcome', this.onWelcome);
    this.stopAll();
    this.stopOwn();
    this.media?.removeAttribute('src');
    if (this.ownCtx) this.ctx?.close();
    else {
      this.mediaSource?.disconnect();
      this.gain?.disconnect();
    }
    this.ctx = null;
  }
}
