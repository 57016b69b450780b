// The page's side of CodecWorker.js: one worker for the microphone's encoder and every voice's
// decoder, wired straight to the audio worklets with MessagePorts (see CodecWorker.js for why).

export class VoiceCodecs {
  constructor() {
    this.worker = new Worker(new URL('./CodecWorker.js', import.meta.url), { type: 'module' });
    this.stats = { decoded: {}, queued: {}, errors: {}, sent: 0, captured: 0, encodeQueue: 0, encoderError: null };
    this.onPacket = null;
    this.worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'packet') this.onPacket?.(m.seq, m.data);
      else if (m.type === 'stats') this.stats = m;
    };
  }

  /** Decode voice `id` into its playout worklet node. */
  addVoice(id, node) {
    const { port1, port2 } = new MessageChannel();
    node.port.postMessage({ type: 'port', port: port1 }, [port1]);
    this.worker.postMessage({ type: 'voice', id, port: port2 }, [port2]);
  }

  dropVoice(id) {
    this.worker.postMessage({ type: 'drop', id });
  }

  /** Packets off the wire: [[id, seq, Uint8Array]] (one message for the batch). */
  decode(frames) {
    if (frames.length) this.worker.postMessage({ type: 'frames', frames });
  }

  /** Encode what the capture worklet node cuts; packets come to onPacket(seq, data). */
  capture(node) {
    const { port1, port2 } = new MessageChannel();
    node.port.postMessage({ type: 'port', port: port1 }, [port1]);
    this.worker.postMessage({ type: 'capture', port: port2 }, [port2]);
  }

  stopCapture() {
    this.worker.postMessage({ type: 'stop-capture' });
  }

  /** Send packets (on) or not; gate: open mic, so silence sends nothing. */
  transmit(on, gate) {
    this.worker.postMessage({ type: 'transmit', on, gate });
  }

  dispose() {
    this.worker.terminate();
  }
}
