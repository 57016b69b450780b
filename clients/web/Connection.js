// The WebSocket to the hall: hello/welcome, the resume token kept in sessionStorage (so a reload or a
// reconnect keeps the same avatar), reconnect with backoff, and a clock offset estimated from
// ping/pong (the sample with the smallest round trip wins). In a cluster a hello may be answered with
// REDIRECT instead of WELCOME (another process owns this avatar's instance): the connection says
// hello again at that address with the seat reservation, at once and without a 'reconnecting'
// state, so the resident notices nothing; later reconnects start again from `url` (the load
// balancer), which sends them on to whichever process owns the instance then. Emits:
//   'state'   {state, code?, reason?, retryIn?}   state: connecting | connected | reconnecting | closed
//   'welcome' the WELCOME message
//   'message' every decoded message (after 'welcome' for WELCOME)

import { CloseCode, MsgType, decodeMessage, encodeMessage, hello, ping } from './protocol.js';

const RESUME_KEY = 'emachi.resume';
const PING_EVERY_MS = 2000;
const CLOCK_SAMPLES = 8;
// after a drop: the first hello again soon (a process that died has its clients' hellos wait on a
// survivor until it takes their instance over, ~1-2.5 s), then slower; each ±50 % so that a
// thousand clients of one process do not arrive in the same instant
const BACKOFF_MS = [250, 500, 1000, 2000, 4000];
const FULL_RETRY_MS = 15000;
// a redirect's address that does not answer (its process just died): back to `url` this soon
const REDIRECT_RETRY_MS = 200;
const MAX_REDIRECTS = 4;
// MOVED refusals in a row retried in 50-250 ms before the backoff applies
const MAX_QUICK_MOVED = 4;
// no frame at all for this long (snapshots come 20 times a second, pongs every 2 s): the process
// or the network stalled; drop the socket and resume elsewhere
const STALL_MS = 5000;
// closes after which trying again cannot help
const FINAL = new Set([CloseCode.UNSUPPORTED_VERSION, CloseCode.REPLACED, CloseCode.REMOVED, CloseCode.UNAUTHORIZED,
  CloseCode.INVITE_INVALID, CloseCode.INVITE_EXPIRED, CloseCode.INVITE_REVOKED, CloseCode.INVITE_OTHER_EVENT,
  CloseCode.INVITE_USED, CloseCode.EVENT_FULL, CloseCode.EVENT_NOT_STARTED, CloseCode.EVENT_OVER,
  CloseCode.EVENT_LOCKED, CloseCode.BANNED]);

export const now = () => performance.timeOrigin + performance.now();

export class Connection extends EventTarget {
  /**
   * @param {{url?: string, name: string, opts?: object}} options
   */
  constructor({ url, name, opts = {} }) {
    super();
    this.url = url ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.name = name;
    this.opts = opts;
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0;
    this.welcome = null;
    this.clockSamples = [];
    this.clockOffset = 0; // server_time - local time, ms
    this.rtt = 0;
    this.bytesIn = 0;
    this.timer = null;
    this.pingTimer = null;
    this.closedByUs = false;
    this.redirect = null; // {url, seat} from the last REDIRECT, for the next hello only
    this.gone = null; // the address of a REDIRECT that did not answer, for the next hello only
    this.redirects = 0;
    this.moved = 0; // MOVED refusals since the last WELCOME
    this.lastFrameAt = 0;
    this.stallTimer = null;
  }

  get resumeToken() {
    try { return sessionStorage.getItem(RESUME_KEY); } catch { return null; }
  }

  set resumeToken(token) {
    try {
      if (token) sessionStorage.setItem(RESUME_KEY, token);
      else sessionStorage.removeItem(RESUME_KEY);
    } catch { /* storage may be disabled; resume then works only within this page */ }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...extra } }));
  }

  open() {
    this.closedByUs = false;
    clearTimeout(this.timer);
    const redirect = this.redirect;
    this.redirect = null;
    // a redirect is part of connecting, not a reconnect the resident should see
    if (!redirect) this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(redirect ? redirect.url : this.url);
    } catch (e) {
      this.scheduleRetry(0, String(e));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let welcomed = false;
    let redirected = null;
    // the owner a redirect named and that did not answer: said once to the balancer's process,
    // which then waits for the instance to pass to a live owner instead of naming it again
    const gone = redirect ? null : this.gone;
    this.gone = null;
    ws.onopen = () => {
      let opts = redirect ? { ...this.opts, seat: redirect.seat } : this.opts;
      if (gone) opts = { ...opts, gone };
      this.sendRaw(hello(this.name, this.resumeToken ?? this.memoryToken ?? null, opts));
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      this.bytesIn += ev.data.byteLength;
      this.lastFrameAt = performance.now();
      const msg = decodeMessage(ev.data);
      if (msg.type === MsgType.REDIRECT) {
        redirected = { url: msg.url, seat: msg.seat };
        return;
      }
      if (msg.type === MsgType.WELCOME) {
        welcomed = true;
        this.attempt = 0;
        this.redirects = 0;
        this.moved = 0;
        this.welcome = msg;
        this.memoryToken = msg.resume;
        this.resumeToken = msg.resume;
        this.addClockSample(0, msg.server_time, 0);
        this.dispatchEvent(new CustomEvent('welcome', { detail: msg }));
        this.setState('connected', { instance: msg.instance });
        this.startPing();
      } else if (msg.type === MsgType.PONG) {
        const t = now();
        this.addClockSample(t - msg.client_time, msg.server_time, t);
      }
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = (ev) => {
      this.stopPing();
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closedByUs) { this.setState('closed', { code: ev.code }); return; }
      const code = ev.code;
      if (redirected && this.redirects < MAX_REDIRECTS) {
        // say hello to the owner now, with the seat reservation
        this.redirects += 1;
        this.redirect = redirected;
        this.open();
        return;
      }
      if (redirect && !welcomed && this.redirects <= MAX_REDIRECTS) {
        // the owner we were sent to did not answer (it may have just died): back to the load
        // balancer soon, which sends us on to whoever owns the instance now
        this.redirects += 1;
        this.gone = redirect.url;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.open(), REDIRECT_RETRY_MS);
        return;
      }
      // MOVED: the place is changing hands (a failover); again soon, a few times without growing
      // the backoff, then with it (a takeover that takes long must not draw 5 hellos a second)
      if (code === CloseCode.MOVED && this.moved < MAX_QUICK_MOVED) {
        this.moved += 1;
        this.scheduleRetry(50 + Math.random() * 200, ev.reason, code, false, false);
        return;
      }
      if (code === CloseCode.MOVED) { this.scheduleRetry(null, ev.reason, code); return; }
      if (FINAL.has(code)) {
        if (code === CloseCode.REPLACED || code === CloseCode.REMOVED) this.resumeToken = null;
        this.setState('closed', { code, reason: ev.reason });
        return;
      }
      if (code === CloseCode.WORLD_FULL) { this.scheduleRetry(FULL_RETRY_MS, ev.reason, code); return; }
      if (code === CloseCode.DRAINING) { this.scheduleRetry(300 + Math.random() * 700, ev.reason, code); return; }
      this.scheduleRetry(null, ev.reason, code, !welcomed);
    };
  }

  scheduleRetry(delay, reason, code = 0, unreachable = false, grow = true) {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const ms = delay ?? base * (0.5 + Math.random());
    if (grow) this.attempt += 1;
    this.setState('reconnecting', { code, reason, retryIn: ms, unreachable, attempt: this.attempt });
    this.timer = setTimeout(() => this.open(), ms);
  }

  /** Try now rather than waiting for the backoff (a "retry" button). */
  retryNow() {
    if (this.ws) return;
    clearTimeout(this.timer);
    this.open();
  }

  addClockSample(rtt, serverTime, localTime) {
    if (localTime === 0) {
      // the welcome gives a first, rough offset (one-way delay unknown)
      this.clockOffset = serverTime - now();
      return;
    }
    this.clockSamples.push({ rtt, offset: serverTime - (localTime - rtt / 2) });
    if (this.clockSamples.length > CLOCK_SAMPLES) this.clockSamples.shift();
    const best = this.clockSamples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.clockOffset = best.offset;
    this.rtt = rtt;
  }

  /** The server's clock now, in ms, as best estimated. */
  serverNow() {
    return now() + this.clockOffset;
  }

  startPing() {
    this.stopPing();
    const tick = () => this.sendRaw(ping(now()));
    tick();
    this.pingTimer = setInterval(tick, PING_EVERY_MS);
    this.lastFrameAt = performance.now();
    this.stallTimer = setInterval(() => {
      // a process that stopped (paused, partitioned) writes nothing: resume elsewhere
      if (!this.ws || performance.now() - this.lastFrameAt <= STALL_MS) return;
      // let the dead socket go without waiting for its closing handshake
      const dead = this.ws;
      dead.onclose = null;
      dead.onmessage = null;
      this.ws = null;
      this.stopPing();
      try { dead.close(3001, 'stalled'); } catch { /* already closing */ }
      this.scheduleRetry(0, 'stalled');
    }, 1000);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    clearInterval(this.stallTimer);
    this.stallTimer = null;
  }

  /** Send a client message array ([MsgType.X, ...fields]); false when not connected. */
  sendRaw(arr) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encodeMessage(arr));
    return true;
  }

  send(arr) {
    return this.state === 'connected' ? this.sendRaw(arr) : false;
  }

  /** Drop the socket as a network failure would (tests, "reconnect" after sleep). */
  dropForTest() {
    this.ws?.close(3000, 'test drop');
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.timer);
    this.stopPing();
    this.ws?.close(1000, 'bye');
  }

  dispose() {
    this.close();
    this.ws = null;
  }
}
