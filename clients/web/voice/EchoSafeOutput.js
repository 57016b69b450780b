// Where the voice mix plays out, so that the speaker's own microphone does not send it back.
// Chromium's echo canceller takes as its reference only the audio WebRTC plays; Web Audio sent
// straight to ctx.destination is not cancelled. So the mix goes into a
// MediaStreamAudioDestinationNode, through a loopback pair of RTCPeerConnections on this page
// (stereo Opus at 128 kbit/s, never leaving the machine), into an <audio> element. Until the pair
// connects (or if it cannot), the mix plays directly, so nobody misses the first words.
// `route` says which: 'direct' or 'webrtc'.

const CONNECT_TIMEOUT_MS = 5000;

function stereoOpus(sdp) {
  const m = sdp.match(/a=rtpmap:(\d+) opus\/48000\/2/i);
  if (!m) return sdp;
  return sdp.replace(new RegExp(`a=fmtp:${m[1]} ([^\\r\\n]*)`), (line, params) =>
    `a=fmtp:${m[1]} ${params};stereo=1;sprop-stereo=1;maxaveragebitrate=128000`);
}

export class EchoSafeOutput {
  /**
   * @param {AudioContext} ctx
   * @param {{doc?: Document}} opts
   */
  constructor(ctx, { doc = document } = {}) {
    this.ctx = ctx;
    this.doc = doc;
    this.input = ctx.createGain();
    this.route = 'direct';
    this.input.connect(ctx.destination);
    this.disposed = false;
  }

  /**
   * Route through WebRTC from now on (called when the microphone goes on: without one there is
   * nothing to cancel, and the loopback costs an Opus encode of the mix).
   */
  startLoopback() {
    if (this.started || typeof RTCPeerConnection !== 'function') return;
    this.started = true;
    this.loopback().catch((e) => { this.failure = String(e?.message ?? e); this.closePeers(); });
  }

  /** RMS of what the <audio> element is given (the loopback's far end), for tests; null if none. */
  level() {
    if (!this.audio?.srcObject) return null;
    if (!this.probe) {
      this.probe = this.ctx.createAnalyser();
      this.ctx.createMediaStreamSource(this.audio.srcObject).connect(this.probe);
    }
    const buf = new Float32Array(this.probe.fftSize);
    this.probe.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  }

  async loopback() {
    const ctx = this.ctx;
    this.dest = ctx.createMediaStreamDestination();
    this.dest.channelCount = 2;
    this.input.connect(this.dest);
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    this.peers = [a, b];
    a.onicecandidate = (e) => { if (e.candidate) b.addIceCandidate(e.candidate).catch(() => {}); };
    b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {}); };
    const audio = this.doc.createElement('audio');
    audio.autoplay = true;
    audio.hidden = true;
    audio.dataset.emachi = 'voice-out';
    this.doc.body.append(audio);
    this.audio = audio;
    const track = new Promise((resolve) => { b.ontrack = (e) => resolve(e.streams[0] ?? new MediaStream([e.track])); });
    a.addTrack(this.dest.stream.getAudioTracks()[0], this.dest.stream);
    const offer = await a.createOffer();
    offer.sdp = stereoOpus(offer.sdp);
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    answer.sdp = stereoOpus(answer.sdp);
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    audio.srcObject = await track;
    const connected = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('loopback did not connect')), CONNECT_TIMEOUT_MS);
      const check = () => {
        if (b.connectionState === 'connected') { clearTimeout(timer); resolve(); }
        if (b.connectionState === 'failed') { clearTimeout(timer); reject(new Error('loopback failed')); }
      };
      b.onconnectionstatechange = check;
      check();
    });
    await connected;
    if (this.disposed) return;
    await this.play();
    this.input.disconnect(ctx.destination);
    this.route = 'webrtc';
  }

  /** Start the <audio> element (a page without a user gesture yet may refuse: retry on one). */
  async play() {
    try {
      await this.audio.play();
    } catch {
      await new Promise((resolve) => {
        const go = () => { this.audio.play().then(resolve, resolve); };
        this.doc.addEventListener('pointerdown', go, { once: true });
        this.doc.addEventListener('keydown', go, { once: true });
      });
    }
  }

  closePeers() {
    for (const pc of this.peers ?? []) pc.close();
    this.peers = [];
    this.audio?.remove();
    this.audio = null;
    if (this.route !== 'direct') {
      this.input.connect(this.ctx.destination);
      this.route = 'direct';
    }
  }

  dispose() {
    this.disposed = true;
    this.closePeers();
    this.input.disconnect();
    this.dest?.disconnect();
    this.probe?.disconnect();
  }
}
