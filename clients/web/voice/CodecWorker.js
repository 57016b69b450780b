// The voice codecs, in a dedicated worker (started by VoiceCodecs.js): the Opus encoder of the
// microphone and one Opus decoder per voice heard. WebCodecs' audio codecs take one request per
// turn of their thread's event loop; on the page's main thread, busy drawing the hall, a phone
// decodes fewer than 50 frames a second and falls behind for good. Here the capture worklet's
// frames come in on a MessagePort and each decoded frame goes out on the voice's playout worklet
// port, so the main thread only hands over packets.
//
// In: {type: 'capture', port} · {type: 'transmit', on, gate} · {type: 'voice', id, port} ·
//     {type: 'drop', id} · {type: 'frames', frames: [[id, seq, data]]}
// Out: {type: 'packet', seq, data} · {type: 'stats', decoded, queued, errors, sent, captured}

const FRAME_US = 20000;
const BITRATE = 24000;
const OPEN_MIC_GATE = 0.003; // RMS (about −50 dBFS): below it an open mic sends nothing...
const GATE_HOLD_FRAMES = 15; // ...after 300 ms, so a room of open mics is not a room of talkers

class CodecWorker {
  constructor(scope) {
    this.scope = scope;
    this.voices = new Map(); // id -> {decoder, port, decoded, errors}
    this.encoder = null;
    this.transmitting = false;
    this.gate = false;
    this.quiet = 0;
    this.captured = 0;
    this.sent = 0;
    this.seqBase = Math.floor(performance.now() / 20);
    scope.onmessage = (e) => this.onMessage(e.data);
    setInterval(() => this.report(), 500);
  }

  onMessage(m) {
    switch (m.type) {
      case 'capture': this.startCapture(m.port, m.seqBase); break;
      case 'transmit': this.transmitting = m.on; this.gate = m.gate; break;
      case 'voice': this.voice(m.id, m.port); break;
      case 'drop': this.drop(m.id); break;
      case 'frames': for (const [id, seq, data] of m.frames) this.decode(id, seq, data); break;
      case 'stop-capture': this.stopCapture(); break;
      default: throw new TypeError(`voice worker: unknown message ${m.type}`);
    }
  }

  startCapture(port, seqBase) {
    this.stopCapture();
    if (seqBase) this.seqBase = Math.max(this.seqBase, seqBase);
    this.capturePort = port;
    port.onmessage = (e) => this.onCaptured(e.data);
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const data = new Uint8Array(chunk.byteLength);
        chunk.copyTo(data);
        this.sent += 1;
        this.scope.postMessage({ type: 'packet', seq: Math.round(chunk.timestamp / FRAME_US), data }, [data.buffer]);
      },
      error: (e) => { this.encoderError = String(e?.message ?? e); },
    });
    this.encoder.configure({
      codec: 'opus', sampleRate: 48000, numberOfChannels: 1, bitrate: BITRATE,
      opus: { frameDuration: FRAME_US, usedtx: true },
    });
  }

  onCaptured({ pcm, level }) {
    const seq = this.seqBase + this.captured;
    this.captured += 1;
    if (!this.transmitting || this.encoder?.state !== 'configured') return;
    if (this.gate) {
      this.quiet = level < OPEN_MIC_GATE ? this.quiet + 1 : 0;
      if (this.quiet > GATE_HOLD_FRAMES) return;
    }
    const data = new AudioData({
      format: 'f32-planar', sampleRate: 48000, numberOfFrames: pcm.length, numberOfChannels: 1,
      timestamp: seq * FRAME_US, data: pcm,
    });
    this.encoder.encode(data);
    data.close();
  }

  stopCapture() {
    this.capturePort?.close();
    this.capturePort = null;
    if (this.encoder && this.encoder.state !== 'closed') this.encoder.close();
    this.encoder = null;
    this.seqBase += this.captured; // a new capture goes on counting
    this.captured = 0;
  }

  voice(id, port) {
    this.drop(id);
    const v = { port, decoded: 0, errors: 0, decoder: null };
    this.voices.set(id, v);
    this.makeDecoder(v);
  }

  makeDecoder(v) {
    v.decoder = new AudioDecoder({
      output: (d) => {
        const pcm = new Float32Array(d.numberOfFrames);
        d.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
        const seq = Math.round(d.timestamp / FRAME_US);
        d.close();
        v.decoded += 1;
        v.port.postMessage({ type: 'frame', seq, pcm }, [pcm.buffer]);
      },
      error: () => { v.errors += 1; v.broken = true; },
    });
    v.decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
    v.broken = false;
  }

  decode(id, seq, data) {
    const v = this.voices.get(id);
    if (!v) return;
    if (v.broken || v.decoder.state === 'closed') this.makeDecoder(v);
    try {
      v.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: seq * FRAME_US, data }));
    } catch {
      v.errors += 1; // a packet the decoder refuses is a lost one: the playout conceals it
    }
  }

  drop(id) {
    const v = this.voices.get(id);
    if (!v) return;
    if (v.decoder.state !== 'closed') v.decoder.close();
    v.port.close();
    this.voices.delete(id);
  }

  report() {
    const decoded = {};
    const queued = {};
    const errors = {};
    for (const [id, v] of this.voices) {
      decoded[id] = v.decoded;
      queued[id] = v.decoder.decodeQueueSize ?? 0;
      errors[id] = v.errors;
    }
    this.scope.postMessage({
      type: 'stats', decoded, queued, errors, sent: this.sent, captured: this.captured,
      encodeQueue: this.encoder?.encodeQueueSize ?? 0, encoderError: this.encoderError ?? null,
    });
  }
}

new CodecWorker(self);
