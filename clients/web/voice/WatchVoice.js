// Voice on the watch-only page (/briefing/{id}): the stage's voices, which the server sends
// every watch-only viewer at the PA gain. No microphone, no positions (no panning), no echo path;
// the sound starts on the page's first tap or key if the browser wants a gesture.
// window.emachiVoice has the hall's measuring hooks, for the tests.

import { VoiceCodecs } from './VoiceCodecs.js';
import { VoiceReceiver } from './VoiceReceiver.js';
import { WebSocketTransport } from './WebSocketTransport.js';

export class WatchVoice {
  /** @param {import('../Connection.js').Connection} connection */
  constructor(connection) {
    this.available = window.isSecureContext && typeof AudioDecoder === 'function' && typeof AudioWorkletNode === 'function';
    if (!this.available) return;
    this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
    this.receiver = new VoiceReceiver({
      ctx: this.ctx, codecs: new VoiceCodecs(), transport: new WebSocketTransport(WebSocketTransport.linkOf(connection)),
      output: this.ctx.destination, spatial: false,
    });
    this.onWelcome = () => this.receiver.reset();
    connection.addEventListener('welcome', this.onWelcome);
    this.connection = connection;
    this.unlock = () => { if (this.ctx.state !== 'running') this.ctx.resume().catch(() => {}); };
    window.addEventListener('pointerdown', this.unlock);
    window.addEventListener('keydown', this.unlock);
    this.unlock();
    window.emachiVoice = {
      state: () => ({
        context: this.ctx.state, subs: Object.fromEntries(this.receiver.subs), framesIn: this.receiver.framesIn,
        framesBy: Object.fromEntries(this.receiver.framesBy),
      }),
      measure: (ms, freqs) => this.receiver.measure(ms, freqs),
    };
  }

  dispose() {
    if (!this.available) return;
    this.connection.removeEventListener('welcome', this.onWelcome);
    window.removeEventListener('pointerdown', this.unlock);
    window.removeEventListener('keydown', this.unlock);
    this.receiver.dispose();
    this.ctx.close();
    delete window.emachiVoice;
  }
}
