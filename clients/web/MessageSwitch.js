// The client's message switch: one handler per message type the hall itself uses. A type the
// protocol knows but the hall does not handle (kiosk, briefing, voice) is left to the features'
// listeners; a type that is not in the protocol's table is a bug, and throws.

import { typeName } from './protocol.js';

export class MessageSwitch {
  /** @param {Map<number, (msg: object) => void>} handlers by MsgType code */
  constructor(handlers) {
    this.handlers = new Map(handlers);
  }

  /**
   * Run the handler of `msg.type`, if the hall has one.
   * @throws {TypeError} a type that is not in protocol.js's MsgType
   */
  handle(msg) {
    const fn = this.handlers.get(msg.type);
    if (fn) fn(msg);
    else if (typeName(msg.type) === null) throw new TypeError(`emachi: unknown message type ${msg.type}`);
  }

  dispose() {
    this.handlers.clear();
  }
}
