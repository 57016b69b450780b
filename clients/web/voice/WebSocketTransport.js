// The media path of voice, behind a small interface. The server decides who hears whom either
// way; this transport carries the Opus frames on the hall's WebSocket (VOICE up, VOICE_FRAME
// down) and the decisions (AUDIO_SUBS, VOICE_HEARD). A WebRTC SFU transport would offer the same
// methods: sendFrame(seq, talking, megaphone, data), onFrames(fn), onSubs(fn), onHeard(fn),
// dispose().

import { MsgType, voice } from '../protocol.js';

export class WebSocketTransport {
  /**
   * @param {{send: (arr: Array) => boolean, on: (type: string, fn: Function) => Function}} link
   *   the hall app (app.send, app.on), or WebSocketTransport.linkOf(connection)
   */
  constructor(link) {
    this.link = link;
    this.undo = [];
  }

  /** The link of a bare Connection (the watch-only page, which has no app). */
  static linkOf(connection) {
    return {
      send: (arr) => connection.send(arr),
      on: (type, fn) => {
        const h = (e) => { if (e.detail.type === MsgType[type]) fn(e.detail); };
        connection.addEventListener('message', h);
        return () => connection.removeEventListener('message', h);
      },
    };
  }

  /** Send one 20 ms Opus packet (Uint8Array); false when offline. */
  sendFrame(seq, talking, megaphone, data) {
    return this.link.send(voice(seq >>> 0, talking, megaphone, data));
  }

  /** fn(frames, arrivalMs): frames [[fromId, seq, Uint8Array], ...] */
  onFrames(fn) {
    this.undo.push(this.link.on('VOICE_FRAME', (m) => fn(m.frames, performance.now())));
  }

  /** fn({add: [[id, gain]], remove: [id]}) */
  onSubs(fn) {
    this.undo.push(this.link.on('AUDIO_SUBS', (m) => fn({ add: m.add, remove: m.remove })));
  }

  /** fn({count, ids}): who hears the local speaker now */
  onHeard(fn) {
    this.undo.push(this.link.on('VOICE_HEARD', (m) => fn({ count: m.count, ids: m.ids })));
  }

  dispose() {
    for (const f of this.undo) f();
    this.undo = [];
  }
}
